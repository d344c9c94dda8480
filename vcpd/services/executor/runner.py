"""One execution on one VCP: agree, run the program in a thread, finish outputs.

Every VCP runs the same execution in the session ``executor/<execution id>``:

1. **Agreement** (one round, ``exec.start``): each VCP sends a digest of what
   it was asked (execution id, caller, program digest, inputs, output mode)
   and its verdict -- a refusal (allow-list, compile error, missing ``use``
   right, ...) or its limits. Any refusal or mismatch stops the execution on
   every VCP before a single share moves; otherwise all use the smallest
   step budget and timeout.
2. **Run**: the program runs in a worker thread (``trio.to_thread``) against
   a fresh namespace; the engine reaches the network through
   :class:`~.channel.ThreadChannel`, i.e. :func:`trio.from_thread.run`. Meanwhile a
   watcher waits on the session: an abort notice or a lost peer cancels the
   program's budget, so a VCP computing locally stops at its next step
   instead of finishing work nobody will use.
3. **End of program**: every pending product and every output is evaluated,
   the MAC check covers all openings, and revealed outputs are opened and
   checked -- before anything leaves this VCP.
4. **Commit** (one round, ``exec.done``): the VCPs compare a digest of the
   outputs' shapes and the log; only then are outputs stored (each with its
   own all-or-nothing protocol in the secret store) or handed back.

A failure anywhere raises out of the session, which tells every peer; tuples
reserved but not yet taken are discarded (taken ones are consumed, i.e. burnt).

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math`, :mod:`vcpd.protocol`, :mod:`vcpd.services.ports` and its
siblings.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from vcpd.errors import ProgramError, RequestError, SessionAborted, VcpError
from vcpd.math import FieldArray, PrimeField, Shares
from vcpd.protocol.online import OnlineParty
from vcpd.protocol.transport import Session, Transport
from vcpd.services.ports import SecretEncoding, SecretSource, TupleSource

from .budget import Budget
from .channel import ThreadChannel
from .context import ProgramContext, activate
from .engine import Engine
from .library import build_namespace
from .sandbox import CompiledProgram

__all__ = [
    "GRACE",
    "OUTPUT_MODES",
    "START_TIMEOUT",
    "ExecutionPlan",
    "ExecutionResult",
    "Refusal",
    "RunParts",
    "execute",
    "output_id",
    "provenance_tags",
]

OUTPUT_MODES: Final = ("secrets", "reveal")
START_TIMEOUT: Final = 60.0
"""Seconds the VCPs wait for each other to join an execution."""
GRACE: Final = 5.0
"""Seconds past the timeout before a program stuck in a network round is cancelled."""
TAG_VALUE_LIMIT: Final = 256
"""Longest tag value the secret store accepts (Amphora's limit)."""
_ID_NAMESPACE: Final = uuid.UUID("3f6f0c39-4d1e-5b7c-9a43-6e1d0c2b7a58")

OnlineFactory = Callable[[Session, PrimeField, int], OnlineParty]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why this VCP will not run an execution: an API error code and a message."""

    code: str
    message: str

    def error(self, party: int | None = None) -> VcpError:
        message = self.message if party is None else f"VCP {party}: {self.message}"
        if self.code == "program-error":
            return ProgramError(message)
        return RequestError(self.code, message)


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """What one VCP was asked to run (the same on every VCP)."""

    execution_id: str
    caller: str
    digest: str
    inputs: tuple[str, ...]
    output: str
    steps: int
    timeout: float

    def fingerprint(self) -> bytes:
        parts = [self.execution_id, self.caller, self.digest, self.output, *self.inputs]
        return hashlib.blake2b("\x00".join(parts).encode(), digest_size=32, person=b"vcpd.exec.plan").digest()


@dataclass(slots=True)
class ExecutionResult:
    """This VCP's view of a finished execution."""

    outputs: list[str] = field(default_factory=list)
    values: list[FieldArray] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunParts:
    """The pieces of this VCP an execution needs."""

    transport: Transport
    tuples: TupleSource
    secrets: SecretSource
    field: PrimeField
    alpha_share: int
    online: OnlineFactory
    limiter: trio.CapacityLimiter
    start_timeout: float = START_TIMEOUT

    def __repr__(self) -> str:  # never the MAC key share
        return f"<RunParts party={self.transport.party}>"


def output_id(execution_id: str, index: int) -> str:
    """The id of an execution's ``index``-th output secret: the same on every VCP."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{execution_id}/{index}"))


def provenance_tags(execution_id: str, digest: str, inputs: Sequence[str]) -> dict[str, str | int]:
    """``derived-from`` (comma-separated inputs), ``program`` and ``execution`` tags.

    A tag value holds at most 256 characters, so long input lists continue in
    ``derived-from.2``, ``derived-from.3``...; beyond 32 of those the inputs are
    summarised by their SHA-256 in ``derived-from``.
    """
    tags: dict[str, str | int] = {"program": digest, "execution": execution_id}
    chunks: list[str] = []
    for secret_id in inputs:
        if chunks and len(chunks[-1]) + 1 + len(secret_id) <= TAG_VALUE_LIMIT:
            chunks[-1] += "," + secret_id
        else:
            chunks.append(secret_id)
    if len(chunks) > 32:
        joined = ",".join(inputs).encode()
        chunks = ["sha256:" + hashlib.sha256(joined).hexdigest()]
    for i, chunk in enumerate(chunks):
        tags["derived-from" if i == 0 else f"derived-from.{i + 1}"] = chunk
    return tags


def _output_encoding(encodings: Sequence[SecretEncoding], fixed_inputs: bool = False) -> SecretEncoding:
    """The encoding of ``sint`` outputs: the inputs' when they all agree (else int64).

    A program that read its (fixed-point) inputs as ``sfix`` works with real
    numbers; its ``sint`` outputs are integers (a comparison's 0/1, a count)
    and are stored as int64. ``sfix.write_to_socket`` outputs are always
    stored with the fixed encoding (see ``Output.fraction_bits``).
    """
    kinds = set(encodings)
    if len(kinds) != 1:
        return SecretEncoding("int64")
    encoding = next(iter(kinds))
    if fixed_inputs and encoding.kind == "fixed":
        return SecretEncoding("int64")
    return encoding


async def _exchange(session: Session, step: str, payload: Any, timeout: float) -> dict[int, Any]:
    try:
        with trio.fail_after(timeout):
            return await session.exchange(step, payload)
    except trio.TooSlowError:
        raise SessionAborted(session.id, f"the VCPs did not all reach step {step!r} within {timeout:g} s") from None


async def _agree(
    parts: RunParts, session: Session, plan: ExecutionPlan, refusal: Refusal | None
) -> tuple[int, float] | Refusal:
    """The start round: the common limits, or the first refusal of any VCP."""
    payload = {
        "plan": plan.fingerprint(),
        "refusal": None if refusal is None else [refusal.code, refusal.message[:1000]],
        "steps": plan.steps,
        "timeout": plan.timeout,
    }
    replies = await _exchange(session, "exec.start", payload, parts.start_timeout)
    if refusal is not None:
        return refusal
    steps, timeout = plan.steps, plan.timeout
    for party in sorted(replies):
        reply = replies[party]
        if not isinstance(reply, dict) or reply.get("plan") != payload["plan"]:
            return Refusal("aborted", f"the VCPs were asked to run different executions under id {plan.execution_id}")
        theirs = reply.get("refusal")
        if theirs is not None:
            code, message = (
                (str(theirs[0]), str(theirs[1]))
                if isinstance(theirs, list) and len(theirs) == 2
                else ("aborted", "refused")
            )
            return Refusal(code, f"VCP {party}: {message}")
        if isinstance(reply.get("steps"), int) and reply["steps"] > 0:
            steps = min(steps, reply["steps"])
        if isinstance(reply.get("timeout"), int | float) and reply["timeout"] > 0:
            timeout = min(timeout, float(reply["timeout"]))
    return steps, timeout


async def execute(
    parts: RunParts,
    plan: ExecutionPlan,
    program: CompiledProgram | None,
    refusal: Refusal | None,
) -> ExecutionResult:
    """Run ``plan`` on this VCP together with every other VCP (see the module doc).

    Raises:
        RequestError: some VCP refused (forbidden, not-found, conflict...).
        ProgramError: the program was refused or failed (budget, timeout, runtime).
        MacCheckFailure, SessionAborted, PeerUnavailable, TuplesExhausted.
    """
    started = time.monotonic()
    loaded: list[tuple[Shares, SecretEncoding]] = []
    outcome: ExecutionResult | Refusal
    async with parts.transport.session(f"executor/{plan.execution_id}") as session:
        if refusal is None and plan.inputs:
            try:
                loaded = await parts.secrets.load_for_use(list(plan.inputs), plan.caller)
            except RequestError as exc:
                refusal = Refusal(exc.code, exc.message)
        agreed = await _agree(parts, session, plan, refusal)
        if isinstance(agreed, Refusal):
            outcome = agreed  # leave the session cleanly: every VCP knows already
        else:
            assert program is not None
            outcome = await _run(parts, session, plan, program, loaded, *agreed)
    if isinstance(outcome, Refusal):
        raise outcome.error()
    outcome.stats["elapsed_s"] = round(time.monotonic() - started, 6)
    return outcome


async def _run(
    parts: RunParts,
    session: Session,
    plan: ExecutionPlan,
    program: CompiledProgram,
    loaded: list[tuple[Shares, SecretEncoding]],
    steps: int,
    timeout: float,
) -> ExecutionResult:
    online = parts.online(session, parts.field, parts.alpha_share)
    channel = ThreadChannel(online, parts.tuples, f"executor/{plan.execution_id}")
    engine = Engine(parts.field, session.party, parts.alpha_share, channel)
    budget = Budget.with_timeout(steps, timeout)
    inputs = engine.leaf(Shares.concat([s for s, _ in loaded])) if loaded else None
    encodings = [(len(shares), e.kind, e.fraction_bits) for shares, e in loaded]
    ctx = ProgramContext(engine, budget, inputs, encodings)
    namespace = build_namespace(ctx)
    reveal = plan.output == "reveal"
    stopped: list[VcpError] = []

    def work() -> list[Shares | FieldArray]:
        with activate(ctx):
            program.run(namespace, budget=budget, print_fn=ctx.write)
            return _finish_outputs(ctx, reveal)

    async def watch(peer: int) -> None:
        try:
            await session.receive(peer, "exec.watch")  # never sent: wakes only on abort or a lost peer
        except VcpError as exc:  # SessionAborted, PeerUnavailable, a broken link
            stopped.append(exc)
            budget.cancel(f"execution stopped: {exc}")

    results: list[Shares | FieldArray] = []
    failure: BaseException | None = None
    program_started = time.monotonic()
    with trio.move_on_after(timeout + GRACE) as deadline:
        async with trio.open_nursery() as nursery:
            channel.spawn = nursery.start_soon
            for peer in range(session.n_parties):
                if peer != session.party:
                    nursery.start_soon(watch, peer)
            try:
                results = await trio.to_thread.run_sync(work, limiter=parts.limiter)
            except BaseException as exc:  # re-raised below, outside the nursery (no exception group)
                failure = exc
            nursery.cancel_scope.cancel()
        if failure is not None:
            if isinstance(failure, ProgramError) and failure.rule == "cancelled" and stopped:
                raise stopped[0] from None
            raise failure
    if deadline.cancelled_caught:
        raise ProgramError(f"wall-clock timeout of {timeout:.3g} s exceeded", rule="timeout")
    program_s = time.monotonic() - program_started
    log = ctx.log_lines()
    shapes = [[type(r).__name__, len(r)] for r in results]
    digest = hashlib.blake2b("\n".join(log).encode("utf-8", "replace"), digest_size=32).digest()
    replies = await _exchange(session, "exec.done", {"outputs": shapes, "log": digest}, parts.start_timeout)
    if any(reply != {"outputs": shapes, "log": digest} for reply in replies.values()):
        raise SessionAborted(session.id, "the VCPs finished the program with different outputs or logs")
    result = ExecutionResult(log=log)
    if reveal:
        result.values = [r for r in results if isinstance(r, FieldArray)]
    else:
        default = _output_encoding([e for _, e in loaded], ctx.fixed_inputs)
        tags = provenance_tags(plan.execution_id, plan.digest, plan.inputs)
        for index, shares in enumerate(results):
            assert isinstance(shares, Shares)
            bits = ctx.outputs[index].fraction_bits
            encoding = default if bits is None else SecretEncoding("fixed", bits)
            sid = output_id(plan.execution_id, index)
            result.outputs.append(await parts.secrets.store_result(plan.caller, shares, encoding, tags, secret_id=sid))
    engine_stats = engine.statistics()
    online_stats = online.statistics()
    result.stats = {
        "program_s": round(program_s, 6),
        "steps": budget.steps,
        "inputs": ctx.input_count,
        "inputs_read": ctx.inputs_read,
        "outputs": len(results),
        "rounds": online_stats.rounds,
        "open_rounds": online_stats.open_rounds,
        "openings": online_stats.openings,
        "mac_checks": online_stats.mac_checks,
        "bytes_sent": online_stats.bytes_sent,
        "flushes": engine_stats.flushes,
        "mul_rounds": engine_stats.mul_rounds,
        "multiplications": engine_stats.multiplications,
        "nonlinear": engine_stats.nonlinear,
        "reveals": engine_stats.reveals,
        "reservations": engine_stats.reservations,
        "reserve_s": round(engine_stats.reserve_s, 6),
        "tuples": dict(channel.tuples_used),
    }
    return result


def _finish_outputs(ctx: ProgramContext, reveal: bool) -> list[Shares | FieldArray]:
    """Evaluate every output, run the MAC check, and open outputs in reveal mode.

    Runs in the worker thread at the end of the program. In secrets mode a
    public output becomes constant shares; in reveal mode the secret outputs
    are opened together (one round) and checked with everything else.
    """
    engine = ctx.engine
    if reveal:
        openings = [engine.open(o.node) if o.node is not None else None for o in ctx.outputs]
        engine.flush(check=True)
        pairs = zip(openings, ctx.outputs, strict=True)
        return [engine.revealed(op) if op is not None else o.public for op, o in pairs]  # type: ignore[misc]
    nodes = [o.node if o.node is not None else engine.constant(o.public) for o in ctx.outputs]  # type: ignore[arg-type]
    engine.flush(check=True)  # every product, then the MAC check over every opening
    return [engine.shares(node) for node in nodes]  # local now: no product is left
