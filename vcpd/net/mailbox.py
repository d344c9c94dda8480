"""Per-session mailboxes: labelled messages meet their receivers in any order.

A :class:`Mailboxes` object belongs to one VCP. Links (real or in-memory)
call :meth:`Mailboxes.deliver` for every incoming labelled message and
:meth:`Mailboxes.peer_down` when a link drops; sessions wait in
:meth:`SessionBox.get`. Messages for a session this VCP has not opened yet are
kept (another VCP may simply have started first), up to a byte budget per peer;
messages for sessions that already ended are dropped.

Pure trio, no I/O: the peer mesh and the in-memory test transport share it.
L3 (net): imports only vcpd.errors.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from vcpd.errors import PeerUnavailable, SessionAborted, VcpInternalError, WireError

__all__ = ["EARLY_BYTES_PER_PEER", "Mailboxes", "SessionBox"]

EARLY_BYTES_PER_PEER: Final = 512 * 2**20  # bytes buffered for not-yet-opened sessions
_ENDED_MEMORY: Final = 4096  # ended session ids remembered to drop late messages


def _size(payload: Any) -> int:
    return len(payload) if isinstance(payload, bytes | bytearray | memoryview) else 64


@dataclass
class _Slot:
    event: trio.Event = field(default_factory=trio.Event)
    payload: Any = None
    has_payload: bool = False


class SessionBox:
    """The mailbox of one open session on this VCP.

    Each (peer, step) label carries exactly one message: a second one is a
    protocol violation that fails the session's waits on that peer.
    """

    def __init__(self, owner: Mailboxes, session: str) -> None:
        self._owner = owner
        self.session = session
        self._slots: dict[tuple[int, str], _Slot] = {}
        self._taken: set[tuple[int, str]] = set()
        self._failure: dict[int, BaseException] = {}
        self._aborted: SessionAborted | None = None

    def _slot(self, peer: int, step: str) -> _Slot:
        key = (peer, step)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        return slot

    def put(self, peer: int, step: str, payload: Any) -> None:
        key = (peer, step)
        if key in self._taken or (key in self._slots and self._slots[key].has_payload):
            self.fail_peer(peer, WireError(f"VCP {peer} sent step {step!r} of session {self.session} twice"))
            return
        slot = self._slot(peer, step)
        slot.payload = payload
        slot.has_payload = True
        slot.event.set()

    def fail_peer(self, peer: int, error: BaseException) -> None:
        self._failure.setdefault(peer, error)
        for (slot_peer, _), slot in self._slots.items():
            if slot_peer == peer:
                slot.event.set()

    def abort(self, error: SessionAborted) -> None:
        if self._aborted is None:
            self._aborted = error
        for slot in self._slots.values():
            slot.event.set()

    async def get(self, peer: int, step: str) -> Any:
        """Wait for the message ``step`` from ``peer``; each label is taken once.

        A message that already arrived is returned even if its sender has gone
        away or the session was aborted since (it is genuine, and protocols use
        it to tell why they failed); a wait for one that has not arrived raises.
        """
        key = (peer, step)
        if key in self._taken:
            raise ValueError(f"step {step!r} from VCP {peer} was already received in session {self.session}")
        slot = self._slot(peer, step)
        if not slot.has_payload:
            self._raise_if_failed(peer)
            await slot.event.wait()
        if not slot.has_payload:
            self._raise_if_failed(peer)
            raise VcpInternalError("mailbox woke without a message or a failure")
        del self._slots[key]
        self._taken.add(key)
        return slot.payload

    def _raise_if_failed(self, peer: int) -> None:
        if self._aborted is not None:
            raise self._aborted
        error = self._failure.get(peer)
        if error is not None:
            raise error


class Mailboxes:
    """All session mailboxes of one VCP, fed by its links."""

    def __init__(self, party: int, n_parties: int) -> None:
        self.party = party
        self.n_parties = n_parties
        self._open: dict[str, SessionBox] = {}
        self._early: dict[str, list[tuple[int, str, Any]]] = {}
        self._early_aborts: dict[str, SessionAborted] = {}
        self._early_bytes = [0] * n_parties
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._down: dict[int, str] = {}

    # -- sessions ---------------------------------------------------------------
    def open(self, session: str) -> SessionBox:
        if session in self._open:
            raise ValueError(f"session {session} is already open on VCP {self.party}")
        box = SessionBox(self, session)
        self._open[session] = box
        self._ended.pop(session, None)
        for peer, step, payload in self._early.pop(session, []):
            self._early_bytes[peer] -= _size(payload)
            box.put(peer, step, payload)
        aborted = self._early_aborts.pop(session, None)
        if aborted is not None:
            box.abort(aborted)
        for peer, reason in self._down.items():
            box.fail_peer(peer, PeerUnavailable(peer, reason))
        return box

    def close(self, session: str) -> None:
        self._open.pop(session, None)
        self._ended[session] = None
        while len(self._ended) > _ENDED_MEMORY:
            self._ended.popitem(last=False)

    # -- links ------------------------------------------------------------------
    def deliver(self, peer: int, session: str, step: str, payload: Any) -> None:
        """Hand an incoming message to its session (or keep it until it opens).

        Raises:
            WireError: the peer has exceeded its budget of early messages; the
                link should be closed, as this is how a flood is stopped.
        """
        box = self._open.get(session)
        if box is not None:
            box.put(peer, step, payload)
            return
        if session in self._ended:
            return
        size = _size(payload)
        if self._early_bytes[peer] + size > EARLY_BYTES_PER_PEER:
            raise WireError(f"VCP {peer} sent too much data for sessions this VCP has not opened")
        self._early_bytes[peer] += size
        self._early.setdefault(session, []).append((peer, step, payload))

    def deliver_abort(self, peer: int, session: str, reason: str) -> None:
        error = SessionAborted(session, f"aborted by VCP {peer}: {reason}")
        box = self._open.get(session)
        if box is not None:
            box.abort(error)
        elif session not in self._ended:
            self._early_aborts.setdefault(session, error)

    def peer_down(self, peer: int, reason: str) -> None:
        """Fail every open session's waits on ``peer``; new sessions see it too."""
        self._down[peer] = reason
        for box in self._open.values():
            box.fail_peer(peer, PeerUnavailable(peer, reason))
        # Early messages from a dead link are kept: the peer may have sent them
        # before going away, and a session opened later can still use them.

    def peer_up(self, peer: int) -> None:
        self._down.pop(peer, None)

    def is_down(self, peer: int) -> bool:
        return peer in self._down
