"""Authenticated, encrypted message connections over trio-websocket.

A :class:`SecureConnection` is what is left of a websocket once the sans-IO
handshake of :mod:`vcpd.wire.handshake` has completed: a two-way pipe of whole
messages (bytes of up to 256 MiB), encrypted, authenticated and chunked by a
:class:`vcpd.wire.Channel`. It is used by the peer mesh (VCP to VCP) and by the
client API (client to VCP), on both ends.

How to get one:

* client side: ``async with open_secure_connection(url, handshake) as conn``;
* server side, in a request handler (:func:`vcpd.net.websocket.serve_websocket_listeners`):
  ``async with accept_secure_connection(request, handshake) as conn``;
* over any websocket already open (in-memory streams in tests):
  ``async with secure_websocket(ws, handshake) as conn``.

Each connection runs one writer task, the only one that puts frames on the
websocket, because frame counters must reach the wire in the order they were
produced. :meth:`SecureConnection.send` only queues, and waits while more
than :data:`SEND_HIGH_WATER` bytes are already queued: that is the
backpressure of a congested socket reaching the sender. Any number of tasks
may send; one task at a time receives.

Errors at this boundary (trio-websocket, OSError and timeouts never leak):

===================================  ==============================================
what happened                        raised
===================================  ==============================================
cannot connect, rejected, timed out  :class:`PeerUnavailable` (when the VCP's party
                                     is known) else :class:`HandshakeError`
handshake refused or failed          the handshake's own error (AuthenticationError,
                                     ParameterMismatch, HandshakeError)
bad frame (tampered, replayed, ...)  :class:`ChannelError`; the connection is closed
connection cut or lost               :class:`PeerUnavailable` (the other side is a
                                     VCP) else :class:`ChannelError`
other side closed cleanly            ``receive``: :class:`trio.EndOfChannel`
we closed it                         :class:`trio.ClosedResourceError`
===================================  ==============================================

This module must not import vcpd modules other than errors, logs and wire.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final, Literal, NoReturn

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from vcpd.errors import ChannelError, HandshakeError, PeerUnavailable, VcpError, WireError
from vcpd.wire import Handshake, HandshakeResult

from .websocket import CLOSE_TIMEOUT, CONNECT_TIMEOUT, open_task_group, open_websocket_url

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "SEND_HIGH_WATER",
    "ConnectionStatistics",
    "SecureConnection",
    "accept_secure_connection",
    "open_secure_connection",
    "secure_websocket",
]

HANDSHAKE_TIMEOUT: Final = 10.0  # seconds for the four handshake messages
SEND_HIGH_WATER: Final = 8 * 2**20  # bytes queued on the channel before send() waits

_POLICY_VIOLATION: Final = 1008  # websocket close code for a bad frame


@dataclass(frozen=True, slots=True)
class ConnectionStatistics:
    """Counters of one :class:`SecureConnection` (message bytes, not wire bytes).

    Attributes:
        state: "open", "closing", "closed" (by the other side, cleanly) or "broken".
        messages_sent / messages_received: whole messages.
        bytes_sent / bytes_received: message bytes.
        pending_bytes: queued, not yet framed (what backpressure looks at).
        buffered_bytes: held for reassembly of partly received messages.
    """

    state: str
    messages_sent: int
    messages_received: int
    bytes_sent: int
    bytes_received: int
    pending_bytes: int
    buffered_bytes: int


class SecureConnection:
    """An established, authenticated connection carrying whole messages.

    Build it with :func:`open_secure_connection`, :func:`accept_secure_connection`
    or :func:`secure_websocket`; those run its writer task and close it on exit.

    Attributes:
        result: what the handshake established (peer key, party, params).
        name: how logs and errors name the other side ("party 2", a URL, ...).
    """

    def __init__(self, ws: WebSocketConnection, result: HandshakeResult, *, name: str) -> None:
        self._ws = ws
        self.result = result
        self.name = name
        self._channel = result.channel
        self._writer_wake = trio.lowlevel.ParkingLot()
        self._space = trio.lowlevel.ParkingLot()
        self._writer_done = trio.Event()
        self._closing = False
        self._close_reason_out = ""
        self._peer_closed = False
        self._broken: Callable[[], VcpError] | None = None
        self._last_received = trio.current_time()
        self._messages_sent = self._messages_received = 0
        self._bytes_sent = self._bytes_received = 0

    def __repr__(self) -> str:
        sent, received = self._messages_sent, self._messages_received
        return f"<SecureConnection {self.name} {self.state} sent={sent} received={received}>"

    # ------------------------------------------------------------------ state

    @property
    def peer_party(self) -> int | None:
        """The other side's party id, or ``None`` for a client."""
        return self.result.peer_party

    @property
    def peer_key(self) -> bytes:
        """The other side's verified Ed25519 public key."""
        return self.result.peer_key

    @property
    def state(self) -> Literal["open", "closing", "closed", "broken"]:
        """Where the connection is in its life."""
        if self._broken is not None:
            return "broken"
        if self._closing:
            return "closing"
        if self._peer_closed:
            return "closed"
        return "open"

    @property
    def close_reason(self) -> str:
        """The reason the other side gave in its close frame (empty until then)."""
        return self._channel.close_reason

    @property
    def last_received(self) -> float:
        """``trio.current_time()`` of the last frame received (keepalive)."""
        return self._last_received

    @property
    def websocket(self) -> WebSocketConnection:
        """The underlying websocket, for diagnostics and adversarial tests only."""
        return self._ws

    def statistics(self) -> ConnectionStatistics:
        """Counters and queue sizes, for status displays."""
        return ConnectionStatistics(
            state=self.state,
            messages_sent=self._messages_sent,
            messages_received=self._messages_received,
            bytes_sent=self._bytes_sent,
            bytes_received=self._bytes_received,
            pending_bytes=self._channel.pending_bytes,
            buffered_bytes=self._channel.buffered_bytes,
        )

    def _gone(self, reason: str) -> VcpError:
        """The error for "the other side went away"; a VCP's error names its party."""
        if self.peer_party is not None:
            return PeerUnavailable(self.peer_party, reason)
        return ChannelError(f"{self.name}: {reason}")

    def _break(self, make: Callable[[], VcpError]) -> None:
        if self._broken is None:
            self._broken = make
        self._space.unpark_all()
        self._writer_wake.unpark_all()

    def _check_sendable(self) -> None:
        if self._closing:
            raise trio.ClosedResourceError(f"connection to {self.name} was closed on this side")
        if self._broken is not None:
            raise self._broken()
        if self._peer_closed:
            raise self._gone(f"closed the connection ({self.close_reason or 'no reason given'})")

    # ---------------------------------------------------------------- sending

    async def send(self, message: bytes | bytearray | memoryview, *, prefix: bytes = b"") -> None:
        """Queue one message (``prefix ‖ message``, see :meth:`Channel.queue`);
        wait first while the connection is congested.

        Returns once the message is queued for the writer (not when it is on
        the wire): the wait is for room, at most :data:`SEND_HIGH_WATER` bytes
        are queued ahead, so a slow peer slows its senders down instead of
        filling memory. A message bigger than that still goes, alone.

        Raises:
            PeerUnavailable, ChannelError: the connection broke or the other
                side closed it.
            ChannelError: the message exceeds the channel's message limit
                (the connection stays usable).
            trio.ClosedResourceError: we closed the connection.
        """
        await trio.lowlevel.checkpoint()
        self._check_sendable()
        while self._channel.pending_bytes >= SEND_HIGH_WATER:
            await self._space.park()
            self._check_sendable()
        self._queue(message, prefix)

    def send_nowait(self, message: bytes) -> None:
        """Queue a small control message now, ignoring backpressure.

        For keepalives, pongs and aborts: they go out after at most one chunk
        of every message queued ahead (the channel sends round-robin).
        """
        self._check_sendable()
        self._queue(message)

    def _queue(self, message: bytes | bytearray | memoryview, prefix: bytes = b"") -> None:
        # Only bytes are immutable: the channel reads bytearrays lazily.
        data = message if type(message) is bytes else bytes(message)
        self._channel.queue(data, prefix=prefix)
        self._messages_sent += 1
        self._bytes_sent += len(prefix) + len(data)
        self._writer_wake.unpark()

    async def _write_loop(self, scope: trio.CancelScope) -> None:
        """The connection's only writer: frames go out in the order they were made.

        It runs shielded in ``scope``: when the owner of the connection is
        cancelled, the writer must still drain and send the close frame (and
        never stop in the middle of a websocket message, which would corrupt
        the stream). :meth:`aclose` bounds it; the owner cancels ``scope`` last.
        """
        with scope:
            await self._write_frames()

    async def _write_frames(self) -> None:
        try:
            while True:
                if self._broken is not None:
                    return
                frame = self._channel.next_frame()
                if frame is None:
                    if self._closing:
                        await self._ws.send_message(self._channel.close_frame(self._close_reason_out))
                        return
                    await self._writer_wake.park()
                    continue
                await self._ws.send_message(frame)
                if self._channel.pending_bytes < SEND_HIGH_WATER:
                    self._space.unpark_all()
        except ConnectionClosed:
            self._break(lambda: self._gone("connection lost while sending"))
        except ChannelError as exc:  # the channel died (a bad frame on the receiving side)
            message = str(exc)
            self._break(lambda: ChannelError(message))
        finally:
            self._writer_done.set()
            self._space.unpark_all()

    # -------------------------------------------------------------- receiving

    async def receive(self) -> bytes:
        """The next complete message from the other side.

        Raises:
            trio.EndOfChannel: the other side closed the connection cleanly
                (see :attr:`close_reason`).
            ChannelError: a frame was tampered with, replayed, reordered,
                truncated or oversized; the connection is closed.
            PeerUnavailable: the connection to a VCP was cut (a client's cut
                connection raises ChannelError).
            trio.ClosedResourceError: we closed the connection.
        """
        while True:
            if self._peer_closed:
                raise trio.EndOfChannel(f"{self.name} closed the connection")
            if self._closing:
                raise trio.ClosedResourceError(f"connection to {self.name} was closed on this side")
            if self._broken is not None:
                raise self._broken()
            try:
                data = await self._ws.get_message()
            except ConnectionClosed:
                self._on_websocket_closed()
                continue
            self._last_received = trio.current_time()
            if not isinstance(data, bytes):
                await self._reject("text message on a binary connection")
            try:
                message = self._channel.receive_frame(data)
            except ChannelError as exc:
                await self._reject(str(exc))
            if message is not None:
                self._messages_received += 1
                self._bytes_received += len(message)
                return message
            if self._channel.peer_closed:
                self._peer_closed = True
                self._writer_wake.unpark_all()

    def __aiter__(self) -> SecureConnection:
        return self

    async def __anext__(self) -> bytes:
        """``async for message in conn``: stops when the other side closes cleanly."""
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def _on_websocket_closed(self) -> None:
        if self._closing or self._broken is not None:
            return
        try:
            self._channel.end_of_stream()
        except ChannelError:
            self._break(lambda: self._gone("connection cut without a close frame"))
        else:
            self._peer_closed = True

    async def _reject(self, reason: str) -> NoReturn:
        """A frame failed: the channel is dead, drop the connection, raise."""
        self._break(lambda: ChannelError(f"{self.name}: {reason}"))
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
            await self._ws.aclose(code=_POLICY_VIOLATION, reason="bad frame")
        raise ChannelError(f"{self.name}: {reason}")

    # ---------------------------------------------------------------- closing

    async def aclose(self, reason: str = "", *, timeout: float = CLOSE_TIMEOUT) -> None:
        """Drain what is queued, send the authenticated close frame, close the websocket.

        Runs even when the caller is cancelled, and takes at most ``timeout``
        seconds: after that the socket is closed without ceremony (a peer that
        stopped reading must not hold us up). Idempotent.

        Args:
            reason: for the other side's log; no secrets (at most 256 bytes).
            timeout: seconds allowed for draining and the closing handshake.
        """
        if not self._closing:
            self._closing = True
            self._close_reason_out = reason
        self._writer_wake.unpark_all()
        self._space.unpark_all()
        # When we are being cancelled (shutdown), so is trio-websocket's reader
        # task, and the websocket closing handshake can never complete: send
        # our close frame, then just close the socket.
        cancelled = trio.current_effective_deadline() == -math.inf
        with trio.CancelScope(shield=True):
            with trio.move_on_after(timeout) as scope:
                await self._writer_done.wait()
                if not cancelled:
                    await self._ws.aclose()
            if scope.cancelled_caught or cancelled:
                with trio.CancelScope() as expired:
                    expired.cancel()
                    # Cancelled at once; trio-websocket still closes the stream on its way out.
                    await self._ws.aclose()


async def _run_handshake(ws: WebSocketConnection, handshake: Handshake, gone: Callable[[str], VcpError]) -> None:
    """Drive the sans-IO handshake over ``ws``; send our refusal if we fail."""
    # The websocket client is always the handshake's initiator.
    out = handshake.start() if ws.is_client else None
    try:
        while not handshake.done:
            if out is not None:
                await ws.send_message(out)
            message = await ws.get_message()
            if not isinstance(message, bytes):
                raise HandshakeError("text message during the handshake: the other side is not vcpd")
            try:
                out = handshake.receive(message)
            except HandshakeError:
                if handshake.refusal is not None:
                    with trio.move_on_after(CLOSE_TIMEOUT):
                        await ws.send_message(handshake.refusal)
                raise
        if out is not None:
            await ws.send_message(out)
    except ConnectionClosed as exc:
        raise gone("connection closed during the handshake") from exc


@asynccontextmanager
async def secure_websocket(
    ws: WebSocketConnection,
    handshake: Handshake,
    *,
    name: str,
    peer: int | None = None,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> AsyncIterator[SecureConnection]:
    """Run ``handshake`` over an open websocket and yield the secure connection.

    The caller owns ``ws`` (and closes it); this closes the secure connection
    (close frame, then the websocket) when the block exits.

    Args:
        ws: an open websocket, client or server side.
        handshake: a fresh :class:`Handshake`: the initiator on the websocket
            client side, the responder on the server side.
        name: how errors and logs name the other side.
        peer: the other side's party id when known in advance (a dialled
            VCP), so failures before the handshake completes are reported as
            :class:`PeerUnavailable` for that party.
        handshake_timeout: seconds allowed for the whole handshake.

    Raises:
        AuthenticationError, ParameterMismatch, HandshakeError: the handshake
            failed here or was refused by the other side (its reason is in the
            message); our refusal was sent first.
        PeerUnavailable: (``peer`` given) the connection dropped or timed out
            during the handshake.
    """

    def gone(reason: str) -> VcpError:
        if peer is not None:
            return PeerUnavailable(peer, f"{name}: {reason}")
        return HandshakeError(f"{name}: {reason}")

    try:
        with trio.fail_after(handshake_timeout):
            await _run_handshake(ws, handshake, gone)
    except trio.TooSlowError as exc:
        await _hard_close(ws)
        raise gone(f"handshake not completed within {handshake_timeout:g} s") from exc
    except WireError:
        await _hard_close(ws)
        raise
    conn = SecureConnection(ws, handshake.result, name=name)
    writer_scope = trio.CancelScope(shield=True)
    async with open_task_group() as nursery:
        nursery.start_soon(conn._write_loop, writer_scope)
        try:
            yield conn
        finally:
            await conn.aclose()
            writer_scope.cancel()


async def _hard_close(ws: WebSocketConnection) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
        await ws.aclose()


@asynccontextmanager
async def open_secure_connection(
    url: str,
    handshake: Handshake,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
    peer: int | None = None,
    name: str | None = None,
) -> AsyncIterator[SecureConnection]:
    """Dial ``url``, authenticate with ``handshake`` (an initiator), yield the connection.

    Args:
        url: ``ws://host:port/path``.
        handshake: a fresh initiator :class:`Handshake`.
        connect_timeout: seconds for TCP and the websocket upgrade.
        handshake_timeout: seconds for the vcpd handshake.
        peer: the party id of the VCP dialled, if known: connection failures
            then raise :class:`PeerUnavailable` naming it.
        name: how errors name the other side (default: the URL).

    Raises:
        PeerUnavailable, HandshakeError: cannot connect (see
            :func:`open_websocket_url`).
        AuthenticationError, ParameterMismatch, HandshakeError: the handshake
            failed or was refused.
    """
    label = name or f"VCP at {url}"
    async with open_websocket_url(url, connect_timeout=connect_timeout, peer=peer) as ws:
        async with secure_websocket(ws, handshake, name=label, peer=peer, handshake_timeout=handshake_timeout) as conn:
            yield conn


@asynccontextmanager
async def accept_secure_connection(
    request: WebSocketRequest,
    handshake: Handshake,
    *,
    name: str | None = None,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> AsyncIterator[SecureConnection]:
    """Server side: accept a websocket request and authenticate it (``handshake`` is a responder).

    Raises:
        AuthenticationError, ParameterMismatch, HandshakeError: the handshake
            failed (our refusal was sent) or timed out.
    """
    label = name or f"connection from {request.remote}"
    try:
        ws = await request.accept()
    except ConnectionClosed as exc:
        raise HandshakeError(f"{label}: closed before the websocket was accepted") from exc
    async with secure_websocket(ws, handshake, name=label, handshake_timeout=handshake_timeout) as conn:
        yield conn
