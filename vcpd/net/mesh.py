"""The peer mesh: one authenticated, encrypted link per pair of VCPs.

:func:`serve_peer_mesh` listens on ``config.peer_listen`` (websocket path
``/peer``) and keeps a link to every other VCP of the VC. The rule for who
dials is fixed: **the lower party id dials the higher one**, so each pair has
exactly one connection and no race decides which. A dialled VCP accepts a
new connection from a lower party even while it still holds an older one
(the dialler only redials when it believes the old one is gone): the newest
connection wins, and the older one is closed. A connection from a higher
party is closed with a reason, whatever it claims.

Dialling retries forever with capped exponential backoff and jitter; a
refused handshake (unknown key, different VC parameters) is logged with the
cause on both sides and retried the same way, since an operator may fix the
configuration while the daemon runs.

The :class:`PeerMesh` it starts implements the
:class:`vcpd.protocol.transport.Transport` contract (through
:class:`~vcpd.net.sessions.SessionOpener`): incoming peer messages go to
per-session mailboxes, a link going down fails every session waiting on that
peer with :class:`~vcpd.errors.PeerUnavailable`, and ``statistics()`` feeds
``vcpctl status``.

This module must not import vcpd modules other than errors, config, keys,
logs, wire and net (in particular not vcpd.protocol: the fit is structural).
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Final, NoReturn

import trio
from nacl.signing import SigningKey
from trio_websocket import WebSocketConnection, WebSocketRequest

from vcpd.config import VcpConfig
from vcpd.errors import ConfigError, HandshakeError, PeerUnavailable, VcpError
from vcpd.logs import get_logger
from vcpd.wire import MAX_MESSAGE, Abort, Handshake, PeerMessage, encode_peer, encode_peer_parts

from .links import DEAD_AFTER, PING_INTERVAL, Link, LinkStatistics, reason_of, serve_link
from .mailbox import Mailboxes
from .secure import SecureConnection, accept_secure_connection, secure_websocket
from .sessions import SessionOpener
from .websocket import open_websocket_url, serve_websocket_listeners, ws_url

__all__ = [
    "DEAD_AFTER",
    "PEER_PATH",
    "PING_INTERVAL",
    "RECONNECT_INITIAL",
    "RECONNECT_JITTER",
    "RECONNECT_MAX",
    "Connector",
    "LinkStatistics",
    "MeshStatistics",
    "PeerMesh",
    "serve_peer_mesh",
]

PEER_PATH: Final = "/peer"
RECONNECT_INITIAL: Final = 0.1  # seconds before the first redial
RECONNECT_MAX: Final = 5.0  # seconds: the backoff doubles up to this cap
RECONNECT_JITTER: Final = 0.5  # up to this fraction of each delay is randomly taken off

log = get_logger("mesh")

Connector = Callable[[int, str], AbstractAsyncContextManager[WebSocketConnection]]
"""``connector(peer, url)`` opens a websocket to a peer; tests swap in memory streams."""


def _default_connector(peer: int, url: str) -> AbstractAsyncContextManager[WebSocketConnection]:
    return open_websocket_url(url, peer=peer)


def _jittered(delay: float) -> float:
    """``delay`` minus up to :data:`RECONNECT_JITTER` of it, from the OS CSPRNG.

    Jitter keeps VCPs restarted together from redialling in lockstep.
    """
    return delay * (1.0 - RECONNECT_JITTER * secrets.randbelow(1001) / 1000)


@dataclass(frozen=True, slots=True)
class MeshStatistics:
    """The mesh as ``vcpctl status`` shows it.

    Attributes:
        party: this VCP's party id.
        address: where the peer endpoint listens (host, port).
        links: one entry per other VCP, by party id.
    """

    party: int
    address: tuple[str, int]
    links: tuple[LinkStatistics, ...]

    @property
    def all_up(self) -> bool:
        """Every link is up."""
        return all(link.state == "up" for link in self.links)


class PeerMesh(SessionOpener):
    """This VCP's links to all the others, and the sessions that run over them.

    Built and run by :func:`serve_peer_mesh`. Implements the Transport
    contract (``party``, ``n_parties``, ``session(id)``) and the
    :class:`~vcpd.net.sessions.MessageSender` the sessions use.

    Attributes:
        mailboxes: where incoming messages wait for their sessions.
        address: the bound (host, port) of the peer endpoint.
    """

    def __init__(self, config: VcpConfig, identity: SigningKey, *, connector: Connector | None = None) -> None:
        own = config.vc.party(config.party)
        if bytes(identity.verify_key) != own.public_key_bytes:
            raise ConfigError(
                f"identity key does not match the public key listed for party {config.party}", path=str(config.path)
            )
        self.mailboxes = Mailboxes(config.party, config.vc.n_parties)
        super().__init__(self.mailboxes, self)
        self.config = config
        self.address: tuple[str, int] = config.peer_listen
        self._identity = identity
        self._params = config.vc.handshake_fields()
        self._pinned = {p.id: p.public_key_bytes for p in config.vc.parties if p.id != config.party}
        self._connector = connector or _default_connector
        self._links: dict[int, Link] = {}
        for info in config.vc.parties:
            if info.id == config.party:
                continue
            dials = info.id > config.party
            url = ws_url(info.peer_address, PEER_PATH) if dials else ""
            self._links[info.id] = Link(info.id, url, dials=dials)
            self.mailboxes.peer_down(info.id, "not linked yet")
        self._changed = trio.Event()

    def __repr__(self) -> str:
        states = " ".join(f"{p}:{link.state}" for p, link in sorted(self._links.items()))
        return f"<PeerMesh party {self.party} at {self.address[0]}:{self.address[1]} links {states}>"

    # ------------------------------------------------------------- status

    def statistics(self) -> MeshStatistics:
        """A frozen snapshot of every link."""
        links = tuple(self._links[p].statistics() for p in sorted(self._links))
        return MeshStatistics(party=self.party, address=self.address, links=links)

    def link_statistics(self, peer: int) -> LinkStatistics:
        """The snapshot of the link to ``peer``."""
        return self._link(peer).statistics()

    async def wait_linked(self, timeout: float | None = None, *, peers: Iterable[int] | None = None) -> None:
        """Wait until the links to ``peers`` (default: all) are up.

        Raises:
            PeerUnavailable: after ``timeout`` seconds, naming a peer still
                down and the last error seen on its link.
        """
        wanted = sorted(self._links if peers is None else peers)
        with trio.move_on_after(math.inf if timeout is None else timeout):
            while any(self._link(p).state != "up" for p in wanted):
                await self._changed.wait()
            return
        down = next(self._link(p) for p in wanted if self._link(p).state != "up")
        raise PeerUnavailable(
            down.peer, f"not linked after {timeout:g} s; last error: {down.last_error or 'none (still connecting)'}"
        )

    async def wait_unlinked(self, peer: int, timeout: float | None = None) -> None:
        """Wait until the link to ``peer`` is down.

        Raises:
            trio.TooSlowError: it is still up after ``timeout`` seconds.
        """
        with trio.fail_after(math.inf if timeout is None else timeout):
            while self._link(peer).state == "up":
                await self._changed.wait()

    def _link(self, peer: int) -> Link:
        link = self._links.get(peer)
        if link is None:
            raise ValueError(f"party {self.party} has no link to party {peer}")
        return link

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ------------------------------------------------- MessageSender for sessions

    async def send_message(self, peer: int, session: str, step: str, payload: Any) -> None:
        """Send one labelled message to ``peer`` (waits while its link is congested).

        Raises:
            PeerUnavailable: the link to ``peer`` is down or fails meanwhile.
            ValueError: the labels or the payload cannot be encoded, or the
                message exceeds the 256 MiB message limit.
        """
        # A bulk payload is queued as it is, behind its small header: no copy.
        head, body = encode_peer_parts(PeerMessage(session, step, payload))
        size = len(head) + len(body)
        if size > MAX_MESSAGE:
            raise ValueError(f"message of {size} bytes exceeds the limit of {MAX_MESSAGE} bytes")
        if body:
            await self._send(self._link(peer), body, urgent=False, prefix=head)
        else:
            await self._send(self._link(peer), head, urgent=False)

    async def send_abort(self, peer: int, session: str, reason: str) -> None:
        """Tell ``peer`` that ``session`` aborted here (jumps the send queue)."""
        await self._send(self._link(peer), encode_peer(Abort(session, reason)), urgent=True)

    async def _send(
        self, link: Link, data: bytes | bytearray | memoryview, *, urgent: bool, prefix: bytes = b""
    ) -> None:
        conn = link.connection
        if conn is None:
            await trio.lowlevel.checkpoint()
            raise PeerUnavailable(link.peer, link.last_error or "not linked")
        try:
            if urgent:
                await trio.lowlevel.checkpoint()
                conn.send_nowait(bytes(data))  # control messages are bytes already: no copy
            else:
                await conn.send(data, prefix=prefix)
        except (VcpError, trio.ClosedResourceError) as exc:
            raise PeerUnavailable(link.peer, f"link failed while sending: {reason_of(exc)}") from exc
        link.count_sent(len(prefix) + len(data))

    # --------------------------------------------------------------- links

    async def _run(self, peer: int, conn: SecureConnection) -> None:
        """Make ``conn`` the link to ``peer`` and serve it until it ends."""
        link = self._links[peer]
        conn.name = f"party {peer}"
        reason = f"party {self.party} is shutting down"
        with trio.CancelScope() as scope:
            previous = link.attach(conn, scope)
            if previous is not None:
                previous.cancel()
                # Messages queued on the old connection are lost: sessions in
                # flight with this peer cannot finish correctly.
                self.mailboxes.peer_down(peer, "link replaced by a new connection")
            self.mailboxes.peer_up(peer)
            self._notify()
            # The negotiated cipher tells an operator whether both ends run AEGIS-256 in hardware.
            log.info(
                "link with party %d up (%s)", peer, conn.result.cipher,
                extra={"ctx": {"party": self.party, "peer": peer, "cipher": conn.result.cipher}},
            )  # fmt: skip
            try:
                reason = await serve_link(link, conn, self.mailboxes)
            finally:
                replaced = link.scope is not scope
                if replaced:
                    reason = "replaced by a newer connection"
                else:
                    link.detach(reason)
                    self.mailboxes.peer_down(peer, reason)
                    self._notify()
                    log.info(
                        "link with party %d down: %s", peer, reason, extra={"ctx": {"party": self.party, "peer": peer}}
                    )
                await conn.aclose(reason)

    async def _dial_forever(self, peer: int) -> NoReturn:
        """Keep the link to a higher party up: dial, serve, back off, redial."""
        link = self._links[peer]
        delay = RECONNECT_INITIAL
        while True:
            linked = False
            try:
                handshake = Handshake.initiator(
                    self._identity, role="peer", expected_key=self._pinned[peer], params=self._params,
                    party=self.party, expected_party=peer,
                )  # fmt: skip
                async with self._connector(peer, link.url) as ws:
                    async with secure_websocket(ws, handshake, name=f"party {peer}", peer=peer) as conn:
                        linked = True
                        await self._run(peer, conn)
            except VcpError as exc:
                self._dial_failed(link, exc)
            except Exception as exc:  # a bug must not take the daemon down; keep retrying
                log.exception("internal error on the link with party %d", peer)
                self._dial_failed(link, exc)
            if linked:
                delay = RECONNECT_INITIAL
            await trio.sleep(_jittered(delay))
            delay = min(delay * 2, RECONNECT_MAX)

    def _dial_failed(self, link: Link, exc: BaseException) -> None:
        reason = reason_of(exc) if isinstance(exc, VcpError) else f"internal error ({type(exc).__name__})"
        if reason == link.last_error:
            log.debug("still cannot link with party %d: %s", link.peer, reason)
            return
        link.last_error = reason
        self._notify()
        # A refused handshake is an operator's problem: say it loudly, once per change.
        level = logging.WARNING if isinstance(exc, HandshakeError) else logging.INFO
        log.log(
            level,
            "cannot link with party %d: %s",
            link.peer,
            reason,
            extra={"ctx": {"party": self.party, "peer": link.peer, "url": link.url}},
        )

    async def handle_request(self, request: WebSocketRequest) -> None:
        """Serve one incoming websocket request (trio-websocket handler; never raises).

        Memory-stream tests call it directly with the request of a wrapped stream.
        """
        if request.path != PEER_PATH:
            await request.reject(404, body=f"the vcpd peer endpoint is {PEER_PATH}".encode())
            return
        handshake = Handshake.responder(
            self._identity, role="peer", params=self._params, party=self.party, peer_keys=self._pinned
        )
        remote = str(request.remote)
        try:
            async with accept_secure_connection(request, handshake, name=f"peer connection from {remote}") as conn:
                peer = conn.peer_party
                assert peer is not None  # the peer handshake always authenticates a party
                if peer > self.party:
                    reason = f"party {peer} must not dial party {self.party}: the lower party id dials"
                    log.warning("closing a connection: %s", reason, extra={"ctx": {"party": self.party}})
                    await conn.aclose(reason)
                    return
                await self._run(peer, conn)
        except VcpError as exc:
            log.warning(
                "refused a peer connection from %s: %s", remote, exc, extra={"ctx": {"party": self.party}}
            )
        except Exception:  # a bug must not take the listener down
            log.exception("internal error serving a peer connection from %s", remote)


async def serve_peer_mesh(
    config: VcpConfig,
    identity: SigningKey,
    *,
    listeners: Sequence[trio.SocketListener] | None = None,
    connector: Connector | None = None,
    task_status: trio.TaskStatus[PeerMesh] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Listen for peers, dial the higher parties, and keep every link up until cancelled.

    Reports the :class:`PeerMesh` through ``task_status`` once the listener is
    bound (``mesh.address`` has the real port when 0 was asked) and the
    diallers are started; links come up in the background
    (:meth:`PeerMesh.wait_linked`).

    Args:
        config: this VCP's configuration (party id, VC parameters with every
            party's key and peer address, ``peer_listen``).
        identity: this VCP's Ed25519 identity key (must match the config).
        listeners: already bound listeners to serve instead of binding
            ``config.peer_listen``; an empty sequence serves none (tests
            that feed :meth:`PeerMesh.handle_request` themselves).
        connector: how to open a websocket to a peer (tests); default: TCP.

    Raises:
        ConfigError: ``identity`` is not this party's key.
        OSError: the listen address cannot be bound.
    """
    mesh = PeerMesh(config, identity, connector=connector)
    async with trio.open_nursery() as nursery:
        if listeners is None:
            host, port = config.peer_listen
            listeners = await trio.open_tcp_listeners(port, host=host)
        if listeners:
            await nursery.start(serve_websocket_listeners, mesh.handle_request, listeners)
            host, port = listeners[0].socket.getsockname()[:2]
            mesh.address = (host, port)
        for peer, link in mesh._links.items():
            if link.dials:
                nursery.start_soon(mesh._dial_forever, peer)
        log.info(
            "peer mesh listening",
            extra={"ctx": {"party": mesh.party, "address": f"{mesh.address[0]}:{mesh.address[1]}"}},
        )
        task_status.started(mesh)
        await trio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover
