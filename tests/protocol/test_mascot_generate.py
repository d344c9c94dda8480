"""MASCOT jobs between 2 and 3 parties: every kind satisfies its relation and
its MACs under the joint key, and no message carries a party's α_i."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from vcpd.errors import SessionAborted
from vcpd.math import FieldArray, PrimeField, Shares, check_macs, reconstruct
from vcpd.protocol.mascot import MascotState, generate, mascot_setup
from vcpd.protocol.transport import Session
from vcpd.testing import MemoryHub, open_memory_transports

FIELD = PrimeField()


async def run_all(hub: MemoryHub, name: str, fn: Callable[[int, Session], Awaitable[Any]]) -> list[Any]:
    results: list[Any] = [None] * hub.n_parties

    async def one(i: int) -> None:
        async with hub.transports[i].session(name) as session:
            results[i] = await fn(i, session)

    async with trio.open_nursery() as nursery:
        for i in range(hub.n_parties):
            nursery.start_soon(one, i)
    return results


async def setup_all(hub: MemoryHub) -> tuple[list[int], list[MascotState]]:
    alphas = FIELD.random(hub.n_parties).to_ints()
    states = await run_all(hub, "setup", lambda i, s: mascot_setup(s, FIELD, alphas[i], i, hub.n_parties))
    return alphas, states


def opened(parts: list[list[Shares]], k: int) -> FieldArray:
    return reconstruct([p[k] for p in parts])


def macs_ok(parts: list[list[Shares]], alphas: list[int]) -> bool:
    return all(check_macs([p[k] for p in parts], alphas) for k in range(len(parts[0])))


@pytest.mark.parametrize("n_parties", [2, 3])
async def test_triples(n_parties: int) -> None:
    async with open_memory_transports(n_parties) as hub:
        alphas, states = await setup_all(hub)
        parts = await run_all(hub, "job", lambda i, s: generate(s, states[i], FIELD, "triple", 70, batch_size=40))
    a, b, c = (opened(parts, k) for k in range(3))
    assert len(a) == 70 and (a * b).equals(c)
    assert macs_ok(parts, alphas)
    assert not a.all_zero() and not b.all_zero()


async def test_every_kind_two_parties() -> None:
    async with open_memory_transports(2) as hub:
        alphas, states = await setup_all(hub)
        results = {}
        for kind in ("mask", "square", "bit", "inverse", "bounded"):
            results[kind] = await run_all(hub, f"job-{kind}", lambda i, s, kind=kind: generate(s, states[i], FIELD, kind, 30))
    for kind, parts in results.items():
        assert macs_ok(parts, alphas), kind
        assert all(len(share) == 30 for p in parts for share in p)
    masks = opened(results["mask"], 0)
    assert len(set(masks.to_ints())) == 30
    a, a2 = opened(results["square"], 0), opened(results["square"], 1)
    assert (a * a).equals(a2)
    bits = opened(results["bit"], 0).to_ints()
    assert set(bits) <= {0, 1} and len(set(bits)) == 2
    r, r_inv = opened(results["inverse"], 0), opened(results["inverse"], 1)
    assert (r * r_inv).equals(FIELD.constant(1, 30))
    bounded = opened(results["bounded"], 0).to_ints()  # Σ 2^i·b_i of 40 secure bits
    assert all(0 <= v < 1 << 40 for v in bounded) and len(set(bounded)) == 30
    assert max(bounded) >= 1 << 30  # the top blocks are used (fails with probability 2^-300)


async def test_kinds_three_parties() -> None:
    async with open_memory_transports(3) as hub:
        alphas, states = await setup_all(hub)
        bits = await run_all(hub, "bits", lambda i, s: generate(s, states[i], FIELD, "bit", 20))
        masks = await run_all(hub, "masks", lambda i, s: generate(s, states[i], FIELD, "mask", 20))
        bounded = await run_all(hub, "bounded", lambda i, s: generate(s, states[i], FIELD, "bounded", 4))
    assert macs_ok(bits, alphas) and macs_ok(masks, alphas) and macs_ok(bounded, alphas)
    assert all(0 <= v < 1 << 40 for v in opened(bounded, 0).to_ints())
    assert set(opened(bits, 0).to_ints()) <= {0, 1}


def _encodings(alpha: int) -> list[bytes]:
    mont = FIELD.mont(alpha)
    return [alpha.to_bytes(16, "little"), alpha.to_bytes(16, "big"), mont.to_bytes(16, "little"), str(alpha).encode()]


def _contains(payload: Any, needles: list[bytes]) -> bool:
    if isinstance(payload, bytes | bytearray):
        return any(needle in payload for needle in needles)
    if isinstance(payload, str):
        return any(needle in payload.encode() for needle in needles)
    if isinstance(payload, list | tuple):
        return any(_contains(item, needles) for item in payload)
    if isinstance(payload, dict):
        return any(_contains(k, needles) or _contains(v, needles) for k, v in payload.items())
    return False


async def test_no_message_contains_a_mac_key_share() -> None:
    async with open_memory_transports(2) as hub:
        alphas = FIELD.random(2).to_ints()
        needles = [e for alpha in alphas for e in _encodings(alpha)]
        seen = {"messages": 0, "leaks": 0}

        def spy(src: int, dst: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
            seen["messages"] += 1
            if _contains(list(message[1:]), needles):
                seen["leaks"] += 1
            return message

        hub.tamper(spy)
        states = await run_all(hub, "setup", lambda i, s: mascot_setup(s, FIELD, alphas[i], i, 2))
        parts = await run_all(hub, "job", lambda i, s: generate(s, states[i], FIELD, "triple", 20))
    assert macs_ok(parts, alphas)
    assert seen["messages"] > 20 and seen["leaks"] == 0


async def test_state_survives_serialisation_between_jobs() -> None:
    async with open_memory_transports(2) as hub:
        alphas, states = await setup_all(hub)
        reloaded = [MascotState.from_bytes(state.to_bytes()) for state in states]
        first = await run_all(hub, "job1", lambda i, s: generate(s, reloaded[i], FIELD, "triple", 10))
        second = await run_all(hub, "job2", lambda i, s: generate(s, reloaded[i], FIELD, "triple", 10))
    for parts in (first, second):
        assert (opened(parts, 0) * opened(parts, 1)).equals(opened(parts, 2)) and macs_ok(parts, alphas)
    assert not opened(first, 0).equals(opened(second, 0))


async def test_setup_needs_a_common_row_hash() -> None:
    async with open_memory_transports(2) as hub:
        offers: list[list[str]] = [["blake2b"], []]
        errors: list[Exception | None] = [None, None]

        async def one(i: int) -> None:
            try:
                async with hub.transports[i].session("setup") as session:
                    await mascot_setup(session, FIELD, 5 + i, i, 2, hashes=offers[i])
            except SessionAborted as exc:
                errors[i] = exc

        async with trio.open_nursery() as nursery:
            for i in range(2):
                nursery.start_soon(one, i)
    assert all(isinstance(e, SessionAborted) and "row hash" in str(e) for e in errors)


async def test_bad_arguments_are_refused() -> None:
    async with open_memory_transports(2) as hub:
        _, states = await setup_all(hub)
        async with hub.transports[0].session("bad") as session:
            with pytest.raises(ValueError, match="unknown tuple kind"):
                await generate(session, states[0], FIELD, "quadruple", 3)
            assert [len(s) for s in await generate(session, states[0], FIELD, "triple", 0)] == [0, 0, 0]
            with pytest.raises(SessionAborted, match="another VC"):
                await generate(session, states[0], PrimeField(2**127 - 1), "triple", 3)


async def test_worker_threads_give_the_same_kind_of_result() -> None:
    async with open_memory_transports(3) as hub:
        alphas = FIELD.random(3).to_ints()
        states = await run_all(hub, "setup", lambda i, s: mascot_setup(s, FIELD, alphas[i], i, 3, threads=True))
        parts = await run_all(hub, "job", lambda i, s: generate(s, states[i], FIELD, "triple", 16, threads=True))
    assert (opened(parts, 0) * opened(parts, 1)).equals(opened(parts, 2)) and macs_ok(parts, alphas)
