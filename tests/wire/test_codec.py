"""Codecs: msgpack peer messages and CBOR client API messages, strictly validated."""

from __future__ import annotations

import datetime
import decimal
import os
import re
from collections.abc import Callable
from typing import Any

import cbor2
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcpd.errors import WireError
from vcpd.wire.codec import (
    MAX_DEPTH,
    Abort,
    ErrorResponse,
    PeerMessage,
    Ping,
    Pong,
    Request,
    Response,
    decode_peer,
    decode_request,
    decode_response,
    encode_peer,
    encode_request,
    encode_response,
)

# ------------------------------------------------------------------ peer link


@pytest.mark.parametrize(
    "message",
    [
        PeerMessage("exec-7", "open/3", b"\x00" * 32),
        PeerMessage("s", "t", {"digest": b"d" * 32, "count": 3, "ok": True, "ratio": 0.5, "none": None}),
        PeerMessage("s", "t", [1, -2, "three", [b"four"]]),
        Abort("upload-1", "MAC check failed"),
        Ping(0),
        Pong(2**64 - 1),
    ],
    ids=["bytes", "map", "list", "abort", "ping", "pong"],
)
def test_peer_messages_round_trip(message: Any) -> None:
    assert decode_peer(encode_peer(message)) == message


def test_bulk_payload_stays_one_binary() -> None:
    payload = os.urandom(16 * 10**6)
    encoded = encode_peer(PeerMessage("s", "t", payload))
    assert len(encoded) < len(payload) + 32
    decoded = decode_peer(encoded)
    assert isinstance(decoded, PeerMessage) and type(decoded.payload) is bytes and decoded.payload == payload
    assert decode_peer(encode_peer(PeerMessage("s", "t", memoryview(payload)[:10]))).payload == payload[:10]  # type: ignore[union-attr]
    for size in (2**16 - 1, 2**16, 70_000):  # the fast path for big binaries encodes exactly like msgpack
        message = PeerMessage("session", "step", bytearray(size))
        assert encode_peer(message) == msgpack.packb([1, "session", "step", bytes(size)], use_bin_type=True)


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "fields",
    [
        [],
        [99, "s"],
        [1, "s", "t"],
        [1, "", "t", b""],
        [1, "s" * 257, "t", b""],
        [1, b"s", "t", b""],
        [True, "s", "t", b""],
        [2, "s", 5],
        [3, -1],
        [3, True],
        [3, 1.5],
        [4, "nonce"],
        [1, "s", "t", _deep(MAX_DEPTH + 1)],
        [1, "s", "t", msgpack.ExtType(5, b"x")],
        {"type": 1},
    ],
)
def test_malformed_peer_messages(fields: Any) -> None:
    with pytest.raises(WireError):
        decode_peer(msgpack.packb(fields, use_bin_type=True))


def test_peer_decoder_refuses_timestamps_trailing_bytes_and_bad_utf8() -> None:
    stamp = msgpack.packb([1, "s", "t", msgpack.Timestamp(1, 0)], use_bin_type=True)
    for data in (stamp, encode_peer(Ping(1)) + b"\x00", b"\x94\x01\xa1\xff\xa1t\xc0", b"", b"\xc1", "text"):
        with pytest.raises(WireError):
            decode_peer(data)  # type: ignore[arg-type]


def test_peer_encoder_refuses_what_peers_would_refuse() -> None:
    for message in (
        PeerMessage("", "t", b""),
        PeerMessage("s", "t", {1: "int keys"}),
        PeerMessage("s", "t", datetime.date.today()),
        PeerMessage("s", "t", 2**64),
        PeerMessage("s", "t", _deep(MAX_DEPTH + 1)),
        Ping(-1),
        "not a message",
    ):
        with pytest.raises(ValueError):
            encode_peer(message)  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_peer_garbage_only_raises_wire_error(data: bytes) -> None:
    try:
        decode_peer(data)
    except WireError:
        pass


# ----------------------------------------------------------------- client API


def test_requests_and_responses_round_trip() -> None:
    request = Request(
        7, "secrets.upload", {"tags": {"k": "v"}, "values": b"\x01" * 160, "big": 2**130, "neg": -(2**70)}
    )
    assert decode_request(encode_request(request)) == request
    for response in (
        Response(7, {"ids": ["a", "b"], 3: 4.5, "none": None}),
        Response(0, None),
        ErrorResponse(7, "not-found", "secret 'a' does not exist"),
        ErrorResponse(None, "bad-request", "could not read the request"),
    ):
        assert decode_response(encode_response(response)) == response


def _cbor(obj: Any) -> bytes:
    return cbor2.dumps(obj)


def _raw_request(args: bytes) -> bytes:
    # {"id": 1, "op": "x", "args": <args>} with hand-made CBOR for the args
    return b"\xa3" + _cbor("id") + _cbor(1) + _cbor("op") + _cbor("x") + _cbor("args") + args


@pytest.mark.parametrize(
    "data",
    [
        _cbor({"id": 1, "op": "x"}),
        _cbor({"id": 1, "op": "x", "args": {}, "extra": 1}),
        _cbor({"id": "1", "op": "x", "args": {}}),
        _cbor({"id": True, "op": "x", "args": {}}),
        _cbor({"id": -1, "op": "x", "args": {}}),
        _cbor({"id": 2**63, "op": "x", "args": {}}),
        _cbor({"id": 1.0, "op": "x", "args": {}}),
        _cbor({"id": 1, "op": 5, "args": {}}),
        _cbor({"id": 1, "op": "Bad Op", "args": {}}),
        _cbor({"id": 1, "op": "x", "args": []}),
        _cbor({"id": 1, "op": "x", "args": {1: 2}}),
        _cbor([1, "x", {}]),
        _cbor({"id": 1, "op": "x", "args": {}}) + b"\x00",
        _raw_request(_cbor({"when": datetime.datetime.now(datetime.UTC)})),
        _raw_request(_cbor({"d": decimal.Decimal("1.5")})),
        _raw_request(_cbor({"s": {1, 2}})),
        _raw_request(_cbor({"r": re.compile("a+")})),
        _raw_request(b"\xa1\x61a\xf7"),  # undefined
        _raw_request(b"\xa1\x61a\xf0"),  # simple value 16
        _raw_request(b"\xa1\x61a\xd8\x1c\x80"),  # shareable (tag 28)
        _raw_request(b"\xa1\x61a\xc2\x01"),  # bignum tag around an int
        _raw_request(b"\xa1\x81\x01\x01"),  # array as a map key
        _raw_request(b"\xa1\x61a\x9f\xff"),  # indefinite array
        _raw_request(b"\xa2\x61a\x01\x61a\x02"),  # duplicate key
        _raw_request(b"\xa1\x61a\x62\xff\xfe"),  # invalid UTF-8
        _raw_request(b"\xa1\x61a\x9b\xff\xff\xff\xff\xff\xff\xff\xff"),  # huge array header
        _raw_request(b"\xa1\x61a\x5b\x00\x00\x00\x01\x00\x00\x00\x00"),  # bytes past the end
        _raw_request(b"\xa1\x61a" + b"\x81" * 40 + b"\x01"),  # too deep
        b"",
        b"\xff",
    ],
)
def test_malformed_requests(data: bytes) -> None:
    with pytest.raises(WireError):
        decode_request(data)


@pytest.mark.parametrize(
    "obj",
    [
        {"id": 1},
        {"id": 1, "ok": 1, "error": {"code": "x", "message": "y"}},
        {"id": None, "ok": 1},
        {"id": 1, "error": {"code": "x"}},
        {"id": 1, "error": {"code": "NOPE", "message": "y"}},
        {"id": 1, "error": {"code": "x", "message": 5}},
        {"id": "1", "error": {"code": "x", "message": "y"}},
        {"id": 1, "error": "boom"},
    ],
)
def test_malformed_responses(obj: Any) -> None:
    with pytest.raises(WireError):
        decode_response(_cbor(obj))


def test_api_encoders_refuse_invalid_values() -> None:
    bads: list[Callable[[], object]] = [
        lambda: encode_request(Request(True, "x", {})),
        lambda: encode_request(Request(1, "Bad", {})),
        lambda: encode_request(Request(1, "x", {"when": datetime.date.today()})),
        lambda: encode_request(Request(1, "x", {"deep": _deep(MAX_DEPTH)})),
        lambda: encode_request(Request(1, "x", {1: "int name"})),  # type: ignore[dict-item]
        lambda: encode_response(ErrorResponse(1, "Bad Code", "m")),
        lambda: encode_response(Response(-1, None)),
    ]
    for bad in bads:
        with pytest.raises(ValueError):
            bad()
    # The deepest value the encoder accepts is one the decoder accepts too.
    request = Request(1, "x", {"deep": _deep(MAX_DEPTH - 2)})
    assert decode_request(encode_request(request)) == request


PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(ident=st.integers(0, 2**63 - 1), args=st.dictionaries(st.text(max_size=8), PLAIN, max_size=4))
def test_api_round_trip_property(ident: int, args: dict[str, Any]) -> None:
    request = Request(ident, "op", args)
    assert decode_request(encode_request(request)) == request
    assert decode_response(encode_response(Response(ident, args))) == Response(ident, args)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300), prefix=st.sampled_from([b"", b"\xa3", b"\xa2", b"\xa3\x62id\x01"]))
def test_api_garbage_only_raises_wire_error(data: bytes, prefix: bytes) -> None:
    for decode in (decode_request, decode_response):
        try:
            decode(prefix + data)
        except WireError:
            pass


@pytest.mark.parametrize("payload", [b"small", bytes(range(256)) * 300, {"k": [1, b"x"]}])
def test_peer_message_in_parts_is_the_same_message(payload: Any) -> None:
    from vcpd.wire.codec import encode_peer_parts

    message = PeerMessage("session", "step.1", payload)
    head, body = encode_peer_parts(message)
    assert head + bytes(body) == encode_peer(message)
    assert decode_peer(head + bytes(body)) == message
    assert (len(body) > 0) == (isinstance(payload, bytes) and len(payload) > 60_000)
