"""The prime field F_p used for shares, MACs and tuples.

Elements are stored and exchanged in Montgomery form x·2^128 mod p as 16-byte
little-endian words, which is exactly what Carbyne Stack (Amphora, Castor) and
MP-SPDZ write, so stored data loads without per-element conversion. Vectors are
:class:`~vcpd.math.array.FieldArray`; :class:`PrimeField` holds the constants,
the scalar helpers and every constructor of arrays.

This module must not import trio or any vcpd module except ``vcpd.errors``,
and does no I/O beyond reading OS randomness (``os.urandom``).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Final, final

import numpy as np
import numpy.typing as npt

from vcpd.errors import FieldError

from . import prg
from ._fused import FusedKernel
from ._limbs import CHUNK, Limbs, MontgomeryKernel, dot32, int_limbs, split32
from .array import SMALL_THRESHOLD, FieldArray, _ints_to_limbs, signed_bound, wrap_ints, wrap_limbs

__all__ = ["DEFAULT_PRIME", "SMALL_THRESHOLD", "FieldArray", "PrimeField"]

DEFAULT_PRIME: Final = 198766463529478683931867765928436695041
"""Carbyne Stack's default 128-bit prime (0x958907458f2136861bd7554a24340001)."""

_MR_BASES: Final = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97)


def _is_probable_prime(n: int) -> bool:
    """Miller–Rabin with the 25 primes below 100 as fixed bases.

    Deterministic (same answer everywhere). A composite passes only if it was
    built to fool exactly these bases; p comes from configuration, not from an
    adversary, so that is an acceptable residual risk.
    """
    if n < 2:
        return False
    for q in _MR_BASES:
        if n % q == 0:
            return n == q
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in _MR_BASES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _count(n: int) -> int:
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"an array length cannot be negative ({n})")
    return n


@final
class PrimeField:
    """F_p for an odd prime 2^64 < p < 2^128, with Montgomery radix R = 2^128.

    Two instances with the same p are equal and interchangeable.

    Attributes:
        p: the modulus.
        bits: p.bit_length().
        r: R mod p (the Montgomery form of 1).
        r_squared: R² mod p (converts to Montgomery form by one product).
        r_inv: R^-1 mod p (converts out of it).
        n_prime: -p^-1 mod 2^32, the CIOS reduction constant.
    """

    __slots__ = ("_fused", "_kernel", "bits", "n_prime", "p", "r", "r_inv", "r_squared")

    def __init__(self, p: int = DEFAULT_PRIME) -> None:
        """Validate p and precompute the Montgomery constants.

        Raises:
            FieldError: p is not an int, not in (2^64, 2^128), even, or composite.
        """
        if not isinstance(p, int) or isinstance(p, bool):
            raise FieldError(f"the modulus must be an int, not {type(p).__name__}")
        if not (1 << 64) < p < (1 << 128):
            raise FieldError(f"the modulus must lie strictly between 2^64 and 2^128; got {p.bit_length()} bits")
        if p % 2 == 0:
            raise FieldError("the modulus must be odd; got an even number")
        if not _is_probable_prime(p):
            raise FieldError(f"the modulus {p} is not prime")
        self.p: Final = p
        self.bits: Final = p.bit_length()
        self.r: Final = (1 << 128) % p
        self.r_squared: Final = self.r * self.r % p
        self.r_inv: Final = pow(self.r, -1, p)
        self.n_prime: Final = (-pow(p, -1, 1 << 32)) % (1 << 32)
        self._kernel: Final = MontgomeryKernel(p)  # also used by vcpd.math.array
        self._fused: Final = FusedKernel(p)  # c + x1·y1 + x2·y2, used by vcpd.math.array

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrimeField) and other.p == self.p

    def __hash__(self) -> int:
        return hash(("PrimeField", self.p))

    def __repr__(self) -> str:
        return f"PrimeField({self.p})"

    # ------------------------------------------------------------ scalars

    def mont(self, x: int) -> int:
        """x·R mod p: the Montgomery form of x (any int, reduced first)."""
        return x % self.p * self.r % self.p

    def unmont(self, m: int) -> int:
        """m·R^-1 mod p: the value whose Montgomery form is m."""
        return m % self.p * self.r_inv % self.p

    def inv(self, x: int) -> int:
        """x^-1 mod p. Raises FieldError for x ≡ 0."""
        if x % self.p == 0:
            raise FieldError("inverse of zero")
        return pow(x, -1, self.p)

    def int_to_bytes(self, x: int) -> bytes:
        """One element (any int, reduced mod p) as its 16-byte wire form."""
        return self.mont(x).to_bytes(16, "little")

    def int_from_bytes(self, b: bytes) -> int:
        """The canonical value of one 16-byte wire word.

        Raises:
            FieldError: b is not 16 bytes or encodes a value ≥ p.
        """
        if len(b) != 16:
            raise FieldError(f"a field element is 16 bytes, got {len(b)}")
        m = int.from_bytes(b, "little")
        if m >= self.p:
            raise FieldError("encoded value is not below p")
        return m * self.r_inv % self.p

    # ------------------------------------------------------------ arrays

    def zeros(self, n: int) -> FieldArray:
        """n zeros."""
        return self.constant(0, n)

    def constant(self, c: int, n: int) -> FieldArray:
        """n copies of c mod p."""
        c = operator.index(c) % self.p
        n = _count(n)
        if n < SMALL_THRESHOLD:
            return wrap_ints(self, [c] * n)
        out = np.empty((2, n), np.uint64)
        out[:] = int_limbs(self.mont(c))
        return wrap_limbs(self, out)

    def concat(self, arrays: Sequence[FieldArray]) -> FieldArray:
        """Join arrays of this field end to end (an empty sequence gives an empty array)."""
        if not arrays:
            return self.zeros(0)
        if arrays[0].field != self:
            raise FieldError("cannot concatenate arrays of another field")
        return FieldArray.concat(arrays)

    def from_ints(self, values: Iterable[int] | npt.NDArray[np.integer]) -> FieldArray:
        """Elements from integers, each taken mod p (negative ones included).

        numpy integer arrays (up to 64 bits) convert without a Python loop.
        """
        if isinstance(values, np.ndarray):
            if values.ndim != 1:
                raise FieldError(f"expected a 1-D array, got shape {values.shape}")
            if values.dtype.kind in "iu" and values.size >= SMALL_THRESHOLD:
                return self._from_int_ndarray(values)
        p = self.p
        return wrap_ints(self, [operator.index(v) % p for v in values])

    def _from_int_ndarray(self, values: npt.NDArray[np.integer]) -> FieldArray:
        kernel = self._kernel
        negative = values < 0 if values.dtype.kind == "i" else None
        magnitude = values.astype(np.uint64)  # two's complement for negatives
        if negative is not None:
            np.negative(magnitude, out=magnitude, where=negative)
        plain = np.zeros((2, values.size), np.uint64)
        plain[0] = magnitude
        out = np.empty_like(plain)
        kernel.mul(plain, int_limbs(self.r_squared), out)  # |v|·R
        if negative is not None and negative.any():
            negated = np.empty_like(out)
            kernel.sub(int_limbs(0), out, negated)
            np.copyto(out, negated, where=negative)
        return wrap_limbs(self, out)

    def from_signed(self, values: Iterable[int] | npt.NDArray[np.integer], k: int = 64) -> FieldArray:
        """Encode k-bit signed integers: v ↦ v mod p, so -1 becomes p - 1.

        Raises:
            FieldError: k does not fit the field, or a value is outside
                [-2^(k-1), 2^(k-1)).
        """
        bound = signed_bound(self, k)
        if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
            if values.size and not (-bound <= int(values.min()) and int(values.max()) < bound):
                raise FieldError(f"a value is outside the signed {k}-bit range")
            return self.from_ints(values)
        ints = [operator.index(v) for v in values]
        bad = next((i for i, v in enumerate(ints) if not -bound <= v < bound), None)
        if bad is not None:
            raise FieldError(f"value {bad} is outside the signed {k}-bit range")
        return self.from_ints(ints)

    def from_bytes(self, b: bytes | bytearray | memoryview) -> FieldArray:
        """Parse 16-byte little-endian Montgomery words (the wire form).

        Raises:
            FieldError: the length is not a multiple of 16, or a word encodes a
                value ≥ p (its position is named).
        """
        if not isinstance(b, bytes):
            view = memoryview(b)
            # Read in place (the limbs below are a copy anyway); bytes() only
            # for the odd non-contiguous buffer.
            b = view.cast("B") if view.c_contiguous else bytes(view)
        if len(b) % 16:
            raise FieldError(f"field data must be a multiple of 16 bytes, got {len(b)}")
        n = len(b) // 16
        if n < SMALL_THRESHOLD:
            b = bytes(b)
            words = [int.from_bytes(b[i : i + 16], "little") for i in range(0, len(b), 16)]
            bad = next((i for i, m in enumerate(words) if m >= self.p), None)
            if bad is not None:
                raise FieldError(f"element {bad} encodes a value not below p")
            p, r_inv = self.p, self.r_inv
            return wrap_ints(self, [m * r_inv % p for m in words])
        limbs: Limbs = np.frombuffer(b, dtype="<u8").reshape(n, 2).T.astype(np.uint64, order="C")
        below = self._kernel.below_p(limbs)
        if not below.all():
            raise FieldError(f"element {int(np.argmin(below))} encodes a value not below p")
        return wrap_limbs(self, limbs)

    def from_limbs(self, limbs: npt.NDArray[np.uint64]) -> FieldArray:
        """Take over a ``(2, n)`` uint64 array of Montgomery forms (row 0: low 64
        bits, row 1: high 64 bits), as laid out by a strided copy of wire words.

        Rows must be contiguous; the array must not be modified afterwards.

        Raises:
            FieldError: the shape is wrong, or a word encodes a value ≥ p.
        """
        if not isinstance(limbs, np.ndarray) or limbs.dtype != np.uint64 or limbs.ndim != 2 or limbs.shape[0] != 2:
            raise FieldError("limbs must be a (2, n) uint64 array")
        below = self._kernel.below_p(limbs)
        if not below.all():
            raise FieldError(f"element {int(np.argmin(below))} encodes a value not below p")
        return wrap_limbs(self, limbs)

    def random(self, n: int) -> FieldArray:
        """n independent uniform elements from the OS CSPRNG."""
        return wrap_limbs(self, prg.os_random_limbs(self.p, self._kernel, _count(n)))

    def coefficients(self, seed: bytes, n: int, *, label: bytes = b"") -> FieldArray:
        """n unpredictable coefficients expanded deterministically from (seed, label).

        Each is uniform over a fixed set of 2^(bits−1) > p/2 field elements
        (2^127 for the default prime; not all of F_p, see
        :func:`vcpd.math.prg.seeded_bounded_limbs`), which is what a random
        linear combination needs: a nonzero vector is mapped to zero with
        probability at most 2^-(bits−1). Cheaper than :meth:`random_seeded`
        (no rejection sampling). The same arguments give the same vector on
        every machine.
        """
        if not isinstance(seed, bytes) or not isinstance(label, bytes):
            raise TypeError("seed and label must be bytes")
        return wrap_limbs(self, prg.seeded_bounded_limbs(self.p, seed, label, _count(n)))

    def coefficient_dots(
        self, seed: bytes, columns: Sequence[Sequence[FieldArray]], *, label: bytes = b""
    ) -> list[int]:
        """Σ_j h_j·x_j for each column x, with h = :meth:`coefficients` of (seed, label).

        A column is a list of parts, taken end to end (position j runs over
        the concatenation); every column has parts of the same lengths. The
        coefficients are generated chunk by chunk and consumed at once -- no
        coefficient vector, no concatenation -- and each dot product is reduced
        once, at the end (see :func:`vcpd.math._limbs.dot32`). Returns one
        canonical value per column.
        """
        if not isinstance(seed, bytes) or not isinstance(label, bytes):
            raise TypeError("seed and label must be bytes")
        if not columns:
            return []
        lengths = [len(part) for part in columns[0]]
        for column in columns:
            if [len(part) for part in column] != lengths:
                raise FieldError("every column needs parts of the same lengths")
            if any(part.field != self for part in column):
                raise FieldError("cannot combine arrays of another field")
        key = prg.derive_key(seed, label)
        total = sum(lengths)
        if total < SMALL_THRESHOLD:  # every part holds Python ints: stay with them
            return self._small_coefficient_dots(key, columns, total)
        limbs = [[part._limbs if part._limbs is not None else _ints_to_limbs(self, part._ints or []) for part in column]
                 for column in columns]  # fmt: skip
        totals = [0] * len(columns)
        h = np.empty((4, CHUNK), np.uint64)
        x = np.empty((4, CHUNK), np.uint64)
        part, offset = 0, 0
        for index, start in enumerate(range(0, sum(lengths), CHUNK)):
            c = min(CHUNK, sum(lengths) - start)
            prg.bounded_chunk_limbs32(self.p, key, index, c, h[:, :c])
            done = 0
            while done < c:
                take = min(c - done, lengths[part] - offset)
                for col, column_limbs in enumerate(limbs):
                    split32(column_limbs[part][:, offset : offset + take], x[:, :take])
                    totals[col] += dot32(h[:, done : done + take], x[:, :take])
                done += take
                offset += take
                if offset == lengths[part]:
                    part, offset = part + 1, 0
        # Both factors are Montgomery forms: Σ (h·R)(x·R) = R²·Σ h·x.
        return [total % self.p * self.r_inv % self.p * self.r_inv % self.p for total in totals]

    def _small_coefficient_dots(self, key: bytes, columns: Sequence[Sequence[FieldArray]], total: int) -> list[int]:
        """:meth:`coefficient_dots` of fewer than ``SMALL_THRESHOLD`` elements, in Python ints."""
        words = prg.bounded_chunk_words(self.p, key, 0, total)
        p, r_inv = self.p, self.r_inv
        coefficients = [w * r_inv % p for w in words]  # the elements whose Montgomery forms the words are
        results = []
        for column in columns:
            values = [v for part in column for v in part.to_ints()]
            results.append(sum(h * v for h, v in zip(coefficients, values, strict=True)) % p)
        return results

    def random_seeded(self, seed: bytes, n: int, *, label: bytes = b"") -> FieldArray:
        """n uniform elements expanded deterministically from (seed, label).

        The same seed, label and n give the same vector on every machine (see
        :mod:`vcpd.math.prg` for the exact construction); a longer n extends the
        shorter vector. Different labels give independent vectors.
        """
        if not isinstance(seed, bytes) or not isinstance(label, bytes):
            raise TypeError("seed and label must be bytes")
        return wrap_limbs(self, prg.seeded_random_limbs(self.p, self._kernel, seed, label, _count(n)))
