"""Tuple store storage: layout, chunk checks, job lifecycle, consumption,
recovery, telemetry and the storage overhead."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from tuples_harness import FIELD, MIGRATIONS, assert_valid, open_cluster

from vcpd.errors import FieldError, VcpInternalError
from vcpd.math.shares import Shares
from vcpd.services.generator import deal_batch
from vcpd.services.ports import TUPLE_KINDS, Reservation, TupleRange
from vcpd.services.tuples import KINDS, TupleStore
from vcpd.services.tuples.kinds import check_counts, check_words, pack_tuples, unpack_tuples
from vcpd.store import open_store
from vcpd.testing import open_memory_transports


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(TUPLE_KINDS), n=st.integers(1, 600))
def test_pack_unpack_roundtrip_is_the_mpspdz_layout(kind: str, n: int) -> None:
    spec = KINDS[kind]
    components = [Shares(FIELD.random(n), FIELD.random(n)) for _ in range(spec.arity)]
    data = pack_tuples(components)
    assert len(data) == n * spec.tuple_bytes
    # value ‖ MAC per component, components in order, tuples concatenated
    first = b"".join(c.values[0].to_bytes() + c.macs[0].to_bytes() for c in components)
    assert data[: spec.tuple_bytes] == first
    back = unpack_tuples(FIELD, spec, data)
    assert all(a.equals(b) for a, b in zip(back, components))


def test_check_words_and_counts() -> None:
    good = FIELD.random(1000).to_bytes()
    check_words(FIELD, good)
    bad = bytearray(good)
    bad[16 * 7 : 16 * 8] = FIELD.p.to_bytes(16, "little")  # exactly p: not an element
    with pytest.raises(FieldError, match="element 7"):
        check_words(FIELD, bytes(bad))
    with pytest.raises(FieldError, match="multiple of 16"):
        check_words(FIELD, good[:-1])
    assert check_counts({"mask": 3, "triple": 2, "bit": 0}) == {"triple": 2, "mask": 3}
    for wrong in ({"pairs": 1}, {"triple": -1}, {"triple": 1.5}, {"triple": True}):
        with pytest.raises(ValueError):
            check_counts(wrong)  # type: ignore[arg-type]


async def test_job_lifecycle_and_chunk_checks(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_memory_transports(1) as hub, open_store(tmp_path / "s.sqlite3", MIGRATIONS) as store:
            ts = TupleStore(store, hub.transports[0], FIELD, 0, 1)
            await ts.recover()
            await ts.create_job("job-1", "square", 100, source="test")
            with pytest.raises(ValueError, match="already exists"):
                await ts.create_job("job-1", "square", 100, source="test")
            chunk = FIELD.random(60 * 4).to_bytes()  # 60 squares: 2 components × (value, MAC)
            with pytest.raises(ValueError, match="chunks go in order"):
                await ts.store_chunk("job-1", 10, 60, chunk)
            with pytest.raises(ValueError, match="bytes for 50"):
                await ts.store_chunk("job-1", 0, 50, chunk)
            with pytest.raises(ValueError, match="do not fit"):
                await ts.store_chunk("job-1", 0, 101, FIELD.random(101 * 4).to_bytes())
            bad = bytearray(chunk)
            bad[-16:] = b"\xff" * 16
            with pytest.raises(FieldError):
                await ts.store_chunk("job-1", 0, 60, bytes(bad))
            assert await ts.store_chunk("job-1", 0, 60, chunk) == 60
            with pytest.raises(ValueError, match="cannot be activated"):
                await ts.activate_job("job-1")
            assert ts.available()["square"] == 0
            assert await ts.store_chunk("job-1", 60, 40, FIELD.random(40 * 4).to_bytes()) == 100
            await ts.activate_job("job-1")
            await ts.activate_job("job-1")  # idempotent
            assert ts.available()["square"] == 100
            job = await ts.job("job-1")
            assert job is not None and (job.state, job.stored, job.source) == ("active", 100, "test")
            await ts.delete_job("job-1")
            assert ts.available()["square"] == 0
            assert (await ts.job("job-1")).state == "failed"  # type: ignore[union-attr]
            with pytest.raises(ValueError, match="failed"):
                await ts.store_chunk("job-1", 100, 1, FIELD.random(4).to_bytes())
            with pytest.raises(ValueError):
                await ts.create_job("bad id with spaces", "triple", 1, source="test")
            with pytest.raises(ValueError, match="unknown tuple kind"):
                await ts.create_job("job-2", "pair", 1, source="test")


async def test_storage_overhead_is_at_most_5_percent(tmp_path: Path) -> None:
    count, chunk = 200_000, 1 << 15
    path = tmp_path / "overhead.sqlite3"
    with trio.fail_after(60):
        async with open_memory_transports(1) as hub, open_store(path, MIGRATIONS) as store:
            ts = TupleStore(store, hub.transports[0], FIELD, 0, 1)
            await ts.recover()
            await ts.create_job("big", "triple", count, source="test")
            for offset in range(0, count, chunk):
                n = min(chunk, count - offset)
                await ts.store_chunk("big", offset, n, FIELD.random(6 * n).to_bytes())
            await ts.activate_job("big")
    # open_store's exit checkpoints the WAL into the main file.
    assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0
    raw = count * KINDS["triple"].tuple_bytes
    assert path.stat().st_size <= 1.05 * raw, path.stat().st_size / raw


async def test_take_is_single_use_and_retires_finished_jobs(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 2) as c:
            job = await c.fill("inverse", 300)
            reservations = await _reserve_all(c, "a", {"inverse": 300})
            shares = [await c[i].tuples.take(reservations[i]) for i in range(2)]
            assert_valid("inverse", [s["inverse"] for s in shares], c.alpha_shares)
            with pytest.raises(VcpInternalError, match="consumed"):
                await c[0].tuples.take(reservations[0])
            forged = Reservation("a", (TupleRange("inverse", job, 0, 300),))
            with pytest.raises(VcpInternalError):
                await c[1].tuples.take(forged)
            for i in range(2):
                stored = await c[i].tuples.job(job)
                assert stored is not None and stored.state == "retired" and stored.consumed == 300
                chunks = await c[i].store.read(
                    lambda conn: conn.execute("SELECT COUNT(*) FROM tuples_chunk").fetchone()[0]
                )
                assert chunks == 0  # consumed shares do not linger on disk
                stats = c[i].tuples.statistics().kinds["inverse"]
                assert (stats.available, stats.reserved, stats.consumed) == (0, 0, 300)


async def test_restart_discards_open_reservations_and_incomplete_jobs(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 2) as c:
            await c.fill("triple", 100)
            reservations = await _reserve_all(c, "open-one", {"triple": 40})
            await c[1].tuples.create_job("half", "bit", 10, source="test")
            await c[1].tuples.store_chunk("half", 0, 5, FIELD.random(10).to_bytes())
            for i in range(2):
                assert c[i].tuples.statistics().kinds["triple"].reserved == 40
                await c.crash(i)
                await c.start(i)
                stats = c[i].tuples.statistics()
                assert stats.open_reservations == 0
                assert (stats.kinds["triple"].available, stats.kinds["triple"].reserved) == (60, 0)
                with pytest.raises(VcpInternalError, match="discarded"):
                    await c[i].tuples.take(reservations[i])
            assert (await c[1].tuples.job("half")).state == "failed"  # type: ignore[union-attr]
            again = await _reserve_all(c, "next", {"triple": 60})
            assert again[0].ranges[0].offset == 40  # burnt tuples never come back
            shares = [await c[i].tuples.take(again[i]) for i in range(2)]
            assert_valid("triple", [s["triple"] for s in shares], c.alpha_shares)


async def test_statistics_rates_over_a_window(tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    # A frozen mock clock: store threads cannot make it jump, we move it by hand.
    async with open_cluster(tmp_path, 2) as c:
        await c.fill("bit", 1200)
        await c.fill("mask", 50)
        reservations = await _reserve_all(c, "r", {"bit": 600, "mask": 10})
        mid = c[1].tuples.statistics()
        assert mid.kinds["bit"].as_dict() == {"available": 600, "reserved": 600, "consumed": 0, "rate": 0.0}
        assert mid.open_reservations == 1
        for i in range(2):
            await c[i].tuples.take(reservations[i])
        stats = c[0].tuples.statistics()
        assert stats.as_dict()["bit"] == {"available": 600, "reserved": 0, "consumed": 600, "rate": 10.0}
        assert stats.kinds["mask"].rate == pytest.approx(10 / 60, abs=1e-3)
        assert stats.kinds["triple"].as_dict() == {"available": 0, "reserved": 0, "consumed": 0, "rate": 0.0}
        assert set(stats.as_dict()) == set(TUPLE_KINDS)
        mock_clock.jump(30)
        assert c[0].tuples.statistics(window=10).kinds["bit"].rate == 0.0
        assert c[0].tuples.statistics(window=60).kinds["bit"].rate == 10.0
        mock_clock.jump(31)
        assert c[0].tuples.statistics().kinds["bit"].rate == 0.0
        assert c[0].tuples.statistics().kinds["bit"].consumed == 600
        jobs = await c[0].tuples.jobs()
        assert [j.kind for j in jobs] == ["mask", "bit"] and jobs[1].consumed == 600


async def test_read_range_spans_chunks(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            await c.fill("mask", 70_000)  # three chunks of at most 2^15
            first = await _reserve_all(c, "x", {"mask": 32_000})
            second = await _reserve_all(c, "y", {"mask": 2_000})  # crosses the chunk boundary at 32768
            assert second[0].ranges == (TupleRange("mask", first[0].ranges[0].job_id, 32_000, 2_000),)
            shares = [await c[i].tuples.take(second[i]) for i in range(3)]
            assert_valid("mask", [s["mask"] for s in shares], c.alpha_shares)
            raw = await c[0].store.read(
                lambda conn: conn.execute("SELECT start, count FROM tuples_chunk ORDER BY start").fetchall()
            )
            assert [tuple(r) for r in raw] == [(0, 32768), (32768, 32768), (65536, 4464)]


def test_dealt_batches_store_as_valid_tuples() -> None:
    dealt = deal_batch(FIELD, "triple", 10, 12345, 2, "shares")
    parts = [unpack_tuples(FIELD, KINDS["triple"], d) for d in (dealt.own, dealt.payloads[1])]
    assert_valid("triple", parts, [12345, 0])


async def _reserve_all(c, request_id: str, counts: dict[str, int]) -> dict[int, Reservation]:  # type: ignore[no-untyped-def]
    out: dict[int, Reservation] = {}

    async def one(i: int) -> None:
        out[i] = await c[i].tuples.reserve(request_id, counts)

    async with trio.open_nursery() as nursery:
        for i in list(c.vcps):
            nursery.start_soon(one, i)
    assert len({r for r in out.values()}) == 1
    return out
