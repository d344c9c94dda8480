"""The ``vcpctl`` command group: keys and VC setup here; client commands in submodules.

Every command that talks to a VC finds the client config through ``--vc FILE``
or the ``VCPCTL_VC`` environment variable, prints human-readable output by
default and one JSON document with ``--json``, and turns any
:class:`~vcpd.errors.VcpError` into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from vcpd import __version__
from vcpd.config import ClientConfig, load_client_config
from vcpd.errors import VcpError
from vcpd.keys import encode_public_key, generate_identity, write_identity
from vcpd.vcinit import DEFAULT_BASE_PORT, init_local_vc

__all__ = ["cli", "main"]


class VcpctlContext:
    """Lazily loads the client config so that keygen and vc init never need one."""

    def __init__(self, vc_path: str | None) -> None:
        self.vc_path = vc_path
        self._config: ClientConfig | None = None

    @property
    def config(self) -> ClientConfig:
        if self._config is None:
            if not self.vc_path:
                raise click.UsageError(
                    "no client config: pass --vc FILE or set VCPCTL_VC "
                    "(a local VC prints it: export VCPCTL_VC=local-vc/client.toml)"
                )
            self._config = load_client_config(self.vc_path)
        return self._config


def emit_json(data: Any) -> None:
    """Print one JSON document (the ``--json`` output of every command)."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


class _Group(click.Group):
    """Turns VcpError into one clear line and exit status 1 (2 for config errors)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VcpError as exc:
            click.echo(f"vcpctl: error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vcpctl")
@click.option(
    "--vc",
    "vc_path",
    envvar="VCPCTL_VC",
    type=click.Path(dir_okay=False),
    help="Client config of the VC to talk to (or set VCPCTL_VC).",
)
@click.pass_context
def cli(ctx: click.Context, vc_path: str | None) -> None:
    """Operate a vcpd Virtual Cloud and use it: keys, status, tuples, secrets, programs."""
    ctx.obj = VcpctlContext(vc_path)


@cli.command()
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("identity.key"),
    show_default=True,
    help="Where to write the private key (mode 0600).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing key file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def keygen(out: Path, force: bool, as_json: bool) -> None:
    """Write a new Ed25519 identity key and print its public key."""
    key = generate_identity()
    write_identity(out, key, overwrite=force)
    public = encode_public_key(key.verify_key)
    if as_json:
        emit_json({"key_file": str(out), "public_key": public})
    else:
        click.echo(public)


@cli.group()
def vc() -> None:
    """Create and inspect Virtual Cloud configurations."""


@vc.command("init")
@click.option("--parties", "-n", type=click.IntRange(2, 64), default=3, show_default=True)
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("local-vc"), show_default=True
)
@click.option("--base-port", type=click.IntRange(1024, 65000), default=DEFAULT_BASE_PORT, show_default=True)
@click.option("--offline", type=click.Choice(["dealer", "mascot"]), default="dealer", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def vc_init(parties: int, directory: Path, base_port: int, offline: str, as_json: bool) -> None:
    """Write a complete local VC: keys, one config per VCP, one client config."""
    local = init_local_vc(directory, parties=parties, base_port=base_port, offline=offline)
    if as_json:
        emit_json(
            {
                "dir": str(local.directory),
                "vcp_configs": [str(p) for p in local.vcp_configs],
                "client_config": str(local.client_config),
                "client_public_key": local.client_public_key,
                "offline": offline,
            }
        )
        return
    click.echo(f"wrote a {parties}-party VC ({offline} offline phase) to {local.directory}")
    for path in local.vcp_configs:
        click.echo(f"  vcpd start --config {path}")
    click.echo(f"export VCPCTL_VC={local.client_config}")
    if offline == "dealer":
        click.echo("warning: dealer mode is insecure by construction (VCP 0 knows every tuple); development only")


def main() -> None:
    """Console-script entry point."""
    cli()


# Subcommand modules register themselves on ``cli`` when imported.
from vcpctl import run as _run  # noqa: E402,F401
from vcpctl import secrets as _secrets  # noqa: E402,F401
from vcpctl import status as _status  # noqa: E402,F401
from vcpctl import tuples as _tuples  # noqa: E402,F401
