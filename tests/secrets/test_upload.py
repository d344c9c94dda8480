"""Verified upload over 2 and 3 in-memory VCPs with real SQLite stores."""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from secret_vc import FIELD, VC, FakeClient, call_each, count_rows, delete_behind_the_back, open_vc
from vcpd.client.secrets import verify_masks
from vcpd.errors import IntegrityError, RequestError
from vcpd.math import Shares, check_macs, reconstruct
from vcpd.services.secrets import DOWNLOAD_TUPLES_PER_ELEMENT, UPLOAD_TUPLES_PER_ELEMENT

INT64 = [0, 1, -1, 2**63 - 1, -(2**63), 123456789, -987654321]


async def stored_shares(vc: VC, secret_id: str) -> list[Shares]:
    result = []
    for service in vc.services:
        (shares, _), = await service.load_for_use([secret_id], _owner_of(vc, secret_id))
        result.append(shares)
    return result


def _owner_of(vc: VC, secret_id: str) -> str:
    import sqlite3

    with sqlite3.connect(vc.paths[0]) as conn:
        return str(conn.execute("SELECT owner FROM secrets_secret WHERE id = ?", (secret_id,)).fetchone()[0])


async def begin(client: FakeClient, n: int, secret_id: str | None = None) -> tuple[str, str, Any]:
    sid = secret_id or str(uuid.uuid4())
    rid = str(uuid.uuid4())
    answers = await client.call_all("secrets.upload.begin", {"id": sid, "count": n, "request_id": rid})
    return sid, rid, verify_masks(FIELD, answers, n)


def rows(vc: VC) -> list[int]:
    return [count_rows(path, "secrets_secret") for path in vc.paths]


@pytest.mark.parametrize("n_parties", [2, 3])
async def test_round_trip_of_every_encoding(tmp_path: Path, n_parties: int) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, n_parties) as vc:
            client = vc.client()
            ints = await client.create_secret(INT64, tags={"kind": "ints", "n": 7})
            raw = await client.create_secret([0, FIELD.p - 1, 42], encoding="field")
            reals = [0.0, -1.25, 3.14159, 1e6, -(2.0**-16), 123.456]
            fixed = await client.create_secret(reals, encoding="fixed", fraction_bits=16)
            fine = await client.create_secret([0.1, -0.3], encoding="fixed", fraction_bits=40)

            got = await client.get_secret(ints)
            assert got.values == INT64 and got.encoding == "int64"
            assert got.tags["kind"] == "ints" and got.tags["n"] == 7
            assert got.owner == client.public_key and isinstance(got.creation_date, int)
            assert (await client.get_secret(raw)).values == [0, FIELD.p - 1, 42]
            got_fixed = await client.get_secret(fixed)
            assert got_fixed.encoding == "fixed" and got_fixed.fraction_bits == 16
            assert all(math.isclose(a, b, abs_tol=2**-16) for a, b in zip(reals, got_fixed.values, strict=True))
            got_fine = await client.get_secret(fine)
            assert all(math.isclose(a, b, abs_tol=2**-40) for a, b in zip([0.1, -0.3], got_fine.values, strict=True))

            # Stored shares satisfy x = Σx_i and Σm_i = α·x (x_i = a_i + [i=0]μ, m_i = m_i(a) + α_i μ).
            shares = await stored_shares(vc, ints)
            assert reconstruct(shares).to_signed(64) == INT64
            assert check_macs(shares, vc.dealer.alpha_shares)

            # Tuple budget: per element 1 triple per upload; 2 triples per download.
            n_up = len(INT64) + 3 + len(reals) + 2
            n_down = n_up
            assert UPLOAD_TUPLES_PER_ELEMENT == {"triple": 1}
            assert DOWNLOAD_TUPLES_PER_ELEMENT == {"triple": 2}
            assert got.tuples == {"triple": 2 * len(INT64)}
            for party in range(n_parties):
                assert vc.dealer.consumed[party] == {"triple": n_up + 2 * n_down}
            assert vc.services[0].statistics()["uploads_committed"] == 4


async def test_client_sending_different_mu_stores_nothing(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 3) as vc:
            client = vc.client()
            sid, rid, masks = await begin(client, 2)
            mu = (FIELD.from_ints([10, 20]) - masks).to_bytes()
            other = (FIELD.from_ints([10, 21]) - masks).to_bytes()
            commit = {"id": sid, "request_id": rid, "tags": [], "encoding": "int64"}
            per_party = [{**commit, "mu": mu}, {**commit, "mu": mu}, {**commit, "mu": other}]
            with pytest.raises(RequestError, match="received different commits") as info:
                await client.call_all("secrets.upload.commit", per_party)
            assert info.value.code == "bad-request"
            assert rows(vc) == [0, 0, 0]
            assert all(s.statistics()["uploads_pending"] == 0 for s in vc.services)
            # The masks are burnt: even a consistent retry of that upload is refused.
            with pytest.raises(RequestError, match="used before") as info:
                await client.call_all("secrets.upload.commit", {**commit, "mu": mu})
            assert info.value.code == "conflict"
            # Different tags count as different commits too.
            sid, rid, masks = await begin(client, 1)
            commit = {"id": sid, "request_id": rid, "mu": (FIELD.from_ints([1]) - masks).to_bytes()}
            per_party = [{**commit, "tags": [{"key": "a", "value": str(i)}]} for i in range(3)]
            with pytest.raises(RequestError, match="received different commits"):
                await client.call_all("secrets.upload.commit", per_party)
            assert rows(vc) == [0, 0, 0]
            # Both uploads' triples are consumed, once, on every VCP.
            assert all(vc.dealer.consumed[p] == {"triple": 3} for p in range(3))


async def test_abandoned_upload_expires_and_its_masks_are_never_reused(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    async with open_vc(tmp_path, 2, commit_timeout=300.0) as vc:
        client = vc.client()
        sid, rid, _ = await begin(client, 3)  # ... and the client goes away
        assert [s.statistics()["uploads_pending"] for s in vc.services] == [1, 1]
        first_request = vc.dealer.requests[-1]
        mock_clock.jump(301)
        assert [s.statistics()["uploads_pending"] for s in vc.services] == [0, 0]
        with pytest.raises(RequestError, match="expire after 300 s") as info:
            await client.call_all(
                "secrets.upload.commit", {"id": sid, "request_id": rid, "mu": bytes(48)}
            )
        assert info.value.code == "not-found"
        assert rows(vc) == [0, 0]
        # The same id can be uploaded afresh, with new masks.
        assert await client.create_secret([1, 2, 3], secret_id=sid) == sid
        assert (await client.get_secret(sid)).values == [1, 2, 3]
        second_request = vc.dealer.requests[1]
        assert second_request != first_request
        assert set(vc.dealer.reconstruct_triples(first_request)[0]).isdisjoint(
            vc.dealer.reconstruct_triples(second_request)[0]
        )
        for party in range(2):
            taken = vc.dealer.taken[party]
            assert len(taken) == len(set(taken)) == 3  # begin, begin, get: each reservation taken once
        assert vc.services[0].statistics()["uploads_expired"] == 1


async def test_client_vanishing_during_begin_leaves_nothing(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 2) as vc:
            client = vc.client()
            sid, rid = str(uuid.uuid4()), str(uuid.uuid4())
            args = {"id": sid, "count": 2, "request_id": rid}
            scope = trio.CancelScope()

            def watch(src: int, dst: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
                if message[0] == "m" and src == 1 and str(message[2]).startswith("secrets.agree"):
                    scope.cancel()  # the connection to VCP 0 drops while the VCPs agree and take
                return message

            vc.hub.tamper(watch)
            errors: list[BaseException] = []

            async def party0() -> None:
                with scope:
                    await client.call(0, "secrets.upload.begin", args)

            async def party1() -> None:
                try:
                    await client.call(1, "secrets.upload.begin", args)
                except RequestError as exc:
                    errors.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(party0)
                nursery.start_soon(party1)
            assert scope.cancelled_caught
            # VCP 1 either saw the session abort or finished its begin before the
            # cancellation reached VCP 0 (begin has no step after the agreement);
            # either way a commit cannot succeed and clears what is pending.
            assert [e.code for e in errors] in ([], ["aborted"])  # type: ignore[attr-defined]
            assert vc.services[0].statistics()["uploads_pending"] == 0
            vc.hub.tamper(None)
            with pytest.raises(RequestError) as info:
                await client.call_all("secrets.upload.commit", {"id": sid, "request_id": rid, "mu": bytes(32)})
            assert info.value.code in ("not-found", "conflict")
            assert [s.statistics()["uploads_pending"] for s in vc.services] == [0, 0]
            assert rows(vc) == [0, 0]
            # Whatever either VCP reserved is burnt: taken (consumed) or discarded, never handed out again.
            for party in range(2):
                assert vc.dealer.taken[party] + vc.dealer.discarded[party] in (
                    [f"secrets.upload/{rid}"],
                    [f"secrets.upload/{rid}"] * 2,
                )
            assert (await client.get_secret(await client.create_secret([5], secret_id=sid))).values == [5]
            assert f"secrets.upload/{rid}" not in vc.dealer.taken[0][1:]


async def test_duplicate_id_is_a_conflict_everywhere(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 3) as vc:
            client = vc.client()
            sid = await client.create_secret([7])
            with pytest.raises(RequestError, match="already exists") as info:
                await client.create_secret([8], secret_id=sid)
            assert info.value.code == "conflict"
            # Known to one VCP only: the others refuse promptly too (agreement first).
            delete_behind_the_back(vc.paths[2], sid)
            delete_behind_the_back(vc.paths[1], sid)
            with pytest.raises(RequestError) as info:
                await client.create_secret([8], secret_id=sid)
            assert info.value.code == "conflict"
            assert [s.statistics()["uploads_pending"] for s in vc.services] == [0, 0, 0]
            assert rows(vc) == [1, 0, 0]


@pytest.mark.parametrize("liar", [0, 2])
@pytest.mark.parametrize("fields", [("a",), ("b",), ("c",), ("a", "c"), ("a", "b", "c")])
async def test_a_vcp_lying_about_its_triple_shares_is_caught_before_mu_is_sent(
    tmp_path: Path, fields: tuple[str, ...], liar: int
) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 3) as vc:
            client = vc.client()
            shift = FIELD.from_ints([0, 7, 0])  # the second element only

            def lie(party: int, op: str, answer: Any) -> Any:
                if party == liar and op == "secrets.upload.begin":
                    for name in fields:
                        answer[name] = (FIELD.from_bytes(answer[name]) + shift).to_bytes()
                return answer

            vc.answer_tamper = lie
            with pytest.raises(IntegrityError, match="input-mask check") as info:
                await client.create_secret([1, 2, 3])
            assert "nothing was sent" in str(info.value)
            assert not [c for c in client.calls if c[1] == "secrets.upload.commit"]
            assert rows(vc) == [0, 0, 0]
            # The triples are consumed on every VCP all the same.
            assert all(vc.dealer.consumed[p] == {"triple": 3} for p in range(3))


@pytest.mark.parametrize("knows_b", [False, True])
async def test_shifting_a_and_c_consistently_needs_b(tmp_path: Path, knows_b: bool) -> None:
    """The attack the check stops: a + δ passes only with c + δ·b, and no VCP knows b.

    VCP 1 shifts its shares of a by δ and of c by δ·b̃. With b̃ its own share of
    b (all it knows) the client refuses; with the true b (an oracle only the
    test's dealer has) the check passes and the stored secret is x − δ -- so
    the check is exactly what stands between a lying VCP and a wrong input.
    """
    with trio.fail_after(30):
        async with open_vc(tmp_path, 2) as vc:
            client = vc.client()
            delta = FIELD.from_ints([5])

            def lie(party: int, op: str, answer: Any) -> Any:
                if party == 1 and op == "secrets.upload.begin":
                    if knows_b:
                        b = FIELD.from_ints([vc.dealer.reconstruct_triples(vc.dealer.requests[-1])[1][0]])
                    else:
                        b = FIELD.from_bytes(answer["b"])
                    answer["a"] = (FIELD.from_bytes(answer["a"]) + delta).to_bytes()
                    answer["c"] = (FIELD.from_bytes(answer["c"]) + delta * b).to_bytes()
                return answer

            vc.answer_tamper = lie
            if not knows_b:
                with pytest.raises(IntegrityError, match="input-mask check"):
                    await client.create_secret([42])
                assert rows(vc) == [0, 0]
                return
            sid = await client.create_secret([42])
            vc.answer_tamper = None
            assert (await client.get_secret(sid)).values == [42 - 5]


async def test_one_vcp_failing_to_store_means_stored_nowhere(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 3) as vc:
            client = vc.client()
            sid, rid, masks = await begin(client, 1)
            # Something else takes the id on VCP 2 between begin and commit.
            import sqlite3

            with sqlite3.connect(vc.paths[2]) as conn:
                conn.execute(
                    "INSERT INTO secrets_secret VALUES (?, 'x', 0, 'int64', 0, 1, ?)", (sid, bytes(32))
                )
            mu = (FIELD.from_ints([9]) - masks).to_bytes()
            with pytest.raises(RequestError) as info:
                await client.call_all("secrets.upload.commit", {"id": sid, "request_id": rid, "mu": mu})
            assert info.value.code in ("conflict", "aborted")
            assert rows(vc) == [0, 0, 1]


async def test_commit_checks(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 2) as vc:
            alice, mallory = vc.client(), vc.client()
            sid, rid, masks = await begin(alice, 2)
            mu = (FIELD.from_ints([1, 2]) - masks).to_bytes()
            with pytest.raises(RequestError, match="no upload of secret") as info:
                await mallory.call_all("secrets.upload.commit", {"id": sid, "request_id": rid, "mu": mu})
            assert info.value.code == "not-found"
            with pytest.raises(RequestError, match="mu has 1 elements but the upload began with 2") as info:
                await alice.call_all("secrets.upload.commit", {"id": sid, "request_id": rid, "mu": mu[:16]})
            assert info.value.code == "bad-request"
            assert rows(vc) == [0, 0]
            with pytest.raises(RequestError, match="count must be an integer"):
                await alice.call_all("secrets.upload.begin", {"id": sid, "count": 0, "request_id": rid})
            with pytest.raises(RequestError, match="unknown argument"):
                await alice.call_all("secrets.upload.begin", {"id": sid, "count": 1, "request_id": rid, "x": 1})


async def test_tuples_exhausted_is_reported_and_leaves_nothing_pending(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 2) as vc:
            client = vc.client()
            vc.dealer.fail_reserve = "mask"
            with pytest.raises(RequestError, match="not enough mask tuples") as info:
                await client.create_secret([1, 2, 3])
            assert info.value.code == "tuples-exhausted"
            assert [s.statistics()["uploads_pending"] for s in vc.services] == [0, 0]
            vc.dealer.fail_reserve = None
            sid = await client.create_secret([1, 2, 3])
            vc.dealer.fail_reserve = "triple"
            with pytest.raises(RequestError) as info:
                await client.get_secret(sid)
            assert info.value.code == "tuples-exhausted"
