"""Size limits of the wire layer, in one place.

The websocket layer needs :data:`MAX_WIRE_FRAME` (its message size limit must
be at least this), the protocol layers need :data:`MAX_MESSAGE`, and tests
need small :class:`ChannelLimits`; none of them should have to import the
channel's internals for that.

This module must not import trio, sockets, or any vcpd module outside
:mod:`vcpd.wire`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ._crypto import MAX_TAG_BYTES

__all__ = [
    "HEADER_BYTES",
    "MAX_BUFFERED",
    "MAX_CLOSE_REASON",
    "MAX_FRAME",
    "MAX_MESSAGE",
    "MAX_STREAMS",
    "MAX_WIRE_FRAME",
    "ChannelLimits",
]

MAX_FRAME: Final = 1 << 20
"""Most plaintext bytes in one frame (1 MiB); bigger messages are chunked."""

MAX_MESSAGE: Final = 256 << 20
"""Largest application message (256 MiB) a channel sends or accepts."""

MAX_BUFFERED: Final = 512 << 20
"""Default cap on the bytes held in reassembly buffers of one channel."""

MAX_STREAMS: Final = 1024
"""Default cap on messages being reassembled at the same time."""

MAX_CLOSE_REASON: Final = 256
"""Longest close reason, in UTF-8 bytes (longer ones are cut)."""

HEADER_BYTES: Final = 24
"""Size of the frame header (see :mod:`vcpd.wire.channel`)."""

MAX_WIRE_FRAME: Final = MAX_FRAME + HEADER_BYTES + MAX_TAG_BYTES
"""Largest websocket message a channel produces or accepts, whatever its traffic
cipher: set the websocket library's message size limit to at least this. (What
one frame adds to its chunk depends on the cipher: :attr:`Channel.frame_overhead`.)"""


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """Resource limits of one channel.

    Attributes:
        frame_size: chunk size this side *sends* (at most :data:`MAX_FRAME`;
            smaller values exist for tests). Frames up to :data:`MAX_FRAME`
            are always accepted.
        max_message: largest message sent or accepted.
        max_buffered: cap on bytes held in reassembly buffers; a peer that
            makes us exceed it is cut off, which bounds memory per connection.
        max_streams: cap on messages in reassembly at once.
    """

    frame_size: int = MAX_FRAME
    max_message: int = MAX_MESSAGE
    max_buffered: int = MAX_BUFFERED
    max_streams: int = MAX_STREAMS

    def __post_init__(self) -> None:
        if not 1 <= self.frame_size <= MAX_FRAME:
            raise ValueError(f"frame_size must be in 1..{MAX_FRAME}")
        if not 0 <= self.max_message <= MAX_MESSAGE:
            raise ValueError(f"max_message must be in 0..{MAX_MESSAGE}")
        if self.max_buffered < 0 or self.max_streams < 1:
            raise ValueError("max_buffered must be >= 0 and max_streams >= 1")
