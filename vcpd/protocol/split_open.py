"""Split ("king") partial openings: each VCP sums one range of the vector.

A plain partial opening (mpc-notes §1.3) is all-to-all: every VCP sends its
value shares of the whole vector to every peer and adds up n shares per
element. With n parties that is (n−1)·16 bytes sent and n−1 modular additions
per element and VCP. A split opening of a vector of length L instead cuts it
into n contiguous ranges, range k = [⌊kL/n⌋, ⌊(k+1)L/n⌋) (a function of L and
n alone, so every VCP cuts alike; ranges may be empty when L < n):

1. step ``<step>.sum``: each VCP sends to VCP k only its shares of range k;
   VCP k adds its own shares of range k and the n−1 slices it received;
2. step ``<step>.out``: each VCP sends the sums of its range to every peer;
   every VCP puts the opened vector together from the n ranges.

Per element each VCP then sends 2(n−1)/n·16 bytes (n = 3: 21.3 instead of 32)
and makes (n−1)/n additions instead of n−1, for one more round of latency; so
:class:`~vcpd.protocol.online.OnlineParty` splits only flights with n ≥ 3 and
at least :data:`SPLIT_BYTES` of value shares per peer (:func:`use_split`).
This is MP-SPDZ's MAC_Check with a summing player, one per range.

**Why it is as secure as the all-to-all opening.** The slices VCP k receives
are the very shares it would receive in the all-to-all opening (of fewer
elements), and the sums it sends are opened values that every VCP learns
anyway, so nobody learns more. A cheating VCP can now also lie about the sums
of its range; that is no worse than lying about its share:

* the same wrong sum to everyone shifts an opened value consistently, which
  the MAC check catches like a shifted share (σ is computed against the MAC
  shares of the true value; passes with probability about 2/p);
* different sums to different peers leave honest VCPs with different views
  of the "public" values, which the MAC check's broadcast-consistency step
  catches (every VCP's random combination of its opened values is compared;
  :mod:`vcpd.protocol.maccheck`) before any σ is opened.

Both happen before anything derived from the opening leaves the VC, the
invariant every caller keeps anyway. Malformed traffic (a slice or a sum of
the wrong length, a word ≥ p) aborts the session at once, naming the VCP and
the step but never values.

This module must not import vcpd.net, vcpd.testing, services, api, node or
daemon; from vcpd it uses only errors, math and this package.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from vcpd.errors import FieldError, SessionAborted
from vcpd.math import FieldArray, PrimeField

from .rounds import payload_size

__all__ = ["SPLIT_BYTES", "ExchangeEach", "add_shares", "bounds", "checked", "open_split", "use_split"]

SPLIT_BYTES: Final = 1 << 16
"""Flights with at least this many bytes of value shares per peer (4096
elements) are opened split when n ≥ 3.

The split saves a third of the bytes and two thirds of the additions at n = 3
(more at larger n) but adds one round of latency. At 64 KiB per peer and
n = 3 it saves each VCP about 43 KiB of link traffic (~0.13 ms of CPU at the
measured 2.4-3.7 ns per byte for encryption, websockets and sockets) and 5,500
additions (~45 µs): together about one LAN round trip, so smaller flights
would pay more in latency than they save, and every opening round of a small
computation sits on its critical path. Small openings therefore keep one
round. The value equals ``BUNDLE_BYTES`` of
:class:`~vcpd.protocol.online.OnlineParty`: a flight small enough to travel
as one bundled message is not split (but at exactly 64 KiB); the two rounds
of a split flight are bundled link by link under the same rule.
"""

T = TypeVar("T")

ExchangeEach = Callable[
    [dict[int, list[tuple[str, Any]]], dict[int, list[tuple[str, int]]]], Awaitable[dict[int, list[Any]]]
]
"""``exchange(sends, receives)``: one round sending ``sends[peer]`` (labelled
payloads) to each peer and receiving ``receives[peer]`` (labels with the
expected payload sizes); returns each peer's payloads in order."""

Compute = Callable[[Callable[[], T], int], Awaitable[T]]
"""``compute(fn, size)``: ``fn()``, in a worker thread if ``size`` (bytes per
peer) is large enough."""


def use_split(n_parties: int, lengths: Sequence[int]) -> bool:
    """Whether a flight opening vectors of these lengths is opened split.

    Depends on public data only (n and the lengths), so every VCP decides alike.
    """
    return n_parties >= 3 and 16 * sum(lengths) >= SPLIT_BYTES


def bounds(length: int, n_parties: int) -> list[int]:
    """Range boundaries: range k of a vector of ``length`` is ``[b[k], b[k+1])``."""
    return [k * length // n_parties for k in range(n_parties + 1)]


def _deviated(session_id: str, peer: int, what: str, step: str) -> SessionAborted:
    return SessionAborted(session_id, f"VCP {peer} deviated from the protocol: {what} at step {step!r}")


def checked(session_id: str, peer: int, payload: object, size: int, what: str, step: str) -> bytes:
    """``payload`` if it is ``size`` bytes; else SessionAborted ("malformed <what>")."""
    if not isinstance(payload, bytes) or len(payload) != size:
        raise _deviated(session_id, peer, f"malformed {what}", step)
    return payload


def add_shares(
    session_id: str, field: PrimeField, own: FieldArray, payloads: Mapping[int, bytes], what: str, step: str
) -> FieldArray:
    """own + Σ of the peers' value shares (checked bytes); SessionAborted names a
    peer whose words are not in the field ("<what> not in the field")."""
    total = own
    for peer, payload in payloads.items():
        try:
            total = total + field.from_bytes(payload)
        except FieldError:
            raise _deviated(session_id, peer, f"{what} not in the field", step) from None
    return total


async def open_split(
    exchange: ExchangeEach,
    compute: Compute[Any],
    *,
    session_id: str,
    party: int,
    n_parties: int,
    field: PrimeField,
    openings: Sequence[tuple[str, FieldArray]],
    extras: Sequence[tuple[str, Any]] = (),
) -> tuple[list[FieldArray], list[dict[int, Any]]]:
    """Open every ``(step, own value shares)`` of ``openings`` split, in two rounds.

    ``extras`` (labelled payloads that go to every peer unchanged, such as an
    early seed commitment) ride along with the first round.

    Returns:
        The opened vectors (not yet MAC-checked), and for each extra every
        party's payload by party id (own included).

    Raises:
        SessionAborted: a peer sent a slice or a sum of the wrong length or
            not in the field; or the session failed otherwise (as the
            exchange reports it, like PeerUnavailable).
    """
    peers = [k for k in range(n_parties) if k != party]
    cuts = [bounds(len(values), n_parties) for _, values in openings]
    mine = [(b[party], b[party + 1]) for b in cuts]

    # Round 1: range k of every opening to VCP k.
    wire = [values.to_bytes() for _, values in openings]
    sends: dict[int, list[tuple[str, Any]]] = {}
    receives: dict[int, list[tuple[str, int]]] = {}
    for peer in peers:
        sends[peer] = [
            (f"{step}.sum", data[16 * b[peer] : 16 * b[peer + 1]])
            for (step, _), data, b in zip(openings, wire, cuts, strict=True)
        ] + list(extras)
        receives[peer] = [(f"{step}.sum", 16 * (hi - lo)) for (step, _), (lo, hi) in zip(openings, mine, strict=True)]
        receives[peer] += [(label, payload_size(payload)) for label, payload in extras]
    del wire
    first = await exchange(sends, receives)
    for peer in peers:
        for index, (step, size) in enumerate(receives[peer][: len(openings)]):
            checked(session_id, peer, first[peer][index], size, "opening slice", step)
    extra_answers = [
        {party: payload, **{peer: first[peer][len(openings) + i] for peer in peers}}
        for i, (_, payload) in enumerate(extras)
    ]
    share_bytes = 16 * sum(hi - lo for lo, hi in mine)

    def sum_ranges() -> list[FieldArray]:
        return [
            add_shares(
                session_id, field, values[lo:hi], {peer: first[peer][index] for peer in peers}, "opening slice",
                f"{step}.sum",
            )
            for index, ((step, values), (lo, hi)) in enumerate(zip(openings, mine, strict=True))
        ]  # fmt: skip

    own_sums = [total.to_bytes() for total in await compute(sum_ranges, share_bytes)]
    del first

    # Round 2: the sums of this VCP's range to everyone.
    out = [(f"{step}.out", data) for (step, _), data in zip(openings, own_sums, strict=True)]
    sends = {peer: out for peer in peers}
    receives = {
        peer: [(f"{step}.out", 16 * (b[peer + 1] - b[peer])) for (step, _), b in zip(openings, cuts, strict=True)]
        for peer in peers
    }
    second = await exchange(sends, receives)
    for peer in peers:
        for index, (step, size) in enumerate(receives[peer]):
            checked(session_id, peer, second[peer][index], size, "opened sum", step)

    def assemble() -> list[FieldArray]:
        opened = []
        for index, (step, _) in enumerate(openings):
            pieces = [own_sums[index] if k == party else second[k][index] for k in range(n_parties)]
            try:
                opened.append(field.from_bytes(b"".join(pieces)))
            except FieldError:
                # Find the culprit (slow path: a peer is cheating anyway).
                for peer in peers:
                    try:
                        field.from_bytes(second[peer][index])
                    except FieldError:
                        raise _deviated(session_id, peer, "opened sum not in the field", f"{step}.out") from None
                raise
        return opened

    return await compute(assemble, share_bytes), extra_answers
