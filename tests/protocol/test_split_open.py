"""Split ("king") openings (vcpd.protocol.split_open) through OnlineParty over the memory hub.

Large flights between three or more VCPs are opened in two rounds, each VCP
summing one range: the same values as the all-to-all opening, fewer bytes, and
every kind of cheating by a summing VCP caught before anything is released.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from test_online import FIELD, P, Dealer, run_online

from vcpd.errors import MacCheckFailure, SessionAborted
from vcpd.math import FieldArray, Shares
from vcpd.protocol import MAC_FAILURE_MESSAGE, OnlineParty, online, split_open
from vcpd.protocol.commit import FAILURE_MARKER
from vcpd.protocol.split_open import SPLIT_BYTES, bounds, use_split
from vcpd.testing import open_memory_transports

BIG = SPLIT_BYTES // 16 + 10  # elements: just above the threshold
FAST = {"precommit_seed": True, "bundle_flights": True}


def steps_seen(into: list[tuple[int, int, str]]) -> Callable[[int, int, tuple[Any, ...]], tuple[Any, ...]]:
    def spy(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m":
            into.append((s, d, message[2]))
        return message

    return spy


def alter(step: str, src: int, change: Callable[[bytes], bytes], dst: set[int] | None = None) -> Any:
    """Make ``src`` send ``change(payload)`` instead of its payload ``step`` (to ``dst`` only)."""

    def fn(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and message[2] == step and s == src and (dst is None or d in dst):
            return (*message[:3], change(message[3]))
        return message

    return fn


def shifted(payload: bytes) -> bytes:
    values = FIELD.from_bytes(payload).to_ints()
    values[0] = (values[0] + 12345) % P
    return FIELD.from_ints(values).to_bytes()


# ---------------------------------------------------------------- the decision and the ranges


def test_ranges_partition_every_length() -> None:
    for n in (3, 4, 5, 7):
        for length in [*range(0, 3 * n + 2), 511, 512, 513, 4096, 10**6 + 1]:
            b = bounds(length, n)
            assert b[0] == 0 and b[-1] == length and len(b) == n + 1
            sizes = [b[k + 1] - b[k] for k in range(n)]
            assert all(s >= 0 for s in sizes) and max(sizes) - min(sizes) <= 1


def test_only_large_flights_with_three_or_more_parties_are_split() -> None:
    assert use_split(3, [BIG]) and use_split(5, [SPLIT_BYTES // 16]) and use_split(3, [2000, 2000, 100])
    assert not use_split(3, [SPLIT_BYTES // 16 - 1]) and not use_split(3, [])
    assert not use_split(2, [10**6])


# ---------------------------------------------------------------- same values, fewer bytes


@pytest.mark.parametrize("n", [3, 5])
async def test_large_opening_is_split_and_gives_the_same_values(n: int, autojump_clock: object) -> None:
    dealer = Dealer(n)
    x = FIELD.random(BIG)
    shares = dealer.share(x)
    seen: list[tuple[int, int, str]] = []
    async with open_memory_transports(n, shuffle=True, seed=n) as hub:
        hub.tamper(steps_seen(seen))

        async def body(i: int, online: OnlineParty) -> Any:
            opened = await online.open(shares[i])
            stats = online.statistics()
            await online.mac_check()
            return opened, stats, online.statistics()

        results = await run_online(hub, dealer, body)
    b = bounds(BIG, n)
    for i in range(n):
        opened, stats, after = results[i]
        assert opened.equals(x)
        assert (stats.rounds, stats.open_rounds, stats.openings, stats.pending) == (2, 1, BIG, BIG)
        assert stats.messages_sent == 2 * (n - 1)
        # round 1: range k to VCP k; round 2: own range to everyone
        mine = 16 * (b[i + 1] - b[i])
        assert stats.bytes_sent == 16 * BIG - mine + (n - 1) * mine
        assert after.mac_checks == 1 and after.rounds == 2 + 4 and after.pending == 0
    assert {step for _, _, step in seen if step.startswith("open")} == {"open.0.sum", "open.0.out"}


async def test_small_opening_keeps_one_round(autojump_clock: object) -> None:
    dealer = Dealer(3)
    x = FIELD.random(SPLIT_BYTES // 16 - 1)
    shares = dealer.share(x)
    seen: list[tuple[int, int, str]] = []
    async with open_memory_transports(3) as hub:
        hub.tamper(steps_seen(seen))

        async def body(i: int, online: OnlineParty) -> Any:
            return await online.open(shares[i]), online.statistics()

        results = await run_online(hub, dealer, body)
    for i in range(3):
        opened, stats = results[i]
        assert opened.equals(x) and (stats.rounds, stats.open_rounds) == (1, 1)
    assert {step for _, _, step in seen} == {"open.0"}


async def test_two_parties_keep_one_round(autojump_clock: object) -> None:
    dealer = Dealer(2)
    x = FIELD.random(4 * BIG)
    shares = dealer.share(x)
    async with open_memory_transports(2) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            return await online.open(shares[i]), online.statistics()

        results = await run_online(hub, dealer, body)
    for i in range(2):
        opened, stats = results[i]
        assert opened.equals(x) and (stats.rounds, stats.open_rounds, stats.bytes_sent) == (1, 1, 16 * 4 * BIG)


LENGTHS = st.one_of(st.integers(0, 12), st.sampled_from([510, 511, 512, 513, 1534, 1535, 1536, 1537, 2560, 2561]))


@settings(max_examples=25, deadline=None)
@given(
    n=st.sampled_from([3, 5]),
    queued=LENGTHS,
    groups=st.lists(st.lists(LENGTHS, min_size=0, max_size=3), min_size=1, max_size=3),
    options=st.sampled_from([{}, FAST]),
    seed=st.integers(0, 1000),
)
def test_split_flights_open_the_same_values(
    n: int, queued: int, groups: list[list[int]], options: dict[str, bool], seed: int
) -> None:
    """Every opening of a flight split (threshold lowered), lengths around range
    boundaries and below n included, with queued openings, empty groups and the
    early seed commitment; the MAC check passes afterwards."""
    dealer = Dealer(n)
    q = FIELD.random(queued)
    vectors = [[FIELD.random(length) for length in group] for group in groups]
    q_shares = dealer.share(q)
    shares = [[dealer.share(v) for v in group] for group in vectors]

    async def main() -> dict[int, Any]:
        async with open_memory_transports(n, shuffle=True, seed=seed) as hub:

            async def body(i: int, online: OnlineParty) -> Any:
                deferred = online.open_with_next(q_shares[i])
                opened = await online.open_concurrently([[s[i] for s in group] for group in shares])
                stats = online.statistics()
                await online.mac_check()
                return deferred.value, opened, stats

            return await run_online(hub, dealer, body, **options)

    with mock.patch.object(split_open, "SPLIT_BYTES", 16):
        results = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    flight = queued > 0 or any(sum(group) for group in groups)
    for i in range(n):
        assert not isinstance(results[i], Exception), results[i]
        value, opened, stats = results[i]
        assert value.equals(q)
        for group, got in zip(vectors, opened, strict=True):
            assert all(o.equals(v) for o, v in zip(got, group, strict=True))
        assert stats.rounds == (2 if flight else 0)
        assert stats.open_rounds == int(queued > 0) + sum(1 for group in groups if sum(group))


async def test_queued_openings_and_early_seed_ride_along_split(autojump_clock: object) -> None:
    """Labels from the same counters (``open.k.sum``/``open.k.out``), the early seed
    commitment in the first round, bundled links, a three-round check."""
    n = 3
    dealer = Dealer(n)
    a, b, c = FIELD.random(3), FIELD.random(BIG), FIELD.random(5)
    sa, sb, sc = dealer.share(a), dealer.share(b), dealer.share(c)
    seen: list[tuple[int, int, str]] = []
    async with open_memory_transports(n) as hub:
        hub.tamper(steps_seen(seen))

        async def body(i: int, online: OnlineParty) -> Any:
            queued = online.open_with_next(sc[i])
            (oa, ob), (oa2,) = await online.open_concurrently([[sa[i], sb[i]], [sa[i]]])
            stats = online.statistics()
            await online.mac_check()
            return queued.value, oa, ob, oa2, stats, online.statistics()

        results = await run_online(hub, dealer, body, **FAST)
    for i in range(n):
        oc, oa, ob, oa2, stats, after = results[i]
        assert oc.equals(c) and oa.equals(a) and ob.equals(b) and oa2.equals(a)
        assert (stats.rounds, stats.open_rounds, stats.openings) == (2, 3, 5 + 3 + BIG + 3)
        assert stats.messages_sent == 2 * (n - 1)  # one bundle per link and round
        assert after.rounds == 2 + 3 and after.mac_checks == 1
    from_0 = [step for s, d, step in seen if s == 0 and d == 1]
    assert from_0[:2] == [
        "open.0.sum+open.1.sum+open.2.sum+mac.0.seed.early",
        "open.0.out+open.1.out+open.2.out",
    ]


async def test_split_with_worker_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """worker_threads=True sums and assembles large split openings in threads
    (real clock: under autojump, waits on threads look idle)."""
    monkeypatch.setattr(online, "THREAD_BYTES", 1024)
    n = 3
    dealer = Dealer(n)
    x = FIELD.random(2 * BIG)
    shares = dealer.share(x)
    async with open_memory_transports(n) as hub:
        results = await run_online(hub, dealer, lambda i, on: on.reveal(shares[i]), worker_threads=True)
    assert all(results[i].equals(x) for i in range(n))


# ---------------------------------------------------------------- a cheating summing VCP


@pytest.mark.parametrize(("n", "cheater"), [(3, 1), (5, 4)])
async def test_wrong_sum_to_everyone_is_caught(n: int, cheater: int, autojump_clock: object) -> None:
    """The summing VCP keeps the true sum but sends a wrong one to everyone: the honest
    VCPs agree with each other, not with it, and the check's comparison says so."""
    dealer = Dealer(n)
    shares = dealer.share(FIELD.random(BIG))
    async with open_memory_transports(n, shuffle=True) as hub:
        hub.tamper(alter("open.0.out", cheater, shifted))
        results = await run_online(hub, dealer, lambda i, online: online.reveal(shares[i]))
    mismatch = f"{FAILURE_MARKER}: VCP {cheater}'s combination of the opened values differs from this VCP's"
    for i in range(n):
        if i != cheater:
            assert isinstance(results[i], MacCheckFailure), results[i]
            assert results[i].reason.startswith(mismatch), results[i]


@pytest.mark.parametrize(("n", "cheater"), [(3, 1), (5, 4)])
async def test_consistently_shifted_share_in_a_split_opening_fails_the_sigma_check(
    n: int, cheater: int, autojump_clock: object
) -> None:
    """A VCP shifts its value share (not its MAC share): its slices and its own range's
    sum carry the shift consistently, every view agrees, and σ catches it."""
    dealer = Dealer(n)
    shares = dealer.share(FIELD.random(BIG))
    bump = [0] * BIG
    bump[BIG // n * cheater + 1] = 99  # inside the cheater's own range
    bump[0] = 5  # and inside VCP 0's
    shares[cheater] = Shares(shares[cheater].values + FIELD.from_ints(bump), shares[cheater].macs)
    async with open_memory_transports(n, shuffle=True) as hub:
        results = await run_online(hub, dealer, lambda i, online: online.reveal(shares[i]))
    for i in range(n):
        assert isinstance(results[i], MacCheckFailure), results[i]
        assert "combination" not in results[i].reason
    assert any(results[i].reason == MAC_FAILURE_MESSAGE for i in range(n))


async def test_different_sums_to_different_peers_are_caught(autojump_clock: object) -> None:
    dealer = Dealer(3)
    shares = dealer.share(FIELD.random(BIG))
    async with open_memory_transports(3, shuffle=True) as hub:
        hub.tamper(alter("open.0.out", 1, shifted, dst={2}))  # VCP 0 gets the true sum
        results = await run_online(hub, dealer, lambda i, online: online.reveal(shares[i]))
    for i in range(3):  # nothing was released anywhere
        assert isinstance(results[i], MacCheckFailure), results[i]
    assert "broadcast mismatch" in str(results[0]) and "broadcast mismatch" in str(results[2])


async def test_wrong_slice_fails_the_mac_check(autojump_clock: object) -> None:
    """A VCP that shifts the slice it sends to a summing VCP shifts the opened value."""
    dealer = Dealer(3)
    shares = dealer.share(FIELD.random(BIG))
    async with open_memory_transports(3) as hub:
        hub.tamper(alter("open.0.sum", 2, shifted, dst={0}))
        results = await run_online(hub, dealer, lambda i, online: online.reveal(shares[i]))
    for i in (0, 1):
        assert isinstance(results[i], MacCheckFailure), results[i]


# ---------------------------------------------------------------- malformed traffic


def too_short(payload: bytes) -> bytes:
    return payload[:-16]


def out_of_field(payload: bytes) -> bytes:
    return b"\xff" * 16 + payload[16:]


@pytest.mark.parametrize(
    ("step", "change", "what"),
    [
        ("open.0.sum", too_short, "malformed opening slice at step 'open.0.sum'"),
        ("open.0.sum", out_of_field, "opening slice not in the field at step 'open.0.sum'"),
        ("open.0.out", too_short, "malformed opened sum at step 'open.0.out'"),
        ("open.0.out", out_of_field, "opened sum not in the field at step 'open.0.out'"),
    ],
)
async def test_malformed_slice_or_sum_aborts_naming_the_vcp(
    step: str, change: Callable[[bytes], bytes], what: str, autojump_clock: object
) -> None:
    dealer = Dealer(3)
    shares = dealer.share(FIELD.random(BIG))
    async with open_memory_transports(3) as hub:
        hub.tamper(alter(step, 1, change, dst={2}))
        results = await run_online(hub, dealer, lambda i, online: online.reveal(shares[i]))
    assert isinstance(results[2], SessionAborted)
    assert f"VCP 1 deviated from the protocol: {what}" in str(results[2])
    assert isinstance(results[0], SessionAborted)  # told by VCP 2's abort notice
    assert not any(isinstance(r, FieldArray) for r in results.values())


async def test_withheld_sum_times_out(autojump_clock: object) -> None:
    dealer = Dealer(3)
    shares = dealer.share(FIELD.random(BIG))
    async with open_memory_transports(3) as hub:

        def rename(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
            if message[0] == "m" and s == 2 and message[2] == "open.0.out":
                return (*message[:2], "something.else", message[3])
            return message

        hub.tamper(rename)
        results = await run_online(hub, dealer, lambda i, online: online.open(shares[i]), round_timeout=20)
    for i in (0, 1):
        assert isinstance(results[i], SessionAborted)
        assert "no message 'open.0.out' from VCP 2 within 20 s" in str(results[i])
    assert trio.current_time() == pytest.approx(20, abs=1)


async def test_failed_split_opening_ends_the_object(autojump_clock: object) -> None:
    dealer = Dealer(3)
    shares = dealer.share(FIELD.random(BIG))
    async with open_memory_transports(3) as hub:
        hub.tamper(alter("open.0.sum", 1, too_short, dst={0}))

        async def body(i: int, online: OnlineParty) -> Any:
            try:
                await online.open(shares[i])
            except SessionAborted:
                with pytest.raises(SessionAborted, match="an earlier step of this online phase failed"):
                    await online.open(shares[i])
                raise

        results = await run_online(hub, dealer, body)
    assert all(isinstance(results[i], SessionAborted) for i in range(3))
