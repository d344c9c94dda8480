"""Bounded shared randomness: PRandInt and PRandM (CdH10 §2.1), with bounded tuples.

Statistical masking hides a k-bit secret x by opening x + r for a random r of
k + κ bits: the opened value is within statistical distance 2^−κ of uniform
whatever x is, yet (unlike a uniform field element) r does not wrap mod p, so
arithmetic on the opened value mod 2^m still means something.

PRandM(k, m) returns r = r' + 2^m·r'' where r' = Σ_{i<m} 2^i·b_i keeps its m
bits (Mod2m, BitLT and BitDec need them one by one) and r'' covers the other
L = k+κ−m bits. MP-SPDZ builds r'' from L more single bits; here its top
⌊L/40⌋ blocks of 40 bits are ``"bounded"`` tuples u_j (r uniform in
[0, 2^40)) and only the L mod 40 bits below them are single bits:

    r'' = Σ_{i<t} 2^i·b_(m+i) + 2^t·Σ_j 2^(40j)·u_j,     t = L mod 40.

Why this is the same mask: the b_i and u_j are independent and uniform on
disjoint bit ranges ([0, t) and [t + 40j, t + 40j + 40)), so r'' is uniform on
exactly [0, 2^L) — the distribution of PRandInt(L) — and r = r' + 2^m·r'' is
uniform on [0, 2^(k+κ)) as before, with the same wrap bound (p > 2^(k+κ+1)).
Every piece is an authenticated share and r is a public linear combination of
them, so r carries a valid MAC. For a 64-bit comparison (k = 65, m = 64) this
takes 65 bits + 1 bounded tuple instead of 105 bits; for sfix·sfix (k = 47,
m = 16) 47 bits + 1 instead of 87. The counts are :func:`.cost.prand_split`.

The sums are computed with :func:`.pack.weighted_rows` (exact integer sums of
the share words, one reduction).

This module must not import trio or any vcpd module except ``vcpd.errors``,
``vcpd.math`` and ``vcpd.protocol``; it never logs shares.
"""

from __future__ import annotations

from vcpd.math import Shares

from .cost import BOUNDED_BITS, prand_split
from .material import Material
from .pack import weighted_rows

__all__ = ["RandomMask", "prand_int", "prand_m"]


class RandomMask:
    """A shared random r = low + 2^m·high with the m low bits kept.

    Attributes:
        r: the whole mask, uniform in [0, 2^(k+κ)).
        low: Σ_{i<m} 2^i·b_i (uniform in [0, 2^m)).
        low_bits: the m low bits, stacked (row i = bit i of every element).
    """

    __slots__ = ("low", "low_bits", "m", "n", "r")

    def __init__(self, r: Shares, low: Shares, low_bits: Shares, m: int, n: int) -> None:
        self.r = r
        self.low = low
        self.low_bits = low_bits
        self.m = m
        self.n = n


def prand_int(bits: Shares, k: int, n: int) -> Shares:
    """PRandInt: r = Σ_{i<k} 2^i·b_i for k stacked rows of n random bits (local)."""
    if len(bits) != k * n:
        raise ValueError(f"PRandInt needs {k}·{n} bits, got {len(bits)}")
    return weighted_rows(bits, k, n)


def prand_m(material: Material, n: int, k: int, m: int, kappa: int) -> RandomMask:
    """PRandM(k, m): r uniform in [0, 2^(k+κ)), the low m bits kept apart.

    Draws (m + t)·n bits (row i = bit i) and q·n bounded tuples, with
    (t, q) = :func:`.cost.prand_split` (k, m, κ). Local.
    """
    if not 0 <= m <= k:
        raise ValueError(f"PRandM needs 0 ≤ m ≤ k, got m={m}, k={k}")
    t, q = prand_split(k, m, kappa)
    bits = material.take_bits((m + t) * n) if m + t else None
    high: Shares | None = None
    if q:
        bounded = material.take_bounded(q * n)  # q rows of n, row j = block j
        high = bounded[(q - 1) * n :]
        for j in range(q - 2, -1, -1):  # Horner: Σ_j 2^(40j)·u_j
            high = high * (1 << BOUNDED_BITS) + bounded[j * n : (j + 1) * n]
        if t:
            high = high * (1 << t)
    if t:
        assert bits is not None
        single = weighted_rows(bits, t, n, first=m)
        high = single if high is None else high + single
    assert high is not None  # k + κ − m ≥ κ ≥ 1 bits
    if m == 0:
        return RandomMask(high, high - high, high[0:0], m, n)
    assert bits is not None
    low_bits = bits[: m * n]
    low = weighted_rows(bits, m, n)
    return RandomMask(low + high * (1 << m), low, low_bits, m, n)
