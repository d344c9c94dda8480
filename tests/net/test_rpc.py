"""The client API transport: multiplexed calls, typed errors, authentication, garbage."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from functools import partial
from typing import Any

import cbor2
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from vcpd.errors import AuthenticationError, ParameterMismatch, PeerUnavailable, RequestError, TuplesExhausted
from vcpd.net.rpc import error_code, open_rpc_connection, serve_rpc
from vcpd.net.secure import SecureConnection, open_secure_connection
from vcpd.wire import ErrorResponse, Handshake, Request, Response, decode_response, encode_request

VCP = SigningKey(b"\x05" * 32)
VCP_KEY = bytes(VCP.verify_key)
PARAMS = {"prime": "198766463529478683931867765928436695041", "offline": "dealer", "parties": "2"}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    logger = logging.getLogger("vcpd")
    saved = logger.propagate
    logger.propagate = True
    caplog.set_level(logging.INFO, logger="vcpd")
    yield caplog
    logger.propagate = saved


class Api:
    """A small request handler: echo, sleep, errors, a gate to hold requests."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.gate = trio.Event()

    async def __call__(self, client: str, request: Request) -> Response | ErrorResponse:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            args = request.args
            if request.op == "echo":
                return Response(request.id, {"client": client, "args": args})
            if request.op == "sleep":
                await trio.sleep(args["seconds"])
                return Response(request.id, args["seconds"])
            if request.op == "held":
                await self.gate.wait()
                return Response(request.id, "released")
            if request.op == "refuse":
                return ErrorResponse(request.id, "not-allowed", "you may not")
            if request.op == "raise-request":
                raise RequestError("not-found", "no secret with that id")
            if request.op == "raise-vcp":
                raise TuplesExhausted("triple", 10, 3)
            if request.op == "unencodable":
                return Response(request.id, object())
            raise ValueError("a bug")
        finally:
            self.running -= 1


async def echo_only(client: str, request: Request) -> Response | ErrorResponse:
    """For garbage tests: nothing a random request can do blocks."""
    if request.op == "echo":
        return Response(request.id, {"client": client, "args": request.args})
    return ErrorResponse(request.id, "unknown-op", request.op)


async def start(nursery: trio.Nursery, api: Any, **kwargs: Any) -> str:
    host, port = await nursery.start(partial(serve_rpc, ("127.0.0.1", 0), VCP, PARAMS, api, party=1, **kwargs))
    return f"ws://{host}:{port}/api"


def connect(url: str, **kwargs: Any) -> Any:
    kwargs.setdefault("expected_key", VCP_KEY)
    return open_rpc_connection(url, SigningKey.generate(), **kwargs)


async def test_concurrent_calls_are_multiplexed(nursery: trio.Nursery) -> None:
    api = Api()
    url = await start(nursery, api)
    finished: list[float] = []
    with trio.fail_after(10):
        async with connect(url) as rpc:
            assert rpc.party == 1 and rpc.server_key == VCP_KEY
            assert dict(rpc.server_params) == PARAMS

            async def call(seconds: float) -> None:
                assert await rpc.call("sleep", {"seconds": seconds}) == seconds
                finished.append(seconds)

            async with trio.open_nursery() as calls:
                for seconds in (0.3, 0.1, 0.2, 0.0):
                    calls.start_soon(call, seconds)
            assert api.most >= 3  # handled concurrently, not one after the other
            assert finished == [0.0, 0.1, 0.2, 0.3]  # answered as they finished
            assert rpc.statistics().calls == 4 and rpc.statistics().in_flight == 0
            assert "open" in repr(rpc)


async def test_any_client_key_is_accepted_and_reported(nursery: trio.Nursery) -> None:
    url = await start(nursery, Api())
    with trio.fail_after(10):
        for _ in range(2):
            client = SigningKey.generate()
            async with open_rpc_connection(url, client, expected_key=VCP_KEY, params=PARAMS, party=1) as rpc:
                result = await rpc.call("echo", {"x": b"\x00\x01", "n": [1, 2]})
            assert result["client"] == base64.b64encode(bytes(client.verify_key)).decode()
            assert result["args"] == {"x": b"\x00\x01", "n": [1, 2]}


async def test_errors_come_back_typed(nursery: trio.Nursery, logs: pytest.LogCaptureFixture) -> None:
    url = await start(nursery, Api())
    with trio.fail_after(10):
        async with connect(url) as rpc:
            cases = {
                "refuse": ("not-allowed", "you may not"),
                "raise-request": ("not-found", "no secret with that id"),
                "raise-vcp": ("tuples-exhausted", "not enough triple tuples"),
                "crash": ("internal", "internal error"),
                "unencodable": ("internal", "cannot be encoded"),
            }
            for op, (code, text) in cases.items():
                with pytest.raises(RequestError) as info:
                    await rpc.call(op)
                assert info.value.code == code and text in info.value.message
            with pytest.raises(ValueError):
                await rpc.call("Not A Valid Op")
            assert (await rpc.call("echo"))["args"] == {}  # the connection survived every error
    assert any("failed" in r.getMessage() and r.levelno == logging.ERROR for r in logs.records)
    assert error_code(TuplesExhausted("bit", 1, 0)) == "tuples-exhausted"


async def test_client_refuses_a_vcp_with_another_key(nursery: trio.Nursery, logs: pytest.LogCaptureFixture) -> None:
    url = await start(nursery, Api())
    with trio.fail_after(10):
        with pytest.raises(AuthenticationError, match="key pinned for it"):
            async with connect(url, expected_key=bytes(SigningKey.generate().verify_key)):
                pass
        while not any("refused by" in r.getMessage() for r in logs.records):
            await trio.sleep(0.01)


async def test_client_expecting_other_parameters_names_the_difference(nursery: trio.Nursery) -> None:
    url = await start(nursery, Api())
    with trio.fail_after(10), pytest.raises(ParameterMismatch, match="offline differs: ours mascot, theirs dealer"):
        async with connect(url, params={**PARAMS, "offline": "mascot"}):
            pass


async def test_client_checks_the_party_id(nursery: trio.Nursery) -> None:
    url = await start(nursery, Api())
    with trio.fail_after(10), pytest.raises(AuthenticationError, match="says it is party 1, not 0"):
        async with connect(url, party=0):
            pass


async def test_pending_calls_fail_when_the_vcp_goes_away(nursery: trio.Nursery) -> None:
    api = Api()
    server_nursery_box: list[trio.Nursery] = []

    async def run_server(task_status: trio.TaskStatus[str]) -> None:
        async with trio.open_nursery() as server_nursery:
            server_nursery_box.append(server_nursery)
            task_status.started(await start(server_nursery, api))

    url = await nursery.start(run_server)
    with trio.fail_after(10):
        async with connect(url) as rpc:

            async def stop_server() -> None:
                while api.running == 0:
                    await trio.sleep(0.01)
                server_nursery_box[0].cancel_scope.cancel()

            nursery.start_soon(stop_server)
            expected = f"peer VCP 1 is unavailable: VCP at {url}: connection lost"
            with pytest.raises(PeerUnavailable, match=expected) as info:
                await rpc.call("held")
            assert info.value.peer == 1
            with pytest.raises(PeerUnavailable):
                await rpc.call("echo")
            assert rpc.statistics().state == "failed"
    with trio.fail_after(10), pytest.raises(PeerUnavailable, match="peer VCP 1 .*cannot connect"):
        async with connect(url, party=1):
            pass


async def test_call_timeout_names_the_vcp(nursery: trio.Nursery) -> None:
    url = await start(nursery, Api())
    with trio.fail_after(10):
        async with connect(url) as rpc:
            with pytest.raises(PeerUnavailable, match="did not answer|no answer to 'held' within 0.2 s"):
                await rpc.call("held", timeout=0.2)
            assert await rpc.call("sleep", {"seconds": 0}) == 0  # the connection is still usable


async def test_in_flight_requests_are_capped_per_connection(nursery: trio.Nursery) -> None:
    api = Api()
    url = await start(nursery, api, max_in_flight=3)
    with trio.fail_after(10):
        async with connect(url) as rpc:
            async with trio.open_nursery() as calls:
                for _ in range(8):
                    calls.start_soon(rpc.call, "held")
                while api.running < 3:
                    await trio.sleep(0.01)
                await trio.sleep(0.1)
                assert api.running == 3  # the rest wait unread on the connection
                api.gate.set()
            assert api.most == 3


async def test_wrong_path_is_rejected(nursery: trio.Nursery) -> None:
    url = await start(nursery, Api())
    with trio.fail_after(10), pytest.raises(PeerUnavailable, match="rejected with HTTP status 404"):
        async with connect(url.replace("/api", "/peer"), party=1):
            pass


# ------------------------------------------------------------------ garbage

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=20), st.binary(max_size=20)
)
CBOR_VALUES = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5) | st.integers(), kids, max_size=4),
    max_leaves=12,
)


def raw_client(url: str) -> Any:
    handshake = Handshake.initiator(SigningKey.generate(), role="client", expected_key=VCP_KEY)
    return open_secure_connection(url, handshake)


async def assert_server_still_answers(url: str) -> None:
    async with connect(url) as rpc:
        assert (await rpc.call("echo", {"ok": True}))["args"] == {"ok": True}


async def answers_until_closed(conn: SecureConnection) -> list[Response | ErrorResponse]:
    answers = []
    with trio.move_on_after(0.5):
        try:
            async for data in conn:
                answers.append(decode_response(data))
        except (PeerUnavailable, trio.EndOfChannel):
            pass
    return answers


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(st.one_of(st.binary(max_size=64), CBOR_VALUES.map(cbor2.dumps)), min_size=1, max_size=5))
async def test_malformed_requests_get_bad_request_answers(messages: list[bytes]) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            url = await start(nursery, echo_only)
            async with raw_client(url) as conn:
                for message in messages:
                    await conn.send(message)
                await conn.send(encode_request(Request(7, "echo", {})))
                answers: list[Response | ErrorResponse] = []
                while not any(isinstance(a, Response) for a in answers):
                    answers.append(decode_response(await conn.receive()))
            for answer in answers[:-1]:
                assert isinstance(answer, ErrorResponse) and answer.code in ("bad-request", "unknown-op")
            await assert_server_still_answers(url)
            nursery.cancel_scope.cancel()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(st.binary(max_size=200), min_size=1, max_size=3), text=st.booleans())
async def test_garbage_frames_close_only_that_connection(frames: list[bytes], text: bool) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            url = await start(nursery, echo_only)
            async with connect(url) as bystander, raw_client(url) as conn:
                for frame in frames:
                    await conn.websocket.send_message(frame.decode("latin-1") if text else frame)
                assert await answers_until_closed(conn) == []
                assert conn.state == "broken"
                assert (await bystander.call("echo"))["args"] == {}
            await assert_server_still_answers(url)
            nursery.cancel_scope.cancel()
