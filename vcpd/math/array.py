"""FieldArray: an immutable vector of elements of one prime field.

Callers see one type; inside there are two representations, chosen by length
alone so that two arrays of equal length always share one:

* fewer than :data:`SMALL_THRESHOLD` elements: a list of canonical Python ints.
  numpy's fixed cost (about 1 µs per call, ~75 calls per product) exceeds
  CPython's ``(a*b) % p`` on small batches;
* otherwise: a read-only ``(2, n)`` uint64 array of Montgomery limbs, driven by
  the chunked kernels of :mod:`vcpd.math._limbs`.

Values never appear in ``repr`` or in error messages: they may be shares.

This module must not import trio or any vcpd module except ``vcpd.errors``
(and, for types only, :mod:`vcpd.math.field`); it does no I/O.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Final, NoReturn, SupportsIndex, final

import numpy as np
import numpy.typing as npt

from vcpd.errors import FieldError

from ._limbs import Limbs, int_limbs, py_batch_inverse, raw_dot, raw_sum

if TYPE_CHECKING:
    from .field import PrimeField

__all__ = ["SMALL_THRESHOLD", "FieldArray", "Index"]

SMALL_THRESHOLD: Final = 512
"""Arrays shorter than this hold Python ints.

Measured with ``bench/field.py --crossover`` on the reference 2-core EPYC: the
numpy product costs ~85 µs fixed plus ~45 ns per element and overtakes
``(a*b) % p`` near 800 elements; addition crosses near 250, and the wire
encoding is cheaper in numpy at every size (2 µs against 115 µs at 512). 512
keeps products of small batches on the cheap path without making mid-size
additions and wire I/O pay much for it.
"""

Index = SupportsIndex | slice | Sequence[int] | Sequence[bool] | npt.NDArray[np.integer] | npt.NDArray[np.bool_]
"""What ``FieldArray.__getitem__`` accepts: one position, a slice, positions or a mask."""


@final
class FieldArray:
    """A vector over a :class:`~vcpd.math.field.PrimeField`.

    Build one with the field's constructors (``field.from_ints``,
    ``field.from_bytes``, ``field.random``, ...), not with this class.
    Arithmetic takes another FieldArray of the same field and length, or a
    Python int (taken mod p, broadcast). ``==`` is refused on purpose: use
    :meth:`equals`, which answers for the whole array.
    """

    __slots__ = ("_field", "_ints", "_limbs")
    __array_ufunc__ = None  # numpy scalars defer to our reflected operators
    __hash__ = None  # type: ignore[assignment]  # mutable-looking container; never a dict key

    def __init__(self, field: PrimeField, ints: list[int] | None, limbs: Limbs | None) -> None:
        self._field = field
        self._ints = ints
        self._limbs = limbs

    # ------------------------------------------------------------ basics

    @property
    def field(self) -> PrimeField:
        """The field the elements belong to."""
        return self._field

    def __len__(self) -> int:
        return len(self._ints) if self._ints is not None else self._big.shape[1]

    def __repr__(self) -> str:
        return f"<FieldArray n={len(self)} p={self._field.p:#x}>"

    def __eq__(self, other: object) -> NoReturn:
        raise TypeError("FieldArray does not support ==; use a.equals(b)")

    def __ne__(self, other: object) -> NoReturn:
        raise TypeError("FieldArray does not support !=; use not a.equals(b)")

    def __iter__(self) -> Iterator[FieldArray]:
        raise TypeError("FieldArray is not iterable element by element; use to_ints()")

    @property
    def _big(self) -> Limbs:
        assert self._limbs is not None
        return self._limbs

    @property
    def _small(self) -> list[int]:
        assert self._ints is not None
        return self._ints

    def copy(self) -> FieldArray:
        """An equal, independent array (FieldArrays are immutable, so rarely needed)."""
        if self._ints is not None:
            return FieldArray(self._field, list(self._ints), None)
        return _frozen(self._field, self._big.copy())

    def equals(self, other: FieldArray) -> bool:
        """True iff other has the same field, length and elements."""
        if not isinstance(other, FieldArray) or other._field != self._field or len(other) != len(self):
            return False
        if self._ints is not None:
            return self._ints == other._ints
        return bool(np.array_equal(self._big, other._big))

    def all_zero(self) -> bool:
        """True iff every element is 0 (true for the empty array)."""
        if self._ints is not None:
            return not any(self._ints)
        return not self._big.any()

    def _first_zero(self) -> int | None:
        if self._ints is not None:
            return next((i for i, a in enumerate(self._ints) if not a), None)
        zero = (self._big[0] | self._big[1]) == 0
        return int(np.argmax(zero)) if zero.any() else None

    # ------------------------------------------------------------ indexing

    def __getitem__(self, key: Index) -> FieldArray:
        """Select elements: an int gives a length-1 array; slices, index arrays and
        boolean masks of length ``len(self)`` work as in numpy (1-D)."""
        n = len(self)
        if isinstance(key, tuple):
            raise TypeError("FieldArray is one-dimensional")
        if isinstance(key, slice):
            if self._ints is not None:
                return wrap_ints(self._field, self._ints[key])
            if key.step in (None, 1):
                # A view, not a copy: each row stays contiguous, which is all the
                # kernels need. (It keeps the whole parent buffer alive.)
                return wrap_limbs(self._field, self._big[:, key])
            return wrap_limbs(self._field, np.ascontiguousarray(self._big[:, key]))
        if isinstance(key, Sequence | np.ndarray) and np.ndim(key) > 0:
            positions = np.arange(n)[key]  # numpy checks bounds, masks and negative indices
            if positions.ndim != 1:
                raise TypeError("FieldArray is one-dimensional")
            if self._ints is not None:
                return wrap_ints(self._field, [self._ints[i] for i in positions.tolist()])
            return wrap_limbs(self._field, np.ascontiguousarray(self._big[:, positions]))
        i = operator.index(key)  # type: ignore[arg-type]
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a FieldArray of length {n}")
        return self[i % n : i % n + 1]

    @classmethod
    def concat(cls, arrays: Sequence[FieldArray]) -> FieldArray:
        """Join non-empty ``arrays`` (all of one field) end to end."""
        if not arrays:
            raise ValueError("FieldArray.concat needs at least one array; use field.concat for none")
        field = arrays[0]._field
        if any(a._field != field for a in arrays):
            raise FieldError("cannot concatenate arrays of different fields")
        if sum(len(a) for a in arrays) < SMALL_THRESHOLD:
            return FieldArray(field, [x for a in arrays for x in a._small], None)
        parts = [a._big if a._limbs is not None else _ints_to_limbs(field, a._small) for a in arrays]
        return _frozen(field, np.concatenate(parts, axis=1))

    @classmethod
    def concat_differences(cls, pairs: Sequence[tuple[FieldArray, FieldArray]]) -> FieldArray:
        """``concat([x − y for x, y in pairs])``, computed straight into one array.

        Saves the temporaries and the copy of concatenating the differences
        (a Beaver round opens x − a and y − b side by side).
        """
        if not pairs:
            raise ValueError("FieldArray.concat_differences needs at least one pair")
        field = pairs[0][0]._field
        for x, y in pairs:
            if x._field != field or y._field != field:
                raise FieldError("cannot combine arrays of different fields")
            if len(x) != len(y):
                raise FieldError(f"length mismatch: {len(x)} and {len(y)} elements")
        total = sum(len(x) for x, _ in pairs)
        if total < SMALL_THRESHOLD:
            return cls.concat([x - y for x, y in pairs])
        out = np.empty((2, total), np.uint64)
        start = 0
        for x, y in pairs:
            n = len(x)
            xl = x._big if x._limbs is not None else _ints_to_limbs(field, x._small)
            yl = y._big if y._limbs is not None else _ints_to_limbs(field, y._small)
            field._kernel.sub(xl, yl, out[:, start : start + n])
            start += n
        return _frozen(field, out)

    @classmethod
    def mul_add2(
        cls, c: FieldArray, x1: FieldArray, y1: FieldArray, x2: FieldArray, y2: FieldArray
    ) -> FieldArray:
        """``c + x1·y1 + x2·y2`` element-wise, with one modular reduction
        (:mod:`vcpd.math._fused`): a Beaver product's finish, about a fifth
        cheaper than the two products and two additions it replaces."""
        field = c._field
        operands = (c, x1, y1, x2, y2)
        if any(v._field != field for v in operands):
            raise FieldError("cannot combine arrays of different fields")
        n = len(c)
        if any(len(v) != n for v in operands):
            raise FieldError(f"length mismatch: {[len(v) for v in operands]} elements")
        if n < SMALL_THRESHOLD:
            return c + x1 * y1 + x2 * y2
        out = np.empty((2, n), np.uint64)
        field._fused.mul_add2(*(v._big for v in operands), out)
        return _frozen(field, out)

    # ------------------------------------------------------------ arithmetic

    def _operand(self, other: object) -> FieldArray | int | None:
        """other as a same-shape FieldArray or a reduced int; None if foreign."""
        if isinstance(other, FieldArray):
            if other._field != self._field:
                raise FieldError("operands belong to different fields")
            if len(other) != len(self):
                raise FieldError(f"length mismatch: {len(self)} and {len(other)} elements")
            return other
        try:
            return operator.index(other) % self._field.p  # type: ignore[arg-type]
        except TypeError:
            return None

    def _limbs_of(self, operand: FieldArray | int) -> Limbs:
        if isinstance(operand, FieldArray):
            return operand._big
        return int_limbs(self._field.mont(operand))

    def _apply(self, kernel_op: Callable[[Limbs, Limbs, Limbs], None], x: Limbs, y: Limbs) -> FieldArray:
        out = np.empty((2, len(self)), np.uint64)
        kernel_op(x, y, out)
        return _frozen(self._field, out)

    def __add__(self, other: FieldArray | SupportsIndex) -> FieldArray:
        o = self._operand(other)
        if o is None:
            return NotImplemented
        if self._ints is None:
            return self._apply(self._field._kernel.add, self._big, self._limbs_of(o))
        p = self._field.p
        if isinstance(o, int):
            return FieldArray(self._field, [s - p if (s := a + o) >= p else s for a in self._ints], None)
        return FieldArray(self._field, [s - p if (s := a + b) >= p else s for a, b in zip(self._ints, o._small)], None)

    __radd__ = __add__

    def __sub__(self, other: FieldArray | SupportsIndex) -> FieldArray:
        o = self._operand(other)
        if o is None:
            return NotImplemented
        if self._ints is None:
            return self._apply(self._field._kernel.sub, self._big, self._limbs_of(o))
        p = self._field.p
        if isinstance(o, int):
            return FieldArray(self._field, [d + p if (d := a - o) < 0 else d for a in self._ints], None)
        return FieldArray(self._field, [d + p if (d := a - b) < 0 else d for a, b in zip(self._ints, o._small)], None)

    def __rsub__(self, other: SupportsIndex) -> FieldArray:
        o = self._operand(other)
        if not isinstance(o, int):
            return NotImplemented
        if self._ints is None:
            return self._apply(self._field._kernel.sub, self._limbs_of(o), self._big)
        p = self._field.p
        return FieldArray(self._field, [d + p if (d := o - a) < 0 else d for a in self._ints], None)

    def __neg__(self) -> FieldArray:
        return 0 - self

    def __mul__(self, other: FieldArray | SupportsIndex) -> FieldArray:
        o = self._operand(other)
        if o is None:
            return NotImplemented
        if self._ints is None:
            return self._apply(self._field._kernel.mul, self._big, self._limbs_of(o))
        p = self._field.p
        if isinstance(o, int):
            return FieldArray(self._field, [(a * o) % p for a in self._ints], None)
        return FieldArray(self._field, [(a * b) % p for a, b in zip(self._ints, o._small)], None)

    __rmul__ = __mul__

    def square(self) -> FieldArray:
        """Element-wise x²."""
        return self * self

    def pow(self, e: int) -> FieldArray:
        """Element-wise x^e; a negative e inverts first (FieldError on a zero)."""
        if e < 0:
            return self.inverse().pow(-e)
        if self._ints is not None:
            p = self._field.p
            return FieldArray(self._field, [pow(a, e, p) for a in self._ints], None)
        result = self._field.constant(1, len(self))
        for bit in bin(e)[2:]:
            result = result.square()
            if bit == "1":
                result = result * self
        return result

    def sum(self) -> int:
        """Σ x_i mod p, as a canonical int."""
        p = self._field.p
        if self._ints is not None:
            return sum(self._ints) % p
        return raw_sum(self._big) % p * self._field.r_inv % p

    def dot(self, other: FieldArray) -> int:
        """Σ x_i·y_i mod p, as a canonical int."""
        o = self._operand(other)
        if not isinstance(o, FieldArray):
            raise TypeError("dot takes a FieldArray")
        if self._ints is not None:
            return sum(a * b for a, b in zip(self._ints, o._small)) % self._field.p
        f = self._field
        # Σ (x·R)(y·R) = R²·Σ x·y: one reduction at the end instead of one per element.
        return raw_dot(self._big, o._big) % f.p * f.r_inv % f.p * f.r_inv % f.p

    def inverse(self) -> FieldArray:
        """Element-wise x^-1, by batch inversion (three products per element).

        Raises:
            FieldError: some element is zero (its position is named).
        """
        zero = self._first_zero()
        if zero is not None:
            raise FieldError(f"inverse of zero (element {zero})")
        if self._ints is not None:
            return FieldArray(self._field, py_batch_inverse(self._ints, self._field.p), None)
        return _frozen(self._field, self._field._kernel.inverse(self._big))

    # ------------------------------------------------------------ export

    def to_bytes(self) -> bytes:
        """16 bytes per element: little-endian Montgomery form, as Carbyne Stack and
        MP-SPDZ store it."""
        if self._ints is None:
            return self._big.T.astype("<u8", copy=False).tobytes()
        f = self._field
        return b"".join([(a * f.r % f.p).to_bytes(16, "little") for a in self._ints])

    def limbs(self) -> Limbs:
        """The ``(2, n)`` uint64 Montgomery limbs (row 0 low, row 1 high words),
        read-only; built from the ints for a short array."""
        if self._limbs is not None:
            return self._limbs
        return _ints_to_limbs(self._field, self._small)

    def to_ints(self) -> list[int]:
        """The canonical values, each in [0, p)."""
        if self._ints is not None:
            return list(self._ints)
        return _limbs_to_ints(self._field, self._big)

    def to_signed(self, k: int = 64) -> list[int]:
        """Decode k-bit signed integers: x > p/2 stands for x - p.

        Raises:
            FieldError: k does not fit the field, or an element is not in
                [-2^(k-1), 2^(k-1)).
        """
        if self._ints is None and k <= 64:
            return self.to_int64(k).tolist()  # type: ignore[no-any-return]
        bound = signed_bound(self._field, k)
        p, half = self._field.p, self._field.p // 2
        values = [x - p if x > half else x for x in self.to_ints()]
        bad = next((i for i, v in enumerate(values) if not -bound <= v < bound), None)
        if bad is not None:
            raise FieldError(f"element {bad} is outside the signed {k}-bit range")
        return values


    def to_int64(self, k: int = 64) -> npt.NDArray[np.int64]:
        """:meth:`to_signed` as a numpy int64 array, vectorised (k ≤ 64).

        Raises:
            FieldError: k does not fit the field or exceeds 64, or an element
                is not in [-2^(k-1), 2^(k-1)).
        """
        bound = signed_bound(self._field, k)
        if k > 64:
            raise FieldError(f"{k}-bit integers do not fit int64")
        if self._ints is not None:
            return np.array(self.to_signed(k), dtype=np.int64)
        f = self._field
        plain = np.empty(self._big.shape, np.uint64)
        f._kernel.mul(self._big, int_limbs(1), plain)  # x·R/R = x, canonical in [0, p)
        lo, hi = plain[0], plain[1]
        # Non-negative: x < 2^(k-1), so hi = 0. Negative: p - x ≤ 2^(k-1).
        p_lo, p_hi = np.uint64(f.p & _MASK64), np.uint64(f.p >> 64)
        borrow = (lo > p_lo).astype(np.uint64)
        neg_lo = p_lo - lo  # (p - x) mod 2^64
        neg_hi = p_hi - hi - borrow
        positive = (hi == 0) & (lo < np.uint64(bound))
        negative = (neg_hi == 0) & (neg_lo <= np.uint64(bound)) & (neg_lo != 0)
        ok = positive | negative
        if not ok.all():
            raise FieldError(f"element {int(np.argmin(ok))} is outside the signed {k}-bit range")
        out = np.where(positive, lo, np.uint64(0) - neg_lo)  # two's complement of -(p - x)
        return out.view(np.int64)

    def has_zero(self) -> bool:
        """True iff some element is 0."""
        return self._first_zero() is not None


# ---------------------------------------------------------------- internals

_MASK64 = (1 << 64) - 1


def signed_bound(field: PrimeField, k: int) -> int:
    """2^(k-1), after checking that k-bit signed integers embed in the field."""
    if k < 1 or (1 << (k - 1)) > field.p // 2:
        raise FieldError(f"{k}-bit signed integers do not fit a {field.bits}-bit field")
    return 1 << (k - 1)


def _frozen(field: PrimeField, limbs: Limbs) -> FieldArray:
    """Wrap freshly computed limbs of a large array, made read-only."""
    limbs.flags.writeable = False
    return FieldArray(field, None, limbs)


def wrap_ints(field: PrimeField, ints: list[int]) -> FieldArray:
    """An array from reduced canonical ints (taken over, not copied)."""
    if len(ints) < SMALL_THRESHOLD:
        return FieldArray(field, ints, None)
    return _frozen(field, _ints_to_limbs(field, ints))


def wrap_limbs(field: PrimeField, limbs: Limbs) -> FieldArray:
    """An array from reduced Montgomery limbs whose rows are contiguous (taken over)."""
    if limbs.shape[1] < SMALL_THRESHOLD:
        return FieldArray(field, _limbs_to_ints(field, limbs), None)
    return _frozen(field, limbs)


def _ints_to_limbs(field: PrimeField, ints: list[int]) -> Limbs:
    raw = b"".join([a.to_bytes(16, "little") for a in ints])
    plain = np.frombuffer(raw, dtype="<u8").reshape(-1, 2).T
    out = np.empty((2, len(ints)), np.uint64)
    field._kernel.mul(plain, int_limbs(field.r_squared), out)  # a·R²/R = a·R
    return out


def _limbs_to_ints(field: PrimeField, limbs: Limbs) -> list[int]:
    plain = np.empty(limbs.shape, np.uint64)
    field._kernel.mul(limbs, int_limbs(1), plain)  # a·R/R = a
    return [lo | (hi << 64) for lo, hi in zip(plain[0].tolist(), plain[1].tolist())]
