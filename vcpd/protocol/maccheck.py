"""The batched SPDZ MAC check and the log of openings it covers.

Partial openings (mpc-notes §1.3) reveal Σ x_i but not whether anyone lied
about its x_i: that is only established by the MAC check, which proves, for
all pending opened values v_j at once, that Σ_i m_{j,i} = α·v_j
(mpc-notes §1.6, the N ≥ 10 path used for every N):

1. toss a seed with commit-then-open coin tossing (two rounds); the first
   round also carries this party's digests of everything each peer broadcast
   (broadcast consistency, mpc-notes §1.3);
2. expand coefficients h_j = PRG(seed) — only now, after every MAC share is
   fixed, so no one can aim an error at a known combination. Each h_j is
   uniform over 2^(bits−1) field elements (:meth:`PrimeField.coefficients`;
   2^127 for the default prime), so a nonzero error vector vanishes in the
   combination with probability at most 2^-(bits−1) < 2/p;
3. σ_i = Σ h_j·m_{j,i} − α_i·Σ h_j·v_j (two vectorised dot products, reduced
   once at the end);
4. commit-then-open the σ_i (two rounds); accept iff Σ σ_i = 0.

**Early seed commitments** (``OnlineParty(precommit_seed=True)``): the seed
commitments of step 1 may instead travel in the same flight as the first
opening after the previous check (step ``<label>.seed.early``). Each party
still reveals its contribution only after it has received every opening the
check covers and every party's commitment, so every opened share is fixed
before anyone can know the seed, and no contribution can depend on another:
the coin toss is exactly as good, and the check takes three rounds after the
last opening instead of four (``<label>.seed.reveal`` carries the opening and
the digests, then the two σ rounds). See :class:`EarlySeed`.

A party that shifted an opened value passes with probability about 2/p.
Detection means abort, not identification: the failure message says that a
VCP deviated and that nothing opened since the last good check is trusted; it
never carries σ values, shares or digests.

Invariant kept by callers: **no value derived from an opening leaves the VC
before a MAC check covering that opening has succeeded** (mpc-notes §2.6).

This module must not import vcpd.net, vcpd.testing, services, api, node or
daemon; from vcpd it uses only errors, math and this package.
"""

from __future__ import annotations

import hashlib
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
    commit_and_open,
    invalid_commitment,
    verify_openings,
)

__all__ = [
    "COEFFICIENT_LABEL",
    "DIGEST_BYTES",
    "MAC_FAILURE_MESSAGE",
    "THREAD_ELEMENTS",
    "EarlySeed",
    "OpeningLog",
    "batch_mac_check",
    "early_seed_commitment",
]

DIGEST_BYTES: Final = 32
"""Length of one running broadcast digest (BLAKE2b-256)."""

COEFFICIENT_LABEL: Final = b"vcpd.mac.coefficients"
"""PRG label under which the tossed seed expands into the coefficients h_j."""

MAC_FAILURE_MESSAGE: Final = (
    f"{FAILURE_MARKER}: a VCP deviated from the protocol; nothing opened since the last check is trusted"
)

THREAD_ELEMENTS: Final = 1 << 16
"""With ``worker_threads``, checks of at least this many elements compute σ_i
in a worker thread (see ``OnlineParty(worker_threads=...)``)."""

_PERSON_BROADCAST: Final = b"vcpd.bcast"


class OpeningLog:
    """What one party still has to check: opened values, its MAC shares of
    them, and running digests of every peer's broadcasts.

    With two parties there is nobody to compare a peer's broadcasts with, so
    no digests are kept (the check is vacuous there and hashing would only
    cost time).
    """

    __slots__ = ("_hashers", "_macs", "_n_parties", "_party", "_pending", "_values")

    def __init__(self, party: int, n_parties: int) -> None:
        self._party = party
        self._n_parties = n_parties
        self._values: list[FieldArray] = []
        self._macs: list[FieldArray] = []
        self._pending = 0
        self._hashers: dict[int, Any] = {}
        self._reset_hashers()

    def _reset_hashers(self) -> None:
        self._hashers = (
            {
                peer: hashlib.blake2b(digest_size=DIGEST_BYTES, person=_PERSON_BROADCAST)
                for peer in range(self._n_parties)
                if peer != self._party
            }
            if self._n_parties > 2
            else {}
        )

    @property
    def pending(self) -> int:
        """Opened elements not yet covered by a successful check."""
        return self._pending

    @property
    def tracks_broadcasts(self) -> bool:
        """Whether :meth:`heard` does anything (only with three or more parties)."""
        return bool(self._hashers)

    def record(self, opened: FieldArray, own_macs: FieldArray) -> None:
        """Remember an opening: the public values and this party's MAC shares."""
        if len(opened) != len(own_macs):
            raise ValueError(f"{len(opened)} opened values but {len(own_macs)} MAC shares")
        if len(opened):
            self._values.append(opened)
            self._macs.append(own_macs)
            self._pending += len(opened)

    def heard(self, peer: int, step: str, payload: bytes) -> None:
        """Fold one broadcast from ``peer`` (labelled ``step``) into its digest.

        Length prefixes keep (step, payload) pairs unambiguous. hashlib drops
        the GIL on large inputs, so callers may run this in a worker thread.
        """
        hasher = self._hashers.get(peer)
        if hasher is None:
            return
        label = step.encode()
        hasher.update(len(label).to_bytes(8, "little") + label + len(payload).to_bytes(8, "little"))
        hasher.update(payload)

    def digests(self) -> bytes:
        """One digest per party, in party order; this party's own slot is zeros."""
        zero = bytes(DIGEST_BYTES)
        return b"".join(self._hashers[k].digest() if k in self._hashers else zero for k in range(self._n_parties))

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
        self._reset_hashers()


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


def _compare_digests(session_id: str, party: int, n_parties: int, round1: dict[int, Any]) -> None:
    """Raise unless every peer saw the same broadcasts from every third party."""
    mine = round1[party][1]
    size = DIGEST_BYTES * n_parties
    for other in sorted(round1):
        if other == party:
            continue
        theirs = round1[other][1]
        if not isinstance(theirs, bytes) or len(theirs) != size:
            raise MacCheckFailure(
                session_id,
                f"{FAILURE_MARKER}: broadcast mismatch: VCP {other} sent malformed digests; "
                "nothing opened since the last check is trusted",
            )
        for sender in range(n_parties):
            if sender in (party, other):
                continue
            span = slice(sender * DIGEST_BYTES, (sender + 1) * DIGEST_BYTES)
            if not hmac.compare_digest(mine[span], theirs[span]):
                raise MacCheckFailure(
                    session_id,
                    f"{FAILURE_MARKER}: broadcast mismatch: VCP {other} and this VCP received different "
                    f"openings from VCP {sender}; nothing opened since the last check is trusted",
                )


def _split_round1(session_id: str, round1: dict[int, Any], *, check: bool = True) -> dict[int, Any]:
    """The seed commitments (or, for an early seed, openings) out of the round-1
    payloads ``[commitment or opening, digests]``."""
    firsts: dict[int, Any] = {}
    for sender, payload in round1.items():
        if not isinstance(payload, list | tuple) or len(payload) != 2:
            raise invalid_commitment(session_id, sender)
        firsts[sender] = payload[0]
    if check:
        check_commitments(session_id, firsts)
    return firsts


async def batch_mac_check(
    exchange: Exchange,
    *,
    session_id: str,
    party: int,
    n_parties: int,
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
            # Rounds 1-2: coin toss for the seed, digests riding along in round 1.
            commitment, opening = commit(party, session_id, seed_label, os.urandom(SEED_BYTES))
            round1 = await exchange(f"{seed_label}.commit", [commitment, log.digests()])
            commitments = _split_round1(session_id, round1)
            if log.tracks_broadcasts:
                _compare_digests(session_id, party, n_parties, round1)
            openings = await exchange(f"{seed_label}.open", opening)
        else:
            # Round 1: the commitments came early; reveal, digests riding along.
            if early.label != label:
                raise VcpInternalError(f"early seed of check {early.label} used for check {label}")
            commitments = early.commitments
            check_commitments(session_id, commitments)
            round1 = await exchange(f"{seed_label}.reveal", [early.opening, log.digests()])
            openings = _split_round1(session_id, round1, check=False)
            if log.tracks_broadcasts:
                _compare_digests(session_id, party, n_parties, round1)
        seed = combine_seed(session_id, seed_label, verify_openings(session_id, seed_label, commitments, openings))

        # Local: σ_i = h·m − α_i·(h·v) over the recorded openings, end to end;
        # h = field.coefficients(seed, checked), generated and used chunk by chunk.
        def local_sigma() -> int:
            parts = log.parts()
            mac_dot, value_dot = field.coefficient_dots(
                seed, [[macs for _, macs in parts], [values for values, _ in parts]], label=COEFFICIENT_LABEL
            )
            return (mac_dot - alpha_share * value_dot) % field.p

        if worker_threads and checked >= THREAD_ELEMENTS:
            sigma = await trio.to_thread.run_sync(local_sigma)  # keeps the event loop responsive
        else:
            sigma = local_sigma()

        # Rounds 3-4: commit-then-open σ_i; accept iff Σσ_i = 0.
        sigmas = await commit_and_open(exchange, session_id, party, f"{label}.sigma", field.int_to_bytes(sigma))
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
