"""Integer division (vcpd.protocol.nonlinear.division): exactly Python's ``//`` and ``%``.

Public divisors: powers of two, small and large odd divisors, negative
divisors, |d| ≥ 2^63, on signed 64-bit inputs. Secret divisors: every pair of
boundary values and random pairs for k up to the documented limit (36 bits
for the default prime).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_nonlinear_harness import P, ClearTruncPr, Dealer, clear_reciprocal, opened, random_signed, run_parties, signed

from vcpd.errors import FieldError
from vcpd.protocol import OnlineParty
from vcpd.protocol.nonlinear import div_public, int_div, mod_public, plans


def dividends(k: int, count: int, seed: int) -> list[int]:
    low, high = -(1 << (k - 1)), (1 << (k - 1)) - 1
    return [low, low + 1, -1, 0, 1, high - 1, high] + random_signed(count, k, random.Random(seed))


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize(
    ("k", "d"),
    [
        (64, 3),
        (64, 10),
        (64, -7),
        (64, 1000003),
        (64, 2**63 - 25),
        (64, -(2**63)),
        (64, 2**40),
        (64, -1),
        (31, 1000),
        (8, 3),
        (8, 200),
    ],
)
async def test_div_public_is_floor_division(parties: int, k: int, d: int) -> None:
    dealer = Dealer(parties)
    xs = dividends(k, 40, abs(d) % 1000)
    sx = dealer.ints(xs)
    need = plans.cost_div_public(len(xs), k, d)
    assert need.needs == plans.needs_div_public(len(xs), k, d)
    pools = dealer.material(need.tuples)
    results, stats = await run_parties(dealer, lambda i, online: div_public(online, sx[i], k, d, pools[i]))
    assert signed(opened(results, parties)) == [x // d for x in xs]
    assert stats[0].open_rounds == need.rounds
    assert all(p.used() == need.tuples for p in pools)


async def test_mod_public_is_python_modulo() -> None:
    dealer = Dealer(2)
    xs = dividends(64, 30, 3)
    sx = dealer.ints(xs)
    for d in (10, -10):
        pools = dealer.material(plans.needs_div_public(len(xs), 64, d))
        results, _ = await run_parties(dealer, lambda i, online: mod_public(online, sx[i], 64, d, pools[i]))
        assert signed(opened(results, 2)) == [x % d for x in xs]


@pytest.mark.parametrize(("parties", "k"), [(2, 8), (3, 20), (2, 32), (3, 36)])
async def test_int_div_is_floor_division(parties: int, k: int) -> None:
    dealer = Dealer(parties)
    low, high = -(1 << (k - 1)), (1 << (k - 1)) - 1
    edges = [low, -1, 1, high, 2, -2, 3]
    xs = [x for x in edges for _ in edges]
    ys = [y for _ in edges for y in edges]
    ys += [1, -1, 1 << (k - 2), -(1 << (k - 2)), high, low, 3, 5, 7, -3]
    xs += random_signed(10, k, random.Random(k))
    rng = random.Random(k + 1)
    xs += random_signed(30, k, rng)
    ys += [y or 1 for y in random_signed(30, k, rng)]
    sx, sy = dealer.ints(xs), dealer.ints(ys)
    need = plans.cost_int_div(len(xs), k)
    pools = dealer.material(need.tuples)
    results, stats = await run_parties(dealer, lambda i, online: int_div(online, sx[i], sy[i], k, pools[i]))
    assert signed(opened(results, parties)) == [x // y for x, y in zip(xs, ys)]
    assert stats[0].open_rounds == need.rounds
    assert all(p.used() == need.tuples for p in pools)


async def test_division_refuses_what_the_field_cannot_do() -> None:
    dealer = Dealer(2)
    sx = dealer.ints([1, 2, 3])

    async def body(i: int, online: OnlineParty) -> Any:
        errors = []
        for call in (
            lambda: int_div(online, sx[i], sx[i], 40, dealer.material({})[i]),
            lambda: div_public(online, sx[i], 64, 0, dealer.material({})[i]),
            lambda: div_public(online, sx[i], 87, 3, dealer.material({})[i]),
        ):
            try:
                await call()
            except (FieldError, ZeroDivisionError) as exc:
                errors.append(type(exc).__name__)
        return errors, online.statistics().rounds

    results, _ = await run_parties(dealer, body)
    assert results[0] == (["FieldError", "ZeroDivisionError", "FieldError"], 0)


@settings(max_examples=300, deadline=None)
@given(
    k=st.integers(2, 85),
    d=st.integers(-(2**90), 2**90).filter(lambda v: v != 0),
    x_frac=st.floats(-1, 1),
    ups=st.lists(st.booleans(), min_size=20, max_size=20),
)
def test_public_division_plan_is_exact_in_the_clear(
    k: int, d: int, x_frac: float, ups: list[bool]
) -> None:
    """Replay a plan in the clear with adversarial TruncPr roundings: the remainder always
    ends in (−d, 2d), so the two comparisons make the quotient exact."""
    try:
        plan = plans.plan_div_public(P, k, d)
    except FieldError:
        assume(False)
    bound = 1 << (k - 1)
    x = max(-bound, min(bound - 1, int(x_frac * bound)))
    y = -x if plan.negate else x
    if plan.shift is not None:
        assert (y >> plan.shift) == x // d
        return
    quotient = 0
    for (length, multiplier, width), up in zip(plan.stages, ups):
        z = y * multiplier - (1 << (length - 1))
        assert -(1 << (width - 1)) <= z < 1 << (width - 1)  # TruncPr's input range
        assert width + 41 < P.bit_length()
        q = (z >> length) + int(up and z % (1 << length) != 0)
        quotient += q
        y -= q * plan.d
    assert -plan.d < y < 2 * plan.d
    assert -(1 << (plan.kc - 1)) <= y - plan.d and y < 1 << (plan.kc - 1)
    assert quotient + (y >= plan.d) - (y < 0) == x // d


@settings(max_examples=400, deadline=None)
@given(
    k=st.sampled_from([8, 16, 24, 32, 36]),
    xf=st.floats(-1, 1),
    yf=st.floats(-1, 1).filter(lambda v: v != 0),
    ups=st.lists(st.booleans(), min_size=1, max_size=16),
)
def test_secret_division_is_exact_in_the_clear(k: int, xf: float, yf: float, ups: list[bool]) -> None:
    """Replay ``int_div`` in the clear with adversarial roundings: every TruncPr input fits
    its declared width, and the remainder lands in (−|y|, 2|y|)."""
    bound = 1 << (k - 1)
    x = max(-bound, min(bound - 1, int(xf * bound)))
    y = max(-bound, min(bound - 1, int(yf * bound))) or 1
    trunc = ClearTruncPr(ups)
    rec, g = plans.plan_int_div(P, k).reciprocal, plans.plan_int_div(P, k).guard
    scale, w = clear_reciprocal(y, k, trunc)
    z = trunc(scale * w, rec.width + rec.frac + 2, rec.width + rec.frac - g)
    signed_x = -x if y < 0 else x
    q = trunc(signed_x * z - (1 << (g - 1)), k + g + 2, g)
    r = signed_x - q * abs(y)
    assert -abs(y) < r < 2 * abs(y)
    assert q + (r >= abs(y)) - (r < 0) == x // y
