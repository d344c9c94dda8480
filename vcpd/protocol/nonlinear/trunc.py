"""Truncation, reduction mod 2^m and bit decomposition by statistical masking.

All protocols open a masked value c = x + 2^(k−1) + r (r from PRandM, k+κ
bits), then work on c mod 2^m in the clear (CdH10, "Improved primitives for
secure multiparty integer computation", SCN 2010):

* :func:`trunc_pr` — TruncPr (CdH10 Prot. 3.1 as fixed in MP-SPDZ):
  ⌊x/2^m⌋ + u with u ∈ {0, 1}, Pr[u = 1] = (x mod 2^m)/2^m. One round, no
  triples, k+κ bits.
* :func:`mod2m` — Mod2m (CdH10 Prot. 3.2): x mod 2^m = c' − r' + 2^m·[c' < r']
  with c' = c mod 2^m, r' = r mod 2^m and the bit [c' < r'] from BitLT on the
  bits of r'. For m = 1 (Mod2, Prot. 3.4) the bit is linear.
* :func:`trunc` — exact ⌊x/2^m⌋ = (x − x mod 2^m)·2^−m (``x >> m``; floor,
  so −1 >> 1 = −1 as in Python). ``x << m`` needs no protocol: it is the
  local product x·2^m (the caller keeps it within its bit length).
* :func:`bit_decompose` — the k bits of x mod 2^k (two's complement, LSB
  first), from all prefix comparisons of c' and r' (CdH10 BitDec, with a
  Sklansky prefix instead of PreOpL): bit_i = c_i − r_i + 2·B_(i+1) − B_i
  with B_i = [c' mod 2^i < r' mod 2^i].

Every function comes as ``<op>_program`` (a round program, see
:mod:`.program`, to merge rounds with other work) and as an async ``<op>``.
Counts: :mod:`.cost` (``cost_trunc_pr``, ``cost_mod2m``, ``cost_trunc``,
``cost_bit_decompose``).

This module must not import vcpd.net, vcpd.testing, services, api or daemon;
from vcpd it uses only errors, math and vcpd.protocol. No shares or opened
values are logged or put into exceptions.
"""

from __future__ import annotations

import numpy as np

from vcpd.math import Shares

from ..online import OnlineParty
from .bits import bit_lt_product, bit_lt_tree, pair_products, prefix_carries, rows
from .cost import DEFAULT_BITLT, KAPPA, BitLtMethod, check_bit_length, resolve_bitlt
from .material import Material
from .pack import bit_matrix, canonical_words, low_words, public_ints, public_words
from .prand import prand_m
from .program import Program, open_values, parallel, run

__all__ = [
    "bit_decompose",
    "bit_decompose_program",
    "mod2m",
    "mod2m_program",
    "shift_left",
    "trunc",
    "trunc_pr",
    "trunc_pr_program",
    "trunc_program",
]


def _check(x: Shares, k: int, m: int, kappa: int, *, m_max: int) -> None:
    check_bit_length(x.field.p, k, kappa)
    if not 0 <= m <= m_max:
        raise ValueError(f"shift m={m} must lie in [0, {m_max}] for {k}-bit inputs")


def shift_left(x: Shares, m: int) -> Shares:
    """x·2^m (``x << m``): linear, no protocol. The result needs k+m bits."""
    return x * (1 << m)


# ---------------------------------------------------------------- TruncPr


def trunc_pr_program(
    online: OnlineParty, x: Shares, k: int, m: int, material: Material, *, kappa: int = KAPPA
) -> Program[Shares]:
    """TruncPr(x, k, m) for signed k-bit x and 0 ≤ m < k (CdH10 Prot. 3.1).

    Returns ⌊x/2^m⌋ + u, u ∈ {0, 1} with Pr[u = 1] = (x mod 2^m)/2^m: within
    one of the exact quotient, and unbiased (E = x/2^m). One round.
    """
    _check(x, k, m, kappa, m_max=k - 1)
    if m == 0 or not len(x):
        return x
    field = x.field
    mask = prand_m(material, len(x), k, m, kappa)
    (c,) = yield from open_values(online.add_public(x + mask.r, 1 << (k - 1)))
    low = public_words(field, low_words(canonical_words(c), m))
    # a' = c' − r' = (x + r') mod 2^m − r'; (x − a')·2^−m = ⌊x/2^m⌋ + [c' < r']
    return online.add_public(x + mask.low, -low) * pow(1 << m, -1, field.p)


async def trunc_pr(
    online: OnlineParty, x: Shares, k: int, m: int, material: Material, *, kappa: int = KAPPA
) -> Shares:
    """Probabilistic truncation (see :func:`trunc_pr_program`)."""
    return await run(online, trunc_pr_program(online, x, k, m, material, kappa=kappa))


# ---------------------------------------------------------------- Mod2m / Trunc


def mod2m_program(
    online: OnlineParty,
    x: Shares,
    k: int,
    m: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Program[Shares]:
    """x mod 2^m ∈ [0, 2^m) for signed k-bit x and 0 ≤ m < k (CdH10 Prot. 3.2).

    ``bitlt`` picks the BitLT variant (:data:`.cost.DEFAULT_BITLT`: by n and m).
    """
    _check(x, k, m, kappa, m_max=k - 1)
    n = len(x)
    if m == 0 or not n:
        return x - x
    field = x.field
    bitlt = resolve_bitlt(bitlt, n, m)
    mask = prand_m(material, n, k, m, kappa)
    masked = online.add_public(x + mask.r, 1 << (k - 1))
    if bitlt == "tree" and m >= 2:
        (c,), rab = yield from parallel(open_values(masked), pair_products(mask.low_bits, m, n, material))
    else:
        (c,) = yield from open_values(masked)
    words = low_words(canonical_words(c), m)
    bits = bit_matrix(words, m)
    if m == 1:
        u = _below_one(bits, mask.low_bits)
    elif bitlt == "tree":
        u = yield from bit_lt_tree(online, bits, mask.low_bits, rab, m, n, material)
    else:
        sign, rho = material.take_bits(n), material.take_masks(n)
        u = yield from bit_lt_product(online, bits, mask.low_bits, sign, rho, m, n, material)
    # x mod 2^m = c' − r' + 2^m·u
    return online.add_public(u * (1 << m) - mask.low, public_words(field, words))


def _below_one(c: np.ndarray, r: Shares) -> Shares:
    """[c_0 < r_0] = (1 − c_0)·r_0 for one public and one secret bit (linear)."""
    return r * public_ints(r.field, 1 - c[0].astype(np.int64))


async def mod2m(
    online: OnlineParty,
    x: Shares,
    k: int,
    m: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """x mod 2^m (see :func:`mod2m_program`)."""
    return await run(online, mod2m_program(online, x, k, m, material, kappa=kappa, bitlt=bitlt))


def trunc_program(
    online: OnlineParty,
    x: Shares,
    k: int,
    m: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Program[Shares]:
    """Exact ⌊x/2^m⌋ (``x >> m``, rounding toward −∞) for signed k-bit x, m ≥ 0.

    For m ≥ k−1 the quotient is −[x < 0], computed as Trunc(x, k, k−1).
    """
    _check(x, k, m, kappa, m_max=1 << 30)
    if m == 0 or not len(x):
        return x
    m = min(m, k - 1)
    low = yield from mod2m_program(online, x, k, m, material, kappa=kappa, bitlt=bitlt)
    return (x - low) * pow(1 << m, -1, x.field.p)


async def trunc(
    online: OnlineParty,
    x: Shares,
    k: int,
    m: int,
    material: Material,
    *,
    kappa: int = KAPPA,
    bitlt: BitLtMethod = DEFAULT_BITLT,
) -> Shares:
    """Exact right shift (see :func:`trunc_program`)."""
    return await run(online, trunc_program(online, x, k, m, material, kappa=kappa, bitlt=bitlt))


# ---------------------------------------------------------------- bit decomposition


def bit_decompose_program(
    online: OnlineParty, x: Shares, k: int, material: Material, *, kappa: int = KAPPA
) -> Program[Shares]:
    """The k bits of x mod 2^k, stacked (row i = bit i, LSB first).

    For signed k-bit x this is the two's complement; row k−1 is [x < 0].
    Accepts any x ∈ (−2^k, 2^k).
    """
    check_bit_length(x.field.p, k, kappa)
    n = len(x)
    if not n:
        return x
    field = x.field
    mask = prand_m(material, n, k, k, kappa)
    masked = online.add_public(x + mask.r, 1 << k)
    if k >= 2:
        (c,), rab = yield from parallel(open_values(masked), pair_products(mask.low_bits, k, n, material))
    else:
        (c,) = yield from open_values(masked)
        rab = mask.low_bits[0:0]
    bits = bit_matrix(low_words(canonical_words(c), k), k)
    carries = yield from prefix_carries(online, bits, mask.low_bits, rab, k, n, material)
    # bit_i = c_i − r_i + 2·B_(i+1) − B_i, with B_(i+1) = carries row i and B_0 = 0.
    shifted = Shares.concat([carries[0:n] - carries[0:n], carries[: (k - 1) * n]]) if k > 1 else carries - carries
    return online.add_public(carries + carries - shifted - mask.low_bits, public_ints(field, bits.ravel()))


async def bit_decompose(
    online: OnlineParty, x: Shares, k: int, material: Material, *, kappa: int = KAPPA
) -> list[Shares]:
    """The k secret bits of x (two's complement, LSB first), one Shares each."""
    n = len(x)
    stacked = await run(online, bit_decompose_program(online, x, k, material, kappa=kappa))
    return [rows(stacked, [i], n) for i in range(k)]
