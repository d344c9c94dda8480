"""Truncation, Mod2m and bit decomposition (vcpd.protocol.nonlinear.trunc).

Semantics checked against Python: ``mod2m`` is ``x % 2**m`` (in [0, 2^m)),
``trunc`` is ``x >> m`` (floor), ``trunc_pr`` is ``x >> m`` or one more,
``bit_decompose`` gives the two's complement bits of x mod 2^k, LSB first.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from test_nonlinear_harness import BOUNDARY_64, Dealer, opened, random_signed, run_parties, signed

from vcpd.protocol import OnlineParty
from vcpd.protocol.nonlinear import bit_decompose, cost, mod2m, shift_left, trunc, trunc_pr

K = 64


def values(count: int, k: int, seed: int) -> list[int]:
    low, high = -(1 << (k - 1)), (1 << (k - 1)) - 1
    edges = [low, low + 1, -1, 0, 1, high - 1, high] if k > 2 else [low, 0, high]
    return edges + random_signed(count, k, random.Random(seed))


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize("m", [1, 2, 5, 16, 31, 63])
async def test_mod2m_and_trunc_are_exact(parties: int, m: int) -> None:
    dealer = Dealer(parties)
    xs = BOUNDARY_64 + values(30, K, m)
    n = len(xs)
    sx = dealer.ints(xs)
    method: cost.BitLtMethod = "product" if m % 2 else "tree"
    need_mod, need_trunc = cost.cost_mod2m(n, K, m, bitlt=method), cost.cost_trunc(n, K, m, bitlt=method)
    pools_mod, pools_trunc = dealer.material(need_mod.tuples), dealer.material(need_trunc.tuples)

    async def body(i: int, online: OnlineParty) -> Any:
        low = await mod2m(online, sx[i], K, m, pools_mod[i], bitlt=method)
        rounds = online.statistics().open_rounds
        high = await trunc(online, sx[i], K, m, pools_trunc[i], bitlt=method)
        return low, high, rounds

    results, stats = await run_parties(dealer, body)
    assert opened({i: results[i][0] for i in range(parties)}, parties).to_ints() == [x % (1 << m) for x in xs]
    assert signed(opened({i: results[i][1] for i in range(parties)}, parties)) == [x >> m for x in xs]
    assert results[0][2] == need_mod.rounds
    assert stats[0].open_rounds == need_mod.rounds + need_trunc.rounds
    assert all(p.used() == need_mod.tuples for p in pools_mod)
    assert all(p.used() == need_trunc.tuples for p in pools_trunc)


async def test_trunc_beyond_the_bit_length_is_the_sign() -> None:
    dealer = Dealer(2)
    xs = values(20, 20, 1)
    sx = dealer.ints(xs)
    need = cost.cost_trunc(len(xs), 20, 25)
    pools = dealer.material(need.tuples)
    results, _ = await run_parties(dealer, lambda i, online: trunc(online, sx[i], 20, 25, pools[i]))
    assert signed(opened(results, 2)) == [x >> 25 for x in xs]
    assert shift_left(sx[0], 3).values.equals(sx[0].values * 8)


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize(("k", "m"), [(64, 1), (64, 16), (64, 63), (47, 16), (86, 40)])
async def test_trunc_pr_is_within_one(parties: int, k: int, m: int) -> None:
    dealer = Dealer(parties)
    xs = values(60, k, k + m)
    sx = dealer.ints(xs)
    need = cost.cost_trunc_pr(len(xs), k, m)
    pools = dealer.material(need.tuples)
    results, stats = await run_parties(dealer, lambda i, online: trunc_pr(online, sx[i], k, m, pools[i]))
    got = signed(opened(results, parties))
    assert all(g - (x >> m) in (0, 1) for g, x in zip(got, xs))
    assert all(g == x >> m for g, x in zip(got, xs) if x % (1 << m) == 0)  # exact when nothing is cut off
    assert stats[0].open_rounds == need.rounds == 1
    assert all(p.used() == need.tuples for p in pools)


async def test_trunc_pr_rounds_up_with_the_right_probability() -> None:
    """Pr[u = 1] = (x mod 2^m)/2^m: 3/4 for x = 3 (mod 4), m = 2 (400 draws, generous bounds)."""
    dealer = Dealer(2)
    xs = [4 * j + 3 for j in range(-200, 200)]
    sx = dealer.ints(xs)
    pools = dealer.material(cost.needs_trunc_pr(len(xs), 20, 2))
    results, _ = await run_parties(dealer, lambda i, online: trunc_pr(online, sx[i], 20, 2, pools[i]))
    ups = sum(g - (x >> 2) for g, x in zip(signed(opened(results, 2)), xs))
    assert 240 < ups < 360


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize("k", [1, 2, 7, 31, 64])
async def test_bit_decompose_gives_twos_complement(parties: int, k: int) -> None:
    dealer = Dealer(parties)
    xs = values(25, k, k)
    sx = dealer.ints(xs)
    need = cost.cost_bit_decompose(len(xs), k)
    pools = dealer.material(need.tuples)
    results, stats = await run_parties(dealer, lambda i, online: bit_decompose(online, sx[i], k, pools[i]))
    bits = [opened({i: results[i][j] for i in range(parties)}, parties).to_ints() for j in range(k)]
    for e, x in enumerate(xs):
        assert [bits[j][e] for j in range(k)] == [((x % (1 << k)) >> j) & 1 for j in range(k)]
    assert stats[0].open_rounds == need.rounds
    assert all(p.used() == need.tuples for p in pools)


@settings(max_examples=10, deadline=None)
@given(k=st.integers(2, 80), m_frac=st.floats(0, 1), data=st.data())
def test_mod2m_property(k: int, m_frac: float, data: st.DataObject) -> None:
    m = max(1, min(k - 1, round(m_frac * (k - 1))))
    xs = data.draw(st.lists(st.integers(-(1 << (k - 1)), (1 << (k - 1)) - 1), min_size=1, max_size=10))
    dealer = Dealer(2)
    sx = dealer.ints(xs)
    pools = dealer.material(cost.needs_mod2m(len(xs), k, m))

    async def main() -> Any:
        return await run_parties(dealer, lambda i, online: mod2m(online, sx[i], k, m, pools[i]))

    results, _ = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert opened(results, 2).to_ints() == [x % (1 << m) for x in xs]
