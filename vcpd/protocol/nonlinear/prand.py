"""Bounded shared randomness from random bits: PRandInt and PRandM (CdH10 §2.1).

Statistical masking hides a k-bit secret x by opening x + r for a random r of
k + κ bits: the opened value is within statistical distance 2^−κ of uniform
whatever x is, yet (unlike a uniform field element) r does not wrap mod p, so
arithmetic on the opened value mod 2^m still means something. r is built from
shared random bits b_i (``"bit"`` tuples) as r = Σ 2^i·b_i (PRandInt); PRandM
keeps the low m bits apart, since Mod2m and BitLT need them one by one.

The sums are computed with :func:`.pack.weighted_rows` (exact integer sums of
the share words, one reduction), about 1.7 µs per 105-bit mask and party.

This module must not import trio or any vcpd module except ``vcpd.errors``,
``vcpd.math`` and ``vcpd.protocol``; it never logs shares.
"""

from __future__ import annotations

from vcpd.math import Shares

from .material import Material
from .pack import weighted_rows

__all__ = ["RandomMask", "prand_int", "prand_m"]


class RandomMask:
    """A shared random r = low + 2^m·high with the m low bits kept.

    Attributes:
        r: the whole mask, uniform in [0, 2^(k+κ)).
        low: Σ_{i<m} 2^i·b_i (uniform in [0, 2^m)).
        bits: all k+κ bits, stacked (row i = bit i of every element).
    """

    __slots__ = ("_low_bits", "bits", "low", "m", "n", "r")

    def __init__(self, r: Shares, low: Shares, bits: Shares, m: int, n: int) -> None:
        self.r = r
        self.low = low
        self.bits = bits
        self.m = m
        self.n = n
        self._low_bits: Shares | None = None

    @property
    def low_bits(self) -> Shares:
        """The m low bits, stacked (sliced out on first use)."""
        if self._low_bits is None:
            self._low_bits = self.bits[: self.m * self.n]
        return self._low_bits


def prand_int(bits: Shares, k: int, n: int) -> Shares:
    """PRandInt: r = Σ_{i<k} 2^i·b_i for k stacked rows of n random bits (local)."""
    if len(bits) != k * n:
        raise ValueError(f"PRandInt needs {k}·{n} bits, got {len(bits)}")
    return weighted_rows(bits, k, n)


def prand_m(material: Material, n: int, k: int, m: int, kappa: int) -> RandomMask:
    """PRandM(k, m): draws (k+κ)·n bits; r has k+κ bits, the low m kept apart.

    Local; the bits are drawn as k+κ rows of n (row i = bit i).
    """
    if not 0 <= m <= k:
        raise ValueError(f"PRandM needs 0 ≤ m ≤ k, got m={m}, k={k}")
    total = k + kappa
    bits = material.take_bits(total * n)
    high = weighted_rows(bits, total - m, n, first=m)
    if m == 0:
        return RandomMask(high, high - high, bits, m, n)
    low = weighted_rows(bits, m, n)
    return RandomMask(low + high * (1 << m), low, bits, m, n)
