"""``vcpctl status``: is every VCP up, linked, and what is it running."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
import trio

from vcpd.client import VcpStatus, probe_vc

from .cli import VcpctlContext, cli, emit_json
from .format import duration, table

POLL_INTERVAL = 0.25  # seconds between probes while --wait-ing


def _healthy(statuses: list[VcpStatus]) -> bool:
    return all(s.reachable and all(v == "up" for v in s.info.get("links", {}).values()) for s in statuses)


async def _probe(ctx: VcpctlContext, wait: float | None) -> list[VcpStatus]:
    deadline = time.monotonic() + (wait or 0)
    while True:
        statuses = await probe_vc(ctx.config)
        if wait is None or _healthy(statuses) or time.monotonic() >= deadline:
            return statuses
        await trio.sleep(POLL_INTERVAL)


def _links(info: dict[str, Any]) -> str:
    links = info.get("links", {})
    return " ".join(f"{peer}:{state}" for peer, state in sorted(links.items(), key=lambda kv: int(kv[0]))) or "-"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--wait", type=float, default=None, metavar="SECONDS", help="Wait until every VCP is up and linked.")
@click.pass_obj
def status(ctx: VcpctlContext, as_json: bool, wait: float | None) -> None:
    """Show every VCP: reachable, version, offline mode, peer links, uptime.

    Exits with status 1 if any VCP is unreachable (or, with --wait, if the VC is
    not up and linked in time).
    """
    statuses = trio.run(_probe, ctx, wait)
    if as_json:
        emit_json({"vcps": [s.as_dict() for s in statuses]})
    else:
        rows = []
        for s in statuses:
            info = dict(s.info)
            offline = info.get("offline", "-")
            if offline == "dealer":
                offline = "dealer (INSECURE)"
            rows.append(
                [
                    s.party,
                    "yes" if s.reachable else "NO",
                    info.get("version", "-"),
                    offline,
                    _links(info),
                    duration(info.get("uptime")),
                    s.error or "",
                ]
            )
        click.echo(table(["party", "reachable", "version", "offline", "links", "uptime", "error"], rows))
        errors = [
            f"VCP {s.party} link to {peer}: {detail.get('last_error')}"
            for s in statuses
            for peer, detail in s.info.get("link_details", {}).items()
            if detail.get("state") != "up" and detail.get("last_error")
        ]
        for line in errors:
            click.echo(line)
    unreachable = not all(s.reachable for s in statuses)
    if unreachable or (wait is not None and not _healthy(statuses)):
        sys.exit(1)
