"""Plans and counts of division and fixed-point operations (pure; see :mod:`.cost`).

Division needs fixed-point widths that depend on the prime: the truncation
limit K_max (p > 2^(K_max+κ+1)) bounds every intermediate product, so the
plans here choose the stages of public division, the working precision F of
the Goldschmidt reciprocal and the guard bits of fixed-point division from p.
The protocols of :mod:`.division` and :mod:`.fixed` follow these plans; the
``cost_*``/``needs_*`` functions count exactly what they draw (default prime
unless ``p`` is given).

This module is pure (no I/O, no trio) and imports from vcpd only ``errors`` and
``math`` (for the default prime).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from vcpd.errors import FieldError
from vcpd.math import DEFAULT_PRIME

from .cost import (
    DEFAULT_BITLT,
    FX_F,
    FX_K,
    KAPPA,
    BitLtMethod,
    Cost,
    check_bit_length,
    cost_bit_decompose,
    cost_ltz,
    cost_prefix_or,
    cost_trunc,
    cost_trunc_pr,
    empty_is_free,
    max_truncation_bits,
    tuples,
)

__all__ = [
    "IntDivPlan",
    "PublicDivisionPlan",
    "ReciprocalPlan",
    "cost_div_public",
    "cost_fx_div",
    "cost_fx_mul",
    "cost_fx_mul_public",
    "cost_fx_reciprocal",
    "cost_fx_to_int",
    "cost_goldschmidt",
    "cost_int_div",
    "cost_normalize",
    "fx_guard",
    "needs_div_public",
    "needs_fx_div",
    "needs_fx_mul",
    "needs_fx_reciprocal",
    "needs_fx_to_int",
    "needs_int_div",
    "plan_div_public",
    "plan_int_div",
    "plan_reciprocal",
]



@dataclass(frozen=True)
class PublicDivisionPlan:
    """How :func:`.division.div_public` computes ⌊x/d⌋ for a public d.

    Attributes:
        negate: d < 0: compute ⌊(−x)/(−d)⌋ (on k+1 bits).
        k: bit length of the (possibly negated) dividend.
        d: the positive divisor used.
        shift: log2(d) when d is a power of two (then an exact Trunc), else None.
        stages: per approximation stage (L, M, K): q_s = TruncPr(y·M − 2^(L−1), K, L)
            with M = round(2^L/d); each divides the remainder's bound by ~2^L/d.
        kc: bit length of the two final comparisons [r < 0], [r − d < 0].
    """

    negate: bool
    k: int
    d: int
    shift: int | None
    stages: tuple[tuple[int, int, int], ...]
    kc: int


def plan_div_public(p: int, k: int, d: int, kappa: int = KAPPA) -> PublicDivisionPlan:
    """Choose the stages of public division (pure; see ``division.div_public``).

    Each stage multiplies the remainder y (|y| ≤ B) by M ≈ 2^L/d and
    truncates with a bias of −1/2, so y/d − q_s ∈ (−1/2 − ε, 3/2 + ε) with
    ε = B/2^(L+1); L is as large as the field allows (TruncPr needs
    p > 2^(K+κ+1)) and stops growing once ε ≤ 1/2. Then the remainder lies in
    (−d, 2d) and two comparisons fix the quotient.

    Raises:
        ZeroDivisionError: d = 0.
        FieldError: the bit lengths do not fit the field.
    """
    if d == 0:
        raise ZeroDivisionError("division of secret integers by zero")
    check_bit_length(p, k, kappa)
    negate = d < 0
    if negate:
        d, k = -d, k + 1
        check_bit_length(p, k, kappa)
    if d & (d - 1) == 0:
        return PublicDivisionPlan(negate, k, d, d.bit_length() - 1, (), 0)
    k_max = max_truncation_bits(p, kappa)
    bound = 1 << (k - 1)
    stages: list[tuple[int, int, int]] = []
    while bound > d:
        length = bound.bit_length()  # 2^L ≥ bound makes ε ≤ 1/2
        while length >= 1:
            multiplier = ((1 << (length + 1)) + d) // (2 * d)
            width = max((bound * multiplier + (1 << (length - 1))).bit_length() + 1, length + 1)
            if width <= k_max:
                break
            length -= 1
        if length < 1 or multiplier == 0:
            raise FieldError(f"division of {k}-bit integers by {d} does not fit the field")
        stages.append((length, multiplier, width))
        if 1 << length >= bound:
            break
        new_bound = (3 * d * (1 << length) + d * bound + (1 << (length + 1)) - 1) >> (length + 1)
        if new_bound >= bound or len(stages) > 16:
            raise FieldError(f"division of {k}-bit integers by {d} does not fit the field")
        bound = new_bound
    kc = (2 * d).bit_length() + 1
    check_bit_length(p, kc, kappa)
    return PublicDivisionPlan(negate, k, d, None, tuple(stages), kc)


@dataclass(frozen=True)
class ReciprocalPlan:
    """Fixed-point widths of the normalised reciprocal (Goldschmidt).

    Attributes:
        k: bit length of the signed divisor.
        width: K = k − 1, the normalised divisor c lies in [2^(K−1), 2^K].
        frac: F, fractional bits of the iteration (u = c/2^K, W ≈ 2^F/u).
        iterations: θ, Goldschmidt steps (the error e ≤ 0.0858 of the linear
            first guess becomes e^(2^θ) ≤ 2^−(F+2)).
    """

    k: int
    width: int
    frac: int
    iterations: int


_APPROX_ERROR_BITS: Final = 3.54
"""−log2 of the worst relative error (0.0858) of the first guess 2.9142 − 2u on [1/2, 1]."""


def plan_reciprocal(p: int, k: int, kappa: int = KAPPA) -> ReciprocalPlan:
    """The Goldschmidt widths for k-bit divisors (F as large as the field allows).

    Raises:
        FieldError: k < 3 or the field is too small.
    """
    check_bit_length(p, k, kappa)
    k_max = max_truncation_bits(p, kappa)
    frac = (k_max - 3) // 2  # y·(1 + x) has 2F + 3 bits
    if k < 3 or frac < k:
        raise FieldError(f"{k}-bit divisors need a {2 * k + kappa + 5}-bit field")
    iterations = max(1, math.ceil(math.log2((frac + 2) / _APPROX_ERROR_BITS)))
    return ReciprocalPlan(k, k - 1, frac, iterations)


def cost_normalize(n: int, k: int, kappa: int = KAPPA, *, also: bool = False) -> Cost:
    """Norm(b): bit decomposition, sign flips, prefix-OR (see ``division.normalize_program``)."""
    flips = tuples(1, triple=n * (max(k - 2, 0) + 1 + int(also)))
    return cost_bit_decompose(n, k, kappa) + flips + cost_prefix_or(n, max(k - 2, 0))


def cost_goldschmidt(n: int, plan: ReciprocalPlan, kappa: int = KAPPA) -> Cost:
    """W ≈ 2^F/u from the normalised c (see ``division.goldschmidt_program``)."""
    f = plan.frac
    total = tuples(1, triple=n) + cost_trunc_pr(n, 2 * f + 2, f, kappa)
    for i in range(plan.iterations):
        if i == plan.iterations - 1:
            total = total + tuples(1, triple=n) + cost_trunc_pr(n, 2 * f + 3, f, kappa)
        else:
            both = cost_trunc_pr(n, 2 * f + 3, f, kappa) | cost_trunc_pr(n, 2 * f - 4, f, kappa)
            total = total + tuples(1, triple=2 * n) + both
    return total


@dataclass(frozen=True)
class IntDivPlan:
    """Widths of secret integer division: the reciprocal and G (Z ≈ 2^G/|y|)."""

    reciprocal: ReciprocalPlan
    guard: int


def plan_int_div(p: int, k: int, kappa: int = KAPPA) -> IntDivPlan:
    """G = k + 2; exactness needs F ≥ k + 5 and 2k + 4 ≤ the truncation limit.

    Raises:
        FieldError: k too large for exact division in this field.
    """
    k_max = max_truncation_bits(p, kappa)
    frac = (k_max - 3) // 2
    limit = min(frac - 5, (k_max - 4) // 2)
    if k > limit:
        raise FieldError(f"exact division of {k}-bit secrets needs k ≤ {limit} in this field")
    return IntDivPlan(plan_reciprocal(p, k, kappa), k + 2)


@empty_is_free
def cost_int_div(
    n: int, k: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT, *, p: int = DEFAULT_PRIME
) -> Cost:
    """⌊x/y⌋ for secret signed k-bit x, y (see ``division.int_div``)."""
    plan = plan_int_div(p, k, kappa)
    rec, g = plan.reciprocal, plan.guard
    total = cost_normalize(n, k, kappa, also=True) + tuples(1, triple=n) + cost_goldschmidt(n, rec, kappa)
    total = total + tuples(1, triple=n) + cost_trunc_pr(n, rec.width + rec.frac + 2, rec.width + rec.frac - g, kappa)
    total = total + tuples(1, triple=n) + cost_trunc_pr(n, k + g + 2, g, kappa)
    return total + tuples(1, triple=n) + cost_ltz(2 * n, k + 1, kappa, bitlt)


@empty_is_free
def cost_div_public(
    n: int, k: int, d: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT, *, p: int = DEFAULT_PRIME
) -> Cost:
    """⌊x/d⌋ for secret signed k-bit x and public d ≠ 0 (see ``division.div_public``)."""
    plan = plan_div_public(p, k, d, kappa)
    if plan.shift is not None:
        return cost_trunc(n, plan.k, plan.shift, kappa, bitlt) if plan.shift else Cost()
    total = Cost()
    for length, _, width in plan.stages:
        total = total + cost_trunc_pr(n, width, length, kappa)
    return total + cost_ltz(2 * n, plan.kc, kappa, bitlt)


# ---------------------------------------------------------------- fixed point


def fx_guard(p: int, k: int, f: int, kappa: int = KAPPA) -> int:
    """Guard bits g of fixed-point division (Z ≈ 2^(f+g)/b; a·Z needs k+f+g+1 bits)."""
    rec = plan_reciprocal(p, k, kappa)
    g = min(max_truncation_bits(p, kappa) - k - f - 1, rec.width + rec.frac - f - 1)
    if g < 1:
        raise FieldError(f"sfix division with k={k}, f={f} does not fit the field")
    return g


@empty_is_free
def cost_fx_mul(n: int, k: int = FX_K, f: int = FX_F, kappa: int = KAPPA, *, width: int | None = None) -> Cost:
    """x·y then TruncPr(·, width = k+f, f) (MP-SPDZ sfix multiplication): 2 rounds."""
    return tuples(1, triple=n) + cost_trunc_pr(n, k + f if width is None else width, f, kappa)


@empty_is_free
def cost_fx_mul_public(n: int, k: int = FX_K, f: int = FX_F, kappa: int = KAPPA) -> Cost:
    """x·c for a public real c: one TruncPr(·, k+f, f)."""
    return cost_trunc_pr(n, k + f, f, kappa)


@empty_is_free
def cost_fx_reciprocal(n: int, k: int = FX_K, f: int = FX_F, kappa: int = KAPPA, *, p: int = DEFAULT_PRIME) -> Cost:
    """1/b for fixed-point b (see ``fixed.fx_reciprocal``)."""
    rec = plan_reciprocal(p, k, kappa)
    total = cost_normalize(n, k, kappa) + tuples(1, triple=2 * n) + cost_goldschmidt(n, rec, kappa)
    shift = rec.width + rec.frac - 2 * f
    return total + tuples(1, triple=n) + cost_trunc_pr(n, rec.width + rec.frac + 2, shift, kappa)


@empty_is_free
def cost_fx_div(n: int, k: int = FX_K, f: int = FX_F, kappa: int = KAPPA, *, p: int = DEFAULT_PRIME) -> Cost:
    """a/b for fixed-point a, b (see ``fixed.fx_div``)."""
    rec = plan_reciprocal(p, k, kappa)
    g = fx_guard(p, k, f, kappa)
    total = cost_normalize(n, k, kappa) + tuples(1, triple=2 * n) + cost_goldschmidt(n, rec, kappa)
    total = total + tuples(1, triple=n) + cost_trunc_pr(n, rec.width + rec.frac + 2, rec.width + rec.frac - f - g, kappa)
    return total + tuples(1, triple=n) + cost_trunc_pr(n, k + f + g + 1, g, kappa)


@empty_is_free
def cost_fx_to_int(n: int, k: int = FX_K, f: int = FX_F, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> Cost:
    """⌊v/2^f⌋ (sfix → sint, floor): an exact Trunc."""
    return cost_trunc(n, k, f, kappa, bitlt)


# ---------------------------------------------------------------- needs_* shorthands


def needs_div_public(
    n: int, k: int, d: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT, *, p: int = DEFAULT_PRIME
) -> dict[str, int]:
    """Tuples of ``div_public`` and ``mod_public``."""
    return cost_div_public(n, k, d, kappa, bitlt, p=p).needs


def needs_int_div(
    n: int, k: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT, *, p: int = DEFAULT_PRIME
) -> dict[str, int]:
    """Tuples of ``int_div``."""
    return cost_int_div(n, k, kappa, bitlt, p=p).needs


def needs_fx_mul(
    n: int, k: int = FX_K, f: int = FX_F, kappa: int = KAPPA, *, width: int | None = None
) -> dict[str, int]:
    """Tuples of ``fx_mul`` (``fx_mul_public``: the same without the triples)."""
    return cost_fx_mul(n, k, f, kappa, width=width).needs


def needs_fx_reciprocal(
    n: int, k: int = FX_K, f: int = FX_F, kappa: int = KAPPA, *, p: int = DEFAULT_PRIME
) -> dict[str, int]:
    """Tuples of ``fx_reciprocal``."""
    return cost_fx_reciprocal(n, k, f, kappa, p=p).needs


def needs_fx_div(n: int, k: int = FX_K, f: int = FX_F, kappa: int = KAPPA, *, p: int = DEFAULT_PRIME) -> dict[str, int]:
    """Tuples of ``fx_div``."""
    return cost_fx_div(n, k, f, kappa, p=p).needs


def needs_fx_to_int(
    n: int, k: int = FX_K, f: int = FX_F, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT
) -> dict[str, int]:
    """Tuples of ``fx_to_int``."""
    return cost_fx_to_int(n, k, f, kappa, bitlt).needs
