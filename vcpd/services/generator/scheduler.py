"""Keeping stock above thresholds: the lottery scheduler (reference: Klyshko's
TupleGenerationScheduler).

Every ``scheduler_interval`` seconds, if fewer than ``concurrency`` jobs are
active (pending or running), the kinds whose available stock plus the tuples
of their active jobs is below their threshold are eligible; one is drawn by a
lottery weighted by priority (``secrets`` randomness, so the draw cannot be
steered by predicting a PRNG), and a job of ``batch_size`` tuples is started.
Kinds without a threshold (or with 0) are never generated automatically;
priority defaults to 1 and a priority of 0 excludes a kind.

The decision is a pure function (:func:`pick_kind`) so it can be tested
without clocks; :class:`Scheduler` runs it on a timer. This module must not
import another service, vcpd.net, api, node or daemon.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

import trio

from vcpd.config import TupleSettings
from vcpd.errors import VcpError
from vcpd.logs import get_logger
from vcpd.services.ports import TUPLE_KINDS

__all__ = ["DEFAULT_PRIORITY", "Scheduler", "eligible_kinds", "pick_kind"]

log = get_logger("generator.scheduler")

DEFAULT_PRIORITY: Final = 1
"""Lottery weight of a kind with a threshold but no configured priority."""


def eligible_kinds(
    available: Mapping[str, int], in_flight: Mapping[str, int], settings: TupleSettings
) -> dict[str, int]:
    """Kind -> lottery weight, for the kinds whose stock is below threshold."""
    weights: dict[str, int] = {}
    for kind in TUPLE_KINDS:
        threshold = settings.thresholds.get(kind, 0)
        if threshold <= 0 or available.get(kind, 0) + in_flight.get(kind, 0) >= threshold:
            continue
        weight = settings.priorities.get(kind, DEFAULT_PRIORITY)
        if weight > 0:
            weights[kind] = weight
    return weights


def pick_kind(
    available: Mapping[str, int],
    in_flight: Mapping[str, int],
    settings: TupleSettings,
    randbelow: Callable[[int], int] = secrets.randbelow,
) -> str | None:
    """Draw the kind to generate next, or None if every kind is stocked."""
    weights = eligible_kinds(available, in_flight, settings)
    total = sum(weights.values())
    if total == 0:
        return None
    ticket = randbelow(total)
    for kind, weight in weights.items():
        if ticket < weight:
            return kind
        ticket -= weight
    raise AssertionError("lottery ticket out of range")


class Scheduler:
    """Runs :func:`pick_kind` every interval and starts jobs through ``start_job``.

    Args:
        settings: thresholds, priorities, batch size, concurrency, interval.
        available: current usable stock per kind (the tuple store's counters).
        active: the active jobs as (kind, count) pairs.
        start_job: ``await start_job(kind, count)`` starts a job.
    """

    def __init__(
        self,
        settings: TupleSettings,
        available: Callable[[], Mapping[str, int]],
        active: Callable[[], list[tuple[str, int]]],
        start_job: Callable[[str, int], Awaitable[str]],
    ) -> None:
        if settings.batch_size <= 0 or settings.scheduler_interval <= 0:
            raise ValueError("the scheduler needs a positive batch size and interval")
        self._settings = settings
        self._available = available
        self._active = active
        self._start_job = start_job
        self._last_error = ""
        self.started_jobs = 0

    async def tick(self) -> str | None:
        """One scheduling decision; returns the job id started, if any."""
        active = self._active()
        if len(active) >= max(1, self._settings.concurrency):
            return None
        in_flight: dict[str, int] = {}
        for kind, count in active:
            in_flight[kind] = in_flight.get(kind, 0) + count
        chosen = pick_kind(self._available(), in_flight, self._settings)
        if chosen is None:
            return None
        try:
            job_id = await self._start_job(chosen, self._settings.batch_size)
        except VcpError as exc:
            if str(exc) != self._last_error:  # say it once, not every interval
                log.warning("the scheduler could not start a %s job: %s", chosen, exc)
                self._last_error = str(exc)
            return None
        self._last_error = ""
        self.started_jobs += 1
        log.info("stock of %s tuples is low: started a job", chosen, extra={"ctx": {"job": job_id}})
        return job_id

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Tick now and then every ``scheduler_interval`` seconds, forever."""
        task_status.started()
        while True:
            await self.tick()
            await trio.sleep(self._settings.scheduler_interval)
