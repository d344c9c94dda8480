"""Fixed-point (sfix) arithmetic: values v/2^f held as signed k-bit integers v.

Defaults follow MP-SPDZ's ``sfix``: f = 16 fractional bits, k = 31 bits in
all, so values lie in [−2^14, 2^14) with resolution 2^−16 (one *ulp*).

* Addition, subtraction and multiplication by an integer are local.
* :func:`fx_mul` — x·y then TruncPr(·, k+f, f), MP-SPDZ's
  ``TruncMul(other.v, k + f, f)``: the product of two k-bit values carries 2f
  fractional bits; as long as the *result* fits k bits the product fits
  k+f bits, which is what TruncPr is told (and masks statistically).
  Probabilistic rounding: |result − x·y| < 1 ulp (result ∈ {⌊xy⌋, ⌊xy⌋ + 1}
  in ulps), unbiased. Two rounds, one triple, k+f+κ bits.
* :func:`fx_mul_public` — x·c for a public real c: TruncPr of x·⌊c·2^f⌉.
* :func:`fx_reciprocal`, :func:`fx_div` — Norm + Goldschmidt
  (:mod:`.division`) with F ≈ 41 working bits and 38 guard bits, then one
  (reciprocal) or two (division) truncations. **Error bound: < 2 ulps**
  (|result − exact| < 2·2^−f; in practice ≤ 1 ulp plus TruncPr's rounding)
  whenever b ≠ 0 and the exact result fits in k bits (|a/b| < 2^(k−f−1));
  b = 0 or overflow give meaningless values, never errors (b = 0 weakens
  the statistical masking of some openings to about 2^−35, see
  :mod:`.division`).
* Comparisons of fixed-point values are the integer comparisons of v with
  bit length k (:mod:`.compare`; ``lt(a, b, k)`` uses LTZ on k+1 bits).
* :func:`fx_from_int` (sint → sfix, ×2^f, local) and :func:`fx_to_int`
  (sfix → sint, exact floor ⌊v/2^f⌋).

This module must not import vcpd.net, vcpd.testing, services, api or daemon;
from vcpd it uses only errors, math and vcpd.protocol. No shares or opened
values are logged or put into exceptions.
"""

from __future__ import annotations

from typing import Final

from vcpd.math import Shares

from ..online import OnlineParty
from .cost import DEFAULT_BITLT, FX_F, FX_K, KAPPA, BitLtMethod, check_bit_length
from .division import goldschmidt_program, normalize_program
from .material import Material
from .plans import fx_guard, plan_reciprocal
from .program import Program, multiply, run
from .trunc import trunc_pr_program, trunc_program

__all__ = [
    "FX_ERROR_ULPS",
    "fx_div",
    "fx_div_program",
    "fx_from_int",
    "fx_mul",
    "fx_mul_program",
    "fx_mul_public",
    "fx_reciprocal",
    "fx_reciprocal_program",
    "fx_to_int",
    "fx_to_int_program",
]

FX_ERROR_ULPS: Final = 2
"""Bound on |fx_div/fx_reciprocal − exact| in ulps (2^−f), results within range."""


def fx_from_int(x: Shares, f: int = FX_F) -> Shares:
    """sint → sfix: v = x·2^f (local; x must fit k−f bits)."""
    return x * (1 << f)


def fx_to_int_program(
    online: OnlineParty,
    v: Shares,
    material: Material,
    k: int = FX_K,
    f: int = FX_F,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Program[Shares]:
    """sfix → sint rounding toward −∞: ⌊v/2^f⌋ (an exact Trunc)."""
    return trunc_program(online, v, k, f, material, kappa=kappa, bitlt=bitlt)


async def fx_to_int(
    online: OnlineParty,
    v: Shares,
    material: Material,
    k: int = FX_K,
    f: int = FX_F,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """sfix → sint (floor), see :func:`fx_to_int_program`."""
    return await run(online, fx_to_int_program(online, v, material, k, f, kappa=kappa, bitlt=bitlt))


def fx_mul_program(
    online: OnlineParty,
    x: Shares,
    y: Shares,
    material: Material,
    k: int = FX_K,
    f: int = FX_F,
    *,
    kappa: int = KAPPA,
    width: int | None = None,
) -> Program[Shares]:
    """x·y for fixed-point x, y: Beaver product, then TruncPr(·, width, f).

    ``width`` is the bit length TruncPr assumes for the raw product: k+f by
    default (MP-SPDZ; right whenever the result fits k bits), or 2k to keep
    the masking statistically sound even if a product overflows (15 more
    random bits per product for k = 31).
    """
    width = k + f if width is None else width
    check_bit_length(x.field.p, width, kappa)
    if not len(x):
        return x
    (product,) = yield from multiply([(x, y)], material)
    return (yield from trunc_pr_program(online, product, width, f, material, kappa=kappa))


async def fx_mul(
    online: OnlineParty,
    x: Shares,
    y: Shares,
    material: Material,
    k: int = FX_K,
    f: int = FX_F,
    *,
    kappa: int = KAPPA,
    width: int | None = None,
) -> Shares:
    """Fixed-point product (see :func:`fx_mul_program`); error < 1 ulp."""
    return await run(online, fx_mul_program(online, x, y, material, k, f, kappa=kappa, width=width))


async def fx_mul_public(
    online: OnlineParty,
    x: Shares,
    c: float,
    material: Material,
    k: int = FX_K,
    f: int = FX_F,
    *,
    kappa: int = KAPPA,
) -> Shares:
    """x·c for a public real c (rounded to f fractional bits): one TruncPr round."""
    scaled = round(c * (1 << f))
    return await run(online, trunc_pr_program(online, x * scaled, k + f, f, material, kappa=kappa))


def _reciprocal_core(
    online: OnlineParty, b: Shares, k: int, material: Material, kappa: int
) -> Program[tuple[Shares, Shares]]:
    """(sign(b)·σ, W): 1/b = sign(b)·σ·W / 2^(F+K)."""
    plan = plan_reciprocal(b.field.p, k, kappa)
    norm = yield from normalize_program(online, b, k, material, kappa=kappa)
    c, scaled_sign = yield from multiply([(norm.magnitude, norm.scale), (norm.scale, norm.negative)], material)
    signed_scale = norm.scale - scaled_sign - scaled_sign  # σ·(1 − 2·[b < 0])
    w = yield from goldschmidt_program(online, c, plan, material, kappa=kappa)
    return signed_scale, w


def fx_reciprocal_program(
    online: OnlineParty, b: Shares, material: Material, k: int = FX_K, f: int = FX_F, *, kappa: int = KAPPA
) -> Program[Shares]:
    """1/b for fixed-point b ≠ 0: 2^(2f)/v ± < 2 ulps (|1/b| < 2^(k−f−1))."""
    plan = plan_reciprocal(b.field.p, k, kappa)
    if not len(b):
        return b
    signed_scale, w = yield from _reciprocal_core(online, b, k, material, kappa)
    (sw,) = yield from multiply([(signed_scale, w)], material)
    width = plan.width + plan.frac + 2
    return (yield from trunc_pr_program(online, sw, width, plan.width + plan.frac - 2 * f, material, kappa=kappa))


async def fx_reciprocal(
    online: OnlineParty, b: Shares, material: Material, k: int = FX_K, f: int = FX_F, *, kappa: int = KAPPA
) -> Shares:
    """Fixed-point 1/b (see :func:`fx_reciprocal_program`)."""
    return await run(online, fx_reciprocal_program(online, b, material, k, f, kappa=kappa))


def fx_div_program(
    online: OnlineParty,
    a: Shares,
    b: Shares,
    material: Material,
    k: int = FX_K,
    f: int = FX_F,
    *,
    kappa: int = KAPPA,
) -> Program[Shares]:
    """a/b for fixed-point a, b ≠ 0, error < 2 ulps while |a/b| < 2^(k−f−1).

    Z = TruncPr(sign·σ·W) ≈ 2^(f+g)/v_b with g guard bits, then
    TruncPr(v_a·Z, k+f+g+1, g): the error of Z costs |v_a|/2^g < 2^−8 ulp.
    """
    field = a.field
    plan = plan_reciprocal(field.p, k, kappa)
    g = fx_guard(field.p, k, f, kappa)
    if not len(a):
        return a
    signed_scale, w = yield from _reciprocal_core(online, b, k, material, kappa)
    (sw,) = yield from multiply([(signed_scale, w)], material)
    width = plan.width + plan.frac + 2
    z = yield from trunc_pr_program(online, sw, width, plan.width + plan.frac - f - g, material, kappa=kappa)
    (az,) = yield from multiply([(a, z)], material)
    return (yield from trunc_pr_program(online, az, k + f + g + 1, g, material, kappa=kappa))


async def fx_div(
    online: OnlineParty,
    a: Shares,
    b: Shares,
    material: Material,
    k: int = FX_K,
    f: int = FX_F,
    *,
    kappa: int = KAPPA,
) -> Shares:
    """Fixed-point a/b (see :func:`fx_div_program`)."""
    return await run(online, fx_div_program(online, a, b, material, k, f, kappa=kappa))
