"""Test doubles shipped with vcpd (never imported by production modules).

* :func:`open_memory_transports` links N parties through an in-memory hub that
  implements the :class:`vcpd.protocol.transport.Transport` contract with the
  same mailbox and session code as the real mesh, without sockets or crypto —
  for fast, deterministic protocol tests (use ``autojump_clock``). Payloads go
  through msgpack, as on the wire, so a non-serialisable payload fails here too.
  The hub can cut links and reorder deliveries to test failure handling.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import trio

from vcpd.errors import PeerUnavailable
from vcpd.net.mailbox import Mailboxes
from vcpd.net.sessions import SessionOpener

__all__ = ["MemoryHub", "MemoryTransport", "open_memory_transports"]


class MemoryTransport(SessionOpener):
    """One party's end of a :class:`MemoryHub`."""

    def __init__(self, hub: MemoryHub, party: int) -> None:
        self.hub = hub
        self.mailboxes = Mailboxes(party, hub.n_parties)
        super().__init__(self.mailboxes, _HubSender(hub, party))


class _HubSender:
    def __init__(self, hub: MemoryHub, party: int) -> None:
        self.hub = hub
        self.party = party

    async def send_message(self, peer: int, session: str, step: str, payload: Any) -> None:
        await self.hub.route(self.party, peer, ("m", session, step, payload))

    async def send_abort(self, peer: int, session: str, reason: str) -> None:
        await self.hub.route(self.party, peer, ("a", session, reason))


class MemoryHub:
    """Routes messages between :class:`MemoryTransport` ends.

    Args:
        n_parties: number of parties.
        shuffle: deliver each message after a random number of scheduler
            checkpoints, so arrival order differs from send order.
        seed: seed for that scheduling noise (test determinism only; it never
            touches protocol randomness).
    """

    def __init__(self, n_parties: int, *, shuffle: bool = False, seed: int = 0) -> None:
        self.n_parties = n_parties
        self.transports = [MemoryTransport(self, party) for party in range(n_parties)]
        self._cut: set[frozenset[int]] = set()
        self._shuffle = shuffle
        self._seed = seed
        self.sent_bytes = 0
        self.messages = 0
        self._tamper: Any = None

    def tamper(self, fn: Any) -> None:
        """Install ``fn(src, dst, message) -> message`` to alter traffic in flight."""
        self._tamper = fn

    async def route(self, src: int, dst: int, message: tuple[Any, ...]) -> None:
        if frozenset((src, dst)) in self._cut:
            raise PeerUnavailable(dst, "link is down")
        if self._tamper is not None:
            message = self._tamper(src, dst, message)
        encoded = msgpack.packb(message, use_bin_type=True)
        self.sent_bytes += len(encoded)
        self.messages += 1
        decoded = msgpack.unpackb(encoded, raw=False, use_list=True)
        if self._shuffle:
            noise = hashlib.blake2b(f"{self._seed}:{self.messages}".encode(), digest_size=1).digest()[0]
            for _ in range(noise % 4):
                await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint()
        if frozenset((src, dst)) in self._cut:
            raise PeerUnavailable(dst, "link is down")
        box = self.transports[dst].mailboxes
        if decoded[0] == "m":
            _, session, step, payload = decoded
            box.deliver(src, session, step, payload)
        else:
            _, session, reason = decoded
            box.deliver_abort(src, session, reason)

    def cut(self, a: int, b: int, reason: str = "connection lost") -> None:
        """Take the link between ``a`` and ``b`` down (both ends notice at once)."""
        self._cut.add(frozenset((a, b)))
        self.transports[a].mailboxes.peer_down(b, reason)
        self.transports[b].mailboxes.peer_down(a, reason)

    def isolate(self, party: int, reason: str = "VCP went away") -> None:
        """Cut every link of ``party`` (as if its process died)."""
        for other in range(self.n_parties):
            if other != party:
                self.cut(party, other, reason)

    def restore(self, a: int, b: int) -> None:
        self._cut.discard(frozenset((a, b)))
        self.transports[a].mailboxes.peer_up(b)
        self.transports[b].mailboxes.peer_up(a)


@asynccontextmanager
async def open_memory_transports(
    n_parties: int, *, shuffle: bool = False, seed: int = 0
) -> AsyncIterator[MemoryHub]:
    """A hub with ``n_parties`` connected transports (``hub.transports[i]``)."""
    yield MemoryHub(n_parties, shuffle=shuffle, seed=seed)
