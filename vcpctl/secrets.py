"""``vcpctl secrets``: upload, download, list, tag, delete and share secrets.

Every command connects to every VCP of the VC (``--vc FILE`` or
``VCPCTL_VC``), verifies what they answer (see :mod:`vcpd.client.secrets`)
and prints either readable text or, with ``--json``, one JSON document.

vcpctl may import only vcpd, vcpd.errors, vcpd.keys, vcpd.config,
vcpd.vcinit and vcpd.client.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import click
import trio

from vcpd.client import open_client

from .cli import VcpctlContext, cli, emit_json
from .format import table

__all__ = ["secrets"]

T = TypeVar("T")

_INT64_RE = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_ACTIONS = ("read", "use", "delete", "tag")

_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def _connect(ctx: VcpctlContext) -> AbstractAsyncContextManager[Any]:
    """A connected client of the VC (replaced in tests)."""
    return open_client(ctx.config)


def _run(ctx: VcpctlContext, action: Callable[[Any], Awaitable[T]]) -> T:
    """Connect, run ``action(client)`` and disconnect, in one trio run."""

    async def main() -> T:
        async with _connect(ctx) as client:
            return await action(client)

    return trio.run(main)


def _tag_value(text: str) -> str | int:
    """A tag value from the command line: canonical 64-bit integers become LONG tags."""
    if _INT64_RE.match(text) and _INT64_MIN <= int(text) <= _INT64_MAX:
        return int(text)
    return text


def _parse_tags(items: tuple[str, ...], *, as_string: bool = False) -> dict[str, str | int]:
    tags: dict[str, str | int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"tag {item!r} is not KEY=VALUE")
        if key in tags:
            raise click.UsageError(f"tag key {key!r} given twice")
        tags[key] = value if as_string else _tag_value(value)
    return tags


def _parse_value(text: str, encoding: str) -> int | float:
    try:
        return float(text) if encoding == "fixed" else int(text, 10)
    except ValueError:
        kind = "a number" if encoding == "fixed" else "an integer"
        raise click.UsageError(f"value {text[:40]!r} is not {kind} (encoding {encoding})") from None


def _date(ms: int | None) -> str:
    if ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _short_tags(tags: dict[str, Any]) -> str:
    shown = [f"{k}={v}" for k, v in tags.items() if k not in ("owner", "creation-date")]
    return ", ".join(shown) or "-"


@cli.group()
def secrets() -> None:
    """Store secrets as shares on the VC, fetch them verified, tag, list and share them."""


@secrets.command("create", context_settings={"ignore_unknown_options": True})
@click.argument("values", nargs=-1)
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable); integers become LONG tags."
)
@click.option("--string-tags", is_flag=True, help="Keep every tag value a STRING, even if it looks like an integer.")
@click.option(
    "--encoding",
    type=click.Choice(["int64", "field", "fixed"]),
    default="int64",
    show_default=True,
    help="int64: signed 64-bit integers; field: raw elements in [0, p); fixed: reals with --fraction-bits.",
)
@click.option(
    "--fraction-bits", type=click.IntRange(0, 63), default=16, show_default=True, help="f for --encoding fixed."
)
@click.option("--id", "secret_id", metavar="UUID", help="Use this id instead of a random one.")
@_json_option
@click.pass_obj
def create(
    ctx: VcpctlContext,
    values: tuple[str, ...],
    tags: tuple[str, ...],
    string_tags: bool,
    encoding: str,
    fraction_bits: int,
    secret_id: str | None,
    as_json: bool,
) -> None:
    """Upload VALUE... (or one value per line on stdin) as a new secret; print its id.

    Negative values work as arguments (``vcpctl secrets create 5 -7``).
    """
    texts = list(values) or [line.strip() for line in sys.stdin if line.strip()]
    if not texts:
        raise click.UsageError("no values: give VALUE arguments or one value per line on stdin")
    numbers = [_parse_value(t, encoding) for t in texts]
    tag_map = _parse_tags(tags, as_string=string_tags)
    new_id = _run(
        ctx,
        lambda client: client.create_secret(
            numbers, tags=tag_map, encoding=encoding, fraction_bits=fraction_bits, secret_id=secret_id
        ),
    )
    if as_json:
        emit_json({"id": new_id, "length": len(numbers), "encoding": encoding})
    else:
        click.echo(new_id)


@secrets.command("get")
@click.argument("secret_id", metavar="ID")
@_json_option
@click.pass_obj
def get(ctx: VcpctlContext, secret_id: str, as_json: bool) -> None:
    """Download a secret, verify it, and print its values and tags."""
    secret = _run(ctx, lambda client: client.get_secret(secret_id))
    if as_json:
        emit_json(
            {
                "id": secret.id,
                "values": list(secret.values),
                "tags": dict(secret.tags),
                "encoding": secret.encoding,
                "fraction_bits": secret.fraction_bits,
            }
        )
        return
    click.echo(f"id        {secret.id}")
    encoding = secret.encoding + (f" (f={secret.fraction_bits})" if secret.encoding == "fixed" else "")
    click.echo(f"encoding  {encoding}")
    click.echo(f"owner     {secret.owner or '-'}")
    click.echo(f"created   {_date(secret.creation_date)}")
    click.echo(f"tags      {_short_tags(secret.tags)}")
    click.echo("values")
    for value in secret.values:
        click.echo(f"  {value}")


@secrets.command("list")
@click.option("--filter", "filters", multiple=True, metavar="EXPR", help="KEY=VALUE, KEY<N or KEY>N (repeatable, AND).")
@click.option("--sort", metavar="KEY[:asc|desc]", help="Sort by a tag (default: creation date).")
@click.option("--page", type=click.IntRange(0), default=None, help="Page number, from 0.")
@click.option("--size", type=click.IntRange(1, 1000), default=None, help="Secrets per page (default 1000).")
@_json_option
@click.pass_obj
def list_(
    ctx: VcpctlContext, filters: tuple[str, ...], sort: str | None, page: int | None, size: int | None, as_json: bool
) -> None:
    """List the secrets you may read (metadata only)."""
    result = _run(ctx, lambda client: client.list_secrets(filters=filters, sort=sort, page=page, size=size))
    if as_json:
        emit_json(
            {
                "secrets": [item.as_dict() for item in result.items],
                "page": result.page,
                "size": result.size,
                "total": result.total,
                "pages": result.pages,
            }
        )
        return
    rows = [
        [item.id, item.length, item.encoding, _date(item.creation_date), _short_tags(item.tags)]
        for item in result.items
    ]
    click.echo(table(["id", "length", "encoding", "created", "tags"], rows))
    click.echo(f"page {result.page + 1} of {max(result.pages, 1)}, {result.total} secret(s) in all")


@secrets.command("delete")
@click.argument("secret_ids", metavar="ID...", nargs=-1, required=True)
@_json_option
@click.pass_obj
def delete(ctx: VcpctlContext, secret_ids: tuple[str, ...], as_json: bool) -> None:
    """Delete secrets on every VCP."""
    deleted = _run(ctx, lambda client: client.delete_secrets(list(secret_ids)))
    if as_json:
        emit_json({"deleted": deleted, "ids": list(secret_ids)})
    else:
        click.echo(f"deleted {deleted} secret(s)")


@secrets.command("tag")
@click.argument("secret_id", metavar="ID")
@click.argument("tags", metavar="KEY=VALUE...", nargs=-1, required=True)
@click.option("--string-tags", is_flag=True, help="Keep every value a STRING, even if it looks like an integer.")
@_json_option
@click.pass_obj
def tag(ctx: VcpctlContext, secret_id: str, tags: tuple[str, ...], string_tags: bool, as_json: bool) -> None:
    """Create or update tags of a secret (integers become LONG tags)."""
    tag_map = _parse_tags(tags, as_string=string_tags)

    async def action(client: Any) -> dict[str, Any]:
        await client.set_tags(secret_id, tag_map)
        return dict(await client.get_tags(secret_id))

    result = _run(ctx, action)
    if as_json:
        emit_json({"id": secret_id, "tags": result})
    else:
        click.echo(f"{secret_id}: {_short_tags(result)}")


@secrets.command("untag")
@click.argument("secret_id", metavar="ID")
@click.argument("keys", metavar="KEY...", nargs=-1, required=True)
@_json_option
@click.pass_obj
def untag(ctx: VcpctlContext, secret_id: str, keys: tuple[str, ...], as_json: bool) -> None:
    """Delete tags of a secret (all or nothing)."""

    async def action(client: Any) -> dict[str, Any]:
        await client.delete_tags(secret_id, list(keys))
        return dict(await client.get_tags(secret_id))

    result = _run(ctx, action)
    if as_json:
        emit_json({"id": secret_id, "tags": result})
    else:
        click.echo(f"{secret_id}: {_short_tags(result)}")


def _grant_command(name: str, verb: str) -> None:
    @secrets.command(name, help=f"{verb} another client key ACTION... (read, use, delete, tag) on a secret you own.")
    @click.argument("secret_id", metavar="ID")
    @click.argument("client_key", metavar="CLIENT_PUBLIC_KEY")
    @click.argument("actions", metavar="ACTION...", nargs=-1, required=True, type=click.Choice(_ACTIONS))
    @_json_option
    @click.pass_obj
    def command(ctx: VcpctlContext, secret_id: str, client_key: str, actions: tuple[str, ...], as_json: bool) -> None:
        async def action(client: Any) -> dict[str, list[str]]:
            method = client.grant if name == "grant" else client.revoke
            await method(secret_id, client_key, list(actions))
            return dict(await client.get_grants(secret_id))

        grants = _run(ctx, action)
        if as_json:
            emit_json({"id": secret_id, "client": client_key, "grants": grants})
        else:
            now = ", ".join(grants.get(client_key, [])) or "nothing"
            click.echo(f"{secret_id}: {client_key} may now: {now}")


_grant_command("grant", "Grant")
_grant_command("revoke", "Revoke from")


@secrets.command("grants")
@click.argument("secret_id", metavar="ID")
@_json_option
@click.pass_obj
def grants(ctx: VcpctlContext, secret_id: str, as_json: bool) -> None:
    """Show who may do what with a secret you own."""
    result = _run(ctx, lambda client: client.get_grants(secret_id))
    if as_json:
        emit_json({"id": secret_id, "grants": result})
        return
    if not result:
        click.echo("no grants: only the owner has access")
        return
    click.echo(table(["client", "actions"], [[key, ", ".join(actions)] for key, actions in sorted(result.items())]))

