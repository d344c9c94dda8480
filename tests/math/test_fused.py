"""FieldArray.mul_add2 and Shares.plus_products (vcpd.math._fused) against Python big ints."""

from __future__ import annotations

import random

import numpy as np

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcpd.errors import FieldError
from vcpd.math import DEFAULT_PRIME, SMALL_THRESHOLD, FieldArray, PrimeField, Shares, check_macs, share_vector
from vcpd.math._fused import FusedKernel
from vcpd.math._limbs import CHUNK

from test_field import OTHER_PRIMES, edge_values

T = SMALL_THRESHOLD


def expected(c: list[int], x1: list[int], y1: list[int], x2: list[int], y2: list[int], p: int) -> list[int]:
    return [(a + b * d + e * f) % p for a, b, d, e, f in zip(c, x1, y1, x2, y2, strict=True)]


@pytest.mark.parametrize("p", [DEFAULT_PRIME, *OTHER_PRIMES])
@pytest.mark.parametrize("n", [1, T - 1, T, T + 1, CHUNK + 7])
def test_matches_python_ints(p: int, n: int) -> None:
    field = PrimeField(p)
    rng = random.Random(n ^ p)
    edges = edge_values(p)
    # Every operand mixes uniform values with the edge values (0, 1, p − 1, limb boundaries...).
    columns = [[rng.choice(edges) if rng.random() < 0.3 else rng.randrange(p) for _ in range(n)] for _ in range(5)]
    got = FieldArray.mul_add2(*(field.from_ints(v) for v in columns))
    assert got.to_ints() == expected(*columns, p)


@pytest.mark.parametrize("p", [DEFAULT_PRIME, 2**64 + 13, 2**127 + 55 * 2**15 + 1, 2**128 - 159])
def test_largest_words_everywhere(p: int) -> None:
    """Every operand's Montgomery word is p − 1 (the largest reduced word), so the
    unreduced sum V is at its largest; checked on the kernel itself."""
    field = PrimeField(p)
    n = T + 3
    words = np.empty((2, n), np.uint64)
    words[0], words[1] = (p - 1) & (2**64 - 1), (p - 1) >> 64
    out = np.empty((2, n), np.uint64)
    FusedKernel(p).mul_add2(words, words, words, words, words, out)
    m = p - 1  # on words the kernel computes c + (x1·y1 + x2·y2)·R^-1 mod p
    want = (m + 2 * m * m * field.r_inv) % p
    assert [int(lo) | int(hi) << 64 for lo, hi in zip(out[0], out[1], strict=True)] == [want] * n


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(*[st.integers(0, DEFAULT_PRIME - 1)] * 5), min_size=1, max_size=20), st.integers(0, 2**32))
def test_random_rows(rows: list[tuple[int, int, int, int, int]], seed: int) -> None:
    """Hypothesis picks the first rows; seeded random rows fill the vector up to the numpy path."""
    field = PrimeField()
    rng = random.Random(seed)
    rows = rows + [tuple(rng.randrange(field.p) for _ in range(5)) for _ in range(T - len(rows))]
    columns = [list(column) for column in zip(*rows, strict=True)]
    got = FieldArray.mul_add2(*(field.from_ints(v) for v in columns))
    assert got.to_ints() == expected(*columns, field.p)


def test_operand_errors() -> None:
    field, other = PrimeField(), PrimeField(OTHER_PRIMES[0])
    a = field.random(T + 1)
    with pytest.raises(FieldError, match="length mismatch"):
        FieldArray.mul_add2(a, a, a, a, field.random(T + 2))
    with pytest.raises(FieldError, match="different fields"):
        FieldArray.mul_add2(a, a, a, a, other.random(T + 1))


@pytest.mark.parametrize("n", [7, T + 9])
def test_plus_products_keeps_the_mac_relation(n: int) -> None:
    """A Beaver finish on shares: the values add up to c + x1·e1 + x2·e2 and the MACs to α times that."""
    field = PrimeField()
    alphas = field.random(3).to_ints()
    alpha = sum(alphas) % field.p
    c, x1, x2 = field.random(n), field.random(n), field.random(n)
    e1, e2 = field.random(n), field.random(n)
    sc, s1, s2 = (share_vector(field, v, alpha, 3) for v in (c, x1, x2))
    result = [sc[i].plus_products(s1[i], e1, s2[i], e2) for i in range(3)]
    want = (c + x1 * e1 + x2 * e2).to_ints()
    values = [sum(column) % field.p for column in zip(*(r.values.to_ints() for r in result), strict=True)]
    assert values == want
    assert check_macs(result, alphas)
