"""The interface every multi-party protocol runs over: labelled sessions.

A protocol (an online execution, a verified upload, a tuple reservation, a
generation job) runs as a **session** with an id that every VCP derives the
same way (usually from the client's request id). Inside a session each
message is labelled with a **step** string that both ends derive from the
protocol's position ("open.3", "mac.commit"), so delivery never depends on
arrival order: a message that arrives before its receiver asks for it waits in
the session's mailbox.

Two implementations exist: :class:`vcpd.net.mesh.PeerMesh` over authenticated
websockets, and the in-memory one in :mod:`vcpd.testing`. Protocol code sees
only these Protocols; the daemon puts the concrete pieces together.

Failure semantics, which protocol code relies on:

* ``receive`` from a peer whose link is down (or goes down while waiting)
  raises :class:`~vcpd.errors.PeerUnavailable` naming that peer, promptly;
* when a session body raises on one VCP, leaving ``session()`` sends an abort
  notice to the others, whose pending and later ``receive`` calls in that
  session raise :class:`~vcpd.errors.SessionAborted` with the reason;
* payloads are ``bytes`` or msgpack-serialisable values (int, str, bytes, lists,
  dicts of those); large ``bytes`` are chunked by the transport.

L3: imports nothing from vcpd but errors.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

__all__ = ["Session", "Transport"]


class Session(Protocol):
    """One protocol run between all VCPs, as seen by one VCP."""

    @property
    def id(self) -> str: ...

    @property
    def party(self) -> int:
        """This VCP's party id."""
        ...

    @property
    def n_parties(self) -> int: ...

    async def send(self, peer: int, step: str, payload: Any) -> None:
        """Send ``payload`` labelled ``step`` to ``peer`` (waits under backpressure)."""
        ...

    async def receive(self, peer: int, step: str) -> Any:
        """The payload ``peer`` sent with label ``step`` in this session."""
        ...

    async def exchange(self, step: str, payload: Any) -> dict[int, Any]:
        """Send ``payload`` to every other party and collect theirs (keyed by party).

        The result includes this party's own payload, so callers can index it
        by every party id.
        """
        ...

    async def abort(self, reason: str) -> None:
        """Tell every peer this session is aborted (best effort; never raises)."""
        ...


class Transport(Protocol):
    """Something that opens sessions between this VCP and all the others."""

    @property
    def party(self) -> int: ...

    @property
    def n_parties(self) -> int: ...

    def session(self, session_id: str) -> AbstractAsyncContextManager[Session]:
        """Open the session with this id; leaving it discards its mailbox.

        Leaving with an exception sends an abort notice to every peer first.
        Opening an id that is already open on this VCP raises ValueError.
        """
        ...
