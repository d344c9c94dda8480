"""Hash commitments, commit-then-open rounds and coin tossing (vcpd.protocol.commit)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from vcpd.errors import MacCheckFailure, SessionAborted, VcpError
from vcpd.protocol.commit import (
    COMMITMENT_BYTES,
    FAILURE_MARKER,
    NONCE_BYTES,
    SEED_BYTES,
    coin_toss,
    combine_seed,
    commit,
    commit_and_open,
    open_commitment,
)
from vcpd.testing import MemoryHub, open_memory_transports

# ---------------------------------------------------------------- the scheme


@given(party=st.integers(0, 100), session=st.text(max_size=20), label=st.text(max_size=20), message=st.binary())
def test_commitment_opens_to_its_message(party: int, session: str, label: str, message: bytes) -> None:
    commitment, opening = commit(party, session, label, message)
    assert len(commitment) == COMMITMENT_BYTES
    assert len(opening) == len(message) + NONCE_BYTES
    assert open_commitment(party, session, label, commitment, opening) == message


def test_commitment_is_bound_to_party_session_label_and_message() -> None:
    commitment, opening = commit(1, "sess", "mac.0.sigma", b"message")
    assert open_commitment(2, "sess", "mac.0.sigma", commitment, opening) is None
    assert open_commitment(1, "other", "mac.0.sigma", commitment, opening) is None
    assert open_commitment(1, "sess", "mac.1.sigma", commitment, opening) is None
    assert open_commitment(1, "sess", "mac.0.sigma", commitment, b"massage" + opening[-NONCE_BYTES:]) is None
    flipped = opening[:-1] + bytes([opening[-1] ^ 1])
    assert open_commitment(1, "sess", "mac.0.sigma", commitment, flipped) is None


def test_commitment_hides_with_fresh_nonces() -> None:
    first, _ = commit(0, "s", "l", b"same")
    second, _ = commit(0, "s", "l", b"same")
    assert first != second


def test_length_prefixes_separate_fields() -> None:
    """Moving bytes between session id and label must not keep a commitment valid."""
    commitment, opening = commit(0, "ab", "c", b"m")
    assert open_commitment(0, "a", "bc", commitment, opening) is None


@pytest.mark.parametrize(
    ("commitment", "opening"),
    [
        (None, b"x" * 40),
        (b"short", b"x" * 40),
        (b"c" * COMMITMENT_BYTES, None),
        (b"c" * COMMITMENT_BYTES, b"too short"),
        (b"c" * COMMITMENT_BYTES, ["not", "bytes"]),
        ("c" * COMMITMENT_BYTES, b"x" * 40),
    ],
)
def test_malformed_input_never_opens(commitment: object, opening: object) -> None:
    assert open_commitment(0, "s", "l", commitment, opening) is None


def test_combine_seed_depends_on_every_contribution() -> None:
    base = {0: b"a" * SEED_BYTES, 1: b"b" * SEED_BYTES}
    seed = combine_seed("s", "l", base)
    assert len(seed) == SEED_BYTES
    assert combine_seed("s", "l", {0: b"a" * SEED_BYTES, 1: b"c" * SEED_BYTES}) != seed
    assert combine_seed("s", "l2", base) != seed
    with pytest.raises(MacCheckFailure, match="invalid commitment from VCP 1"):
        combine_seed("s", "l", {0: b"a" * SEED_BYTES, 1: b"b"})


# ---------------------------------------------------------------- rounds


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def _run(hub: MemoryHub, body: Callable[[int, Any], Awaitable[Any]], *, timeout: float = 10) -> dict[int, Any]:
    """Run body(party, session) on every party; a VcpError becomes that party's result."""
    results: dict[int, Any] = {}

    async def party(i: int) -> None:
        try:
            async with hub.transports[i].session("commit-test") as session:
                results[i] = await body(i, session)
        except* VcpError as group:  # session.exchange raises groups
            results[i] = _first_leaf(group)

    with trio.fail_after(timeout):
        async with trio.open_nursery() as nursery:
            for i in range(hub.n_parties):
                nursery.start_soon(party, i)
    return results


@pytest.mark.parametrize("n", [2, 3, 5])
async def test_commit_and_open_reveals_every_message(n: int, autojump_clock: object) -> None:
    async with open_memory_transports(n, shuffle=True, seed=n) as hub:

        async def body(i: int, session: Any) -> dict[int, bytes]:
            return await commit_and_open(session.exchange, session.id, i, "round", f"msg{i}".encode())

        results = await _run(hub, body)
    for i in range(n):
        assert results[i] == {k: f"msg{k}".encode() for k in range(n)}
    assert hub.messages == 2 * n * (n - 1)


@pytest.mark.parametrize("n", [2, 3])
async def test_coin_toss_agrees_and_is_fresh(n: int, autojump_clock: object) -> None:
    seeds = []
    for run in range(2):
        async with open_memory_transports(n, shuffle=True, seed=run) as hub:

            async def body(i: int, session: Any) -> bytes:
                return await coin_toss(session.exchange, session.id, i, "coins")

            results = await _run(hub, body)
        assert len({results[i] for i in range(n)}) == 1
        seeds.append(results[0])
        assert len(results[0]) == SEED_BYTES
    assert seeds[0] != seeds[1]


def _tamper_step(step: str, src: int, change: Callable[[Any], Any], dst: int | None = None) -> Any:
    def fn(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and message[2] == step and s == src and (dst is None or d == dst):
            return (*message[:3], change(message[3]))
        return message

    return fn


async def test_wrong_opening_is_caught_by_everyone(autojump_clock: object) -> None:
    async with open_memory_transports(3) as hub:
        hub.tamper(_tamper_step("round.open", 2, lambda b: b[:-1] + bytes([b[-1] ^ 1])))

        async def body(i: int, session: Any) -> dict[int, bytes]:
            return await commit_and_open(session.exchange, session.id, i, "round", b"m")

        results = await _run(hub, body)
    for i in (0, 1):
        assert isinstance(results[i], MacCheckFailure)
        assert "invalid commitment from VCP 2" in str(results[i])
        assert FAILURE_MARKER in str(results[i])


async def test_changed_message_after_commitment_is_caught(autojump_clock: object) -> None:
    """The classic rushing attack: change the value after seeing the others."""
    async with open_memory_transports(2) as hub:
        hub.tamper(_tamper_step("round.open", 1, lambda b: b"other" + b[-NONCE_BYTES:]))

        async def body(i: int, session: Any) -> dict[int, bytes]:
            return await commit_and_open(session.exchange, session.id, i, "round", b"m")

        results = await _run(hub, body)
    assert isinstance(results[0], MacCheckFailure)
    assert "invalid commitment from VCP 1" in str(results[0])


@pytest.mark.parametrize("bad", [b"opening-instead-of-commitment" * 3, 12345, [b"x"]])
async def test_malformed_commitment_is_caught(bad: Any, autojump_clock: object) -> None:
    async with open_memory_transports(3) as hub:
        hub.tamper(_tamper_step("round.commit", 1, lambda _: bad))

        async def body(i: int, session: Any) -> dict[int, bytes]:
            return await commit_and_open(session.exchange, session.id, i, "round", b"m")

        results = await _run(hub, body)
    for i in (0, 2):
        assert isinstance(results[i], MacCheckFailure)
        assert "invalid commitment from VCP 1" in str(results[i])
    # the party whose commitment was replaced learns of the abort too
    assert isinstance(results[1], SessionAborted)
