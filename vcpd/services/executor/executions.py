"""The executor service of one VCP (Carbyne Stack's Ephemeral): runs and records executions.

A client sends the same ``executions.run`` request to every VCP; each VCP's
:class:`Executor` checks it on its own (allow-list, program rules, the
caller's ``use`` right on every input), records the execution, and joins the
multi-party run of :mod:`.runner`. Several executions run at once, each in
its own worker thread. Compiled programs are cached by source digest.

Limits come from :class:`~vcpd.config.ExecutorSettings`: a client may ask for
a smaller step budget or timeout, never a larger one, and the VCPs use the
smallest any of them allows. A VCP configured with ``allowed_programs`` runs
only those digests and refuses others with ``forbidden`` (naming the digest).

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.config`, :mod:`vcpd.logs`, :mod:`vcpd.math`, :mod:`vcpd.protocol`,
:mod:`vcpd.store`, :mod:`vcpd.services.ports` and its siblings (never another
service, net, api, node or daemon).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from vcpd.config import ExecutorSettings
from vcpd.errors import (
    MacCheckFailure,
    PeerUnavailable,
    ProgramError,
    RequestError,
    SessionAborted,
    TuplesExhausted,
    VcpError,
)
from vcpd.logs import get_logger
from vcpd.math import PrimeField
from vcpd.protocol.online import OnlineParty
from vcpd.protocol.transport import Session, Transport
from vcpd.services.ports import SecretSource, TupleSource
from vcpd.store import Store

from . import records
from .memory import keep_freed_blocks, release_freed_blocks
from .records import ExecutionRecord
from .runner import OUTPUT_MODES, START_TIMEOUT, ExecutionPlan, Refusal, RunParts, execute
from .sandbox import CompiledProgram, ProgramCache, source_digest

__all__ = ["MAX_CONCURRENT", "MIGRATIONS", "ExecutionReport", "Executor"]

log = get_logger("executor")

MIGRATIONS: Final = records.MIGRATIONS
MAX_CONCURRENT: Final = 16
"""Executions one VCP runs at once; more are refused (``conflict``) rather
than queued, because VCPs queueing in different orders could deadlock."""
MAX_LIST: Final = 1000  # executions per listing page


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What ``executions.run`` answers on one VCP.

    Attributes:
        id: the execution id.
        digest: the program digest.
        output: ``secrets`` or ``reveal``.
        outputs: new secret ids (secrets mode), in write_to_socket order.
        values: revealed outputs (reveal mode), each as 16-byte little-endian
            Montgomery words (the wire form of field elements).
        log: the program's output lines.
        stats: rounds, openings, tuples, steps, timings.
    """

    id: str
    digest: str
    output: str
    outputs: tuple[str, ...] = ()
    values: tuple[bytes, ...] = ()
    log: tuple[str, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": records.COMPLETED,
            "digest": self.digest,
            "output": self.output,
            "outputs": list(self.outputs),
            "values": list(self.values),
            "log": list(self.log),
            "stats": self.stats,
        }


def _default_online(session: Session, field_: PrimeField, alpha_share: int) -> OnlineParty:
    return OnlineParty(session, field_, alpha_share)


def error_code(exc: BaseException) -> str:
    """The API error code a failure maps to (mirrors the dispatcher's mapping)."""
    for kind, code in (
        (MacCheckFailure, "mac-check-failed"),
        (TuplesExhausted, "tuples-exhausted"),
        (PeerUnavailable, "unavailable"),
        (SessionAborted, "aborted"),
        (ProgramError, "program-error"),
    ):
        if isinstance(exc, kind):
            return code
    if isinstance(exc, RequestError):
        return exc.code
    return "internal" if not isinstance(exc, VcpError) else "bad-request"


def _now_ms() -> int:
    return int(time.time() * 1000)


class Executor:
    """Runs client programs with every other VCP and records the executions.

    Args:
        store: this VCP's store (migrated with :data:`MIGRATIONS`).
        transport: sessions with the other VCPs.
        tuples: where triples come from.
        secrets: where inputs come from and results go.
        field: the VC's field.
        alpha_share: this VCP's MAC key share (never logged or sent).
        settings: the step budget, timeout and allow-list.
        online: builds the online phase of a session (default OnlineParty).
        cache: compiled programs by digest (default: a fresh cache).
        max_concurrent: executions run at once before new ones are refused.
        start_timeout: seconds to wait for every VCP to join an execution.
    """

    MIGRATIONS: Final = MIGRATIONS

    def __init__(
        self,
        store: Store,
        transport: Transport,
        tuples: TupleSource,
        secrets: SecretSource,
        field: PrimeField,
        alpha_share: int,
        settings: ExecutorSettings,
        *,
        online: Callable[[Session, PrimeField, int], OnlineParty] | None = None,
        cache: ProgramCache | None = None,
        max_concurrent: int = MAX_CONCURRENT,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        keep_freed_blocks()  # see .memory: page faults of fresh big arrays cost up to half the wall time
        self._store = store
        self._settings = settings
        self._cache = cache or ProgramCache()
        self._max_concurrent = max_concurrent
        self._active = 0  # executions between their capacity check and their end
        self._parts = RunParts(
            transport=transport,
            tuples=tuples,
            secrets=secrets,
            field=field,
            alpha_share=alpha_share,
            online=online or _default_online,
            limiter=trio.CapacityLimiter(max_concurrent),
            start_timeout=start_timeout,
        )

    def __repr__(self) -> str:
        return f"<Executor party={self.party} running={self._active}>"

    @property
    def party(self) -> int:
        return self._parts.transport.party

    @property
    def settings(self) -> ExecutorSettings:
        return self._settings

    def statistics(self) -> dict[str, Any]:
        """For ``status``: running executions, cached programs, limits."""
        return {
            "running": self._active,
            "max_concurrent": self._max_concurrent,
            "cached_programs": len(self._cache),
            "op_budget": self._settings.op_budget,
            "timeout": self._settings.timeout,
            "allow_list": len(self._settings.allowed_programs),
        }

    async def recover(self) -> int:
        """Mark executions a previous run of the daemon left ``running`` as failed."""
        count = await self._store.write(records.interrupt_running, _now_ms())
        if count:
            log.warning("marked %d interrupted executions as failed", count)
        return count

    # ------------------------------------------------------------ running

    def _check(self, digest: str, source: str) -> tuple[CompiledProgram | None, Refusal | None]:
        """This VCP's own verdict on a program (before any share moves)."""
        allowed = {d.strip().lower() for d in self._settings.allowed_programs}
        if allowed and digest not in allowed:
            return None, Refusal(
                "forbidden",
                f"program {digest} is not allowed on VCP {self.party}: its digest is not in the "
                "executor's allowed_programs",
            )
        if self._active >= self._max_concurrent:
            return None, Refusal(
                "conflict", f"VCP {self.party} already runs {self._max_concurrent} executions; retry later"
            )
        try:
            return self._cache.compile(source), None
        except ProgramError as exc:
            return None, Refusal("program-error", str(exc))

    async def run(
        self,
        caller: str,
        execution_id: str,
        source: str,
        inputs: Sequence[str] = (),
        output: str = "secrets",
        *,
        max_steps: int | None = None,
        timeout: float | None = None,
    ) -> ExecutionReport:
        """Run a program with every other VCP; see the module doc.

        Args:
            caller: the client's public key; it needs ``use`` on every input
                and owns every output.
            execution_id: a UUID the client chose, the same on every VCP.
            source: the program.
            inputs: input secret ids; their elements, concatenated in order,
                are what ``sint.read_from_socket`` returns.
            output: ``secrets`` (one new secret per ``write_to_socket``) or
                ``reveal`` (the written values, MAC-checked, to the caller).
            max_steps, timeout: lower limits than this VCP's settings.

        Raises:
            RequestError: ``bad-request``, ``forbidden``, ``not-found``, ``conflict``.
            ProgramError, MacCheckFailure, SessionAborted, PeerUnavailable,
            TuplesExhausted: the execution failed on every VCP; nothing was stored.
        """
        execution_id = _parse_id(execution_id)
        if output not in OUTPUT_MODES:
            raise RequestError("bad-request", f"output must be one of {', '.join(OUTPUT_MODES)}, not {output!r}")
        steps = self._settings.op_budget if max_steps is None else min(max_steps, self._settings.op_budget)
        seconds = self._settings.timeout if timeout is None else min(timeout, self._settings.timeout)
        if steps < 1 or not seconds > 0:
            raise RequestError("bad-request", "the step budget and the timeout must be positive")
        digest = source_digest(source)
        program, refusal = self._check(digest, source)
        plan = ExecutionPlan(execution_id, caller, digest, tuple(inputs), output, steps, seconds)
        record = ExecutionRecord(
            id=execution_id, owner=caller, digest=digest, output_mode=output, inputs=plan.inputs,
            state=records.RUNNING, created_ms=_now_ms(),
        )  # fmt: skip
        self._active += 1  # taken before the first await, so the capacity check above holds
        try:
            if not await self._store.write(records.insert_record, record):
                # No session: its id belongs to the earlier execution (whose late
                # messages the peers drop), and every VCP that recorded it refuses too.
                raise RequestError("conflict", f"an execution with id {execution_id} already exists")
            log.info("execution %s starting", execution_id, extra={"ctx": {"digest": digest[:16]}})
            try:
                result = await execute(self._parts, plan, program, refusal)
            except BaseException as exc:
                await self._fail(execution_id, exc)
                raise
        finally:
            self._active -= 1
            if not self._active:  # the last one running, however it ended: free heap pages go back
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(release_freed_blocks)
        await self._store.write(
            lambda conn: records.finish_record(
                conn, execution_id, state=records.COMPLETED, finished_ms=_now_ms(),
                outputs=result.outputs, log=result.log, stats=result.stats,
            )
        )  # fmt: skip
        log.info("execution %s completed", execution_id, extra={"ctx": {"rounds": result.stats.get("rounds")}})
        return ExecutionReport(
            id=execution_id,
            digest=digest,
            output=output,
            outputs=tuple(result.outputs),
            values=tuple(v.to_bytes() for v in result.values),
            log=tuple(result.log),
            stats=result.stats,
        )

    async def _fail(self, execution_id: str, exc: BaseException) -> None:
        code = error_code(exc) if isinstance(exc, Exception) else "aborted"
        message = str(exc) if isinstance(exc, VcpError) else f"{type(exc).__name__}"
        if code == "internal":
            log.error("execution %s failed with an internal error", execution_id, exc_info=exc)
        else:
            log.info("execution %s failed: %s", execution_id, code)
        with trio.CancelScope(shield=True):
            await self._store.write(
                lambda conn: records.finish_record(
                    conn, execution_id, state=records.FAILED, finished_ms=_now_ms(), error=(code, message[:2000])
                )
            )

    # ------------------------------------------------------------ records

    async def get(self, caller: str, execution_id: str, *, is_admin: bool = False) -> ExecutionRecord:
        """One execution of the caller's (any, for an admin).

        Raises:
            RequestError: ``not-found`` (also for another client's execution).
        """
        execution_id = _parse_id(execution_id)
        record = await self._store.read(records.load_record, execution_id)
        if record is None or (record.owner != caller and not is_admin):
            raise RequestError("not-found", f"no execution {execution_id} visible to this key")
        return record

    async def list(
        self,
        caller: str,
        *,
        is_admin: bool = False,
        state: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[ExecutionRecord], int]:
        """The caller's executions, newest first (everyone's for an admin); (page, total)."""
        if state is not None and state not in records.STATES:
            raise RequestError("bad-request", f"state must be one of {', '.join(records.STATES)}")
        if not 1 <= limit <= MAX_LIST or offset < 0:
            raise RequestError("bad-request", f"limit must be 1..{MAX_LIST} and offset non-negative")
        owner = None if is_admin else caller
        return await self._store.read(records.list_records, owner, state, limit, offset)


def _parse_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except (ValueError, TypeError, AttributeError):
        raise RequestError("bad-request", f"execution id {str(text)[:60]!r} is not a UUID") from None
