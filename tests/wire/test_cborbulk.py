"""Bulk CBOR: the same bytes as cbor2 going out, the same values coming in, the same refusals."""

from __future__ import annotations

import os
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcpd.errors import WireError
from vcpd.wire._cborbulk import BULK_BYTES, decode_checked, encode_with_bulk
from vcpd.wire._cborcheck import check_cbor
from vcpd.wire.codec import Request, Response, decode_request, decode_response, encode_request, encode_response

BULK = os.urandom(BULK_BYTES)

_scalars = st.one_of(
    st.integers(min_value=-(2**100), max_value=2**100),
    st.binary(max_size=8),
    st.just(BULK),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4) | st.integers(-(2**63), 2**63), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(_values)
def test_encoding_is_cbor2s_and_decoding_matches_it(value: Any) -> None:
    message = {"id": 7, "ok": value}
    data = cbor2.dumps(message)
    assert encode_with_bulk(message) == data
    check_cbor(data, max_depth=32, max_items=1 << 20)
    assert decode_checked(data) == cbor2.loads(data)
    assert decode_checked(bytearray(data)) == cbor2.loads(data)


def test_a_download_answer_round_trips_through_the_api_codec() -> None:
    tags = [{"key": "k", "value": "v", "type": "STRING"}]
    ok = {"id": "s", "length": 3, "tags": tags, "y": BULK, "w": bytearray(BULK)}
    data = encode_response(Response(3, ok))
    assert data == cbor2.dumps({"id": 3, "ok": ok})
    decoded = decode_response(bytearray(data))  # a reassembled message is a bytearray
    assert isinstance(decoded, Response) and decoded.ok == {**ok, "w": BULK}
    assert type(decoded.ok["y"]) is bytes
    request = Request(4, "secrets.upload.commit", {"id": "s", "mu": BULK})
    assert decode_request(encode_request(request)) == request


@pytest.mark.parametrize(
    "bad",
    [
        {"id": 1, "ok": {"y": BULK, "y ": 1}},  # made a duplicate below
        {"id": 1, "ok": {"y": BULK, "t": "\x00"}},  # made invalid UTF-8 below
    ],
)
def test_big_messages_keep_the_refusals(bad: dict[str, Any]) -> None:
    data = cbor2.dumps(bad).replace(b"\x62y \x01", b"\x61y\x01").replace(b"\x61t\x61\x00", b"\x61t\x61\xff")
    assert data != cbor2.dumps(bad)
    assert len(data) >= BULK_BYTES
    with pytest.raises(WireError, match="malformed response"):
        decode_response(data)
    # trailing bytes and truncation, as for small messages
    with pytest.raises(WireError):
        decode_response(cbor2.dumps({"id": 1, "ok": {"y": BULK}}) + b"\x00")
    with pytest.raises(WireError):
        decode_response(cbor2.dumps({"id": 1, "ok": {"y": BULK}})[:-1])
