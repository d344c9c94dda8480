"""Comparisons, equality tests and selections of secret integers (shared bits out).

* :func:`ltz` — [x < 0] = −Trunc(x, k, k−1) (CdH10 §3; MP-SPDZ ``LTZ``):
  Mod2m with m = k−1, i.e. one masked opening and BitLT on k−1 bits.
* :func:`lt`, :func:`le`, :func:`gt`, :func:`ge` — MP-SPDZ semantics for
  signed k-bit a, b: ``a < b`` is LTZ(a − b) with bit length k+1 (a − b needs
  k+1 bits), ``a <= b`` is 1 − (b < a), etc.
* :func:`eqz` — [x = 0] in two masked stages (an improvement on CdH10's EQZ,
  which ORs all k bits of c ⊕ r with k−1 products): the Hamming distance
  h = Σ c_i ⊕ r_i ∈ [0, k] is *linear* in the mask bits, and x = 0 iff h = 0;
  h has only ⌈log2(k+1)⌉ bits, so a second masked opening and an AND tree over
  those few bits finish it. For k = 64: 6 products and 4 rounds instead of
  63 products and 7 rounds, for 47 extra random bits.
* :func:`eq`, :func:`ne` — EQZ(a − b, k): a − b ∈ (−2^k, 2^k) is zero mod 2^k
  only if it is zero, so k bits suffice (as in MP-SPDZ).
* :func:`if_else` — c·(a − b) + b (one product), :func:`minimum`,
  :func:`maximum`, :func:`absolute` from LTZ and one product.

Results are shared bits 0/1 (or selected values) as :class:`~vcpd.math.Shares`.
Each op has a ``<op>_program`` for merging rounds and a ``cost_<op>`` in
:mod:`.cost`.

This module must not import vcpd.net, vcpd.testing, services, api or daemon;
from vcpd it uses only errors, math and vcpd.protocol. No shares or opened
values are logged or put into exceptions.
"""

from __future__ import annotations

import numpy as np

from vcpd.math import Shares

from ..online import OnlineParty
from .bits import pair_nodes, pair_products, product_tree
from .cost import DEFAULT_BITLT, KAPPA, BitLtMethod, check_bit_length, eqz_stages
from .material import Material
from .pack import add_small, bit_matrix, canonical_words, low_words, signed_row_sums
from .prand import prand_m
from .program import Program, multiply, open_values, parallel, run
from .trunc import trunc_program

__all__ = [
    "absolute",
    "absolute_program",
    "eq",
    "eqz",
    "eqz_program",
    "ge",
    "gt",
    "if_else",
    "if_else_program",
    "le",
    "lt",
    "ltz",
    "ltz_program",
    "maximum",
    "minimum",
    "minmax_program",
    "ne",
]


# ---------------------------------------------------------------- LTZ and comparisons


def ltz_program(
    online: OnlineParty,
    x: Shares,
    k: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Program[Shares]:
    """[x < 0] for signed k-bit x: −⌊x/2^(k−1)⌋ (CdH10 LTZ)."""
    check_bit_length(x.field.p, k, kappa)
    if k == 1 or not len(x):
        return -x  # x ∈ {−1, 0}
    shifted = yield from trunc_program(online, x, k, k - 1, material, kappa=kappa, bitlt=bitlt)
    return -shifted


async def ltz(
    online: OnlineParty,
    x: Shares,
    k: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """Secret bit [x < 0] for signed k-bit x (see :func:`ltz_program`)."""
    return await run(online, ltz_program(online, x, k, material, kappa=kappa, bitlt=bitlt))


async def lt(
    online: OnlineParty,
    a: Shares,
    b: Shares,
    k: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """[a < b] for signed k-bit a, b: LTZ(a − b, k+1)."""
    return await ltz(online, a - b, k + 1, material, kappa=kappa, bitlt=bitlt)


async def gt(
    online: OnlineParty,
    a: Shares,
    b: Shares,
    k: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """[a > b] = [b < a]."""
    return await lt(online, b, a, k, material, kappa=kappa, bitlt=bitlt)


async def le(
    online: OnlineParty,
    a: Shares,
    b: Shares,
    k: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """[a ≤ b] = 1 − [a > b]."""
    return online.add_public(-(await gt(online, a, b, k, material, kappa=kappa, bitlt=bitlt)), 1)


async def ge(
    online: OnlineParty,
    a: Shares,
    b: Shares,
    k: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """[a ≥ b] = 1 − [a < b]."""
    return online.add_public(-(await lt(online, a, b, k, material, kappa=kappa, bitlt=bitlt)), 1)


# ---------------------------------------------------------------- EQZ


def eqz_program(online: OnlineParty, x: Shares, k: int, material: Material, *, kappa: int = KAPPA) -> Program[Shares]:
    """[x = 0] for x ∈ (−2^k, 2^k) (in particular signed k-bit x).

    Stage 1 opens c = x + 2^k + r (r' = r mod 2^k with its k bits); then
    h = Σ_i c_i ⊕ r'_i (linear) is the Hamming distance of x + r' and r' mod
    2^k, zero iff x = 0. Stage 2 opens h + s (s with k2 = bit length of k
    low bits) and multiplies the equality flags [c2_i = s_i] of the k2 bits —
    pairs linearly (their products s_{2j}·s_{2j+1} come in round 1), then a
    product tree. For k < 4 a single stage tests the k bits directly.
    """
    check_bit_length(x.field.p, k, kappa)
    n = len(x)
    if not n:
        return x
    stages = eqz_stages(k)
    width = stages[-1]
    first = prand_m(material, n, k, k, kappa)
    last = prand_m(material, n, width, width, kappa) if len(stages) == 2 else first
    masked = online.add_public(x + first.r, 1 << k)
    if width >= 2:
        (c,), rab = yield from parallel(open_values(masked), pair_products(last.low_bits, width, n, material))
    else:
        (c,) = yield from open_values(masked)
        rab = last.low_bits[0:0]
    if len(stages) == 2:
        words = low_words(canonical_words(c), k)
        bits = bit_matrix(words, k)
        # h = Σ c_i ⊕ r_i = popcount(c') + Σ_i (−1)^(c_i)·r_i
        h = signed_row_sums(first.low_bits, k, n, bits.astype(bool))
        h = add_small(online.constant, h, bits.sum(axis=0, dtype=np.int64))
        (c,) = yield from open_values(h + last.r)  # h ≥ 0: no offset needed
    bits = bit_matrix(low_words(canonical_words(c), width), width)
    _, p = pair_nodes(online, bits, last.low_bits, rab, width, n)
    return (yield from product_tree(p, (width + 1) // 2, n, material))


async def eqz(online: OnlineParty, x: Shares, k: int, material: Material, *, kappa: int = KAPPA) -> Shares:
    """Secret bit [x = 0] (see :func:`eqz_program`)."""
    return await run(online, eqz_program(online, x, k, material, kappa=kappa))


async def eq(online: OnlineParty, a: Shares, b: Shares, k: int, material: Material, *, kappa: int = KAPPA) -> Shares:
    """[a = b] for signed k-bit a, b: EQZ(a − b, k)."""
    return await eqz(online, a - b, k, material, kappa=kappa)


async def ne(online: OnlineParty, a: Shares, b: Shares, k: int, material: Material, *, kappa: int = KAPPA) -> Shares:
    """[a ≠ b] = 1 − [a = b]."""
    return online.add_public(-(await eqz(online, a - b, k, material, kappa=kappa)), 1)


# ---------------------------------------------------------------- selection


def if_else_program(c: Shares, a: Shares, b: Shares, material: Material) -> Program[Shares]:
    """c ? a : b for a secret bit c: b + c·(a − b), one product, one round."""
    if not len(c):
        return c
    (product,) = yield from multiply([(c, a - b)], material)
    return b + product


async def if_else(online: OnlineParty, c: Shares, a: Shares, b: Shares, material: Material) -> Shares:
    """Element-wise a where c = 1, b where c = 0 (c must be a bit)."""
    return await run(online, if_else_program(c, a, b, material))


def minmax_program(
    online: OnlineParty,
    a: Shares,
    b: Shares,
    k: int,
    material: Material,
    *,
    largest: bool,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Program[Shares]:
    """min(a, b) (or max with ``largest``) of signed k-bit a, b: [a < b], then a selection."""
    if not len(a):
        return a
    less = yield from ltz_program(online, a - b, k + 1, material, kappa=kappa, bitlt=bitlt)
    if largest:
        return (yield from if_else_program(less, b, a, material))
    return (yield from if_else_program(less, a, b, material))


async def minimum(
    online: OnlineParty,
    a: Shares,
    b: Shares,
    k: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """Element-wise min(a, b) of signed k-bit integers."""
    return await run(online, minmax_program(online, a, b, k, material, largest=False, kappa=kappa, bitlt=bitlt))


async def maximum(
    online: OnlineParty,
    a: Shares,
    b: Shares,
    k: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """Element-wise max(a, b) of signed k-bit integers."""
    return await run(online, minmax_program(online, a, b, k, material, largest=True, kappa=kappa, bitlt=bitlt))


def absolute_program(
    online: OnlineParty,
    x: Shares,
    k: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Program[Shares]:
    """|x| = x·(1 − 2·[x < 0]) for signed k-bit x (|−2^(k−1)| = 2^(k−1) needs k+1 bits)."""
    if not len(x):
        return x
    negative = yield from ltz_program(online, x, k, material, kappa=kappa, bitlt=bitlt)
    (product,) = yield from multiply([(x, negative + negative)], material)
    return x - product


async def absolute(
    online: OnlineParty,
    x: Shares,
    k: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """Element-wise |x| of signed k-bit integers."""
    return await run(online, absolute_program(online, x, k, material, kappa=kappa, bitlt=bitlt))
