"""A VCP that deviates in the OT extension, in Gilboa, in COPE or in the
sacrifice is caught: every party's job fails naming the check, nothing is
returned, and the setup refuses further jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

from vcpd.errors import MacCheckFailure, SessionAborted, VcpError
from vcpd.math import PrimeField
from vcpd.protocol.mascot import MascotState, generate, mascot_setup
from vcpd.testing import MemoryHub, open_memory_transports

FIELD = PrimeField()

Tamper = Callable[[Any], Any]


def flip_low_bits(data: bytes, start: int, stop: int, stride: int = 16) -> bytes:
    """Flip the lowest bit of every ``stride``-byte word in data[start:stop]."""
    out = bytearray(data)
    for i in range(start, stop, stride):
        out[i] ^= 1
    return bytes(out)


def flip_column_starts(data: bytes) -> bytes:
    """Flip one choice bit in each of the 128 IKNP columns (inconsistent r)."""
    columns = len(data) - 32 - 16  # nonce and link id follow the columns
    width = columns // 128
    out = bytearray(data)
    for b in range(128):
        out[b * width] ^= 1
    return bytes(out)


async def run_job(
    n_parties: int, step_suffix: str, tamper: Tamper, *, cheater: int = 1, victim: int | None = 0, kind: str = "triple"
) -> tuple[list[Any], list[VcpError | None], list[MascotState], dict[str, int]]:
    hits = {"count": 0}
    async with open_memory_transports(n_parties) as hub:
        alphas = FIELD.random(n_parties).to_ints()
        states = await _all(hub, "setup", lambda i, s: mascot_setup(s, FIELD, alphas[i], i, n_parties))

        def spy(src: int, dst: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
            if message[0] == "m" and src == cheater and victim in (None, dst) and message[2].endswith(step_suffix):
                hits["count"] += 1
                return (*message[:3], tamper(message[3]))
            return message

        hub.tamper(spy)
        results: list[Any] = [None] * n_parties
        errors: list[VcpError | None] = [None] * n_parties

        async def one(i: int) -> None:
            try:
                async with hub.transports[i].session("job") as session:
                    results[i] = await generate(session, states[i], FIELD, kind, 24, batch_size=24)
            except VcpError as exc:
                errors[i] = exc

        async with trio.open_nursery() as nursery:
            for i in range(n_parties):
                nursery.start_soon(one, i)
    return results, errors, states, hits


async def _all(hub: MemoryHub, name: str, fn: Any) -> list[Any]:
    out: list[Any] = [None] * hub.n_parties

    async def one(i: int) -> None:
        async with hub.transports[i].session(name) as session:
            out[i] = await fn(i, session)

    async with trio.open_nursery() as nursery:
        for i in range(hub.n_parties):
            nursery.start_soon(one, i)
    return out


def assert_aborted(results: list[Any], errors: list[VcpError | None], phrase: str, detector: type[SessionAborted]) -> None:
    assert all(r is None for r in results), "a party returned tuples despite the failed check"
    assert all(isinstance(e, SessionAborted) for e in errors), errors
    assert all(phrase in str(e) for e in errors), [str(e) for e in errors]
    assert any(isinstance(e, detector) for e in errors)


@pytest.mark.parametrize("n_parties", [2, 3])
async def test_inconsistent_ot_extension_fails_kos_check(n_parties: int) -> None:
    results, errors, states, hits = await run_job(n_parties, ".mul.iknp", flip_column_starts)
    assert hits["count"] == 1
    assert_aborted(results, errors, "KOS correlation check failed with VCP 1", SessionAborted)
    assert all(state.failed for state in states)


async def test_wrong_kos_answer_fails_kos_check() -> None:
    results, errors, _, _ = await run_job(2, ".mul.xt", lambda payload: flip_low_bits(payload, 16, 32))
    assert_aborted(results, errors, "KOS correlation check failed with VCP 1", SessionAborted)


async def test_wrong_gilboa_correction_fails_sacrifice() -> None:
    def tamper(payload: list[Any]) -> list[Any]:
        return [flip_low_bits(payload[0], 0, len(payload[0])), payload[1]]

    results, errors, states, hits = await run_job(2, ".mul.d", tamper)
    assert hits["count"] == 1
    assert_aborted(results, errors, "sacrifice check failed", MacCheckFailure)
    assert all(state.failed for state in states)


async def test_cope_errors_fail_mac_generation_check() -> None:
    def tamper(payload: list[Any]) -> list[Any]:
        return [flip_low_bits(payload[0], 0, len(payload[0]) - 48), payload[1]]

    results, errors, _, hits = await run_job(2, ".auth.cope", tamper)
    assert hits["count"] == 1
    assert_aborted(results, errors, "MAC-generation check failed", MacCheckFailure)


async def test_cope_errors_in_masks_fail_mac_generation_check() -> None:
    def tamper(payload: list[Any]) -> list[Any]:
        return [flip_low_bits(payload[0], 0, len(payload[0]) - 48), payload[1]]

    results, errors, _, _ = await run_job(2, ".auth.cope", tamper, kind="mask")
    assert_aborted(results, errors, "MAC-generation check failed", MacCheckFailure)


@pytest.mark.parametrize("n_parties", [2, 3])
async def test_wrong_sacrifice_opening_fails_sacrifice(n_parties: int) -> None:
    def tamper(payload: list[Any]) -> list[Any]:
        return [flip_low_bits(payload[0], 16, 32), payload[1]]  # one ρ share, y untouched

    # The cheater sends the same wrong share to everyone (otherwise the
    # broadcast-consistency check fires first, with three parties).
    results, errors, _, hits = await run_job(n_parties, "triple.0.open", tamper, victim=None)
    assert hits["count"] == n_parties - 1
    assert_aborted(results, errors, "sacrifice check failed", MacCheckFailure)


async def test_inconsistent_broadcast_is_caught() -> None:
    def tamper(payload: list[Any]) -> list[Any]:
        return [flip_low_bits(payload[0], 16, 32), payload[1]]

    results, errors, _, _ = await run_job(3, "triple.0.open", tamper)
    assert_aborted(results, errors, "broadcast mismatch", MacCheckFailure)


async def test_failed_setup_refuses_jobs() -> None:
    _, _, states, _ = await run_job(2, ".mul.d", lambda p: [flip_low_bits(p[0], 0, len(p[0])), p[1]])
    async with open_memory_transports(2) as hub:
        async with hub.transports[0].session("again") as session:
            with pytest.raises(SessionAborted, match="failed check"):
                await generate(session, states[0], FIELD, "triple", 4)
    assert MascotState.from_bytes(states[0].to_bytes()).failed


async def test_mismatched_setups_are_named_not_blamed() -> None:
    async with open_memory_transports(2) as hub:
        alphas = FIELD.random(2).to_ints()
        first = await _all(hub, "setup-1", lambda i, s: mascot_setup(s, FIELD, alphas[i], i, 2))
        second = await _all(hub, "setup-2", lambda i, s: mascot_setup(s, FIELD, alphas[i], i, 2))
        states = [first[0], second[1]]  # VCP 1 re-ran the setup alone
        errors: list[VcpError | None] = [None, None]

        async def one(i: int) -> None:
            try:
                async with hub.transports[i].session("job") as session:
                    await generate(session, states[i], FIELD, "mask", 4)
            except VcpError as exc:
                errors[i] = exc

        async with trio.open_nursery() as nursery:
            for i in range(2):
                nursery.start_soon(one, i)
    assert all(isinstance(e, SessionAborted) and "different MASCOT setup" in str(e) for e in errors), errors
    assert not any(state.failed for state in states)
