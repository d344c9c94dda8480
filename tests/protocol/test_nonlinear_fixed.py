"""Fixed-point arithmetic (vcpd.protocol.nonlinear.fixed), f = 16, k = 31.

Error bounds (stated in the module docstring and asserted here against the
exact rational result of the same fixed-point inputs):

* fx_mul / fx_mul_public: < 1 ulp (2^−16), probabilistic rounding;
* fx_reciprocal / fx_div: < ``FX_ERROR_ULPS`` = 2 ulps whenever b ≠ 0 and the
  result fits the format.
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_nonlinear_harness import P, ClearTruncPr, Dealer, clear_reciprocal, opened, run_parties, signed

from vcpd.protocol import OnlineParty
from vcpd.protocol.nonlinear import (
    FX_F,
    FX_K,
    cost,
    fx_div,
    fx_from_int,
    fx_mul,
    fx_mul_public,
    fx_reciprocal,
    fx_to_int,
    plans,
)
from vcpd.protocol.nonlinear.fixed import FX_ERROR_ULPS

ULP = Fraction(1, 1 << FX_F)
LIMIT = 1 << (FX_K - 1)  # |v| < 2^30, i.e. values in (−2^14, 2^14)


def fixed(x: float) -> int:
    return round(x * (1 << FX_F))


def value(v: int) -> Fraction:
    return Fraction(v, 1 << FX_F)


@pytest.mark.parametrize("parties", [2, 3])
async def test_fx_mul_is_within_one_ulp(parties: int) -> None:
    rng = random.Random(parties)
    dealer = Dealer(parties)
    xs = [fixed(v) for v in (0.0, 1.0, -1.0, 0.5, -2.25, 127.99, -127.99, 1 / 3)]
    ys = [fixed(v) for v in (5.0, -1.0, -1.0, 0.5, 3.5, 127.99, 127.99, 3.0)]
    xs += [rng.randrange(-(1 << 22), 1 << 22) for _ in range(60)]
    ys += [rng.randrange(-(1 << 22), 1 << 22) for _ in range(60)]
    sx, sy = dealer.ints(xs), dealer.ints(ys)
    need = plans.cost_fx_mul(len(xs))
    pools = dealer.material(need.tuples)
    results, stats = await run_parties(dealer, lambda i, online: fx_mul(online, sx[i], sy[i], pools[i]))
    for got, x, y in zip(signed(opened(results, parties)), xs, ys):
        assert abs(value(got) - value(x) * value(y)) < ULP
    assert stats[0].open_rounds == need.rounds == 2
    assert all(p.used() == need.tuples for p in pools)


async def test_fx_mul_with_wide_masking_survives_overflow() -> None:
    """width = 2k masks even overflowing products soundly; in-range results stay exact to 1 ulp."""
    dealer = Dealer(2)
    xs = [fixed(v) for v in (100.5, -3.25, 16000.0, -16000.0)]
    ys = [fixed(v) for v in (-2.0, 7.0, 16000.0, 16000.0)]  # the last two overflow
    sx, sy = dealer.ints(xs), dealer.ints(ys)
    need = plans.cost_fx_mul(len(xs), width=2 * FX_K)
    # k+κ = 102 random bits per mask: 16 low bits, then 6 single bits and 2 bounded 40-bit blocks
    assert need.tuples["bit"] == len(xs) * (FX_F + 6) and need.tuples["bounded"] == len(xs) * 2
    pools = dealer.material(need.tuples)
    results, _ = await run_parties(
        dealer, lambda i, online: fx_mul(online, sx[i], sy[i], pools[i], width=2 * FX_K)
    )
    got = signed(opened(results, 2))
    for g, x, y in list(zip(got, xs, ys))[:2]:
        assert abs(value(g) - value(x) * value(y)) < ULP
    for g, x, y in list(zip(got, xs, ys))[2:]:  # no wrap: the true product, truncated
        assert abs(g - x * y / (1 << FX_F)) < 1


async def test_fx_mul_public_and_conversions() -> None:
    dealer = Dealer(2)
    ints = [-(1 << 14), -3, -1, 0, 1, 7, (1 << 14) - 1]
    fx = [fx_from_int(s) for s in dealer.ints(ints)]
    pools = dealer.material(plans.cost_fx_mul_public(len(ints)).tuples)
    results, _ = await run_parties(dealer, lambda i, online: fx_mul_public(online, fx[i], 0.75, pools[i]))
    for got, x in zip(signed(opened(results, 2)), ints):
        assert abs(value(got) - Fraction(3, 4) * x) < ULP
    # sfix → sint is the floor
    vs = [fixed(v) for v in (-2.5, -0.25, 0.0, 0.999, 3.75, -16383.5)]
    sv = dealer.ints(vs)
    need = plans.cost_fx_to_int(len(vs))
    pools = dealer.material(need.tuples)
    results, stats = await run_parties(dealer, lambda i, online: fx_to_int(online, sv[i], pools[i]))
    assert signed(opened(results, 2)) == [v >> FX_F for v in vs] == [-3, -1, 0, 0, 3, -16384]
    assert stats[0].open_rounds == need.rounds


def divisors(rng: random.Random, count: int) -> list[int]:
    """Nonzero b with |1/b| inside the format (|b| > 2^−13) and the edges of the range."""
    edges = [fixed(v) for v in (1.0, -1.0, 0.5, -0.5, 3.0, 1 / 7, -1 / 3, 16383.99, -16384.0, 0.00025)]
    return edges + [rng.choice((1, -1)) * rng.randrange(1 << 3, LIMIT) for _ in range(count)]


@pytest.mark.parametrize("parties", [2, 3])
async def test_fx_reciprocal_error_bound(parties: int) -> None:
    rng = random.Random(10 + parties)
    dealer = Dealer(parties)
    bs = divisors(rng, 40)
    sb = dealer.ints(bs)
    need = plans.cost_fx_reciprocal(len(bs))
    pools = dealer.material(need.tuples)
    results, stats = await run_parties(dealer, lambda i, online: fx_reciprocal(online, sb[i], pools[i]))
    for got, b in zip(signed(opened(results, parties)), bs):
        exact = 1 / value(b)
        if abs(exact) < 1 << (FX_K - FX_F - 1):
            assert abs(value(got) - exact) < FX_ERROR_ULPS * ULP
    assert stats[0].open_rounds == need.rounds
    assert all(p.used() == need.tuples for p in pools)


@pytest.mark.parametrize("parties", [2, 3])
async def test_fx_div_error_bound(parties: int) -> None:
    rng = random.Random(20 + parties)
    dealer = Dealer(parties)
    bs = divisors(rng, 40)
    a_s = [fixed(v) for v in (1.0, -1.0, 16383.0, -16384.0, 0.0, 2.5, -7.0, 1.0, 0.001, 1.0)]
    a_s += [rng.randrange(-LIMIT, LIMIT) for _ in range(40)]
    sa, sb = dealer.ints(a_s), dealer.ints(bs)
    need = plans.cost_fx_div(len(bs))
    pools = dealer.material(need.tuples)
    results, stats = await run_parties(dealer, lambda i, online: fx_div(online, sa[i], sb[i], pools[i]))
    checked = 0
    for got, a, b in zip(signed(opened(results, parties)), a_s, bs):
        exact = value(a) / value(b)
        if abs(exact) < 1 << (FX_K - FX_F - 1):
            assert abs(value(got) - exact) < FX_ERROR_ULPS * ULP, (a, b)
            checked += 1
    assert checked >= 20
    assert stats[0].open_rounds == need.rounds
    assert all(p.used() == need.tuples for p in pools)


async def test_fixed_comparisons_are_integer_comparisons() -> None:
    from vcpd.protocol.nonlinear import lt

    dealer = Dealer(2)
    a = [fixed(v) for v in (-1.5, 0.0, 2.25, -16384.0, 16383.99)]
    b = [fixed(v) for v in (-1.25, 0.0, 2.0, 16383.99, -16384.0)]
    sa, sb = dealer.ints(a), dealer.ints(b)
    pools = dealer.material(cost.needs_lt(len(a), FX_K))

    async def body(i: int, online: OnlineParty) -> Any:
        return await lt(online, sa[i], sb[i], FX_K, pools[i])

    results, _ = await run_parties(dealer, body)
    assert opened(results, 2).to_ints() == [int(x < y) for x, y in zip(a, b)]


@settings(max_examples=400, deadline=None)
@given(
    af=st.floats(-1, 1),
    bf=st.floats(-1, 1).filter(lambda v: v != 0),
    ups=st.lists(st.booleans(), min_size=1, max_size=16),
)
def test_fx_div_error_bound_in_the_clear(af: float, bf: float, ups: list[bool]) -> None:
    """Replay ``fx_div``/``fx_reciprocal`` in the clear with adversarial roundings: every
    TruncPr input fits its width and the error stays below FX_ERROR_ULPS."""
    a = max(-LIMIT, min(LIMIT - 1, int(af * LIMIT)))
    b = max(-LIMIT, min(LIMIT - 1, int(bf * LIMIT))) or 1
    assume(abs(Fraction(a, b)) < 1 << (FX_K - FX_F - 1))
    trunc = ClearTruncPr(ups)
    rec = plans.plan_reciprocal(P, FX_K)
    g = plans.fx_guard(P, FX_K, FX_F)
    scale, w = clear_reciprocal(b, FX_K, trunc)
    signed_scale = -scale if b < 0 else scale
    z = trunc(signed_scale * w, rec.width + rec.frac + 2, rec.width + rec.frac - FX_F - g)
    result = trunc(a * z, FX_K + FX_F + g + 1, g)
    assert abs(value(result) - value(a) / value(b)) < FX_ERROR_ULPS * ULP
    if abs(Fraction(1 << FX_F, b)) < 1 << (FX_K - FX_F - 1):
        inverse = trunc(signed_scale * w, rec.width + rec.frac + 2, rec.width + rec.frac - 2 * FX_F)
        assert abs(value(inverse) - 1 / value(b)) < FX_ERROR_ULPS * ULP
