"""The linear layer of BitLT by Toft's product trick, as exact integer suffix sums.

:func:`.bits.bit_lt_product` multiplies m+1 terms (plus a random factor ρ),
term i being (see there) e_i = r_i + 3·Σ_{j>i} σ_j·r_j − 2·sign_bit + o_i
with σ_j = 1 − 2c_j and the public offsets o_i = 1 − c_i + 3·Σ_{j>i} c_j
(o_m = 3·Σ_j c_j for the last term, which has no r). Built with modular
additions this costs a running sum of m rows plus about five more additions
per row and share component, and a copy or two per row.

Here every term is built on the integers instead: the Montgomery words of
the shares are split into 32-bit limbs, the signed suffix sums run in int64
(|limb sums| < 2^42), the public offset enters as o·mont(1) on party 0's
values and o·mont(α_i) on every MAC (a constant share, exactly as
``OnlineParty.constant`` builds it), and each term is reduced mod p once
(:func:`vcpd.math._signed.reduce_signed`). Integer combinations commute with
the Montgomery representation, so every party gets exactly the shares the
field formulas give; the result is laid out as the stacked rows
e_0 … e_{m−1}, e_m, ρ that the product tree takes, written straight into one
buffer. Rows are processed in cache-sized blocks from the top down, carrying
the running sum between blocks.

This module must not import trio or any vcpd module except ``vcpd.errors``,
``vcpd.math`` and ``vcpd.protocol``; its inputs are shares, so it never logs.
"""

from __future__ import annotations

import sys
from typing import Final

import numpy as np
import numpy.typing as npt

from vcpd.math import FieldArray, PrimeField, Shares
from vcpd.math._signed import reduce_signed

from ..online import OnlineParty
from .pack import _words

__all__ = ["bit_lt_terms"]

_BLOCK = 32768
"""Elements per block of rows: the int64 temporaries of a block stay in cache."""

_MAX_ROWS: Final = 1 << 16
"""Rows (bits) a BitLT may have: sums of fewer than (6m + 7)·2^32 stay far below
:func:`reduce_signed`'s 2^52 bound (m is at most ~90 for a 128-bit prime)."""

# _limbs32 reads 64-bit words as pairs of 32-bit halves, low half first.
if sys.byteorder != "little":  # pragma: no cover - every platform numpy ships wheels for is little-endian
    raise ImportError("vcpd's limb arithmetic needs a little-endian machine")


def _limbs32(words: npt.NDArray[np.uint64], rows: int, n: int) -> list[npt.NDArray[np.uint32]]:
    """The four 32-bit limbs of ``(2, rows·n)`` words as ``(rows, n)`` views (no copy)."""
    low = words[0].view(np.uint32).reshape(rows, n, 2)
    high = words[1].view(np.uint32).reshape(rows, n, 2)
    return [low[:, :, 0], low[:, :, 1], high[:, :, 0], high[:, :, 1]]


def _exclusive_suffix_sums(x: npt.NDArray[np.int64], carry: npt.NDArray[np.int64], out: npt.NDArray[np.int64]) -> None:
    """Row i of ``out`` becomes ``carry`` + Σ_{j>i} x_j; ``carry`` becomes ``carry`` + Σ_j x_j.

    A row loop, not ``np.cumsum(axis=0)``: numpy accumulates along a
    non-last axis one column at a time, inner loops a few rows long, which
    measured ten times slower on the few-row blocks used here.
    """
    out[-1] = carry
    for i in range(len(x) - 1, 0, -1):
        np.add(out[i], x[i], out=out[i - 1])
    np.add(out[0], x[0], out=carry)


def _word_limbs(word: int) -> list[int]:
    return [(word >> (32 * j)) & 0xFFFFFFFF for j in range(4)]


def _component(
    field: PrimeField,
    r: FieldArray,
    sign: FieldArray,
    rho: FieldArray,
    constant_word: int,
    c: npt.NDArray[np.uint8],
    m: int,
    n: int,
) -> FieldArray:
    """One share component (values or MACs) of the stacked terms and ρ."""
    rl = _limbs32(_words(r), m, n)
    twice_sign = [2 * limb.astype(np.int64) for limb in _limbs32(_words(sign), 1, n)]  # 2·sign_bit per limb
    k = _word_limbs(constant_word)
    out = np.empty((2, (m + 2) * n), np.uint64)
    lo = out[0].reshape(m + 2, n)
    hi = out[1].reshape(m + 2, n)
    running = [np.zeros(n, np.int64) for _ in range(4)]  # 3·Σ_{j>i} σ_j·r_j per limb
    above = np.zeros(n, np.int64)  # Σ_{j>i} c_j
    rows = min(m, max(1, _BLOCK // max(n, 1)))
    limb = np.empty((rows, n), np.int64)
    scratch = np.empty((rows, n), np.int64)
    for stop in range(m, 0, -rows):
        start = max(0, stop - rows)
        size = stop - start
        cb = c[start:stop].astype(np.int64)
        sigma3 = 3 - 6 * cb  # 3·σ_j
        # Offsets o_i = 1 − c_i + 3·Σ_{j>i} c_j.
        offsets = np.empty_like(cb)
        _exclusive_suffix_sums(cb, above, offsets)
        offsets *= 3
        offsets += 1 - cb
        terms = []
        for j in range(4):
            own, signed = limb[:size], scratch[:size]
            np.copyto(own, rl[j][start:stop])  # r_i (int64)
            np.multiply(own, sigma3, out=signed)  # 3·σ_i·r_i
            term = np.empty_like(own)
            _exclusive_suffix_sums(signed, running[j], term)  # 3·Σ_{j>i} σ_j r_j
            term += own
            term -= twice_sign[j]
            if k[j]:
                np.multiply(offsets, k[j], out=signed)
                term += signed
            terms.append(term)
        reduce_signed(field.p, terms, lo[start:stop], hi[start:stop])
    # e_m = 3·Σ_j σ_j r_j − 2·sign_bit + 3·Σ_j c_j
    top = [running[j] - twice_sign[j] + 3 * above * k[j] for j in range(4)]
    reduce_signed(field.p, [t.reshape(1, n) for t in top], lo[m : m + 1], hi[m : m + 1])
    out[:, (m + 1) * n :] = _words(rho)
    return field.from_limbs(out)


def bit_lt_terms(
    online: OnlineParty, c: npt.NDArray[np.uint8], r: Shares, sign_bit: Shares, rho: Shares, m: int, n: int
) -> Shares:
    """The m+1 terms of BitLT-product and ρ, stacked (m+2 rows of n): see the module.

    ``c`` is the public ``(m, n)`` bit matrix, ``r`` the m stacked secret bit
    rows, ``sign_bit`` the secret random bit of the trick, ``rho`` its random
    factor. Local: no communication, no tuples.
    """
    if not 0 < m <= _MAX_ROWS:
        raise ValueError(f"BitLT on {m} bits is outside the supported 1..{_MAX_ROWS}")
    field = r.field
    one = online.constant(1, 1)  # party 0: mont(1) as value; every party: mont(α_i) as MAC
    value_word, mac_word = (int.from_bytes(part.to_bytes(), "little") for part in (one.values, one.macs))
    values = _component(field, r.values, sign_bit.values, rho.values, value_word, c, m, n)
    macs = _component(field, r.macs, sign_bit.macs, rho.macs, mac_word, c, m, n)
    return Shares(values, macs)
