"""Bit-level subprotocols on shared bits and public bits (CdH10 §2-3, Toft 2011).

Everything here works on *stacked* vectors: L rows of n elements held as one
:class:`~vcpd.math.Shares` of length L·n (row i = elements i·n … i·n+n−1), so
one level of a tree over all bit positions is one vector operation, and a
round opens one vector whatever n and L are.

* :func:`pair_products` — r_{2j}·r_{2j+1} for the random bits of a mask. These
  products do not depend on the input, so callers run them in the round that
  opens the masked value; afterwards the (generate, propagate) pair of every
  2-bit block of "public c vs secret r" is *linear* (:func:`pair_nodes`), which
  saves one level of the carry tree and a third of its products.
* :func:`bit_lt_tree` — BitLT(c, r) = [c < r] for public c and secret bits r
  with a log-depth carry-out tree over (G, P) = ([c<r], [c=r]) of blocks
  (CdH10 §3, MP-SPDZ ``BitLTL``/``CarryOutAux``). The lowest node's P is never
  needed, so it is never computed.
* :func:`bit_lt_product` — the same bit by Toft's trick (as MPyC's ``sgn``):
  m+1 linear terms whose product is zero iff [c < r] equals a secret random
  bit; the product, randomised by a random factor, is opened. Fewer products
  (m+1 against ~1.4m) but three more rounds.
* :func:`prefix_carries` — every prefix comparison [c mod 2^i < r mod 2^i]
  (Sklansky parallel prefix), the core of bit decomposition.
* :func:`prefix_or` and :func:`product_tree` — prefix-OR and AND/product trees.

The round and tuple counts of each function are computed by the schedule
helpers of :mod:`.cost`, which these functions follow step by step.

This module must not import trio or any vcpd module except ``vcpd.errors``,
``vcpd.math`` and ``vcpd.protocol``; no shares or opened values are logged.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vcpd.math import Shares

from ..online import OnlineParty
from .cost import carry_tree_levels, product_tree_levels, sklansky_levels
from .material import Material
from .pack import choose, replace_rows, take_rows
from .program import Program, multiply, open_values
from .suffix import bit_lt_terms

__all__ = [
    "bit_lt_product",
    "bit_lt_tree",
    "pair_nodes",
    "pair_products",
    "prefix_carries",
    "prefix_or",
    "product_tree",
    "rows",
]

Bits = npt.NDArray[np.uint8]
"""A public ``(m, n)`` 0/1 matrix: row i holds bit i of every element."""


def rows(x: Shares, indices: list[int] | npt.NDArray[np.intp], n: int) -> Shares:
    """The given rows (of length n) of a stacked vector, stacked in that order."""
    return take_rows(x, indices, n)


def _select(cases: list[Shares], which: npt.NDArray[np.integer]) -> Shares:
    """Element-wise choice between candidate vectors by a public index vector."""
    return choose(cases, which)


def pair_products(r: Shares, m: int, n: int, material: Material) -> Program[Shares]:
    """Products r_{2j}·r_{2j+1} of the m stacked bit rows (⌊m/2⌋ rows; one round).

    Input-independent: run it in parallel with the opening that needs it.
    """
    pairs = m // 2
    if pairs == 0:
        return r[0:0]
    lo = rows(r, np.arange(0, 2 * pairs, 2), n)
    hi = rows(r, np.arange(1, 2 * pairs, 2), n)
    (product,) = yield from multiply([(lo, hi)], material)
    return product


def pair_nodes(
    online: OnlineParty, c: Bits, r: Shares, rab: Shares, m: int, n: int
) -> tuple[Shares, Shares]:
    """(G, P) of the 2-bit blocks of public c against secret r, linearly.

    For block j (bits a = 2j, b = 2j+1): G = [c_block < r_block] and
    P = [c_block = r_block]. With rab = r_a·r_b both are linear in
    (1, r_a, r_b, r_ab), and which combination applies depends only on the
    public (c_a, c_b) — so each is one gather among four candidates. An odd top
    bit forms a block of its own: (G, P) = ((1−c)·r, 1 − (c ⊕ r)).
    Returns ⌈m/2⌉ stacked rows each.
    """
    pairs = m // 2
    g_parts: list[Shares] = []
    p_parts: list[Shares] = []
    if pairs:
        ra = rows(r, np.arange(0, 2 * pairs, 2), n)
        rb = rows(r, np.arange(1, 2 * pairs, 2), n)
        ca = c[0 : 2 * pairs : 2].astype(np.intp)
        cb = c[1 : 2 * pairs : 2].astype(np.intp)
        case = (2 * ca + cb).ravel()  # (c_a, c_b) = (0,0), (0,1), (1,0), (1,1)
        s = ra + rb
        zero = ra - ra
        # G = r_b + p_b·g_a:  (0,0): r_a + r_b − r_ab, (0,1): r_ab, (1,0): r_b, (1,1): 0
        g_parts.append(_select([s - rab, rab, rb, zero], case))
        # P = p_a·p_b:  (0,0): 1 − r_a − r_b + r_ab, (0,1): r_b − r_ab, (1,0): r_a − r_ab, (1,1): r_ab
        both_zero = online.add_public(rab - s, 1)
        p_parts.append(_select([both_zero, rb - rab, ra - rab, rab], case))
    if m % 2:
        top = rows(r, [m - 1], n)
        ct = c[m - 1].astype(np.intp)
        g_parts.append(_select([top, top - top], ct))
        p_parts.append(_select([online.add_public(-top, 1), top], ct))
    g = g_parts[0] if len(g_parts) == 1 else Shares.concat(g_parts)
    p = p_parts[0] if len(p_parts) == 1 else Shares.concat(p_parts)
    return g, p


def bit_lt_tree(
    online: OnlineParty, c: Bits, r: Shares, rab: Shares, m: int, n: int, material: Material
) -> Program[Shares]:
    """[c < r] for public m-bit c and secret bits r, by a log-depth carry-out tree.

    ``rab`` comes from :func:`pair_products` (run it one round earlier, e.g.
    with the masking open). Cost: see :func:`.cost.cost_bit_lt`
    (⌊m/2⌋ + ~m products, ⌈log2⌈m/2⌉⌉ rounds after the pair round).
    """
    g, p = pair_nodes(online, c, r, rab, m, n)
    for level in carry_tree_levels((m + 1) // 2):
        # level: list of (hi, lo, need_p) combinations; an odd top node passes through.
        hi = [h for h, _, _ in level]
        lo = [lo_ for _, lo_, _ in level]
        with_p = [(h, lo_) for h, lo_, need in level if need]
        pairs = [(rows(p, hi, n), rows(g, lo, n))]
        if with_p:
            pairs.append((rows(p, [h for h, _ in with_p], n), rows(p, [lo_ for _, lo_ in with_p], n)))
        products = yield from multiply(pairs, material)
        new_g = rows(g, hi, n) + products[0]
        # Node 0 never needs its P (level[0] has need_p false): a placeholder keeps rows aligned.
        new_p = Shares.concat([new_g[0:n], products[1]]) if with_p else new_g
        count = len(g) // n
        if count % 2:
            new_g = Shares.concat([new_g, rows(g, [count - 1], n)])
            new_p = Shares.concat([new_p, rows(p, [count - 1], n)])
        g, p = new_g, new_p
    return g


def bit_lt_product(
    online: OnlineParty, c: Bits, r: Shares, sign_bit: Shares, rho: Shares, m: int, n: int, material: Material
) -> Program[Shares]:
    """[c < r] for public m-bit c and secret bits r, by Toft's product trick (as MPyC's ``sgn``).

    With a secret random sign s = 1 − 2·sign_bit, term i (from the top) is
    e_i = s + r_i − c_i + 3·X_i with X_i = #{j > i: r_j ≠ c_j}, and
    e_m = s − 1 + 3·X_{−1}. Exactly one e_i can vanish: at the highest
    differing bit when r_i − c_i = −s, or e_m when c = r and s = 1. So
    ρ·Π e_i = 0 iff [c < r] = sign_bit, and opening it (ρ a random mask)
    reveals only that coincidence, which is a uniform bit. Then
    [c < r] = sign_bit if the product is 0, else 1 − sign_bit.
    Cost: m+1 products, ⌈log2(m+2)⌉ + 1 rounds, 1 bit and 1 mask per element.

    Linear layer: with σ_j = 1 − 2c_j, X_i = C_i + Σ_{j>i} σ_j·r_j where
    C_i = Σ_{j>i} c_j is public, so e_i = r_i + (3·Σ_{j>i} σ_j r_j − 2·sign_bit)
    + (1 − c_i + 3·C_i): suffix sums from the top, computed as exact integer
    sums with one reduction per term (:func:`.suffix.bit_lt_terms`).
    """
    field = r.field
    terms = bit_lt_terms(online, c, r, sign_bit, rho, m, n)  # e_0 … e_m and ρ, stacked
    product = yield from product_tree(terms, m + 2, n, material)
    (w,) = yield from open_values(product)
    words = np.frombuffer((w * field.r_inv).to_bytes(), "<u8").reshape(-1, 2)
    zero = ((words[:, 0] | words[:, 1]) == 0).astype(np.int64)
    # u = zero ? sign_bit : 1 − sign_bit  =  (1 − zero) + (2·zero − 1)·sign_bit
    flipped = online.add_public(-sign_bit, 1)
    return _select([flipped, sign_bit], zero)


def product_tree(x: Shares, count: int, n: int, material: Material) -> Program[Shares]:
    """Π of ``count`` stacked rows, element-wise: count−1 products, ⌈log2 count⌉ rounds.

    Each level multiplies row i by row i + half: both operands are contiguous
    slices (views), so no row is gathered or copied; only an odd leftover row
    is appended to the products. The product is commutative and associative,
    so this pairing gives the same result as pairing neighbours.
    """
    for pairs in product_tree_levels(count):
        half = pairs * n
        (prod,) = yield from multiply([(x[:half], x[half : 2 * half])], material)
        x = Shares.concat([prod, x[2 * half :]]) if len(x) > 2 * half else prod
    return x


def prefix_carries(
    online: OnlineParty, c: Bits, r: Shares, rab: Shares, m: int, n: int, material: Material
) -> Program[Shares]:
    """All prefix comparisons: row i of the result is [c mod 2^(i+1) < r mod 2^(i+1)].

    Sklansky's parallel prefix over the (G, P) blocks, with the first level
    linear thanks to ``rab`` (:func:`pair_products`). A position whose prefix
    starts at bit 0 never needs its P. m rows; see :func:`.cost.cost_prefix_carries`.
    """
    # Level 0 (pairs) is linear: odd positions get their 2-bit block, even ones their bit.
    g_pair, p_pair = pair_nodes(online, c, r, rab, m, n)
    g_bit, p_bit = _bit_nodes(online, c, r, m, n)
    order = np.empty(m, np.intp)  # position -> row of the stacked [bits..., pairs...]
    evens = np.arange(0, m, 2)
    odds = np.arange(1, m, 2)
    order[evens] = evens // 2
    order[odds] = len(evens) + odds // 2
    g = rows(Shares.concat([g_bit, g_pair]), order, n)
    p = rows(Shares.concat([p_bit, p_pair]), order, n)
    for level in sklansky_levels(m)[1:]:
        hi = [h for h, _, _ in level]
        lo = [lo_ for _, lo_, _ in level]
        need = [(h, lo_) for h, lo_, keep_p in level if keep_p]
        pairs = [(rows(p, hi, n), rows(g, lo, n))]
        if need:
            pairs.append((rows(p, [h for h, _ in need], n), rows(p, [lo_ for _, lo_ in need], n)))
        products = yield from multiply(pairs, material)
        new_g = rows(g, hi, n) + products[0]
        g = _replace_rows(g, hi, new_g, m, n)
        if need:
            p = _replace_rows(p, [h for h, _ in need], products[1], m, n)
    return g


def _bit_nodes(online: OnlineParty, c: Bits, r: Shares, m: int, n: int) -> tuple[Shares, Shares]:
    """Single-bit (G, P) = ((1−c)·r, [c = r]) for the even positions 0, 2, 4, …"""
    idx = np.arange(0, m, 2)
    rb = rows(r, idx, n)
    cb = c[idx].astype(np.intp)
    g = _select([rb, rb - rb], cb)
    p = _select([online.add_public(-rb, 1), rb], cb)
    return g, p


def _replace_rows(x: Shares, which: list[int], new: Shares, m: int, n: int) -> Shares:
    """``x`` with the listed rows replaced by the rows of ``new`` (in order)."""
    return replace_rows(x, which, new, n)


def prefix_or(x: Shares, m: int, n: int, material: Material) -> Program[Shares]:
    """Row i of the result is OR(x_0, …, x_i) (Sklansky; OR(a, b) = a + b − a·b)."""
    y = x
    for level in sklansky_levels(m):
        hi = [h for h, _, _ in level]
        lo = [lo_ for _, lo_, _ in level]
        a, b = rows(y, hi, n), rows(y, lo, n)
        (prod,) = yield from multiply([(a, b)], material)
        y = _replace_rows(y, hi, a + b - prod, m, n)
    return y
