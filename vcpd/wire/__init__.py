"""L2 wire layer: handshake, encrypted channel and message codecs (sans-IO).

Everything here is synchronous and deterministic given its randomness: it
turns bytes into bytes and never touches a socket, so the websocket layer
(``vcpd.net``, the client library) drives it and tests run without trio.

This package must not import trio, trio-websocket, sockets, or any vcpd module
other than :mod:`vcpd.errors` and :mod:`vcpd.math` (DESIGN §8).
"""

from __future__ import annotations

from .channel import Channel
from .codec import (
    Abort,
    ErrorResponse,
    PeerFrame,
    PeerMessage,
    Ping,
    Pong,
    Request,
    Response,
    decode_peer,
    decode_request,
    decode_response,
    encode_peer,
    encode_peer_parts,
    encode_request,
    encode_response,
)
from .handshake import MAX_HANDSHAKE_MESSAGE, PROTOCOL_NAME, Handshake, HandshakeResult, Role, fast_ciphers
from .limits import MAX_FRAME, MAX_MESSAGE, MAX_WIRE_FRAME, ChannelLimits
from .params import Difference, compare_params

__all__ = [
    "MAX_FRAME",
    "MAX_HANDSHAKE_MESSAGE",
    "MAX_MESSAGE",
    "MAX_WIRE_FRAME",
    "PROTOCOL_NAME",
    "Abort",
    "Channel",
    "ChannelLimits",
    "Difference",
    "ErrorResponse",
    "Handshake",
    "HandshakeResult",
    "PeerFrame",
    "PeerMessage",
    "Ping",
    "Pong",
    "Request",
    "Response",
    "Role",
    "compare_params",
    "decode_peer",
    "decode_request",
    "decode_response",
    "encode_peer",
    "encode_peer_parts",
    "encode_request",
    "encode_response",
    "fast_ciphers",
]
