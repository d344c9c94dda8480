"""Plain websockets with vcpd's limits: dialling, serving, URLs, task groups.

trio-websocket does the websocket protocol; this module owns the TCP streams
around it, so that every socket is closed when its connection ends (whichever
side closes first), sets the message size limit every vcpd connection needs
(:data:`WS_MAX_MESSAGE`: trio-websocket's default of 1 MiB is smaller than
one channel frame), turns connect failures into vcpd errors, and makes wsproto
mask with numpy (:mod:`vcpd.net._masking`).

Nothing here knows about the handshake or the channel: that is
:mod:`vcpd.net.secure`.

This module must not import vcpd modules other than errors, logs and wire.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Final, NoReturn
from urllib.parse import urlsplit

import trio
import trio_websocket
from trio_websocket import WebSocketConnection, WebSocketRequest

from vcpd.errors import HandshakeError, PeerUnavailable, VcpError
from vcpd.logs import get_logger
from vcpd.wire import MAX_WIRE_FRAME

from . import _masking

__all__ = [
    "CLOSE_TIMEOUT",
    "CONNECT_TIMEOUT",
    "RECEIVE_BUFFER",
    "WS_MAX_MESSAGE",
    "WS_QUEUE",
    "open_task_group",
    "open_websocket_url",
    "serve_websocket_listeners",
    "split_ws_url",
    "ws_url",
]

CONNECT_TIMEOUT: Final = 10.0  # seconds to open TCP and upgrade to a websocket
CLOSE_TIMEOUT: Final = 2.0  # seconds for a closing handshake before the socket is just closed
WS_MAX_MESSAGE: Final = MAX_WIRE_FRAME + 4096  # bytes; trio-websocket's default is only 1 MiB
RECEIVE_BUFFER: Final = 256 * 1024  # bytes per socket read (trio-websocket reads 4 KiB by default)
WS_QUEUE: Final = 4  # websocket messages buffered between trio-websocket's reader and us

log = get_logger("websocket")


def ws_url(address: str, path: str) -> str:
    """``host:port`` (``[v6]:port`` allowed) and a path -> ``ws://host:port/path``."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if ":" in host:
        host = f"[{host}]"
    return f"ws://{host}:{port}{path}"


def split_ws_url(url: str) -> tuple[str, int, str]:
    """``ws://host:port/path`` -> (host, port, path); only plain ``ws`` is supported.

    Raises:
        ValueError: not a ``ws://`` URL with a host and port.
    """
    parts = urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname or parts.port is None:
        raise ValueError(f"expected ws://HOST:PORT/PATH, got {url!r}")
    return parts.hostname, parts.port, parts.path or "/"


@asynccontextmanager
async def open_task_group() -> AsyncIterator[trio.Nursery]:
    """A nursery that lets a single error out bare instead of in an ExceptionGroup.

    Background tasks of connections never raise on purpose (they record
    failures on the connection object), so the body's own exception is almost
    always the only one; callers should be able to write
    ``except PeerUnavailable`` around ``async with open_secure_connection(...)``.
    Several real errors still come out as a group.
    """
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        real = [exc for exc in leaves if not isinstance(exc, trio.Cancelled)]
        if len(real) > 1:
            raise
        _reraise(real[0] if real else leaves[0])


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


def _reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` without making the group its ``__context__`` (trio-websocket's trick)."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


def _describe_failure(exc: BaseException | None) -> str:
    """The most useful words about a connect failure ("Connection refused").

    trio reports a failed connect as ``OSError("all attempts ... failed")``
    caused by a group of the per-address errors; the errno text is in there.
    """
    if exc is None:
        return ""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    inner = exc.__cause__
    if isinstance(inner, BaseExceptionGroup):
        texts = sorted({_describe_failure(leaf) for leaf in _leaves(inner)} - {""})
        if texts:
            return "; ".join(texts)
    return str(exc) or type(exc).__name__


def _being_cancelled() -> bool:
    return trio.current_effective_deadline() == -math.inf


async def _close_stream(stream: trio.abc.Stream) -> None:
    with trio.CancelScope(shield=True):
        await stream.aclose()


@asynccontextmanager
async def open_websocket_url(
    url: str, *, connect_timeout: float = CONNECT_TIMEOUT, peer: int | None = None
) -> AsyncIterator[WebSocketConnection]:
    """Open a plain websocket to ``ws://host:port/path``; close it and its socket on exit.

    Args:
        url: where to connect.
        connect_timeout: seconds for TCP and the websocket upgrade, each.
        peer: the party id of the VCP at ``url``, if known, for the errors.

    Raises:
        PeerUnavailable: (``peer`` given) cannot connect, rejected or timed out.
        HandshakeError: the same without a known party.
    """
    host, port, path = split_ws_url(url)
    _masking.install()

    def unreachable(reason: str) -> VcpError:
        text = f"cannot connect to {url}: {reason}"
        return PeerUnavailable(peer, text) if peer is not None else HandshakeError(text)

    try:
        with trio.fail_after(connect_timeout):
            stream = await trio.open_tcp_stream(host, port)
    except trio.TooSlowError as exc:
        raise unreachable(f"no answer within {connect_timeout:g} s") from exc
    except OSError as exc:
        raise unreachable(_describe_failure(exc)) from exc
    try:
        async with open_task_group() as nursery:
            try:
                with trio.fail_after(connect_timeout):
                    ws = await trio_websocket.wrap_client_stream(
                        nursery, stream, f"{host}:{port}", path, message_queue_size=WS_QUEUE,
                        max_message_size=WS_MAX_MESSAGE, receive_buffer_size=RECEIVE_BUFFER,
                    )  # fmt: skip
            except trio.TooSlowError as exc:
                raise unreachable(f"no websocket upgrade within {connect_timeout:g} s") from exc
            try:
                yield ws
            finally:
                if not _being_cancelled():  # else the reader is cancelled too: just close the socket
                    with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                        await ws.aclose()
                nursery.cancel_scope.cancel()
    except trio_websocket.ConnectionRejected as exc:  # raised by the reader task, during the upgrade
        raise unreachable(f"rejected with HTTP status {exc.status_code}") from exc
    finally:
        await _close_stream(stream)


async def serve_websocket_listeners(
    handler: Callable[[WebSocketRequest], Awaitable[None]],
    listeners: Sequence[trio.SocketListener],
    *,
    upgrade_timeout: float = CONNECT_TIMEOUT,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve websockets on ``listeners``: ``await handler(request)`` per connection.

    The handler accepts (or rejects) the request and returns when it is done
    with the connection; the socket is closed then, whoever closed the
    websocket first. A handler that raises is logged, never fatal to the
    server. Reports the listeners through ``task_status`` once accepting.
    """

    _masking.install()

    async def serve_stream(stream: trio.abc.Stream) -> None:
        try:
            async with open_task_group() as nursery:
                request = None
                with trio.move_on_after(upgrade_timeout):
                    request = await trio_websocket.wrap_server_stream(
                        nursery, stream, message_queue_size=WS_QUEUE, max_message_size=WS_MAX_MESSAGE,
                        receive_buffer_size=RECEIVE_BUFFER,
                    )  # fmt: skip
                if request is not None:
                    await handler(request)
                nursery.cancel_scope.cancel()
        except Exception:  # a bug in a handler must not take the server down
            log.exception("internal error in a websocket connection handler")
        finally:
            await _close_stream(stream)

    await trio.serve_listeners(serve_stream, list(listeners), task_status=task_status)
    raise AssertionError("unreachable")  # pragma: no cover
