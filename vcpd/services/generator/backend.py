"""The generation backend interface: what a job runner asks of an offline protocol.

A job (id, kind, count) runs in one session ``generator.job:<id>`` on every
VCP. The job runner (:mod:`.service`) does everything protocol-independent:
recording the job, announcing it, creating and activating or deleting the
job's chunks in the tuple store, progress and telemetry. A backend only makes
the tuples and stores this VCP's shares: :meth:`GenerationBackend.lead` on the
leader and :meth:`GenerationBackend.follow` on every other VCP, both returning
once every VCP has stored all ``count`` tuples. So the secure MASCOT generator
replaces the dealer without touching jobs, scheduler or telemetry
(:class:`~.dealer.DealerBackend`, :class:`~.mascot.MascotBackend`).

Backends must reserve the session step names ``joined``, ``activate`` and
``activated`` for the runner.

This module must not import another service, vcpd.net, api, node or daemon.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from vcpd.protocol.transport import Session
from vcpd.services.ports import TupleSink

__all__ = ["GenerationBackend", "JobSpec", "Progress"]

Progress = Callable[[int], Awaitable[None]]
"""``await progress(stored)``: report how many tuples this VCP has stored so far."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What every VCP knows about a job before it runs.

    Attributes:
        job_id: UUID string, equal on every VCP; also the tuple store's job id.
        kind: the tuple kind.
        count: number of tuples to make.
        backend: the backend's name (``dealer``, ``mascot``).
        batch: tuples per batch (message and store chunk).
    """

    job_id: str
    kind: str
    count: int
    backend: str
    batch: int


class GenerationBackend(Protocol):
    """One offline protocol, as the job runner drives it."""

    @property
    def name(self) -> str:
        """The backend's name, recorded with each job (``dealer``, ``mascot``)."""
        ...

    def check_leader(self) -> None:
        """Raise if this VCP cannot lead jobs with this backend (say, no α)."""
        ...

    async def lead(self, job: JobSpec, session: Session, sink: TupleSink, progress: Progress) -> None:
        """Leader: make the tuples, store own shares, have followers store theirs.

        Returns when every VCP has confirmed storing all ``job.count`` tuples.
        Raises (PeerUnavailable, SessionAborted, ...) on any failure; the runner
        then fails the job everywhere.
        """
        ...

    async def follow(self, job: JobSpec, session: Session, sink: TupleSink, progress: Progress) -> None:
        """Follower: take part and store this VCP's shares of all the tuples."""
        ...
