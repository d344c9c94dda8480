"""Exact reduction of signed int64 limb sums (vcpd.math._signed) against Python ints."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vcpd.math import DEFAULT_PRIME
from vcpd.math._signed import LIMB_BOUND, reduce_signed

P = DEFAULT_PRIME
SMALL_P = (1 << 64) + 13  # the smallest prime above 2^64 (exact fallback path)
MID_P = (1 << 120) + 451  # the smallest prime the float estimate handles

limb = st.integers(-(LIMB_BOUND - 1), LIMB_BOUND - 1)
edge = st.sampled_from([0, 1, -1, (1 << 32) - 1, -(1 << 32), LIMB_BOUND - 1, -(LIMB_BOUND - 1)])


def _value(limbs: list[int]) -> int:
    return sum(v << (32 * j) for j, v in enumerate(limbs))


def _reduce(p: int, rows: list[list[int]]) -> list[int]:
    arrays = [np.array([row[j] for row in rows], np.int64) for j in range(4)]
    lo = np.empty(len(rows), np.uint64)
    hi = np.empty(len(rows), np.uint64)
    reduce_signed(p, arrays, lo, hi)
    return [int(a) | (int(b) << 64) for a, b in zip(lo, hi)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(limb, edge), min_size=4, max_size=4), min_size=1, max_size=40))
def test_matches_python(rows: list[list[int]]) -> None:
    assert _reduce(P, rows) == [_value(row) % P for row in rows]


def test_edge_values() -> None:
    """0, 1, p−1, ±p, ±2^128 and values just around multiples of p (the float
    estimate's hard cases), written as limbs within the bound."""
    values = [0, 1, P - 1, P, P + 1, -1, -P, -P + 1, -P - 1, 1 << 128, -(1 << 128), (1 << 128) - 1]
    values += [q * P + d for q in (2, 7, 1 << 20, -(1 << 20), -3) for d in (-2, -1, 0, 1, 2)]
    rows = []
    for v in values:
        limbs = [(v >> (32 * j)) & 0xFFFFFFFF for j in range(3)]
        limbs.append(v >> 96)  # signed top limb
        assert _value(limbs) == v and abs(limbs[3]) < LIMB_BOUND
        rows.append(limbs)
    assert _reduce(P, rows) == [v % P for v in values]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.one_of(limb, edge), min_size=4, max_size=4), min_size=1, max_size=20))
def test_other_primes(rows: list[list[int]]) -> None:
    for p in (SMALL_P, MID_P):
        assert _reduce(p, rows) == [_value(row) % p for row in rows]


def test_two_dimensional() -> None:
    rng = np.random.default_rng(1)
    arrays = [rng.integers(-(LIMB_BOUND - 1), LIMB_BOUND - 1, size=(3, 5), dtype=np.int64) for _ in range(4)]
    expected = [[_value([int(a[i, k]) for a in arrays]) % P for k in range(5)] for i in range(3)]
    lo = np.empty((3, 5), np.uint64)
    hi = np.empty((3, 5), np.uint64)
    reduce_signed(P, arrays, lo, hi)
    assert [[int(lo[i, k]) | (int(hi[i, k]) << 64) for k in range(5)] for i in range(3)] == expected
