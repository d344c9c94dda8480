"""Tuple store telemetry: stock per kind and consumption rates (Castor's telemetry).

:class:`KindStock` and :class:`TupleStoreStatistics` are the frozen records
``vcpctl tuples stock`` prints; :class:`RateMeter` keeps recent consumption
events in memory to compute tuples/s over a window. Rates restart from zero
with the daemon, which is fine for a gauge (Castor keeps them in Redis for
the same purpose); totals come from the store and survive restarts.

This module must not import trio's I/O, the store, or any vcpd module other
than its own package and :mod:`vcpd.services.ports`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from vcpd.services.ports import TUPLE_KINDS

__all__ = ["DEFAULT_RATE_WINDOW", "MAX_RATE_WINDOW", "KindStock", "RateMeter", "StoredJob", "TupleStoreStatistics"]

DEFAULT_RATE_WINDOW: Final = 60.0
"""Seconds over which the consumption rate is averaged by default (as Castor)."""

MAX_RATE_WINDOW: Final = 3600.0
"""Seconds of consumption events kept in memory; longer windows are clamped."""


@dataclass(frozen=True, slots=True)
class KindStock:
    """Stock of one tuple kind on this VCP.

    Attributes:
        available: activated tuples not yet reserved.
        reserved: tuples in open reservations (reserved, not yet taken).
        consumed: tuples handed out, in total.
        rate: tuples consumed per second over the statistics window.
    """

    available: int
    reserved: int
    consumed: int
    rate: float

    def as_dict(self) -> dict[str, int | float]:
        """The JSON form printed by ``vcpctl tuples stock --json``."""
        return {"available": self.available, "reserved": self.reserved, "consumed": self.consumed, "rate": self.rate}


@dataclass(frozen=True, slots=True)
class TupleStoreStatistics:
    """A snapshot of the tuple store.

    Attributes:
        kinds: kind -> :class:`KindStock`, every kind present, canonical order.
        window: seconds the rates are averaged over.
        open_reservations: reservations recorded but not yet taken or discarded.
        leader: whether this VCP assigns the ranges (party 0).
    """

    kinds: Mapping[str, KindStock]
    window: float
    open_reservations: int
    leader: bool

    def as_dict(self) -> dict[str, dict[str, int | float]]:
        """``{"triple": {"available": ..., "reserved": ..., "consumed": ..., "rate": ...}, ...}``."""
        return {kind: stock.as_dict() for kind, stock in self.kinds.items()}


@dataclass(frozen=True, slots=True)
class StoredJob:
    """A job as the tuple store holds it (chunks with one id on every VCP).

    Attributes:
        job_id: the id, equal on every VCP.
        kind: the tuple kind.
        count: tuples the job holds when complete.
        stored: tuples stored so far.
        state: ``filling`` (not usable yet), ``active``, ``retired`` (all
            tuples consumed or discarded; chunks deleted) or ``failed``.
        used: tuples in recorded ranges (reserved at some point).
        consumed: tuples taken.
        discarded: tuples burnt by aborted or restarted reservations.
        source: who produced it (``dealer``, ``import``, ...).
        created: wall-clock time the job was registered (seconds since the epoch).
    """

    job_id: str
    kind: str
    count: int
    stored: int
    state: str
    used: int
    consumed: int
    discarded: int
    source: str
    created: float

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly dict of the fields."""
        return {name: getattr(self, name) for name in self.__slots__}


class RateMeter:
    """Consumption events in a sliding window, per kind.

    Not thread-safe; used from the trio thread only. Times come from the
    caller (trio's clock), so tests can drive them with a mock clock.
    """

    def __init__(self) -> None:
        self._events: deque[tuple[float, str, int]] = deque()

    def record(self, now: float, counts: Mapping[str, int]) -> None:
        """Note that ``counts`` tuples were consumed at time ``now``."""
        for kind, n in counts.items():
            if n:
                self._events.append((now, kind, n))
        self._prune(now)

    def rates(self, now: float, window: float = DEFAULT_RATE_WINDOW) -> Mapping[str, float]:
        """Kind -> tuples per second consumed over the last ``window`` seconds."""
        window = min(max(window, 1e-9), MAX_RATE_WINDOW)
        self._prune(now)
        totals = dict.fromkeys(TUPLE_KINDS, 0)
        for when, kind, n in reversed(self._events):
            if when < now - window:
                break
            totals[kind] += n
        return MappingProxyType({kind: totals[kind] / window for kind in TUPLE_KINDS})

    def _prune(self, now: float) -> None:
        while self._events and self._events[0][0] < now - MAX_RATE_WINDOW:
            self._events.popleft()
