"""The pieces of a message in flight on a :class:`~vcpd.wire.channel.Channel`.

:class:`Outgoing` hands out the chunks of one queued message (a small
header prefix and a big body that is never copied into one buffer with it);
:class:`Incoming` reassembles one message in place, in a buffer allocated
once for the announced length. Kept apart from the channel so that the
channel module holds only the frame protocol.

This module must not import trio, sockets, or any vcpd module.
"""

from __future__ import annotations

import ctypes
from typing import Any, Final

__all__ = ["Incoming", "Outgoing"]


class Outgoing:
    __slots__ = ("data", "offset", "prefix", "stream", "total")

    def __init__(self, data: memoryview, stream: int, prefix: bytes = b"") -> None:
        self.prefix = prefix  # the message is prefix ‖ data
        self.data = data
        self.total = len(prefix) + data.nbytes
        self.offset = 0
        self.stream = stream

    def chunk(self, start: int, end: int) -> bytes | memoryview:
        """Bytes ``[start, end)`` of the message; a view unless they straddle the prefix."""
        head = len(self.prefix)
        if start >= head:
            return self.data[start - head : end - head]
        if end <= head:
            return self.prefix[start:end]
        return self.prefix[start:] + bytes(self.data[: end - head])


def _reassembly_buffer(total: int) -> bytearray:
    """A bytearray of ``total`` bytes whose contents are not zeroed first.

    ``bytearray(total)`` writes zeros over the whole buffer (80 MB for a
    10^6-element download answer: ~40 ms, on the critical path) only for
    the frames to overwrite them. :class:`Incoming` returns its buffer only
    once authentic frames have written every byte of it exactly once (their
    slots are consecutive and counted), and drops it otherwise, so no stale
    byte of this process can ever leave through it.
    """
    if _new_bytearray is None or total < _UNZEROED_FROM:
        return bytearray(total)
    buffer: bytearray = _new_bytearray(None, total)
    return buffer


_UNZEROED_FROM: Final = 1 << 20
try:  # CPython: PyByteArray_FromStringAndSize(NULL, n) leaves the bytes uninitialised
    _new_bytearray: Any = ctypes.pythonapi.PyByteArray_FromStringAndSize
    _new_bytearray.restype = ctypes.py_object
    _new_bytearray.argtypes = (ctypes.c_char_p, ctypes.c_ssize_t)
except AttributeError:  # another interpreter: zeroed buffers, same behaviour
    _new_bytearray = None


class Incoming:
    __slots__ = ("buffer", "received", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        self.received = 0
        # Reassembly in place: chunks after the first are decrypted straight
        # into their slot, so a big message is never joined from pieces.
        self.buffer = _reassembly_buffer(total)
