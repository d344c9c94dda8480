"""The secure backend (``offline = "mascot"``): MASCOT tuple generation, no trusted party.

Drives :mod:`vcpd.protocol.mascot` (docs/offline.md) through the job runner
like the dealer backend: same jobs, scheduler and telemetry. Every VCP
computes and stores only its own shares; its MAC key share α_i never leaves it.

**The setup** (base OTs on every link, :func:`~vcpd.protocol.mascot.mascot_setup`)
runs once per VC, lazily, as the first step of the job that needs it, and is
kept: each VCP persists its :class:`~vcpd.protocol.mascot.MascotState` (which
holds α_i and seeds revealing its bits, so it is as secret as the MAC key) in
``<data_dir>/``:data:`STATE_FILE`, mode 0600, written atomically, and loads it
on start. Protocol, in the job's session:

* ``mascot.status`` follower -> leader: whether its setup is usable (present,
  not failed, this VC and this α_i) and its public link ids per peer, plus the
  row hashes it offers;
* ``mascot.plan`` leader -> followers: ``{"setup": bool, "reason": str}``. The
  leader asks for a new setup if any VCP has none (first job, lost file), any
  state is marked failed, the two ends of some link hold different setups
  (a VCP restored an old file, a setup interrupted half-way), or a faster row
  hash became available on every VCP. Otherwise every VCP reuses its state.
  A follower whose own state is unusable refuses a plan without setup;
* ``mascot.setup.baseot``: the setup itself, when asked for (all VCPs
  persist the new state before using it);
* chunk ``i`` of the job (``job.batch`` tuples, the store chunk) is one
  :func:`~vcpd.protocol.mascot.generate` call whose steps are renamed
  ``mascot.c<i>.…`` (and whose session id, which the protocol binds into its
  coins and hashes, is ``<job session>/chunk.<i>``); each VCP stores its shares of
  the chunk as soon as every check of that chunk passed, so memory stays
  bounded by one chunk whatever the job's size. Activation happens only at
  the end, by the runner, so nothing of a failing job is ever usable;
* ``mascot.stored`` follower -> leader: ``{"stored": count}`` once all is stored.

**A failed check** ("KOS correlation check failed with VCP k", "MAC-generation
check failed", "sacrifice check failed", "MAC check failed: …") fails the job
on every VCP with that text as its error; the runner deletes the job's chunks.
The state is marked failed (the protocol does so; this backend also marks it on
VCPs that only heard of the failure) and persisted, so the next job redoes the
setup with fresh base OTs, which is logged.

This module must not import another service, vcpd.net, api, node or daemon.
"""

from __future__ import annotations

import hmac
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import trio

from vcpd.errors import ConfigError, SessionAborted, VcpInternalError
from vcpd.logs import get_logger
from vcpd.math.field import PrimeField
from vcpd.math.shares import Shares
from vcpd.protocol.mascot import DEFAULT_BATCH, MascotState, generate, mascot_setup
from vcpd.protocol.mascot.otext import HASHES, available_hashes
from vcpd.protocol.mascot.triples import is_check_failure
from vcpd.protocol.transport import Session
from vcpd.services.ports import KIND_ARITY, TupleSink

from .backend import JobSpec, Progress
from .dealing import pack
from .util import first_error, gather

__all__ = ["PLAN_TIMEOUT", "STATE_FILE", "MascotBackend", "load_state", "write_state"]

log = get_logger("generator")

Finish = Callable[[], Awaitable[None]]

STATE_FILE: Final = "mascot_state"
"""File name of the persisted setup in the data directory (mode 0600)."""

PLAN_TIMEOUT: Final = 60.0
"""Seconds the leader waits for the followers' setup status, and a follower for the plan."""

STORED_TIMEOUT: Final = 120.0
"""Seconds the leader waits, after the last chunk, for every follower's confirmation."""


def load_state(path: Path) -> MascotState | None:
    """The persisted setup, or None if there is none or it is unreadable.

    Raises:
        ConfigError: the file is not a regular file or is accessible by group
            or others (as for the MAC key file: fix the mode, it holds α_i).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError("the MASCOT setup state is not a regular file", path=str(path))
    if st.st_mode & 0o077:
        raise ConfigError(
            f"the MASCOT setup state is accessible by group or others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"it holds this VCP's MAC key share: run 'chmod 600 {path}'",
            path=str(path),
        )
    try:
        return MascotState.from_bytes(path.read_bytes())
    except (OSError, ValueError) as exc:
        log.warning("ignoring the MASCOT setup state (%s); the next job redoes the setup", exc, extra={"ctx": {"file": str(path)}})
        return None


def write_state(path: Path, state: MascotState) -> None:
    """Persist ``state`` atomically and durably, mode 0600 (blocking: run in a thread)."""
    data = state.to_bytes()
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class _ChunkSession:
    """The job session as one chunk's :func:`generate` sees it: its own id and
    step names (``mascot.<step>`` -> ``mascot.c<i>.<step>``), so every chunk's
    labels are unique within the job session."""

    def __init__(self, session: Session, index: int) -> None:
        self._session = session
        self._prefix = f"mascot.c{index}."
        self._id = f"{session.id}/chunk.{index}"

    @property
    def id(self) -> str:
        return self._id

    @property
    def party(self) -> int:
        return self._session.party

    @property
    def n_parties(self) -> int:
        return self._session.n_parties

    def _step(self, step: str) -> str:
        return self._prefix + step.removeprefix("mascot.")

    async def send(self, peer: int, step: str, payload: Any) -> None:
        await self._session.send(peer, self._step(step), payload)

    async def receive(self, peer: int, step: str) -> Any:
        return await self._session.receive(peer, self._step(step))

    async def exchange(self, step: str, payload: Any) -> dict[int, Any]:
        return await self._session.exchange(self._step(step), payload)

    async def abort(self, reason: str) -> None:
        await self._session.abort(reason)


class MascotBackend:
    """Secure generation with MASCOT; see the module docstring.

    Args:
        field: the VC's field.
        alpha_share: this VCP's MAC key share α_i (sampled locally, never sent).
        party: this VCP's party id (0 leads).
        n_parties: number of VCPs.
        state_path: where the setup is persisted (``<data_dir>/mascot_state``);
            None keeps it in memory only (tests), so a restart redoes it.
        threads: run the protocol's heavy local steps in worker threads (the
            daemon does, so its event loop keeps serving links meanwhile).
        protocol_batch: triples per MASCOT protocol batch (memory ~250 MB per
            peer at 2048).
    """

    name = "mascot"

    def __init__(
        self,
        field: PrimeField,
        alpha_share: int,
        party: int,
        n_parties: int,
        *,
        state_path: Path | None = None,
        threads: bool = False,
        protocol_batch: int = DEFAULT_BATCH,
    ) -> None:
        if protocol_batch < 1:
            raise ValueError(f"protocol_batch must be positive, got {protocol_batch}")
        self._field = field
        self._alpha = alpha_share % field.p
        self._party = party
        self._n_parties = n_parties
        self._path = state_path
        self._threads = threads
        self._protocol_batch = protocol_batch
        self._state: MascotState | None = load_state(state_path) if state_path is not None else None
        if self._state is not None:
            log.info("loaded the MASCOT setup", extra={"ctx": self._describe(self._state)})

    @property
    def state(self) -> MascotState | None:
        """The current setup (None before the first one)."""
        return self._state

    def check_leader(self) -> None:
        """Every VCP of a mascot VC can lead: nothing to check."""

    # ------------------------------------------------------------------ setup agreement

    def _problem(self) -> str | None:
        """Why this VCP's setup cannot serve a job (None if it can)."""
        state = self._state
        if state is None:
            return "no setup yet"
        if state.failed:
            return "a check failed since the last setup"
        if (state.prime, state.party, state.n_parties) != (self._field.p, self._party, self._n_parties):
            return "the setup belongs to another VC"
        if not hmac.compare_digest(state.alpha.to_bytes(16, "little"), self._alpha.to_bytes(16, "little")):
            return "the setup belongs to another MAC key share"
        return None

    def _status(self) -> dict[str, Any]:
        problem = self._problem()
        links = {} if problem or self._state is None else {str(p): link.link_id for p, link in self._state.links.items()}
        hash_name = self._state.hash_name if self._state is not None else ""
        return {"problem": problem or "", "links": links, "hash": hash_name, "offers": available_hashes()}

    def _decide(self, statuses: dict[int, Any]) -> str:
        """Leader: why a new setup is needed ("" if the current one serves)."""
        for party in range(self._n_parties):
            status = statuses[party]
            if not isinstance(status, dict):
                return f"VCP {party} sent a malformed setup status"
            if status.get("problem"):
                return f"VCP {party}: {str(status['problem'])[:200]}"
        for i in range(self._n_parties):
            for j in range(i + 1, self._n_parties):
                ours, theirs = statuses[i].get("links"), statuses[j].get("links")
                if not (isinstance(ours, dict) and isinstance(theirs, dict)):
                    return f"VCP {i} or {j} sent malformed link ids"
                a, b = ours.get(str(j)), theirs.get(str(i))
                if not (isinstance(a, bytes) and isinstance(b, bytes) and hmac.compare_digest(a, b)):
                    return f"VCPs {i} and {j} hold different setups for their link"
        offers = [statuses[p].get("offers") for p in range(self._n_parties)]
        common = [h for h in HASHES if all(isinstance(o, list) and h in o for o in offers)]
        if common and any(statuses[p].get("hash") != common[0] for p in range(self._n_parties)):
            return f"every VCP now offers the faster row hash {common[0]!r}"
        return ""

    async def _plan(self, session: Session) -> MascotState:
        """Agree on the setup (redo it if needed) and return the one this job uses."""
        me, peers = session.party, [p for p in range(self._n_parties) if p != session.party]
        if me == 0:
            try:
                with trio.fail_after(PLAN_TIMEOUT):
                    statuses: dict[int, Any] = await gather(peers, lambda p: session.receive(p, "mascot.status"))
            except trio.TooSlowError:
                raise SessionAborted(session.id, "a VCP sent no MASCOT setup status in time") from None
            statuses[me] = self._status()
            reason = self._decide(statuses)
            plan = {"setup": bool(reason), "reason": reason}
            await gather(peers, lambda p: session.send(p, "mascot.plan", plan))
        else:
            await session.send(0, "mascot.status", self._status())
            try:
                with trio.fail_after(PLAN_TIMEOUT):
                    plan = await session.receive(0, "mascot.plan")
            except trio.TooSlowError:
                raise SessionAborted(session.id, "the leader sent no MASCOT setup plan in time") from None
            if not (isinstance(plan, dict) and isinstance(plan.get("setup"), bool)):
                raise SessionAborted(session.id, "the leader's MASCOT setup plan is malformed")
            reason = str(plan.get("reason", ""))[:300]
            if not plan["setup"] and self._problem() is not None:
                raise SessionAborted(session.id, f"the leader skipped a MASCOT setup this VCP needs ({self._problem()})")
        if not plan["setup"]:
            assert self._state is not None
            return self._state
        log.info("running the MASCOT setup (base OTs with every VCP)", extra={"ctx": {"reason": reason}})
        state = await mascot_setup(session, self._field, self._alpha, me, self._n_parties, threads=self._threads)
        await self._persist(state)
        self._state = state
        log.info("MASCOT setup done", extra={"ctx": self._describe(state)})
        return state

    async def _persist(self, state: MascotState) -> None:
        if self._path is not None:
            await trio.to_thread.run_sync(write_state, self._path, state)

    @staticmethod
    def _describe(state: MascotState) -> dict[str, Any]:
        return {"setup": state.setup_id.hex()[:16], "hash": state.hash_name, "failed": state.failed}

    async def _mark_failed(self, state: MascotState, exc: BaseException) -> None:
        """After a failed check: persist the failed mark so the next job redoes the setup."""
        state.failed = True
        if state is self._state:
            with trio.CancelScope(shield=True):
                try:
                    await self._persist(state)
                except OSError as os_exc:  # the state stays failed in memory all the same
                    log.error("could not persist the failed MASCOT setup: %s", os_exc)
        log.warning(
            "a MASCOT check failed; the setup is marked failed and the next job redoes it (new base OTs)",
            extra={"ctx": {**self._describe(state), "reason": str(exc)[:300]}},
        )

    # ------------------------------------------------------------------ jobs

    async def _run(self, job: JobSpec, session: Session, sink: TupleSink, progress: Progress, finish: Finish) -> None:
        state: MascotState | None = None
        try:
            state = await self._plan(session)
            stored = 0
            for index, offset in enumerate(range(0, job.count, job.batch)):
                n = min(job.batch, job.count - offset)
                shares = await generate(
                    _ChunkSession(session, index), state, self._field, job.kind, n,
                    batch_size=min(self._protocol_batch, n), threads=self._threads,
                )  # fmt: skip
                data = await self._pack(shares, job.kind, n)
                del shares
                stored = await sink.store_chunk(job.job_id, offset, n, data)
                await progress(stored)
            await finish()
        except BaseException as exc:
            if state is not None and is_check_failure(first_error(exc)):
                await self._mark_failed(state, first_error(exc))
            raise

    async def _pack(self, shares: list[Shares], kind: str, n: int) -> bytes:
        if len(shares) != KIND_ARITY[kind] or any(len(s) != n for s in shares):
            raise VcpInternalError(f"the MASCOT protocol returned the wrong shape for {n} {kind} tuples")
        parts = [array for s in shares for array in (s.values, s.macs)]
        if self._threads:
            return await trio.to_thread.run_sync(pack, self._field, parts, n)
        return pack(self._field, parts, n)

    async def lead(self, job: JobSpec, session: Session, sink: TupleSink, progress: Progress) -> None:
        async def confirmed(peer: int) -> None:
            try:
                with trio.fail_after(STORED_TIMEOUT):
                    answer = await session.receive(peer, "mascot.stored")
            except trio.TooSlowError:
                raise SessionAborted(session.id, f"VCP {peer} did not confirm storing its tuples in time") from None
            if not (isinstance(answer, dict) and answer.get("stored") == job.count):
                raise SessionAborted(session.id, f"VCP {peer} stored a different number of tuples")

        async def finish() -> None:
            await gather(range(1, self._n_parties), confirmed)

        await self._run(job, session, sink, progress, finish)

    async def follow(self, job: JobSpec, session: Session, sink: TupleSink, progress: Progress) -> None:
        async def finish() -> None:
            await session.send(0, "mascot.stored", {"stored": job.count})

        await self._run(job, session, sink, progress, finish)
