"""The small interfaces through which services meet (DESIGN §8, layer L4).

Services are siblings: the executor and the secret store need tuples, the
generator produces them, the tuple store keeps them, and none of them may
import another's internals. They meet here instead, through
:class:`typing.Protocol` classes and a few frozen value types; the daemon
passes the concrete objects in.

* :class:`TupleSource` -- what consumers of tuples call (the tuple store
  implements it): :meth:`~TupleSource.reserve` is a multi-party step every
  VCP runs with the same request id, :meth:`~TupleSource.take` hands out the
  shares and records them consumed, :meth:`~TupleSource.discard` gives up a
  reservation (its tuples are burnt, never returned).
* :class:`TakingTupleSource` and :func:`take_tuples` -- reserve and take in
  one step where the source can (the tuple store: one message instead of
  three round trips and three store writes), with reserve/take/discard
  otherwise; the secret store and the executor both take tuples this way.
* :class:`TupleSink` -- what tuple producers call (the generator, and later
  the MASCOT backend) to store tuple shares as chunks of a job and to make a
  job usable or delete it.

This module holds Protocols, frozen value types and :func:`take_tuples`,
which only calls them. It may import :mod:`vcpd.errors` and
:mod:`vcpd.math`; nothing else from vcpd (in particular no service package,
no net, api, node or daemon).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

import trio

from vcpd.math.shares import Shares

__all__ = [
    "BOUNDED_BITS",
    "KIND_ARITY",
    "TUPLE_KINDS",
    "Reservation",
    "TupleRange",
    "TupleSink",
    "TupleSource",
]

TUPLE_KINDS: Final = ("triple", "square", "bit", "inverse", "mask", "bounded")
"""Every tuple kind, in the canonical order used for ranges and statistics.

The same tuple as :data:`vcpd.config.TUPLE_KINDS` (repeated because ports may
not import config).
"""

KIND_ARITY: Final[Mapping[str, int]] = {
    "triple": 3, "square": 2, "bit": 1, "inverse": 2, "mask": 1, "bounded": 1,
}  # fmt: skip
"""Shared components per tuple: triple (a, b, a·b), square (a, a²), bit (b),
inverse (r, r⁻¹), mask (r), bounded (r uniform in [0, 2^BOUNDED_BITS))."""

BOUNDED_BITS: Final = 40
"""Bit width of a ``bounded`` tuple: r uniform in [0, 2^40) (κ = 40, so one
tuple replaces the κ random bits of a statistical mask's high part)."""


@dataclass(frozen=True, slots=True)
class TupleRange:
    """Consecutive tuples ``[offset, offset + count)`` of one job.

    Every VCP holds its shares of a job's tuples at the same positions, so a
    range names the same tuples on every VCP.
    """

    kind: str
    job_id: str
    offset: int
    count: int

    @property
    def end(self) -> int:
        """One past the last position of the range."""
        return self.offset + self.count


@dataclass(frozen=True, slots=True)
class Reservation:
    """Tuples set aside for one request, identical on every VCP.

    Attributes:
        request_id: the id every VCP passed to :meth:`TupleSource.reserve`.
        ranges: the reserved ranges, grouped by kind in :data:`TUPLE_KINDS`
            order and, within a kind, in the order their tuples are handed out.
    """

    request_id: str
    ranges: tuple[TupleRange, ...]

    @property
    def counts(self) -> dict[str, int]:
        """Tuples reserved per kind (kinds with none are left out)."""
        totals: dict[str, int] = {}
        for r in self.ranges:
            totals[r.kind] = totals.get(r.kind, 0) + r.count
        return totals


class TupleSource(Protocol):
    """Hands out tuple shares so that all VCPs use the same tuples, each once."""

    async def reserve(self, request_id: str, counts: Mapping[str, int]) -> Reservation:
        """Reserve tuples for ``request_id``: every VCP calls this with the same
        id and counts, and every VCP gets the same ranges back.

        Raises:
            TuplesExhausted: some kind has too few tuples (on every VCP; nothing
                was recorded).
            SessionAborted, PeerUnavailable: the reservation failed; whatever
                was recorded is discarded.
        """
        ...

    async def take(self, reservation: Reservation) -> dict[str, list[Shares]]:
        """This VCP's shares of the reserved tuples, recorded consumed first.

        Returns kind -> one :class:`Shares` per tuple component (triple ->
        [a, b, c], square -> [a, a²], bit -> [b], inverse -> [r, r⁻¹],
        mask -> [r]), each as long as the number of tuples reserved of that
        kind. A reservation can be taken once.
        """
        ...

    async def discard(self, reservation: Reservation) -> None:
        """Give up an open reservation; its tuples are burnt, never reused."""
        ...


@runtime_checkable
class TakingTupleSource(TupleSource, Protocol):
    """A tuple source that can reserve and take in one multi-party step.

    The tuple store offers it (``TupleStore.reserve_and_take``): it saves
    store writes and round trips on every request. Other sources (test
    dealers) are used through ``reserve`` and ``take``.
    """

    async def reserve_and_take(self, request_id: str, counts: Mapping[str, int]) -> dict[str, list[Shares]]:
        """Reserve ``counts`` with every VCP and return this VCP's shares, recorded consumed."""
        ...


async def take_tuples(source: TupleSource, request_id: str, counts: Mapping[str, int]) -> dict[str, list[Shares]]:
    """Reserve ``counts`` under ``request_id`` (with every VCP) and take them.

    Once this returns the tuples are recorded consumed on this VCP; if taking
    fails the reservation is discarded, so no tuple is ever handed out twice.
    Every VCP must take the same path: they all run the same vcpd with the
    same kind of source.
    """
    if isinstance(source, TakingTupleSource):
        return await source.reserve_and_take(request_id, counts)
    reservation = await source.reserve(request_id, counts)
    try:
        return await source.take(reservation)
    except BaseException:
        with trio.CancelScope(shield=True):
            await source.discard(reservation)
        raise


class TupleSink(Protocol):
    """Where a tuple producer puts this VCP's shares of a job's tuples.

    A job is written as consecutive chunks (each ``count`` tuples laid out as
    MP-SPDZ does: per component value‖MAC, 16+16 bytes LE Montgomery) and is
    unusable until :meth:`activate_job`. Producers on every VCP use the same
    job id and the same chunk boundaries.
    """

    async def create_job(self, job_id: str, kind: str, count: int, *, source: str) -> None:
        """Register an empty, inactive job (``source`` names the producer)."""
        ...

    async def store_chunk(self, job_id: str, offset: int, count: int, data: bytes) -> int:
        """Append ``count`` tuples at ``offset`` (the number stored so far);
        return the new number stored. Durable when it returns."""
        ...

    async def activate_job(self, job_id: str) -> None:
        """Make a completely stored job usable (durably)."""
        ...

    async def delete_job(self, job_id: str) -> None:
        """Make a job unusable forever and delete its chunks (idempotent)."""
        ...

    def available(self) -> Mapping[str, int]:
        """Usable (activated, unreserved) tuples per kind on this VCP."""
        ...


# ---------------------------------------------------------------- secret store
# Appended by the secret store (vcpd.services.secrets), which implements
# SecretSource; the executor calls it.

from collections.abc import Sequence  # noqa: E402

SECRET_ENCODINGS: Final = ("int64", "field", "fixed")
"""How a client's values map to field elements: ``int64`` signed 64-bit
integers (v ↦ v mod p, the default), ``field`` raw elements in [0, p),
``fixed`` reals as round(x·2^f) in signed 64 bits."""


@dataclass(frozen=True, slots=True)
class SecretEncoding:
    """The encoding a secret was stored with, kept so a download returns what
    was put in (and so a program knows whether an input is sint or sfix).

    Attributes:
        kind: one of :data:`SECRET_ENCODINGS`.
        fraction_bits: f for ``fixed`` (0..63); always 0 for the other kinds.
    """

    kind: str = "int64"
    fraction_bits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SECRET_ENCODINGS:
            raise ValueError(f"unknown encoding {self.kind!r}; expected one of {', '.join(SECRET_ENCODINGS)}")
        bits = self.fraction_bits
        if isinstance(bits, bool) or not isinstance(bits, int):
            raise ValueError("fraction_bits must be an int")
        if self.kind == "fixed" and not 0 <= bits <= 63:
            raise ValueError(f"fraction_bits must be in 0..63 for fixed point, got {bits}")
        if self.kind != "fixed" and bits != 0:
            raise ValueError(f"fraction_bits applies to the 'fixed' encoding only, not {self.kind!r}")


class SecretSource(Protocol):
    """What the executor needs from the secret store (run on every VCP alike).

    Each VCP checks the caller's rights on its own; a refusal raises
    :class:`~vcpd.errors.RequestError` (``not-found`` when the caller holds no
    right at all on a secret, ``forbidden`` when it holds some right but not
    ``use``; ``bad-request`` for a malformed id).
    """

    async def load_for_use(self, secret_ids: Sequence[str], caller_key: str) -> list[tuple[Shares, SecretEncoding]]:
        """This VCP's shares (value‖MAC, as stored) of each secret, in order,
        after checking that ``caller_key`` may ``use`` it (owners may)."""
        ...

    async def store_result(
        self,
        owner_key: str,
        shares: Shares,
        encoding: SecretEncoding,
        tags: Mapping[str, str | int],
        *,
        secret_id: str | None = None,
    ) -> str:
        """Store a derived secret owned by ``owner_key`` and return its id.

        Call it only after the MAC check of everything the shares depend on,
        on every VCP at about the same time: the VCPs compare a digest of
        (id, owner, length, encoding, tags), agree on the creation date, and
        store on all of them or on none (``aborted`` if they disagree).
        Every VCP must get the same ``secret_id`` (pass one, e.g. derived from
        the execution id); without it the id is derived from owner, encoding,
        length and tags, so the tags must then make it unique (an
        ``execution`` tag, say). An id is tried once: an existing or retried
        id gets ``conflict``. ``tags`` may not use the reserved keys ``owner``
        and ``creation-date``; ``int`` values become LONG tags.
        """
        ...


__all__ += ["SECRET_ENCODINGS", "SecretEncoding", "SecretSource"]  # noqa: PLE0604
