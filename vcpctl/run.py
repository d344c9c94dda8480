"""``vcpctl run`` and ``vcpctl executions``: run programs on the VC, inspect executions.

``vcpctl run PROGRAM_FILE --input ID ...`` sends the program to every VCP and
prints, on stdout, the ids of the new secrets (one per line) or, with
``--output reveal``, the revealed values (one output per line, values
separated by spaces). The program's ``print_ln`` output goes to stderr, so
stdout stays easy to script with; ``--json`` prints one JSON document with
everything instead.

vcpctl may import only vcpd, vcpd.errors, vcpd.keys, vcpd.config,
vcpd.vcinit and vcpd.client.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

import click
import trio

from vcpd.client import open_client

from .cli import VcpctlContext, cli, emit_json
from .format import table

__all__ = ["executions", "run"]

T = TypeVar("T")

_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def _connect(ctx: VcpctlContext) -> AbstractAsyncContextManager[Any]:
    """A connected client of the VC (replaced in tests)."""
    return open_client(ctx.config)


def _run(ctx: VcpctlContext, action: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        async with _connect(ctx) as client:
            return await action(client)

    return trio.run(main)


def _date(ms: int | None) -> str:
    return "-" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _elapsed(created: int | None, finished: int | None) -> str:
    return "-" if created is None or finished is None else f"{(finished - created) / 1000:.2f}s"


def _stats_rows(stats: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for key, value in stats.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        rows.append([key, value])
    return rows


@cli.command("run")
@click.argument("program_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--input", "inputs", multiple=True, metavar="ID", help="An input secret id (repeatable, in order).")
@click.option(
    "--output",
    type=click.Choice(["secrets", "reveal"]),
    default="secrets",
    show_default=True,
    help="secrets: each write_to_socket becomes a new secret; reveal: print the written values.",
)
@click.option("--id", "execution_id", metavar="UUID", help="Use this execution id instead of a random one.")
@click.option("--timeout", type=click.FloatRange(min=0.001), help="Seconds (at most the VCPs' limit).")
@click.option("--max-steps", type=click.IntRange(min=1), help="Operation budget (at most the VCPs' limit).")
@click.option("--stats", "show_stats", is_flag=True, help="Also print the execution statistics (stderr).")
@_json_option
@click.pass_obj
def run(
    ctx: VcpctlContext,
    program_file: Path,
    inputs: tuple[str, ...],
    output: str,
    execution_id: str | None,
    timeout: float | None,
    max_steps: int | None,
    show_stats: bool,
    as_json: bool,
) -> None:
    """Run PROGRAM_FILE (MP-SPDZ-style Python) on every VCP over the input secrets."""
    try:
        source = program_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"cannot read {program_file}: {exc}") from None
    result = _run(
        ctx,
        lambda client: client.run_program(
            source, inputs=list(inputs), output=output, execution_id=execution_id, max_steps=max_steps, timeout=timeout
        ),
    )
    if as_json:
        data = result.as_dict()
        if not show_stats:
            data.pop("stats")
        emit_json(data)
        return
    for line in result.log:
        click.echo(line, err=True)
    if output == "reveal":
        for values in result.values:
            click.echo(" ".join(map(str, values)))
    else:
        for secret_id in result.secrets:
            click.echo(secret_id)
    if show_stats and result.stats:
        click.echo(f"execution {result.id} (program {result.digest})", err=True)
        click.echo(table(["statistic", "VCP 0"], _stats_rows(dict(result.stats[0]))), err=True)


@cli.group()
def executions() -> None:
    """List and inspect program executions."""


@executions.command("list")
@click.option("--state", type=click.Choice(["running", "completed", "failed"]), help="Only executions in this state.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@_json_option
@click.pass_obj
def list_executions(ctx: VcpctlContext, state: str | None, limit: int, as_json: bool) -> None:
    """Your executions (every client's, with an admin key), newest first."""
    infos = _run(ctx, lambda client: client.list_executions(state=state, limit=limit))
    if as_json:
        emit_json({"executions": [info.as_dict() for info in infos]})
        return
    rows = [
        [
            info.id,
            info.state,
            info.digest[:12],
            info.output,
            _date(info.created_ms),
            _elapsed(info.created_ms, info.finished_ms),
            len(info.outputs),
            next((e.get("code", "") for e in info.errors.values()), ""),
        ]
        for info in infos
    ]
    click.echo(table(["id", "state", "program", "output", "created", "elapsed", "outputs", "error"], rows))


@executions.command("show")
@click.argument("execution_id", metavar="ID")
@_json_option
@click.pass_obj
def show_execution(ctx: VcpctlContext, execution_id: str, as_json: bool) -> None:
    """One execution: state on every VCP, inputs, outputs, errors, statistics and log."""
    info = _run(ctx, lambda client: client.get_execution(execution_id))
    if as_json:
        emit_json(info.as_dict())
        return
    click.echo(f"id:       {info.id}")
    click.echo(f"state:    {info.state} (" + ", ".join(f"VCP {p}: {s}" for p, s in enumerate(info.states)) + ")")
    click.echo(f"program:  {info.digest}")
    click.echo(f"output:   {info.output}")
    click.echo(f"created:  {_date(info.created_ms)}   elapsed: {_elapsed(info.created_ms, info.finished_ms)}")
    click.echo("inputs:   " + (", ".join(info.inputs) or "-"))
    click.echo("outputs:  " + (", ".join(info.outputs) or "-"))
    for party, error in sorted(info.errors.items()):
        click.echo(f"error:    VCP {party}: {error.get('code')}: {error.get('message')}")
    if info.stats:
        click.echo(table(["statistic", "VCP 0"], _stats_rows(dict(info.stats))))
    if info.log:
        click.echo("log:")
        for line in info.log:
            click.echo(f"  {line}")
