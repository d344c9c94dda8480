"""Integer division of secrets by public and by secret divisors, and the reciprocal core.

Semantics: **floor division, exactly Python's ``//``** (rounding toward −∞,
so −7 // 2 = −4 and 7 // −2 = −4), for signed k-bit dividends. MP-SPDZ's
``int_div`` truncates toward zero instead; ``x - (x // d) * d`` gives Python's
``%`` (:func:`mod_public`).

* :func:`div_public` — divisor d public. Powers of two are an exact Trunc.
  Otherwise a few *approximation stages* (no triples): the remainder y is
  multiplied by M ≈ 2^L/d and probabilistically truncated with a bias of
  −1/2 (TruncPr, one round each), leaving y/d − q ∈ (−1/2 − ε, 3/2 + ε); the
  field bounds L, so 64-bit inputs take two stages. Once ε ≤ 1/2 the
  remainder r lies in (−d, 2d) and q += 1 − [r − d < 0] − [r < 0] (two LTZ
  on ⌈log2 d⌉ + 2 bits, stacked into one). The plan is
  :func:`.cost.plan_div_public`.
* :func:`int_div` — divisor y secret. y = 0 gives an unspecified result,
  never an error (raising would reveal it); its out-of-range intermediates
  weaken the statistical masking of the affected openings from 2^−40 to
  about 2^−35. Norm(y) (bit decomposition, sign, prefix-OR: CdH10 §3.4) gives
  c = |y|·σ ∈ [2^(K−1), 2^K] with σ a power of two; a Goldschmidt iteration
  (CdH10-fixed Prot. 3.3, MP-SPDZ ``FPDiv``/``AppRcr``) gives W ≈ 2^(F+K)/c
  to F ≈ 41 bits; Z = σ·W/2^(F+K−G) ≈ 2^G/|y|, q̃ = TruncPr(x'·Z − 2^(G−1), ·, G)
  with x' = sign(y)·x, and the same two-comparison correction as above makes
  the quotient exact. The field limits it to k ≤ 36 for the default prime
  (:func:`.cost.plan_int_div` raises otherwise).
* :func:`normalize_program` and :func:`goldschmidt_program` are shared with
  the fixed-point reciprocal and division of :mod:`.fixed`.

This module must not import vcpd.net, vcpd.testing, services, api or daemon;
from vcpd it uses only errors, math and vcpd.protocol. No shares or opened
values are logged or put into exceptions.
"""

from __future__ import annotations

from typing import NamedTuple

from vcpd.math import Shares

from ..online import OnlineParty
from .bits import prefix_or, rows
from .compare import ltz_program
from .cost import DEFAULT_BITLT, KAPPA, BitLtMethod, check_bit_length
from .material import Material
from .pack import weighted_rows
from .plans import ReciprocalPlan, plan_div_public, plan_int_div
from .program import Program, multiply, parallel, run
from .trunc import bit_decompose_program, trunc_pr_program, trunc_program

__all__ = [
    "Normalized",
    "div_public",
    "div_public_program",
    "goldschmidt_program",
    "int_div",
    "int_div_program",
    "mod_public",
    "normalize_program",
]

_ALPHA: float = 2.9142
"""First guess 1/u ≈ 2.9142 − 2u on [1/2, 1] (relative error ≤ 0.0858; CdH10, MP-SPDZ AppRcr)."""


# ---------------------------------------------------------------- public divisor


def div_public_program(
    online: OnlineParty,
    x: Shares,
    k: int,
    d: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Program[Shares]:
    """⌊x/d⌋ (Python ``x // d``) for signed k-bit x and a public integer d ≠ 0."""
    field = x.field
    plan = plan_div_public(field.p, k, d, kappa)
    y = -x if plan.negate else x
    if not len(x):
        return y
    if plan.shift is not None:
        if plan.shift == 0:
            return y
        return (yield from trunc_program(online, y, plan.k, plan.shift, material, kappa=kappa, bitlt=bitlt))
    quotient = y - y
    for length, multiplier, width in plan.stages:
        biased = online.add_public(y * multiplier, -(1 << (length - 1)))
        q = yield from trunc_pr_program(online, biased, width, length, material, kappa=kappa)
        quotient = quotient + q
        y = y - q * plan.d
    return (yield from _correct(online, quotient, y, plan.d, plan.kc, material, kappa=kappa, bitlt=bitlt))


def _correct(
    online: OnlineParty,
    quotient: Shares,
    remainder: Shares,
    d: Shares | int,
    kc: int,
    material: Material,
    *,
    kappa: int,
    bitlt: BitLtMethod,
) -> Program[Shares]:
    """quotient + ⌊remainder/d⌋ for remainder ∈ (−d, 2d): + [r ≥ d] − [r < 0]."""
    n = len(remainder)
    shifted = remainder - d if isinstance(d, Shares) else online.add_public(remainder, -d)
    both = Shares.concat([remainder, shifted])
    signs = yield from ltz_program(online, both, kc, material, kappa=kappa, bitlt=bitlt)
    return online.add_public(quotient - signs[:n] - signs[n:], 1)


async def div_public(
    online: OnlineParty,
    x: Shares,
    k: int,
    d: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """Secret ``x // d`` for a public d (see :func:`div_public_program`)."""
    return await run(online, div_public_program(online, x, k, d, material, kappa=kappa, bitlt=bitlt))


async def mod_public(
    online: OnlineParty,
    x: Shares,
    k: int,
    d: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """Secret ``x % d`` (Python semantics: the sign of d) = x − d·(x // d)."""
    return x - (await div_public(online, x, k, d, material, kappa=kappa, bitlt=bitlt)) * d


# ---------------------------------------------------------------- normalisation


class Normalized(NamedTuple):
    """Norm(b) for a signed k-bit b ≠ 0 (CdH10 §3.4, MP-SPDZ ``Norm``).

    Attributes:
        magnitude: |b|.
        scale: σ = 2^(K−1−e) with e the index of the top bit of |b| (K = k−1),
            so that |b|·σ ∈ [2^(K−1), 2^K].
        negative: the secret bit [b < 0].
        also: ``also``·(1 − 2·[b < 0]) for the vector passed in (or None).
    """

    magnitude: Shares
    scale: Shares
    negative: Shares
    also: Shares | None


def normalize_program(
    online: OnlineParty, b: Shares, k: int, material: Material, *, also: Shares | None = None, kappa: int = KAPPA
) -> Program[Normalized]:
    """Norm(b): bits of b, then the top bit of |b| − [b < 0] by a prefix-OR.

    The sign is the top bit of the two's complement. t = b ⊕ sign (bitwise)
    is |b| for b ≥ 0 and |b| − 1 for b < 0; its top set bit e (e = 0 when
    t ≤ 1) satisfies 2^e ≤ |b| ≤ 2^(e+1), which is all the normalisation
    needs (c = |b|·2^(K−1−e) may reach 2^K exactly; the first guess of the
    reciprocal is good on the closed interval [1/2, 1]). σ is a power-of-two
    sum of the prefix-OR rows.
    """
    n = len(b)
    bits = yield from bit_decompose_program(online, b, k, material, kappa=kappa)
    sign = rows(bits, [k - 1], n)
    middle = k - 2  # bits 1 … k−2 (bit 0 never matters: t ≤ 1 gives e = 0)
    pairs: list[tuple[Shares, Shares]] = []
    if middle:
        pairs.append((bits[n : (k - 1) * n], Shares.concat([sign] * middle) if middle > 1 else sign))
    pairs.append((b, sign))
    if also is not None:
        pairs.append((also, sign))
    products = yield from multiply(pairs, material)
    flipped_also = None
    if also is not None:
        flipped_also = also - products[-1] - products[-1]
        products = products[:-1]
    magnitude = b - products[-1] - products[-1]
    scale_top = 1 << (k - 2)
    if middle:
        # t_i = b_i + s − 2·b_i·s, listed from the top (row 0 = bit k−2) for the prefix-OR.
        t = bits[n : (k - 1) * n] + (Shares.concat([sign] * middle) if middle > 1 else sign)
        t = t - products[0] - products[0]
        top_down = rows(t, list(range(middle - 1, -1, -1)), n)
        ored = yield from prefix_or(top_down, middle, n, material)
        # row j of ``ored`` is [t ≥ 2^(k−2−j)]; σ = 2^(K−1) − Σ_j 2^j·row_j with K = k−1.
        scale = online.add_public(-weighted_rows(ored, middle, n), scale_top)
    else:
        scale = online.constant(scale_top, n)
    return Normalized(magnitude, scale, sign, flipped_also)


def goldschmidt_program(
    online: OnlineParty, c: Shares, plan: ReciprocalPlan, material: Material, *, kappa: int = KAPPA
) -> Program[Shares]:
    """W ≈ 2^F/u for u = c/2^K ∈ [1/2, 1] (CdH10 Prot. 3.3 / MP-SPDZ FPDiv, F = ``plan.frac``).

    w₀ = 2.9142 − 2u (linear), e = 1 − u·w₀; then θ times y ← y(1 + x),
    x ← x² (the two products and the two truncations share rounds), so that
    y = w₀(1 − e^(2^θ))/(1 − e) → 1/u. Each TruncPr adds < 1 ulp of 2^−F;
    relative error of the result ≤ 2^−(F−4).
    """
    f, width = plan.frac, plan.width
    unit = 1 << f
    u = c * (1 << (f - width))
    w = online.add_public(-(u + u), round(_ALPHA * unit))
    (uw,) = yield from multiply([(u, w)], material)
    uw = yield from trunc_pr_program(online, uw, 2 * f + 2, f, material, kappa=kappa)
    x = online.add_public(-uw, unit)
    y = w
    for i in range(plan.iterations):
        one_plus_x = online.add_public(x, unit)
        if i == plan.iterations - 1:
            (yx,) = yield from multiply([(y, one_plus_x)], material)
            y = yield from trunc_pr_program(online, yx, 2 * f + 3, f, material, kappa=kappa)
        else:
            yx, xx = yield from multiply([(y, one_plus_x), (x, x)], material)
            y, x = yield from parallel(
                trunc_pr_program(online, yx, 2 * f + 3, f, material, kappa=kappa),
                trunc_pr_program(online, xx, 2 * f - 4, f, material, kappa=kappa),
            )
    return y


# ---------------------------------------------------------------- secret divisor


def int_div_program(
    online: OnlineParty,
    x: Shares,
    y: Shares,
    k: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Program[Shares]:
    """⌊x/y⌋ (Python ``x // y``) for signed k-bit x and y ≠ 0 (k ≤ 36 by default)."""
    field = x.field
    check_bit_length(field.p, k, kappa)
    plan = plan_int_div(field.p, k, kappa)
    rec, g = plan.reciprocal, plan.guard
    if not len(x):
        return x
    norm = yield from normalize_program(online, y, k, material, also=x, kappa=kappa)
    signed_x = norm.also
    assert signed_x is not None
    (c,) = yield from multiply([(norm.magnitude, norm.scale)], material)
    w = yield from goldschmidt_program(online, c, rec, material, kappa=kappa)
    (sw,) = yield from multiply([(norm.scale, w)], material)
    z = yield from trunc_pr_program(online, sw, rec.width + rec.frac + 2, rec.width + rec.frac - g, material, kappa=kappa)
    (xz,) = yield from multiply([(signed_x, z)], material)
    q = yield from trunc_pr_program(online, online.add_public(xz, -(1 << (g - 1))), k + g + 2, g, material, kappa=kappa)
    (qd,) = yield from multiply([(q, norm.magnitude)], material)
    return (yield from _correct(online, q, signed_x - qd, norm.magnitude, k + 1, material, kappa=kappa, bitlt=bitlt))


async def int_div(
    online: OnlineParty,
    x: Shares,
    y: Shares,
    k: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """Secret ``x // y`` for secret y (see :func:`int_div_program`)."""
    return await run(online, int_div_program(online, x, y, k, material, kappa=kappa, bitlt=bitlt))
