"""Message encodings: msgpack between VCPs, CBOR between clients and VCPs.

Peer link messages are msgpack arrays with an explicit type tag first::

    [1, session, step, payload]   PeerMessage: delivered to a session mailbox
    [2, session, reason]          Abort: the session stopped on the sender
    [3, nonce]                    Ping
    [4, nonce]                    Pong (echoes the ping's nonce)

Payloads are plain msgpack values; bulk data (shares, field vectors) must be
``bytes`` so it travels as one msgpack ``bin`` with no per-element encoding.

Client API messages are CBOR maps::

    request           {"id": uint, "op": str, "args": {str: value}}
    response          {"id": uint, "ok": value}
    error response    {"id": uint | null, "error": {"code": str, "message": str}}

Decoders treat their input as hostile: anything malformed, oversized,
too deeply nested or outside the accepted value types raises
:class:`vcpd.errors.WireError` and nothing else. Encoders check the same
rules and raise :class:`ValueError` for a value we must not send.

This module must not import trio, sockets, or any vcpd module other than
:mod:`vcpd.errors`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import cbor2
import msgpack

from vcpd.errors import WireError

from ._cborbulk import BULK_BYTES, decode_checked, encode_with_bulk, has_bulk
from ._cborcheck import CborRejected, check_cbor

__all__ = [
    "MAX_API_MESSAGE",
    "MAX_DEPTH",
    "MAX_LABEL",
    "Abort",
    "ErrorResponse",
    "PeerFrame",
    "PeerMessage",
    "Ping",
    "Pong",
    "Request",
    "Response",
    "decode_peer",
    "decode_request",
    "decode_response",
    "encode_peer",
    "encode_peer_parts",
    "encode_request",
    "encode_response",
]

MAX_LABEL: Final = 256
"""Longest session id or step label, in characters."""

MAX_REASON: Final = 1000
"""Longest abort reason, in characters."""

MAX_DEPTH: Final = 32
"""Deepest nesting of lists and maps in a payload or API value."""

MAX_API_MESSAGE: Final = 256 << 20
"""Largest encoded API message (the channel's message limit)."""

MAX_API_ITEMS: Final = 1 << 20
"""Most CBOR data items in one API message; bulk data belongs in byte strings."""

MAX_REQUEST_ID: Final = (1 << 63) - 1
MAX_ERROR_MESSAGE: Final = 4096

_NAME: Final = re.compile(r"[a-z][a-z0-9_.\-]{0,63}")
_TAG_MESSAGE, _TAG_ABORT, _TAG_PING, _TAG_PONG = 1, 2, 3, 4
_MAX_NONCE: Final = (1 << 64) - 1
_FAST_BINARY: Final = 1 << 16  # bin 32 header from here on (msgpack uses it from 64 KiB)


# ------------------------------------------------------------------ peer link


@dataclass(frozen=True, slots=True)
class PeerMessage:
    """A protocol message for the mailbox ``(session, step)`` on the receiving VCP."""

    session: str
    step: str
    payload: Any


@dataclass(frozen=True, slots=True)
class Abort:
    """The sender aborted ``session``; the receiver should abort it too."""

    session: str
    reason: str


@dataclass(frozen=True, slots=True)
class Ping:
    """Liveness probe; answered with a :class:`Pong` carrying the same nonce."""

    nonce: int


@dataclass(frozen=True, slots=True)
class Pong:
    """Answer to a :class:`Ping`."""

    nonce: int


PeerFrame: TypeAlias = PeerMessage | Abort | Ping | Pong


def encode_peer(message: PeerFrame) -> bytes:
    """Encode a peer link message (msgpack).

    Raises:
        ValueError: a label is empty or too long, or the payload holds a
            value msgpack peers do not accept.
    """
    if isinstance(message, PeerMessage):
        _check_label(message.session, "session")
        _check_label(message.step, "step")
        payload = message.payload
        if isinstance(payload, bytes | bytearray | memoryview) and len(payload) >= _FAST_BINARY:
            # Same bytes as packb, without its growing buffer: one copy, at memcpy speed.
            head = msgpack.packb([_TAG_MESSAGE, message.session, message.step], use_bin_type=True)
            size = memoryview(payload).nbytes
            return b"".join((b"\x94", head[1:], b"\xc6", size.to_bytes(4, "big"), payload))
        _check_value(payload, MAX_DEPTH, cbor=False)
        fields: list[Any] = [_TAG_MESSAGE, message.session, message.step, payload]
    elif isinstance(message, Abort):
        _check_label(message.session, "session")
        fields = [_TAG_ABORT, message.session, message.reason[:MAX_REASON]]
    elif isinstance(message, Ping | Pong):
        if type(message.nonce) is not int or not 0 <= message.nonce <= _MAX_NONCE:
            raise ValueError("ping nonce must be an int in 0..2**64-1")
        fields = [_TAG_PING if isinstance(message, Ping) else _TAG_PONG, message.nonce]
    else:
        raise ValueError(f"not a peer message: {type(message).__name__}")
    encoded: bytes = msgpack.packb(fields, use_bin_type=True)
    return encoded


def encode_peer_parts(message: PeerFrame) -> tuple[bytes, bytes | bytearray | memoryview]:
    """:func:`encode_peer` as ``(head, body)`` whose concatenation is the message.

    For a :class:`PeerMessage` with a bulk binary payload the body is that
    payload itself, so a sender can queue it without copying it into one
    buffer with its header; otherwise the body is empty.

    Raises:
        ValueError: as :func:`encode_peer`.
    """
    if isinstance(message, PeerMessage):
        payload = message.payload
        if isinstance(payload, bytes | bytearray | memoryview) and len(payload) >= _FAST_BINARY:
            _check_label(message.session, "session")
            _check_label(message.step, "step")
            head = msgpack.packb([_TAG_MESSAGE, message.session, message.step], use_bin_type=True)
            size = memoryview(payload).nbytes
            return b"".join((b"\x94", head[1:], b"\xc6", size.to_bytes(4, "big"))), payload
    return encode_peer(message), b""


def decode_peer(data: bytes) -> PeerFrame:
    """Decode a peer link message; raise :class:`WireError` if malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError("peer message must be bytes")
    try:
        fields = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True, ext_hook=_no_ext)
    except Exception as exc:  # msgpack raises many types; none may escape
        raise WireError(f"malformed peer message: {type(exc).__name__}") from None
    if not isinstance(fields, list) or not fields or type(fields[0]) is not int:
        raise WireError("malformed peer message: expected [type, ...]")
    tag, rest = fields[0], fields[1:]
    if tag == _TAG_MESSAGE and len(rest) == 3:
        session, step, payload = rest
        if _is_label(session) and _is_label(step):
            try:
                _check_value(payload, MAX_DEPTH, cbor=False)
            except ValueError as exc:
                raise WireError(f"malformed peer message payload: {exc}") from None
            return PeerMessage(session, step, payload)
    elif tag == _TAG_ABORT and len(rest) == 2:
        session, reason = rest
        if _is_label(session) and isinstance(reason, str) and len(reason) <= MAX_REASON:
            return Abort(session, reason)
    elif tag in (_TAG_PING, _TAG_PONG) and len(rest) == 1:
        nonce = rest[0]
        if type(nonce) is int and 0 <= nonce <= _MAX_NONCE:
            return Ping(nonce) if tag == _TAG_PING else Pong(nonce)
    if tag not in (_TAG_MESSAGE, _TAG_ABORT, _TAG_PING, _TAG_PONG):
        raise WireError(f"unknown peer message type {tag}")
    raise WireError(f"malformed peer message of type {tag}")


def _no_ext(code: int, data: bytes) -> None:
    raise ValueError(f"msgpack extension type {code} is not accepted")


def _check_label(value: object, what: str) -> None:
    if not _is_label(value):
        raise ValueError(f"{what} label must be a non-empty str of at most {MAX_LABEL} characters")


def _is_label(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_LABEL


def _check_value(value: object, depth: int, *, cbor: bool) -> None:
    """Accept only plain data: None, bool, int, float, str, bytes(-like), lists and maps.

    Map keys are str (or bytes for msgpack, int for CBOR). ``depth`` counts
    down the nesting still allowed. Raises ValueError naming the bad type.
    """
    if value is None or isinstance(value, bool | int | float | str | bytes | bytearray | memoryview):
        if not cbor and type(value) is int and not -(1 << 63) <= value < 1 << 64:
            raise ValueError("integers beyond 64 bits must travel as bytes")
        return
    if depth <= 0:
        raise ValueError(f"nested deeper than {MAX_DEPTH}")
    if isinstance(value, list | tuple):
        for item in value:
            _check_value(item, depth - 1, cbor=cbor)
        return
    if isinstance(value, dict):
        key_types = (str, int) if cbor else (str, bytes)
        for key, item in value.items():
            if not isinstance(key, key_types) or isinstance(key, bool):
                raise ValueError(f"map key of type {type(key).__name__} is not accepted")
            _check_value(item, depth - 1, cbor=cbor)
        return
    raise ValueError(f"values of type {type(value).__name__} are not accepted")


# ----------------------------------------------------------------- client API


@dataclass(frozen=True, slots=True)
class Request:
    """A client request: operation ``op`` with named ``args``; ``id`` pairs it with its response."""

    id: int
    op: str
    args: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Response:
    """A successful answer to request ``id``."""

    id: int
    ok: Any


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """A refused or failed request. ``code`` is stable and machine-readable.

    ``id`` is ``None`` only when the request was too malformed to read its id.
    """

    id: int | None
    code: str
    message: str


def encode_request(request: Request) -> bytes:
    """Encode a client request (CBOR); raise ValueError if it breaks the rules."""
    _check_id(request.id)
    if not isinstance(request.op, str) or not _NAME.fullmatch(request.op):
        raise ValueError(f"bad op name {request.op!r:.70}")
    if not isinstance(request.args, Mapping):
        raise ValueError("args must be a mapping")
    args = dict(request.args)
    if not all(isinstance(key, str) for key in args):
        raise ValueError("argument names must be str")
    _check_value(args, MAX_DEPTH - 1, cbor=True)  # the request map is one level
    return _dumps({"id": request.id, "op": request.op, "args": args})


def decode_request(data: bytes) -> Request:
    """Decode a client request; raise :class:`WireError` on anything malformed."""
    obj = _loads(data, "request")
    if set(obj) != {"id", "op", "args"}:
        raise WireError(f"request must have exactly the keys id, op, args (got {_keys(obj)})")
    ident, op, args = obj["id"], obj["op"], obj["args"]
    if not _is_id(ident):
        raise WireError("request id must be an integer in 0..2**63-1")
    if not isinstance(op, str) or not _NAME.fullmatch(op):
        raise WireError(f"request {ident}: bad op name")
    if not isinstance(args, dict) or not all(isinstance(key, str) for key in args):
        raise WireError(f"request {ident}: args must be a map with text keys")
    return Request(ident, op, args)


def encode_response(response: Response | ErrorResponse) -> bytes:
    """Encode a response or error response (CBOR); raise ValueError if malformed."""
    if isinstance(response, Response):
        _check_id(response.id)
        _check_value(response.ok, MAX_DEPTH - 1, cbor=True)
        return _dumps({"id": response.id, "ok": response.ok})
    if not isinstance(response, ErrorResponse):
        raise ValueError(f"not a response: {type(response).__name__}")
    if response.id is not None:
        _check_id(response.id)
    if not isinstance(response.code, str) or not _NAME.fullmatch(response.code):
        raise ValueError(f"bad error code {response.code!r:.70}")
    if not isinstance(response.message, str):
        raise ValueError("error message must be str")
    error = {"code": response.code, "message": response.message[:MAX_ERROR_MESSAGE]}
    return _dumps({"id": response.id, "error": error})


def decode_response(data: bytes) -> Response | ErrorResponse:
    """Decode a response; raise :class:`WireError` on anything malformed."""
    obj = _loads(data, "response")
    ident: Any = obj.get("id")
    if set(obj) == {"id", "ok"}:
        if not _is_id(ident):
            raise WireError("response id must be an integer in 0..2**63-1")
        return Response(ident, obj["ok"])
    if set(obj) != {"id", "error"}:
        raise WireError(f"response must have the keys id and ok, or id and error (got {_keys(obj)})")
    if ident is not None and not _is_id(ident):
        raise WireError("response id must be an integer in 0..2**63-1 or null")
    error = obj["error"]
    if not isinstance(error, dict) or set(error) != {"code", "message"}:
        raise WireError("error must be a map with exactly the keys code and message")
    code, message = error["code"], error["message"]
    if not isinstance(code, str) or not _NAME.fullmatch(code):
        raise WireError("error code must be a short lower-case name")
    if not isinstance(message, str) or len(message) > MAX_ERROR_MESSAGE:
        raise WireError("error message must be a str of bounded length")
    return ErrorResponse(ident, code, message)


def _dumps(obj: dict[str, Any]) -> bytes:
    try:
        # Bulk byte strings (shares, masked values) are spliced in with one copy.
        data = encode_with_bulk(obj) if has_bulk(obj) else cbor2.dumps(obj)
    except Exception as exc:  # cbor2 encode errors: a value we cannot send
        raise ValueError(f"cannot encode as CBOR: {exc}") from None
    if len(data) > MAX_API_MESSAGE:
        raise ValueError(f"encoded message of {len(data)} bytes exceeds {MAX_API_MESSAGE}")
    return data


def _loads(data: bytes, what: str) -> dict[Any, Any]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError(f"{what} must be bytes")
    if not isinstance(data, bytes):
        data = memoryview(data).cast("B")  # read in place (a reassembled message is a bytearray)
    if len(data) > MAX_API_MESSAGE:
        raise WireError(f"{what} of {len(data)} bytes exceeds {MAX_API_MESSAGE}")
    try:
        check_cbor(data, max_depth=MAX_DEPTH, max_items=MAX_API_ITEMS)
        if len(data) >= BULK_BYTES:  # big: our decoder copies each byte string once
            obj = decode_checked(data)
        else:
            obj = cbor2.loads(data, max_depth=MAX_DEPTH + 1, allow_indefinite=False, allow_duplicate_keys=False)
    except CborRejected as exc:
        raise WireError(f"malformed {what}: {exc}") from None
    except Exception as exc:  # cbor2 errors (bad UTF-8, duplicate keys, ...)
        raise WireError(f"malformed {what}: {type(exc).__name__}") from None
    if not isinstance(obj, dict):
        raise WireError(f"{what} must be a CBOR map")
    return obj


def _keys(obj: dict[Any, Any]) -> str:
    return ", ".join(sorted(repr(key)[:40] for key in obj)[:10])


def _is_id(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_REQUEST_ID


def _check_id(value: object) -> None:
    if not _is_id(value):
        raise ValueError("request id must be an int in 0..2**63-1")
