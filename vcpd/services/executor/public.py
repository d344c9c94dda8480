"""MP-SPDZ's public types for vcpd programs: ``cint`` and ``regint``.

* :class:`cint` -- a public vector over F_p (printed and compared as signed).
  ``x.reveal()`` returns one *lazily*: the opening is queued, and the first use
  of its value (printing, ``int()``, a comparison, arithmetic with an int)
  flushes the engine -- so several reveals in a row share one round and one
  MAC check, and no value is visible before its MAC check passed.
* :class:`regint` -- a public 64-bit register; an ``int`` subclass, so it
  indexes lists and ``Array`` and drives ``range``.

Arithmetic with a secret returns ``NotImplemented`` here, so that ``sint``'s
reflected operator runs (:mod:`.types`).

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math` and its siblings.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from vcpd.errors import FieldError, ProgramError
from vcpd.math import FieldArray

from .context import Output, ProgramContext, Sealed, current, to_index, unsupported, vector_size
from .graph import Opening

if TYPE_CHECKING:
    from .containers import Array

__all__ = ["cint", "index_of", "length_error", "public_value", "regint", "signed"]


def signed(value: int, p: int) -> int:
    """A canonical element read as a signed integer in (-p/2, p/2)."""
    return value - p if value > p // 2 else value


def public_value(x: object) -> int | FieldArray | None:
    """A public operand as an int (scalars) or FieldArray (vectors); None if not public."""
    if isinstance(x, cint):
        values = x._get()
        return values.to_ints()[0] if len(values) == 1 else values
    if isinstance(x, int):  # bool, int, regint
        return int(x)
    if isinstance(x, float):
        raise unsupported("fixed-point arithmetic (sfix, floats)")
    return None


def length_error(a: int, b: int) -> ProgramError:
    return ProgramError(f"operands are vectors of different sizes ({a} and {b})", rule="runtime")


def index_of(i: object, n: int) -> int:
    k = to_index(i)
    if not -n <= k < n:
        raise IndexError(f"index {k} out of range for {n} elements")
    return k % n


class cint(metaclass=Sealed):
    """A public value (or vector) in F_p; see the module doc."""

    __slots__ = ("_ctx", "_int_list", "_length", "_opening", "_values")
    _ctx: ProgramContext
    _int_list: list[int] | None
    _length: int
    _opening: Opening | None
    _values: FieldArray | None

    def __init__(self, value: object = 0, size: int | None = None) -> None:
        ctx = current()
        from .types import secret_vector  # noqa: PLC0415 - types builds on this module

        vector = secret_vector(ctx, value)
        if not isinstance(vector, FieldArray):
            raise ProgramError("a secret value cannot become public without reveal()", rule="runtime")
        if size is not None and len(vector) != size:
            n = vector_size(size)
            if len(vector) != 1:
                raise length_error(len(vector), n)
            ctx.budget.charge(n)
            vector = ctx.field.constant(vector.to_ints()[0], n)
        self._ctx, self._values, self._opening, self._length = ctx, vector, None, len(vector)
        self._int_list: list[int] | None = None

    @classmethod
    def _of(cls, ctx: ProgramContext, values: FieldArray) -> cint:
        obj = object.__new__(cls)
        obj._ctx, obj._values, obj._opening, obj._length = ctx, values, None, len(values)
        obj._int_list = None
        return obj

    @classmethod
    def _pending(cls, ctx: ProgramContext, opening: Opening, length: int) -> cint:
        obj = object.__new__(cls)
        obj._ctx, obj._values, obj._opening, obj._length = ctx, None, opening, length
        obj._int_list = None
        return obj

    def _get(self) -> FieldArray:
        if self._values is None:
            assert self._opening is not None
            self._values = self._ctx.engine.revealed(self._opening)
            self._opening = None
        return self._values

    def _ints(self) -> list[int]:
        """The canonical values as ints (cached: element access must not pay numpy's fixed cost)."""
        if self._int_list is None:
            self._int_list = self._get().to_ints()
        return self._int_list

    def _scalar(self) -> int:
        if self._length != 1:
            raise ProgramError(
                f"a vector of {self._length} public values has no single value; index it", rule="runtime"
            )
        return self._ints()[0]

    def _signed(self) -> int:
        return signed(self._scalar(), self._ctx.field.p)

    def _signed_list(self) -> list[int]:
        p = self._ctx.field.p
        return [signed(v, p) for v in self._ints()]

    # -- shape ----------------------------------------------------------------
    @property
    def size(self) -> int:
        return self._length

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: object) -> cint:
        if isinstance(index, slice):
            return cint._of(self._ctx, self._get()[index])
        value = self._ints()[index_of(index, self._length)]
        return cint._of(self._ctx, self._ctx.field.from_ints([value]))

    def __iter__(self) -> Iterator[cint]:
        field, ctx = self._ctx.field, self._ctx
        return iter([cint._of(ctx, field.from_ints([v])) for v in self._ints()])

    # -- arithmetic (mod p) ----------------------------------------------------
    def _arith(self, other: object, fn: Callable[[Any, Any], Any], reflected: bool = False) -> cint:
        c = public_value(other)  # None for a secret: sint's reflected operator runs
        if c is None:
            return NotImplemented  # type: ignore[no-any-return]
        mine: Any = self._get()
        if isinstance(c, FieldArray) and len(c) != self._length:
            if self._length != 1:
                raise length_error(self._length, len(c))
            mine = mine.to_ints()[0]
        self._ctx.budget.charge(max(self._length, len(c) if isinstance(c, FieldArray) else 1))
        result = fn(c, mine) if reflected else fn(mine, c)
        if not isinstance(result, FieldArray):  # int op int
            result = self._ctx.field.from_ints([result])
        return cint._of(self._ctx, result)

    def __add__(self, other: object) -> cint:
        return self._arith(other, operator.add)

    def __radd__(self, other: object) -> cint:
        return self._arith(other, operator.add, True)

    def __sub__(self, other: object) -> cint:
        return self._arith(other, operator.sub)

    def __rsub__(self, other: object) -> cint:
        return self._arith(other, operator.sub, True)

    def __mul__(self, other: object) -> cint:
        return self._arith(other, operator.mul)

    def __rmul__(self, other: object) -> cint:
        return self._arith(other, operator.mul, True)

    def __truediv__(self, other: object) -> cint:
        """Field division (MP-SPDZ's ``/`` on cint with a prime modulus)."""
        return self._arith(other, self._field_div)

    def __rtruediv__(self, other: object) -> cint:
        return self._arith(other, self._field_div, True)

    def _field_div(self, a: Any, b: Any) -> Any:
        field = self._ctx.field
        try:
            inverse = b.inverse() if isinstance(b, FieldArray) else field.inv(b)
        except FieldError:
            raise ProgramError("division by zero", rule="runtime") from None
        return a * inverse if isinstance(a, FieldArray) else field.from_ints([a]) * inverse

    def _signed_op(self, other: object, fn: Callable[[int, int], int], reflected: bool = False) -> cint:
        if not isinstance(other, int | cint):
            return NotImplemented  # type: ignore[no-any-return]
        a = self._signed()
        b = other._signed() if isinstance(other, cint) else int(other)
        try:
            result = fn(b, a) if reflected else fn(a, b)
        except ZeroDivisionError:
            raise ProgramError("division by zero", rule="runtime") from None
        except ValueError as exc:
            raise ProgramError(str(exc), rule="runtime") from None
        if abs(result) > self._ctx.field.p:
            raise ProgramError("a public result does not fit the field", rule="runtime")
        return cint._of(self._ctx, self._ctx.field.from_ints([result]))

    def __floordiv__(self, other: object) -> cint:
        return self._signed_op(other, operator.floordiv)

    def __rfloordiv__(self, other: object) -> cint:
        return self._signed_op(other, operator.floordiv, True)

    def __mod__(self, other: object) -> cint:
        return self._signed_op(other, operator.mod)

    def __rmod__(self, other: object) -> cint:
        return self._signed_op(other, operator.mod, True)

    def __lshift__(self, other: object) -> cint:
        return self._signed_op(other, _bounded_lshift)

    def __rshift__(self, other: object) -> cint:
        return self._signed_op(other, operator.rshift)

    def __pow__(self, exponent: object) -> cint:
        if not isinstance(exponent, int) or exponent < 0:
            raise unsupported("a negative or non-integer exponent of a cint")
        self._ctx.budget.charge(self._length)
        return cint._of(self._ctx, self._get().pow(int(exponent)))

    def __neg__(self) -> cint:
        return cint._of(self._ctx, -self._get())

    def __pos__(self) -> cint:
        return self

    # -- comparisons and conversions (signed) --------------------------------
    def _compare(self, other: object, fn: Callable[[int, int], bool]) -> Any:
        if not isinstance(other, int | cint):
            return NotImplemented
        b = other._signed() if isinstance(other, cint) else int(other)
        return regint(1 if fn(self._signed(), b) else 0)

    def __lt__(self, other: object) -> Any:
        return self._compare(other, operator.lt)

    def __le__(self, other: object) -> Any:
        return self._compare(other, operator.le)

    def __gt__(self, other: object) -> Any:
        return self._compare(other, operator.gt)

    def __ge__(self, other: object) -> Any:
        return self._compare(other, operator.ge)

    def __eq__(self, other: object) -> Any:
        return self._compare(other, operator.eq)

    def __ne__(self, other: object) -> Any:
        return self._compare(other, operator.ne)

    def __hash__(self) -> int:
        return hash(self._signed())

    def __bool__(self) -> bool:
        return self._scalar() != 0

    def __int__(self) -> int:
        return self._signed()

    __index__ = __int__

    def __str__(self) -> str:
        if self._length == 1:
            return str(self._signed())
        return "[" + ", ".join(map(str, self._signed_list())) + "]"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(self._signed(), spec) if self._length == 1 else format(str(self), spec)

    def reveal(self) -> cint:
        """Already public: itself."""
        return self

    def if_else(self, a: object, b: object) -> object:
        """``a`` if this public condition is non-zero, else ``b``."""
        return a if self else b

    @classmethod
    def write_to_socket(cls, client_id: object, values: object, message_type: object = None) -> None:
        """Declare public values as one output of the execution."""
        from .types import secret_vector  # noqa: PLC0415 - types builds on this module

        ctx = current()
        vector = secret_vector(ctx, values)
        if not isinstance(vector, FieldArray):
            raise ProgramError("cint.write_to_socket takes public values; use sint.write_to_socket", rule="runtime")
        ctx.add_output(Output(None, vector))

    @classmethod
    def read_from_socket(cls, client_id: object, n: int = 1) -> NoReturn:
        raise unsupported("public inputs (cint.read_from_socket); inputs are secrets: sint.read_from_socket")

    @classmethod
    def Array(cls, size: int) -> Array:  # noqa: N802 - MP-SPDZ's name
        from .containers import Array  # noqa: PLC0415

        return Array(size, cls)

    @classmethod
    def Matrix(cls, rows: int, columns: int) -> Any:  # noqa: N802 - MP-SPDZ's name
        from .matrix import Matrix  # noqa: PLC0415

        return Matrix(rows, columns, cls)


def _bounded_lshift(a: int, b: int) -> int:
    if b > 256:
        raise ProgramError("shift too large for a field element", rule="runtime")
    return a << b


class regint(int, metaclass=Sealed):
    """A public integer register: a Python int (see the module doc)."""

    __slots__ = ()

    def __new__(cls, value: object = 0, size: object = None) -> regint:
        if isinstance(value, cint):
            return int.__new__(cls, value._signed())
        if isinstance(value, float):
            raise unsupported("fixed-point arithmetic (sfix, floats)")
        return int.__new__(cls, to_index(value))

    def reveal(self) -> regint:
        """Already public: itself."""
        return self

    def if_else(self, a: object, b: object) -> object:
        """``a`` if non-zero, else ``b``."""
        return a if self else b

    @classmethod
    def write_to_socket(cls, client_id: object, values: object, message_type: object = None) -> None:
        cint.write_to_socket(client_id, values, message_type)

    @classmethod
    def read_from_socket(cls, client_id: object, n: int = 1) -> NoReturn:
        raise unsupported("public inputs (regint.read_from_socket); inputs are secrets: sint.read_from_socket")

    @classmethod
    def Array(cls, size: int) -> Array:  # noqa: N802 - MP-SPDZ's name
        from .containers import Array  # noqa: PLC0415

        return Array(size, cls)
