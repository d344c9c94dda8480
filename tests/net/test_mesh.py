"""The peer mesh: linking, sessions over real links, failures, restarts, adversaries.

Real-socket tests run on 127.0.0.1 with the real clock and wait with
``wait_linked``/``wait_unlinked``; memory-stream tests (the same link code
over trio-websocket on memory streams) use ``autojump_clock`` and check
timings exactly.
"""

from __future__ import annotations

import base64
import logging
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import replace

import pytest
import trio
import trio.testing
from nacl.signing import SigningKey
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from vcpd.config import VcParams, VcpConfig
from vcpd.errors import PeerUnavailable
from vcpd.net.links import DEAD_AFTER, PING_INTERVAL
from vcpd.net.mesh import RECONNECT_MAX, PeerMesh
from vcpd.net.secure import SecureConnection, open_secure_connection
from vcpd.net.websocket import open_websocket_url, serve_websocket_listeners, ws_url
from vcpd.testing import LocalMesh, open_local_mesh
from vcpd.wire import Handshake, PeerMessage, encode_peer

MIB = 1 << 20


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture vcpd's records even if another test configured the logger not to propagate."""
    logger = logging.getLogger("vcpd")
    saved = logger.propagate
    logger.propagate = True
    caplog.set_level(logging.INFO, logger="vcpd")
    yield caplog
    logger.propagate = saved


def route(vc: VcParams, party: int, address: str) -> VcParams:
    """The same VC, with ``party`` reached at ``address``."""
    return replace(vc, parties=tuple(replace(p, peer_address=address) if p.id == party else p for p in vc.parties))


async def run_sessions(local: LocalMesh, n_sessions: int, *, seed: int) -> None:
    """Every party runs every session, in its own random order and with random delays."""
    n = len(local.meshes)
    results: dict[tuple[int, str], list[dict[int, object]]] = {}

    async def one(party: int, sid: str, delay: float) -> None:
        await trio.sleep(delay)
        async with local[party].session(sid) as session:
            rounds = [await session.exchange(f"round-{r}", [party, sid, r]) for r in range(3)]
            # point to point, received in the reverse order of sending
            for peer in session.peers:
                await session.send(peer, f"p2p-{party}", party * 100)
            got = [await session.receive(peer, f"p2p-{peer}") for peer in reversed(session.peers)]
            rounds.append(dict(zip(reversed(session.peers), got, strict=True)))
            results[party, sid] = rounds

    rng = random.Random(seed)
    async with trio.open_nursery() as nursery:
        for party in range(n):
            sids = [f"s{i}" for i in range(n_sessions)]
            rng.shuffle(sids)
            for sid in sids:
                nursery.start_soon(one, party, sid, rng.random() * 0.05)
    for (party, sid), rounds in results.items():
        for r in range(3):
            assert rounds[r] == {q: [q, sid, r] for q in range(n)}
        assert rounds[3] == {q: q * 100 for q in range(n) if q != party}
    assert len(results) == n * n_sessions


async def test_three_parties_exchange_labelled_messages_in_any_order() -> None:
    with trio.fail_after(20):
        async with open_local_mesh(3) as local:
            await local.wait_linked(5)
            await run_sessions(local, 6, seed=1)
            stats = local[0].statistics()
            assert stats.all_up and stats.party == 0
            assert [link.peer for link in stats.links] == [1, 2]
            assert all(link.messages_sent > 0 and link.bytes_received > 0 for link in stats.links)
            assert "0" in repr(local[0])


async def test_memory_mesh_exchanges_in_any_order(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with open_local_mesh(3, memory=True) as local:
            await local.wait_linked(10)
            await run_sessions(local, 6, seed=2)


async def test_large_payloads_pass_concurrently() -> None:
    payloads = [bytes([i]) * (16 * MIB) for i in range(3)]
    with trio.fail_after(30):
        async with open_local_mesh(2) as local:
            await local.wait_linked(5)

            async def pair(i: int) -> None:
                async def sender() -> None:
                    async with local[0].session(f"big{i}") as s:
                        await s.send(1, "data", payloads[i])
                        assert await s.receive(1, "ack") == len(payloads[i])

                async def receiver() -> None:
                    async with local[1].session(f"big{i}") as s:
                        data = await s.receive(0, "data")
                        assert data == payloads[i]
                        await s.send(0, "ack", len(data))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(sender)
                    nursery.start_soon(receiver)

            async with trio.open_nursery() as nursery:
                for i in range(3):
                    nursery.start_soon(pair, i)
            link = local[0].link_statistics(1)
            assert link.bytes_sent > 48 * MIB and link.state == "up"


async def test_stopped_peer_fails_waiting_sessions_at_once() -> None:
    with trio.fail_after(10):
        async with open_local_mesh(3) as local:
            await local.wait_linked(5)
            async with local[0].session("s") as session:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(local.stop, 2)
                    with trio.fail_after(1), pytest.raises(PeerUnavailable, match="peer VCP 2") as info:
                        await session.receive(2, "never")
                assert info.value.peer == 2
                with pytest.raises(PeerUnavailable):
                    await session.send(2, "x", 1)
            link = local[0].link_statistics(2)
            assert link.state == "down" and "shutting down" in (link.last_error or "")


async def test_dead_peer_is_detected_by_keepalive(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with open_local_mesh(3, memory=True) as local:
            await local.wait_linked(10)
            await trio.sleep(5)
            assert local[0].link_statistics(2).rtt is not None
            async with local[0].session("s") as session:
                killed_at = trio.current_time()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(local.kill, 2)
                    with pytest.raises(PeerUnavailable, match="keepalive") as info:
                        await session.receive(2, "never")
                assert info.value.peer == 2
                elapsed = trio.current_time() - killed_at
                assert DEAD_AFTER - PING_INTERVAL <= elapsed <= DEAD_AFTER + 0.01
            await local[1].wait_unlinked(2, DEAD_AFTER)
            # the link between parties 0 and 1 is unaffected
            async with local[0].session("t") as s0, local[1].session("t") as s1:
                await s0.send(1, "x", b"still here")
                assert await s1.receive(0, "x") == b"still here"


async def test_restarted_peer_is_relinked(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        async with open_local_mesh(3, memory=True) as local:
            await local.wait_linked(10)
            await local.kill(1)
            await trio.sleep(60)  # long enough for the backoff to reach its cap
            assert local[0].link_statistics(1).state == "down"
            started = trio.current_time()
            await local.start(1)
            await local.wait_linked(RECONNECT_MAX + 1)
            assert trio.current_time() - started <= RECONNECT_MAX + DEAD_AFTER
            await run_sessions(local, 2, seed=3)


async def test_restarted_peer_is_relinked_over_sockets() -> None:
    with trio.fail_after(20):
        async with open_local_mesh(3) as local:
            await local.wait_linked(5)
            since = local[2].link_statistics(1).since
            await local.stop(1)
            await local[0].wait_unlinked(1, 2)
            await local.start(1)
            await local.wait_linked(RECONNECT_MAX + 2)
            assert local[0].link_statistics(1).connects == 2
            assert local[2].link_statistics(1).since > since
            await run_sessions(local, 2, seed=4)


async def test_unknown_key_is_refused_on_both_ends(logs: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(10):
        async with open_local_mesh(2, start=False) as local:
            stranger = SigningKey.generate()
            # Party 1 runs with a key that party 0 does not know.
            text = base64.b64encode(bytes(stranger.verify_key)).decode()
            vc = local.configs[1].vc
            local.configs[1] = replace(
                local.configs[1],
                vc=replace(vc, parties=tuple(replace(p, public_key=text) if p.id == 1 else p for p in vc.parties)),
            )
            local.identities[1] = stranger
            await local.start(1)
            await local.start(0)
            while local[0].link_statistics(1).last_error is None:
                await trio.sleep(0.01)
            error = local[0].link_statistics(1).last_error or ""
            assert f"presented identity key {text}" in error and "pinned" in error
            while not any("refused a peer connection" in r.getMessage() for r in logs.records):
                await trio.sleep(0.01)
    refused = [r.getMessage() for r in logs.records if "refused a peer connection" in r.getMessage()]
    assert "refused by party 0" in refused[0] or "refused by the" in refused[0]
    assert any("cannot link with party 1" in r.getMessage() and r.levelno == logging.WARNING for r in logs.records)


async def test_parameter_mismatch_is_refused_and_retried(logs: pytest.LogCaptureFixture) -> None:
    def mascot(party: int, config: VcpConfig) -> VcpConfig:
        return replace(config, vc=replace(config.vc, offline="mascot")) if party == 1 else config

    with trio.fail_after(15):
        async with open_local_mesh(2, adjust=mascot) as local:
            while local[0].link_statistics(1).last_error is None:
                await trio.sleep(0.01)
            error = local[0].link_statistics(1).last_error or ""
            assert "offline differs: ours dealer, theirs mascot" in error
            assert local[0].link_statistics(1).state == "down"
            # The operator fixes party 1's configuration; the link comes up by itself.
            await local.stop(1)
            local.configs[1] = replace(local.configs[1], vc=local.configs[0].vc)
            await local.start(1)
            await local.wait_linked(RECONNECT_MAX + 2)
    texts = [r.getMessage() for r in logs.records]
    assert any("refused a peer connection" in t and "offline differs: ours mascot, theirs dealer" in t for t in texts)


class Proxy:
    """A websocket-level man in the middle, between party 0 and party 1.

    It relays every message; when armed, it attacks the next message the
    dialler sends after the handshake (tamper, replay or truncate), once.
    """

    def __init__(self, target: Callable[[], str]) -> None:
        self.target = target
        self.attack: str | None = None
        self.done = trio.Event()

    async def handle(self, request: WebSocketRequest) -> None:
        client = await request.accept()
        async with open_websocket_url(self.target()) as server, trio.open_nursery() as nursery:
            nursery.start_soon(self.pump, client, server, True, nursery.cancel_scope)
            nursery.start_soon(self.pump, server, client, False, nursery.cancel_scope)
        await client.aclose()

    async def pump(
        self, src: WebSocketConnection, dst: WebSocketConnection, attack: bool, scope: trio.CancelScope
    ) -> None:
        count = 0
        try:
            while True:
                message = await src.get_message()
                assert isinstance(message, bytes)
                count += 1
                if attack and count > 2 and self.attack is not None:
                    mode, self.attack = self.attack, None
                    if mode == "tamper":
                        message = message[:-3] + bytes([message[-3] ^ 0x40]) + message[-2:]
                    elif mode == "replay":
                        await dst.send_message(message)
                    elif mode == "truncate":
                        message = message[:-5]
                    self.done.set()
                await dst.send_message(message)
        except ConnectionClosed:
            scope.cancel()


@pytest.mark.parametrize("attack", ["tamper", "replay", "truncate"])
async def test_attacked_frames_drop_the_link_and_fail_sessions(
    nursery: trio.Nursery, logs: pytest.LogCaptureFixture, attack: str
) -> None:
    target: list[str] = []
    proxy = Proxy(lambda: target[0])
    bound = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listeners = await nursery.start(serve_websocket_listeners, proxy.handle, bound)
    proxy_address = f"127.0.0.1:{listeners[0].socket.getsockname()[1]}"

    def via_proxy(party: int, config: VcpConfig) -> VcpConfig:
        if party == 1:
            target.append(ws_url(f"{config.peer_listen[0]}:{config.peer_listen[1]}", "/peer"))
        return replace(config, vc=route(config.vc, 1, proxy_address))

    with trio.fail_after(15):
        async with open_local_mesh(2, adjust=via_proxy) as local:
            await local.wait_linked(5)
            async with local[1].session("s") as session:
                proxy.attack = attack
                with pytest.raises(PeerUnavailable, match="bad data from party 0") as info:
                    await session.receive(0, "never")
                assert info.value.peer == 0
            assert proxy.done.is_set()
            # The dialler reconnects (the proxy now behaves) and sessions work again.
            await local.wait_linked(RECONNECT_MAX + 2)
            await run_sessions(local, 1, seed=5)
    expected = {"tamper": "failed authentication", "replay": "out of sequence", "truncate": "failed authentication"}
    assert any(expected[attack] in r.getMessage() and r.levelno == logging.WARNING for r in logs.records)


def dial_as(local: LocalMesh, party: int, target: int) -> AbstractAsyncContextManager[SecureConnection]:
    """Open a raw peer connection to ``target`` with ``party``'s identity (an adversary with its key)."""
    config = local.configs[party]
    handshake = Handshake.initiator(
        local.identities[party], role="peer", expected_key=config.vc.party(target).public_key_bytes,
        params=config.vc.handshake_fields(), party=party, expected_party=target,
    )  # fmt: skip
    url = ws_url(config.vc.party(target).peer_address, "/peer")
    return open_secure_connection(url, handshake, peer=target)


async def test_higher_party_may_not_dial() -> None:
    with trio.fail_after(10):
        async with open_local_mesh(3) as local:
            await local.wait_linked(5)
            async with dial_as(local, 2, 0) as conn:
                with pytest.raises(trio.EndOfChannel):
                    await conn.receive()
                assert "party 2 must not dial party 0" in conn.close_reason
            assert local[0].link_statistics(2).state == "up"


async def test_newest_connection_of_a_pair_wins() -> None:
    with trio.fail_after(15):
        async with open_local_mesh(2) as local:
            await local.wait_linked(5)
            async with dial_as(local, 0, 1) as conn:
                # Party 1 takes ours, closes party 0's link; party 0 redials and wins it back.
                with pytest.raises(trio.EndOfChannel):
                    while True:
                        await conn.receive()  # party 1's keepalives, until replaced
                assert conn.close_reason == "replaced by a newer connection"
            await local.wait_linked(RECONNECT_MAX + 2)
            assert local[1].link_statistics(0).connects == 3
            assert local[0].link_statistics(1).connects == 2


async def test_messages_are_attributed_to_the_authenticated_party_and_garbage_drops_the_link() -> None:
    with trio.fail_after(15):
        async with open_local_mesh(3) as local:
            await local.wait_linked(5)
            await local.stop(0)
            # Someone holding party 0's key (here: the test) dials party 2.
            async with dial_as(local, 0, 2) as conn:
                await local[2].wait_linked(5, peers=[0])
                async with local[2].session("s") as session:
                    await conn.send(encode_peer(PeerMessage("s", "x", b"from zero")))
                    assert await session.receive(0, "x") == b"from zero"
                    with trio.move_on_after(0.2) as nothing:
                        await session.receive(1, "x")
                    assert nothing.cancelled_caught  # never attributed to another party
                    await conn.send(b"\xc1 not msgpack")
                    with pytest.raises(PeerUnavailable, match="bad data from party 0: malformed peer message") as info:
                        await session.receive(0, "y")
                    assert info.value.peer == 0
                with pytest.raises((trio.EndOfChannel, PeerUnavailable)):
                    while True:
                        await conn.receive()
            assert local[2].link_statistics(0).state == "down"


async def test_wait_linked_names_the_missing_peer() -> None:
    with trio.fail_after(10):
        async with open_local_mesh(3) as local:
            await local.stop(1)
            await local.stop(2)
            mesh: PeerMesh = local[0]
            with pytest.raises(PeerUnavailable, match="not linked after 0.5 s; last error: .*cannot connect") as info:
                await mesh.wait_linked(0.5)
            assert info.value.peer in (1, 2)
            stats = mesh.statistics()
            assert not stats.all_up
            assert all(link.state == "down" and link.dials for link in stats.links)
            with pytest.raises(PeerUnavailable, match="peer VCP 1"):
                async with mesh.session("x") as session:
                    await session.send(1, "y", 1)
