"""The stock-keeping scheduler: eligibility, lottery weights, concurrency, timing,
and its wiring to the real generator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing
from tuples_harness import open_cluster

from vcpd.config import TupleSettings
from vcpd.services.generator import pick_kind
from vcpd.services.generator.scheduler import Scheduler, eligible_kinds
from vcpd.services.ports import TUPLE_KINDS


def test_only_kinds_below_threshold_are_eligible() -> None:
    settings = TupleSettings(
        thresholds={"triple": 1000, "bit": 500, "mask": 100},
        priorities={"triple": 10, "mask": 0},
    )
    available = {"triple": 400, "bit": 600, "mask": 0, "square": 0}
    # bit is stocked, mask has priority 0, square has no threshold
    assert eligible_kinds(available, {}, settings) == {"triple": 10}
    assert eligible_kinds(available, {"triple": 600}, settings) == {}  # in-flight jobs count towards the threshold
    assert eligible_kinds({**available, "bit": 499}, {}, settings) == {"triple": 10, "bit": 1}
    assert pick_kind({kind: 10**9 for kind in TUPLE_KINDS}, {}, settings) is None
    assert pick_kind(available, {}, settings) == "triple"


def test_lottery_follows_priorities() -> None:
    priorities = {"triple": 10, "square": 1, "bit": 10, "inverse": 1, "mask": 10, "bounded": 2}
    settings = TupleSettings(thresholds=dict.fromkeys(TUPLE_KINDS, 100), priorities=priorities)
    draws = 30_000
    counts = Counter(pick_kind({}, {}, settings) for _ in range(draws))  # secrets-backed lottery
    total = sum(priorities.values())
    for kind, weight in priorities.items():
        assert counts[kind] / draws == pytest.approx(weight / total, abs=0.015), counts


def test_lottery_ticket_maps_onto_weights() -> None:
    settings = TupleSettings(thresholds={"triple": 1, "bit": 1}, priorities={"triple": 3, "bit": 1})
    def ticket(t: int) -> Callable[[int], int]:
        return lambda total: t

    picks = [pick_kind({}, {}, settings, randbelow=ticket(t)) for t in range(4)]
    assert picks == ["triple", "triple", "triple", "bit"]


async def test_scheduler_keeps_stock_and_honours_concurrency(autojump_clock: trio.testing.MockClock) -> None:
    """Fake jobs (no store, no threads): each takes 25 virtual seconds."""
    settings = TupleSettings(
        thresholds={"triple": 1000, "bit": 300},
        priorities={"triple": 3, "bit": 1},
        batch_size=200,
        concurrency=2,
        scheduler_interval=10.0,
    )
    available = dict.fromkeys(TUPLE_KINDS, 0)
    active: dict[str, tuple[str, int]] = {}
    started: list[tuple[float, str, int]] = []
    peak = 0

    async with trio.open_nursery() as nursery:

        async def run_job(job_id: str, kind: str, count: int) -> None:
            await trio.sleep(25)
            available[kind] += count
            del active[job_id]

        async def start_job(kind: str, count: int) -> str:
            nonlocal peak
            job_id = f"job-{len(started)}"
            started.append((trio.current_time(), kind, count))
            active[job_id] = (kind, count)
            peak = max(peak, len(active))
            nursery.start_soon(run_job, job_id, kind, count)
            return job_id

        scheduler = Scheduler(settings, lambda: available, lambda: list(active.values()), start_job)
        await nursery.start(scheduler.serve)
        await trio.sleep(400)
        assert available["triple"] >= 1000 and available["bit"] >= 300
        assert peak == 2  # never more than `concurrency` jobs at once
        assert all(count == 200 for _, _, count in started)
        # Every start happened on a tick (multiples of the interval).
        assert all(when % 10 == 0 for when, _, _ in started)
        # No overshoot beyond what in-flight accounting allows: stock stops at threshold.
        assert available["triple"] < 1000 + 2 * 200 and available["bit"] < 300 + 2 * 200
        before = len(started)
        await trio.sleep(100)
        assert len(started) == before  # stocked: nothing more to do
        available["bit"] -= 250  # consumption brings bits below the threshold again
        await trio.sleep(11)
        assert [kind for _, kind, _ in started[before:]] == ["bit"]
        nursery.cancel_scope.cancel()


async def test_serve_scheduler_generates_until_stocked(tmp_path: Path) -> None:
    settings = TupleSettings(
        thresholds={"mask": 2500, "square": 1000},
        priorities={"mask": 5, "square": 1},
        batch_size=1000,
        concurrency=2,
        scheduler_interval=0.02,
    )
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 2, settings=settings, batch=500) as c:
            await c[0].generator.wait_linked(10)
            async with trio.open_nursery() as nursery:
                await nursery.start(c[0].generator.serve_scheduler)
                while c[0].tuples.available()["mask"] < 2500 or c[0].tuples.available()["square"] < 1000:
                    await trio.sleep(0.02)  # polls the stock; no correctness depends on timing
                nursery.cancel_scope.cancel()
            jobs = await c[0].generator.jobs()
            for job in jobs:
                await c[0].generator.wait_job(job.job_id)
                assert (await c[1].generator.wait_job(job.job_id)).state == "completed"
            kinds = Counter(job.kind for job in jobs)
            assert kinds == {"mask": 3, "square": 1}  # in-flight jobs count: no overshoot
            assert all(job.count == 1000 for job in jobs)
            assert c[1].tuples.available() == c[0].tuples.available()
