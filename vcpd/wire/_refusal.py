"""Handshake refusal messages: how the side that gives up tells the other why.

A refusal body is a small msgpack map ``{"kind", "message", "diffs"}``.
``kind`` selects the exception the receiver raises ("auth" ->
:class:`AuthenticationError`, "params" -> :class:`ParameterMismatch`, anything
else -> :class:`HandshakeError`); ``diffs`` carries parameter differences as
``[key, sender's value, receiver's value]`` so the receiver can phrase them
from its own point of view ("ours ..., theirs ...").

The text comes from the other side, possibly from an attacker when the refusal
is unauthenticated, so it is cut and stripped of control characters before it
goes into an exception message (and from there into logs).

This module must not import trio, sockets, or any vcpd module other than
:mod:`vcpd.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgpack

from vcpd.errors import AuthenticationError, HandshakeError

from .params import MAX_PARAM_KEY, MAX_PARAM_VALUE, MAX_PARAMS, Difference, mismatch_error

KIND_AUTH: Final = "auth"
KIND_PARAMS: Final = "params"
KIND_PROTOCOL: Final = "protocol"
KIND_REFUSED: Final = "refused"

MAX_REASON: Final = 500
"""Longest refusal text kept from the other side, in characters."""


def encode_refusal(kind: str, message: str, diffs: Sequence[Difference] = (), *, sender: int | None = None) -> bytes:
    """Serialize a refusal body (to be sent in clear or encrypted by the caller).

    ``sender`` is the refusing side's party id, so that a responder refused
    before the initiator identified itself can still say who refused (as a
    claim: the refusal carries no signature).
    """
    rows = [[d.key, d.ours, d.theirs] for d in diffs[:MAX_PARAMS]]
    body = {"kind": kind, "message": message[:MAX_REASON], "diffs": rows, "party": sender}
    encoded: bytes = msgpack.packb(body, use_bin_type=True)
    return encoded


def clean_text(text: str, limit: int = MAX_REASON) -> str:
    """Make remote text safe for one log line: printable only, bounded."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text[: limit + 1])
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "…"


def refusal_error(body: bytes, *, who: str, authenticated: bool, identified: bool = True) -> HandshakeError:
    """Turn a received refusal body into the error this side raises.

    Args:
        body: the decrypted (or plaintext) refusal body.
        who: the other side, as named in messages ("party 1", "the VCP", ...).
        authenticated: whether the refusal arrived encrypted under handshake
            keys; unauthenticated refusals are labelled so, since anyone on
            the path could have injected them.
        identified: whether ``who`` is already known; if not, the party id
            the refusal claims is quoted (marked unverified).
    """
    source = who if authenticated else f"{who} (unauthenticated)"
    try:
        decoded = msgpack.unpackb(body, raw=False, strict_map_key=True, use_list=True)
    except Exception:  # any malformed msgpack: we still know it was a refusal
        decoded = None
    if not isinstance(decoded, dict):
        return HandshakeError(f"refused by {source} (unreadable reason)")
    party = decoded.get("party")
    if not identified and type(party) is int and 0 <= party < 1 << 31:
        source = f"{source} (claiming party {party}, unverified)"
    kind, message, rows = decoded.get("kind"), decoded.get("message"), decoded.get("diffs")
    text = clean_text(message) if isinstance(message, str) else "(no reason given)"
    if kind == KIND_PARAMS and isinstance(rows, list):
        diffs = _read_diffs(rows)
        if diffs:
            return mismatch_error(diffs, prefix=f"refused by {source}: VC parameters differ")
    if kind == KIND_AUTH:
        return AuthenticationError(f"refused by {source}: {text}")
    return HandshakeError(f"refused by {source}: {text}")


def _read_diffs(rows: list[object]) -> list[Difference]:
    diffs: list[Difference] = []
    for row in rows[:MAX_PARAMS]:
        if not (isinstance(row, list) and len(row) == 3):
            return []
        key, theirs, ours = row  # the sender's "ours" is our "theirs"
        if not isinstance(key, str) or not all(v is None or isinstance(v, str) for v in (ours, theirs)):
            return []
        diffs.append(
            Difference(
                clean_text(key, MAX_PARAM_KEY),
                None if ours is None else clean_text(ours, MAX_PARAM_VALUE),
                None if theirs is None else clean_text(theirs, MAX_PARAM_VALUE),
            )
        )
    return diffs
