"""The secret store's tables on a real SQLite file: schema, rights, tags, queries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vcpd.errors import RequestError
from vcpd.services.ports import SecretEncoding
from vcpd.services.secrets import MIGRATIONS, acl, storage
from vcpd.services.secrets.model import Sort, Tag, parse_filter
from vcpd.store import open_store

OWNER = "owner-key"
OTHER = "other-key"


def _record(i: int, owner: str = OWNER, tags: tuple[Tag, ...] = ()) -> storage.SecretRecord:
    return storage.SecretRecord(
        id=f"00000000-0000-4000-8000-{i:012d}",
        owner=owner,
        created_ms=1000 + i,
        encoding=SecretEncoding(),
        length=1,
        tags=tags,
        shares=bytes(32),
    )


async def test_insert_load_delete_cascade(tmp_path: Path) -> None:
    async with open_store(tmp_path / "s.db", MIGRATIONS) as store:
        rec = _record(1, tags=(Tag("a", "x"),))
        await store.write(storage.insert_secret, rec)
        with pytest.raises(RequestError, match="already exists") as info:
            await store.write(storage.insert_secret, rec)
        assert info.value.code == "conflict"
        loaded = await store.read(lambda c: storage.load_record(c, rec.id, with_shares=True))
        assert loaded is not None and loaded.shares == bytes(32) and "n=1" in repr(loaded)
        assert [t.key for t in loaded.tags] == ["a", "creation-date", "owner"]
        assert loaded.tags[1] == Tag("creation-date", "1001", "LONG")
        await store.write(acl.grant, rec.id, OTHER, ["read"])
        assert await store.write(storage.delete_secrets, [rec.id, rec.id]) == 1
        assert await store.read(storage.load_record, rec.id) is None
        with sqlite3.connect(tmp_path / "s.db") as conn:
            assert conn.execute("SELECT count(*) FROM secrets_tag").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM secrets_grant").fetchone()[0] == 0


async def test_rights_and_acl(tmp_path: Path) -> None:
    async with open_store(tmp_path / "s.db", MIGRATIONS) as store:
        rec = _record(1)
        await store.write(storage.insert_secret, rec)
        assert await store.read(acl.load_rights, rec.id, "nobody") == acl.Rights(OWNER, frozenset())
        assert await store.read(acl.load_rights, "missing", OWNER) is None
        owner_rights = acl.require(await store.read(acl.load_rights, rec.id, OWNER), OWNER, "grant", rec.id)
        assert owner_rights.owner == OWNER
        with pytest.raises(RequestError) as info:
            acl.require(await store.read(acl.load_rights, rec.id, OTHER), OTHER, "read", rec.id)
        assert info.value.code == "not-found"
        await store.write(acl.grant, rec.id, OTHER, ["use"])
        rights = await store.read(acl.load_rights, rec.id, OTHER)
        acl.require(rights, OTHER, "use", rec.id)
        for action in ("read", "tag", "delete", "grant"):
            with pytest.raises(RequestError) as info:
                acl.require(rights, OTHER, action, rec.id)  # type: ignore[arg-type]
            assert info.value.code == "forbidden"
        await store.write(acl.revoke, rec.id, OTHER, ["use"])
        assert (await store.read(acl.load_rights, rec.id, OTHER)).granted == frozenset()  # type: ignore[union-attr]


async def test_tags_set_delete(tmp_path: Path) -> None:
    async with open_store(tmp_path / "s.db", MIGRATIONS) as store:
        rec = _record(1)
        await store.write(storage.insert_secret, rec)
        await store.write(storage.set_tags, rec.id, [Tag("a", "1"), Tag("b", "2", "LONG")], 64)
        await store.write(storage.set_tags, rec.id, [Tag("a", "changed")], 64)
        tags = {t.key: t for t in await store.read(storage.get_tags, rec.id)}
        assert tags["a"].value == "changed" and tags["b"].number == 2
        with pytest.raises(RequestError, match="at most 4 tags"):
            await store.write(storage.set_tags, rec.id, [Tag("c", ""), Tag("d", "")], 4)
        assert await store.write(storage.delete_tags, rec.id, ["a", "zzz"]) == ["zzz"]
        assert "a" in {t.key for t in await store.read(storage.get_tags, rec.id)}  # all or nothing
        assert await store.write(storage.delete_tags, rec.id, ["a"]) == []


async def test_listing_sql(tmp_path: Path) -> None:
    async with open_store(tmp_path / "s.db", MIGRATIONS) as store:
        values = [5, -3, 100, 7]
        for i, n in enumerate(values):
            tags = (Tag("n", str(n), "LONG"), Tag("kind", "a" if i % 2 else "b"))
            await store.write(storage.insert_secret, _record(i, tags=tags))
        await store.write(storage.insert_secret, _record(9, owner=OTHER, tags=(Tag("n", "1", "LONG"),)))
        await store.write(storage.insert_secret, _record(8, tags=(Tag("n", "text"),)))  # a STRING tag sorts after LONGs

        async def ids(
            filters: list[str], sort: Sort = Sort(), offset: int = 0, limit: int = 100
        ) -> tuple[list[int], int]:
            records, total = await store.read(
                storage.list_secrets, OWNER, [parse_filter(f) for f in filters], sort, offset, limit
            )
            return [int(r.id[-12:]) for r in records], total

        assert await ids([]) == ([0, 1, 2, 3, 8], 5)  # the other owner's secret is invisible
        assert await ids([], Sort("n")) == ([1, 0, 3, 2, 8], 5)
        assert await ids([], Sort("n", True)) == ([2, 3, 0, 1, 8], 5)
        assert await ids(["n>4"]) == ([0, 2, 3], 3)
        assert await ids(["n<6", "kind=a"]) == ([1], 1)
        assert await ids(["n=100"]) == ([2], 1)
        assert await ids(["n>0"], Sort("n"), offset=1, limit=2) == ([3, 2], 3)
        assert await ids(["missing=1"]) == ([], 0)
        await store.write(acl.grant, _record(9).id, OWNER, ["read"])
        assert (await ids(["n=1"]))[0] == [9]
