"""The tuple generator service (reference: Carbyne Stack's Klyshko).

:class:`TupleGenerator` is what the daemon and the API layer hold: it picks the
backend for the VC's offline mode (the dealer or MASCOT; see
:mod:`.backend`), recovers after a restart, runs jobs through
:class:`~.runner.JobRunner` (which has the job protocol), lists jobs, and on the
leader schedules jobs to keep stock above thresholds (:mod:`.scheduler`). On
start every job left pending or running is failed and its chunks deleted: no
backend resumes a job.

Layer L4: imports only vcpd.errors, config, keys, logs, math, store, protocol
and vcpd.services.ports (never another service, net, api, node or daemon).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import trio

from vcpd.config import TupleSettings
from vcpd.errors import PeerUnavailable, RequestError, VcpInternalError
from vcpd.keys import MacKey
from vcpd.logs import get_logger
from vcpd.math.field import PrimeField
from vcpd.protocol.mascot import DEFAULT_BATCH as MASCOT_PROTOCOL_BATCH
from vcpd.protocol.transport import Transport
from vcpd.services.ports import TUPLE_KINDS, TupleSink
from vcpd.store import Store

from . import jobs
from .backend import GenerationBackend
from .control import LeaderControl
from .dealer import DealerBackend
from .dealing import Encoding
from .jobs import Job
from .mascot import STATE_FILE, MascotBackend
from .runner import JOB_PREFIX, MAX_JOB_COUNT, RECONCILE_RECENT, JobRunner
from .scheduler import Scheduler

__all__ = ["DEFAULT_BATCH", "JOB_PREFIX", "MAX_JOB_COUNT", "GeneratorStatistics", "TupleGenerator"]

log = get_logger("generator")

DEFAULT_BATCH: Final = 1 << 15
"""Tuples per message and per stored chunk (3 MiB of triple shares)."""

JOB_RETENTION: Final = 30 * 24 * 3600.0
"""Seconds finished jobs stay in the history (Klyshko's ttlSecondsAfterFinished)..."""

JOB_HISTORY_MIN: Final = 2 * RECONCILE_RECENT
"""...but the newest this many jobs are always kept (reconciliation looks them up)."""


@dataclass(frozen=True, slots=True)
class GeneratorStatistics:
    """A snapshot of the generator for ``vcpctl status``.

    Attributes:
        backend: ``dealer`` or ``mascot``.
        insecure: True in dealer mode (the dealer knows every tuple and α).
        leader: whether this VCP leads jobs.
        active: job id -> kind of the jobs running or pending here.
        in_flight: kind -> tuples in active jobs.
        linked: leader: followers with a control link; follower: (0,) when
            linked to the leader, else ().
        completed, failed: jobs finished since the daemon started.
    """

    backend: str
    insecure: bool
    leader: bool
    active: Mapping[str, str]
    in_flight: Mapping[str, int]
    linked: tuple[int, ...]
    completed: int
    failed: int


class TupleGenerator:
    """This VCP's tuple generator; see the module docstring.

    Args:
        store: the VCP's open store (migrated with :data:`MIGRATIONS`).
        sink: where tuple shares go (the tuple store).
        transport: sessions to the other VCPs.
        field: the VC's field.
        mac_key: this VCP's MAC key (the dealer needs ``dealer_alpha``; MASCOT
            uses ``share``, this VCP's α_i).
        party: this VCP's party id (0 leads).
        n_parties: number of VCPs.
        settings: scheduler thresholds, priorities, batch size, concurrency.
        offline: ``dealer`` or ``mascot``.
        encoding: how the dealer sends followers their shares (see :mod:`.dealing`).
        batch: tuples per batch (message and store chunk; a MASCOT chunk).
        data_dir: ``mascot``: where the setup is persisted
            (``<data_dir>/mascot_state``, mode 0600); None keeps it in memory.
        threads: ``mascot``: heavy protocol steps in worker threads (the daemon
            sets it, so links keep being served during a job).
        mascot_batch: ``mascot``: triples per protocol batch (memory ~250 MB per
            peer at the default 2048).
    """

    MIGRATIONS: Final = jobs.MIGRATIONS

    def __init__(
        self,
        store: Store,
        sink: TupleSink,
        transport: Transport,
        field: PrimeField,
        mac_key: MacKey,
        party: int,
        n_parties: int,
        settings: TupleSettings,
        *,
        offline: str = "dealer",
        encoding: Encoding = "seed",
        batch: int = DEFAULT_BATCH,
        data_dir: Path | None = None,
        threads: bool = False,
        mascot_batch: int = MASCOT_PROTOCOL_BATCH,
    ) -> None:
        if batch <= 0:
            raise ValueError(f"batch must be positive, got {batch}")
        self._store = store
        self._sink = sink
        self._transport = transport
        self._party = party
        self._n_parties = n_parties
        self._settings = settings
        self._backend: GenerationBackend
        if offline == "dealer":
            alpha = mac_key.dealer_alpha if party == 0 else None
            self._backend = DealerBackend(field, alpha, n_parties, encoding=encoding)
        elif offline == "mascot":
            self._backend = MascotBackend(
                field, mac_key.share, party, n_parties,
                state_path=None if data_dir is None else Path(data_dir) / STATE_FILE,
                threads=threads, protocol_batch=mascot_batch,
            )  # fmt: skip
        else:
            raise ValueError(f"unknown offline mode {offline!r}")
        self._runner = JobRunner(store, sink, transport, self._backend, settings.concurrency, batch)

    @property
    def is_leader(self) -> bool:
        """Whether this VCP leads generation jobs (party 0)."""
        return self._party == 0

    # ------------------------------------------------------------------ lifecycle

    async def recover(self) -> None:
        """Fail the jobs a previous run left active and delete their chunks."""
        failed = await self._store.write(jobs.fail_active, "interrupted: the VCP restarted during the job")
        await self._store.write(jobs.prune, time.time() - JOB_RETENTION, JOB_HISTORY_MIN)
        for job_id in failed:
            await self._sink.delete_job(job_id)
        if failed:
            log.warning("failed generation jobs interrupted by a restart", extra={"ctx": {"jobs": len(failed)}})

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Recover, then run the control channel and the jobs until cancelled."""
        await self.recover()
        if isinstance(self._backend, DealerBackend):
            log.warning("offline mode 'dealer': INSECURE tuple generation (development only)")
        await self._runner.serve(task_status=task_status)

    async def serve_scheduler(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep every kind's stock above its threshold (leader only; needs ``serve``)."""
        if not self.is_leader:
            raise RequestError("conflict", "only the leader (VCP 0) runs the tuple scheduler")
        control = self._runner.control
        assert isinstance(control, LeaderControl)

        async def start_job(kind: str, count: int) -> str:
            # A job without every follower linked would only wait and fail:
            # skip the tick instead (the scheduler logs this once).
            missing = [p for p in range(1, self._n_parties) if p not in control.connected]
            if missing:
                raise PeerUnavailable(missing[0], "no generator control link; the scheduler waits for it")
            return await self.generate(kind, count)

        active = self._runner.active
        scheduler = Scheduler(self._settings, self._sink.available, lambda: list(active.values()), start_job)
        await scheduler.serve(task_status=task_status)

    async def wait_linked(self, timeout: float) -> None:
        """Wait until the control links are up: on the leader to every follower,
        on a follower to the leader (for readiness checks and tests).

        Raises:
            PeerUnavailable: naming a VCP still unlinked after ``timeout`` seconds.
        """
        control = self._runner.control
        if isinstance(control, LeaderControl):
            await control.wait_connected(range(1, self._n_parties), timeout)
        else:
            await control.wait_connected(timeout)

    def statistics(self) -> GeneratorStatistics:
        """Active jobs, links and counters (no I/O)."""
        in_flight = dict.fromkeys(TUPLE_KINDS, 0)
        runner = self._runner
        for kind, count in runner.active.values():
            in_flight[kind] += count
        if isinstance(runner.control, LeaderControl):
            linked = runner.control.connected
        else:
            linked = (0,) if runner.control.connected else ()
        return GeneratorStatistics(
            backend=self._backend.name,
            insecure=isinstance(self._backend, DealerBackend),
            leader=self.is_leader,
            active={job_id: kind for job_id, (kind, _) in runner.active.items()},
            in_flight=in_flight,
            linked=linked,
            completed=runner.completed,
            failed=runner.failed,
        )

    # ------------------------------------------------------------------ jobs

    async def generate(self, kind: str, count: int) -> str:
        """Start a job making ``count`` tuples of ``kind``; return its id at once.

        Leader only. The job waits for a concurrency slot (``pending``), then
        runs in the background; follow it with :meth:`job` or :meth:`wait_job`.

        Raises:
            RequestError: on a follower ("conflict": send it to VCP 0), or for
                a bad kind/count.
        """
        if not self.is_leader:
            raise RequestError("conflict", "only the leader (VCP 0) generates tuples; send the request to VCP 0")
        if kind not in TUPLE_KINDS:
            raise RequestError("bad-request", f"unknown tuple kind {kind!r}; known kinds: {', '.join(TUPLE_KINDS)}")
        if isinstance(count, bool) or not isinstance(count, int) or not 0 < count <= MAX_JOB_COUNT:
            raise RequestError("bad-request", f"count must be an int in 1..{MAX_JOB_COUNT}, got {count!r}")
        self._backend.check_leader()
        job_id = str(uuid.uuid4())
        job = await self._store.write(jobs.insert, job_id, kind, count, self._backend.name, "pending")
        try:
            self._runner.start(job)
        except RuntimeError:
            await self._store.write(jobs.finish, job_id, "failed", "the generator was not serving")
            raise VcpInternalError("the tuple generator is not serving; start TupleGenerator.serve first") from None
        return job_id

    async def jobs(self, limit: int = 100) -> list[Job]:
        """The newest ``limit`` jobs, newest first (the same ids on every VCP)."""
        return await self._store.read(jobs.newest, limit)

    async def job(self, job_id: str) -> Job | None:
        """One job, or None if this VCP has not heard of it."""
        return await self._store.read(jobs.get, job_id)

    async def wait_job(self, job_id: str, states: tuple[str, ...] = ("completed", "failed")) -> Job:
        """Wait until a job is in one of ``states`` here (and no task of this VCP
        still works on it); return it.

        On a follower this also waits for the job to be announced. Callers
        bound the wait themselves (``trio.fail_after``).
        """
        while True:
            changed = self._runner.changed_event()
            job = await self.job(job_id)
            if job is not None and job.state in states and job_id not in self._runner.active:
                return job
            await changed.wait()

