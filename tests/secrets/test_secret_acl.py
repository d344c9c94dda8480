"""Access control, decided by every VCP on its own; the executor's SecretSource."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from secret_vc import FIELD, open_vc
from vcpd.errors import RequestError
from vcpd.math import check_macs, reconstruct
from vcpd.services.ports import SecretEncoding, SecretSource
from vcpd.services.secrets import SecretStore


async def code_of(awaitable: object) -> str:
    with pytest.raises(RequestError) as info:
        await awaitable  # type: ignore[misc]
    return info.value.code


async def test_strangers_can_do_nothing_and_see_nothing(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 2) as vc:
            owner, stranger = vc.client(), vc.client()
            sid = await owner.create_secret([1, 2], tags={"a": "b"})
            assert await code_of(stranger.get_secret(sid)) == "not-found"
            assert await code_of(stranger.get_tags(sid)) == "not-found"
            assert await code_of(stranger.set_tags(sid, {"x": "y"})) == "not-found"
            assert await code_of(stranger.delete_tags(sid, ["a"])) == "not-found"
            assert await code_of(stranger.delete_secrets([sid])) == "not-found"
            assert await code_of(stranger.grant(sid, stranger.public_key, ["read"])) == "not-found"
            assert await code_of(stranger.revoke(sid, owner.public_key, ["read"])) == "not-found"
            assert await code_of(vc.services[0].load_for_use([sid], stranger.public_key)) == "not-found"
            assert (await stranger.list_secrets()).total == 0
            # The secret is unharmed.
            assert (await owner.get_secret(sid)).values == [1, 2]
            assert (await owner.get_tags(sid))["a"] == "b"


async def test_grant_then_revoke(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 3) as vc:
            owner, friend = vc.client(), vc.client()
            sid = await owner.create_secret([42])
            await owner.grant(sid, friend.public_key, ["read"])
            assert (await friend.get_secret(sid)).values == [42]
            assert [i.id for i in (await friend.list_secrets()).items] == [sid]
            # Holding a right reveals existence, so missing rights are 'forbidden' now.
            assert await code_of(friend.set_tags(sid, {"x": "1"})) == "forbidden"
            assert await code_of(friend.delete_secrets(sid)) == "forbidden"
            assert await code_of(friend.grant(sid, friend.public_key, ["tag"])) == "forbidden"
            assert await code_of(vc.services[1].load_for_use([sid], friend.public_key)) == "forbidden"
            await owner.grant(sid, friend.public_key, ["tag", "use"])
            assert await owner.get_grants(sid) == {friend.public_key: ["read", "tag", "use"]}
            await friend.set_tags(sid, {"x": 1})
            assert (await owner.get_tags(sid))["x"] == 1
            (shares, encoding), = await vc.services[1].load_for_use([sid], friend.public_key)
            assert encoding == SecretEncoding("int64", 0) and len(shares) == 1
            await owner.revoke(sid, friend.public_key, ["read", "tag", "use"])
            assert await owner.get_grants(sid) == {}
            assert await code_of(friend.get_secret(sid)) == "not-found"
            assert (await friend.list_secrets()).total == 0
            await owner.grant(sid, friend.public_key, "delete")
            assert await code_of(friend.get_secret(sid)) == "forbidden"
            assert await friend.delete_secrets(sid) == 1
            assert await code_of(owner.get_secret(sid)) == "not-found"


async def test_admin_keys_get_no_access_without_a_grant(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 2) as vc:
            owner, admin = vc.client(), vc.client(vc.admin_key)
            assert vc.dispatchers[0].caller(admin.public_key).is_admin
            sid = await owner.create_secret([7])
            assert await code_of(admin.get_secret(sid)) == "not-found"
            assert await code_of(admin.delete_secrets([sid])) == "not-found"
            assert (await admin.list_secrets()).total == 0
            await owner.grant(sid, admin.public_key, ["read"])
            assert (await admin.get_secret(sid)).values == [7]


async def test_use_right_without_read(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 2) as vc:
            owner, program = vc.client(), vc.client()
            a = await owner.create_secret([5, 6])
            b = await owner.create_secret([1.5], encoding="fixed", fraction_bits=8)
            await owner.grant(a, program.public_key, ["use"])
            await owner.grant(b, program.public_key, ["use"])
            assert await code_of(program.get_secret(a)) == "forbidden"
            loaded = [await s.load_for_use([a, b], program.public_key) for s in vc.services]
            assert reconstruct([party[0][0] for party in loaded]).to_ints() == [5, 6]
            assert check_macs([party[1][0] for party in loaded], vc.dealer.alpha_shares)
            assert loaded[0][1][1] == SecretEncoding("fixed", 8)
            assert await code_of(vc.services[0].load_for_use(["not-a-uuid"], owner.public_key)) == "bad-request"


async def test_store_result_on_every_vcp(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 3) as vc:
            owner, executor_client = vc.client(), vc.client()
            sid = await owner.create_secret([4, 5])
            await owner.grant(sid, executor_client.public_key, ["use"])
            inputs = [(await s.load_for_use([sid], executor_client.public_key))[0][0] for s in vc.services]
            doubled = [shares * 2 for shares in inputs]  # a linear "program": no opening, so no check needed
            sources: list[SecretSource] = list(vc.services)
            tags = {"derived-from": sid, "program": "double", "execution": 1}
            ids: list[str] = [""] * 3

            async def store(party: int) -> None:
                key = executor_client.public_key
                ids[party] = await sources[party].store_result(key, doubled[party], "int64", tags)

            async with trio.open_nursery() as nursery:
                for party in range(3):
                    nursery.start_soon(store, party)
            assert len(set(ids)) == 1
            result = await executor_client.get_secret(ids[0])
            assert result.values == [8, 10] and result.owner == executor_client.public_key
            assert result.tags["derived-from"] == sid and result.tags["execution"] == 1
            assert await code_of(owner.get_secret(ids[0])) == "not-found"  # owned by the executing client
            # Storing the same result again is a conflict everywhere.
            errors: list[str] = []

            async def again(party: int) -> None:
                key = executor_client.public_key
                errors.append(await code_of(sources[party].store_result(key, doubled[party], "int64", tags)))

            async with trio.open_nursery() as nursery:
                for party in range(3):
                    nursery.start_soon(again, party)
            assert errors == ["conflict"] * 3
            with pytest.raises(RequestError, match="reserved"):
                await vc.services[0].store_result(owner.public_key, doubled[0], "int64", {"owner": "me"})


async def test_store_result_disagreement_stores_nothing(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 2) as vc:
            key = vc.client().public_key
            shares = [FIELD.from_ints([1])] * 2
            from vcpd.math import Shares

            results: list[str] = []

            async def store(party: int, program: str) -> None:
                service: SecretStore = vc.services[party]
                try:
                    await service.store_result(
                        key, Shares(shares[party], shares[party]), "int64", {"program": program},
                        secret_id="5d2c8a4e-1f3b-4c6d-8e9f-0a1b2c3d4e5f",
                    )
                except RequestError as exc:
                    results.append(exc.code)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(store, 0, "a")
                nursery.start_soon(store, 1, "b")
            assert results == ["aborted", "aborted"]
