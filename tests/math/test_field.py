"""Tests for vcpd.math.field / vcpd.math.array against Python big ints.

Sizes cover both internal paths: Python ints below SMALL_THRESHOLD, numpy
limbs at and above it, and more than one kernel chunk.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import randombytes_buf_deterministic

from vcpd.errors import FieldError
from vcpd.math import DEFAULT_PRIME, SMALL_THRESHOLD, FieldArray, PrimeField, prg
from vcpd.math._limbs import CHUNK
from vcpd.math.prg import derive_key

F = PrimeField()
P = DEFAULT_PRIME
T = SMALL_THRESHOLD
SIZES = [1, 5, T - 1, T, T + 1, CHUNK + 7]
OTHER_PRIMES = [
    2**64 + 13,  # smallest allowed: the top limb is masked to one bit
    2**127 + 55 * 2**15 + 1,  # MP-SPDZ's default 128-bit prime
    2**128 - 159,  # largest allowed: sums carry out of 128 bits
]


def edge_values(p: int) -> list[int]:
    candidates = [0, 1, 2, p - 1, p - 2, p // 2, p // 2 + 1, 2**32 - 1, 2**32, 2**64 - 1, 2**64, 2**96, 2**127]
    field = PrimeField(p)
    candidates += [field.r, field.r_inv, field.r_squared, p - field.r]
    return [c % p for c in candidates]


def sample(field: PrimeField, n: int, salt: bytes = b"") -> list[int]:
    """n values: the edge values first, then seeded random ones."""
    return (edge_values(field.p) + field.random_seeded(b"test" + salt, n).to_ints())[:n]


# ---------------------------------------------------------------- the field


def test_default_constants_match_carbyne() -> None:
    assert F.p == P == 0x958907458F2136861BD7554A24340001
    assert F.r == 141515903391459779531506841503331516415
    assert F.r_inv == 133854242216446749056083838363708373830
    assert F.r_squared == F.r * F.r % P
    assert (P * F.n_prime) % 2**32 == 2**32 - 1
    assert F.bits == 128


@pytest.mark.parametrize("p", [2**64 + 13, 2**128 - 159, 2**127 + 55 * 2**15 + 1])
def test_accepts_primes_in_range(p: int) -> None:
    assert PrimeField(p).p == p


@pytest.mark.parametrize(
    ("p", "problem"),
    [
        (97, "between 2^64 and 2^128"),
        (2**61 - 1, "between 2^64 and 2^128"),
        (2**128 + 51, "between 2^64 and 2^128"),
        (2**100, "odd"),
        (2**64 + 1, "not prime"),
        ((2**64 + 13) * (2**61 - 1), "not prime"),
        (20293796286020108881, "not prime"),  # a Carmichael number: fools Fermat, not Miller-Rabin
        (3 * (2**64 + 13), "not prime"),
    ],
)
def test_rejects_bad_moduli(p: int, problem: str) -> None:
    with pytest.raises(FieldError, match=re.escape(problem)):
        PrimeField(p)


@pytest.mark.parametrize("p", [2.0**100, True, "340282366920938463463374607431768211297"])
def test_rejects_non_int_modulus(p: object) -> None:
    with pytest.raises(FieldError, match="must be an int"):
        PrimeField(p)  # type: ignore[arg-type]


def test_fields_compare_by_modulus() -> None:
    assert PrimeField() == F and hash(PrimeField()) == hash(F)
    assert PrimeField(OTHER_PRIMES[0]) != F
    assert repr(F) == f"PrimeField({P})"


def test_scalar_helpers() -> None:
    for x in edge_values(P):
        assert F.unmont(F.mont(x)) == x
        assert F.mont(x) == x * 2**128 % P
        assert F.int_from_bytes(F.int_to_bytes(x)) == x
        assert F.int_to_bytes(x) == (x * F.r % P).to_bytes(16, "little")
    assert F.mont(-1) == F.mont(P - 1)
    assert F.inv(3) * 3 % P == 1
    with pytest.raises(FieldError, match="inverse of zero"):
        F.inv(P)
    with pytest.raises(FieldError, match="16 bytes"):
        F.int_from_bytes(bytes(15))
    with pytest.raises(FieldError, match="not below p"):
        F.int_from_bytes(P.to_bytes(16, "little"))


def test_carbyne_share_vectors() -> None:
    """Shares from Ephemeral's integration test decode to 0 and 111 (value = first 16 bytes)."""
    zero = base64.b64decode("AAAAAAAAAAAAAAAAAAAAAHV5WQAAAAAAAAAAAAAAAAA=")
    one_eleven = base64.b64decode("Qv9nIfmyLlZ3iFnFX5pMBKI8JwAAAAAAAAAAAAAAAAA=")
    assert F.int_from_bytes(zero[:16]) == 0
    assert F.int_from_bytes(one_eleven[:16]) == 111
    both = F.from_bytes(zero[:16] + one_eleven[:16])
    assert both.to_ints() == [0, 111]
    assert both.to_bytes() == zero[:16] + one_eleven[:16]
    assert F.from_ints([111]).to_bytes() == one_eleven[:16]


# ---------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("p", [P, *OTHER_PRIMES])
@pytest.mark.parametrize("n", SIZES)
def test_arithmetic_matches_python_ints(p: int, n: int) -> None:
    field = PrimeField(p)
    xs, ys = sample(field, n, b"x"), sample(field, n, b"y")[::-1]
    a, b = field.from_ints(xs), field.from_ints(ys)
    assert a.to_ints() == xs and len(a) == n and a.field == field
    assert (a + b).to_ints() == [(x + y) % p for x, y in zip(xs, ys)]
    assert (a - b).to_ints() == [(x - y) % p for x, y in zip(xs, ys)]
    assert (-a).to_ints() == [-x % p for x in xs]
    assert (a * b).to_ints() == [x * y % p for x, y in zip(xs, ys)]
    assert a.square().to_ints() == [x * x % p for x in xs]
    assert a.sum() == sum(xs) % p
    assert a.dot(b) == sum(x * y for x, y in zip(xs, ys)) % p
    for c in (0, 1, -1, 7, p - 1, p + 5, 2**127, -(2**200)):
        assert (a + c).to_ints() == (c + a).to_ints() == [(x + c) % p for x in xs]
        assert (a - c).to_ints() == [(x - c) % p for x in xs]
        assert (c - a).to_ints() == [(c - x) % p for x in xs]
        assert (a * c).to_ints() == (c * a).to_ints() == [x * c % p for x in xs]
    assert (a * np.int64(-3)).to_ints() == (np.int64(-3) * a).to_ints() == [-3 * x % p for x in xs]
    nonzero = field.from_ints([x or 1 for x in xs])
    assert (nonzero.inverse() * nonzero).equals(field.constant(1, n))


@pytest.mark.parametrize("p", [P, *OTHER_PRIMES])
@pytest.mark.parametrize("copies", [1, 2])
def test_all_pairs_of_edge_values(p: int, copies: int) -> None:
    """Every carry and borrow corner, on the small path (one copy) and the large one (two)."""
    field, edges = PrimeField(p), edge_values(p)
    xs = [x for x in edges for _ in edges] * copies
    ys = [y for _ in edges for y in edges] * copies
    assert (len(xs) < T) == (copies == 1)
    a, b = field.from_ints(xs), field.from_ints(ys)
    assert (a + b).to_ints() == [(x + y) % p for x, y in zip(xs, ys)]
    assert (a - b).to_ints() == [(x - y) % p for x, y in zip(xs, ys)]
    assert (a * b).to_ints() == [x * y % p for x, y in zip(xs, ys)]


@pytest.mark.parametrize("n", [5, T + 1])
def test_pow(n: int) -> None:
    xs = sample(F, n)
    a = F.from_ints(xs)
    for e in (0, 1, 2, 5, 2**70 + 3, P - 1):
        assert a.pow(e).to_ints() == [pow(x, e, P) for x in xs]
    nonzero = F.from_ints([x or 5 for x in xs])
    assert nonzero.pow(-2).to_ints() == [pow(x, -2, P) for x in [x or 5 for x in xs]]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-(2**140), 2**140), min_size=1, max_size=12).flatmap(
        lambda xs: st.tuples(st.just(xs), st.lists(st.integers(-(2**140), 2**140), min_size=len(xs), max_size=len(xs)))
    )
)
def test_small_path_properties(pair: tuple[list[int], list[int]]) -> None:
    xs, ys = pair
    a, b = F.from_ints(xs), F.from_ints(ys)
    assert a.to_ints() == [x % P for x in xs]
    assert (a * b - a).to_ints() == [(x * y - x) % P for x, y in zip(xs, ys)]
    assert (a + b).sum() == (sum(xs) + sum(ys)) % P
    assert F.from_bytes(a.to_bytes()).equals(a)


@settings(max_examples=15, deadline=None)
@given(st.binary(min_size=1, max_size=8), st.lists(st.sampled_from(edge_values(P)), min_size=T + 2, max_size=T + 2))
def test_large_path_properties(seed: bytes, edges: list[int]) -> None:
    n = T + 2
    xs = [e if i % 3 == 0 else r for i, (e, r) in enumerate(zip(edges, F.random_seeded(seed, n).to_ints()))]
    ys = F.random_seeded(seed, n, label=b"y").to_ints()
    a, b = F.from_ints(xs), F.from_ints(ys)
    assert (a * b + a).to_ints() == [(x * y + x) % P for x, y in zip(xs, ys)]
    assert (b - a).dot(a) == sum((y - x) * x for x, y in zip(xs, ys)) % P
    assert F.from_bytes(a.to_bytes()).equals(a)


def test_inverse_of_zero_names_the_element() -> None:
    for n in (5, T + 10):
        xs = [1] * n
        xs[3] = P
        with pytest.raises(FieldError, match="element 3"):
            F.from_ints(xs).inverse()


def test_inverse_of_a_large_batch() -> None:
    a = F.random(100_000)
    assert (a * a.inverse()).equals(F.constant(1, 100_000))


def test_operand_errors() -> None:
    a, b = F.from_ints([1, 2, 3]), F.from_ints([1, 2])
    with pytest.raises(FieldError, match="length mismatch"):
        a + b
    with pytest.raises(FieldError, match="different fields"):
        a * PrimeField(OTHER_PRIMES[1]).from_ints([1, 2, 3])
    with pytest.raises(TypeError):
        a + 1.5  # type: ignore[operator]
    with pytest.raises(TypeError, match="equals"):
        assert a == a
    with pytest.raises(TypeError, match="to_ints"):
        list(a)


def test_equality_and_repr_do_not_leak_values() -> None:
    a = F.from_ints([123456789, 5])
    assert a.equals(F.from_ints([123456789, 5]))
    assert not a.equals(F.from_ints([123456789, 6]))
    assert not a.equals(F.from_ints([123456789]))
    assert not a.equals(PrimeField(OTHER_PRIMES[1]).from_ints([123456789, 5]))
    assert "123456789" not in repr(a)
    assert F.zeros(T + 1).all_zero() and not F.constant(1, T + 1).all_zero()
    with pytest.raises(ValueError, match="negative"):
        F.random(-1)


# ---------------------------------------------------------------- layout


@pytest.mark.parametrize("n", [7, T + 40])
def test_indexing(n: int) -> None:
    xs = sample(F, n)
    a = F.from_ints(xs)
    assert a[0].to_ints() == [xs[0]] and a[-1].to_ints() == [xs[-1]]
    assert a[2:n:3].to_ints() == xs[2:n:3]
    assert a[[4, 0, 4]].to_ints() == [xs[4], xs[0], xs[4]]
    assert a[np.array([1, 2])].to_ints() == xs[1:3]
    mask = np.arange(n) % 2 == 0
    assert a[mask].to_ints() == xs[::2]
    assert a[1:].to_ints() == xs[1:]
    assert len(a[[]]) == 0 and a[np.array(2)].to_ints() == [xs[2]]
    with pytest.raises(IndexError):
        a[n]
    with pytest.raises(IndexError):
        a[[0, n]]
    with pytest.raises(TypeError):
        a[0, 1]


def test_concat_and_copy_across_paths() -> None:
    parts = [F.from_ints(sample(F, n, bytes([n % 256]))) for n in (3, T + 1, 0, 9)]
    joined = FieldArray.concat(parts)
    assert joined.to_ints() == [x for part in parts for x in part.to_ints()]
    assert F.concat(parts).equals(joined)
    assert FieldArray.concat(parts[:1]).equals(parts[0])
    assert FieldArray.concat([F.zeros(T - 1), F.zeros(1)]).equals(F.zeros(T))
    assert len(F.concat([])) == 0
    assert joined.copy().equals(joined) and parts[0].copy().equals(parts[0])
    with pytest.raises(FieldError):
        F.concat([PrimeField(OTHER_PRIMES[0]).zeros(2)])


@pytest.mark.parametrize("n", [0, 1, 5, T - 1, T, T + 1, 3000])
def test_bytes_round_trip(n: int) -> None:
    xs = sample(F, n)
    data = F.from_ints(xs).to_bytes()
    assert data == b"".join((x * 2**128 % P).to_bytes(16, "little") for x in xs)
    assert F.from_bytes(data).to_ints() == xs
    assert F.from_bytes(bytearray(data)).to_ints() == xs


@pytest.mark.parametrize("n", [3, T + 5])
@pytest.mark.parametrize("bad", [P, P + 1, 2**128 - 1])
def test_from_bytes_rejects_values_not_below_p(n: int, bad: int) -> None:
    words = [F.int_to_bytes(i) for i in range(n)]
    words[2] = bad.to_bytes(16, "little")
    with pytest.raises(FieldError, match="element 2"):
        F.from_bytes(b"".join(words))


@pytest.mark.parametrize("length", [1, 15, 17, 16 * T + 8])
def test_from_bytes_rejects_bad_lengths(length: int) -> None:
    with pytest.raises(FieldError, match="multiple of 16"):
        F.from_bytes(bytes(length))


@pytest.mark.parametrize("n", [4, T + 4])
def test_from_ints_numpy_arrays(n: int) -> None:
    signed = np.array(([-(2**63), 2**63 - 1, -1, 0] * n)[:n], dtype=np.int64)
    assert F.from_ints(signed).to_ints() == [v % P for v in signed.tolist()]
    unsigned = np.array(([2**64 - 1, 2**63, 0, 1] * n)[:n], dtype=np.uint64)
    assert F.from_ints(unsigned).to_ints() == unsigned.tolist()
    small = np.arange(-n, n, 2, dtype=np.int32)
    assert F.from_ints(small).to_ints() == [v % P for v in small.tolist()]
    with pytest.raises(FieldError, match="1-D"):
        F.from_ints(np.zeros((n, 2), dtype=np.int64))
    with pytest.raises(TypeError):
        F.from_ints([1.5])  # type: ignore[list-item]


@pytest.mark.parametrize("n", [4, T + 4])
def test_signed_round_trip(n: int) -> None:
    values = ([-(2**63), 2**63 - 1, -1, 0, 1, -12345] * n)[:n]
    encoded = F.from_signed(values)
    assert encoded.to_ints() == [v % P for v in values]
    assert encoded.to_signed() == values
    assert F.from_signed(np.array(values, dtype=np.int64)).to_signed() == values
    assert F.from_signed([v >> 40 for v in values], k=24).to_signed(k=24) == [v >> 40 for v in values]
    wide = [2**120, -(2**120)]
    assert F.from_signed(wide, k=122).to_signed(k=122) == wide


def test_signed_range_errors() -> None:
    for bad in ([2**63], [-(2**63) - 1]):
        with pytest.raises(FieldError, match="signed 64-bit"):
            F.from_signed(bad)
    with pytest.raises(FieldError, match="signed 8-bit"):
        F.from_signed(np.array([0, 128] * T, dtype=np.int64), k=8)
    with pytest.raises(FieldError, match="element 1 is outside the signed 64-bit"):
        F.from_ints([5, P // 2]).to_signed()
    for k in (0, 128, 200):
        with pytest.raises(FieldError, match="do not fit"):
            F.from_signed([1], k=k)


# ---------------------------------------------------------------- randomness


@pytest.mark.parametrize("p", [P, OTHER_PRIMES[0], OTHER_PRIMES[2]])
def test_random_is_in_range_and_varied(p: int) -> None:
    field = PrimeField(p)
    for n in (0, 1, T + 3, 50_000):
        a = field.random(n)
        values = a.to_ints()
        assert len(values) == n and all(0 <= v < p for v in values)
        field.from_bytes(a.to_bytes())  # every word is a valid encoding
    big = field.random(50_000).to_ints()
    assert len(set(big)) == len(big)
    assert max(big) > p - p // 100 and min(big) < p // 100


def test_random_seeded_is_deterministic_and_separated() -> None:
    a = F.random_seeded(b"seed", T + 9)
    assert a.equals(F.random_seeded(b"seed", T + 9))
    assert F.random_seeded(b"seed", 5).to_ints() == a.to_ints()[:5]  # longer streams extend shorter ones
    assert not a.equals(F.random_seeded(b"seed", T + 9, label=b"macs"))
    assert not a.equals(F.random_seeded(b"seeD", T + 9))
    assert not F.random_seeded(b"ab", 4, label=b"c").equals(F.random_seeded(b"a", 4, label=b"bc"))
    with pytest.raises(TypeError):
        F.random_seeded("seed", 3)  # type: ignore[arg-type]


def test_sampling_survives_a_short_first_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the first draw yields too few elements, more are drawn; a seeded
    stream then gives exactly the elements it gives in one go."""
    expected = F.random_seeded(b"s", T + 5).to_ints()
    monkeypatch.setattr(prg, "_draws_for", lambda n, acceptance: 1)
    assert F.random_seeded(b"s", T + 5).to_ints() == expected
    assert len(set(F.random(40).to_ints())) == 40


def test_threads_do_not_share_scratch() -> None:
    """Kernels reuse per-thread buffers; concurrent products must not mix."""
    arrays = [F.random(3 * CHUNK) for _ in range(4)]
    expected = [(a * a).to_ints() for a in arrays]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda a: [(a * a).to_ints() for _ in range(3)], arrays))
    assert all(r == [e] * 3 for r, e in zip(results, expected))


def test_random_seeded_follows_the_documented_construction() -> None:
    key = hashlib.blake2b(len(b"k").to_bytes(8, "little") + b"k" + b"lbl", digest_size=32, person=b"vcpd.field.prg")
    assert derive_key(b"k", b"lbl") == key.digest()
    stream = randombytes_buf_deterministic(16 * 64, key.digest())
    words = [int.from_bytes(stream[i : i + 16], "little") for i in range(0, len(stream), 16)]
    expected = [F.unmont(w) for w in words if w < P][:20]
    assert F.random_seeded(b"k", 20, label=b"lbl").to_ints() == expected


# ---------------------------------------------------------------- fast paths

@pytest.mark.parametrize("p", [P, *OTHER_PRIMES])
@pytest.mark.parametrize("n", [1, T - 1, T, CHUNK + 7])
def test_dot_matches_python_ints(p: int, n: int) -> None:
    field = PrimeField(p)
    x, y = field.random(n), field.random(n)
    expected = sum(a * b for a, b in zip(x.to_ints(), y.to_ints(), strict=True)) % p
    assert x.dot(y) == expected
    edges = edge_values(p)
    e = field.from_ints((edges * (n // len(edges) + 1))[:n])
    assert e.dot(e) == sum(v * v for v in e.to_ints()) % p


@pytest.mark.parametrize("p", [P, *OTHER_PRIMES])
def test_coefficients_are_bounded_deterministic_and_prefix_consistent(p: int) -> None:
    field = PrimeField(p)
    long, short = field.coefficients(b"s" * 32, CHUNK + 9, label=b"a"), field.coefficients(b"s" * 32, 40, label=b"a")
    assert long[0:40].equals(short)
    assert not field.coefficients(b"s" * 32, 40, label=b"b").equals(short)
    bound = 1 << (p.bit_length() - 1)
    montgomery = [v * field.r % p for v in long.to_ints()]  # the stream words themselves
    assert all(m < bound for m in montgomery)
    assert len(set(montgomery)) == len(montgomery)
    # Chunk k of the stream is the documented ChaCha20 expansion under a per-chunk key.
    key = derive_key(b"s" * 32, b"a")
    chunk_key = hashlib.blake2b((1).to_bytes(8, "little"), key=key, digest_size=32, person=b"vcpd.field.coef").digest()
    words = np.frombuffer(randombytes_buf_deterministic(16 * 9, chunk_key), "<u8").reshape(-1, 2)
    expected = [(int(lo) | int(hi) << 64) % bound for lo, hi in words]
    assert montgomery[CHUNK:] == expected


@pytest.mark.parametrize("sizes", [[3], [T], [CHUNK + 5], [100, 2, CHUNK, 700]])
def test_coefficient_dots_equal_dots_with_the_coefficients(sizes: list[int]) -> None:
    columns = [[F.random(n) for n in sizes] for _ in range(3)]
    h = F.coefficients(b"q" * 32, sum(sizes), label=b"mac")
    expected = []
    for column in columns:
        total, start = 0, 0
        for part in column:
            total += h[start : start + len(part)].dot(part)
            start += len(part)
        expected.append(total % P)
    assert F.coefficient_dots(b"q" * 32, columns, label=b"mac") == expected
    with pytest.raises(FieldError, match="same lengths"):
        F.coefficient_dots(b"q" * 32, [[F.random(3)], [F.random(4)]])


@pytest.mark.parametrize("n", [2, T, CHUNK + 3])
def test_concat_differences(n: int) -> None:
    pairs = [(F.random(n), F.random(n)), (F.random(1), F.random(1)), (F.random(n // 2 + 1), F.random(n // 2 + 1))]
    assert FieldArray.concat_differences(pairs).equals(F.concat([x - y for x, y in pairs]))
    with pytest.raises(FieldError, match="length mismatch"):
        FieldArray.concat_differences([(F.random(2), F.random(3))])


def test_slices_are_views_that_behave_like_copies() -> None:
    x = F.random(3 * T)
    middle = x[T : 2 * T]
    assert middle.equals(F.from_ints(x.to_ints()[T : 2 * T]))
    assert (middle + middle).equals(middle * 2) and middle.dot(middle) == middle.copy().dot(middle.copy())
    assert middle.to_bytes() == x.to_bytes()[16 * T : 32 * T]
    with pytest.raises(ValueError):
        middle.limbs()[0, 0] = 1  # read-only, like every FieldArray


@pytest.mark.parametrize("n", [1, T - 1, T, CHUNK + 7])
def test_to_int64_and_vectorised_signed_decoding(n: int) -> None:
    values = ([-(2**63), 2**63 - 1, -1, 0, 1, -12345, 2**62, -(2**62)] * n)[:n]
    encoded = F.from_signed(values)
    assert encoded.to_int64().tolist() == values and encoded.to_signed() == values
    assert F.from_signed([v >> 56 for v in values]).to_signed(8) == [v >> 56 for v in values]
    for bad in (2**63, P // 2, P - 2**63 - 1):
        with pytest.raises(FieldError, match=f"element {n - 1} is outside the signed 64-bit"):
            F.from_ints([0] * (n - 1) + [bad]).to_int64()


def test_from_limbs_and_from_buffers() -> None:
    x = F.random(T + 3)
    assert F.from_limbs(np.array(x.limbs())).equals(x)
    bad = np.array(x.limbs())
    bad[1, 5] = np.uint64(2**64 - 1)
    with pytest.raises(FieldError, match="element 5"):
        F.from_limbs(bad)
    with pytest.raises(FieldError, match="2, n"):
        F.from_limbs(np.zeros((3, 4), np.uint64))
    data = x.to_bytes()
    assert F.from_bytes(bytearray(data)).equals(x) and F.from_bytes(memoryview(data)[16:]).equals(x[1 : T + 3])


# ---------------------------------------------------------------- layering


def test_math_imports_only_what_it_may() -> None:
    """vcpd.math is pure: numpy, nacl, the stdlib (minus random) and vcpd.errors."""
    allowed_roots = {"numpy", "nacl", "vcpd"} | set(sys.stdlib_module_names)
    package = Path(__file__).resolve().parents[2] / "vcpd" / "math"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in allowed_roots - {"random", "trio"}, (path.name, name)
                if name.startswith("vcpd"):
                    assert name == "vcpd.errors", (path.name, name)
