"""The engine's network from the program's worker thread: openings, MAC checks, tuples.

The program runs in a worker thread; :class:`ThreadChannel` turns the
engine's blocking calls (:class:`~.graph.Channel`) into trio calls with
:func:`trio.from_thread.run`. Tuples are taken in one step per flush
(:func:`~vcpd.services.ports.take_tuples`), and a long operation's next block
is taken while the current one computes (:meth:`ThreadChannel.prefetch`).

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math`, :mod:`vcpd.protocol` and :mod:`vcpd.services.ports`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import trio

from vcpd.errors import VcpInternalError
from vcpd.math import FieldArray, Shares
from vcpd.protocol.online import OnlineParty
from vcpd.services.ports import TupleSource, take_tuples

from .graph import PreparedMul

__all__ = ["ThreadChannel"]


def _nonzero(counts: Mapping[str, int]) -> dict[str, int]:
    """Counts without the kinds of which none are needed, so a prefetch and its claim compare alike."""
    return {kind: n for kind, n in counts.items() if n}


@dataclass(slots=True)
class _Prefetch:
    """A take started ahead of the reserve that will claim it."""

    counts: dict[str, int]
    done: trio.Event
    taken: dict[str, list[Shares]] | None = None
    error: Exception | None = None


class ThreadChannel:
    """The engine's network, called from the program's worker thread.

    Tuple reservations are made and taken in one step
    (:func:`~vcpd.services.ports.take_tuples`: one message among the VCPs
    with the tuple store); a reservation whose take fails (or is cancelled)
    is discarded, so none is left open.

    :meth:`prefetch` starts the next reservation as a task in ``spawn``'s
    nursery (the execution's), so that taking a block's tuples overlaps the
    previous block's rounds. Every VCP runs the same program, so they start
    the same prefetches in the same order and request ids stay aligned. A
    prefetch still running when the execution ends is cancelled with the
    nursery; its tuples are burnt like those of any failed reservation.
    """

    def __init__(self, online: OnlineParty, tuples: TupleSource, request_prefix: str) -> None:
        self._online = online
        self._tuples = tuples
        self._prefix = request_prefix
        self._reservations = 0
        self._pending: _Prefetch | None = None
        self.spawn: Callable[..., object] | None = None
        self.tuples_used: dict[str, int] = {}

    def reserve(self, counts: Mapping[str, int]) -> Mapping[str, Sequence[Shares]]:
        return trio.from_thread.run(self._reserve, _nonzero(counts))

    def prefetch(self, counts: Mapping[str, int]) -> None:
        trio.from_thread.run_sync(self._start_prefetch, _nonzero(counts))

    def _request_id(self) -> str:
        self._reservations += 1
        return f"{self._prefix}.{self._reservations}"

    def _start_prefetch(self, counts: dict[str, int]) -> None:
        if self._pending is not None:
            raise VcpInternalError("a prefetch was started while another waited to be claimed")
        if self.spawn is None or not counts:
            return  # no nursery to run it in: the next reserve takes them itself
        pending = _Prefetch(counts, trio.Event())
        self._pending = pending
        self.spawn(self._run_prefetch, pending, self._request_id())

    async def _run_prefetch(self, pending: _Prefetch, request_id: str) -> None:
        try:
            pending.taken = await take_tuples(self._tuples, request_id, pending.counts)
            self._count(pending.counts)  # taken means used up, claimed or not
        except Exception as exc:  # raised by the reserve that claims it
            pending.error = exc
        finally:
            pending.done.set()

    async def _reserve(self, counts: dict[str, int]) -> dict[str, list[Shares]]:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending.done.wait()
            if pending.error is not None:
                raise pending.error
            if pending.counts != counts:
                raise VcpInternalError(
                    f"a prefetched reservation ({pending.counts}) does not match the flush that claims it ({counts})"
                )
            assert pending.taken is not None
            return pending.taken
        taken = await take_tuples(self._tuples, self._request_id(), counts)
        self._count(counts)
        return taken

    def _count(self, counts: Mapping[str, int]) -> None:
        for kind, count in counts.items():
            self.tuples_used[kind] = self.tuples_used.get(kind, 0) + count

    def prepare_mul(self, x: Shares, y: Shares, triple: Sequence[Shares]) -> PreparedMul:
        to_open, finish = self._online.mul_prepare(x, y, triple)
        return PreparedMul(to_open, finish)

    def open_many(self, parts: Sequence[Shares]) -> list[FieldArray]:
        return trio.from_thread.run(self._online.open_many, list(parts))

    def mac_check(self) -> None:
        trio.from_thread.run(self._online.mac_check)

    def pending_checks(self) -> int:
        return self._online.pending_checks
