"""Test doubles shipped with vcpd (never imported by production modules).

* :func:`open_memory_transports` links N parties through an in-memory hub that
  implements the :class:`vcpd.protocol.transport.Transport` contract with the
  same mailbox and session code as the real mesh, without sockets or crypto —
  for fast, deterministic protocol tests (use ``autojump_clock``). Payloads go
  through msgpack, as on the wire, so a non-serialisable payload fails here too.
  The hub can cut links and reorder deliveries to test failure handling.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import trio

from vcpd.errors import PeerUnavailable
from vcpd.net.mailbox import Mailboxes
from vcpd.net.sessions import SessionOpener

__all__ = ["MemoryHub", "MemoryTransport", "open_memory_transports"]


class MemoryTransport(SessionOpener):
    """One party's end of a :class:`MemoryHub`."""

    def __init__(self, hub: MemoryHub, party: int) -> None:
        self.hub = hub
        self.mailboxes = Mailboxes(party, hub.n_parties)
        super().__init__(self.mailboxes, _HubSender(hub, party))


class _HubSender:
    def __init__(self, hub: MemoryHub, party: int) -> None:
        self.hub = hub
        self.party = party

    async def send_message(self, peer: int, session: str, step: str, payload: Any) -> None:
        await self.hub.route(self.party, peer, ("m", session, step, payload))

    async def send_abort(self, peer: int, session: str, reason: str) -> None:
        await self.hub.route(self.party, peer, ("a", session, reason))


class MemoryHub:
    """Routes messages between :class:`MemoryTransport` ends.

    Args:
        n_parties: number of parties.
        shuffle: deliver each message after a random number of scheduler
            checkpoints, so arrival order differs from send order.
        seed: seed for that scheduling noise (test determinism only; it never
            touches protocol randomness).
    """

    def __init__(self, n_parties: int, *, shuffle: bool = False, seed: int = 0) -> None:
        self.n_parties = n_parties
        self.transports = [MemoryTransport(self, party) for party in range(n_parties)]
        self._cut: set[frozenset[int]] = set()
        self._shuffle = shuffle
        self._seed = seed
        self.sent_bytes = 0
        self.messages = 0
        self._tamper: Any = None

    def tamper(self, fn: Any) -> None:
        """Install ``fn(src, dst, message) -> message`` to alter traffic in flight."""
        self._tamper = fn

    async def route(self, src: int, dst: int, message: tuple[Any, ...]) -> None:
        if frozenset((src, dst)) in self._cut:
            raise PeerUnavailable(dst, "link is down")
        if self._tamper is not None:
            message = self._tamper(src, dst, message)
        encoded = msgpack.packb(message, use_bin_type=True)
        self.sent_bytes += len(encoded)
        self.messages += 1
        decoded = msgpack.unpackb(encoded, raw=False, use_list=True)
        if self._shuffle:
            noise = hashlib.blake2b(f"{self._seed}:{self.messages}".encode(), digest_size=1).digest()[0]
            for _ in range(noise % 4):
                await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint()
        if frozenset((src, dst)) in self._cut:
            raise PeerUnavailable(dst, "link is down")
        box = self.transports[dst].mailboxes
        if decoded[0] == "m":
            _, session, step, payload = decoded
            box.deliver(src, session, step, payload)
        else:
            _, session, reason = decoded
            box.deliver_abort(src, session, reason)

    def cut(self, a: int, b: int, reason: str = "connection lost") -> None:
        """Take the link between ``a`` and ``b`` down (both ends notice at once)."""
        self._cut.add(frozenset((a, b)))
        self.transports[a].mailboxes.peer_down(b, reason)
        self.transports[b].mailboxes.peer_down(a, reason)

    def isolate(self, party: int, reason: str = "VCP went away") -> None:
        """Cut every link of ``party`` (as if its process died)."""
        for other in range(self.n_parties):
            if other != party:
                self.cut(party, other, reason)

    def restore(self, a: int, b: int) -> None:
        self._cut.discard(frozenset((a, b)))
        self.transports[a].mailboxes.peer_up(b)
        self.transports[b].mailboxes.peer_up(a)


@asynccontextmanager
async def open_memory_transports(
    n_parties: int, *, shuffle: bool = False, seed: int = 0
) -> AsyncIterator[MemoryHub]:
    """A hub with ``n_parties`` connected transports (``hub.transports[i]``)."""
    yield MemoryHub(n_parties, shuffle=shuffle, seed=seed)


# --------------------------------------------------------------------------
# Real peer meshes in one trio run: over 127.0.0.1 sockets or memory streams.
# (Added with vcpd.net.mesh; everything above is unchanged.)

import base64 as _base64  # noqa: E402
from collections.abc import Callable as _Callable  # noqa: E402
from dataclasses import dataclass as _dataclass  # noqa: E402
from dataclasses import field as _field  # noqa: E402
from functools import partial as _partial  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

import trio.testing as _trio_testing  # noqa: E402
import trio_websocket as _trio_websocket  # noqa: E402
from nacl.signing import SigningKey as _SigningKey  # noqa: E402

from vcpd.config import DEFAULT_PRIME as _DEFAULT_PRIME  # noqa: E402
from vcpd.config import ExecutorSettings as _ExecutorSettings  # noqa: E402
from vcpd.config import PartyInfo as _PartyInfo  # noqa: E402
from vcpd.config import TupleSettings as _TupleSettings  # noqa: E402
from vcpd.config import VcParams as _VcParams  # noqa: E402
from vcpd.config import VcpConfig as _VcpConfig  # noqa: E402
from vcpd.net.mesh import PEER_PATH as _PEER_PATH  # noqa: E402
from vcpd.net.mesh import PeerMesh as _PeerMesh  # noqa: E402
from vcpd.net.mesh import serve_peer_mesh as _serve_peer_mesh  # noqa: E402
from vcpd.net.websocket import CONNECT_TIMEOUT as _CONNECT_TIMEOUT  # noqa: E402
from vcpd.net.websocket import RECEIVE_BUFFER as _RECEIVE_BUFFER  # noqa: E402
from vcpd.net.websocket import WS_MAX_MESSAGE as _WS_MAX_MESSAGE  # noqa: E402
from vcpd.net.websocket import WS_QUEUE as _WS_QUEUE  # noqa: E402
from vcpd.net.websocket import open_task_group as _open_task_group  # noqa: E402


def make_vcp_configs(
    addresses: list[tuple[str, int]],
    *,
    offline: str = "dealer",
    prime: int = _DEFAULT_PRIME,
    identities: list[_SigningKey] | None = None,
    directory: _Path | None = None,
) -> tuple[list[_VcpConfig], list[_SigningKey]]:
    """In-memory VCP configs for ``len(addresses)`` parties (no files are written).

    ``addresses[i]`` is party i's peer endpoint, used both as its
    ``peer_listen`` and as the ``peer_address`` the others dial. Key files,
    data directories and the MAC key are placeholders: only the mesh and the
    handshake use these configs.
    """
    keys = identities or [_SigningKey.generate() for _ in addresses]
    base = directory or _Path("/nonexistent/vcpd-test")
    parties = tuple(
        _PartyInfo(
            id=i,
            public_key=_base64.b64encode(bytes(key.verify_key)).decode(),
            peer_address=f"{host}:{port}",
            api_address=f"{host}:0",
        )
        for i, (key, (host, port)) in enumerate(zip(keys, addresses, strict=True))
    )
    vc = _VcParams(prime=prime, parties=parties, offline=offline)  # type: ignore[arg-type]  # tests pick the mode
    configs = [
        _VcpConfig(
            path=base / f"vcp{i}.toml",
            party=i,
            identity_key=base / f"vcp{i}.key",
            data_dir=base / f"vcp{i}",
            peer_listen=address,
            api_listen=(address[0], 0),
            admin_keys=(),
            mac_key=None,
            vc=vc,
            executor=_ExecutorSettings(),
            tuples=_TupleSettings(),
        )
        for i, address in enumerate(addresses)
    ]
    return configs, keys


class _Partitionable(trio.abc.Stream):
    """A stream that can be cut silently: sends vanish, receives never return.

    This is what a dead host looks like from the other end (no FIN, no RST),
    so only keepalives can notice it.
    """

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.cut = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.cut:
            await trio.lowlevel.checkpoint()
            return
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self.cut:
            await trio.sleep_forever()
        data = await self.inner.receive_some(max_bytes)
        if self.cut:
            await trio.sleep_forever()
        return data

    async def aclose(self) -> None:
        if self.cut:
            await trio.lowlevel.checkpoint()
            return
        await self.inner.aclose()


@_dataclass(eq=False)
class LocalMesh:
    """N real :class:`~vcpd.net.mesh.PeerMesh` instances in one trio run.

    Built by :func:`open_local_mesh`. Parties can be stopped (cleanly: their
    links close with a close frame), killed (memory mode only: their streams
    go silent, as when a host dies) and started again on the same address.

    Attributes:
        configs, identities: per party.
        meshes: the running mesh of each party, or ``None`` while stopped.
        memory: whether links run over memory streams instead of sockets.
    """

    configs: list[_VcpConfig]
    identities: list[_SigningKey]
    memory: bool
    meshes: list[_PeerMesh | None] = _field(default_factory=list)
    _nursery: trio.Nursery | None = None
    _party_nurseries: dict[int, trio.Nursery] = _field(default_factory=dict)
    _stopped: dict[int, trio.Event] = _field(default_factory=dict)
    _streams: dict[int, list[_Partitionable]] = _field(default_factory=dict)
    _fresh_listeners: dict[int, list[trio.SocketListener]] = _field(default_factory=dict)

    def __getitem__(self, party: int) -> _PeerMesh:
        mesh = self.meshes[party]
        if mesh is None:
            raise RuntimeError(f"party {party} is not running")
        return mesh

    async def start(self, party: int) -> _PeerMesh:
        """Start party ``party`` (again) on its configured address."""
        assert self._nursery is not None
        if self.meshes[party] is not None:
            raise RuntimeError(f"party {party} is already running")
        # The first start serves the listener bound while picking the port.
        listeners = self._fresh_listeners.pop(party, None)
        mesh: _PeerMesh = await self._nursery.start(self._run_party, party, listeners)
        return mesh

    async def _run_party(
        self,
        party: int,
        listeners: list[trio.SocketListener] | None,
        *,
        task_status: trio.TaskStatus[_PeerMesh] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self._stopped[party] = trio.Event()
        self._streams[party] = []
        try:
            async with trio.open_nursery() as nursery:
                self._party_nurseries[party] = nursery
                serve = _partial(
                    _serve_peer_mesh,
                    self.configs[party],
                    self.identities[party],
                    listeners=[] if self.memory else listeners,
                    connector=_partial(self._memory_connect, party) if self.memory else None,
                )
                mesh: _PeerMesh = await nursery.start(serve)
                self.meshes[party] = mesh
                task_status.started(mesh)
        finally:
            self.meshes[party] = None
            self._party_nurseries.pop(party, None)
            self._stopped[party].set()

    async def stop(self, party: int) -> None:
        """Stop party ``party`` cleanly and wait until it is gone."""
        nursery = self._party_nurseries.get(party)
        if nursery is not None:
            nursery.cancel_scope.cancel()
            await self._stopped[party].wait()

    async def kill(self, party: int) -> None:
        """Memory mode: silence every stream of ``party``, then stop it (no close frames get out)."""
        if not self.memory:
            raise RuntimeError("kill() needs memory streams; with sockets, stop() the party")
        for stream in self._streams.get(party, []):
            stream.cut = True
        await self.stop(party)

    async def restart(self, party: int) -> _PeerMesh:
        await self.stop(party)
        return await self.start(party)

    async def wait_linked(self, timeout: float) -> None:
        """Wait until every running party has all its links up, all at the same time.

        (A responder sees a link up half a round trip before its dialler does.)
        """
        with trio.fail_after(timeout):
            while True:
                running = [mesh for mesh in self.meshes if mesh is not None]
                for mesh in running:
                    await mesh.wait_linked()
                if all(mesh.statistics().all_up for mesh in running):
                    return

    @asynccontextmanager
    async def _memory_connect(
        self, dialer: int, peer: int, url: str
    ) -> AsyncIterator[_trio_websocket.WebSocketConnection]:
        target = self.meshes[peer]
        inbound = self._party_nurseries.get(peer)
        if target is None or inbound is None or inbound.cancel_scope.cancel_called:
            await trio.lowlevel.checkpoint()
            raise PeerUnavailable(peer, f"cannot connect to {url}: connection refused (party {peer} is not running)")
        client_stream, server_stream = _trio_testing.memory_stream_pair()
        client = _Partitionable(client_stream)
        server = _Partitionable(server_stream)
        self._streams[dialer].append(client)
        self._streams[peer].append(server)
        inbound.start_soon(self._serve_memory, target, server)
        async with _open_task_group() as nursery:
            try:
                with trio.fail_after(_CONNECT_TIMEOUT):
                    ws = await _trio_websocket.wrap_client_stream(
                        nursery, client, "memory", _PEER_PATH, message_queue_size=_WS_QUEUE,  # type: ignore[arg-type]
                        max_message_size=_WS_MAX_MESSAGE, receive_buffer_size=_RECEIVE_BUFFER,
                    )  # fmt: skip
            except trio.TooSlowError:
                nursery.cancel_scope.cancel()
                raise PeerUnavailable(peer, f"cannot connect to {url}: no answer") from None
            try:
                yield ws
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    await ws.aclose()
                nursery.cancel_scope.cancel()

    async def _serve_memory(self, target: _PeerMesh, stream: _Partitionable) -> None:
        try:
            async with trio.open_nursery() as nursery:
                request = await _trio_websocket.wrap_server_stream(
                    nursery, stream, message_queue_size=_WS_QUEUE, max_message_size=_WS_MAX_MESSAGE,
                    receive_buffer_size=_RECEIVE_BUFFER,
                )  # fmt: skip
                await target.handle_request(request)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()  # the dialler sees EOF, as with a socket


@asynccontextmanager
async def open_local_mesh(
    n_parties: int,
    *,
    memory: bool = False,
    offline: str = "dealer",
    adjust: _Callable[[int, _VcpConfig], _VcpConfig] | None = None,
    start: bool = True,
) -> AsyncIterator[LocalMesh]:
    """Start ``n_parties`` real peer meshes (real handshake, channel and links).

    With ``memory=False`` they listen on 127.0.0.1 with ports picked by the OS
    (use the real clock); with ``memory=True`` they are linked by memory
    streams through trio-websocket, which works with ``autojump_clock``.

    Args:
        adjust: ``adjust(party, config) -> config`` to give a party a
            different configuration (other VC parameters, addresses...).
        start: start every party (otherwise call :meth:`LocalMesh.start`).
    """
    listeners: list[list[trio.SocketListener]] = []
    if memory:
        addresses = [("memory", 7000 + i) for i in range(n_parties)]
    else:
        for _ in range(n_parties):
            listeners.append(await trio.open_tcp_listeners(0, host="127.0.0.1"))
        addresses = [("127.0.0.1", group[0].socket.getsockname()[1]) for group in listeners]
    configs, keys = make_vcp_configs(addresses, offline=offline)
    if adjust is not None:
        configs = [adjust(i, config) for i, config in enumerate(configs)]
    local = LocalMesh(configs=configs, identities=keys, memory=memory, meshes=[None] * n_parties)
    local._fresh_listeners = dict(enumerate(listeners))
    try:
        async with _open_task_group() as nursery:
            local._nursery = nursery
            if start:
                for party in range(n_parties):
                    await local.start(party)
            yield local
            nursery.cancel_scope.cancel()
    finally:
        for group in listeners:
            for listener in group:
                with trio.CancelScope(shield=True):
                    await listener.aclose()


__all__ += ["LocalMesh", "make_vcp_configs", "open_local_mesh"]
