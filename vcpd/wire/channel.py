"""The encrypted, authenticated, chunking channel of one connection (sans-IO).

A :class:`Channel` turns application messages (bytes of up to
:data:`MAX_MESSAGE`) into encrypted frames of at most :data:`MAX_WIRE_FRAME`
bytes and back. The websocket layer carries exactly one frame per websocket
binary message; this module never sees a socket.

Wire format of a frame (all integers little-endian)::

    header (24 bytes, authenticated as associated data)
        kind    u8    1 = data, 2 = close
        flags   u8    bit 0 = first chunk of a message, bit 1 = last chunk
        zero    u16   reserved, must be 0
        stream  u32   0 for single-frame messages, else the message's stream id
        seq     u64   frame counter of this direction (0, 1, 2, ...)
        total   u64   length of the whole message (data) or of the reason (close)
    ciphertext of the chunk (the traffic AEAD, nonce = zeros || seq as u64)
    tag (16 bytes for ChaCha20-Poly1305, 32 for AEGIS-256)

The traffic AEAD is negotiated by the handshake (:class:`FrameCipher`); the
nonce fills the AEAD's nonce length (12 or 32 bytes) with zeros before the
counter.

Each direction has its own key and its own counter, and the receiver only
ever tries the next counter value, so a replayed, reordered, dropped, modified
or truncated frame fails authentication; after any such failure the channel
is dead. A connection cut between frames is told apart from a clean shutdown
by the authenticated close frame (:meth:`Channel.close_frame`,
:meth:`Channel.end_of_stream`).

Large messages are cut into chunks of at most :data:`MAX_FRAME` bytes and sent
round-robin with every other queued message, so one 256 MiB transfer never
holds up a small control message; the receiver reassembles per stream id, with
a cap on the total bytes it buffers.

This module must not import trio, sockets, or any vcpd module other than
:mod:`vcpd.errors`.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Final, NoReturn

from vcpd.errors import ChannelError

from ._crypto import KEY_BYTES, AuthFailure, FrameCipher
from ._pieces import Incoming, Outgoing
from .limits import (
    HEADER_BYTES,
    MAX_BUFFERED,
    MAX_CLOSE_REASON,
    MAX_FRAME,
    MAX_MESSAGE,
    MAX_STREAMS,
    MAX_WIRE_FRAME,
    ChannelLimits,
)

__all__ = [
    "MAX_BUFFERED",
    "MAX_CLOSE_REASON",
    "MAX_FRAME",
    "MAX_MESSAGE",
    "MAX_STREAMS",
    "MAX_WIRE_FRAME",
    "Channel",
    "ChannelLimits",
]

_HEADER: Final = struct.Struct("<BBHIQQ")
assert _HEADER.size == HEADER_BYTES
_KIND_DATA: Final = 1
_KIND_CLOSE: Final = 2
_FIRST: Final = 1
_LAST: Final = 2
_MAX_SEQ: Final = (1 << 64) - 1
_MAX_STREAM_ID: Final = (1 << 32) - 1


class Channel:
    """One encrypted connection: frames out, messages in.

    Built by the handshake (:attr:`HandshakeResult.channel`) with fresh keys
    per connection and direction; tests may build pairs directly.

    Sending is a queue so that a single writer task can interleave messages:
    :meth:`queue` messages, then send every frame :meth:`next_frame` returns,
    in that order, before asking for the next one. Frame counters are assigned
    when a frame is produced, so frames must reach the wire in production order.

    Args:
        send_key: 32-byte key for frames we send.
        receive_key: 32-byte key for frames we receive (a different key).
        cipher: the traffic AEAD both sides agreed on in the handshake.
        limits: resource limits; defaults to :class:`ChannelLimits`.

    Attributes:
        cipher: the traffic AEAD of both directions.
        frame_overhead: bytes each frame adds to its chunk (header and tag).
    """

    def __init__(
        self, send_key: bytes, receive_key: bytes, *, cipher: FrameCipher, limits: ChannelLimits | None = None
    ) -> None:
        if len(send_key) != KEY_BYTES or len(receive_key) != KEY_BYTES:
            raise ValueError("channel keys must be 32 bytes")
        if send_key == receive_key:
            raise ValueError("send and receive keys must differ (reflection)")
        self._send_key = bytes(send_key)
        self._receive_key = bytes(receive_key)
        self.cipher = cipher
        self.frame_overhead = HEADER_BYTES + cipher.tag_bytes
        self._max_wire_frame = MAX_FRAME + self.frame_overhead  # at most MAX_WIRE_FRAME
        self.limits = limits or ChannelLimits()
        self._send_seq = 0
        self._receive_seq = 0
        self._queue: deque[Outgoing] = deque()
        self._pending = 0
        self._sending_streams: set[int] = set()
        self._next_stream = 0
        self._incoming: dict[int, Incoming] = {}
        self._buffered = 0
        self._reserved = 0  # capacity of the reassembly buffers (whole announced lengths)
        self._failure: str | None = None
        self._local_closed = False
        self._peer_closed = False
        self._close_reason = ""

    # ------------------------------------------------------------------ state

    @property
    def failure(self) -> str | None:
        """Why the channel died, or ``None`` while it is healthy."""
        return self._failure

    @property
    def local_closed(self) -> bool:
        """We produced our close frame; nothing more can be sent."""
        return self._local_closed

    @property
    def peer_closed(self) -> bool:
        """The peer's authenticated close frame arrived: a clean shutdown."""
        return self._peer_closed

    @property
    def close_reason(self) -> str:
        """The reason the peer gave in its close frame (may be empty)."""
        return self._close_reason

    @property
    def pending_bytes(self) -> int:
        """Message bytes queued but not yet framed (for back-pressure)."""
        return self._pending

    @property
    def buffered_bytes(self) -> int:
        """Bytes held in reassembly buffers for partially received messages."""
        return self._buffered

    def _check_alive(self) -> None:
        if self._failure is not None:
            raise ChannelError(f"channel unusable after an earlier error: {self._failure}")

    def _fail(self, reason: str) -> NoReturn:
        self._failure = reason
        self._queue.clear()
        self._incoming.clear()
        self._pending = self._buffered = self._reserved = 0
        raise ChannelError(reason)

    # ---------------------------------------------------------------- sending

    def queue(self, message: bytes | bytearray | memoryview, *, prefix: bytes = b"") -> None:
        """Queue one application message for sending: ``prefix ‖ message``.

        ``bytes`` are not copied; a ``bytearray`` or ``memoryview`` must not be
        modified until its last frame has been produced. A small ``prefix``
        (a header) saves the caller from joining it to a big message: only
        the frame where they meet is copied.

        Raises:
            ChannelError: the channel is dead or closed, or the message exceeds
                ``limits.max_message`` (in that last case nothing is queued and
                the channel stays usable).
        """
        self._check_alive()
        if self._local_closed:
            self._fail("cannot send: we already sent our close frame")
        view = memoryview(message).cast("B")
        total = len(prefix) + view.nbytes
        if total > self.limits.max_message:
            raise ChannelError(f"message of {total} bytes exceeds the limit of {self.limits.max_message} bytes")
        stream = 0
        if total > self.limits.frame_size:
            stream = self._allocate_stream()
        self._queue.append(Outgoing(view, stream, bytes(prefix)))
        self._pending += total

    def _allocate_stream(self) -> int:
        # Ids only need to be unique among our messages in flight; wrap around.
        while True:
            self._next_stream = self._next_stream % _MAX_STREAM_ID + 1
            if self._next_stream not in self._sending_streams:
                self._sending_streams.add(self._next_stream)
                return self._next_stream

    def next_frame(self) -> bytes | None:
        """Produce the next frame to send, or ``None`` when nothing is queued.

        Messages take turns one chunk at a time (round-robin), so a small
        message queued behind a huge one goes out after at most one chunk of
        each message ahead of it.
        """
        self._check_alive()
        if not self._queue:
            return None
        out = self._queue.popleft()
        size = self.limits.frame_size
        total = out.total
        if out.stream == 0:  # single-frame message
            self._pending -= total
            return self._seal(_KIND_DATA, _FIRST | _LAST, 0, total, out.chunk(0, total))
        start = out.offset
        end = min(start + size, total)
        flags = (_FIRST if start == 0 else 0) | (_LAST if end == total else 0)
        # The chunk is encrypted where it lies in the message: no copy of it.
        frame = self._seal(_KIND_DATA, flags, out.stream, total, out.chunk(start, end))
        self._pending -= end - start
        out.offset = end
        if end == total:
            self._sending_streams.discard(out.stream)
        else:
            self._queue.append(out)
        return frame

    def drain(self) -> list[bytes]:
        """All frames of everything queued, in the order they must be sent."""
        frames = []
        while (frame := self.next_frame()) is not None:
            frames.append(frame)
        return frames

    def encrypt_message(self, message: bytes | bytearray | memoryview) -> list[bytes]:
        """Queue ``message`` and return :meth:`drain` (for single-writer use and tests)."""
        self.queue(message)
        return self.drain()

    def close_frame(self, reason: str = "") -> bytes:
        """Produce the authenticated close frame; afterwards nothing can be sent.

        Send it as the last websocket message before closing the connection,
        after draining whatever should still go out: messages still queued are
        dropped. ``reason`` (cut to :data:`MAX_CLOSE_REASON` UTF-8 bytes) is for
        the peer's log; it must not contain secrets.
        """
        self._check_alive()
        if self._local_closed:
            self._fail("close frame already sent")
        self._queue.clear()
        self._sending_streams.clear()
        self._pending = 0
        self._local_closed = True
        text = reason.encode("utf-8")[:MAX_CLOSE_REASON].decode("utf-8", "ignore").encode("utf-8")
        return self._seal(_KIND_CLOSE, 0, 0, len(text), text)

    def _seal(self, kind: int, flags: int, stream: int, total: int, chunk: bytes | memoryview) -> bytes:
        seq = self._send_seq
        if seq >= _MAX_SEQ:
            self._fail("frame counter exhausted: reconnect")
        self._send_seq = seq + 1
        header = _HEADER.pack(kind, flags, 0, stream, seq, total)
        return self.cipher.seal_frame(self._send_key, self.cipher.nonce(seq), header, chunk)

    # -------------------------------------------------------------- receiving

    def receive_frame(self, frame: bytes) -> bytes | None:
        """Authenticate one received frame; return a message once it is complete.

        Returns:
            The application message this frame completes, or ``None`` (a chunk
            of a message still in transit, or the peer's close frame: check
            :attr:`peer_closed`). A message of one frame is ``bytes``; one
            reassembled from several frames is the ``bytearray`` it was
            decrypted into (nothing else refers to it).

        Raises:
            ChannelError: the frame is malformed, out of sequence, forged,
                arrives after the peer's close, or breaks a limit. The channel
                is dead afterwards and the connection must be dropped.
        """
        self._check_alive()
        if self._peer_closed:
            self._fail("frame received after the peer's close frame")
        if not isinstance(frame, bytes):
            frame = bytes(frame)
        if len(frame) < self.frame_overhead:
            self._fail(f"truncated frame of {len(frame)} bytes")
        if len(frame) > self._max_wire_frame:
            self._fail(f"oversized frame of {len(frame)} bytes (limit {self._max_wire_frame})")
        kind, flags, zero, stream, seq, total = _HEADER.unpack_from(frame)
        expected = self._receive_seq
        if seq != expected:
            self._fail(f"frame out of sequence: expected #{expected}, got #{seq} (replayed, reordered or dropped)")
        size = len(frame) - self.frame_overhead
        # A later chunk of a message in reassembly is decrypted straight into
        # its slot (only zeros are written there unless the frame is authentic;
        # its header is authenticated too and checked below, as for any frame).
        slot = None
        if kind == _KIND_DATA and stream and not flags & _FIRST:
            found = self._incoming.get(stream)
            if found is not None and found.total == total and found.received + size <= total:
                slot = memoryview(found.buffer)[found.received : found.received + size]
        nonce = self.cipher.nonce(expected)
        try:
            if slot is None:
                body: bytes | None = self.cipher.open_frame(self._receive_key, nonce, frame, HEADER_BYTES)
            else:
                self.cipher.open_frame_into(self._receive_key, nonce, frame, HEADER_BYTES, slot)
                body = None
        except AuthFailure:
            self._fail(f"frame #{expected} failed authentication: tampered with or truncated")
        self._receive_seq = expected + 1
        if zero != 0:
            self._fail("frame header has non-zero reserved bits")
        if kind == _KIND_CLOSE:
            assert body is not None
            self._receive_close(flags, stream, total, body)
            return None
        if kind != _KIND_DATA:
            self._fail(f"unknown frame kind {kind}")
        return self._receive_data(flags, stream, total, body, size)

    def _receive_close(self, flags: int, stream: int, total: int, body: bytes) -> None:
        if flags or stream or total != len(body) or len(body) > MAX_CLOSE_REASON:
            self._fail("malformed close frame")
        try:
            self._close_reason = body.decode("utf-8")
        except UnicodeDecodeError:
            self._fail("close reason is not UTF-8")
        self._peer_closed = True
        # Whatever the peer abandoned mid-message is dropped with the connection.
        self._incoming.clear()
        self._buffered = self._reserved = 0

    def _receive_data(self, flags: int, stream: int, total: int, body: bytes | None, size: int) -> bytes | None:
        """Account for an authentic data frame; ``body`` is None when its chunk
        was already decrypted into its reassembly slot."""
        if total > self.limits.max_message:
            self._fail(f"peer announced a message of {total} bytes (limit {self.limits.max_message})")
        if size > MAX_FRAME:
            self._fail(f"frame carries {size} bytes (limit {MAX_FRAME})")
        if flags == _FIRST | _LAST:
            if stream != 0 or total != size or body is None:
                self._fail("malformed single-frame message")
            return body
        if stream == 0 or flags > _FIRST | _LAST:
            self._fail("malformed chunk header")
        if flags & _FIRST:
            if stream in self._incoming:
                self._fail(f"stream {stream} started twice")
            if len(self._incoming) >= self.limits.max_streams:
                self._fail(f"more than {self.limits.max_streams} messages in reassembly at once")
            if size > total:
                self._fail(f"stream {stream} carries more than the {total} bytes it announced")
            self._check_capacity(total)
            incoming = self._incoming[stream] = Incoming(total)
            self._reserved += total
        else:
            found = self._incoming.get(stream)
            if found is None:
                self._fail(f"chunk for unknown stream {stream}")
            incoming = found
            if total != incoming.total:
                self._fail(f"stream {stream} changed its announced length")
        if incoming.received + size > total:
            self._fail(f"stream {stream} carries more than the {total} bytes it announced")
        if body is not None:
            incoming.buffer[incoming.received : incoming.received + size] = body
        incoming.received += size
        self._buffered += size
        if self._buffered > self.limits.max_buffered:
            self._check_capacity(0)
        if not flags & _LAST:
            return None
        if incoming.received != total:
            self._fail(f"stream {stream} ended after {incoming.received} of {total} bytes")
        del self._incoming[stream]
        self._buffered -= total
        self._reserved -= total
        return incoming.buffer  # type: ignore[return-value]  # a bytearray: bytes-like, never joined

    def _check_capacity(self, more: int) -> None:
        """Refuse to hold more than ``max_buffered`` bytes of reassembly buffers
        (counted at their announced lengths, as they are allocated whole)."""
        if self._reserved + more > self.limits.max_buffered or self._buffered > self.limits.max_buffered:
            self._fail(
                f"reassembly buffers exceed {self.limits.max_buffered} bytes: "
                "the peer interleaves more data than this connection accepts"
            )

    def end_of_stream(self) -> str:
        """Tell the channel that the connection ended; report how.

        Call it when the websocket closes (for whatever reason).

        Returns:
            The peer's close reason if it closed cleanly with a close frame.

        Raises:
            ChannelError: no close frame arrived first: the connection was cut
                or truncated (or the channel had already failed).
        """
        self._check_alive()
        if not self._peer_closed:
            self._fail("connection ended without a close frame: cut off or truncated")
        return self._close_reason
