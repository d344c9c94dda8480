"""Client-side program execution: run MP-SPDZ-style programs on the VC.

:class:`ExecutionsMixin` is mixed into :class:`vcpd.client.Client`.
:meth:`~ExecutionsMixin.run_program` sends the same ``executions.run``
request to every VCP (as Carbyne Stack's Ephemeral client does), waits for
all of them, and returns an :class:`ExecutionResult` only if they **agree**:
the same output secret ids, the same revealed values and the same log, else
:class:`~vcpd.errors.IntegrityError`. Each VCP MAC-checked every opening
before answering, so a revealed value is one all VCPs vouched for.

The client library may import only vcpd.errors, config, keys, logs, math,
wire and net (never services or api).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from vcpd.errors import FieldError, IntegrityError
from vcpd.math import PrimeField

__all__ = ["OUTPUT_MODES", "ExecutionInfo", "ExecutionResult", "ExecutionsMixin"]

OUTPUT_MODES: Final = ("secrets", "reveal")
Output = Literal["secrets", "reveal"]


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What a completed execution produced.

    Attributes:
        id: the execution id.
        digest: SHA-256 of the program source (what allow-lists name).
        output: ``secrets`` or ``reveal``.
        secrets: ids of the new secrets, one per ``write_to_socket`` call
            (secrets mode); owned by the caller, tagged ``derived-from`` and
            ``program``.
        values: the written values, revealed (reveal mode), as signed ints
            (x > p/2 stands for x − p).
        log: the program's ``print_ln`` output.
        stats: every VCP's statistics (rounds, openings, tuples, steps, timings).
    """

    id: str
    digest: str
    output: str
    secrets: tuple[str, ...] = ()
    values: tuple[tuple[int, ...], ...] = ()
    log: tuple[str, ...] = ()
    stats: tuple[Mapping[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "digest": self.digest,
            "output": self.output,
            "secrets": list(self.secrets),
            "values": [list(v) for v in self.values],
            "log": list(self.log),
            "stats": [dict(s) for s in self.stats],
        }


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
    """An execution as the VCPs recorded it.

    Attributes:
        id, digest, output, inputs, outputs, created_ms, finished_ms: from VCP 0.
        states: each VCP's state (``running``, ``completed``, ``failed``;
            ``unknown`` where a VCP has no record).
        errors: each failed VCP's ``{code, message}``, by party.
        log: the program's output (``get_execution`` only).
        stats: VCP 0's statistics (``get_execution`` only).
    """

    id: str
    digest: str
    output: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    created_ms: int | None
    finished_ms: int | None
    states: tuple[str, ...]
    errors: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    log: tuple[str, ...] = ()
    stats: Mapping[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """The VC-wide state: failed if any VCP failed, running while any runs."""
        for state in ("failed", "running", "unknown"):
            if state in self.states:
                return state
        return "completed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "states": list(self.states),
            "digest": self.digest,
            "output": self.output,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "created_ms": self.created_ms,
            "finished_ms": self.finished_ms,
            "errors": {str(k): dict(v) for k, v in self.errors.items()},
            "log": list(self.log),
            "stats": dict(self.stats),
        }


def _signed(field_: PrimeField, words: bytes) -> tuple[int, ...]:
    try:
        values = field_.from_bytes(words).to_ints()
    except FieldError as exc:
        raise IntegrityError(f"a VCP returned malformed revealed values: {exc}") from None
    half = field_.p // 2
    return tuple(v - field_.p if v > half else v for v in values)


def _agreed(answers: Sequence[Mapping[str, Any]], key: str, what: str) -> Any:
    first = answers[0].get(key)
    for party, answer in enumerate(answers[1:], start=1):
        if answer.get(key) != first:
            raise IntegrityError(f"the VCPs disagree about the {what} (VCP 0 and VCP {party} differ)")
    return first


def _info(entries: Sequence[Mapping[str, Any] | None], with_details: bool) -> ExecutionInfo:
    first = next(e for e in entries if e is not None)
    errors = {p: dict(e["error"]) for p, e in enumerate(entries) if e is not None and isinstance(e.get("error"), dict)}
    return ExecutionInfo(
        id=str(first["id"]),
        digest=str(first.get("digest", "")),
        output=str(first.get("output", "")),
        inputs=tuple(first.get("inputs", ())),
        outputs=tuple(first.get("outputs", ())),
        created_ms=first.get("created_ms"),
        finished_ms=first.get("finished_ms"),
        states=tuple("unknown" if e is None else str(e.get("state")) for e in entries),
        errors=errors,
        log=tuple(first.get("log", ())) if with_details else (),
        stats=dict(first.get("stats", {})) if with_details else {},
    )


class ExecutionsMixin:
    """Program execution methods of :class:`vcpd.client.Client` (see the module doc)."""

    if TYPE_CHECKING:
        field: PrimeField

        @property
        def n_parties(self) -> int: ...

        async def call_all(
            self,
            op: str,
            args: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
            *,
            timeout: float | None = None,
        ) -> list[Any]: ...

    async def run_program(
        self,
        source: str | Path,
        *,
        inputs: Iterable[str] = (),
        output: Output = "secrets",
        execution_id: str | None = None,
        max_steps: int | None = None,
        timeout: float | None = None,
    ) -> ExecutionResult:
        """Run a program on every VCP and return its agreed result.

        Args:
            source: the program text (or a Path to read it from).
            inputs: input secret ids (the caller needs ``use`` on each);
                ``sint.read_from_socket`` returns their elements in this order.
            output: ``secrets`` (default): each ``write_to_socket`` becomes a new
                secret owned by the caller; ``reveal``: the written values are
                returned, MAC-checked.
            execution_id: a UUID to use (default: a fresh random one).
            max_steps, timeout: ask for a smaller step budget or timeout (seconds)
                than the VCPs' configured limits.

        Raises:
            RequestError: a VCP refused or the execution failed (``forbidden``,
                ``not-found``, ``program-error``, ``mac-check-failed``,
                ``aborted``, ``unavailable``, ``tuples-exhausted``, ...).
            IntegrityError: the VCPs returned different results.
        """
        text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
        if output not in OUTPUT_MODES:
            raise ValueError(f"output must be one of {', '.join(OUTPUT_MODES)}, not {output!r}")
        eid = str(uuid.UUID(execution_id)) if execution_id is not None else str(uuid.uuid4())
        args: dict[str, Any] = {"id": eid, "source": text, "inputs": list(inputs), "output": output}
        if max_steps is not None:
            args["max_steps"] = int(max_steps)
        if timeout is not None:
            args["timeout_ms"] = max(1, round(timeout * 1000))
        answers = await self.call_all("executions.run", args)
        digest = _agreed(answers, "digest", "program digest")
        secrets = _agreed(answers, "outputs", "output secret ids")
        values = _agreed(answers, "values", "revealed values")
        log = _agreed(answers, "log", "program output")
        return ExecutionResult(
            id=eid,
            digest=str(digest),
            output=output,
            secrets=tuple(secrets or ()),
            values=tuple(_signed(self.field, bytes(v)) for v in values or ()),
            log=tuple(log or ()),
            stats=tuple(dict(a.get("stats", {})) for a in answers),
        )

    async def list_executions(self, *, state: str | None = None, limit: int = 100) -> list[ExecutionInfo]:
        """Executions of this client (all, for an admin key), newest first.

        The list is VCP 0's; ``states`` shows each VCP's view of every execution.
        """
        args: dict[str, Any] = {"limit": limit}
        if state is not None:
            args["state"] = state
        answers = await self.call_all("executions.list", args)
        by_party = [{e["id"]: e for e in answer.get("executions", [])} for answer in answers]
        return [
            _info([party.get(entry["id"]) for party in by_party], with_details=False)
            for entry in answers[0].get("executions", [])
        ]

    async def get_execution(self, execution_id: str) -> ExecutionInfo:
        """One execution as every VCP recorded it (with the log and statistics).

        Raises:
            RequestError: ``not-found`` if a VCP does not know it (or it is another client's).
        """
        answers = await self.call_all("executions.get", {"id": execution_id})
        return _info(answers, with_details=True)
