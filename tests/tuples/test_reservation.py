"""The cross-VCP reservation protocol: identical ranges everywhere, never
overlapping, exhaustion and refusal on every VCP, discard on abort and restart."""

from __future__ import annotations

import random
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import trio
from tuples_harness import Cluster, assert_valid, open_cluster

from vcpd.errors import PeerUnavailable, SessionAborted, TuplesExhausted
from vcpd.math.shares import Shares
from vcpd.services.ports import TUPLE_KINDS, Reservation, TupleRange
from vcpd.services.tuples import RESERVE_SESSION_PREFIX
from vcpd.services.tuples import reservation as reservation_module


async def reserve_all(
    c: Cluster, request_id: str, counts: dict[str, int], parties: list[int] | None = None
) -> dict[int, Reservation | BaseException]:
    """Every listed VCP reserves concurrently; results or exceptions by party."""
    out: dict[int, Reservation | BaseException] = {}

    async def one(i: int) -> None:
        try:
            out[i] = await c[i].tuples.reserve(request_id, counts)
        except Exception as exc:
            out[i] = exc

    async with trio.open_nursery() as nursery:
        for i in parties if parties is not None else list(c.vcps):
            nursery.start_soon(one, i)
    return out


def same(results: dict[int, Any]) -> Reservation:
    values = list(results.values())
    assert all(isinstance(v, Reservation) for v in values), values
    assert all(v == values[0] for v in values)
    return values[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("n", [2, 3, 5])
async def test_concurrent_reservations_are_identical_and_disjoint(tmp_path: Path, n: int) -> None:
    rng = random.Random(n)  # test workload only; the protocol's randomness is never seeded
    with trio.fail_after(45):
        async with open_cluster(tmp_path, n) as c:
            stock = {"triple": 1500, "square": 800, "bit": 1500, "inverse": 600, "mask": 1500, "bounded": 800}
            for kind, count in stock.items():
                await c.fill(kind, count // 2)
                await c.fill(kind, count - count // 2)  # two jobs per kind: ranges span jobs
            requests = {
                f"req-{k}": {kind: rng.randint(1, 40) for kind in rng.sample(TUPLE_KINDS, rng.randint(1, 3))}
                for k in range(50)
            }
            results: dict[str, Reservation] = {}

            async def one(request_id: str, counts: dict[str, int]) -> None:
                results[request_id] = same(await reserve_all(c, request_id, counts))

            async with trio.open_nursery() as nursery:
                for request_id, counts in requests.items():
                    nursery.start_soon(one, request_id, counts)

            seen: dict[str, list[tuple[int, int]]] = {}
            for request_id, reservation in results.items():
                assert reservation.counts == requests[request_id]
                kinds = [r.kind for r in reservation.ranges]
                assert kinds == sorted(kinds, key=TUPLE_KINDS.index)
                for r in reservation.ranges:
                    seen.setdefault(r.job_id, []).append((r.offset, r.end))
            for spans in seen.values():
                spans.sort()
                assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))

            taken = {i: {} for i in range(n)}  # type: dict[int, dict[str, Any]]
            for request_id, reservation in results.items():
                for i in range(n):
                    taken[i][request_id] = await c[i].tuples.take(reservation)
            for kind in TUPLE_KINDS:
                per_party = []
                for i in range(n):
                    parts = [taken[i][rid][kind] for rid in sorted(results) if kind in taken[i][rid]]
                    per_party.append([Shares.concat([p[j] for p in parts]) for j in range(len(parts[0]))])
                assert_valid(kind, per_party, c.alpha_shares)
            total = {k: sum(r.get(k, 0) for r in requests.values()) for k in TUPLE_KINDS}
            for i in range(n):
                stock_now = c[i].tuples.statistics().kinds
                for k in TUPLE_KINDS:
                    assert (stock_now[k].available, stock_now[k].reserved, stock_now[k].consumed) == (
                        stock[k] - total[k], 0, total[k]
                    )


async def test_exhaustion_fails_fast_on_every_vcp_and_records_nothing(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            await c.fill("triple", 100)
            await c.fill("bit", 50)
            results = await reserve_all(c, "too-big", {"triple": 10, "bit": 60})
            for i in range(3):
                error = results[i]
                assert isinstance(error, TuplesExhausted), error
                assert (error.kind, error.needed, error.available) == ("bit", 60, 50)
                assert "vcpctl tuples generate bit" in str(error)
                assert "the request also needs triple 10" in str(error)  # every kind, in one error
                stats = c[i].tuples.statistics()
                assert stats.open_reservations == 0
                assert stats.kinds["triple"].available == 100 and stats.kinds["bit"].available == 50
            same(await reserve_all(c, "fits", {"triple": 100, "bit": 50}))
            again = await reserve_all(c, "empty-now", {"mask": 1})
            assert all(isinstance(e, TuplesExhausted) and e.available == 0 for e in again.values())


async def test_follower_refuses_a_range_it_already_recorded(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            job = await c.fill("triple", 1000)
            first = same(await reserve_all(c, "honest", {"triple": 10}))

            def cheat(src: int, dst: int, message: Any) -> Any:
                # A confused leader hands VCP 1 the tuples of "honest" again.
                if message[0] == "m" and message[1] == RESERVE_SESSION_PREFIX + "replay" and message[2] == "ranges":
                    if dst == 1:
                        return ("m", message[1], "ranges", {**message[3], "ranges": [["triple", job, 0, 10]]})
                return message

            c.hub.tamper(cheat)
            results = await reserve_all(c, "replay", {"triple": 10})
            c.hub.tamper(None)
            assert all(isinstance(e, SessionAborted) for e in results.values()), results
            assert "overlaps tuples already reserved" in str(results[0])
            for i in range(3):
                stats = c[i].tuples.statistics()
                assert stats.open_reservations == 1 and stats.kinds["triple"].reserved == 10  # only "honest"
            shares = [await c[i].tuples.take(first) for i in range(3)]
            assert_valid("triple", [s["triple"] for s in shares], c.alpha_shares)
            # The leader burnt the replayed request's tuples: the next one starts after them.
            after = same(await reserve_all(c, "after", {"triple": 5}))
            assert after.ranges == (TupleRange("triple", job, 20, 5),)


async def test_follower_refuses_ranges_in_a_job_it_has_not_activated(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            job = await c.fill("bit", 100, parties=[0, 1])
            await c[2].tuples.create_job(job, "bit", 100, source="test")
            results = await reserve_all(c, "r", {"bit": 5})
            assert all(isinstance(e, SessionAborted) for e in results.values())
            assert "filling on this VCP, not active" in str(results[0])
            assert all(c[i].tuples.statistics().open_reservations == 0 for i in range(3))


async def test_callers_asking_for_different_counts_abort_and_discard(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            await c.fill("mask", 100)
            out: dict[int, Any] = {}

            async def one(i: int, counts: dict[str, int]) -> None:
                try:
                    out[i] = await c[i].tuples.reserve("mismatch", counts)
                except SessionAborted as exc:
                    out[i] = exc

            async with trio.open_nursery() as nursery:
                nursery.start_soon(one, 0, {"mask": 10})
                nursery.start_soon(one, 1, {"mask": 10})
                nursery.start_soon(one, 2, {"mask": 11})
            assert all(isinstance(e, SessionAborted) for e in out.values())
            for i in range(3):
                stats = c[i].tuples.statistics()
                assert stats.open_reservations == 0 and stats.kinds["mask"].reserved == 0
            # Discarded, not returned: VCP 1 had recorded 0..10, the leader burnt them.
            nxt = same(await reserve_all(c, "next", {"mask": 1}))
            assert nxt.ranges[0].offset == 10
            assert c[0].tuples.statistics().kinds["mask"].available == 89


async def test_reusing_a_request_id_is_refused(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 2) as c:
            await c.fill("square", 50)
            same(await reserve_all(c, "once", {"square": 5}))
            again = await reserve_all(c, "once", {"square": 5})
            assert all(isinstance(e, SessionAborted) for e in again.values())
            assert "already used" in str(again[0])
            assert same(await reserve_all(c, "empty", {"square": 0})).ranges == ()
            with pytest.raises(ValueError):
                await c[0].tuples.reserve("bad id", {"square": 1})


@pytest.mark.parametrize("victim", [0, 1])
async def test_vcp_crashing_mid_reservation_never_hands_out_twice(
    tmp_path: Path, victim: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # VCP 2's caller never comes, so the leader's wait for verdicts ends by timeout.
    monkeypatch.setattr(reservation_module, "VERDICT_TIMEOUT", 0.5)
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            await c.fill("triple", 200)
            recorded = trio.Event()
            step = "ranges" if victim == 0 else "verdict"

            def spy(src: int, dst: int, message: Any) -> Any:
                if message[0] == "m" and message[2] == step and src == victim:
                    recorded.set()  # the victim has recorded the ranges durably by now
                return message

            c.hub.tamper(spy)
            out: dict[int, Any] = {}
            callers = {i: trio.CancelScope() for i in (0, 1)}  # the API tasks calling reserve

            async def one(i: int) -> None:
                with callers[i]:
                    try:
                        out[i] = await c[i].tuples.reserve("doomed", {"triple": 30})
                    except (SessionAborted, PeerUnavailable) as exc:
                        out[i] = exc

            async with trio.open_nursery() as nursery:
                for i in (0, 1):  # VCP 2's caller never comes: the session cannot finish
                    nursery.start_soon(one, i)
                await recorded.wait()
                await c.crash(victim)  # store closed first: no clean-up reaches the disk
                callers[victim].cancel()
            c.hub.tamper(None)
            survivor = 1 - victim
            assert isinstance(out[survivor], SessionAborted | PeerUnavailable)
            with closing(sqlite3.connect(c.path(victim))) as db:  # what the crash left on disk
                rows = db.execute("SELECT state FROM tuples_reservation WHERE request_id = 'doomed'").fetchall()
            assert rows == [("open",)]
            await c.start(victim)
            for i in (0, 1):
                stats = c[i].tuples.statistics()
                assert stats.open_reservations == 0 and stats.kinds["triple"].reserved == 0
            after = same(await reserve_all(c, "after", {"triple": 20}, parties=[0, 1, 2]))
            assert after.ranges[0].offset == 30
            shares = [await c[i].tuples.take(after) for i in range(3)]
            assert_valid("triple", [s["triple"] for s in shares], c.alpha_shares)


async def test_silent_follower_times_out_and_everything_is_discarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reservation_module, "VERDICT_TIMEOUT", 0.3)
    monkeypatch.setattr(reservation_module, "GO_TIMEOUT", 5.0)
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            await c.fill("bit", 100)
            results = await reserve_all(c, "lonely", {"bit": 7}, parties=[0, 1])
            assert all(isinstance(e, SessionAborted) for e in results.values())
            assert "in time" in str(results[0])
            for i in (0, 1):
                assert c[i].tuples.statistics().kinds["bit"].reserved == 0
            assert c[0].tuples.statistics().kinds["bit"].available == 93


async def test_isolated_follower_fails_the_reservation(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            await c.fill("mask", 100)
            c.hub.isolate(2)
            results = await reserve_all(c, "cut", {"mask": 3})
            assert all(isinstance(e, SessionAborted | PeerUnavailable) for e in results.values()), results
            assert isinstance(results[2], PeerUnavailable) and results[2].peer == 0
            for i in range(3):
                assert c[i].tuples.statistics().open_reservations == 0


# ---------------------------------------------------------------- reserve_and_take (one step)


async def take_all(
    c: Cluster, request_id: str, counts: dict[str, int], parties: list[int] | None = None
) -> dict[int, dict[str, list[Shares]] | BaseException]:
    """Every listed VCP reserves and takes at once, concurrently."""
    out: dict[int, dict[str, list[Shares]] | BaseException] = {}

    async def one(i: int) -> None:
        try:
            out[i] = await c[i].tuples.reserve_and_take(request_id, counts)
        except Exception as exc:
            out[i] = exc

    async with trio.open_nursery() as nursery:
        for i in parties if parties is not None else list(c.vcps):
            nursery.start_soon(one, i)
    return out


@pytest.mark.parametrize("n", [2, 3])
async def test_reserve_and_take_hands_every_vcp_the_same_fresh_tuples_once(tmp_path: Path, n: int) -> None:
    with trio.fail_after(45):
        async with open_cluster(tmp_path, n) as c:
            await c.fill("triple", 300)
            await c.fill("triple", 200)  # a second job: ranges span jobs
            await c.fill("mask", 500)
            requests = {f"take-{k}": {"triple": 30 + k, "mask": 7 * k + 1} for k in range(12)}
            results: dict[str, dict[int, Any]] = {}

            async def one(request_id: str, counts: dict[str, int]) -> None:
                results[request_id] = await take_all(c, request_id, counts)

            async with trio.open_nursery() as nursery:
                for request_id, counts in requests.items():
                    nursery.start_soon(one, request_id, counts)
            for kind in ("triple", "mask"):
                per_party = []
                for i in range(n):
                    parts = [results[rid][i][kind] for rid in sorted(requests)]
                    assert all(len(p[0]) == requests[rid][kind] for p, rid in zip(parts, sorted(requests)))
                    per_party.append([Shares.concat([p[j] for p in parts]) for j in range(len(parts[0]))])
                assert_valid(kind, per_party, c.alpha_shares)  # same tuples everywhere, MACs consistent
                # Never handed out twice: all values are distinct (128-bit uniform never collide).
                first = per_party[0][0]
                values = reconstruct_values([pp[0] for pp in per_party])
                assert len(set(values)) == len(first)
            used = {k: sum(r[k] for r in requests.values()) for k in ("triple", "mask")}
            for i in range(n):
                stats = c[i].tuples.statistics()
                assert stats.open_reservations == 0
                assert stats.kinds["triple"].consumed == used["triple"] and stats.kinds["mask"].consumed == used["mask"]
                assert stats.kinds["triple"].reserved == 0 and stats.kinds["triple"].available == 500 - used["triple"]
            # The ordinary two-step reservation carries on after them.
            after = same(await reserve_all(c, "after", {"mask": 3}))
            assert after.ranges[0].offset == used["mask"]


def reconstruct_values(shares: list[Shares]) -> list[int]:
    total = shares[0].values
    for s in shares[1:]:
        total = total + s.values
    return total.to_ints()


async def test_reserve_and_take_exhaustion_is_reported_everywhere(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            await c.fill("mask", 10)
            results = await take_all(c, "too-many", {"mask": 11})
            for i in range(3):
                error = results[i]
                assert isinstance(error, TuplesExhausted), error
                assert (error.kind, error.needed, error.available) == ("mask", 11, 10)
                assert c[i].tuples.statistics().kinds["mask"].available == 10
            assert all(isinstance(r, dict) for r in (await take_all(c, "fits", {"mask": 10})).values())


async def test_taking_and_two_step_reservations_never_mix(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            await c.fill("mask", 100)
            out: dict[int, Any] = {}

            async def taking(i: int) -> None:
                try:
                    out[i] = await c[i].tuples.reserve_and_take("mixed", {"mask": 5})
                except (SessionAborted, PeerUnavailable) as exc:
                    out[i] = exc

            async def two_step(i: int) -> None:
                try:
                    out[i] = await c[i].tuples.reserve("mixed", {"mask": 5})
                except (SessionAborted, PeerUnavailable) as exc:
                    out[i] = exc

            async with trio.open_nursery() as nursery:
                nursery.start_soon(taking, 0)  # the leader takes at once ...
                nursery.start_soon(two_step, 1)  # ... but this follower's caller would take later
                nursery.start_soon(taking, 2)
            assert isinstance(out[1], SessionAborted) and "takes later" in str(out[1])
            # VCP 2 took its shares; VCP 1 recorded nothing: its tuples are gone on VCPs 0 and 2 only.
            assert c[1].tuples.statistics().kinds["mask"].reserved == 0
            assert c[1].tuples.statistics().kinds["mask"].consumed == 0
            # Whatever was handed out stays burnt: the next request starts after it, everywhere.
            nxt = await take_all(c, "next", {"mask": 1})
            assert all(isinstance(r, dict) for r in nxt.values())
            assert_valid("mask", [nxt[i]["mask"] for i in range(3)], c.alpha_shares)


async def test_taking_follower_refuses_a_range_it_already_used(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            job = await c.fill("triple", 1000)
            first = await take_all(c, "honest", {"triple": 10})
            assert all(isinstance(r, dict) for r in first.values())

            def cheat(src: int, dst: int, message: Any) -> Any:
                # A confused (or crashed and restarted) leader hands VCP 2 the tuples of "honest" again.
                if message[0] == "m" and message[1] == RESERVE_SESSION_PREFIX + "replay" and message[2] == "ranges":
                    if dst == 2:
                        return ("m", message[1], "ranges", {**message[3], "ranges": [["triple", job, 0, 10]]})
                return message

            c.hub.tamper(cheat)
            results = await take_all(c, "replay", {"triple": 10})
            c.hub.tamper(None)
            assert isinstance(results[2], SessionAborted)
            assert "overlaps tuples already reserved" in str(results[2])
            for i in (0, 1):  # they took fresh tuples 10..20: burnt, as the caller's session fails on VCP 2
                assert isinstance(results[i], dict)
            assert c[2].tuples.statistics().kinds["triple"].consumed == 10  # "honest" only, nothing twice
            after = await take_all(c, "after", {"triple": 5})
            assert all(isinstance(r, dict) for r in after.values())
            assert_valid("triple", [after[i]["triple"] for i in range(3)], c.alpha_shares)


async def test_ranges_sent_before_a_leader_commit_that_never_happens_are_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leader announces its ranges before its write commits; if that write
    is lost (a crash), a follower that used them refuses them when the leader,
    its cursor back, assigns them again -- once; then all is well."""
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            job = await c.fill("mask", 100)
            original = reservation_module._assign_and_consume

            def lost(conn: sqlite3.Connection, request_id: str, counts: dict[str, int], announce: Any) -> Any:
                original(conn, request_id, counts, announce)
                raise sqlite3.OperationalError("disk I/O error (the leader's commit never happens)")

            monkeypatch.setattr(reservation_module, "_assign_and_consume", lost)
            first = await take_all(c, "lost", {"mask": 4})
            monkeypatch.setattr(reservation_module, "_assign_and_consume", original)
            assert not isinstance(first[0], dict)  # the leader failed: its caller's session fails everywhere
            assert c[0].tuples.statistics().kinds["mask"].consumed == 0
            # A follower that got the ranges before the leader's abort took 0..4 durably.
            took = [i for i in (1, 2) if isinstance(first[i], dict)]
            assert all(c[i].tuples.statistics().kinds["mask"].consumed == (4 if i in took else 0) for i in (1, 2))
            again = await take_all(c, "again", {"mask": 4})  # the leader assigns 0..4 again
            for i in (1, 2):
                if i in took:
                    assert isinstance(again[i], SessionAborted), again
                    assert "overlaps tuples already reserved" in str(again[i])
                else:
                    assert isinstance(again[i], dict), again
            assert isinstance(again[0], dict)  # on the leader they are used now: its cursor is past them
            third = await take_all(c, "third", {"mask": 4})
            assert all(isinstance(r, dict) for r in third.values())
            assert_valid("mask", [third[i]["mask"] for i in range(3)], c.alpha_shares)
            # 0..4 were used at most once on every VCP, whatever happened; 4..8 once everywhere.
            assert c[0].tuples.statistics().kinds["mask"].consumed == 8
            for i in (1, 2):
                assert c[i].tuples.statistics().kinds["mask"].consumed == 8
            assert (await c[0].tuples.job(job)).used == 8  # type: ignore[union-attr]
