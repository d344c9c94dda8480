"""Hash commitments, commit-then-open rounds and coin tossing between all VCPs.

Why commitments: in a round where every party reveals a value, the party that
speaks last could choose its value after seeing everyone else's (a *rushing*
adversary). Committing first and opening afterwards fixes every contribution
before any is revealed. The MAC check uses this twice (mpc-notes §1.6): to toss
the seed of its coefficients, and to reveal the σ_i.

The scheme is BLAKE2b-256 over a length-prefixed encoding of::

    party (u32) ‖ session id ‖ label ‖ message ‖ 32 random bytes (the nonce)

so a commitment is bound to its author, its session and its protocol step: it
cannot be replayed by another party, in another session or at another step.
The opening sent over the wire is ``message ‖ nonce``. Hiding rests on the 256
bits of nonce, binding on the collision resistance of BLAKE2b.

Round functions take an :data:`Exchange` callable (send one payload to every
peer, collect theirs, own included) rather than a session, so the caller
decides on time limits and accounting.

This module must not import anything from vcpd except ``vcpd.errors``; no
trio, no I/O beyond ``os.urandom``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from vcpd.errors import MacCheckFailure

__all__ = [
    "COMMITMENT_BYTES",
    "FAILURE_MARKER",
    "NONCE_BYTES",
    "SEED_BYTES",
    "Exchange",
    "check_commitments",
    "coin_toss",
    "combine_seed",
    "commit",
    "commit_and_open",
    "invalid_commitment",
    "open_commitment",
    "verify_openings",
]

COMMITMENT_BYTES: Final = 32
"""Length of a commitment (BLAKE2b-256 digest)."""

NONCE_BYTES: Final = 32
"""Random bytes appended to every committed message (the hiding part)."""

SEED_BYTES: Final = 32
"""Length of a tossed seed and of each party's contribution to it."""

FAILURE_MARKER: Final = "MAC check failed"
"""Every failure reason of the MAC check contains this phrase.

A VCP that detects a failure aborts the session; its peers see the reason in
the abort notice and report the same :class:`~vcpd.errors.MacCheckFailure`
whichever VCP noticed first (see :mod:`vcpd.protocol.maccheck`).
"""

_PERSON_COMMIT: Final = b"vcpd.commit"
_PERSON_COINS: Final = b"vcpd.coins"

Exchange = Callable[[str, Any], Awaitable[dict[int, Any]]]
"""``await exchange(step, payload)``: send payload to every peer under label
``step`` and return every party's payload (this party's own included)."""


def _encode(party: int, session_id: str, label: str, message: bytes, nonce: bytes) -> bytes:
    sid, lab = session_id.encode(), label.encode()
    return b"".join(
        (
            party.to_bytes(4, "little"),
            len(sid).to_bytes(8, "little"),
            sid,
            len(lab).to_bytes(8, "little"),
            lab,
            len(message).to_bytes(8, "little"),
            message,
            nonce,
        )
    )


def _digest(party: int, session_id: str, label: str, message: bytes, nonce: bytes) -> bytes:
    data = _encode(party, session_id, label, message, nonce)
    return hashlib.blake2b(data, digest_size=COMMITMENT_BYTES, person=_PERSON_COMMIT).digest()


def commit(party: int, session_id: str, label: str, message: bytes) -> tuple[bytes, bytes]:
    """Commit to ``message`` as ``party`` at step ``label`` of ``session_id``.

    Returns:
        ``(commitment, opening)``: send the commitment first and the opening
        (``message ‖ nonce``) only once every party's commitment has arrived.
    """
    nonce = os.urandom(NONCE_BYTES)
    return _digest(party, session_id, label, message, nonce), message + nonce


def open_commitment(party: int, session_id: str, label: str, commitment: object, opening: object) -> bytes | None:
    """The committed message if ``opening`` opens ``commitment`` of ``party``, else None.

    Both arguments come off the wire and are type-checked here; the digest
    comparison is constant-time.
    """
    if not isinstance(commitment, bytes) or len(commitment) != COMMITMENT_BYTES:
        return None
    if not isinstance(opening, bytes) or len(opening) < NONCE_BYTES:
        return None
    message, nonce = opening[:-NONCE_BYTES], opening[-NONCE_BYTES:]
    if not hmac.compare_digest(_digest(party, session_id, label, message, nonce), commitment):
        return None
    return message


def invalid_commitment(session_id: str, party: int) -> MacCheckFailure:
    """The error for a commitment that ``party`` failed to open (or never made properly)."""
    return MacCheckFailure(
        session_id,
        f"{FAILURE_MARKER}: invalid commitment from VCP {party}; nothing opened since the last check is trusted",
    )


def check_commitments(session_id: str, commitments: Mapping[int, Any]) -> None:
    """Raise MacCheckFailure naming the first party whose commitment is malformed."""
    for party in sorted(commitments):
        value = commitments[party]
        if not isinstance(value, bytes) or len(value) != COMMITMENT_BYTES:
            raise invalid_commitment(session_id, party)


def verify_openings(
    session_id: str, label: str, commitments: Mapping[int, Any], openings: Mapping[int, Any]
) -> dict[int, bytes]:
    """Every party's committed message, or MacCheckFailure naming the first bad one."""
    messages: dict[int, bytes] = {}
    for party in sorted(commitments):
        message = open_commitment(party, session_id, label, commitments[party], openings.get(party))
        if message is None:
            raise invalid_commitment(session_id, party)
        messages[party] = message
    return messages


async def commit_and_open(
    exchange: Exchange, session_id: str, party: int, label: str, message: bytes
) -> dict[int, bytes]:
    """Reveal ``message`` to every party, fixed before anyone's is seen.

    Two rounds: ``<label>.commit`` carries the commitments, ``<label>.open``
    the openings. Every party's message is returned (own included).

    Raises:
        MacCheckFailure: some party sent a malformed commitment or an opening
            that does not match its commitment ("invalid commitment from VCP k").
    """
    commitment, opening = commit(party, session_id, label, message)
    commitments = await exchange(f"{label}.commit", commitment)
    check_commitments(session_id, commitments)
    openings = await exchange(f"{label}.open", opening)
    return verify_openings(session_id, label, commitments, openings)


def combine_seed(session_id: str, label: str, contributions: Mapping[int, bytes]) -> bytes:
    """Hash every party's contribution (in party order) into one seed.

    Raises:
        MacCheckFailure: a contribution does not have :data:`SEED_BYTES` bytes.
    """
    h = hashlib.blake2b(digest_size=SEED_BYTES, person=_PERSON_COINS)
    h.update(_encode(0, session_id, label, b"", b""))
    for party in sorted(contributions):
        share = contributions[party]
        if len(share) != SEED_BYTES:
            raise invalid_commitment(session_id, party)
        h.update(share)
    return h.digest()


async def coin_toss(exchange: Exchange, session_id: str, party: int, label: str) -> bytes:
    """A 32-byte seed that is uniform as long as one party is honest.

    Every party commits to 32 bytes from the OS CSPRNG, then opens; the seed is
    the BLAKE2b hash of all contributions. Two rounds (see :func:`commit_and_open`).
    """
    contributions = await commit_and_open(exchange, session_id, party, label, os.urandom(SEED_BYTES))
    return combine_seed(session_id, label, contributions)
