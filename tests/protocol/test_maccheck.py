"""The batched MAC check (vcpd.protocol.maccheck), alone and through OnlineParty."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from vcpd.errors import MacCheckFailure, PeerUnavailable, SessionAborted, VcpError
from vcpd.math import FieldArray, PrimeField, Shares, reconstruct, share_vector
from vcpd.protocol import MAC_FAILURE_MESSAGE, OnlineParty
from vcpd.protocol.maccheck import OpeningLog, batch_mac_check
from vcpd.testing import MemoryHub, open_memory_transports

FIELD = PrimeField()


def alpha_shares(n: int) -> list[int]:
    return FIELD.random(n).to_ints()


def plain_exchange(session: Any) -> Callable[[str, Any], Awaitable[dict[int, Any]]]:
    """A sequential exchange that raises transport errors as they are (no groups)."""
    peers = [k for k in range(session.n_parties) if k != session.party]

    async def exchange(step: str, payload: Any) -> dict[int, Any]:
        for peer in peers:
            await session.send(peer, step, payload)
        result = {session.party: payload}
        for peer in peers:
            result[peer] = await session.receive(peer, step)
        return result

    return exchange


async def run_all(hub: MemoryHub, body: Callable[[int, Any], Awaitable[Any]], *, timeout: float = 20) -> dict[int, Any]:
    """body(party, session) on every party; a VcpError becomes that party's result."""
    results: dict[int, Any] = {}

    async def party(i: int) -> None:
        try:
            async with hub.transports[i].session("mac-test") as session:
                results[i] = await body(i, session)
        except VcpError as exc:
            results[i] = exc

    with trio.fail_after(timeout):
        async with trio.open_nursery() as nursery:
            for i in range(hub.n_parties):
                nursery.start_soon(party, i)
    return results


def opened_logs(
    n: int, alphas: list[int], vectors: list[FieldArray], mac_error: tuple[int, int] | None = None
) -> list[OpeningLog]:
    """Every party's log after opening each vector (as the dealer sees it).

    ``mac_error=(party, position)`` adds 1 to that party's MAC share of that
    element of the first vector.
    """
    alpha = sum(alphas) % FIELD.p
    logs = [OpeningLog() for _ in range(n)]
    for number, x in enumerate(vectors):
        shares = share_vector(FIELD, x, alpha, n)
        for i in range(n):
            macs = shares[i].macs
            if mac_error is not None and number == 0 and mac_error[0] == i:
                macs = macs + FIELD.from_ints([int(j == mac_error[1]) for j in range(len(x))])
            logs[i].record(x, macs)
    return logs


def check_body(logs: list[OpeningLog], alphas: list[int]) -> Callable[[int, Any], Awaitable[int]]:
    async def body(i: int, session: Any) -> int:
        return await batch_mac_check(
            plain_exchange(session),
            session_id=session.id,
            party=i,
            field=FIELD,
            alpha_share=alphas[i],
            log=logs[i],
            label="mac.0",
        )

    return body


# ---------------------------------------------------------------- OpeningLog


def test_opening_log_records_and_clears() -> None:
    log = OpeningLog()
    a, b = FIELD.random(5), FIELD.random(700)
    log.record(a, FIELD.random(5))
    log.record(FIELD.zeros(0), FIELD.zeros(0))
    log.record(b, FIELD.random(700))
    assert log.pending == 705
    values, macs = log.combined(FIELD)
    assert values.equals(FIELD.concat([a, b])) and len(macs) == 705
    log.clear()
    assert log.pending == 0
    with pytest.raises(ValueError, match="MAC shares"):
        log.record(a, FIELD.random(4))


# ---------------------------------------------------------------- the check itself


@pytest.mark.parametrize("n", [2, 3, 5])
async def test_honest_openings_pass_and_clear(n: int, autojump_clock: object) -> None:
    alphas = alpha_shares(n)
    logs = opened_logs(n, alphas, [FIELD.random(3), FIELD.random(600), FIELD.random(1)])
    async with open_memory_transports(n, shuffle=True, seed=n) as hub:
        results = await run_all(hub, check_body(logs, alphas))
        assert hub.messages == 4 * n * (n - 1)  # four rounds
    assert all(results[i] == 604 for i in range(n))
    assert all(log.pending == 0 for log in logs)


async def test_nothing_pending_sends_nothing(autojump_clock: object) -> None:
    alphas = alpha_shares(3)
    logs = [OpeningLog() for _ in range(3)]
    async with open_memory_transports(3) as hub:
        results = await run_all(hub, check_body(logs, alphas))
        assert hub.messages == 0
    assert results == {0: 0, 1: 0, 2: 0}


@pytest.mark.parametrize("n", [2, 3, 5])
async def test_wrong_mac_share_fails_everywhere(n: int, autojump_clock: object) -> None:
    alphas = alpha_shares(n)
    logs = opened_logs(n, alphas, [FIELD.random(20)], mac_error=(n - 1, 19))  # one MAC share off by one
    async with open_memory_transports(n) as hub:
        results = await run_all(hub, check_body(logs, alphas))
    for i in range(n):
        assert isinstance(results[i], MacCheckFailure), results[i]
    # the cheater-free parties see exactly the fixed message: no σ, no share in it
    assert any(results[i].reason == MAC_FAILURE_MESSAGE for i in range(n))
    assert all(logs[i].pending == 20 for i in range(n))  # nothing is marked checked


async def test_shifted_opened_value_is_caught_every_time(autojump_clock: object) -> None:
    """Soundness in practice: a consistent shift δ of an opened value never passes."""
    n = 3
    for trial in range(15):
        alphas = alpha_shares(n)
        x = FIELD.random(12)
        alpha = sum(alphas) % FIELD.p
        shares = share_vector(FIELD, x, alpha, n)
        shifted = x + FIELD.from_ints([0] * 11 + [trial + 1])  # everyone opened the same wrong value
        logs = [OpeningLog() for _ in range(n)]
        for i in range(n):
            logs[i].record(shifted, shares[i].macs)
        async with open_memory_transports(n) as hub:
            results = await run_all(hub, check_body(logs, alphas))
        assert all(isinstance(results[i], MacCheckFailure) for i in range(n))


async def test_broadcast_mismatch_is_caught(autojump_clock: object) -> None:
    """VCP 1 sent different openings to VCPs 0 and 2: every VCP notices before any σ is opened."""
    n = 3
    alphas = alpha_shares(n)
    x = FIELD.random(4)
    shares = share_vector(FIELD, x, sum(alphas) % FIELD.p, n)
    logs = [OpeningLog() for _ in range(n)]
    for i in range(n):
        view = x + FIELD.from_ints([0, 0, 5, 0]) if i == 2 else x  # VCP 2 got a different share from VCP 1
        logs[i].record(view, shares[i].macs)
    steps: list[str] = []

    def watch(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m":
            steps.append(message[2])
        return message

    async with open_memory_transports(n) as hub:
        hub.tamper(watch)
        results = await run_all(hub, check_body(logs, alphas))
    for i in range(n):
        assert isinstance(results[i], MacCheckFailure)
    for i in (0, 2):
        assert "broadcast mismatch" in str(results[i])
    assert "mac.0.sigma.commit" in steps and "mac.0.sigma.open" not in steps


async def test_broadcast_mismatch_is_caught_with_a_malformed_combination(autojump_clock: object) -> None:
    """A VCP whose round-3 combination is not 16 bytes is reported, not crashed on."""
    n = 3
    alphas = alpha_shares(n)
    logs = opened_logs(n, alphas, [FIELD.random(4)])

    def garble(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and s == 1 and message[2] == "mac.0.sigma.commit":
            commitment, _ = message[3]
            return (*message[:3], [commitment, b"short"])
        return message

    async with open_memory_transports(n) as hub:
        hub.tamper(garble)
        results = await run_all(hub, check_body(logs, alphas))
    for i in (0, 2):
        assert isinstance(results[i], MacCheckFailure)
        assert "VCP 1 sent a malformed combination" in str(results[i])


# ---------------------------------------------------------------- through OnlineParty


def dealt(n: int, length: int) -> tuple[list[int], FieldArray, list[Shares]]:
    alphas = alpha_shares(n)
    x = FIELD.random(length)
    return alphas, x, share_vector(FIELD, x, sum(alphas) % FIELD.p, n)


def rename_step(step: str, src: int, new: str) -> Any:
    def fn(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and message[2] == step and s == src:
            return (message[0], message[1], new, message[3])
        return message

    return fn


async def online_all(
    hub: MemoryHub, alphas: list[int], body: Callable[[int, OnlineParty], Awaitable[Any]], **options: Any
) -> dict[int, Any]:
    async def wrapped(i: int, session: Any) -> Any:
        return await body(i, OnlineParty(session, FIELD, alphas[i], **options))

    return await run_all(hub, wrapped, timeout=120)


async def test_check_runs_four_rounds(autojump_clock: object) -> None:
    alphas, _, shares = dealt(3, 50)
    async with open_memory_transports(3, shuffle=True) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            await online.open(shares[i])
            before = online.statistics()
            await online.mac_check()
            await online.mac_check()  # nothing pending: free
            return before, online.statistics()

        results = await online_all(hub, alphas, body)
    before, after = results[0]
    assert after.rounds - before.rounds == 4
    assert (after.mac_checks, after.checked, after.pending) == (1, 50, 0)


async def test_skipped_commitment_fails_instead_of_hanging(autojump_clock: object) -> None:
    """VCP 1 never sends its seed commitment (here: under another label)."""
    alphas, _, shares = dealt(3, 10)
    async with open_memory_transports(3) as hub:
        hub.tamper(rename_step("mac.0.seed.commit", 1, "something.else"))

        async def body(i: int, online: OnlineParty) -> Any:
            await online.open(shares[i])
            await online.mac_check()

        start = trio.current_time()
        results = await online_all(hub, alphas, body, round_timeout=30)
    for i in (0, 2):
        assert isinstance(results[i], SessionAborted)
        assert "mac.0.seed.commit" in str(results[i]) and "VCP 1" in str(results[i])
    assert isinstance(results[1], SessionAborted)
    assert trio.current_time() - start == pytest.approx(30, abs=1)


async def test_commitment_replaced_by_opening_is_invalid(autojump_clock: object) -> None:
    """A party that sends its opening where the commitment belongs."""
    alphas, _, shares = dealt(3, 10)

    def fn(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and message[2] == "mac.0.sigma.commit" and s == 2:
            return (*message[:3], b"\x00" * 16 + b"\x11" * 32)
        return message

    async with open_memory_transports(3) as hub:
        hub.tamper(fn)

        async def body(i: int, online: OnlineParty) -> Any:
            await online.reveal(shares[i])

        results = await online_all(hub, alphas, body)
    for i in (0, 1):
        assert isinstance(results[i], MacCheckFailure)
        assert "invalid commitment from VCP 2" in str(results[i])


@pytest.mark.parametrize("step", ["mac.0.seed.open", "mac.0.sigma.open"])
async def test_wrong_commitment_opening_is_caught(step: str, autojump_clock: object) -> None:
    alphas, _, shares = dealt(3, 10)

    def fn(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and message[2] == step and s == 0:
            payload = message[3]
            return (*message[:3], bytes([payload[0] ^ 1]) + payload[1:])
        return message

    async with open_memory_transports(3, shuffle=True) as hub:
        hub.tamper(fn)

        async def body(i: int, online: OnlineParty) -> Any:
            return await online.reveal(shares[i])

        results = await online_all(hub, alphas, body)
    for i in (1, 2):
        assert isinstance(results[i], MacCheckFailure)
        assert "invalid commitment from VCP 0" in str(results[i])


async def test_peer_going_away_mid_check(autojump_clock: object) -> None:
    alphas, _, shares = dealt(3, 10)
    async with open_memory_transports(3) as hub:

        def fn(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
            if message[0] == "m" and message[2] == "mac.0.sigma.commit" and s == 2:
                hub.isolate(2)  # VCP 2 dies while sending its σ commitment
            return message

        hub.tamper(fn)

        async def body(i: int, online: OnlineParty) -> Any:
            return await online.reveal(shares[i])

        results = await online_all(hub, alphas, body, round_timeout=None)
    for i in (0, 1):
        assert isinstance(results[i], PeerUnavailable | SessionAborted)
        assert not isinstance(results[i], MacCheckFailure)
    assert isinstance(results[0], PeerUnavailable) and results[0].peer == 2


async def test_object_is_unusable_after_a_failed_check(autojump_clock: object) -> None:
    alphas, x, shares = dealt(2, 10)
    bad = Shares(shares[1].values, shares[1].macs + 1)
    async with open_memory_transports(2) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            try:
                await online.reveal(shares[0] if i == 0 else bad)
            except MacCheckFailure:
                pass
            messages = hub.messages
            with pytest.raises(MacCheckFailure):
                await online.open(shares[i])
            assert hub.messages == messages  # refused locally
            return True

        results = await online_all(hub, alphas, body)
    assert results == {0: True, 1: True}
    assert reconstruct(shares).equals(x)


# ---------------------------------------------------------------- early seed commitments, flights


FAST = {"precommit_seed": True, "bundle_flights": True}


@pytest.mark.parametrize("options", [{"precommit_seed": True}, FAST], ids=["precommit", "precommit+bundle"])
async def test_early_seed_commitment_makes_the_check_three_rounds(options: dict[str, bool], autojump_clock: object) -> None:
    alphas, x, shares = dealt(3, 50)
    async with open_memory_transports(3, shuffle=True) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            opened = await online.open(shares[i])
            before = online.statistics()
            await online.mac_check()
            second = await online.reveal(shares[i])  # a second check commits its seed early too
            return opened, before, online.statistics(), second

        results = await online_all(hub, alphas, body, **options)
    for i in range(3):
        opened, before, after, second = results[i]
        assert opened.equals(x) and second.equals(x)
        assert after.rounds - before.rounds == 3 + 1 + 3  # check, open, check
        assert (after.mac_checks, after.checked, after.pending) == (2, 100, 0)


@pytest.mark.parametrize("options", [{"precommit_seed": True}, FAST], ids=["precommit", "precommit+bundle"])
async def test_early_seed_check_catches_a_shifted_opening(options: dict[str, bool], autojump_clock: object) -> None:
    alphas, _, shares = dealt(3, 20)

    def shift(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and s == 1 and message[2] == "open.0":
            return (*message[:3], (FIELD.from_bytes(message[3]) + 1).to_bytes())
        if message[0] == "m" and s == 1 and message[2].startswith("open.0+"):  # bundled flight
            first, *rest = message[3]
            return (*message[:3], [(FIELD.from_bytes(first) + 1).to_bytes(), *rest])
        return message

    async with open_memory_transports(3) as hub:
        hub.tamper(shift)
        results = await online_all(hub, alphas, lambda i, online: online.reveal(shares[i]), **options)
    assert all(isinstance(results[i], MacCheckFailure) for i in range(3)), results


async def test_early_seed_commitment_must_match_its_opening(autojump_clock: object) -> None:
    alphas, _, shares = dealt(3, 10)

    def fn(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and s == 0 and message[2] == "mac.0.seed.reveal":
            opening = message[3]
            return (*message[:3], bytes([opening[0] ^ 1]) + opening[1:])
        return message

    async with open_memory_transports(3, shuffle=True) as hub:
        hub.tamper(fn)
        results = await online_all(hub, alphas, lambda i, online: online.reveal(shares[i]), precommit_seed=True)
    for i in (1, 2):
        assert isinstance(results[i], MacCheckFailure)
        assert "invalid commitment from VCP 0" in str(results[i])


async def test_bundled_flight_is_one_message_per_peer(autojump_clock: object) -> None:
    alphas, x, shares = dealt(3, 8)
    y = FIELD.random(8)
    y_shares = share_vector(FIELD, y, sum(alphas) % FIELD.p, 3)
    async with open_memory_transports(3) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            queued = online.open_with_next(shares[i])
            (opened_y,) = await online.open_many([y_shares[i]])
            first = queued.value
            await online.mac_check()
            return first, opened_y, online.statistics()

        results = await online_all(hub, alphas, body, **FAST)
    for i in range(3):
        first, opened_y, stats = results[i]
        assert first.equals(x) and opened_y.equals(y)
        # open.0 (queued), open.1 and the early seed commitment in one message to each of 2 peers,
        # then the three rounds of the check: one message each.
        assert stats.rounds == 4 and stats.open_rounds == 2 and stats.messages_sent == 2 * 4


async def test_malformed_bundle_fails_the_session(autojump_clock: object) -> None:
    alphas, _, shares = dealt(3, 4)

    def fn(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and s == 2 and "+" in message[2]:
            return (*message[:3], message[3][:1])  # a payload missing
        return message

    async with open_memory_transports(3) as hub:
        hub.tamper(fn)
        results = await online_all(hub, alphas, lambda i, online: online.reveal(shares[i]), **FAST)
    for i in (0, 1):
        assert isinstance(results[i], SessionAborted) and "malformed bundle" in str(results[i])
