"""Comparisons, equality tests and selections (vcpd.protocol.nonlinear.compare).

Every result is checked against Python on random signed 64-bit inputs plus
every pair of the boundary values −2^63, −1, 0, 1, 2^63−1 (``a < b`` runs LTZ
on 65 bits, as MP-SPDZ does), for 2 and 3 parties and both BitLT variants;
the tuples drawn must equal ``needs_*`` and the rounds ``cost_*``.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from test_nonlinear_harness import BOUNDARY_64, FIELD, Dealer, opened, random_signed, run_parties, signed

from vcpd.protocol import OnlineParty
from vcpd.protocol.nonlinear import compare, cost
from vcpd.protocol.nonlinear.program import run_parallel
from vcpd.protocol.nonlinear.trunc import trunc_pr_program
from vcpd.testing import open_memory_transports

K = 64


def inputs(count: int, seed: int) -> tuple[list[int], list[int]]:
    """Boundary pairs (all 25), equal pairs, then random pairs."""
    rng = random.Random(seed)
    a = [x for x in BOUNDARY_64 for _ in BOUNDARY_64]
    b = [y for _ in BOUNDARY_64 for y in BOUNDARY_64]
    same = random_signed(8, K, rng)
    a += same
    b += same
    a += random_signed(count, K, rng)
    b += random_signed(count, K, rng)
    return a, b


COMPARISONS: list[tuple[str, Callable[..., Any], Callable[[int, int], bool]]] = [
    ("lt", compare.lt, operator.lt),
    ("le", compare.le, operator.le),
    ("gt", compare.gt, operator.gt),
    ("ge", compare.ge, operator.ge),
]


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize("method", ["tree", "product"])
async def test_comparisons_match_python(parties: int, method: cost.BitLtMethod) -> None:
    dealer = Dealer(parties)
    a, b = inputs(40, seed=parties)
    n = len(a)
    sa, sb = dealer.ints(a), dealer.ints(b)
    need = cost.cost_lt(n, K, bitlt=method)
    assert need.needs == cost.needs_lt(n, K, bitlt=method)
    for name, op, reference in COMPARISONS:
        pools = dealer.material(need.tuples)

        async def body(i: int, online: OnlineParty, op: Any = op, pools: Any = pools) -> Any:
            return await op(online, sa[i], sb[i], K, pools[i], bitlt=method)

        results, stats = await run_parties(dealer, body)
        assert opened(results, parties).to_ints() == [int(reference(x, y)) for x, y in zip(a, b)], name
        assert all(pool.used() == need.tuples for pool in pools)
        assert stats[0].open_rounds == need.rounds


@pytest.mark.parametrize("parties", [2, 3])
async def test_equality_matches_python(parties: int) -> None:
    dealer = Dealer(parties)
    a, b = inputs(40, seed=10 + parties)
    n = len(a)
    sa, sb = dealer.ints(a), dealer.ints(b)
    need = cost.cost_eqz(n, K)
    for op, reference in ((compare.eq, operator.eq), (compare.ne, operator.ne)):
        pools = dealer.material(need.tuples)

        async def body(i: int, online: OnlineParty, op: Any = op, pools: Any = pools) -> Any:
            return await op(online, sa[i], sb[i], K, pools[i])

        results, stats = await run_parties(dealer, body)
        assert opened(results, parties).to_ints() == [int(reference(x, y)) for x, y in zip(a, b)]
        assert all(pool.used() == need.tuples for pool in pools)
        assert stats[0].open_rounds == need.rounds


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 9, 33, 86])
async def test_ltz_and_eqz_at_every_width(k: int) -> None:
    """Both single- and two-stage EQZ, LTZ down to k = 1, and the widest k the field allows."""
    dealer = Dealer(2)
    rng = random.Random(k)
    low, high = -(1 << (k - 1)), (1 << (k - 1)) - 1
    values = sorted({low, high, 0, min(1, high), max(-1, low)}) + random_signed(30, k, rng)
    n = len(values)
    sx = dealer.ints(values)
    for op, reference, need in (
        (compare.ltz, lambda v: v < 0, cost.cost_ltz(n, k)),
        (compare.eqz, lambda v: v == 0, cost.cost_eqz(n, k)),
    ):
        pools = dealer.material(need.tuples)

        async def body(i: int, online: OnlineParty, op: Any = op, pools: Any = pools) -> Any:
            return await op(online, sx[i], k, pools[i])

        results, stats = await run_parties(dealer, body)
        assert opened(results, 2).to_ints() == [int(reference(v)) for v in values]
        assert all(pool.used() == need.tuples for pool in pools)
        assert stats[0].open_rounds == need.rounds


@pytest.mark.parametrize("parties", [2, 3])
async def test_min_max_abs_if_else(parties: int) -> None:
    dealer = Dealer(parties)
    a, b = inputs(20, seed=20 + parties)
    n = len(a)
    sa, sb = dealer.ints(a), dealer.ints(b)
    for op, reference, need in (
        (compare.minimum, min, cost.cost_minmax(n, K)),
        (compare.maximum, max, cost.cost_minmax(n, K)),
    ):
        pools = dealer.material(need.tuples)

        async def body(i: int, online: OnlineParty, op: Any = op, pools: Any = pools) -> Any:
            return await op(online, sa[i], sb[i], K, pools[i])

        results, stats = await run_parties(dealer, body)
        assert signed(opened(results, parties)) == [reference(x, y) for x, y in zip(a, b)]
        assert all(pool.used() == need.tuples for pool in pools)
        assert stats[0].open_rounds == need.rounds
    # |x| (|−2^63| = 2^63 is exact as a field element, one bit wider than the input)
    need = cost.cost_abs(n, K)
    pools = dealer.material(need.tuples)
    results, stats = await run_parties(dealer, lambda i, online: compare.absolute(online, sa[i], K, pools[i]))
    assert opened(results, parties).to_ints() == [abs(x) for x in a]
    assert all(pool.used() == need.tuples for pool in pools) and stats[0].open_rounds == need.rounds
    # if_else with a secret bit
    bits = [random.Random(parties).randrange(2) for _ in range(n)]
    sc = dealer.ints(bits)
    pools = dealer.material(cost.needs_if_else(n))
    results, stats = await run_parties(dealer, lambda i, online: compare.if_else(online, sc[i], sa[i], sb[i], pools[i]))
    assert signed(opened(results, parties)) == [x if c else y for c, x, y in zip(bits, a, b)]
    assert stats[0].open_rounds == 1


async def test_independent_programs_share_rounds() -> None:
    """LTZ (6 rounds), EQZ (4) and TruncPr (1) run together in 6 rounds, one payload per peer each."""
    dealer = Dealer(3)
    rng = random.Random(5)
    x, y, z = (random_signed(50, 40, rng) for _ in range(3))
    sx, sy, sz = dealer.ints(x), dealer.ints(y), dealer.ints(z)
    needs = [cost.cost_ltz(50, 65), cost.cost_eqz(50, 40), cost.cost_trunc_pr(50, 40, 8)]
    pools = [dealer.material(need.tuples) for need in needs]
    async with open_memory_transports(3) as hub:

        async def body(i: int, online: OnlineParty) -> Any:
            return await run_parallel(
                online,
                compare.ltz_program(online, sx[i], 65, pools[0][i]),
                compare.eqz_program(online, sy[i], 40, pools[1][i]),
                trunc_pr_program(online, sz[i], 40, 8, pools[2][i]),
            )

        results, stats = await run_parties(dealer, body, hub=hub, check=False)
        messages = hub.messages
    assert stats[0].open_rounds == max(need.rounds for need in needs) == 6
    assert messages == 6 * 3 * 2  # one payload per peer per round
    assert opened({i: results[i][0] for i in range(3)}, 3).to_ints() == [int(v < 0) for v in x]
    assert opened({i: results[i][1] for i in range(3)}, 3).to_ints() == [int(v == 0) for v in y]
    truncated = signed(opened({i: results[i][2] for i in range(3)}, 3))
    assert all(t - (v >> 8) in (0, 1) for t, v in zip(truncated, z))


@settings(max_examples=12, deadline=None)
@given(
    k=st.integers(2, 70),
    data=st.data(),
)
def test_comparison_properties(k: int, data: st.DataObject) -> None:
    """lt and eq agree with Python on arbitrary k-bit pairs (hypothesis picks the values)."""
    values = st.integers(-(1 << (k - 1)), (1 << (k - 1)) - 1)
    a = data.draw(st.lists(values, min_size=1, max_size=12))
    b = data.draw(st.lists(values, min_size=len(a), max_size=len(a)))
    dealer = Dealer(2)
    sa, sb = dealer.ints(a), dealer.ints(b)
    need_lt, need_eq = cost.cost_lt(len(a), k), cost.cost_eqz(len(a), k)
    pools_lt, pools_eq = dealer.material(need_lt.tuples), dealer.material(need_eq.tuples)

    async def body(i: int, online: OnlineParty) -> Any:
        less = await compare.lt(online, sa[i], sb[i], k, pools_lt[i])
        same = await compare.eq(online, sa[i], sb[i], k, pools_eq[i])
        return less, same

    async def main() -> Any:
        return await run_parties(dealer, body)

    results, _ = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert opened({i: results[i][0] for i in range(2)}, 2).to_ints() == [int(x < y) for x, y in zip(a, b)]
    assert opened({i: results[i][1] for i in range(2)}, 2).to_ints() == [int(x == y) for x, y in zip(a, b)]


async def test_auto_picks_the_product_for_long_vectors() -> None:
    """``bitlt="auto"`` (the default): tree below AUTO_PRODUCT_MIN elements, product from there."""
    dealer = Dealer(2)
    rng = random.Random(3)
    for n, rounds in ((cost.AUTO_PRODUCT_MIN - 1, 6), (cost.AUTO_PRODUCT_MIN, 9)):
        a, b = random_signed(n, K, rng), random_signed(n, K, rng)
        sa, sb = dealer.ints(a), dealer.ints(b)
        need = cost.cost_lt(n, K)
        assert need.rounds == rounds
        pools = dealer.material(need.tuples)
        results, stats = await run_parties(dealer, lambda i, online: compare.lt(online, sa[i], sb[i], K, pools[i]))
        assert opened(results, 2).to_ints() == [int(x < y) for x, y in zip(a, b)]
        assert stats[0].open_rounds == rounds and all(p.used() == need.tuples for p in pools)


async def test_bits_made_from_square_pairs_drive_a_comparison() -> None:
    """Bits from ``OnlineParty.bits_from_squares`` (mpc-notes §1.5) work as the ``"bit"`` tuples."""
    from vcpd.protocol import SquarePair
    from vcpd.protocol.nonlinear import Material

    dealer = Dealer(3)
    rng = random.Random(9)
    a, b = random_signed(20, 32, rng), random_signed(20, 32, rng)
    sa, sb = dealer.ints(a), dealer.ints(b)
    need = cost.cost_lt(len(a), 32, bitlt="tree")
    roots = FIELD.random(need.tuples["bit"])
    sq, sq2 = dealer.share(roots), dealer.share(roots * roots)
    triples = dealer.material({"triple": need.tuples["triple"], "bounded": need.tuples["bounded"]})

    async def body(i: int, online: OnlineParty) -> Any:
        bits = await online.bits_from_squares(SquarePair(sq[i], sq2[i]))
        pool = Material(
            {
                "bit": [bits],
                "triple": triples[i].take("triple", need.tuples["triple"]),
                "bounded": triples[i].take("bounded", need.tuples["bounded"]),
            }
        )
        return await compare.lt(online, sa[i], sb[i], 32, pool, bitlt="tree")

    results, _ = await run_parties(dealer, body)
    assert opened(results, 3).to_ints() == [int(x < y) for x, y in zip(a, b)]
