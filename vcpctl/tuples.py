"""``vcpctl tuples``: stock, generation jobs and MP-SPDZ imports (admin keys)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import trio

from vcpd.client import open_client
from vcpd.client.tuples import TUPLE_KINDS

from .cli import VcpctlContext, cli, emit_json
from .format import duration, table


@cli.group()
def tuples() -> None:
    """Tuple stock, generation and import (needs an admin key)."""


@tuples.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--window", type=click.IntRange(1, 86400), default=60, show_default=True, help="Rate window (s).")
@click.pass_obj
def stock(ctx: VcpctlContext, as_json: bool, window: int) -> None:
    """Tuples available, reserved and consumed, per VCP and type."""

    async def main() -> list[dict[str, Any]]:
        async with open_client(ctx.config) as client:
            return await client.tuple_stock(window=window)

    answers = trio.run(main)
    if as_json:
        emit_json({"vcps": [{"party": party, **answer} for party, answer in enumerate(answers)]})
        return
    rows = []
    for party, answer in enumerate(answers):
        for kind in TUPLE_KINDS:
            s = answer["tuples"][kind]
            rows.append(
                [party, kind, s["available"], s["reserved"], s["consumed"], f"{s['rate']:.1f}",
                 answer["generating"].get(kind, 0) or ""]
            )  # fmt: skip
    click.echo(table(["party", "type", "available", "reserved", "consumed", "rate/s", "generating"], rows))
    if answers and answers[0].get("insecure_offline"):
        click.echo("note: dealer offline phase (INSECURE: VCP 0 knows every tuple)")


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / total) if total else width
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


@tuples.command()
@click.argument("kind", type=click.Choice(TUPLE_KINDS))
@click.argument("count", type=click.IntRange(1))
@click.option("--no-wait", is_flag=True, help="Print the job id and return at once.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def generate(ctx: VcpctlContext, kind: str, count: int, no_wait: bool, as_json: bool) -> None:
    """Generate COUNT tuples of KIND (triple, square, bit, inverse, mask, bounded)."""
    interactive = not as_json and click.get_text_stream("stderr").isatty()
    started = time.monotonic()

    def show(job: dict[str, Any]) -> None:
        if interactive:
            click.echo("\r" + _bar(int(job.get("progress", 0)), count), nl=False, err=True)

    async def main() -> dict[str, Any]:
        async with open_client(ctx.config) as client:
            job_id = await client.generate_tuples(kind, count)
            if no_wait:
                return {"job": job_id, "state": "pending"}
            job = await client.wait_tuple_job(job_id, progress=show)
            return {"job": job_id, "state": job["state"], "count": count, "seconds": round(time.monotonic() - started, 3)}

    result = trio.run(main)
    if interactive and not no_wait:
        click.echo("", err=True)
    if as_json:
        emit_json(result)
    elif no_wait:
        click.echo(result["job"])
    else:
        rate = count / result["seconds"] if result["seconds"] else 0
        click.echo(f"job {result['job']} completed: {count} {kind} tuples in {result['seconds']:.2f} s ({rate:,.0f}/s)")


@tuples.command()
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def jobs(ctx: VcpctlContext, limit: int, as_json: bool) -> None:
    """Recent generation jobs (as the leader records them)."""

    async def main() -> list[dict[str, Any]]:
        async with open_client(ctx.config) as client:
            return await client.tuple_jobs(limit=limit)

    found = trio.run(main)
    if as_json:
        emit_json({"jobs": found})
        return
    now = time.time()
    rows = [
        [j["id"], j["kind"], j["count"], j["state"], j.get("progress", ""), duration(now - j["created"]) + " ago",
         j.get("error") or ""]
        for j in found
    ]  # fmt: skip
    click.echo(table(["job", "type", "count", "state", "progress", "created", "error"], rows))


@tuples.command("import")
@click.argument("kind", type=click.Choice(TUPLE_KINDS))
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--job-id", default=None, help="Job id to use (default: a new UUID).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def import_(ctx: VcpctlContext, kind: str, files: tuple[Path, ...], job_id: str | None, as_json: bool) -> None:
    """Load MP-SPDZ preprocessing FILES (one per VCP, in party order) as one job."""

    async def main() -> str:
        async with open_client(ctx.config) as client:
            return await client.import_tuples(kind, files, job_id=job_id)

    job = trio.run(main)
    if as_json:
        emit_json({"job": job})
    else:
        click.echo(job)
