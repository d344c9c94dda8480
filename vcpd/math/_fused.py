"""c + x1·y1 + x2·y2 (Montgomery) with one reduction: the finish of a Beaver product.

A Beaver product's shares are ⟨z⟩ = ⟨c⟩ + ε·⟨y⟩ + ρ·⟨a⟩, i.e. per share
component two Montgomery products and two modular additions. Each product is
a carry-save CIOS pass (:mod:`vcpd.math._limbs`) that interleaves the
schoolbook multiplication with the reduction; here both schoolbook products
are instead summed *unreduced* and reduced once:

1. T = x1·y1 + x2·y2 < 2p² as nine redundant 32-bit-weight uint64
   accumulators: every 32×32-bit limb product is split into its 32-bit halves,
   so each accumulator gathers at most 16 terms below 2^32 (< 2^36);
2. four Montgomery rounds add m_i·p·2^(32i) (m_i making limb i vanish mod
   2^32) and carry limb i's excess upward; the accumulators stay below 2^38;
3. c's limbs join accumulators 4-7 (the top four limbs of the result), so V = (T + M·p)/2^128 + c with
   M < 2^128: V < 2p²/2^128 + p + p < 4p (p < 2^128), a 130-bit number;
4. V is carried into 32-bit limbs and reduced by subtracting 2p and then p
   where they fit.

Integer combinations commute with the Montgomery form, so the result is
exactly what ``c + x1*y1 + x2*y2`` gives with the separate kernels: about a
fifth fewer ufunc passes per element (~330 against ~420).

This module must not import trio, vcpd or anything doing I/O: it is pure numpy.
"""

from __future__ import annotations

import threading

import numpy as np

from ._limbs import CHUNK, Limbs

__all__ = ["FusedKernel"]

_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)


class _Buffers:
    """Scratch for one chunk, one set per thread, shared by the kernels of all primes
    (as :mod:`vcpd.math._limbs` shares its scratch: kernels never nest)."""

    __slots__ = ("acc", "hi", "lo", "m", "prod", "x", "y")

    def __init__(self) -> None:
        self.x = np.empty((4, CHUNK), np.uint64)
        self.y = np.empty((4, CHUNK), np.uint64)
        self.prod = np.empty((4, CHUNK), np.uint64)
        self.lo = np.empty((4, CHUNK), np.uint64)
        self.acc = np.empty((9, CHUNK), np.uint64)
        self.hi = np.empty((5, CHUNK), np.uint64)
        self.m = np.empty(CHUNK, np.uint64)


_per_thread = threading.local()


def _buffers() -> _Buffers:
    buffers: _Buffers | None = getattr(_per_thread, "buffers", None)
    if buffers is None:
        buffers = _per_thread.buffers = _Buffers()
    return buffers


class FusedKernel:
    """``out = c + x1·y1·2^-128 + x2·y2·2^-128 mod p`` for one prime 2^64 < p < 2^128.

    Inputs are reduced ``(2, n)`` Montgomery limbs (or ``(2, 1)`` broadcast
    columns); ``out`` must not alias them.
    """

    def __init__(self, p: int) -> None:
        if not (1 << 64) < p < (1 << 128):
            raise ValueError("the fused kernel needs 2^64 < p < 2^128")
        self._p = p
        self._p32 = np.array([[(p >> (32 * j)) & 0xFFFFFFFF] for j in range(4)], dtype=np.uint64)
        self._n_prime = np.uint64((-pow(p, -1, 1 << 32)) % (1 << 32))
        # 2p and p as five 32-bit limbs, for the final subtractions.
        self._two_p = [np.uint64(((2 * p) >> (32 * j)) & 0xFFFFFFFF) for j in range(5)]
        self._one_p = [np.uint64((p >> (32 * j)) & 0xFFFFFFFF) for j in range(5)]

    def mul_add2(self, c: Limbs, x1: Limbs, y1: Limbs, x2: Limbs, y2: Limbs, out: Limbs) -> None:
        """out = c + x1·y1 + x2·y2 in Montgomery form (see the module)."""
        sc = _buffers()
        n = out.shape[1]
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            parts = [v if v.shape[1] == 1 else v[:, start:stop] for v in (c, x1, y1, x2, y2)]
            self._chunk(*parts, out[:, start:stop], sc)

    def _chunk(self, c: Limbs, x1: Limbs, y1: Limbs, x2: Limbs, y2: Limbs, out: Limbs, sc: _Buffers) -> None:
        w = out.shape[1]
        acc, prod, lo, hi, m = sc.acc[:, :w], sc.prod[:, :w], sc.lo[:, :w], sc.hi[:, :w], sc.m[:w]
        acc.fill(0)
        for x, y in ((x1, y1), (x2, y2)):
            xs, ys = sc.x[:, : x.shape[1]], sc.y[:, : y.shape[1]]
            np.bitwise_and(x, _MASK32, out=xs[0::2])
            np.right_shift(x, _SHIFT32, out=xs[1::2])
            np.bitwise_and(y, _MASK32, out=ys[0::2])
            np.right_shift(y, _SHIFT32, out=ys[1::2])
            for a in range(4):
                np.multiply(ys, xs[a], out=prod)  # prod[b] = x_a·y_b, weight 2^(32(a+b))
                np.bitwise_and(prod, _MASK32, out=lo)
                np.add(acc[a : a + 4], lo, out=acc[a : a + 4])
                np.right_shift(prod, _SHIFT32, out=lo)
                np.add(acc[a + 1 : a + 5], lo, out=acc[a + 1 : a + 5])
        p32 = self._p32
        for i in range(4):
            # m = (acc_i mod 2^32)·n' mod 2^32 makes acc_i + lo(m·p_0) ≡ 0 (mod 2^32).
            np.bitwise_and(acc[i], _MASK32, out=m)
            np.multiply(m, self._n_prime, out=m)
            np.bitwise_and(m, _MASK32, out=m)
            np.multiply(p32, m, out=prod)
            np.bitwise_and(prod, _MASK32, out=lo)
            np.add(acc[i : i + 4], lo, out=acc[i : i + 4])
            np.right_shift(prod, _SHIFT32, out=lo)
            np.add(acc[i + 1 : i + 5], lo, out=acc[i + 1 : i + 5])
            np.right_shift(acc[i], _SHIFT32, out=m)  # acc_i is now 0 mod 2^32: carry the rest
            np.add(acc[i + 1], m, out=acc[i + 1])
        top = acc[4:9]  # V = Σ top_j·2^(32j), before adding c
        cs = sc.x[:, : c.shape[1]]
        np.bitwise_and(c, _MASK32, out=cs[0::2])
        np.right_shift(c, _SHIFT32, out=cs[1::2])
        np.add(top[:4], cs, out=top[:4])
        for j in range(4):  # carry into 32-bit limbs; top[4] keeps bits 128 and up (V < 4p < 2^130)
            np.right_shift(top[j], _SHIFT32, out=m)
            np.bitwise_and(top[j], _MASK32, out=top[j])
            np.add(top[j + 1], m, out=top[j + 1])
        self._subtract_if_fits(top, self._two_p, hi, m)
        self._subtract_if_fits(top, self._one_p, hi, m)
        np.left_shift(top[1], _SHIFT32, out=out[0])
        np.bitwise_or(out[0], top[0], out=out[0])
        np.left_shift(top[3], _SHIFT32, out=out[1])
        np.bitwise_or(out[1], top[2], out=out[1])

    @staticmethod
    def _subtract_if_fits(v: Limbs, k: list[np.uint64], d: Limbs, borrow: np.ndarray) -> None:
        """v -= k where v ≥ k (v and k as five 32-bit limbs; d and borrow are scratch)."""
        borrow.fill(0)
        for j in range(5):
            np.subtract(v[j], k[j], out=d[j])
            np.subtract(d[j], borrow, out=d[j])  # wraps below zero: bit 63 set
            np.right_shift(d[j], np.uint64(63), out=borrow)
            np.bitwise_and(d[j], _MASK32, out=d[j])
        keep = borrow.astype(bool)  # borrow out of the top limb: v < k
        np.logical_not(keep, out=keep)
        np.copyto(v, d, where=keep)
