"""The ``executions.*`` operations of the client API (the executor).

``executions.run`` is sent by the client library to **every** VCP with the
same arguments; each VCP checks it on its own and they run the program
together (see :mod:`vcpd.services.executor.runner`). The listing operations
answer from this VCP's records.

L5: may import L0, math, wire, protocol and services; never net or the daemon.
"""

from __future__ import annotations

from typing import Any, Final

from vcpd.errors import RequestError
from vcpd.services.executor import OUTPUT_MODES, Executor

from .dispatch import Args, Caller, Dispatcher

__all__ = ["MAX_INPUTS", "register_execution_ops"]

MAX_INPUTS: Final = 10_000
"""Input secrets one execution may name."""
_MAX_TIMEOUT_MS: Final = 7 * 24 * 3600 * 1000


def _positive(args: Args, name: str, upper: int) -> int | None:
    value = args.int(name, None)
    if value is not None and not 1 <= value <= upper:
        raise RequestError("bad-request", f"{args.op}: '{name}' must be between 1 and {upper}")
    return value  # type: ignore[no-any-return]


def register_execution_ops(dispatcher: Dispatcher, executor: Executor) -> None:
    """Add the executor's operations to ``dispatcher``.

    =================  ====================================================  =========================================
    operation          args                                                  result
    =================  ====================================================  =========================================
    executions.run     id (UUID), source, inputs? ([secret id]),             id, state, digest, output, outputs,
                       output? (secrets|reveal), max_steps?, timeout_ms?     values ([16-byte words]), log, stats
    executions.list    state?, limit? (1..1000), offset?                     executions ([summary]), total, limit,
                                                                             offset
    executions.get     id                                                    summary + log, stats
    =================  ====================================================  =========================================

    Summary fields: id, state (running|completed|failed), digest, output,
    inputs, owner, created_ms, finished_ms, elapsed_ms, outputs, error
    ({code, message}, failed only). Errors: ``bad-request``, ``forbidden``
    (program not on the allow-list, or no ``use`` right on an input),
    ``not-found`` (input or execution), ``conflict`` (id taken, VCP busy),
    ``program-error``, ``mac-check-failed``, ``aborted``, ``unavailable``,
    ``tuples-exhausted``. Non-admin callers see only their own executions.
    """

    async def run(caller: Caller, args: Args) -> dict[str, Any]:
        execution_id = args.str("id")
        source = args.str("source")
        inputs = args.str_list("inputs", [])
        if len(inputs) > MAX_INPUTS:
            raise RequestError("bad-request", f"executions.run: at most {MAX_INPUTS} input secrets")
        output = args.str("output", "secrets")
        if output not in OUTPUT_MODES:
            raise RequestError("bad-request", f"executions.run: output must be one of {', '.join(OUTPUT_MODES)}")
        max_steps = _positive(args, "max_steps", 1 << 62)
        timeout_ms = _positive(args, "timeout_ms", _MAX_TIMEOUT_MS)
        args.finish()
        report = await executor.run(
            caller.public_key,
            execution_id,
            source,
            inputs,
            output,
            max_steps=max_steps,
            timeout=None if timeout_ms is None else timeout_ms / 1000,
        )
        return report.to_wire()

    async def list_(caller: Caller, args: Args) -> dict[str, Any]:
        state = args.str("state", None)
        limit = args.int("limit", 100)
        offset = args.int("offset", 0)
        args.finish()
        page, total = await executor.list(
            caller.public_key, is_admin=caller.is_admin, state=state, limit=limit, offset=offset
        )
        return {"executions": [r.summary() for r in page], "total": total, "limit": limit, "offset": offset}

    async def get(caller: Caller, args: Args) -> dict[str, Any]:
        execution_id = args.str("id")
        args.finish()
        record = await executor.get(caller.public_key, execution_id, is_admin=caller.is_admin)
        return record.to_wire()

    dispatcher.register("executions.run", run)
    dispatcher.register("executions.list", list_)
    dispatcher.register("executions.get", get)
