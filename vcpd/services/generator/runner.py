"""Running generation jobs: the leader's and the followers' side of a job.

A job on the leader: record it ``pending`` (durable) -> wait for a
concurrency slot -> ``running``; create the job's empty chunk set in the
tuple store; announce it to every follower over the control channel
(:mod:`.control`); in session ``generator.job:<id>`` collect ``joined`` from
every follower, let the backend stream and store the tuples, then send
``activate``. Each follower records the job ``completed``, activates it in its
store and answers ``activated``; only when every follower has, the leader
activates its own copy -- the only one ranges are ever assigned from -- and
records the job ``completed``. Any failure anywhere (a peer lost, a size
mismatch, a timeout, a crash) fails the job on every VCP and deletes its
chunks; a follower that already activated learns of the failure from a
``failed`` notice or, if it was away, from the reconciliation in its next
control hello.

This module must not import another service, vcpd.net, api, node or daemon.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeGuard, TypeVar

import trio

from vcpd.errors import SessionAborted, StoreError, VcpError
from vcpd.logs import get_logger
from vcpd.protocol.transport import Session, Transport
from vcpd.services.ports import TUPLE_KINDS, TupleSink
from vcpd.store import Store

from . import jobs
from .backend import GenerationBackend, JobSpec, Progress
from .control import FollowerControl, LeaderControl
from .jobs import Job
from .util import describe, for_all, gather

__all__ = ["ACTIVATE_TIMEOUT", "JOB_PREFIX", "JOIN_TIMEOUT", "LINK_WAIT_TIMEOUT", "MAX_JOB_COUNT", "JobRunner"]

log = get_logger("generator")
T = TypeVar("T")

JOB_PREFIX: Final = "generator.job:"

MAX_JOB_COUNT: Final = 1 << 31
"""Largest job accepted, in tuples."""

LINK_WAIT_TIMEOUT: Final = 30.0
"""Seconds a starting job waits for every follower's control link."""

JOIN_TIMEOUT: Final = 30.0
"""Seconds the leader waits for every follower to join a job's session."""

ACTIVATE_TIMEOUT: Final = 60.0
"""Seconds to wait for the activation steps of a job."""

RECONCILE_RECENT: Final = 1000
"""Completed jobs a follower asks the leader about when its control link comes up."""

_UUID_RE: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


class JobRunner:
    """Runs jobs on this VCP and keeps track of the active ones.

    Owns the control channel (leader or follower end), since announcements
    and failure notices are how jobs reach followers. The service
    (:class:`~.service.TupleGenerator`) starts jobs through :meth:`start`
    on the leader; on a follower jobs start from the leader's notices.
    """

    def __init__(
        self,
        store: Store,
        sink: TupleSink,
        transport: Transport,
        backend: GenerationBackend,
        concurrency: int,
        batch: int,
    ) -> None:
        self._store = store
        self._sink = sink
        self._transport = transport
        self._n_parties = transport.n_parties
        self._backend = backend
        self._batch = batch
        self._slots = trio.CapacityLimiter(max(1, concurrency))
        self.active: dict[str, tuple[str, int]] = {}
        """job id -> (kind, count) of the jobs pending or running here."""
        self.completed = 0
        self.failed = 0
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self.control: LeaderControl | FollowerControl
        if transport.party == 0:
            self.control = LeaderControl(transport, self._reconcile)
        else:
            self.control = FollowerControl(transport, self._hello, self._welcome, self._notice)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the control channel; jobs run in this task's nursery."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.control.serve)
                task_status.started()
        finally:
            self._nursery = None

    def start(self, job: Job) -> None:
        """Leader: run a recorded (pending) job in the background.

        Raises:
            RuntimeError: :meth:`serve` is not running.
        """
        if self._nursery is None:
            raise RuntimeError("the job runner is not serving")
        self.active[job.job_id] = (job.kind, job.count)
        self._signal()
        self._nursery.start_soon(self._lead, job)

    def changed_event(self) -> trio.Event:
        """The event the next change sets (take it before checking state)."""
        return self._changed

    def _signal(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._store.write(fn, *args)

    def _progress(self, job_id: str) -> Progress:
        async def report(stored: int) -> None:
            await self._store.write(jobs.set_progress, job_id, stored)

        return report

    async def _lead(self, job: Job) -> None:
        spec = JobSpec(job.job_id, job.kind, job.count, self._backend.name, self._batch)
        peers = list(range(1, self._n_parties))
        try:
            async with self._slots:
                await self._write(jobs.start, job.job_id)
                await self._sink.create_job(job.job_id, job.kind, job.count, source=self._backend.name)
                assert isinstance(self.control, LeaderControl)
                await self.control.wait_connected(peers, LINK_WAIT_TIMEOUT)
                async with self._transport.session(JOB_PREFIX + job.job_id) as session:
                    announcement = {"type": "job", "job_id": job.job_id, "kind": job.kind, "count": job.count,
                                    "backend": spec.backend, "batch": spec.batch}  # fmt: skip
                    for peer in peers:
                        self.control.notify(peer, announcement)
                    with trio.fail_after(JOIN_TIMEOUT):
                        joined = await gather(peers, lambda p: session.receive(p, "joined"))
                    _check_all(session, joined, "join the job")
                    await self._backend.lead(spec, session, self._sink, self._progress(job.job_id))
                    await for_all(peers, lambda p: session.send(p, "activate", {"count": job.count}))
                    with trio.fail_after(ACTIVATE_TIMEOUT):
                        activated = await gather(peers, lambda p: session.receive(p, "activated"))
                    _check_all(session, activated, "activate the job")
                    await self._sink.activate_job(job.job_id)
                await self._write(jobs.finish, job.job_id, "completed")
            self.completed += 1
            ctx = {"job": job.job_id, "kind": job.kind, "count": job.count}
            log.info("generation job completed", extra={"ctx": ctx})
        except BaseException as exc:
            await self._fail(job.job_id, exc)
            if isinstance(self.control, LeaderControl):
                self.control.notify_all({"type": "failed", "job": job.job_id, "reason": describe(exc)})
            if not isinstance(exc, Exception):
                raise
        finally:
            self.active.pop(job.job_id, None)
            self._signal()

    async def _fail(self, job_id: str, exc: BaseException | str) -> None:
        """Fail a job here: delete its chunks, record why (shielded; never raises)."""
        reason = exc if isinstance(exc, str) else describe(exc)
        with trio.CancelScope(shield=True):
            try:
                await self._sink.delete_job(job_id)
                if await self._write(jobs.finish, job_id, "failed", reason):
                    self.failed += 1
            except (StoreError, sqlite3.Error) as store_exc:  # the store is closing: recovery will finish this
                log.warning("could not record the failure of job %s: %s", job_id, store_exc)
        log.warning("generation job failed", extra={"ctx": {"job": job_id, "reason": reason}})

    # ------------------------------------------------------------------ follower side

    async def _notice(self, notice: dict[str, Any]) -> None:
        if notice.get("type") == "failed" and isinstance(notice.get("job"), str):
            job = await self._store.read(jobs.get, notice["job"])
            if job is not None and job.job_id not in self.active and job.state != "failed":
                await self._fail(job.job_id, f"the leader failed the job: {str(notice.get('reason'))[:300]}")
                self._signal()
            return
        spec = self._parse_announcement(notice)
        if spec is None:
            log.warning("ignored a malformed job announcement from the leader")
            return
        if self._nursery is None or spec.job_id in self.active:
            return
        self.active[spec.job_id] = (spec.kind, spec.count)
        self._signal()
        self._nursery.start_soon(self._follow, spec)

    def _parse_announcement(self, notice: dict[str, Any]) -> JobSpec | None:
        job_id, kind, count, batch = (notice.get(k) for k in ("job_id", "kind", "count", "batch"))
        if not (isinstance(job_id, str) and _UUID_RE.match(job_id) and isinstance(kind, str) and kind in TUPLE_KINDS):
            return None
        if not (_is_int(count) and _is_int(batch) and notice.get("backend") == self._backend.name):
            return None
        if not (0 < count <= MAX_JOB_COUNT and 0 < batch <= MAX_JOB_COUNT):
            return None
        return JobSpec(job_id, kind, count, self._backend.name, batch)

    async def _follow(self, spec: JobSpec) -> None:
        try:
            try:
                await self._write(jobs.insert, spec.job_id, spec.kind, spec.count, spec.backend, "running")
            except ValueError:
                log.warning("the leader announced job %s again; refusing it", spec.job_id)
                async with self._transport.session(JOB_PREFIX + spec.job_id) as session:
                    await session.send(0, "joined", {"ok": False, "reason": "job id already known here"})
                return
            try:
                await self._sink.create_job(spec.job_id, spec.kind, spec.count, source=spec.backend)
                async with self._transport.session(JOB_PREFIX + spec.job_id) as session:
                    await session.send(0, "joined", {"ok": True})
                    await self._backend.follow(spec, session, self._sink, self._progress(spec.job_id))
                    with trio.fail_after(ACTIVATE_TIMEOUT):
                        message = await session.receive(0, "activate")
                    if not (isinstance(message, dict) and message.get("count") == spec.count):
                        raise SessionAborted(session.id, "the leader's activation does not match the job")
                    # Completed first, activated second: a crash in between
                    # leaves an inactive job, never an active one the leader
                    # does not know about.
                    await self._write(jobs.finish, spec.job_id, "completed")
                    await self._sink.activate_job(spec.job_id)
                    await session.send(0, "activated", {"ok": True})
                self.completed += 1
            except BaseException as exc:
                await self._fail(spec.job_id, exc)
                if not isinstance(exc, Exception):
                    raise
        except VcpError as exc:
            log.warning("could not take part in job %s: %s", spec.job_id, exc)
        finally:
            self.active.pop(spec.job_id, None)
            self._signal()

    async def _hello(self) -> dict[str, Any]:
        recent = await self._store.read(jobs.newest, RECONCILE_RECENT, ("completed",))
        return {"completed": [job.job_id for job in recent]}

    async def _welcome(self, welcome: dict[str, Any]) -> None:
        failed = welcome.get("failed")
        for job_id in failed if isinstance(failed, list) else []:
            if isinstance(job_id, str) and job_id not in self.active:
                await self._fail(job_id, "the leader never completed this job")
        self._signal()

    async def _reconcile(self, peer: int, hello: dict[str, Any]) -> dict[str, Any]:
        """Leader: which of a follower's completed jobs did the leader not complete?"""
        ids = [j for j in hello.get("completed", []) if isinstance(j, str)][:RECONCILE_RECENT]
        states = await self._store.read(jobs.states_of, ids)
        # Only a job the leader recorded as failed is dropped: one it no longer
        # knows (pruned history, say) may still be active on the leader, where
        # dropping it on a follower would make every range in it refused.
        return {"failed": [j for j in ids if states.get(j) == "failed"]}


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_all(session: Session, answers: Mapping[int, Any], what: str) -> None:
    for peer, answer in sorted(answers.items()):
        if not (isinstance(answer, dict) and answer.get("ok") is True):
            reason = answer.get("reason") if isinstance(answer, dict) else None
            raise SessionAborted(session.id, f"VCP {peer} could not {what}: {str(reason)[:300]}")
