"""Sessions on top of :mod:`vcpd.net.mailbox` and any link layer that can send.

:class:`SessionOpener` implements the :class:`vcpd.protocol.transport.Transport`
contract (structurally; net does not import protocol) for whatever delivers
messages: the websocket peer mesh, or the in-memory hub of :mod:`vcpd.testing`.
A link layer provides a :class:`MessageSender`; incoming messages go to the
shared :class:`~vcpd.net.mailbox.Mailboxes`.

L3 (net): imports only vcpd.errors, vcpd.logs and its own package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, Protocol

import trio

from vcpd.errors import PeerUnavailable, VcpError
from vcpd.logs import get_logger

from .mailbox import Mailboxes, SessionBox

__all__ = ["ABORT_NOTICE_TIMEOUT", "MailboxSession", "MessageSender", "SessionOpener"]

ABORT_NOTICE_TIMEOUT: Final = 2.0  # seconds spent telling peers a session aborted

log = get_logger("sessions")


class MessageSender(Protocol):
    """What a link layer offers sessions: labelled sends to one peer."""

    async def send_message(self, peer: int, session: str, step: str, payload: Any) -> None:
        """Deliver one labelled message to ``peer`` or raise PeerUnavailable."""
        ...

    async def send_abort(self, peer: int, session: str, reason: str) -> None:
        """Tell ``peer`` that ``session`` aborted here."""
        ...


def describe_failure(exc: BaseException) -> str:
    """A reason safe to send to peers: vcpd errors carry no secrets by contract."""
    if isinstance(exc, VcpError):
        return str(exc)
    if isinstance(exc, trio.Cancelled):
        return "cancelled on this VCP (shutdown or timeout)"
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe_failure(inner) for inner in exc.exceptions[:3])
    return f"internal error ({type(exc).__name__})"


class MailboxSession:
    """One session as seen by one VCP (see :class:`vcpd.protocol.transport.Session`)."""

    def __init__(self, session_id: str, box: SessionBox, mailboxes: Mailboxes, sender: MessageSender) -> None:
        self._id = session_id
        self._box = box
        self._mailboxes = mailboxes
        self._sender = sender

    def __repr__(self) -> str:
        return f"<MailboxSession {self._id} party={self.party}>"

    @property
    def id(self) -> str:
        return self._id

    @property
    def party(self) -> int:
        return self._mailboxes.party

    @property
    def n_parties(self) -> int:
        return self._mailboxes.n_parties

    @property
    def peers(self) -> list[int]:
        return [p for p in range(self.n_parties) if p != self.party]

    def _check_peer(self, peer: int) -> None:
        if peer == self.party or not 0 <= peer < self.n_parties:
            raise ValueError(f"VCP {self.party} cannot exchange messages with party {peer}")

    async def send(self, peer: int, step: str, payload: Any) -> None:
        self._check_peer(peer)
        if self._mailboxes.is_down(peer):
            raise PeerUnavailable(peer, "link is down")
        await self._sender.send_message(peer, self._id, step, payload)

    async def receive(self, peer: int, step: str) -> Any:
        self._check_peer(peer)
        return await self._box.get(peer, step)

    async def exchange(self, step: str, payload: Any) -> dict[int, Any]:
        results: dict[int, Any] = {self.party: payload}

        async def send_to(peer: int) -> None:
            await self.send(peer, step, payload)

        async def receive_from(peer: int) -> None:
            results[peer] = await self.receive(peer, step)

        async with trio.open_nursery() as nursery:
            for peer in self.peers:
                nursery.start_soon(send_to, peer)
                nursery.start_soon(receive_from, peer)
        return results

    async def abort(self, reason: str) -> None:
        with trio.move_on_after(ABORT_NOTICE_TIMEOUT):
            async with trio.open_nursery() as nursery:
                for peer in self.peers:
                    nursery.start_soon(self._notify, peer, reason)

    async def _notify(self, peer: int, reason: str) -> None:
        if self._mailboxes.is_down(peer):
            return
        try:
            await self._sender.send_abort(peer, self._id, reason)
        except VcpError as exc:
            log.info("could not tell VCP %d about the abort of %s: %s", peer, self._id, exc)


class SessionOpener:
    """Opens sessions over a :class:`Mailboxes` and a :class:`MessageSender`."""

    def __init__(self, mailboxes: Mailboxes, sender: MessageSender) -> None:
        self._mailboxes = mailboxes
        self._sender = sender

    @property
    def party(self) -> int:
        return self._mailboxes.party

    @property
    def n_parties(self) -> int:
        return self._mailboxes.n_parties

    @asynccontextmanager
    async def session(self, session_id: str) -> AsyncIterator[MailboxSession]:
        box = self._mailboxes.open(session_id)
        session = MailboxSession(session_id, box, self._mailboxes, self._sender)
        try:
            yield session
        except BaseException as exc:
            with trio.CancelScope(shield=True):
                await session.abort(describe_failure(exc))
            raise
        finally:
            self._mailboxes.close(session_id)
