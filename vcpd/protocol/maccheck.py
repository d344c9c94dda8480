"""The batched SPDZ MAC check and the log of openings it covers.

Partial openings (mpc-notes §1.3) reveal Σ x_i but not whether anyone lied
about its x_i: that is only established by the MAC check, which proves, for
all pending opened values v_j at once, that Σ_i m_{j,i} = α·v_j
(mpc-notes §1.6, the N ≥ 10 path used for every N):

1. toss a seed with commit-then-open coin tossing (two rounds);
2. expand coefficients h_j = PRG(seed) — only now, after every MAC share is
   fixed, so no one can aim an error at a known combination. Each h_j is
   uniform over 2^(bits−1) field elements (:meth:`PrimeField.coefficients`;
   2^127 for the default prime), so a nonzero error vector vanishes in the
   combination with probability at most 2^-(bits−1) < 2/p;
3. a = Σ h_j·v_j over this party's view of the opened values, and
   σ_i = Σ h_j·m_{j,i} − α_i·a (two vectorised dot products, reduced once at
   the end);
4. commit-then-open the σ_i (two rounds); the commitment round also carries
   a in the clear (it is a function of public values), and every party
   compares the others' a with its own (broadcast consistency, mpc-notes
   §1.3); accept iff every a agrees and Σ σ_i = 0.

**Broadcast consistency.** Partial openings go over point-to-point links,
so a VCP could send different shares of one opening to different peers
(or, in a split opening, :mod:`.split_open`, different sums of its range),
leaving honest VCPs with different views of the "public" values. Step 4
catches that: the coefficients are tossed after every view is fixed, so two
views that differ anywhere give different a with probability at least
1 − 2^-(bits−1). Comparing a costs 16 bytes per check, where hashing every
received payload cost about a tenth of the CPU time of a secure 64-bit
comparison. Without the
comparison the check would still fail for a fooled party (its σ uses its own
view, and its α_i is unknown to the cheater), but the comparison names the
cause before any σ is opened.

**Early seed commitments** (``OnlineParty(precommit_seed=True)``): the seed
commitments of step 1 may instead travel in the same flight as the first
opening after the previous check (step ``<label>.seed.early``). Each party
still reveals its contribution only after it has received every opening the
check covers and every party's commitment, so every opened share is fixed
before anyone can know the seed, and no contribution can depend on another:
the coin toss is exactly as good, and the check takes three rounds after the
last opening instead of four (``<label>.seed.reveal`` carries the opening,
then the two σ rounds). See :class:`EarlySeed`.

A party that shifted an opened value passes with probability about 2/p.
Detection means abort, not identification: the failure message says that a
VCP deviated and that nothing opened since the last good check is trusted; it
never carries σ values, shares or combinations of opened values.

Invariant kept by callers: **no value derived from an opening leaves the VC
before a MAC check covering that opening has succeeded** (mpc-notes §2.6).

This module must not import vcpd.net, vcpd.testing, services, api, node or
daemon; from vcpd it uses only errors, math and this package.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from typing import Any, Final

import trio

from vcpd.errors import FieldError, MacCheckFailure, SessionAborted, VcpInternalError
from vcpd.math import FieldArray, PrimeField

from .commit import (
    FAILURE_MARKER,
    SEED_BYTES,
    Exchange,
    check_commitments,
    combine_seed,
    commit,
    invalid_commitment,
    verify_openings,
)

__all__ = [
    "COEFFICIENT_LABEL",
    "MAC_FAILURE_MESSAGE",
    "THREAD_ELEMENTS",
    "EarlySeed",
    "OpeningLog",
    "batch_mac_check",
    "early_seed_commitment",
]

COEFFICIENT_LABEL: Final = b"vcpd.mac.coefficients"
"""PRG label under which the tossed seed expands into the coefficients h_j."""

MAC_FAILURE_MESSAGE: Final = (
    f"{FAILURE_MARKER}: a VCP deviated from the protocol; nothing opened since the last check is trusted"
)

THREAD_ELEMENTS: Final = 1 << 16
"""With ``worker_threads``, checks of at least this many elements compute σ_i
in a worker thread (see ``OnlineParty(worker_threads=...)``)."""


class OpeningLog:
    """What one party still has to check: opened values (as this party saw
    them) and its MAC shares of them."""

    __slots__ = ("_macs", "_pending", "_values")

    def __init__(self) -> None:
        self._values: list[FieldArray] = []
        self._macs: list[FieldArray] = []
        self._pending = 0

    @property
    def pending(self) -> int:
        """Opened elements not yet covered by a successful check."""
        return self._pending

    def record(self, opened: FieldArray, own_macs: FieldArray) -> None:
        """Remember an opening: the public values and this party's MAC shares."""
        if len(opened) != len(own_macs):
            raise ValueError(f"{len(opened)} opened values but {len(own_macs)} MAC shares")
        if len(opened):
            self._values.append(opened)
            self._macs.append(own_macs)
            self._pending += len(opened)

    def parts(self) -> list[tuple[FieldArray, FieldArray]]:
        """The pending openings as recorded: (opened values, own MAC shares) each."""
        return list(zip(self._values, self._macs, strict=True))

    def combined(self, field: PrimeField) -> tuple[FieldArray, FieldArray]:
        """All pending opened values and own MAC shares, each as one vector."""
        if len(self._values) == 1:
            return self._values[0], self._macs[0]
        return field.concat(self._values), field.concat(self._macs)

    def clear(self) -> None:
        """Forget everything: called only after a successful check."""
        self._values.clear()
        self._macs.clear()
        self._pending = 0


@dataclass(slots=True)
class EarlySeed:
    """A coin toss for the next check whose commitment round already happened.

    Attributes:
        label: the label of the check it belongs to (``"mac.3"``).
        opening: this party's opening (its contribution ‖ nonce), kept secret
            until every opening the check covers has been received.
        commitments: every party's commitment as received (own included;
            checked when the check runs).
    """

    label: str
    opening: bytes
    commitments: dict[int, Any]

    def __repr__(self) -> str:  # the opening is secret until revealed
        return f"<EarlySeed {self.label} parties={sorted(self.commitments)}>"


def early_seed_commitment(party: int, session_id: str, label: str) -> tuple[bytes, bytes]:
    """A fresh seed contribution for the check ``label``: (commitment, opening).

    Send the commitment under ``<label>.seed.early`` no later than with the
    first opening the check will cover; keep the opening for :class:`EarlySeed`.
    """
    return commit(party, session_id, f"{label}.seed", os.urandom(SEED_BYTES))


def _compare_views(session_id: str, party: int, mine: bytes, theirs: dict[int, Any]) -> None:
    """Raise unless every peer's combination a of the opened values equals ours."""
    for other in sorted(theirs):
        if other == party:
            continue
        value = theirs[other]
        if not isinstance(value, bytes) or len(value) != len(mine):
            raise MacCheckFailure(
                session_id,
                f"{FAILURE_MARKER}: VCP {other} sent a malformed combination of the opened values; "
                "nothing opened since the last check is trusted",
            )
        if not hmac.compare_digest(value, mine):
            raise MacCheckFailure(
                session_id,
                f"{FAILURE_MARKER}: VCP {other}'s combination of the opened values differs from this VCP's "
                "(broadcast mismatch: a VCP sent different or wrong values in an opening); "
                "nothing opened since the last check is trusted",
            )


async def batch_mac_check(
    exchange: Exchange,
    *,
    session_id: str,
    party: int,
    field: PrimeField,
    alpha_share: int,
    log: OpeningLog,
    label: str,
    worker_threads: bool = False,
    early: EarlySeed | None = None,
) -> int:
    """Check every opening in ``log``; clear it on success.

    Four rounds labelled ``<label>.seed.commit``, ``<label>.seed.open``,
    ``<label>.sigma.commit`` and ``<label>.sigma.open``. All parties must call
    it at the same point of the protocol (they hold the same number of pending
    openings, so either all run it or, with nothing pending, none does).

    With ``early`` (every party's seed commitment already exchanged, see
    :class:`EarlySeed`) the first two rounds become one,
    ``<label>.seed.reveal``: three rounds in all.

    Returns:
        The number of opened elements checked (0: nothing was pending, no
        message was sent).

    Raises:
        MacCheckFailure: Σσ_i ≠ 0, a broadcast mismatch, an invalid
            commitment, or a peer aborted the session reporting one of those.
        SessionAborted, PeerUnavailable: the session failed for another
            reason; the check did not pass either.
    """
    checked = log.pending
    if checked == 0:
        return 0
    try:
        seed_label = f"{label}.seed"
        if early is None:
            # Rounds 1-2: coin toss for the seed.
            commitment, opening = commit(party, session_id, seed_label, os.urandom(SEED_BYTES))
            commitments = await exchange(f"{seed_label}.commit", commitment)
            check_commitments(session_id, commitments)
            openings = await exchange(f"{seed_label}.open", opening)
        else:
            # Round 1: the commitments came early; reveal.
            if early.label != label:
                raise VcpInternalError(f"early seed of check {early.label} used for check {label}")
            commitments = early.commitments
            check_commitments(session_id, commitments)
            openings = await exchange(f"{seed_label}.reveal", early.opening)
        seed = combine_seed(session_id, seed_label, verify_openings(session_id, seed_label, commitments, openings))

        # Local: a = h·v over this party's view and σ_i = h·m − α_i·a, end to end;
        # h = field.coefficients(seed, checked), generated and used chunk by chunk.
        def local_sums() -> tuple[int, int]:
            parts = log.parts()
            mac_dot, value_dot = field.coefficient_dots(
                seed, [[macs for _, macs in parts], [values for values, _ in parts]], label=COEFFICIENT_LABEL
            )
            return value_dot % field.p, (mac_dot - alpha_share * value_dot) % field.p

        if worker_threads and checked >= THREAD_ELEMENTS:
            combined, sigma = await trio.to_thread.run_sync(local_sums)  # keeps the event loop responsive
        else:
            combined, sigma = local_sums()

        # Rounds 3-4: commit-then-open σ_i, the views' combinations compared in
        # round 3; accept iff they all agree and Σσ_i = 0.
        sigma_label = f"{label}.sigma"
        view = field.int_to_bytes(combined)
        commitment, opening = commit(party, session_id, sigma_label, field.int_to_bytes(sigma))
        round3 = await exchange(f"{sigma_label}.commit", [commitment, view])
        commitments = {}
        for sender, payload in round3.items():
            if not isinstance(payload, list | tuple) or len(payload) != 2:
                raise invalid_commitment(session_id, sender)
            commitments[sender] = payload[0]
        check_commitments(session_id, commitments)
        _compare_views(session_id, party, view, {sender: payload[1] for sender, payload in round3.items()})
        sigmas = verify_openings(session_id, sigma_label, commitments, await exchange(f"{sigma_label}.open", opening))
        total = 0
        for sender in sorted(sigmas):
            try:
                total += field.int_from_bytes(sigmas[sender])
            except FieldError:
                raise invalid_commitment(session_id, sender) from None
        if total % field.p:
            raise MacCheckFailure(session_id, MAC_FAILURE_MESSAGE)
    except MacCheckFailure:
        raise
    except SessionAborted as exc:
        if FAILURE_MARKER in exc.reason:
            # A peer found the failure first and aborted; report the same cause.
            raise MacCheckFailure(session_id, f"{FAILURE_MARKER} (detected by another VCP: {exc.reason})") from exc
        raise
    log.clear()
    return checked
