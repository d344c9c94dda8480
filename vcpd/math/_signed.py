"""Exact reduction mod p of signed integers given as 32-bit-weight int64 limbs.

Linear combinations with small integer coefficients commute with the
Montgomery representation (mont(Σ w_i·x_i) ≡ Σ w_i·mont(x_i) mod p), so a
protocol can sum many shares *as integers* -- their 16-byte words split into
32-bit limbs, added and scaled in int64 without carries or reductions -- and
reduce once at the end. This module does that one reduction.

V = L0 + L1·2^32 + L2·2^64 + L3·2^96 with every |L_j| < 2^52 is reduced with
a float64 estimate of the quotient: q = ⌊V/p + δ⌋ is exact or one too large
(δ = 2^-16 dwarfs every rounding error, which stays below 2^-28), so
V − q·p lies in [−p, p); a negative result -- rare, as it needs V/p within δ
below an integer -- is fixed on the few elements concerned. The estimate
needs |V/p| < 2^29 (so p ≥ 2^120); smaller primes (test fields) take an
exact Python-int path instead. About forty
int64 ufunc passes per element, against ~17 per modular addition: it pays
as soon as it replaces three or more modular additions.

This module must not import trio, vcpd or anything doing I/O: it is pure numpy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["FAST_MIN_P", "LIMB_BOUND", "reduce_signed"]

I64 = npt.NDArray[np.int64]

LIMB_BOUND = 1 << 52
"""Every limb must satisfy |L_j| < LIMB_BOUND (so |V| < 2^149 and |q| < 2^23)."""

FAST_MIN_P = 1 << 120
"""Below this modulus the float estimate is not precise enough: Python ints are used."""

_MASK32 = np.int64(0xFFFFFFFF)
_SHIFT32 = np.int64(32)
_DELTA = 2.0**-16


def _normalise(y: list[I64]) -> I64:
    """Carry limbs into [0, 2^32) in place (arithmetic shifts: floor); return the signed carry out."""
    for j in range(3):
        carry = y[j] >> _SHIFT32
        y[j] &= _MASK32
        y[j + 1] += carry
    top = y[3] >> _SHIFT32
    y[3] &= _MASK32
    return top


def reduce_signed(p: int, limbs: list[I64], lo: npt.NDArray[np.uint64], hi: npt.NDArray[np.uint64]) -> None:
    """Write V mod p (V given by four int64 limb arrays, see the module) as 64-bit words.

    ``limbs`` are consumed (overwritten); ``lo`` and ``hi`` (same shape)
    receive the low and high 64 bits of each result, which lies in [0, p).
    Requires 2^64 < p < 2^128 and |L_j| < :data:`LIMB_BOUND`.
    """
    if p < FAST_MIN_P:
        _reduce_exact(p, limbs, lo, hi)
        return
    p32 = [np.int64((p >> (32 * j)) & 0xFFFFFFFF) for j in range(4)]
    # Quotient estimate in float64 (|V| < 2^149: no overflow, ~2^-52 relative error).
    est = limbs[3].astype(np.float64)
    for j in (2, 1, 0):
        est *= 2.0**32
        est += limbs[j]
    est *= 1.0 / p
    est += _DELTA
    np.floor(est, out=est)
    q = est.astype(np.int64)
    y = limbs
    tmp = np.empty_like(q)
    for j in range(4):
        np.multiply(q, p32[j], out=tmp)
        y[j] -= tmp
    top = _normalise(y)  # V − q·p ∈ [−p, p): top ∈ {−1, 0}
    negative = top < 0
    if negative.any():
        where = np.nonzero(negative)
        part = [y[j][where] + p32[j] for j in range(4)]
        _normalise(part)
        for j in range(4):
            y[j][where] = part[j]
    np.left_shift(y[1], _SHIFT32, out=y[1])
    np.bitwise_or(y[0], y[1], out=y[0])
    np.left_shift(y[3], _SHIFT32, out=y[3])
    np.bitwise_or(y[2], y[3], out=y[2])
    lo[...] = y[0].view(np.uint64)
    hi[...] = y[2].view(np.uint64)


def _reduce_exact(p: int, limbs: list[I64], lo: npt.NDArray[np.uint64], hi: npt.NDArray[np.uint64]) -> None:
    """:func:`reduce_signed` with Python ints (slow; for primes below :data:`FAST_MIN_P`)."""
    columns = [limb.ravel().tolist() for limb in limbs]
    values = [(a + (b << 32) + (c << 64) + (d << 96)) % p for a, b, c, d in zip(*columns)]
    mask = (1 << 64) - 1
    lo[...] = np.array([v & mask for v in values], np.uint64).reshape(lo.shape)
    hi[...] = np.array([v >> 64 for v in values], np.uint64).reshape(hi.shape)
