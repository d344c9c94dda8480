"""Fast websocket masking for wsproto: one numpy XOR instead of four byte-table passes.

RFC 6455 makes a websocket client XOR every byte it sends with a 4-byte key,
and the server undo it. Our frames are already encrypted, so masking buys
nothing, but the protocol demands it, and wsproto's pure-Python masker
(``bytearray.translate`` on four strided slices) costs more than the
ChaCha20-Poly1305 encryption of the same bytes: about a third of the CPU time
of a 16 MiB transfer. :func:`install` swaps in :class:`FastXorMasker`, which
computes exactly the same bytes (the tests compare the two).

This module must not import vcpd modules.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from wsproto import frame_protocol

__all__ = ["WSPROTO_MASKER", "FastXorMasker", "install"]

WSPROTO_MASKER: Final = frame_protocol.XorMaskerSimple
"""wsproto's own masker, kept for comparison (this module is imported before any install)."""


class FastXorMasker:
    """Drop-in replacement for ``wsproto.frame_protocol.XorMaskerSimple``.

    ``process`` masks a chunk and rotates the key by the chunk's length, so
    consecutive chunks of one frame continue the key where the last stopped.
    """

    __slots__ = ("_masking_key",)

    def __init__(self, masking_key: bytes | bytearray) -> None:
        self._masking_key = bytes(masking_key)

    def process(self, data: bytes | bytearray) -> bytearray:
        # wsproto hands us a fresh bytearray on both paths (a copy of the payload
        # it frames, or a slice of its receive buffer) and uses only our result:
        # mask that in place instead of copying it once more.
        out = data if type(data) is bytearray else bytearray(data)
        size = len(out)
        if not size:
            return out
        key = self._masking_key
        words = size // 4
        if words:
            view = np.frombuffer(out, dtype=np.uint32, count=words)  # writable: a bytearray
            np.bitwise_xor(view, np.frombuffer(key, dtype=np.uint32)[0], out=view)
        for index in range(words * 4, size):
            out[index] ^= key[index % 4]
        turn = size % 4
        self._masking_key = key[turn:] + key[:turn]
        return out


def install() -> None:
    """Make wsproto use :class:`FastXorMasker` (idempotent; process-wide)."""
    if getattr(frame_protocol, "XorMaskerSimple", None) is not FastXorMasker:
        frame_protocol.XorMaskerSimple = FastXorMasker  # type: ignore[misc,assignment]  # same interface
