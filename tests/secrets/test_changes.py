"""Tag edits, grants, revokes and deletes happen on every VCP or on none."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
import trio

from secret_vc import VC, call_each, count_rows, delete_behind_the_back, open_vc
from vcpd.errors import RequestError
from vcpd.services.secrets import storage

VALUES = [5, -6]


def tags_on(vc: VC, secret_id: str) -> list[dict[str, str]]:
    """Each VCP's non-reserved tags of a secret, read straight from its file."""
    out = []
    for path in vc.paths:
        with sqlite3.connect(path) as conn:
            tags = storage.get_tags(conn, secret_id)
            out.append({t.key: t.value for t in tags if t.key not in ("owner", "creation-date")})
    return out


def grants_on(vc: VC, secret_id: str) -> list[set[tuple[str, str]]]:
    out = []
    for path in vc.paths:
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT grantee, action FROM secrets_grant WHERE secret_id = ?", (secret_id,))
            out.append({(str(g), str(a)) for g, a in rows})
    return out


async def test_a_right_missing_on_one_vcp_changes_nothing_anywhere(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_vc(tmp_path, 3) as vc:
            owner, friend = vc.client(), vc.client()
            sid = await owner.create_secret(VALUES, tags={"a": "1"})
            await owner.grant(sid, friend.public_key, ["tag", "read"])
            with sqlite3.connect(vc.paths[1]) as conn:  # revoked on VCP 1 only: a diverged store
                conn.execute("DELETE FROM secrets_grant WHERE grantee = ? AND action = 'tag'", (friend.public_key,))
            with pytest.raises(RequestError) as info:
                await friend.set_tags(sid, {"a": "2", "b": "3"})
            assert info.value.code == "forbidden"
            with pytest.raises(RequestError) as info:
                await friend.delete_tags(sid, ["a"])
            assert info.value.code == "forbidden"
            assert tags_on(vc, sid) == [{"a": "1"}] * 3


async def test_a_secret_missing_on_one_vcp_is_deleted_nowhere(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_vc(tmp_path, 3) as vc:
            owner = vc.client()
            kept, other = await owner.create_secret(VALUES), await owner.create_secret(VALUES)
            delete_behind_the_back(vc.paths[2], kept)
            with pytest.raises(RequestError) as info:
                await owner.delete_secrets([other, kept])
            assert info.value.code == "not-found"
            assert [count_rows(p, "secrets_secret") for p in vc.paths] == [2, 2, 1]
            assert await owner.delete_secrets([other]) == 1  # a change every VCP can make goes through
            assert [count_rows(p, "secrets_secret") for p in vc.paths] == [1, 1, 0]


async def test_an_unreachable_vcp_means_no_change_anywhere(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_vc(tmp_path, 3) as vc:
            owner, friend = vc.client(), vc.client()
            sid = await owner.create_secret(VALUES, tags={"a": "1"})
            vc.hub.isolate(2)
            with pytest.raises(RequestError):
                await owner.set_tags(sid, {"a": "2"})
            with pytest.raises(RequestError):
                await owner.grant(sid, friend.public_key, ["read"])
            with pytest.raises(RequestError):
                await owner.delete_secrets([sid])
            assert tags_on(vc, sid) == [{"a": "1"}] * 3
            assert grants_on(vc, sid) == [set()] * 3
            assert [count_rows(p, "secrets_secret") for p in vc.paths] == [1, 1, 1]


async def test_different_changes_sent_to_different_vcps_change_nothing(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_vc(tmp_path, 2) as vc:
            owner = vc.client()
            sid = await owner.create_secret(VALUES, tags={"a": "1"})
            request_id = str(uuid.uuid4())

            async def send(party: int, value: str) -> object:
                args = {"id": sid, "tags": [{"key": "a", "value": value}], "request_id": request_id}
                try:
                    return await owner.call(party, "secrets.tags.set", args)
                except RequestError as exc:
                    return exc

            answers: list[object] = [None, None]

            async def one(party: int) -> None:
                answers[party] = await send(party, str(10 + party))

            async with trio.open_nursery() as nursery:
                for party in range(2):
                    nursery.start_soon(one, party)
            assert all(isinstance(a, RequestError) and a.code == "bad-request" for a in answers)
            assert tags_on(vc, sid) == [{"a": "1"}] * 2


async def test_agreed_changes_apply_everywhere(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_vc(tmp_path, 3) as vc:
            owner, friend = vc.client(), vc.client()
            sid = await owner.create_secret(VALUES, tags={"a": "1"})
            await owner.set_tags(sid, {"b": 2})
            await owner.delete_tags(sid, "a")
            assert tags_on(vc, sid) == [{"b": "2"}] * 3
            await owner.grant(sid, friend.public_key, ["read", "use"])
            await owner.revoke(sid, friend.public_key, ["use"])
            assert grants_on(vc, sid) == [{(friend.public_key, "read")}] * 3
            answers = await call_each(owner, "secrets.delete", {"ids": [sid], "request_id": str(uuid.uuid4())})
            assert answers == [{"deleted": 1}] * 3
