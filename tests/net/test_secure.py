"""Secure connections: handshake over websockets, messages, backpressure, bad frames, errors."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket
import wsproto.frame_protocol
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from vcpd.errors import AuthenticationError, ChannelError, HandshakeError, ParameterMismatch, PeerUnavailable
from vcpd.net._masking import WSPROTO_MASKER, FastXorMasker
from vcpd.net.secure import (
    SEND_HIGH_WATER,
    SecureConnection,
    accept_secure_connection,
    open_secure_connection,
    secure_websocket,
)
from vcpd.net.websocket import (
    WS_MAX_MESSAGE,
    open_task_group,
    serve_websocket_listeners,
    split_ws_url,
    ws_url,
)
from vcpd.wire import MAX_WIRE_FRAME, Handshake, fast_ciphers

KEYS = [SigningKey(bytes([i + 7]) * 32) for i in range(4)]
PUB = [bytes(k.verify_key) for k in KEYS]
PARAMS = {"prime": "198766463529478683931867765928436695041", "offline": "dealer", "parties": "3"}
PARAMS.update({f"party.{i}.key": base64.b64encode(PUB[i]).decode() for i in range(3)})

Handler = Callable[[SecureConnection], Awaitable[None]]


def responder(party: int = 1, *, params: dict[str, str] = PARAMS, ciphers: tuple[str, ...] | None = None) -> Handshake:
    return Handshake.responder(KEYS[party], role="peer", params=params, party=party,
                               peer_keys={i: PUB[i] for i in range(3) if i != party}, ciphers=ciphers)  # fmt: skip


def initiator(
    party: int = 0, them: int = 1, *, key: SigningKey | None = None, params: dict[str, str] = PARAMS,
    ciphers: tuple[str, ...] | None = None,
) -> Handshake:  # fmt: skip
    return Handshake.initiator(key or KEYS[party], role="peer", expected_key=PUB[them], params=params,
                               party=party, expected_party=them, ciphers=ciphers)  # fmt: skip


async def start_server(
    nursery: trio.Nursery, handler: Handler, *, make_handshake: Callable[[], Handshake] = responder
) -> tuple[str, list[BaseException]]:
    """A websocket server that authenticates each connection and runs ``handler``; errors are collected."""
    errors: list[BaseException] = []

    async def serve(request: trio_websocket.WebSocketRequest) -> None:
        try:
            async with accept_secure_connection(request, make_handshake(), name="client") as conn:
                await handler(conn)
        except Exception as exc:
            errors.append(exc)

    bound = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listeners = await nursery.start(serve_websocket_listeners, serve, bound)
    return f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}/peer", errors


async def echo(conn: SecureConnection) -> None:
    async for message in conn:
        await conn.send(message)


def test_urls() -> None:
    assert ws_url("127.0.0.1:7000", "/peer") == "ws://127.0.0.1:7000/peer"
    assert ws_url("[::1]:7000", "/api") == "ws://[::1]:7000/api"
    assert split_ws_url("ws://[::1]:7000/api") == ("::1", 7000, "/api")
    with pytest.raises(ValueError, match="expected ws://"):
        split_ws_url("wss://example.org/api")


async def test_messages_round_trip_including_large_and_concurrent(nursery: trio.Nursery) -> None:
    url, errors = await start_server(nursery, echo)
    big = [bytes([i]) * (16 << 20) for i in range(3)]
    with trio.fail_after(30):
        async with open_secure_connection(url, initiator(), peer=1) as conn:
            assert conn.peer_party == 1 and conn.peer_key == PUB[1]
            assert conn.result.cipher == fast_ciphers()[0]  # AEGIS-256 where this machine has hardware AES
            await conn.send(b"hello")
            assert await conn.receive() == b"hello"
            async with trio.open_nursery() as senders:
                for message in big:
                    senders.start_soon(conn.send, message)
                    senders.start_soon(conn.send, b"small")
                received = sorted([await conn.receive() for _ in range(6)], key=len)
            assert received[:3] == [b"small"] * 3
            assert sorted(received[3:]) == big
            stats = conn.statistics()
            assert stats.messages_sent == stats.messages_received == 7
            assert stats.state == "open"
            assert "open" in repr(conn)
    assert errors == []


@pytest.mark.parametrize(
    ("offered", "expected"),
    [(("aegis256", "chacha20poly1305"), "aegis256"), (("chacha20poly1305",), "chacha20poly1305")],
    ids=["aegis256", "chacha20poly1305"],
)
async def test_the_negotiated_cipher_carries_messages_end_to_end(
    nursery: trio.Nursery, offered: tuple[str, ...], expected: str
) -> None:
    seen: list[str] = []

    async def echo_and_record(conn: SecureConnection) -> None:
        seen.append(conn.result.cipher)
        await echo(conn)

    url, errors = await start_server(nursery, echo_and_record, make_handshake=lambda: responder(ciphers=offered))
    message = bytes(range(256)) * (5 << 12)  # 5 MiB: several frames each way
    with trio.fail_after(30):
        async with open_secure_connection(url, initiator(ciphers=("aegis256", "chacha20poly1305")), peer=1) as conn:
            assert conn.result.cipher == expected
            await conn.send(message)
            assert await conn.receive() == message
            await conn.send(b"small")
            assert await conn.receive() == b"small"
    assert seen == [expected]
    assert errors == []


async def test_clean_close_carries_the_reason(nursery: trio.Nursery) -> None:
    seen: list[str] = []

    async def close_with_reason(conn: SecureConnection) -> None:
        await conn.send(b"last words")
        await conn.aclose("going home")

    url, errors = await start_server(nursery, close_with_reason)
    with trio.fail_after(5):
        async with open_secure_connection(url, initiator(), peer=1) as conn:
            async for message in conn:  # ends at the authenticated close frame
                seen.append(message.decode())
            assert conn.close_reason == "going home"
            assert conn.state == "closed"
            with pytest.raises(trio.EndOfChannel):
                await conn.receive()
            with pytest.raises(PeerUnavailable, match="closed the connection"):
                await conn.send(b"anyone?")
        with pytest.raises(trio.ClosedResourceError):
            await conn.send(b"after close")
    assert seen == ["last words"]
    assert errors == []


@pytest.mark.parametrize("attack", ["tamper", "replay", "truncate", "short", "text"])
async def test_bad_frames_close_the_connection(nursery: trio.Nursery, attack: str) -> None:
    got: list[bytes] = []
    done = trio.Event()

    async def record(conn: SecureConnection) -> None:
        try:
            async for message in conn:
                got.append(message)
        finally:
            done.set()

    url, errors = await start_server(nursery, record)
    with trio.fail_after(5):
        async with open_secure_connection(url, initiator(), peer=1) as conn:
            # Frames made directly on the channel (the writer is idle), then
            # pushed to the websocket as a man in the middle would.
            frame = conn.result.channel.encrypt_message(b"legit")[0]
            ws = conn.websocket
            if attack == "tamper":
                await ws.send_message(frame[:30] + bytes([frame[30] ^ 1]) + frame[31:])
            elif attack == "replay":
                await ws.send_message(frame)
                await ws.send_message(frame)
            elif attack == "truncate":
                await ws.send_message(frame[:-1])
            elif attack == "short":
                await ws.send_message(frame[:20])
            else:
                await ws.send_message("text")
            await done.wait()
            # The server dropped the connection: the client sees the cut.
            with pytest.raises(PeerUnavailable, match="peer VCP 1 .*cut without a close frame"):
                await conn.receive()
    assert got == ([b"legit"] if attack == "replay" else [])
    assert len(errors) == 1 and isinstance(errors[0], ChannelError)
    expected = {
        "tamper": "failed authentication", "replay": "out of sequence", "truncate": "failed authentication",
        "short": "truncated frame", "text": "text message",
    }[attack]  # fmt: skip
    assert expected in str(errors[0])


async def test_unknown_peer_key_is_refused_on_both_ends(nursery: trio.Nursery) -> None:
    url, errors = await start_server(nursery, echo)
    with trio.fail_after(5):
        with pytest.raises(AuthenticationError, match="refused by party 1: party 1 does not know key"):
            async with open_secure_connection(url, initiator(key=KEYS[3]), peer=1):
                pass
        while not errors:
            await trio.sleep(0.01)
    assert isinstance(errors[0], AuthenticationError)
    assert "unknown peer" in str(errors[0]) or "pinned key" in str(errors[0])


async def test_server_with_another_key_is_refused(nursery: trio.Nursery) -> None:
    url, _ = await start_server(nursery, echo, make_handshake=lambda: responder(2))
    with trio.fail_after(5), pytest.raises(AuthenticationError, match="key pinned for it"):
        async with open_secure_connection(url, initiator(), peer=1):
            pass


async def test_parameter_mismatch_names_the_difference(nursery: trio.Nursery) -> None:
    mascot = {**PARAMS, "offline": "mascot"}
    url, errors = await start_server(nursery, echo, make_handshake=lambda: responder(params=mascot))
    with trio.fail_after(5):
        with pytest.raises(ParameterMismatch, match="offline differs: ours dealer, theirs mascot"):
            async with open_secure_connection(url, initiator(), peer=1):
                pass
        while not errors:
            await trio.sleep(0.01)
    assert isinstance(errors[0], ParameterMismatch) and "offline" in str(errors[0])


async def test_connect_failures_are_translated(nursery: trio.Nursery) -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()
    with trio.fail_after(5):
        expected = f"peer VCP 1 is unavailable: cannot connect to ws://127.0.0.1:{port}"
        with pytest.raises(PeerUnavailable, match=expected):
            async with open_secure_connection(f"ws://127.0.0.1:{port}/peer", initiator(), peer=1):
                pass
        with pytest.raises(HandshakeError, match="cannot connect"):
            async with open_secure_connection(f"ws://127.0.0.1:{port}/peer", initiator()):
                pass

    async def reject(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(404)

    server = await nursery.start(trio_websocket.serve_websocket, reject, "127.0.0.1", 0, None)
    with trio.fail_after(5), pytest.raises(PeerUnavailable, match="rejected with HTTP status 404"):
        async with open_secure_connection(f"ws://127.0.0.1:{server.port}/nope", initiator(), peer=1):
            pass


async def test_silent_server_times_out_the_handshake(nursery: trio.Nursery) -> None:
    async def mute(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.get_message()
        await trio.sleep_forever()

    server = await nursery.start(trio_websocket.serve_websocket, mute, "127.0.0.1", 0, None)
    with trio.fail_after(5), pytest.raises(PeerUnavailable, match="handshake not completed within 0.3 s"):
        async with open_secure_connection(
            f"ws://127.0.0.1:{server.port}/peer", initiator(), peer=1, handshake_timeout=0.3
        ):
            pass


async def test_send_waits_while_the_peer_does_not_read(nursery: trio.Nursery) -> None:
    stop = trio.Event()

    async def sulk(conn: SecureConnection) -> None:
        await stop.wait()

    url, _ = await start_server(nursery, sulk)
    chunk = bytes(1 << 20)
    sent = 0
    with trio.fail_after(10):
        async with open_secure_connection(url, initiator(), peer=1) as conn:
            with trio.move_on_after(1) as blocked:
                for _ in range(200):
                    await conn.send(chunk)
                    sent += 1
                    assert conn.statistics().pending_bytes <= SEND_HIGH_WATER + len(chunk)
            assert blocked.cancelled_caught, "send never waited: the queue grows without bound"
            assert sent < 200
            await conn.aclose(timeout=0.1)  # it cannot drain: do not wait for it
            stop.set()


# ------------------------------------------------------------- memory streams


@asynccontextmanager
async def memory_pair(
    client_hs: Handshake, server_hs: Handshake
) -> AsyncIterator[tuple[SecureConnection, SecureConnection]]:
    """Both ends of a secure connection over memory streams (real websocket protocol)."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    ends: dict[str, SecureConnection] = {}
    ready = trio.Event()
    async with open_task_group() as nursery:

        async def run_side(name: str, ws: Any, hs: Handshake) -> None:
            async with secure_websocket(ws, hs, name=name) as conn:
                ends[name] = conn
                if len(ends) == 2:
                    ready.set()
                await trio.sleep_forever()

        async def server_side() -> None:
            request = await trio_websocket.wrap_server_stream(nursery, server_stream, max_message_size=WS_MAX_MESSAGE)
            await run_side("server", await request.accept(), server_hs)

        nursery.start_soon(server_side)
        client_ws = await trio_websocket.wrap_client_stream(
            nursery, client_stream, "memory", "/peer", max_message_size=WS_MAX_MESSAGE  # type: ignore[arg-type]
        )
        nursery.start_soon(run_side, "client", client_ws, client_hs)
        await ready.wait()
        yield ends["client"], ends["server"]
        nursery.cancel_scope.cancel()


async def test_memory_streams_round_trip_and_close(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        async with memory_pair(initiator(), responder()) as (client, server):
            await client.send(b"x" * (MAX_WIRE_FRAME * 2))
            assert await server.receive() == b"x" * (MAX_WIRE_FRAME * 2)
            await server.aclose("bye")
            with pytest.raises(trio.EndOfChannel):
                await client.receive()
            assert client.close_reason == "bye"


async def test_memory_streams_replay_is_detected(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        async with memory_pair(initiator(), responder()) as (client, server):
            frame = client.result.channel.encrypt_message(b"once")[0]
            await client.websocket.send_message(frame)
            await client.websocket.send_message(frame)
            assert await server.receive() == b"once"
            with pytest.raises(ChannelError, match="out of sequence"):
                await server.receive()
            assert server.state == "broken"
            with pytest.raises(ChannelError):
                await server.send(b"no")


# ------------------------------------------------------------------- masking


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=4, max_size=4), chunks=st.lists(st.binary(max_size=70), max_size=5))
def test_fast_masking_equals_wsprotos(key: bytes, chunks: list[bytes]) -> None:
    fast, slow = FastXorMasker(key), WSPROTO_MASKER(bytearray(key))
    for chunk in chunks:  # consecutive chunks continue the key where the last stopped
        assert fast.process(chunk) == slow.process(bytearray(chunk))


async def test_fast_masking_is_installed_by_connecting(nursery: trio.Nursery) -> None:
    url, _ = await start_server(nursery, echo)
    async with open_secure_connection(url, initiator(), peer=1) as conn:
        await conn.send(b"m" * 100_000)
        assert await conn.receive() == b"m" * 100_000
    assert wsproto.frame_protocol.XorMaskerSimple is FastXorMasker
