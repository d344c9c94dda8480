"""``sint``'s non-linear operations: comparisons, min/max/abs, division, shifts, bits.

:class:`SecretIntegerOps` is the sealed base class of ``sint``
(:mod:`.types`) holding the operators and methods that run non-linear
protocols; :mod:`.integers` has their semantics (MP-SPDZ's, with Python's
floor division) and :mod:`.nonlinear_ops` the protocols. Comparisons return
``sintbit`` (secret 0/1), everything else ``sint``; a ``float`` or fixed-point
operand turns the operation into fixed point (``sfix``, :mod:`.fixed`).

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math` and its siblings.
"""

from __future__ import annotations

from typing import Any

from vcpd.errors import ProgramError
from vcpd.math import FieldArray

from . import integers
from . import nonlinear_ops as ops
from . import types as _t
from .context import ProgramContext, Sealed, current, to_index, unsupported, vector_size
from .graph import Node
from .public import cint, length_error, public_value

__all__ = ["SecretIntegerOps", "fixed_operand", "fixed_of", "fixed_raw", "fixed_to_int"]


class SecretIntegerOps(metaclass=Sealed):
    """The non-linear half of ``sint`` (see the module doc); holds no state itself."""

    __slots__ = ()
    _ctx: ProgramContext
    _node: Node

    # -- non-linear operations (see .integers for the semantics) --------------------
    def _pair(self, other: object) -> tuple[Node, Node | int | FieldArray] | None:
        """(self, other) as equal-length operands, or None if other is no integer operand."""
        a = self._node
        if isinstance(other, _t.sint):
            return _t.broadcast(self._ctx.engine, a, other._node)
        if isinstance(other, float) or fixed_operand(other):
            return None
        c = public_value(other)
        if c is None:
            return None
        if isinstance(c, FieldArray) and len(c) != a.length:
            if a.length != 1:
                raise length_error(a.length, len(c))
            a = self._ctx.engine.repeat(a, len(c))
        return a, c

    def _compare(self, other: object, op: str, bit_length: object = None) -> Any:
        if isinstance(other, float) or fixed_operand(other):
            return fixed_of(self)._compare(other, op)
        pair = self._pair(other)
        if pair is None:
            return NotImplemented
        k = None if bit_length is None else _bit_length(self._ctx, bit_length)
        self._ctx.budget.charge(pair[0].length)
        return _t.sintbit._make(self._ctx, integers.compare(self._ctx, *pair, op, k))

    def __lt__(self, other: object) -> Any:
        return self._compare(other, "<")

    def __le__(self, other: object) -> Any:
        return self._compare(other, "<=")

    def __gt__(self, other: object) -> Any:
        return self._compare(other, ">")

    def __ge__(self, other: object) -> Any:
        return self._compare(other, ">=")

    def __eq__(self, other: object) -> Any:  # type: ignore[override]
        return self._compare(other, "==")

    def __ne__(self, other: object) -> Any:  # type: ignore[override]
        return self._compare(other, "!=")

    __hash__ = None  # type: ignore[assignment]

    def less_than(self, other: object, bit_length: object = None) -> Any:
        """[self < other] for operands of ``bit_length`` bits (fewer bits: fewer tuples)."""
        return self._compare(other, "<", bit_length)

    def greater_than(self, other: object, bit_length: object = None) -> Any:
        return self._compare(other, ">", bit_length)

    def less_equal(self, other: object, bit_length: object = None) -> Any:
        return self._compare(other, "<=", bit_length)

    def greater_equal(self, other: object, bit_length: object = None) -> Any:
        return self._compare(other, ">=", bit_length)

    def equal(self, other: object, bit_length: object = None) -> Any:
        return self._compare(other, "==", bit_length)

    def not_equal(self, other: object, bit_length: object = None) -> Any:
        return self._compare(other, "!=", bit_length)

    def min(self, other: object) -> Any:
        """Element-wise minimum (a comparison and a selection)."""
        return self._minmax(other, largest=False)

    def max(self, other: object) -> Any:
        """Element-wise maximum."""
        return self._minmax(other, largest=True)

    def _minmax(self, other: object, *, largest: bool) -> Any:
        if isinstance(other, float) or fixed_operand(other):
            fixed = fixed_of(self)
            return fixed.max(other) if largest else fixed.min(other)
        ctx = self._ctx
        a, b = _t.broadcast(ctx.engine, self._node, _t.as_node(ctx, other))
        ctx.budget.charge(a.length)
        return _t.sint._make(ctx, integers.minmax(ctx, a, b, largest=largest))

    def __abs__(self) -> Any:
        self._ctx.budget.charge(self._node.length)
        return _t.sint._make(self._ctx, integers.absolute(self._ctx, self._node))

    def _divisor(self, other: object) -> tuple[Node, Node | int] | None:
        if isinstance(other, _t.sint):
            return _t.broadcast(self._ctx.engine, self._node, other._node)
        if isinstance(other, float) or fixed_operand(other) or public_value(other) is None:
            return None
        if isinstance(other, cint) and len(other) != 1:
            raise unsupported("division by a vector of public values")
        return self._node, to_index(other)

    def __floordiv__(self, other: object) -> Any:
        pair = self._divisor(other)
        if pair is None:
            return NotImplemented  # type: ignore[no-any-return]
        self._ctx.budget.charge(pair[0].length)
        return _t.sint._make(self._ctx, integers.floordiv(self._ctx, *pair))

    def __rfloordiv__(self, other: object) -> Any:
        if isinstance(other, float) or public_value(other) is None:
            return NotImplemented  # type: ignore[no-any-return]
        return _t.sint(other, self.size) // self

    def __mod__(self, other: object) -> Any:
        pair = self._divisor(other)
        if pair is None:
            return NotImplemented  # type: ignore[no-any-return]
        self._ctx.budget.charge(pair[0].length)
        return _t.sint._make(self._ctx, integers.modulo(self._ctx, *pair))

    def __rmod__(self, other: object) -> Any:
        if isinstance(other, float) or public_value(other) is None:
            return NotImplemented  # type: ignore[no-any-return]
        return _t.sint(other, self.size) % self

    def int_div(self, other: object, bit_length: object = None) -> Any:
        """``self // other`` for a secret divisor, with operands of ``bit_length`` bits (at most 36)."""
        ctx = self._ctx
        a, b = _t.broadcast(ctx.engine, self._node, _t.as_node(ctx, other))
        k = ctx.bit_length if bit_length is None else _bit_length(ctx, bit_length)
        ctx.budget.charge(a.length)
        return _t.sint._make(ctx, ops.int_div(ctx.engine, a, b, k, ctx.security))

    def __truediv__(self, other: object) -> Any:
        """Fixed-point division (MP-SPDZ): an sfix."""
        return fixed_of(self) / other

    def __rtruediv__(self, other: object) -> Any:
        return other / fixed_of(self)  # type: ignore[operator]

    def __lshift__(self, other: object) -> Any:
        m = _shift(other)
        if m > 256:
            raise ProgramError("shift too large for a field element", rule="runtime")
        return self * (1 << m)

    def __rshift__(self, other: object) -> Any:
        m = _shift(other)
        self._ctx.budget.charge(self._node.length)
        return _t.sint._make(self._ctx, integers.shift_right(self._ctx, self._node, m))

    def bit_decompose(self, bit_length: object = None) -> list[Any]:
        """The lowest ``bit_length`` (default: the program's) bits of self, two's complement, LSB first.

        Fewer bits than the program's bit length are the low bits of a full
        decomposition (the masking must cover the whole value).
        """
        ctx = self._ctx
        m = ctx.bit_length if bit_length is None else _bit_length(ctx, bit_length)
        k = max(m, ctx.bit_length)
        n = self._node.length
        ctx.budget.charge(k * n)
        stacked = ops.bit_decompose(ctx.engine, self._node, k, ctx.security)
        return [_t.sintbit._make(ctx, ctx.engine.select(stacked, slice(i * n, (i + 1) * n))) for i in range(m)]

    @classmethod
    def bit_compose(cls, bits: object) -> Any:
        """Σ 2^i·bits[i] (local)."""
        items = list(bits)  # type: ignore[call-overload]
        terms = (b * (1 << i) for i, b in enumerate(items[1:], start=1))
        return sum(terms, items[0] * 1)  # type: ignore[no-any-return]

    @classmethod
    def get_random_bit(cls, size: object = None) -> Any:
        """A secret random bit (a vector with ``size``) from the tuple store."""
        ctx = current()
        n = 1 if size is None else vector_size(size)
        ctx.budget.charge(n)
        return _t.sintbit._make(ctx, ops.random_bits(ctx.engine, n))

    @classmethod
    def get_random_int(cls, bits: object, size: object = None) -> Any:
        """A secret random integer uniform in [0, 2^bits) (``bits`` random bits each)."""
        ctx = current()
        b = to_index(bits)
        if not 1 <= b <= ctx.bit_length:
            raise ProgramError(f"get_random_int: bits must be in 1..{ctx.bit_length}, not {b}", rule="runtime")
        n = 1 if size is None else vector_size(size)
        ctx.budget.charge(n * b)
        return _t.sint._make(ctx, ops.random_ints(ctx.engine, b, n))


def fixed_operand(x: object) -> bool:
    from .fixed import cfix, sfix  # noqa: PLC0415 - fixed builds on this module

    return isinstance(x, sfix | cfix)


def fixed_raw(x: object) -> Node | FieldArray:
    from .fixed import raw_vector  # noqa: PLC0415

    return raw_vector(x)


def fixed_to_int(x: object) -> Node:
    """sint(x) for an sfix/cfix: ⌊x⌋ (exact floor)."""
    from .fixed import to_int_node  # noqa: PLC0415

    return to_int_node(x)


def fixed_of(x: object) -> Any:
    from .fixed import sfix  # noqa: PLC0415

    return sfix(x)


def _shift(x: object) -> int:
    if isinstance(x, _t.sint):
        raise unsupported("a shift by a secret amount")
    m = to_index(x)
    if m < 0:
        raise ProgramError("negative shift count", rule="runtime")
    return m


def _bit_length(ctx: ProgramContext, bits: object) -> int:
    k = to_index(bits)
    if not 1 <= k <= 128:
        raise ProgramError(f"a bit length must be in 1..128, not {k}", rule="runtime")
    return k
