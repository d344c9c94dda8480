"""Coin tossing spread over protocol rounds, and the named batched MAC check.

MASCOT needs several public random values, each of which must be fixed only
after the inputs it tests are fixed: the combination coefficients (after the
Gilboa products), the MAC-generation and sacrifice coefficients (after the
authentication), the MAC-check coefficients (after the openings). Each is a
commit-then-open coin toss (:mod:`vcpd.protocol.commit`) whose commitment
rides on the round that fixes those inputs and whose opening is the next
round, so tossing costs one extra round instead of two.

:func:`named_mac_check` is the batched SPDZ MAC check (mpc-notes §1.6) run
on several independent groups of openings at once — here MASCOT's
MAC-generation check and the sacrifice — with one coin toss and one
commit-then-open of all σ_i, so that a failure names the check that failed.
With three or more parties the round also compares digests of what every
party received in the opening round (broadcast consistency).

This module must not import vcpd.net, vcpd.testing, services, api, node or
daemon; from vcpd it uses only errors, math and vcpd.protocol.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from typing import Any, Final

from vcpd.errors import FieldError, MacCheckFailure, SessionAborted
from vcpd.math import FieldArray, PrimeField

from ..commit import FAILURE_MARKER, SEED_BYTES, check_commitments, combine_seed, commit, invalid_commitment, verify_openings
from ..rounds import exchange_all
from ..transport import Session
from ._common import DEFAULT_TIMEOUT

__all__ = ["CoinToss", "broadcast_digest", "named_mac_check", "open_values"]

_PERSON_BCAST: Final = b"vcpd.mascot.bc"


class CoinToss:
    """A seed tossed by all parties: commit now, open in a later round."""

    def __init__(self, session_id: str, party: int, label: str) -> None:
        self._sid = session_id
        self._label = label
        self.commitment, self.opening = commit(party, session_id, label, os.urandom(SEED_BYTES))
        self._commitments: dict[int, Any] = {party: self.commitment}

    def accept(self, commitments: Mapping[int, Any]) -> None:
        """Record the peers' commitments (MacCheckFailure if malformed)."""
        self._commitments.update(commitments)
        check_commitments(self._sid, self._commitments)

    def seed(self, openings: Mapping[int, Any]) -> bytes:
        """The tossed seed from every party's opening (own included)."""
        return combine_seed(self._sid, self._label, verify_openings(self._sid, self._label, self._commitments, openings))


def broadcast_digest(step: str, payload: bytes) -> bytes:
    """Digest of one party's broadcast at ``step`` (for the consistency check)."""
    label = step.encode()
    return hashlib.blake2b(len(label).to_bytes(8, "little") + label + payload, digest_size=32, person=_PERSON_BCAST).digest()


def _compare(session_id: str, me: int, n_parties: int, mine: bytes, theirs: Mapping[int, Any]) -> None:
    size = 32 * n_parties
    for other, digests in sorted(theirs.items()):
        if other == me:
            continue
        if not isinstance(digests, bytes) or len(digests) != size:
            raise MacCheckFailure(session_id, f"{FAILURE_MARKER}: broadcast mismatch: VCP {other} sent malformed digests")
        for sender in range(n_parties):
            if sender in (me, other):
                continue
            span = slice(32 * sender, 32 * (sender + 1))
            if not hmac.compare_digest(mine[span], digests[span]):
                raise MacCheckFailure(
                    session_id,
                    f"{FAILURE_MARKER}: broadcast mismatch: VCP {other} and this VCP received different openings "
                    f"from VCP {sender}",
                )


async def open_values(session: Session, field: PrimeField, step: str, shares: FieldArray, coins: CoinToss) -> tuple[FieldArray, bytes]:
    """Open ``shares`` (one broadcast round, ``coins``' commitment riding along).

    Returns the opened values and this party's digests of every peer's
    broadcast (for :func:`named_mac_check`'s consistency comparison); records
    the peers' commitments in ``coins``.
    """
    sid, me = session.id, session.party
    got = await exchange_all(session, step, [shares.to_bytes(), coins.commitment])
    opened = shares
    digests = []
    commitments = {}
    for sender in range(session.n_parties):
        payload = got[sender]
        if not isinstance(payload, list) or len(payload) != 2 or not isinstance(payload[0], bytes):
            raise SessionAborted(sid, f"VCP {sender} deviated from the protocol: malformed opening at {step!r}")
        if sender != me:
            try:
                theirs = field.from_bytes(payload[0])
            except FieldError:
                theirs = None
            if theirs is None or len(theirs) != len(shares):
                raise SessionAborted(sid, f"VCP {sender} deviated from the protocol: malformed opening at {step!r}")
            opened = opened + theirs
        digests.append(broadcast_digest(step, payload[0]) if sender != me else bytes(32))
        commitments[sender] = payload[1]
    coins.accept(commitments)
    return opened, b"".join(digests)


async def named_mac_check(
    session: Session,
    field: PrimeField,
    alpha: int,
    coins: CoinToss,
    groups: Sequence[tuple[str, FieldArray, FieldArray]],
    *,
    label: str,
    digests: bytes,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Check Σ_i m_i = α·v for every group (name, opened values v, own MAC shares m).

    ``coins`` must have been committed in the round that opened the values
    (its commitments accepted). Three rounds: coin opening with broadcast
    digests, σ commitments, σ openings.

    Raises:
        MacCheckFailure: naming the first group whose check failed, or
            "invalid commitment" / "broadcast mismatch".
    """
    sid, me, n = session.id, session.party, session.n_parties
    got = await exchange_all(session, f"{label}.seed", [coins.opening, digests], timeout=timeout)
    openings: dict[int, Any] = {}
    for sender, payload in got.items():
        if not isinstance(payload, list) or len(payload) != 2:
            raise invalid_commitment(sid, sender)
        openings[sender] = payload[0]
    if n > 2:
        _compare(sid, me, n, digests, {k: v[1] for k, v in got.items()})
    seed = coins.seed(openings)
    sigmas = []
    for index, (_, values, macs) in enumerate(groups):
        h = field.random_seeded(seed, len(values), label=b"vcpd.mascot.mac.%d" % index)
        sigmas.append((h.dot(macs) - alpha * h.dot(values)) % field.p)
    message = b"".join(field.int_to_bytes(s) for s in sigmas)
    commitment, opening = commit(me, sid, f"{label}.sigma", message)
    commitments = await exchange_all(session, f"{label}.sigma.commit", commitment, timeout=timeout)
    check_commitments(sid, commitments)
    opened = await exchange_all(session, f"{label}.sigma.open", opening, timeout=timeout)
    messages = verify_openings(sid, f"{label}.sigma", commitments, opened)
    totals = [0] * len(groups)
    for sender, data in messages.items():
        if len(data) != 16 * len(groups):
            raise invalid_commitment(sid, sender)
        for index in range(len(groups)):
            try:
                totals[index] += field.int_from_bytes(data[16 * index : 16 * (index + 1)])
            except FieldError:
                raise invalid_commitment(sid, sender) from None
    for (name, _, _), total in zip(groups, totals, strict=True):
        if total % field.p:
            raise MacCheckFailure(
                sid, f"{name}: the batched MAC check did not pass, so a VCP deviated from the protocol; the batch is discarded"
            )
