"""One peer link: its state, its counters, and the loop that serves a connection.

A :class:`Link` is the mesh's record of one other VCP: whether a connection is
up, since when, why the last one ended, and traffic counters that survive
reconnections. :func:`serve_link` runs one established
:class:`~vcpd.net.secure.SecureConnection`: it reads peer messages into the
mailboxes, answers pings, sends its own keepalives, and returns the reason
when the connection ends (clean close, bad frame, silence).

Messages from a connection are attributed to the party its handshake
authenticated, and to no one else.

This module must not import vcpd modules other than errors, logs, wire and net.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Literal

import trio

from vcpd.errors import PeerUnavailable, VcpError, WireError
from vcpd.logs import get_logger
from vcpd.wire import Abort, PeerMessage, Ping, Pong, decode_peer, encode_peer

from .mailbox import Mailboxes
from .secure import SecureConnection

__all__ = ["DEAD_AFTER", "PING_INTERVAL", "Link", "LinkStatistics", "reason_of", "serve_link"]

PING_INTERVAL: Final = 1.0  # seconds between keepalive pings on an idle or busy link
DEAD_AFTER: Final = 10.0  # seconds of silence before a link is dropped (generous: long numpy work can delay pongs)
_PINGS_REMEMBERED: Final = 8  # outstanding ping nonces kept for RTT matching

log = get_logger("mesh")

LinkState = Literal["up", "down"]
_Loop = Callable[["Link", SecureConnection, Mailboxes], Awaitable[str]]


def reason_of(exc: BaseException) -> str:
    """An error as a link's ``last_error``: without "peer VCP n is unavailable: ",
    which the mailboxes and ``wait_linked`` add again when they report it."""
    text = str(exc)
    if isinstance(exc, PeerUnavailable):
        prefix = f"peer VCP {exc.peer} is unavailable: "
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


@dataclass(frozen=True, slots=True)
class LinkStatistics:
    """What ``vcpctl status`` shows about the link to one peer.

    Attributes:
        peer: the other VCP's party id.
        url: where this VCP dials it (empty when the peer dials us).
        dials: whether this VCP dials (lower party id) or waits to be dialled.
        state: "up" or "down".
        since: Unix time of the last change of ``state``.
        last_error: why the link last went down or could not be set up, or
            ``None`` if it never failed.
        connects: how many times the link came up.
        messages_sent / messages_received / bytes_sent / bytes_received:
            peer messages (session data, aborts, keepalives) over all
            connections; bytes are encoded message bytes.
        rtt: round-trip time of the last answered keepalive, in seconds.
    """

    peer: int
    url: str
    dials: bool
    state: LinkState
    since: float
    last_error: str | None
    connects: int
    messages_sent: int
    messages_received: int
    bytes_sent: int
    bytes_received: int
    rtt: float | None


class Link:
    """The mesh's mutable record of one peer (one per other VCP, for the mesh's life).

    At most one connection is attached at a time; attaching a new one hands
    back the cancel scope of the one it replaces.
    """

    def __init__(self, peer: int, url: str, *, dials: bool) -> None:
        self.peer = peer
        self.url = url
        self.dials = dials
        self.state: LinkState = "down"
        self.since = time.time()
        self.last_error: str | None = None
        self.connection: SecureConnection | None = None
        self.scope: trio.CancelScope | None = None
        self.connects = 0
        self.messages_sent = self.messages_received = 0
        self.bytes_sent = self.bytes_received = 0
        self.rtt: float | None = None
        self._pings: OrderedDict[int, float] = OrderedDict()

    def __repr__(self) -> str:
        return f"<Link party {self.peer} {self.state} since={self.since:.0f} connects={self.connects}>"

    def statistics(self) -> LinkStatistics:
        """A frozen snapshot of this link."""
        return LinkStatistics(
            peer=self.peer,
            url=self.url,
            dials=self.dials,
            state=self.state,
            since=self.since,
            last_error=self.last_error,
            connects=self.connects,
            messages_sent=self.messages_sent,
            messages_received=self.messages_received,
            bytes_sent=self.bytes_sent,
            bytes_received=self.bytes_received,
            rtt=self.rtt,
        )

    def attach(self, connection: SecureConnection, scope: trio.CancelScope) -> trio.CancelScope | None:
        """Make ``connection`` the live one; return the scope of the one it replaces."""
        previous = self.scope
        self.connection = connection
        self.scope = scope
        self.state = "up"
        self.since = time.time()
        self.connects += 1
        self._pings.clear()
        return previous

    def detach(self, reason: str) -> None:
        """The live connection ended for ``reason``."""
        self.connection = None
        self.scope = None
        self.state = "down"
        self.since = time.time()
        self.last_error = reason

    def count_sent(self, size: int) -> None:
        self.messages_sent += 1
        self.bytes_sent += size

    def ping(self) -> bytes:
        """A keepalive ping to send now (remembered for the RTT)."""
        nonce = secrets.randbits(64)
        self._pings[nonce] = trio.current_time()
        while len(self._pings) > _PINGS_REMEMBERED:
            self._pings.popitem(last=False)
        return encode_peer(Ping(nonce))

    def pong(self, nonce: int) -> None:
        sent = self._pings.pop(nonce, None)
        if sent is not None:
            self.rtt = trio.current_time() - sent


async def serve_link(link: Link, conn: SecureConnection, mailboxes: Mailboxes) -> str:
    """Serve one connection until it ends; return why it ended (for logs and status).

    Never raises for anything the peer does: bad frames, malformed messages,
    floods and silence all end the connection with a reason.
    """
    reasons: list[str] = []
    async with trio.open_nursery() as nursery:

        async def until_done(loop: _Loop) -> None:
            reason = await loop(link, conn, mailboxes)
            reasons.append(reason)
            nursery.cancel_scope.cancel()

        nursery.start_soon(until_done, _read)
        nursery.start_soon(until_done, _keepalive)
    return reasons[0] if reasons else "closed on this side"


async def _read(link: Link, conn: SecureConnection, mailboxes: Mailboxes) -> str:
    peer = link.peer
    try:
        async for data in conn:
            link.messages_received += 1
            link.bytes_received += len(data)
            frame = decode_peer(data)
            if isinstance(frame, PeerMessage):
                mailboxes.deliver(peer, frame.session, frame.step, frame.payload)
            elif isinstance(frame, Abort):
                mailboxes.deliver_abort(peer, frame.session, frame.reason)
            elif isinstance(frame, Ping):
                pong = encode_peer(Pong(frame.nonce))
                conn.send_nowait(pong)
                link.count_sent(len(pong))
            else:
                link.pong(frame.nonce)
    except WireError as exc:  # a bad frame, a malformed message, or a flood
        log.warning(
            "dropping the link with party %d: %s", peer, exc, extra={"ctx": {"peer": peer, "party": mailboxes.party}}
        )
        return f"bad data from party {peer}: {exc}"
    except VcpError as exc:  # the connection was cut
        return reason_of(exc)
    except trio.ClosedResourceError:
        return "closed on this side"
    return f"party {peer} closed the link ({conn.close_reason or 'no reason given'})"


async def _keepalive(link: Link, conn: SecureConnection, mailboxes: Mailboxes) -> str:
    """Ping every :data:`PING_INTERVAL`; give up after :data:`DEAD_AFTER` of silence.

    Any frame counts as a sign of life, so a link busy with a long transfer
    never looks dead, and the peer's own pings keep us alive too.
    """
    next_ping = trio.current_time()
    while True:
        now = trio.current_time()
        deadline = conn.last_received + DEAD_AFTER  # the same sum we sleep until (no float drift)
        if now >= deadline:
            return f"no traffic from party {link.peer} for {DEAD_AFTER:g} s (keepalive timeout)"
        if now >= next_ping:
            ping = link.ping()
            try:
                conn.send_nowait(ping)
            except (VcpError, trio.ClosedResourceError) as exc:
                return reason_of(exc)
            link.count_sent(len(ping))
            next_ping = now + PING_INTERVAL
        await trio.sleep_until(min(next_ping, deadline))
