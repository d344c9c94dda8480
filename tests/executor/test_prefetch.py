"""ThreadChannel's prefetch: the next block's tuples are taken while the current one computes.

The channel is driven from a worker thread, as the engine drives it, so these
tests use the real clock (trio's autojump clock would jump while the thread
works); every wait is bounded by ``fail_after``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio

from vcpd.errors import SessionAborted, VcpInternalError
from vcpd.math import PrimeField, Shares
from vcpd.services.executor.channel import ThreadChannel
from vcpd.services.ports import Reservation

FIELD = PrimeField()


class Source:
    """A tuple source (reserve, then take) that logs its calls and can fail one request's take."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, dict[str, int]]] = []
        self.discarded: list[str] = []

    async def reserve(self, request_id: str, counts: Mapping[str, int]) -> Reservation:
        self.calls.append((request_id, dict(counts)))
        await trio.sleep(0.01)  # the take takes a while: the prefetch must really run in the background
        self._counts = dict(counts)
        return Reservation(request_id, ())

    async def take(self, reservation: Reservation) -> dict[str, list[Shares]]:
        if reservation.request_id == self.fail:
            raise SessionAborted(f"tuples.reserve:{reservation.request_id}", "VCP 2 went away")
        return {kind: [Shares(FIELD.zeros(n), FIELD.zeros(n))] for kind, n in self._counts.items()}

    async def discard(self, reservation: Reservation) -> None:
        self.discarded.append(reservation.request_id)


async def run_in_thread(source: Source, work: Any) -> tuple[ThreadChannel, Any]:
    channel = ThreadChannel(None, source, "executor/x")  # type: ignore[arg-type]  # no openings here
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            channel.spawn = nursery.start_soon
            result = await trio.to_thread.run_sync(work, channel)
            nursery.cancel_scope.cancel()
    return channel, result


async def test_the_next_reserve_claims_the_prefetched_tuples() -> None:
    source = Source()

    def work(channel: ThreadChannel) -> Any:
        channel.reserve({"triple": 2, "bit": 0})
        channel.prefetch({"triple": 3, "bit": 5, "mask": 0})
        return channel.reserve({"triple": 3, "bit": 5})

    channel, taken = await run_in_thread(source, work)
    assert source.calls == [("executor/x.1", {"triple": 2}), ("executor/x.2", {"triple": 3, "bit": 5})]
    assert len(taken["triple"][0]) == 3 and len(taken["bit"][0]) == 5
    assert channel.tuples_used == {"triple": 5, "bit": 5}


async def test_a_failed_prefetch_fails_the_reserve_that_claims_it() -> None:
    source = Source(fail="executor/x.2")

    def work(channel: ThreadChannel) -> Any:
        channel.reserve({"triple": 2})
        channel.prefetch({"triple": 3})
        with pytest.raises(SessionAborted, match="VCP 2 went away"):
            channel.reserve({"triple": 3})
        return None

    channel, _ = await run_in_thread(source, work)
    assert source.discarded == ["executor/x.2"]  # reserved, never taken: burnt
    assert channel.tuples_used == {"triple": 2}


async def test_a_reserve_that_differs_from_the_prefetch_is_a_bug() -> None:
    def work(channel: ThreadChannel) -> Any:
        channel.prefetch({"triple": 3})
        with pytest.raises(VcpInternalError, match="does not match"):
            channel.reserve({"triple": 4})
        return None

    channel, _ = await run_in_thread(Source(), work)
    assert channel.tuples_used == {"triple": 3}  # taken, so used up, though never claimed


async def test_a_second_prefetch_before_the_first_is_claimed_is_a_bug() -> None:
    def work(channel: ThreadChannel) -> Any:
        channel.prefetch({"triple": 3})
        with pytest.raises(VcpInternalError, match="another waited"):
            channel.prefetch({"triple": 3})
        return channel.reserve({"triple": 3})

    await run_in_thread(Source(), work)


async def test_without_a_nursery_a_prefetch_does_nothing() -> None:
    source = Source()
    channel = ThreadChannel(None, source, "executor/y")  # type: ignore[arg-type]

    def work() -> Any:
        channel.prefetch({"triple": 3})
        return channel.reserve({"triple": 3})

    with trio.fail_after(30):
        await trio.to_thread.run_sync(work)
    assert source.calls == [("executor/y.1", {"triple": 3})]
