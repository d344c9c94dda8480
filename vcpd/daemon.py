"""The ``vcpd`` daemon: the only place that wires concrete parts together.

``vcpd start --config vcp0.toml`` loads the config once, opens the store, starts
the services as trio tasks and serves until SIGINT or SIGTERM. Any problem
found before serving (bad config, missing key, wrong prime, store from a newer
vcpd) ends the process with one clear line on stderr and exit status 2 — never
a traceback.
"""

from __future__ import annotations

import signal
import sys
from typing import Literal

import click
import trio

from vcpd import __version__
from vcpd.config import VcpConfig, load_vcp_config
from vcpd.errors import VcpError
from vcpd.logs import configure_logging, get_logger
from vcpd.node import prepare_node, serve_node

__all__ = ["main", "run_daemon"]

log = get_logger("daemon")


async def _serve_until_signal(config: VcpConfig) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            prepared = await prepare_node(config)
            await nursery.start(serve_node, prepared)
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break
    log.info("stopped cleanly")


def run_daemon(config_path: str, log_format: Literal["text", "json"], log_level: str) -> int:
    """Run one VCP until a signal; return the process exit status."""
    configure_logging(log_format, log_level)
    try:
        config = load_vcp_config(config_path)
        configure_logging(log_format, log_level, party=config.party)
        trio.run(_serve_until_signal, config)
    except BaseException as exc:  # noqa: BLE001 - sorted below, everything else re-raised
        error = _find_vcp_error(exc)
        if error is not None:
            click.echo(f"vcpd: error: {error}", err=True)
            return 2
        if isinstance(exc, KeyboardInterrupt):
            return 130
        raise
    return 0


def _find_vcp_error(exc: BaseException) -> VcpError | None:
    """The first VcpError in ``exc`` or, through nurseries, its exception groups."""
    if isinstance(exc, VcpError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find_vcp_error(inner)
            if found is not None:
                return found
    return None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vcpd")
def cli() -> None:
    """vcpd: one Virtual Cloud Provider (VCP) of a secure MPC Virtual Cloud."""


@cli.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    envvar="VCPD_CONFIG",
    help="VCP config file (TOML), e.g. local-vc/vcp0.toml.",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
)
def start(config_path: str, log_format: Literal["text", "json"], log_level: str) -> None:
    """Start this VCP and serve until SIGINT/SIGTERM."""
    sys.exit(run_daemon(config_path, log_format, log_level))


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
