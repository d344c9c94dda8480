"""The client API transport: CBOR requests and responses over secure websockets.

Server side, :func:`serve_rpc` listens on websocket path ``/api``, runs the
``client`` handshake (any client key that signs correctly is accepted: what a
client may do is decided per request, above this layer), and hands each
request to ``handle(client_key_b64, request)``. Requests on one connection are
handled concurrently, up to :data:`MAX_IN_FLIGHT` at a time (beyond that the
connection is not read, so a client cannot queue unbounded work), and each
response goes back as soon as it is ready. A malformed request gets an
``ErrorResponse(None, "bad-request", ...)``; a malformed or unauthentic frame
closes that connection; nothing a client sends takes the server down.

Client side, :func:`open_rpc_connection` dials one VCP, checks its pinned key
(and, if given, the VC parameters) and yields an :class:`RpcConnection` whose
:meth:`~RpcConnection.call` multiplexes concurrent calls by request id.

This module must not import vcpd modules other than errors, logs, wire and net.
"""

from __future__ import annotations

import base64
import itertools
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, NoReturn

import trio
from nacl.signing import SigningKey
from trio_websocket import WebSocketRequest

from vcpd.errors import HandshakeError, PeerUnavailable, RequestError, VcpError, WireError
from vcpd.logs import get_logger
from vcpd.wire import ErrorResponse, Handshake, Request, Response, decode_request, decode_response
from vcpd.wire import encode_request, encode_response

from .secure import HANDSHAKE_TIMEOUT, SecureConnection, accept_secure_connection, open_secure_connection
from .websocket import CONNECT_TIMEOUT, open_task_group, serve_websocket_listeners

__all__ = [
    "API_PATH",
    "MAX_IN_FLIGHT",
    "RequestHandler",
    "RpcConnection",
    "RpcStatistics",
    "error_code",
    "open_rpc_connection",
    "serve_rpc",
]

API_PATH: Final = "/api"
MAX_IN_FLIGHT: Final = 64  # requests handled at once per client connection

log = get_logger("rpc")

RequestHandler = Callable[[str, Request], Awaitable[Response | ErrorResponse]]
"""``handle(client_key_b64, request)``: the API layer's dispatcher."""

_PARTY_KEY: Final = re.compile(r"party\.(\d+)\.key")


def error_code(exc: VcpError) -> str:
    """The stable error code of a vcpd error: its class name in kebab case.

    ``TuplesExhausted`` -> ``"tuples-exhausted"``, ``PeerUnavailable`` ->
    ``"peer-unavailable"``; a :class:`RequestError` carries its own code.
    """
    if isinstance(exc, RequestError):
        return exc.code
    return re.sub(r"(?<!^)(?=[A-Z])", "-", type(exc).__name__).lower()


# ---------------------------------------------------------------------- server


def _own_party(identity: SigningKey, params: Mapping[str, str]) -> int | None:
    """Our party id, read from the ``party.<i>.key`` entries of the VC parameters."""
    own = base64.b64encode(bytes(identity.verify_key)).decode()
    for name, value in params.items():
        match = _PARTY_KEY.fullmatch(name)
        if match and value == own:
            return int(match.group(1))
    return None


async def serve_rpc(
    listen: tuple[str, int],
    identity: SigningKey,
    params: Mapping[str, str],
    handle: RequestHandler,
    *,
    party: int | None = None,
    listeners: Sequence[trio.SocketListener] | None = None,
    max_in_flight: int = MAX_IN_FLIGHT,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve the client API on ``listen`` until cancelled.

    Reports the bound (host, port) through ``task_status`` (the real port when
    0 was asked).

    Args:
        listen: (host, port) to bind.
        identity: this VCP's Ed25519 identity key (clients pin its public half).
        params: the VC parameters sent to every client in the handshake
            (``VcParams.handshake_fields()``).
        handle: called as ``await handle(client_key_b64, request)`` for every
            request; it should return a :class:`Response` or
            :class:`ErrorResponse`. A :class:`RequestError` it raises becomes an
            error response with its code, another vcpd error one with
            :func:`error_code`, anything else an ``"internal"`` error (logged).
        party: this VCP's party id, told to clients; default: found in
            ``params`` by our key.
        listeners: already bound listeners to serve instead of binding ``listen``.
        max_in_flight: requests handled at once per connection.
    """
    if party is None:
        party = _own_party(identity, params)
    serve = partial(
        _serve_client, identity=identity, params=dict(params), party=party, handle=handle, limit=max_in_flight
    )
    async with trio.open_nursery() as nursery:
        if listeners is None:
            listeners = await trio.open_tcp_listeners(listen[1], host=listen[0])
        await nursery.start(serve_websocket_listeners, serve, listeners)
        host, port = listeners[0].socket.getsockname()[:2]
        log.info("client API listening", extra={"ctx": {"party": party, "address": f"{host}:{port}"}})
        task_status.started((host, port))
        await trio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


async def _serve_client(
    request: WebSocketRequest,
    *,
    identity: SigningKey,
    params: dict[str, str],
    party: int | None,
    handle: RequestHandler,
    limit: int,
) -> None:
    """One client connection (a websocket request handler: must never raise)."""
    if request.path != API_PATH:
        await request.reject(404, body=f"the vcpd client API endpoint is {API_PATH}".encode())
        return
    remote = str(request.remote)
    handshake = Handshake.responder(identity, role="client", params=params, party=party)
    try:
        async with accept_secure_connection(request, handshake, name=f"client at {remote}") as conn:
            client = conn.result.peer_key_b64
            conn.name = f"client {client}"
            await _serve_requests(conn, client, handle, limit)
    except WireError as exc:  # refused handshake, or a bad frame: worth an operator's look
        log.warning("client connection from %s closed: %s", remote, exc)
    except VcpError as exc:
        log.info("client connection from %s ended: %s", remote, exc)
    except Exception:  # a bug must not take the API server down
        log.exception("internal error serving a client connection from %s", remote)


async def _serve_requests(conn: SecureConnection, client: str, handle: RequestHandler, limit: int) -> None:
    slots = trio.Semaphore(limit)
    async with open_task_group() as nursery:
        try:
            async for data in conn:
                await slots.acquire()  # at the cap, stop reading: backpressure on the client
                try:
                    request = decode_request(data)
                except WireError as exc:
                    slots.release()
                    await _reply(conn, ErrorResponse(None, "bad-request", str(exc)))
                    continue
                nursery.start_soon(_answer, conn, client, request, handle, slots)
        finally:
            # The client is gone (or broke the channel): nobody can read the
            # answers of its requests still running.
            nursery.cancel_scope.cancel()


async def _answer(
    conn: SecureConnection, client: str, request: Request, handle: RequestHandler, slots: trio.Semaphore
) -> None:
    try:
        try:
            response = await handle(client, request)
        except RequestError as exc:
            response = ErrorResponse(request.id, exc.code, exc.message)
        except VcpError as exc:  # messages of vcpd errors hold no secrets, by contract
            response = ErrorResponse(request.id, error_code(exc), str(exc))
        except Exception:
            log.exception("request %d (%s) of client %s failed", request.id, request.op, client)
            response = ErrorResponse(request.id, "internal", "internal error; the VCP's log has the details")
        if response.id != request.id:
            log.error("handler answered request %d with id %s", request.id, response.id)
            response = ErrorResponse(request.id, "internal", "internal error: response id mismatch")
        await _reply(conn, response)
    finally:
        slots.release()


async def _reply(conn: SecureConnection, response: Response | ErrorResponse) -> None:
    try:
        data = encode_response(response)
    except ValueError as exc:
        log.error("cannot encode the response to request %s: %s", response.id, exc)
        data = encode_response(ErrorResponse(response.id, "internal", "internal error: the result cannot be encoded"))
    try:
        await conn.send(data)
    except (VcpError, trio.ClosedResourceError):
        pass  # the client went away; its connection loop ends on its own


# ---------------------------------------------------------------------- client


@dataclass(frozen=True, slots=True)
class RpcStatistics:
    """Counters of one :class:`RpcConnection`.

    Attributes:
        state: "open", "closed" or "failed".
        calls: calls started.
        in_flight: calls waiting for their response.
    """

    state: str
    calls: int
    in_flight: int


class _Call:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: Any = None
        self.error: Callable[[], BaseException] | None = None


class RpcConnection:
    """A client's connection to one VCP; build it with :func:`open_rpc_connection`.

    Attributes:
        url: the VCP's API URL.
        party: the VCP's party id.
    """

    def __init__(self, conn: SecureConnection, url: str, party: int) -> None:
        self._conn = conn
        self.url = url
        self.party = party
        self._ids = itertools.count(1)
        self._calls = 0
        self._pending: dict[int, _Call] = {}
        self._failure: Callable[[], BaseException] | None = None
        self._closed = False

    def __repr__(self) -> str:
        stats = self.statistics()
        return f"<RpcConnection {self.url} party {self.party} {stats.state} in_flight={stats.in_flight}>"

    @property
    def server_key(self) -> bytes:
        """The VCP's verified Ed25519 identity key."""
        return self._conn.peer_key

    @property
    def server_params(self) -> Mapping[str, str]:
        """The VC parameters the VCP sent, for comparison with the client's config."""
        return self._conn.result.peer_params

    def statistics(self) -> RpcStatistics:
        state = "closed" if self._closed else "failed" if self._failure is not None else "open"
        return RpcStatistics(state=state, calls=self._calls, in_flight=len(self._pending))

    def _unavailable(self, reason: str) -> PeerUnavailable:
        return PeerUnavailable(self.party, f"VCP at {self.url}: {reason}")

    async def call(self, op: str, args: Mapping[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Send request ``op`` with ``args``; return the VCP's result.

        Calls from several tasks run concurrently over the one connection.

        Raises:
            RequestError: the VCP answered with an error (``code``, ``message``).
            PeerUnavailable: the connection dropped before the answer came, or
                no answer came within ``timeout`` seconds (the message names
                the VCP's URL).
            WireError: the VCP sent a malformed response (the connection is closed).
            ValueError: ``op`` or ``args`` cannot be encoded.
            trio.ClosedResourceError: the connection was closed on this side.
        """
        if self._closed:
            raise trio.ClosedResourceError(f"the connection to {self.url} is closed")
        if self._failure is not None:
            await trio.lowlevel.checkpoint()
            raise self._failure()
        request_id = next(self._ids)
        data = encode_request(Request(request_id, op, dict(args or {})))
        call = self._pending[request_id] = _Call()
        self._calls += 1
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout) as scope:
                try:
                    await self._conn.send(data)
                except (VcpError, trio.ClosedResourceError) as exc:
                    raise self._unavailable(f"connection lost: {exc}") from exc
                await call.done.wait()
        finally:
            del self._pending[request_id]
        if scope.cancelled_caught:
            raise self._unavailable(f"no answer to {op!r} within {timeout:g} s")
        if call.error is not None:
            raise call.error()
        return call.value

    def _fail(self, make: Callable[[], BaseException]) -> None:
        if self._failure is None:
            self._failure = make
        for call in self._pending.values():
            call.error = make
            call.done.set()

    async def _read_loop(self) -> None:
        """Match responses to calls until the connection ends."""
        try:
            async for data in self._conn:
                try:
                    response = decode_response(data)
                except WireError as exc:
                    text = f"VCP at {self.url} sent a malformed response: {exc}"
                    self._fail(lambda: WireError(text))
                    await self._conn.aclose("malformed response")
                    return
                if response.id is None:
                    assert isinstance(response, ErrorResponse)
                    log.warning("VCP at %s could not read a request: %s: %s", self.url, response.code, response.message)
                    continue
                call = self._pending.get(response.id)
                if call is None:
                    continue  # the caller gave up (timeout or cancellation)
                if isinstance(response, ErrorResponse):
                    code, message = response.code, response.message
                    call.error = lambda: RequestError(code, message)
                else:
                    call.value = response.ok
                call.done.set()
            reason = f"closed by the VCP ({self._conn.close_reason or 'no reason given'})"
        except VcpError as exc:
            reason = str(exc)
        except trio.ClosedResourceError:
            reason = "closed on this side"
        self._fail(lambda: self._unavailable(f"connection lost: {reason}"))


@asynccontextmanager
async def open_rpc_connection(
    url: str,
    identity: SigningKey,
    *,
    expected_key: bytes,
    params: Mapping[str, str] | None = None,
    party: int | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> AsyncIterator[RpcConnection]:
    """Connect to the VCP at ``url`` (``ws://host:port/api``) as a client.

    Args:
        url: the VCP's API URL.
        identity: the client's Ed25519 identity key.
        expected_key: the VCP's pinned public key (32 bytes); any other key is
            refused.
        params: the VC parameters the client expects; when given, a VCP with
            different ones is refused (``ParameterMismatch`` names what
            differs). Either way they arrive in
            :attr:`RpcConnection.server_params`.
        party: the VCP's party id, if known: it is checked in the handshake,
            and connection failures raise :class:`PeerUnavailable` naming it.
        connect_timeout, handshake_timeout: seconds.

    Raises:
        PeerUnavailable: cannot connect (``party`` given).
        HandshakeError: cannot connect (no ``party``), or the VCP did not
            say which party it is.
        AuthenticationError: the VCP's key is not ``expected_key``.
        ParameterMismatch: the VCP's parameters differ from ``params``.
    """
    handshake = Handshake.initiator(
        identity, role="client", expected_key=expected_key, params=params, expected_party=party
    )
    async with open_secure_connection(
        url, handshake, connect_timeout=connect_timeout, handshake_timeout=handshake_timeout, peer=party,
        name=f"VCP at {url}",
    ) as conn:  # fmt: skip
        vcp = party if party is not None else conn.peer_party
        if vcp is None:
            raise HandshakeError(f"the VCP at {url} did not say which party it is")
        rpc = RpcConnection(conn, url, vcp)
        async with open_task_group() as nursery:
            nursery.start_soon(rpc._read_loop)
            try:
                yield rpc
            finally:
                rpc._closed = True
                rpc._fail(lambda: trio.ClosedResourceError(f"the connection to {url} is closed"))
                nursery.cancel_scope.cancel()
