"""MP-SPDZ's public fixed-point type ``cfix``, and the fixed-point encoding.

A ``cfix`` holds the raw public integers v = x·2^f (f, k: the program's
``sfix.set_precision``, shared by sfix and cfix). Arithmetic is exact on v
(+, −) or rounded to the nearest ulp (·, /); comparisons give ``regint``
0/1. Printing shows a decimal with ⌈f·log10 2⌉ digits. ``cfix.write_to_socket``
declares public values as an output stored with the ``fixed`` encoding.
``reveal()`` of an ``sfix`` (:mod:`.fixed`) returns a cfix whose values are
MAC-checked when first used (it wraps a pending ``cint``).

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math`, :mod:`vcpd.protocol.nonlinear` and its siblings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from typing import Any, NoReturn

from vcpd.errors import ProgramError
from vcpd.protocol.nonlinear.cost import max_truncation_bits

from .context import Output, ProgramContext, Sealed, current, to_index, unsupported, vector_size
from .public import cint, index_of, length_error, regint, signed
from .types import sint

__all__ = ["cfix", "encode", "format_fixed", "precision", "set_precision"]


def precision(ctx: ProgramContext) -> tuple[int, int]:
    return ctx.fixed


def set_precision(f: object, k: object) -> None:
    ctx = current()
    fb = to_index(f)
    kb = 2 * fb if k is None else to_index(k)
    if not 0 < fb < kb:
        raise ProgramError(f"sfix.set_precision: need 0 < f < k, got f={fb}, k={kb}", rule="runtime")
    if kb + fb > max_truncation_bits(ctx.field.p, ctx.security):
        raise ProgramError(
            f"sfix.set_precision: products of {kb}-bit values with {fb} fractional bits do not fit the field "
            f"(k + f ≤ {max_truncation_bits(ctx.field.p, ctx.security)})",
            rule="runtime",
        )
    ctx.fixed = (fb, kb)


def encode(x: object, f: int, k: int) -> int:
    """A public number as the raw integer round(x·2^f), checked against k bits."""
    if isinstance(x, cfix):
        return x._scalar_raw()
    if isinstance(x, bool | int):
        v = int(x) << f
    elif isinstance(x, float):
        if not math.isfinite(x):
            raise ProgramError(f"{x} is not a finite number", rule="runtime")
        v = round(x * (1 << f))
    else:
        raise ProgramError(f"expected a number, not {type(x).__name__}", rule="runtime")
    if not -(1 << (k - 1)) <= v < 1 << (k - 1):
        raise ProgramError(f"{x} does not fit sfix with k={k}, f={f}", rule="too-large-value")
    return v


def format_fixed(v: int, f: int) -> str:
    """v/2^f as a decimal with enough digits for f bits, trailing zeros dropped."""
    digits = max(1, math.ceil(f * math.log10(2)))
    text = f"{v / (1 << f):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


class cfix(metaclass=Sealed):
    """A public fixed-point number (or vector): the raw integers v = x·2^f."""

    __slots__ = ("_ctx", "_f", "_k", "_v")

    def __init__(self, value: object = 0, size: object = None) -> None:
        ctx = current()
        f, k = precision(ctx)
        if isinstance(value, cfix):
            raws = value._raw_list()
        elif isinstance(value, list | tuple):
            ctx.budget.charge(len(value))
            raws = [encode(v, f, k) for v in value]
        elif isinstance(value, sint) or _is_sfix(value):
            raise ProgramError("a secret value cannot become public without reveal()", rule="runtime")
        else:
            raws = [encode(value, f, k)]
        if size is not None:
            n = vector_size(size)
            if len(raws) != n:
                if len(raws) != 1:
                    raise length_error(len(raws), n)
                raws = raws * n
        self._ctx, self._f, self._k = ctx, f, k
        self._v = cint._of(ctx, ctx.field.from_ints(raws))

    @classmethod
    def _of(cls, ctx: ProgramContext, raw: cint, f: int, k: int) -> cfix:
        obj = object.__new__(cls)
        obj._ctx, obj._v, obj._f, obj._k = ctx, raw, f, k
        return obj

    def _raw_list(self) -> list[int]:
        return self._v._signed_list()

    def _scalar_raw(self) -> int:
        raws = self._raw_list()
        if len(raws) != 1:
            raise ProgramError(f"a vector of {len(raws)} public values has no single value; index it", rule="runtime")
        return raws[0]

    def _from_raws(self, raws: list[int]) -> cfix:
        return cfix._of(self._ctx, cint._of(self._ctx, self._ctx.field.from_ints(raws)), self._f, self._k)

    # -- shape and conversions ------------------------------------------------------
    @property
    def v(self) -> cint:
        """The raw public integer v = x·2^f."""
        return self._v

    @property
    def size(self) -> int:
        return len(self._v)

    def __len__(self) -> int:
        return len(self._v)

    def __getitem__(self, index: object) -> cfix:
        raws = self._raw_list()
        if isinstance(index, slice):
            return self._from_raws(raws[index])
        return self._from_raws([raws[index_of(index, len(raws))]])

    def __iter__(self) -> Iterator[cfix]:
        return iter([self._from_raws([r]) for r in self._raw_list()])

    def __float__(self) -> float:
        return self._scalar_raw() / (1 << self._f)

    def __int__(self) -> int:
        return self._scalar_raw() >> self._f

    def __str__(self) -> str:
        texts = [format_fixed(r, self._f) for r in self._raw_list()]
        return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(float(self), spec) if spec and len(self) == 1 else format(str(self), spec)

    def reveal(self) -> cfix:
        return self

    # -- arithmetic (exact on the raw integers, products and quotients rounded to nearest) ----
    def _other_raws(self, other: object) -> list[int] | None:
        if isinstance(other, cfix):
            raws = other._raw_list()
            return raws if other._f == self._f else [round(r * Fraction(1 << self._f, 1 << other._f)) for r in raws]
        if isinstance(other, bool | int | float):
            return [encode(other, self._f, 2 * self._k + self._f)]
        if isinstance(other, cint):
            return [signed(v, self._ctx.field.p) << self._f for v in other._ints()]
        return None

    def _arith(self, other: object, fn: Any, reflected: bool = False) -> Any:
        theirs = self._other_raws(other)
        if theirs is None:
            return NotImplemented
        mine = self._raw_list()
        if len(mine) != len(theirs):
            if len(mine) == 1:
                mine = mine * len(theirs)
            elif len(theirs) == 1:
                theirs = theirs * len(mine)
            else:
                raise length_error(len(mine), len(theirs))
        self._ctx.budget.charge(len(mine))
        one = 1 << self._f
        try:
            result = [fn(b, a, one) if reflected else fn(a, b, one) for a, b in zip(mine, theirs, strict=True)]
        except ZeroDivisionError:
            raise ProgramError("division by zero", rule="runtime") from None
        return self._from_raws(result)

    def __add__(self, other: object) -> Any:
        return self._arith(other, lambda a, b, one: a + b)

    def __radd__(self, other: object) -> Any:
        return self._arith(other, lambda a, b, one: a + b, True)

    def __sub__(self, other: object) -> Any:
        return self._arith(other, lambda a, b, one: a - b)

    def __rsub__(self, other: object) -> Any:
        return self._arith(other, lambda a, b, one: a - b, True)

    def __mul__(self, other: object) -> Any:
        return self._arith(other, lambda a, b, one: round(Fraction(a * b, one)))

    def __rmul__(self, other: object) -> Any:
        return self._arith(other, lambda a, b, one: round(Fraction(a * b, one)), True)

    def __truediv__(self, other: object) -> Any:
        return self._arith(other, lambda a, b, one: round(Fraction(a * one, b)))

    def __rtruediv__(self, other: object) -> Any:
        return self._arith(other, lambda a, b, one: round(Fraction(a * one, b)), True)

    def __neg__(self) -> cfix:
        return self._from_raws([-r for r in self._raw_list()])

    def __abs__(self) -> cfix:
        return self._from_raws([abs(r) for r in self._raw_list()])

    def _compare(self, other: object, fn: Any) -> Any:
        theirs = self._other_raws(other)
        if theirs is None or len(theirs) != 1:
            return NotImplemented
        return regint(1 if fn(self._scalar_raw(), theirs[0]) else 0)

    def __lt__(self, other: object) -> Any:
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other: object) -> Any:
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other: object) -> Any:
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other: object) -> Any:
        return self._compare(other, lambda a, b: a >= b)

    def __eq__(self, other: object) -> Any:  # type: ignore[override]
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other: object) -> Any:  # type: ignore[override]
        return self._compare(other, lambda a, b: a != b)

    def __hash__(self) -> int:
        return hash(tuple(self._raw_list()))

    @classmethod
    def set_precision(cls, f: object, k: object = None) -> None:
        """The same as ``sfix.set_precision`` (one precision per program)."""
        set_precision(f, k)

    @classmethod
    def write_to_socket(cls, client_id: object, values: object, message_type: object = None) -> None:
        """Declare public values as one output, stored with the fixed encoding."""
        ctx = current()
        f, k = precision(ctx)
        if isinstance(values, cfix):
            raws = values._raw_list()
        elif isinstance(values, list | tuple):
            raws = []
            for item in values:
                raws.extend(item._raw_list() if isinstance(item, cfix) else [encode(item, f, k)])
        else:
            raws = [encode(values, f, k)]
        ctx.add_output(Output(None, ctx.field.from_ints(raws), f))

    @classmethod
    def read_from_socket(cls, client_id: object, n: object = 1) -> NoReturn:
        raise unsupported("public inputs (cfix.read_from_socket); inputs are secrets: sfix.read_from_socket")


def _is_sfix(x: object) -> bool:
    from .fixed import sfix  # noqa: PLC0415 - fixed builds on this module

    return isinstance(x, sfix)
