"""Shared harness of the non-linear protocol tests, and tests of its building blocks.

The other ``test_nonlinear_*`` files import :class:`Dealer` and
:func:`run_parties` from here. Tuples come from a plain trusted dealer
(``share_vector`` with a known α); every party runs a real OnlineParty over
``open_memory_transports``. This file also tests the pieces that need no
network: the tuple pool, the cost algebra and schedules, and the exact bit
sums of :mod:`vcpd.protocol.nonlinear.pack`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from vcpd.errors import FieldError, TuplesExhausted, VcpError
from vcpd.math import FieldArray, PrimeField, Shares, reconstruct, share_vector
from vcpd.protocol import OnlineParty, OnlineStatistics
from vcpd.protocol.nonlinear import Material, cost, pack, plans, prand
from vcpd.services.generator.dealing import bounded_values
from vcpd.testing import MemoryHub, open_memory_transports

FIELD = PrimeField()
P = FIELD.p
BOUNDARY_64 = [-(2**63), -1, 0, 1, 2**63 - 1]


class Dealer:
    """Trusted-dealer fixture: α = Σ α_i known; inputs and tuples dealt directly."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.alphas = FIELD.random(parties).to_ints()
        self.alpha = sum(self.alphas) % P

    def share(self, x: FieldArray) -> list[Shares]:
        return share_vector(FIELD, x, self.alpha, self.parties)

    def ints(self, values: Sequence[int]) -> list[Shares]:
        """Every party's shares of the integers ``values`` (negatives mod p)."""
        return self.share(FIELD.from_ints([int(v) for v in values]))

    def material(self, needs: Mapping[str, int], spare: int = 0) -> list[Material]:
        """Every party's pool holding exactly ``needs`` (plus ``spare`` of each kind used)."""
        pools: list[dict[str, list[Shares]]] = [{} for _ in range(self.parties)]
        for kind, count in needs.items():
            count += spare if count else 0
            if not count:
                continue
            if kind == "triple":
                a, b = FIELD.random(count), FIELD.random(count)
                parts = [self.share(a), self.share(b), self.share(a * b)]
            elif kind == "bit":
                bits = np.frombuffer(os.urandom(count), np.uint8) & 1
                parts = [self.share(FIELD.from_ints(bits.astype(np.int64)))]
            elif kind == "mask":
                parts = [self.share(FIELD.random(count))]
            elif kind == "bounded":
                parts = [self.share(bounded_values(FIELD, count))]
            else:  # pragma: no cover - no protocol here uses other kinds
                raise AssertionError(f"unexpected tuple kind {kind}")
            for i in range(self.parties):
                pools[i][kind] = [part[i] for part in parts]
        return [Material(pool) for pool in pools]


def signed(values: FieldArray) -> list[int]:
    """Field elements read as signed integers (x > p/2 stands for x − p)."""
    return [v - P if v > P // 2 else v for v in values.to_ints()]


def opened(results: Mapping[int, Any], parties: int) -> FieldArray:
    """Reconstruct the Shares every party returned."""
    return reconstruct([results[i] for i in range(parties)])


async def run_parties(
    dealer: Dealer,
    body: Callable[[int, OnlineParty], Awaitable[Any]],
    *,
    hub: MemoryHub | None = None,
    check: bool = True,
) -> tuple[dict[int, Any], dict[int, OnlineStatistics]]:
    """``body(party, online)`` on every party, then a MAC check (unless ``check`` is false).

    A VcpError becomes that party's result (raised inside its session, so the
    peers get the abort notice as in production). Returns results and each
    party's statistics taken *before* the MAC check (rounds of the operation).
    """
    results: dict[int, Any] = {}
    stats: dict[int, OnlineStatistics] = {}

    async def party(i: int, transports: MemoryHub) -> None:
        try:
            async with transports.transports[i].session("nonlinear-test") as session:
                online = OnlineParty(session, FIELD, dealer.alphas[i])
                results[i] = await body(i, online)
                stats[i] = online.statistics()
                if check:
                    await online.mac_check()
        except VcpError as exc:
            results[i] = exc

    async def all_parties(transports: MemoryHub) -> None:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for i in range(dealer.parties):
                    nursery.start_soon(party, i, transports)

    if hub is not None:
        await all_parties(hub)
    else:
        async with open_memory_transports(dealer.parties, shuffle=True, seed=7) as fresh:
            await all_parties(fresh)
    return results, stats


def random_signed(count: int, k: int, rng: random.Random) -> list[int]:
    """``count`` uniform signed k-bit integers."""
    return [rng.randrange(-(1 << (k - 1)), 1 << (k - 1)) for _ in range(count)]


# ---------------------------------------------------------------- clear-text models


class ClearTruncPr:
    """TruncPr(v, width, m) in the clear: ⌊v/2^m⌋ plus a rounding chosen by the test."""

    def __init__(self, ups: list[bool]) -> None:
        self.ups = ups
        self.calls = 0

    def __call__(self, v: int, width: int, m: int) -> int:
        assert -(1 << (width - 1)) <= v < 1 << (width - 1), "TruncPr input outside its declared width"
        up = self.ups[self.calls % len(self.ups)]
        self.calls += 1
        return (v >> m) + int(up and v % (1 << m) != 0)


def clear_reciprocal(divisor: int, k: int, trunc: ClearTruncPr) -> tuple[int, int]:
    """(σ, W) of ``division.normalize_program`` + ``goldschmidt_program``, in the clear."""
    rec = plans.plan_reciprocal(P, k)
    f, width = rec.frac, rec.width
    magnitude = abs(divisor)
    t = magnitude - 1 if divisor < 0 else magnitude  # the bits of b XOR its sign
    top = max(t.bit_length() - 1, 0)
    scale = 1 << (k - 2 - top)
    c = magnitude * scale
    assert 1 << (width - 1) <= c <= 1 << width
    u = c << (f - width)
    w = round(2.9142 * (1 << f)) - 2 * u
    x = (1 << f) - trunc(u * w, 2 * f + 2, f)
    y = w
    for i in range(rec.iterations):
        yx = y * ((1 << f) + x)
        if i < rec.iterations - 1:
            y, x = trunc(yx, 2 * f + 3, f), trunc(x * x, 2 * f - 4, f)
        else:
            y = trunc(yx, 2 * f + 3, f)
    return scale, y


# ---------------------------------------------------------------- tests: Material


def test_material_draws_in_order_and_counts() -> None:
    dealer = Dealer(2)
    pools = dealer.material({"triple": 5, "bit": 7})
    pool = pools[0]
    assert pool.available() == {"triple": 5, "square": 0, "bit": 7, "inverse": 0, "mask": 0, "bounded": 0}
    first = pool.take_bits(3)
    rest = pool.take_bits(4)
    assert len(first) == 3 and len(rest) == 4
    triple = pool.take_triples(5)
    assert len(triple.a) == 5
    assert pool.used() == {"triple": 5, "square": 0, "bit": 7, "inverse": 0, "mask": 0, "bounded": 0}
    with pytest.raises(TuplesExhausted):
        pool.take_bits(1)
    with pytest.raises(TuplesExhausted):
        pool.take_masks(1)


def test_material_split_and_validation() -> None:
    dealer = Dealer(2)
    pool = dealer.material({"triple": 10, "bit": 10})[0]
    part = pool.split({"triple": 4, "bit": 0})
    assert part.available()["triple"] == 4 and pool.available()["triple"] == 6
    with pytest.raises(ValueError, match="unknown tuple kind"):
        Material({"cookie": []})
    with pytest.raises(ValueError, match="components"):
        Material({"triple": [part.take("triple", 1)[0]]})
    with pytest.raises(ValueError):
        pool.take("bit", 0)


# ---------------------------------------------------------------- tests: costs and schedules


def test_cost_algebra() -> None:
    a = cost.tuples(2, triple=3)
    b = cost.tuples(5, bit=4)
    assert (a + b).rounds == 7 and (a | b).rounds == 5
    assert (a + b).needs == {"triple": 3, "square": 0, "bit": 4, "inverse": 0, "mask": 0, "bounded": 0}


@pytest.mark.parametrize("m", [1, 2, 3, 5, 8, 13, 64])
def test_schedules_cover_every_position(m: int) -> None:
    # Sklansky: every position ends with a prefix from 0 (each absorbs its lower blocks once).
    reach = list(range(m))  # lowest bit covered by the prefix held at each position
    for level in cost.sklansky_levels(m):
        for hi, lo, keep in level:
            assert reach[hi] == lo + 1 and keep == (reach[lo] > 0)
            reach[hi] = reach[lo]
    assert reach == [0] * m
    # Carry tree and product tree reduce to one node.
    nodes = m
    for level in cost.carry_tree_levels(m):
        assert len(level) == nodes // 2
        nodes = (nodes + 1) // 2
    assert nodes == 1
    assert sum(cost.product_tree_levels(m)) == m - 1


def test_table_of_costs_for_the_defaults() -> None:
    """The per-element numbers reported next to mpc-notes §3.6."""
    def row(c: cost.Cost) -> tuple[int, int, int, int]:
        return c.rounds, c.tuples["triple"], c.tuples["bit"], c.tuples["bounded"]

    # k+κ random bits per mask as m low bits, (k+κ−m) mod 40 single bits and 40-bit bounded tuples
    assert row(cost.cost_lt(1, 64)) == (6, 89, 65, 1)  # 64 + 1 bits + 40
    lt_product = cost.cost_lt(1, 64, bitlt="product")
    assert row(lt_product) == (9, 65, 66, 1) and lt_product.tuples["mask"] == 1
    assert row(cost.cost_eqz(1, 64)) == (4, 6, 71, 2)  # 64 + 40, then 7 + 40
    assert row(cost.cost_trunc_pr(1, 64, 16)) == (1, 0, 24, 2)  # 16 + 8 + 80
    assert row(plans.cost_fx_mul(1)) == (2, 1, 47, 1)  # 16 + 31 + 40


@pytest.mark.parametrize(("k", "m"), [(1, 0), (1, 1), (8, 3), (47, 16), (65, 64), (64, 64), (102, 16), (7, 7)])
def test_prand_split_covers_exactly_k_plus_kappa_bits(k: int, m: int) -> None:
    bits, bounded = cost.prand_split(k, m)
    assert 0 <= bits < cost.BOUNDED_BITS and m + bits + cost.BOUNDED_BITS * bounded == k + cost.KAPPA
    assert cost.cost_prand(3, k, m).needs == {**cost.Cost().needs, "bit": 3 * (m + bits), "bounded": 3 * bounded}


def test_bit_length_limits() -> None:
    assert cost.max_truncation_bits(P) == 86
    cost.check_bit_length(P, 86)
    with pytest.raises(FieldError, match="need p > 2"):
        cost.check_bit_length(P, 87)
    with pytest.raises(FieldError):
        cost.check_bit_length(P, 0)
    with pytest.raises(FieldError, match="k ≤"):
        plans.plan_int_div(P, 40)
    with pytest.raises(ZeroDivisionError):
        plans.plan_div_public(P, 64, 0)


# ---------------------------------------------------------------- tests: exact bit sums


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 110),
    n=st.sampled_from([1, 3, 600]),
    parties=st.sampled_from([2, 3]),
    seed=st.integers(0, 2**32),
)
def test_weighted_and_signed_row_sums_match_integers(rows: int, n: int, parties: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(rows, n))
    negate = rng.integers(0, 2, size=(rows, n)).astype(bool)
    dealer = Dealer(parties)
    shares = dealer.share(FIELD.from_ints(bits.ravel().astype(np.int64)))
    weighted = [prand.prand_int(s, rows, n) for s in shares]
    signed_sum = [pack.signed_row_sums(s, rows, n, negate) for s in shares]
    expect_w = [sum(int(bits[i, j]) << i for i in range(rows)) for j in range(n)]
    expect_s = [sum(-int(bits[i, j]) if negate[i, j] else int(bits[i, j]) for i in range(rows)) % P for j in range(n)]
    for result, expect in ((weighted, expect_w), (signed_sum, expect_s)):
        assert reconstruct(result).to_ints() == expect
        assert sum(r.macs.to_ints()[0] for r in result) % P == dealer.alpha * expect[0] % P


def test_public_words_and_bits() -> None:
    values = [0, 1, 2**64 - 1, 2**64, 2**100 + 5, P - 1]
    c = FIELD.from_ints(values)
    words = pack.canonical_words(c)
    assert [int(lo) | int(hi) << 64 for lo, hi in words] == values
    low = pack.low_words(words, 70)
    assert pack.public_words(FIELD, low).to_ints() == [v % 2**70 for v in values]
    bits = pack.bit_matrix(words, 101)
    assert [[int(bits[i, j]) for i in range(101)] for j in range(len(values))] == [
        [(v >> i) & 1 for i in range(101)] for v in values
    ]


async def test_empty_vectors_cost_nothing() -> None:
    from vcpd.protocol.nonlinear import (
        absolute,
        bit_decompose,
        div_public,
        eqz,
        fx_div,
        fx_mul,
        fx_reciprocal,
        int_div,
        ltz,
        maximum,
        mod2m,
        plans,
        trunc,
        trunc_pr,
    )

    dealer = Dealer(2)
    empty = dealer.ints([])
    for count in (cost.cost_ltz(0, 64), cost.cost_eqz(0, 64), plans.cost_int_div(0, 20), plans.cost_fx_div(0)):
        assert count == cost.Cost()
    pools = dealer.material({})

    async def body(i: int, online: OnlineParty) -> Any:
        x, pool = empty[i], pools[i]
        outs = [
            await ltz(online, x, 64, pool),
            await eqz(online, x, 64, pool),
            await trunc_pr(online, x, 64, 3, pool),
            await mod2m(online, x, 64, 3, pool),
            await trunc(online, x, 64, 3, pool),
            await absolute(online, x, 64, pool),
            await maximum(online, x, x, 64, pool),
            await div_public(online, x, 64, 7, pool),
            await int_div(online, x, x, 20, pool),
            await fx_mul(online, x, x, pool),
            await fx_reciprocal(online, x, pool),
            await fx_div(online, x, x, pool),
        ]
        outs += await bit_decompose(online, x, 8, pool)
        return [len(o) for o in outs], online.statistics().rounds

    results, _ = await run_parties(dealer, body)
    assert results[0] == ([0] * 20, 0)
