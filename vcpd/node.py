"""Wiring of one VCP: keys, field, store, peer mesh, services and the client API.

:func:`prepare_node` does everything that can fail because of the operator's
files (keys, MAC key, prime) and raises :class:`~vcpd.errors.VcpError` with a
clear message; :func:`serve_node` then runs the parts as trio tasks and reports
readiness through ``task_status`` once every listener is up.

Together with :mod:`vcpd.daemon` this is the top layer: the only place that
imports concrete services and puts them together.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import trio
from nacl.signing import SigningKey

from vcpd import __version__
from vcpd.config import VcpConfig
from vcpd.errors import ConfigError, FieldError, StoreError
from vcpd.keys import MacKey, load_identity, load_mac_key, random_field_element, write_mac_key
from vcpd.logs import get_logger
from vcpd.math.field import PrimeField
from vcpd.api.dispatch import Dispatcher
from vcpd.api.executions import register_execution_ops
from vcpd.api.secrets import register_secret_ops
from vcpd.api.status import StatusSource, register_status_ops
from vcpd.api.tuples import register_tuple_ops
from vcpd.net.mesh import PeerMesh, serve_peer_mesh
from vcpd.net.rpc import serve_rpc
from vcpd.services import executor as executor_service
from vcpd.services import generator as generator_service
from vcpd.services import secrets as secrets_service
from vcpd.services import tuples as tuples_service
from vcpd.store import Migration, open_store
from vcpd.wire import Request, Response

__all__ = ["NodeAddresses", "PreparedNode", "prepare_node", "serve_node"]

log = get_logger("node")

MASCOT_MAC_KEY_FILE = "mac_key"

MIGRATIONS: tuple[Migration, ...] = (
    *tuples_service.MIGRATIONS,
    *generator_service.MIGRATIONS,
    *secrets_service.MIGRATIONS,
    *executor_service.MIGRATIONS,
)
"""Every service's schema migrations (the store refuses owners it does not know)."""


@dataclass(frozen=True, slots=True)
class PreparedNode:
    """A config plus the secrets and objects derived from it, all checked."""

    config: VcpConfig
    identity: SigningKey
    mac_key: MacKey
    field: PrimeField


@dataclass(frozen=True, slots=True)
class NodeAddresses:
    """Where a started node actually listens (ports resolved when 0 was asked)."""

    peer: tuple[str, int]
    api: tuple[str, int]


def _mascot_mac_key(config: VcpConfig) -> MacKey:
    """Load this VCP's own MAC key share, sampling it on first start.

    In ``mascot`` mode α_i is drawn here, locally, stored 0600 in the data
    directory, and never sent anywhere.
    """
    path = Path(config.data_dir) / MASCOT_MAC_KEY_FILE
    if not path.exists():
        config.data_dir.mkdir(parents=True, exist_ok=True)
        write_mac_key(path, MacKey(share=random_field_element(config.vc.prime)))
        log.info("sampled this VCP's MAC key share locally", extra={"ctx": {"file": str(path)}})
    return load_mac_key(path, config.vc.prime)


async def prepare_node(config: VcpConfig) -> PreparedNode:
    """Load keys and check the field; raise VcpError naming any problem."""
    try:
        field = PrimeField(config.vc.prime)
    except FieldError as exc:
        raise ConfigError(f"unusable prime: {exc}", path=str(config.path), key="vc.prime") from None
    identity = load_identity(config.identity_key)
    own = config.vc.party(config.party)
    if bytes(identity.verify_key) != own.public_key_bytes:
        raise ConfigError(
            f"identity key does not match the public key listed for party {config.party} in [[vc.parties]]",
            path=str(config.identity_key),
        )
    if config.vc.offline == "dealer":
        assert config.mac_key is not None  # the config loader guarantees it
        mac_key = load_mac_key(config.mac_key, config.vc.prime)
        if config.is_leader and mac_key.dealer_alpha is None:
            raise ConfigError("the dealer's MAC key file lacks 'dealer_alpha'", path=str(config.mac_key))
    else:
        mac_key = _mascot_mac_key(config)
    return PreparedNode(config=config, identity=identity, mac_key=mac_key, field=field)


@contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the data directory: two daemons on one store
    would hand out the same tuples."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "vcpd.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"another vcpd is already running with data directory {data_dir}") from None
        yield
    finally:
        os.close(fd)


def _links(mesh: PeerMesh) -> dict[int, dict[str, Any]]:
    return {link.peer: dataclasses.asdict(link) for link in mesh.statistics().links}


async def _start_listener(nursery: trio.Nursery, what: str, address: tuple[str, int], fn: Any, *args: Any) -> Any:
    """Start a listener task, turning a bind failure into one clear error."""
    try:
        return await nursery.start(fn, *args)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen for {what} on {address[0]}:{address[1]} ({exc.strerror or exc}); "
            "is another vcpd using that port?"
        ) from None


async def serve_node(
    node: PreparedNode, *, task_status: trio.TaskStatus[NodeAddresses] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run every part of the VCP until cancelled.

    Reports the bound addresses once the peer endpoint and the client API are
    listening; peer links come up in the background (``vcpctl status --wait``).
    """
    config = node.config
    started = time.time()
    if config.vc.offline == "dealer":
        log.warning(
            "offline mode is 'dealer': INSECURE by construction; VCP 0 knows every tuple and the "
            "MAC key. Use for development and benchmarks only."
        )
    with _data_dir_lock(config.data_dir):
        async with open_store(config.store_path, migrations=MIGRATIONS) as store, trio.open_nursery() as nursery:
            mesh: PeerMesh = await _start_listener(
                nursery, "peers", config.peer_listen, serve_peer_mesh, config, node.identity
            )
            field = node.field
            tuples = tuples_service.TupleStore(
                store, mesh, field, config.party, config.vc.n_parties, mac_share=node.mac_key.share
            )
            await nursery.start(tuples.serve)
            generator = generator_service.TupleGenerator(
                store,
                tuples,
                mesh,
                field,
                node.mac_key,
                config.party,
                config.vc.n_parties,
                config.tuples,
                offline=config.vc.offline,
                data_dir=config.data_dir,  # mascot: the setup state persists here (0600)
                threads=True,  # mascot: heavy steps off the event loop, links stay served
            )
            await nursery.start(generator.serve)
            if config.is_leader and config.tuples.thresholds:
                await nursery.start(generator.serve_scheduler)
            secrets = secrets_service.SecretStore(store, mesh, tuples, field, node.mac_key.share)
            executor = executor_service.Executor(
                store, mesh, tuples, secrets, field, node.mac_key.share, config.executor
            )
            await executor.recover()

            dispatcher = Dispatcher(frozenset(config.admin_keys))
            register_status_ops(
                dispatcher,
                StatusSource(
                    party=config.party,
                    n_parties=config.vc.n_parties,
                    offline=config.vc.offline,
                    vc_digest=config.vc.digest(),
                    started=started,
                    links=lambda: _links(mesh),
                    extra=lambda: {
                        "store": {"path": str(store.path), "bytes": store.statistics().size_bytes},
                        "tuples": {k: dataclasses.asdict(v) for k, v in tuples.statistics().kinds.items()},
                    },
                ),
            )
            register_tuple_ops(dispatcher, tuples, generator)
            register_secret_ops(dispatcher, secrets)
            register_execution_ops(dispatcher, executor)

            async def handle(client_key: str, request: Request) -> Response:
                result = await dispatcher.dispatch(dispatcher.caller(client_key), request.op, request.args)
                return Response(request.id, result)

            api_address = await _start_listener(
                nursery,
                "clients",
                config.api_listen,
                partial(serve_rpc, party=config.party),
                config.api_listen,
                node.identity,
                config.vc.handshake_fields(),
                handle,
            )
            log.info(
                "vcpd %s serving",
                __version__,
                extra={"ctx": {"vc": config.vc.digest(), "parties": config.vc.n_parties, "offline": config.vc.offline}},
            )
            task_status.started(NodeAddresses(peer=mesh.address, api=api_address))
            await trio.sleep_forever()
