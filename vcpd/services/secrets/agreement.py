"""How the VCPs of one request agree before they act.

Every request of the secret store that involves the other VCPs (upload begin,
upload commit, download) first runs one exchange in its session: each VCP
sends its own verdict (go ahead, or the error code it would answer) and a
digest of what it received and found. Then

* if any VCP refuses, every VCP refuses promptly (rather than waiting for a
  partner that will never come): its own error if it has one, else the
  first refusal's code -- access is still decided by each VCP alone, this
  only makes them fail together;
* if the digests differ, the VCPs saw different requests (or hold different
  data) and all refuse with the caller's chosen error.

Digests are compared in constant time. Nothing here carries share values:
digests of client-sent masked values are safe to exchange, as every VCP gets
the same masked value anyway.

This module must not import the store or any vcpd module other than
:mod:`vcpd.errors` and :mod:`vcpd.protocol`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from vcpd.errors import RequestError, SessionAborted
from vcpd.protocol.transport import Session

__all__ = ["AGREE_STEP", "Agreement", "agree", "digest"]

AGREE_STEP: Final = "secrets.agree"
DIGEST_BYTES: Final = 32
_PERSON: Final = b"vcpd.secrets"

_PASSED_ON: Final = frozenset({"not-found", "forbidden", "conflict", "bad-request", "tuples-exhausted"})
"""Refusal codes a VCP repeats when a peer refuses; anything else becomes ``aborted``."""


def digest(*parts: bytes | str | int) -> bytes:
    """BLAKE2b-256 over length-prefixed parts, so no two part lists collide."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES, person=_PERSON)
    for part in parts:
        if isinstance(part, int):
            data = part.to_bytes(16, "little", signed=True)
        elif isinstance(part, str):
            data = part.encode("utf-8")
        else:
            data = part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.digest()


@dataclass(frozen=True, slots=True)
class Agreement:
    """What the exchange produced when every VCP agreed.

    Attributes:
        extras: party -> the ``extra`` value that party sent.
    """

    extras: Mapping[int, Any]


async def agree(
    session: Session,
    refusal: RequestError | None,
    own_digest: bytes,
    *,
    mismatch: Callable[[], RequestError],
    extra: Any = None,
) -> Agreement | RequestError:
    """Exchange verdicts and digests; return the agreement or the error to answer.

    The error is returned, not raised, so the caller can leave its session
    normally: raising inside it would send abort notices that could overtake
    the verdict on a slower peer and turn a clear ``not-found`` into a vague
    ``aborted`` there.

    Raises:
        SessionAborted: a peer sent a malformed verdict.
        PeerUnavailable: a peer is unreachable.
    """
    payload = {
        "ok": refusal is None,
        "code": "" if refusal is None else refusal.code,
        "digest": own_digest,
        "extra": extra,
    }
    replies = await session.exchange(AGREE_STEP, payload)
    refusals: list[tuple[int, str]] = []
    digests_match = True
    extras: dict[int, Any] = {}
    for peer in sorted(replies):
        reply = replies[peer]
        if (
            not isinstance(reply, dict)
            or not isinstance(reply.get("ok"), bool)
            or not isinstance(reply.get("code"), str)
            or not isinstance(reply.get("digest"), bytes)
        ):
            raise SessionAborted(session.id, f"VCP {peer} sent a malformed agreement message")
        if not reply["ok"]:
            refusals.append((peer, reply["code"]))
        elif not hmac.compare_digest(reply["digest"], own_digest):
            digests_match = False
        extras[peer] = reply.get("extra")
    if refusal is not None:
        return refusal
    if refusals:
        peer, code = refusals[0]
        if code not in _PASSED_ON:
            return RequestError("aborted", f"VCP {peer} refused the request ({code[:40]!r})")
        return RequestError(code, f"VCP {peer} refused the request ({code}); see its answer for details")
    if not digests_match:
        return mismatch()
    return Agreement(extras=extras)
