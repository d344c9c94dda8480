"""Listing (filters, sorting, paging), tag CRUD, deletion and argument errors through the API."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from secret_vc import open_vc
from vcpd.errors import RequestError

GOOD_ID = str(uuid.uuid4())


async def test_filters_sort_and_pages(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 2) as vc:
            client, other = vc.client(), vc.client()
            ids = {}
            rows = [("a", 30, "red"), ("b", -5, "blue"), ("c", 12, "red"), ("d", 100, "blue"), ("e", 12, "red")]
            for name, score, team in rows:
                ids[name] = await client.create_secret([score], tags={"name": name, "score": score, "team": team})
            await other.create_secret([0], tags={"name": "x", "score": 50})
            everything = await client.list_secrets()
            assert everything.total == 5 and [i.tags["name"] for i in everything.items] == list("abcde")
            assert everything.items[0].length == 1 and everything.items[0].encoding == "int64"
            assert everything.items[0].owner == client.public_key

            async def names(**kwargs: Any) -> list[str]:
                return [str(i.tags["name"]) for i in (await client.list_secrets(**kwargs)).items]

            assert await names(sort="score") == ["b", "c", "e", "a", "d"]
            assert await names(sort="score:desc") == ["d", "a", "e", "c", "b"]
            assert await names(sort=("name", "desc")) == list("edcba")
            assert await names(filters=["team=red"]) == ["a", "c", "e"]
            assert await names(filters=["score>11", "score<31"], sort="score") == ["c", "e", "a"]
            assert await names(filters=["score=12"]) == ["c", "e"]
            assert await names(filters=["team=red", "score<0"]) == []
            assert await names(filters=[f"owner={client.public_key}"], sort="name:desc") == list("edcba")
            page = await client.list_secrets(sort="score", page=1, size=2)
            assert [i.tags["name"] for i in page.items] == ["e", "a"]
            assert (page.page, page.size, page.total, page.pages) == (1, 2, 5, 3)
            last = await client.list_secrets(sort="score", page=2, size=2)
            assert [i.tags["name"] for i in last.items] == ["d"]
            assert (await client.list_secrets(page=9, size=2)).items == []
            for bad, message in [
                ({"filters": ["score~3"]}, "has no operator"),
                ({"filters": ["score<three"]}, "not a signed 64-bit integer"),
                ({"filters": ["bad key=1"]}, "may contain only"),
                ({"page": -1}, "page numbers start at 0"),
                ({"size": 0}, "size must be in 1..1000"),
                ({"size": 1001}, "size must be in 1..1000"),
                ({"sort": {"key": "score", "order": "sideways"}}, "'asc' or 'desc'"),
                ({"filters": "score>1"}, "must be list"),
            ]:
                with pytest.raises(RequestError, match=message) as info:
                    await client.call_all("secrets.list", bad)
                assert info.value.code == "bad-request"
            assert await client.delete_secrets([ids["a"], ids["b"]]) == 2
            assert await names() == ["c", "d", "e"]


async def test_tag_crud(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 3) as vc:
            client = vc.client()
            sid = await client.create_secret([1], tags={"a": "1"})
            tags = await client.get_tags(sid)
            assert tags["a"] == "1" and tags["owner"] == client.public_key and isinstance(tags["creation-date"], int)
            await client.set_tags(sid, {"a": "changed", "n": -7})
            tags = await client.get_tags(sid)
            assert tags["a"] == "changed" and tags["n"] == -7
            assert [i.id for i in (await client.list_secrets(filters=["n<0"])).items] == [sid]
            await client.delete_tags(sid, ["a"])
            assert "a" not in await client.get_tags(sid)
            with pytest.raises(RequestError, match="has no tag 'zzz'") as info:
                await client.delete_tags(sid, ["n", "zzz"])
            assert info.value.code == "not-found"
            assert (await client.get_tags(sid))["n"] == -7  # all or nothing
            for reserved in ("owner", "creation-date"):
                with pytest.raises(RequestError, match="reserved"):
                    await client.call_all("secrets.tags.set", {"id": sid, "tags": [{"key": reserved, "value": "1"}]})
                with pytest.raises(RequestError, match="reserved"):
                    await client.call_all("secrets.tags.delete", {"id": sid, "keys": [reserved]})
                with pytest.raises(RequestError, match="reserved"):
                    await client.set_tags(sid, {reserved: "me"})  # refused client-side already
            with pytest.raises(RequestError, match="duplicate tag key 'k'"):
                await client.call_all(
                    "secrets.tags.set", {"id": sid, "tags": [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]}
                )
            with pytest.raises(RequestError, match="at least one tag"):
                await client.call_all("secrets.tags.set", {"id": sid, "tags": []})
            assert (await client.get_tags(sid))["owner"] == client.public_key


async def test_malformed_requests_get_clear_errors(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 2) as vc:
            client = vc.client()
            rid = str(uuid.uuid4())
            commit = {"id": GOOD_ID, "request_id": rid, "mu": b""}
            cases: list[tuple[str, dict[str, Any], str]] = [
                ("secrets.get", {"id": "nope", "request_id": rid}, "secret id 'nope' is not a UUID"),
                ("secrets.get", {"id": GOOD_ID, "request_id": "x"}, "request id 'x' is not a UUID"),
                ("secrets.get", {"id": GOOD_ID}, "missing argument 'request_id'"),
                ("secrets.delete", {"ids": []}, "at least one secret id"),
                ("secrets.delete", {"ids": ["1234"]}, "is not a UUID"),
                ("secrets.tags.set", {"id": GOOD_ID, "tags": [{"key": "a" * 129, "value": ""}]}, "longer than 128"),
                ("secrets.tags.set", {"id": GOOD_ID, "tags": [{"key": "a", "value": "v" * 257}]}, "longer than 256"),
                (
                    "secrets.tags.set",
                    {"id": GOOD_ID, "tags": [{"key": "a", "value": "x", "type": "LONG"}]},
                    "not a signed 64-bit",
                ),
                ("secrets.tags.set", {"id": GOOD_ID, "tags": [{"key": "a/b", "value": ""}]}, "may contain only"),
                ("secrets.grant", {"id": GOOD_ID, "client": "zz", "actions": ["read"]}, "not a base64 Ed25519"),
                ("secrets.grant", {"id": GOOD_ID, "client": client.public_key, "actions": ["own"]}, "action 'own'"),
                ("secrets.upload.commit", {**commit, "encoding": "float"}, "encoding must be one of"),
                ("secrets.upload.commit", {**commit, "encoding": "int64", "fraction_bits": 4}, "fixed' encoding only"),
            ]
            for op, args, message in cases:
                with pytest.raises(RequestError, match=message) as info:
                    await client.call_all(op, args)
                assert info.value.code == "bad-request", (op, args)
            with pytest.raises(RequestError, match="not a UUID") as info:
                await client.get_secret("definitely-not-a-uuid")
            assert info.value.code == "bad-request"
            assert not [c for c in client.calls if c[1] == "secrets.get" and c[2].get("id") == "definitely-not-a-uuid"]
            with pytest.raises(RequestError) as info:
                await client.get_secret(GOOD_ID)
            assert info.value.code == "not-found"
            with pytest.raises(RequestError) as info:
                await client.delete_secrets([GOOD_ID])
            assert info.value.code == "not-found"
