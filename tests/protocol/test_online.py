"""The SPDZ online phase (vcpd.protocol.online) over the in-memory hub.

Tuples come from a plain test dealer (``share_vector`` with a known α); every
party runs the real OnlineParty over ``open_memory_transports``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from vcpd.errors import FieldError, MacCheckFailure, SessionAborted, VcpError
from vcpd.math import FieldArray, PrimeField, Shares, check_macs, reconstruct, share_vector
from vcpd.protocol import MAC_FAILURE_MESSAGE, OnlineParty, OnlineStatistics, SquarePair, Triple
from vcpd.protocol.commit import FAILURE_MARKER
from vcpd.protocol import tonelli as sqrt_module
from vcpd.protocol.tonelli import sqrt
from vcpd.testing import MemoryHub, open_memory_transports

FIELD = PrimeField()
P = FIELD.p


class Dealer:
    """Trusted-dealer test fixture: α = Σ α_i known, shares dealt directly."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.alphas = FIELD.random(n).to_ints()
        self.alpha = sum(self.alphas) % P

    def share(self, x: FieldArray) -> list[Shares]:
        return share_vector(FIELD, x, self.alpha, self.n)

    def triples(self, length: int) -> list[Triple]:
        a, b = FIELD.random(length), FIELD.random(length)
        sa, sb, sc = self.share(a), self.share(b), self.share(a * b)
        return [Triple(sa[i], sb[i], sc[i]) for i in range(self.n)]

    def square_pairs(self, a: FieldArray) -> list[SquarePair]:
        sa, sa2 = self.share(a), self.share(a * a)
        return [SquarePair(sa[i], sa2[i]) for i in range(self.n)]

    def macs_ok(self, shares: list[Shares]) -> bool:
        return check_macs(shares, self.alphas)


async def run_online(
    hub: MemoryHub,
    dealer: Dealer,
    body: Callable[[int, OnlineParty], Awaitable[Any]],
    *,
    timeout: float = 30,
    stagger: float = 0,
    **options: Any,
) -> dict[int, Any]:
    """body(party, online) on every party; a VcpError becomes that party's result
    (raised inside the session, so peers get the abort notice as in production)."""
    results: dict[int, Any] = {}

    async def party(i: int) -> None:
        try:
            async with hub.transports[i].session("online-test") as session:
                results[i] = await body(i, OnlineParty(session, FIELD, dealer.alphas[i], **options))
        except VcpError as exc:
            results[i] = exc

    with trio.fail_after(timeout):
        async with trio.open_nursery() as nursery:
            for i in reversed(range(hub.n_parties)):
                nursery.start_soon(party, i)
                if stagger:
                    await trio.sleep(stagger)
    return results


def add_to_element(payload: bytes, index: int, delta: int) -> bytes:
    values = FIELD.from_bytes(payload).to_ints()
    values[index] = (values[index] + delta) % P
    return FIELD.from_ints(values).to_bytes()


def tamper_opening(step: str, src: int, index: int, delta: int, dst: set[int] | None = None) -> Any:
    """Make ``src`` add ``delta`` to element ``index`` of its opening ``step`` (to ``dst`` only)."""

    def fn(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and message[2] == step and s == src and (dst is None or d in dst):
            return (*message[:3], add_to_element(message[3], index, delta))
        return message

    return fn


# ---------------------------------------------------------------- opening and revealing


@pytest.mark.parametrize(("n", "shuffle"), [(2, False), (3, True), (5, True)])
async def test_open_and_reveal(n: int, shuffle: bool, autojump_clock: object) -> None:
    dealer = Dealer(n)
    small, large = FIELD.random(7), FIELD.random(3000)
    s_small, s_large = dealer.share(small), dealer.share(large)
    async with open_memory_transports(n, shuffle=shuffle, seed=n) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            first = await online.open(s_small[i])
            pending = online.pending_checks
            second = await online.reveal(s_large[i])
            return first, pending, second, online.statistics()

        results = await run_online(hub, dealer, body, stagger=0.5)
    for i in range(n):
        first, pending, second, stats = results[i]
        assert first.equals(small) and second.equals(large)
        assert pending == 7
        assert stats == OnlineStatistics(
            rounds=6,
            open_rounds=2,
            openings=3007,
            mac_checks=1,
            checked=3007,
            pending=0,
            bytes_sent=stats.bytes_sent,
            messages_sent=6 * (n - 1),
        )
        assert stats.bytes_sent >= 16 * 3007 * (n - 1)


async def test_only_value_shares_travel(autojump_clock: object) -> None:
    """MAC shares never leave a party: an opening carries exactly the value shares."""
    dealer = Dealer(3)
    shares = dealer.share(FIELD.random(600))
    seen: dict[tuple[int, int], bytes] = {}

    def spy(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and message[2] == "open.0":
            seen[(s, d)] = message[3]
        return message

    async with open_memory_transports(3) as hub:
        hub.tamper(spy)
        await run_online(hub, dealer, lambda i, online: online.open(shares[i]))
    assert len(seen) == 6
    for (s, _), payload in seen.items():
        assert payload == shares[s].values.to_bytes()


@settings(max_examples=15, deadline=None)
@given(
    n=st.sampled_from([2, 3, 5]),
    values=st.lists(st.integers(0, P - 1), min_size=0, max_size=40),
    seed=st.integers(0, 1000),
)
def test_reveal_random_vectors(n: int, values: list[int], seed: int) -> None:
    dealer = Dealer(n)
    x = FIELD.from_ints(values)
    shares = dealer.share(x)

    async def main() -> dict[int, Any]:
        async with open_memory_transports(n, shuffle=True, seed=seed) as hub:
            return await run_online(hub, dealer, lambda i, online: online.reveal(shares[i]))

    results = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert all(results[i].equals(x) for i in range(n))


async def test_open_many_is_one_round(autojump_clock: object) -> None:
    dealer = Dealer(3)
    vectors = [FIELD.random(5), FIELD.zeros(0), FIELD.random(1000), FIELD.random(1)]
    shares = [dealer.share(v) for v in vectors]
    async with open_memory_transports(3, shuffle=True) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            opened = await online.open_many([s[i] for s in shares])
            empty = await online.open_many([])
            return opened, empty, online.statistics()

        results = await run_online(hub, dealer, body)
        assert hub.messages == 6
    opened, empty, stats = results[1]
    assert empty == []
    assert all(o.equals(v) for o, v in zip(opened, vectors, strict=True))
    assert (stats.rounds, stats.open_rounds, stats.openings, stats.pending) == (1, 1, 1006, 1006)


async def test_empty_open_sends_nothing(autojump_clock: object) -> None:
    dealer = Dealer(2)
    empty = Shares(FIELD.zeros(0), FIELD.zeros(0))
    async with open_memory_transports(2) as hub:
        results = await run_online(hub, dealer, lambda i, online: online.reveal(empty))
        assert hub.messages == 0
    assert len(results[0]) == 0


async def test_labels_are_independent_of_arrival_order(autojump_clock: object) -> None:
    """Two online objects share a session under different prefixes, interleaved."""
    dealer = Dealer(3)
    xs = [dealer.share(FIELD.random(10)) for _ in range(4)]
    async with open_memory_transports(3, shuffle=True, seed=3) as hub:

        async def body(i: int, _: OnlineParty) -> Any:
            async with hub.transports[i].session("shared") as session:
                first = OnlineParty(session, FIELD, dealer.alphas[i], label_prefix="a/")
                second = OnlineParty(session, FIELD, dealer.alphas[i], label_prefix="b/")
                out: dict[str, Any] = {}

                async def run(name: str, online: OnlineParty, parts: list[list[Shares]]) -> None:
                    out[name] = [await online.reveal(p[i]) for p in parts]

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(run, "a", first, xs[:2])
                    nursery.start_soon(run, "b", second, xs[2:])
                return out

        results = await run_online(hub, dealer, body, stagger=0.3)
    for i in range(3):
        assert results[i]["a"][1].equals(reconstruct(xs[1]))
        assert results[i]["b"][0].equals(reconstruct(xs[2]))


# ---------------------------------------------------------------- Beaver products


@pytest.mark.parametrize(("n", "length", "shuffle"), [(2, 1, False), (3, 100_000, False), (5, 700, True)])
async def test_mul_is_elementwise_product(n: int, length: int, shuffle: bool, autojump_clock: object) -> None:
    dealer = Dealer(n)
    x, y = FIELD.random(length), FIELD.random(length)
    sx, sy, triples = dealer.share(x), dealer.share(y), dealer.triples(length)
    async with open_memory_transports(n, shuffle=shuffle) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            z = await online.mul(sx[i], sy[i], triples[i])
            await online.mac_check()
            return z, online.statistics()

        results = await run_online(hub, dealer, body)
    zs = [results[i][0] for i in range(n)]
    assert reconstruct(zs).equals(x * y)
    assert dealer.macs_ok(zs)
    stats = results[0][1]
    assert (stats.open_rounds, stats.openings, stats.checked) == (1, 2 * length, 2 * length)


@settings(max_examples=10, deadline=None)
@given(
    n=st.sampled_from([2, 3]),
    pairs=st.lists(st.tuples(st.integers(0, P - 1), st.integers(0, P - 1)), min_size=1, max_size=30),
)
def test_mul_random_vectors(n: int, pairs: list[tuple[int, int]]) -> None:
    dealer = Dealer(n)
    x, y = FIELD.from_ints([a for a, _ in pairs]), FIELD.from_ints([b for _, b in pairs])
    sx, sy, triples = dealer.share(x), dealer.share(y), dealer.triples(len(pairs))

    async def main() -> dict[int, Any]:
        async with open_memory_transports(n, shuffle=True) as hub:
            return await run_online(hub, dealer, lambda i, online: online.mul(sx[i], sy[i], triples[i]))

    results = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    zs = [results[i] for i in range(n)]
    assert reconstruct(zs).equals(x * y) and dealer.macs_ok(zs)


async def test_merged_products_take_one_round(autojump_clock: object) -> None:
    """The executor's pattern: prepare many operations, open them together, finish."""
    n = 3
    dealer = Dealer(n)
    xs = [FIELD.random(k) for k in (4, 600, 1)]
    ys = [FIELD.random(k) for k in (4, 600, 1)]
    sxs, sys_ = [dealer.share(x) for x in xs], [dealer.share(y) for y in ys]
    triples = [dealer.triples(len(x)) for x in xs]
    sq = FIELD.random(9)
    s_sq, sq_pairs = dealer.share(sq), dealer.square_pairs(FIELD.random(9))
    async with open_memory_transports(n, shuffle=True) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            prepared = [online.mul_prepare(sxs[k][i], sys_[k][i], triples[k][i]) for k in range(3)]
            prepared.append(online.square_prepare(s_sq[i], sq_pairs[i]))
            before = hub.messages
            out = await online.complete(prepared)
            return out, hub.messages - before, online.statistics()

        results = await run_online(hub, dealer, body)
    for k in range(3):
        zs = [results[i][0][k] for i in range(n)]
        assert reconstruct(zs).equals(xs[k] * ys[k]) and dealer.macs_ok(zs)
    squares = [results[i][0][3] for i in range(n)]
    assert reconstruct(squares).equals(sq * sq) and dealer.macs_ok(squares)
    assert results[0][2].rounds == 1 and results[0][2].open_rounds == 1
    assert hub.messages == n * (n - 1)  # one message per peer, whatever was merged


async def test_square_with_square_pair(autojump_clock: object) -> None:
    dealer = Dealer(3)
    x = FIELD.random(700)
    sx, pairs = dealer.share(x), dealer.square_pairs(FIELD.random(700))
    async with open_memory_transports(3) as hub:
        results = await run_online(hub, dealer, lambda i, online: online.square(sx[i], pairs[i]))
    zs = [results[i] for i in range(3)]
    assert reconstruct(zs).equals(x * x) and dealer.macs_ok(zs)


def test_prepare_rejects_mismatched_lengths() -> None:
    dealer = Dealer(2)
    triple = dealer.triples(3)[0]
    x = dealer.share(FIELD.random(4))[0]

    class _Session:
        id, party, n_parties = "s", 0, 2

    online = OnlineParty(_Session(), FIELD, dealer.alphas[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="equal lengths"):
        online.mul_prepare(x, x, triple)
    with pytest.raises(ValueError, match="equal lengths"):
        online.square_prepare(x, dealer.square_pairs(FIELD.random(3))[0])


# ---------------------------------------------------------------- constants, inverses, agreement


async def test_constants_and_public_additions(autojump_clock: object) -> None:
    dealer = Dealer(3)
    x, c = FIELD.random(600), FIELD.random(600)
    sx = dealer.share(x)
    async with open_memory_transports(3) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            const = online.constant(c)
            scalar = online.constant(5, 3)
            shifted = online.add_public(sx[i], c)
            total = await online.reveal(sx[i] + const)
            return const, scalar, shifted, total

        results = await run_online(hub, dealer, body)
    consts = [results[i][0] for i in range(3)]
    assert reconstruct(consts).equals(c) and dealer.macs_ok(consts)
    scalars = [results[i][1] for i in range(3)]
    assert reconstruct(scalars).to_ints() == [5, 5, 5] and dealer.macs_ok(scalars)
    shifted = [results[i][2] for i in range(3)]
    assert reconstruct(shifted).equals(x + c) and dealer.macs_ok(shifted)
    assert results[0][3].equals(x + c)


async def test_inverse_with_random_mask(autojump_clock: object) -> None:
    dealer = Dealer(3)
    x, r = FIELD.random(50), FIELD.random(50)
    sx, sr, triples = dealer.share(x), dealer.share(r), dealer.triples(50)
    async with open_memory_transports(3) as hub:
        results = await run_online(hub, dealer, lambda i, online: online.inverse(sx[i], sr[i], triples[i]))
    inv = [results[i] for i in range(3)]
    assert (reconstruct(inv) * x).to_ints() == [1] * 50
    assert dealer.macs_ok(inv)


async def test_inverse_of_zero_is_checked_then_refused(autojump_clock: object) -> None:
    dealer = Dealer(2)
    x = FIELD.from_ints([3, 0])
    sx, sr, triples = dealer.share(x), dealer.share(FIELD.random(2)), dealer.triples(2)
    async with open_memory_transports(2) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            with pytest.raises(FieldError, match="inverse of a secret zero"):
                await online.inverse(sx[i], sr[i], triples[i])
            return online.statistics()

        results = await run_online(hub, dealer, body)
    assert results[0].mac_checks == 1 and results[0].pending == 0


async def test_confirm_same(autojump_clock: object) -> None:
    dealer = Dealer(3)
    async with open_memory_transports(3) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            await online.confirm_same(b"masked input", "masked inputs")
            await online.confirm_same(b"masked input" if i != 2 else b"other", "masked inputs")

        results = await run_online(hub, dealer, body)
    for i in range(3):
        assert isinstance(results[i], SessionAborted)
    assert "VCPs received different masked inputs" in str(results[0])


async def test_statistics_are_frozen(autojump_clock: object) -> None:
    stats = OnlineStatistics()
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.rounds = 3  # type: ignore[misc]


# ---------------------------------------------------------------- adversaries


def shift_values(shares: Shares, index: int, delta: int) -> Shares:
    """A cheater's shares with ``delta`` added to one value share and the MAC share left alone."""
    bump = [0] * len(shares)
    bump[index] = delta
    return Shares(shares.values + FIELD.from_ints(bump), shares.macs)


@pytest.mark.parametrize(("n", "cheater"), [(2, 1), (3, 1), (5, 4)])
async def test_tampered_epsilon_opening_is_caught_before_sigma(n: int, cheater: int, autojump_clock: object) -> None:
    """A VCP adds an error to the ε it sends (the same to everyone) but keeps the true ε
    itself: its view differs from everyone else's, which the check's comparison catches."""
    dealer = Dealer(n)
    x, y = FIELD.random(20), FIELD.random(20)
    sx, sy, triples = dealer.share(x), dealer.share(y), dealer.triples(20)
    async with open_memory_transports(n, shuffle=True) as hub:
        hub.tamper(tamper_opening("open.0", cheater, index=3, delta=12345))

        async def body(i: int, online: OnlineParty) -> Any:
            z = await online.mul(sx[i], sy[i], triples[i])
            await online.reveal(z)

        results = await run_online(hub, dealer, body)
    mismatch = f"{FAILURE_MARKER}: VCP {cheater}'s combination of the opened values differs from this VCP's"
    for i in range(n):
        if i != cheater:
            assert isinstance(results[i], MacCheckFailure), results[i]
            assert results[i].reason.startswith(mismatch), results[i]  # a fixed message: no values


@pytest.mark.parametrize(("n", "cheater"), [(2, 1), (3, 1), (5, 4)])
async def test_consistently_shifted_share_fails_the_sigma_check(n: int, cheater: int, autojump_clock: object) -> None:
    """A VCP shifts its share of x (not its MAC share), so every VCP, the cheater
    included, opens the same wrong ε: the views agree and only σ can catch it."""
    dealer = Dealer(n)
    x, y = FIELD.random(20), FIELD.random(20)
    sx, sy, triples = dealer.share(x), dealer.share(y), dealer.triples(20)
    sx[cheater] = shift_values(sx[cheater], 3, 12345)
    async with open_memory_transports(n, shuffle=True) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            z = await online.mul(sx[i], sy[i], triples[i])
            await online.reveal(z)

        results = await run_online(hub, dealer, body)
    for i in range(n):
        assert isinstance(results[i], MacCheckFailure), results[i]
        assert "combination" not in results[i].reason  # no view differed
    assert any(results[i].reason == MAC_FAILURE_MESSAGE for i in range(n))  # the fixed message, no σ in it


async def test_consistent_shift_of_a_download_is_caught(autojump_clock: object) -> None:
    """mpc-notes §2.6: shifting y in the ε opening *and* in the reported share passes
    the client's w = y·r check, so the VCPs' own MAC check must catch it (σ, not the
    comparison of views: every VCP opened the same shifted ε)."""
    dealer = Dealer(3)
    y, r = FIELD.random(4), FIELD.random(4)
    sy, sr, triples = dealer.share(y), dealer.share(r), dealer.triples(4)
    sy[0] = shift_values(sy[0], 0, 7)
    async with open_memory_transports(3) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            w = await online.mul(sy[i], sr[i], triples[i])
            await online.mac_check()  # must happen before w leaves the VC
            return w

        results = await run_online(hub, dealer, body)
    assert all(isinstance(results[i], MacCheckFailure) for i in range(3))
    assert any(results[i].reason == MAC_FAILURE_MESSAGE for i in range(3))


async def test_equivocating_party_is_caught(autojump_clock: object) -> None:
    """VCP 1 sends a different share of the same opening to VCP 2 than to VCP 0."""
    dealer = Dealer(3)
    x = FIELD.random(8)
    sx = dealer.share(x)
    async with open_memory_transports(3, shuffle=True) as hub:
        hub.tamper(tamper_opening("open.0", 1, index=0, delta=1, dst={2}))

        async def body(i: int, online: OnlineParty) -> Any:
            return await online.reveal(sx[i])

        results = await run_online(hub, dealer, body)
    for i in (0, 2):
        assert isinstance(results[i], MacCheckFailure)
    assert any("broadcast mismatch" in str(results[i]) for i in (0, 2))


async def test_wrong_stored_mac_share_is_caught(autojump_clock: object) -> None:
    dealer = Dealer(3)
    x, y = FIELD.random(600), FIELD.random(600)
    sx, sy, triples = dealer.share(x), dealer.share(y), dealer.triples(600)
    sx[2] = Shares(sx[2].values, sx[2].macs + FIELD.from_ints([0] * 599 + [1]))  # corrupted at rest
    async with open_memory_transports(3) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            z = await online.mul(sx[i], sy[i], triples[i])
            return await online.reveal(z)

        results = await run_online(hub, dealer, body)
    for i in range(3):
        assert isinstance(results[i], MacCheckFailure)


async def test_malformed_opening_aborts(autojump_clock: object) -> None:
    dealer = Dealer(3)
    sx = dealer.share(FIELD.random(4))

    def fn(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and message[2] == "open.0" and s == 1:
            return (*message[:3], message[3][:-16])  # one element short
        return message

    async with open_memory_transports(3) as hub:
        hub.tamper(fn)
        results = await run_online(hub, dealer, lambda i, online: online.open(sx[i]))
    for i in (0, 2):
        assert isinstance(results[i], SessionAborted)
        assert "VCP 1 deviated from the protocol: malformed opening" in str(results[i])


async def test_silent_peer_times_out(autojump_clock: object) -> None:
    """VCP 2 stays connected but never opens: the others give up after the round timeout."""
    dealer = Dealer(3)
    sx = dealer.share(FIELD.random(4))
    results: dict[int, Any] = {}
    async with open_memory_transports(3) as hub:

        async def honest(i: int) -> None:
            try:
                async with hub.transports[i].session("t") as session:
                    await OnlineParty(session, FIELD, dealer.alphas[i], round_timeout=20).open(sx[i])
            except VcpError as exc:
                results[i] = exc

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(honest, 0)
                nursery.start_soon(honest, 1)
    assert trio.current_time() == pytest.approx(20, abs=1)
    for i in (0, 1):
        assert isinstance(results[i], SessionAborted)
        assert "no message 'open.0' from VCP 2 within 20 s" in str(results[i])


# ---------------------------------------------------------------- bits from squares


@pytest.mark.parametrize(("n", "length"), [(2, 10), (3, 5000)])
async def test_bits_from_squares(n: int, length: int, autojump_clock: object) -> None:
    dealer = Dealer(n)
    a = FIELD.random(length)
    pairs = dealer.square_pairs(a)
    async with open_memory_transports(n, shuffle=True) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            bits = await online.bits_from_squares(pairs[i])
            pending = online.pending_checks
            await online.mac_check()
            return bits, pending

        results = await run_online(hub, dealer, body)
    bits = [results[i][0] for i in range(n)]
    values = reconstruct(bits).to_ints()
    assert len(values) == length and set(values) <= {0, 1}
    if length >= 100:
        assert 0.4 < sum(values) / length < 0.6
    assert dealer.macs_ok(bits)
    assert results[0][1] == length


async def test_zero_squares_are_dropped(autojump_clock: object) -> None:
    dealer = Dealer(3)
    a = FIELD.from_ints([5, 0, 7, 0, 9])
    pairs = dealer.square_pairs(a)
    async with open_memory_transports(3) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            prepared = online.bits_prepare(pairs[i])
            (out,) = await online.complete([prepared])
            return out

        results = await run_online(hub, dealer, body)
    bits = [results[i] for i in range(3)]
    assert len(bits[0]) == 3
    assert set(reconstruct(bits).to_ints()) <= {0, 1} and dealer.macs_ok(bits)


async def test_shifted_square_is_caught(autojump_clock: object) -> None:
    """A shifted share of s either makes s a non-square (caught at once) or
    yields garbage 'bits' that the MAC check then rejects."""
    dealer = Dealer(3)
    pairs = dealer.square_pairs(FIELD.random(40))
    async with open_memory_transports(3) as hub:
        hub.tamper(tamper_opening("open.0", 1, index=0, delta=1))

        async def body(i: int, online: OnlineParty) -> Any:
            await online.bits_from_squares(pairs[i])
            await online.mac_check()

        results = await run_online(hub, dealer, body)
    for i in (0, 2):
        assert isinstance(results[i], MacCheckFailure)


# ---------------------------------------------------------------- Tonelli–Shanks


@pytest.mark.parametrize("length", [1, 5, 511, 512, 3000])
def test_sqrt_of_random_squares(length: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqrt_module, "BATCH", 1024)  # exercise several batches
    a = FIELD.random(length)
    s = a * a
    root = sqrt(s)
    assert root.square().equals(s)
    assert sqrt(s).equals(root)  # deterministic: every party picks the same root
    assert all(r in (v, (P - v) % P) for r, v in zip(root.to_ints(), a.to_ints(), strict=True))


def test_sqrt_edge_cases() -> None:
    assert sqrt(FIELD.zeros(0)).to_ints() == []
    roots = sqrt(FIELD.from_ints([0, 1, 4, P - 1])).to_ints()
    assert roots[0] == 0
    assert roots[1] in (1, P - 1) and roots[2] in (2, P - 2)
    assert roots[3] * roots[3] % P == P - 1  # -1 is a square since p ≡ 1 (mod 4)
    big = sqrt(FIELD.from_ints([0] * 600 + [9])).to_ints()
    assert big[:600] == [0] * 600 and big[600] in (3, P - 3)


def test_sqrt_rejects_non_squares() -> None:
    non_residue = next(z for z in range(2, 100) if pow(z, (P - 1) // 2, P) == P - 1)
    with pytest.raises(FieldError, match="element 2 is not a square"):
        sqrt(FIELD.from_ints([4, 9, non_residue]))
    squares = (FIELD.random(700)).square().to_ints()
    squares[650] = non_residue
    with pytest.raises(FieldError, match="element 650"):
        sqrt(FIELD.from_ints(squares))


@pytest.mark.parametrize(
    "p",
    [
        2**127 - 1,  # p ≡ 3 (mod 4): 2-adicity 1
        340282366920938463463374607431768211297,  # p ≡ 1 (mod 8), 2-adicity 5
        39 * 2**70 + 1,  # 2-adicity 70: seven windows
    ],
)
def test_sqrt_in_other_fields(p: int) -> None:
    field = PrimeField(p)
    a = field.random(1500)
    s = a * a
    assert sqrt(s).square().equals(s)
    small = field.from_ints([0, 1, 4, 25])
    assert sqrt(small).square().equals(small)


async def test_concurrent_rounds_are_refused(autojump_clock: object) -> None:
    """Counter-derived labels need one operation at a time on each object."""
    dealer = Dealer(2)
    a, b = dealer.share(FIELD.random(3)), dealer.share(FIELD.random(3))
    async with open_memory_transports(2) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="one operation at a time")):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(online.open, a[i])
                    nursery.start_soon(online.open, b[i])
            return True

        results = await run_online(hub, dealer, body)
    assert results == {0: True, 1: True}


async def test_worker_threads_give_the_same_results() -> None:
    """worker_threads=True moves large rounds' arithmetic off the event loop (real
    clock here: under autojump, waits on threads would look idle)."""
    n, length = 3, 40_000  # 1.28 MB per opening payload, 80k elements to check
    dealer = Dealer(n)
    x, y, a = FIELD.random(length), FIELD.random(length), FIELD.random(5000)
    sx, sy, triples, pairs = dealer.share(x), dealer.share(y), dealer.triples(length), dealer.square_pairs(a)
    async with open_memory_transports(n) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            z = await online.mul(sx[i], sy[i], triples[i])
            bits = await online.bits_from_squares(pairs[i])
            await online.mac_check()
            return z, bits

        results = await run_online(hub, dealer, body, timeout=60, worker_threads=True)
    zs, bits = [results[i][0] for i in range(n)], [results[i][1] for i in range(n)]
    assert reconstruct(zs).equals(x * y) and dealer.macs_ok(zs)
    assert set(reconstruct(bits).to_ints()) <= {0, 1} and dealer.macs_ok(bits)


# ---------------------------------------------------------------- openings in one flight


@pytest.mark.parametrize("n", [2, 3])
async def test_open_concurrently_and_open_with_next_are_sequential_openings_in_one_round(
    n: int, autojump_clock: object
) -> None:
    dealer = Dealer(n)
    a, b, c = FIELD.random(3), FIELD.random(700), FIELD.random(5)
    sa, sb, sc = dealer.share(a), dealer.share(b), dealer.share(c)
    steps: list[str] = []
    async with open_memory_transports(n) as hub:

        def spy(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
            if message[0] == "m" and s == 0:
                steps.append(message[2])
            return message

        hub.tamper(spy)

        async def body(i: int, online: OnlineParty) -> Any:
            queued = online.open_with_next(sc[i])
            with pytest.raises(RuntimeError, match="not been sent yet"):
                _ = queued.value
            (opened_a, opened_b), (opened_a2,) = await online.open_concurrently([[sa[i], sb[i]], [sa[i]]])
            opened_c = queued.value
            stats = online.statistics()
            await online.mac_check()
            return opened_a, opened_b, opened_a2, opened_c, stats

        results = await run_online(hub, dealer, body)
    for i in range(n):
        opened_a, opened_b, opened_a2, opened_c, stats = results[i]
        assert opened_a.equals(a) and opened_b.equals(b) and opened_a2.equals(a) and opened_c.equals(c)
        assert stats.rounds == 1 and stats.open_rounds == 3 and stats.openings == 3 + 700 + 3 + 5
    # The queued opening took the first label; every opening is its own labelled message.
    assert sorted(set(steps) - {s for s in steps if s.startswith("mac.")}) == ["open.0", "open.1", "open.2"]


async def test_queued_opening_goes_out_before_a_check(autojump_clock: object) -> None:
    dealer = Dealer(3)
    x = FIELD.random(4)
    shares = dealer.share(x)
    async with open_memory_transports(3) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            queued = online.open_with_next(shares[i])
            await online.mac_check()  # sends the queued opening, then checks it
            return queued.value, online.statistics()

        results = await run_online(hub, dealer, body)
    for i in range(3):
        value, stats = results[i]
        assert value.equals(x) and stats.mac_checks == 1 and stats.checked == 4
