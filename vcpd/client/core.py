"""Connections from a client to every VCP of a VC, and VC-wide calls.

``async with open_client(config) as client:`` connects to all VCPs of the VC
(each connection authenticated against the VCP key pinned in the client
config, its VC parameters compared with the client's own), then every
operation that concerns the whole VC is sent to all VCPs concurrently — as in
Carbyne Stack, each VCP checks the client's rights on its own.

The client library depends on the wire, net and math layers and on config;
never on the daemon, services or api (the layering test checks).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import trio
from nacl.signing import SigningKey

from vcpd.config import ClientConfig, PartyInfo, load_client_config
from vcpd.errors import PeerUnavailable, RequestError, VcpError
from vcpd.keys import encode_public_key, load_identity
from vcpd.math import PrimeField
from vcpd.net.rpc import RpcConnection, open_rpc_connection

from .executions import ExecutionsMixin
from .fanout import FanOutMixin
from .secrets import SecretsMixin
from .tuples import TuplesMixin

__all__ = ["CONNECT_TIMEOUT", "Client", "VcpStatus", "open_client", "probe_vc", "vcp_url"]

CONNECT_TIMEOUT: Final = 5.0  # seconds to reach and authenticate one VCP


def vcp_url(party: PartyInfo) -> str:
    """The websocket URL of a VCP's client API."""
    return f"ws://{party.api_address}/api"


def _as_config(config: ClientConfig | str | Path) -> ClientConfig:
    return config if isinstance(config, ClientConfig) else load_client_config(config)


class Client(FanOutMixin, SecretsMixin, TuplesMixin, ExecutionsMixin):
    """A connection to every VCP of one VC; see :func:`open_client`."""

    def __init__(self, config: ClientConfig, identity: SigningKey, connections: Sequence[RpcConnection]) -> None:
        self.config = config
        self.identity = identity
        self.field = PrimeField(config.vc.prime)
        self._connections = list(connections)

    def __repr__(self) -> str:
        return f"<Client of a {self.n_parties}-party VC {self.config.vc.digest()}>"

    @property
    def n_parties(self) -> int:
        return self.config.vc.n_parties

    @property
    def public_key(self) -> str:
        """This client's public key (base64), as VCPs see it (e.g. in ``owner`` tags)."""
        return encode_public_key(self.identity.verify_key)

    async def call(self, party: int, op: str, args: Mapping[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """One request to one VCP; RequestError carries the VCP's error code."""
        return await self._connections[party].call(op, dict(args or {}), timeout=timeout)

    # -- operator view -----------------------------------------------------------
    async def status(self) -> list[dict[str, Any]]:
        """Every VCP's status (all must be reachable; see :func:`probe_vc` otherwise)."""
        return await self.call_all("status")


async def _connect(config: ClientConfig, identity: SigningKey, party: PartyInfo, stack: AsyncExitStack) -> RpcConnection:
    try:
        return await stack.enter_async_context(
            open_rpc_connection(
                vcp_url(party),
                identity,
                expected_key=party.public_key_bytes,
                params=config.vc.handshake_fields(),
                connect_timeout=CONNECT_TIMEOUT,
            )
        )
    except PeerUnavailable:
        raise
    except VcpError as exc:
        raise PeerUnavailable(party.id, f"{vcp_url(party)}: {exc}") from exc


@asynccontextmanager
async def open_client(config: ClientConfig | str | Path) -> AsyncIterator[Client]:
    """Connect to every VCP of the VC described by ``config`` (a ClientConfig or a path).

    Raises:
        PeerUnavailable: a VCP cannot be reached or authenticated (named in the message).
        ConfigError: the config or the identity key file is unusable.
    """
    config = _as_config(config)
    identity = load_identity(config.identity_key)
    async with AsyncExitStack() as stack:
        # Connections are entered in this task, one after the other: each owns
        # a nursery, which must be opened and closed by the same task.
        connections = [await _connect(config, identity, party, stack) for party in config.vc.parties]
        yield Client(config, identity, connections)


@dataclass(frozen=True, slots=True)
class VcpStatus:
    """One VCP as ``vcpctl status`` sees it (reachable or not)."""

    party: int
    reachable: bool
    info: Mapping[str, Any]
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"party": self.party, "reachable": self.reachable}
        data.update({k: v for k, v in self.info.items() if k != "party"})
        if self.error is not None:
            data["error"] = self.error
        return data


async def probe_vc(config: ClientConfig | str | Path, *, timeout: float = CONNECT_TIMEOUT) -> list[VcpStatus]:
    """Ask every VCP for its status independently; unreachable ones are reported, not raised."""
    config = _as_config(config)
    identity = load_identity(config.identity_key)
    results: list[VcpStatus | None] = [None] * config.vc.n_parties

    async def probe(party: PartyInfo) -> None:
        try:
            with trio.fail_after(timeout):
                async with AsyncExitStack() as stack:
                    connection = await _connect(config, identity, party, stack)
                    info = await connection.call("status", {})
            results[party.id] = VcpStatus(party=party.id, reachable=True, info=info)
        except (VcpError, trio.TooSlowError) as exc:
            reason = str(exc) if isinstance(exc, VcpError) else f"no answer within {timeout:g} s"
            results[party.id] = VcpStatus(party=party.id, reachable=False, info={}, error=reason)

    async with trio.open_nursery() as nursery:
        for party in config.vc.parties:
            nursery.start_soon(probe, party)
    return [r for r in results if r is not None]
