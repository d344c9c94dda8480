"""The generator's control channel: how followers learn of jobs the leader starts.

Sessions only meet when both ends know the session id, and a follower cannot
guess the id of a job the leader has just created. So each follower keeps a
control session open with the leader, and the leader announces jobs (and job
failures) in it:

1. the follower draws a fresh random nonce, opens ``generator.ctl:<party>:<nonce>``
   and sends ``hello`` ``{"nonce", "completed": [recent completed job ids]}``
   in the fixed session ``generator.hello:<party>``, which the leader keeps
   open for it (reopened after every hello);
2. the leader opens ``generator.ctl:<party>:<nonce>`` and answers ``welcome``
   ``{"failed": [ids]}``: those of the follower's completed jobs that the
   leader never completed (the follower deletes them -- the cheap
   reconciliation for a leader that failed a job while the follower was away);
3. the follower answers ``ready``; from then on the leader sends
   ``notice.0``, ``notice.1``, ...: ``{"type": "job", ...}`` or ``{"type":
   "failed", "job": id, "reason": str}``.

Waiting for the next notice is the one unbounded wait here, on purpose: a
link may rightly stay idle for hours, and a lost link ends it at once
(PeerUnavailable, or the abort notice of a session left by a stopping VCP).
Every other step is bounded by a named timeout.

A new hello replaces the follower's old link (a restarted follower uses a new
nonce, so nothing stale is ever read); a lost link (PeerUnavailable, an
aborted session, no welcome within :data:`HELLO_TIMEOUT`) makes the follower
say hello again after :data:`LINK_RETRY_INTERVAL`.

This module must not import another service, vcpd.net, api, node or daemon.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import trio

from vcpd.errors import PeerUnavailable, VcpError
from vcpd.logs import get_logger
from vcpd.protocol.transport import Transport

__all__ = [
    "CONTROL_PREFIX",
    "HELLO_PREFIX",
    "HELLO_TIMEOUT",
    "LINK_RETRY_INTERVAL",
    "READY_TIMEOUT",
    "FollowerControl",
    "LeaderControl",
]

log = get_logger("generator.control")

HELLO_PREFIX: Final = "generator.hello:"
CONTROL_PREFIX: Final = "generator.ctl:"

HELLO_TIMEOUT: Final = 10.0
"""Seconds a follower waits for the leader's welcome before saying hello again."""

READY_TIMEOUT: Final = 10.0
"""Seconds the leader waits for a follower's ready (a stale hello gets none)."""

LINK_RETRY_INTERVAL: Final = 1.0
"""Seconds between attempts to (re)establish a control link."""

NOTICE_BUFFER: Final = 1024
"""Notices queued per follower before the link counts as congested."""

_NONCE_RE: Final = re.compile(r"[0-9a-f]{32}\Z")

Reconcile = Callable[[int, dict[str, Any]], Awaitable[dict[str, Any]]]
Handler = Callable[[dict[str, Any]], Awaitable[None]]


class LeaderControl:
    """The leader's end: one link per follower, announcements pushed through it."""

    def __init__(self, transport: Transport, reconcile: Reconcile) -> None:
        self._transport = transport
        self._reconcile = reconcile
        self._links: dict[int, trio.MemorySendChannel[dict[str, Any]]] = {}
        self._changed = trio.Event()

    @property
    def connected(self) -> tuple[int, ...]:
        """Followers with a live control link."""
        return tuple(sorted(self._links))

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen for every follower's hello, forever."""
        async with trio.open_nursery() as nursery:
            for peer in range(1, self._transport.n_parties):
                nursery.start_soon(self._listen, peer, nursery)
            task_status.started()

    async def wait_connected(self, peers: Iterable[int], timeout: float) -> None:
        """Wait until every peer has a link.

        Raises:
            PeerUnavailable: some peer did not connect within ``timeout`` seconds.
        """
        wanted = list(peers)
        with trio.move_on_after(timeout):
            while any(p not in self._links for p in wanted):
                await self._changed.wait()
        for peer in wanted:
            if peer not in self._links:
                raise PeerUnavailable(peer, "it has no generator control link to the leader (is its vcpd running?)")

    def notify(self, peer: int, notice: dict[str, Any]) -> None:
        """Queue a notice for one follower.

        Raises:
            PeerUnavailable: no link, or the link is congested.
        """
        link = self._links.get(peer)
        if link is None:
            raise PeerUnavailable(peer, "no generator control link")
        try:
            link.send_nowait(notice)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            raise PeerUnavailable(peer, "generator control link congested or closed") from None

    def notify_all(self, notice: dict[str, Any]) -> None:
        """Queue a notice for every connected follower (best effort)."""
        for peer in list(self._links):
            try:
                self.notify(peer, notice)
            except PeerUnavailable:
                pass

    def _signal(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _listen(self, peer: int, nursery: trio.Nursery) -> None:
        current: trio.CancelScope | None = None
        while True:
            # The session is only ever left normally and reopened without a
            # checkpoint in between, so no hello can fall into the gap (a
            # message for a closed session is dropped). A failed receive waits
            # *inside* the session, where a hello arriving meanwhile is kept.
            hello: Any = None
            async with self._transport.session(f"{HELLO_PREFIX}{peer}") as session:
                try:
                    hello = await session.receive(peer, "hello")
                except (VcpError, ValueError) as exc:  # link down, duplicate hello, ...
                    log.debug("no hello from VCP %d yet: %s", peer, exc)
                    await trio.sleep(LINK_RETRY_INTERVAL)
                    try:
                        hello = await session.receive(peer, "hello")
                    except (VcpError, ValueError) as exc:
                        log.debug("still no hello from VCP %d: %s", peer, exc)
                        hello = None
            if hello is None:
                continue
            nonce = hello.get("nonce") if isinstance(hello, dict) else None
            if not (isinstance(nonce, str) and _NONCE_RE.match(nonce)):
                log.warning("ignored a malformed generator hello from VCP %d", peer)
                continue
            if current is not None:
                current.cancel()
            current = trio.CancelScope()
            nursery.start_soon(self._link, peer, hello, current)

    async def _link(self, peer: int, hello: dict[str, Any], scope: trio.CancelScope) -> None:
        send, receive = trio.open_memory_channel[dict[str, Any]](NOTICE_BUFFER)
        with scope:
            try:
                async with self._transport.session(f"{CONTROL_PREFIX}{peer}:{hello['nonce']}") as session:
                    await session.send(peer, "welcome", await self._reconcile(peer, hello))
                    with trio.fail_after(READY_TIMEOUT):
                        await session.receive(peer, "ready")
                    self._links[peer] = send
                    self._signal()
                    log.info("generator control link to VCP %d is up", peer)
                    async with trio.open_nursery() as nursery:

                        async def watch() -> None:
                            # Nothing is ever sent on this step: the receive ends
                            # only when the follower goes away or aborts.
                            await session.receive(peer, "closed")

                        nursery.start_soon(watch)
                        k = 0
                        async with receive:
                            async for notice in receive:
                                await session.send(peer, f"notice.{k}", notice)
                                k += 1
            except Exception as exc:
                log.info("generator control link to VCP %d ended: %s", peer, _first(exc))
            finally:
                if self._links.get(peer) is send:
                    del self._links[peer]
                    self._signal()
                send.close()


class FollowerControl:
    """A follower's end: keeps a link to the leader, hands notices to a handler."""

    def __init__(
        self,
        transport: Transport,
        make_hello: Callable[[], Awaitable[dict[str, Any]]],
        on_welcome: Handler,
        on_notice: Handler,
    ) -> None:
        self._transport = transport
        self._make_hello = make_hello
        self._on_welcome = on_welcome
        self._on_notice = on_notice
        self.connected = False
        self._changed = trio.Event()

    async def wait_connected(self, timeout: float) -> None:
        """Wait until the link to the leader is up.

        Raises:
            PeerUnavailable: not within ``timeout`` seconds.
        """
        with trio.move_on_after(timeout):
            while not self.connected:
                await self._changed.wait()
        if not self.connected:
            raise PeerUnavailable(0, "no generator control link to the leader yet")

    def _set_connected(self, value: bool) -> None:
        self.connected = value
        self._changed.set()
        self._changed = trio.Event()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the link up forever (ready at once: the leader may come later)."""
        task_status.started()
        while True:
            try:
                await self._connect_once()
            except Exception as exc:
                log.debug("generator control link to the leader ended: %s", _first(exc))
            await trio.sleep(LINK_RETRY_INTERVAL)

    async def _connect_once(self) -> None:
        party = self._transport.party
        nonce = secrets.token_hex(16)
        hello = {**await self._make_hello(), "nonce": nonce}
        async with self._transport.session(f"{CONTROL_PREFIX}{party}:{nonce}") as session:
            async with self._transport.session(f"{HELLO_PREFIX}{party}") as hello_session:
                await hello_session.send(0, "hello", hello)
            with trio.fail_after(HELLO_TIMEOUT):
                welcome = await session.receive(0, "welcome")
            await self._on_welcome(welcome if isinstance(welcome, dict) else {})
            await session.send(0, "ready", True)
            self._set_connected(True)
            log.info("generator control link to the leader is up")
            try:
                k = 0
                while True:
                    notice = await session.receive(0, f"notice.{k}")
                    k += 1
                    if isinstance(notice, dict):
                        await self._on_notice(notice)
            finally:
                self._set_connected(False)


def _first(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc
