"""PRandM with bounded tuples: the mask's value, its bits, its tuple draw, and cheating.

r = r' + 2^m·(Σ_{i<t} 2^i·b_(m+i) + 2^t·Σ_j 2^(40j)·u_j) must be the integer
the pieces say (no wrap), below 2^(k+κ), with r' = r mod 2^m and its bits; a
party that shifts its share of a bounded tuple is caught by the MAC check of
the opening that uses it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_nonlinear_harness import P, Dealer, opened, run_parties

from vcpd.errors import MacCheckFailure
from vcpd.math import Shares, reconstruct
from vcpd.protocol import OnlineParty
from vcpd.protocol.nonlinear import cost, trunc_pr
from vcpd.protocol.nonlinear.prand import prand_m


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 80), data=st.data())
def test_prand_m_is_the_sum_of_its_pieces(k: int, data: Any) -> None:
    m = data.draw(st.integers(0, k))
    n = 3
    dealer = Dealer(2)
    need = cost.cost_prand(n, k, m)
    pools = dealer.material(need.tuples)
    masks = [prand_m(pool, n, k, m, cost.KAPPA) for pool in pools]
    assert all(pool.used() == need.tuples for pool in pools)  # exactly what cost_prand announces
    r = reconstruct([mask.r for mask in masks]).to_ints()
    low = reconstruct([mask.low for mask in masks]).to_ints()
    assert all(0 <= v < 1 << (k + cost.KAPPA) for v in r)
    assert low == [v % (1 << m) for v in r]
    if m:
        bits = reconstruct([mask.low_bits for mask in masks]).to_ints()
        assert [sum(bits[i * n + j] << i for i in range(m)) for j in range(n)] == low
    # the bounded tuples sit on top: r >> (m + t) is the Horner sum of the bounded values
    t, q = cost.prand_split(k, m)
    bounded = reconstruct([Shares(pool._parts["bounded"][0].values, pool._parts["bounded"][0].macs) for pool in pools]).to_ints() if q else []  # noqa: SLF001
    top = [sum(bounded[j * n + e] << (cost.BOUNDED_BITS * j) for j in range(q)) for e in range(n)] if q else [0] * n
    assert [v >> (m + t) for v in r] == top


@pytest.mark.parametrize("cheater", [0, 1])
async def test_a_shifted_bounded_share_fails_the_mac_check(cheater: int) -> None:
    """TruncPr opens x + r with r's high part from a bounded tuple: a party adding
    to its value share of that tuple (it cannot fix the MAC) is caught."""
    dealer = Dealer(3)
    xs = [5 << 20, -(3 << 18), 12345]
    sx = dealer.ints(xs)
    need = cost.cost_trunc_pr(len(xs), 47, 16)
    assert need.tuples["bounded"] == len(xs)
    pools = dealer.material(need.tuples)
    victim = pools[cheater]._parts["bounded"][0]  # noqa: SLF001 - the cheater's own shares
    pools[cheater]._parts["bounded"][0] = Shares(victim.values + 1, victim.macs)  # noqa: SLF001

    async def body(i: int, online: OnlineParty) -> Any:
        return await trunc_pr(online, sx[i], 47, 16, pools[i])

    results, _ = await run_parties(dealer, body)
    assert all(isinstance(results[i], MacCheckFailure) for i in range(3)), results


async def test_honest_bounded_shares_pass() -> None:
    dealer = Dealer(3)
    xs = [5 << 20, -(3 << 18), 12345]
    sx = dealer.ints(xs)
    pools = dealer.material(cost.cost_trunc_pr(len(xs), 47, 16).tuples)
    results, _ = await run_parties(dealer, lambda i, online: trunc_pr(online, sx[i], 47, 16, pools[i]))
    got = [v - P if v > P // 2 else v for v in opened(results, 3).to_ints()]
    assert all(g - (x >> 16) in (0, 1) for g, x in zip(got, xs))

