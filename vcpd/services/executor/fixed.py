"""MP-SPDZ's fixed-point types for vcpd programs: ``sfix`` (secret) and ``cfix`` (public).

A fixed-point value x is held as the integer v = x·2^f (f fractional bits,
k bits in all, so |x| < 2^(k−f−1)); defaults f = 16, k = 31, set per program
with ``sfix.set_precision(f, k)`` (``cfix.set_precision`` sets the same).
Resolution 2^−f is one *ulp* (≈ 1.5·10^−5 for f = 16).

Operations on ``sfix`` and their **error bounds** (against the exact result
of the fixed-point operands, while the result fits k bits):

* ``+ -`` with sfix, cfix, sint, int, float: exact (local).
* ``*`` by an sfix: one Beaver product and a probabilistic truncation
  (TruncPr(x·y, k+f, f), MP-SPDZ's default): **error < 1 ulp** (the result is
  ⌊xy⌋ or ⌊xy⌋ + 1 ulp, unbiased). By a public real c: TruncPr of x·⌊c·2^f⌉,
  error < 1 ulp + |x|·2^−(f+1). By an int or an sint: exact (no truncation).
* ``/`` by an sfix (or sint): Goldschmidt division after a normalisation
  (:mod:`vcpd.protocol.nonlinear.fixed`): **error < 2 ulps**; by a public
  number c: a product with ⌊2^g/c⌉ for as many guard bits g as the field
  allows, then TruncPr: **error < 1 ulp** (+ |x|·2^−(g+1), negligible);
  ``compute_reciprocal()`` and ``1 / x``: error < 2 ulps. A divisor 0 gives
  garbage, not an error.
* ``sfix.dot_product(a, b)``: Σ a_i·b_i with one truncation, error < 1 ulp.
* ``< <= > >= == !=`` with sfix, cfix, sint, int, float: exact comparisons of
  the fixed-point values (LTZ/EQZ on v with k+1 / k bits), secret bits
  (``sintbit``) as results; ``min``/``max``/``abs`` as for sint.
* ``sfix(x)`` for an sint is exact (v = x·2^f); ``sint(y)`` for an sfix is
  ⌊y⌋ (exact floor); ``y.v`` is the raw sint v.
* ``reveal()`` gives a ``cfix`` (MAC-checked when first used); a ``cfix``
  prints as a decimal with enough digits for f bits.

Inputs and outputs: ``sfix.read_from_socket(s, n)`` reads the next n input
elements as reals: a secret uploaded with the ``fixed`` encoding (f_in
fractional bits, f_in ≤ f) is rescaled to f, an ``int64``/``field`` secret is
read as integers. ``sfix.write_to_socket(s, values)`` declares an output that
is stored with the ``fixed`` encoding (f bits), so ``vcpctl secrets get``
shows reals; in ``--output reveal`` mode the values come back as the raw
integers v. ``sint.write_to_socket`` of an sfix writes v (MP-SPDZ's raw
form).

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math` and its siblings.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Any, NoReturn

from vcpd.errors import ProgramError
from vcpd.math import FieldArray
from vcpd.protocol.nonlinear.cost import max_truncation_bits

from . import integers
from . import nonlinear_ops as ops
from .context import Output, ProgramContext, Sealed, current, to_index, unsupported, vector_size
from .graph import Node
from .public import cint, index_of, length_error, signed
from .fixed_public import cfix, encode, format_fixed, precision, set_precision
from .types import SECRET_PLACEHOLDER, broadcast, sint, sintbit

__all__ = ["cfix", "format_fixed", "raw_node", "raw_vector", "sfix", "to_int_node"]


class _Public:
    """A public operand of an sfix operation: raw fixed-point values and, for ints, the int."""

    __slots__ = ("integer", "raw", "real")

    def __init__(self, raw: int | FieldArray, integer: int | None, real: list[Fraction]) -> None:
        self.raw = raw
        self.integer = integer
        self.real = real


class sfix(metaclass=Sealed):
    """A secret fixed-point number (or vector); see the module doc."""

    __slots__ = ("_ctx", "_f", "_k", "_v")

    def __init__(self, value: object = None, size: object = None) -> None:
        ctx = current()
        f, k = precision(ctx)
        self._ctx, self._f, self._k = ctx, f, k
        n = None if size is None else vector_size(size)
        node = raw_node(ctx, value, f, k) if value is not None else ctx.zeros(n or 1)
        if n is not None and node.length != n:
            ctx.budget.charge(n)
            node = broadcast(ctx.engine, node, ctx.zeros(n))[0]
        self._v = node

    @classmethod
    def _make(cls, ctx: ProgramContext, node: Node, f: int, k: int) -> sfix:
        obj = object.__new__(cls)
        obj._ctx, obj._v, obj._f, obj._k = ctx, node, f, k
        return obj

    def _new(self, node: Node) -> sfix:
        self._ctx.budget.charge(node.length)
        return sfix._make(self._ctx, node, self._f, self._k)

    # -- shape and conversions ------------------------------------------------------
    @property
    def v(self) -> sint:
        """The raw secret integer v = x·2^f."""
        return sint._make(self._ctx, self._v)

    @property
    def size(self) -> int:
        return self._v.length

    def __len__(self) -> int:
        return self._v.length

    def __getitem__(self, index: object) -> sfix:
        engine = self._ctx.engine
        if isinstance(index, slice):
            node = engine.select(self._v, index)
            if node.length == 0:
                raise ProgramError("an empty slice of a vector", rule="runtime")
            return self._new(node)
        return self._new(engine.element(self._v, index_of(index, self._v.length)))

    def __iter__(self) -> Iterator[sfix]:
        return iter([self[i] for i in range(self._v.length)])

    def reveal(self) -> cfix:
        """The public value, MAC-checked before it can be used."""
        return cfix._of(self._ctx, self.v.reveal(), self._f, self._k)

    def __repr__(self) -> str:
        return SECRET_PLACEHOLDER

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(SECRET_PLACEHOLDER, spec)

    def __bool__(self) -> NoReturn:
        raise ProgramError(
            "a secret value cannot decide a Python branch; use if_else, or reveal() it first", rule="secret-branch"
        )

    def __float__(self) -> NoReturn:
        raise ProgramError("a secret value cannot be used as a Python number; reveal() it first", rule="runtime")

    __int__ = __index__ = __float__

    # -- operands -------------------------------------------------------------------
    def _operand(self, other: object) -> tuple[Node, Node | _Public, str] | None:
        """(self.v, other, kind) with kind "fix" (raw secret), "int" (secret integer) or "public"."""
        ctx, engine, f = self._ctx, self._ctx.engine, self._f
        a = self._v
        if isinstance(other, sfix):
            if (other._f, other._k) != (f, self._k):
                raise ProgramError("sfix values of different precisions", rule="runtime")
            x, y = broadcast(engine, a, other._v)
            return x, y, "fix"
        if isinstance(other, sint):
            x, y = broadcast(engine, a, other._node)
            return x, y, "int"
        if isinstance(other, cfix):
            raws = other._raw_list()
            real = [Fraction(r, 1 << other._f) for r in raws]
            if other._f != f:
                raws = [round(r * Fraction(1 << f, 1 << other._f)) for r in raws]
            public = _Public(raws[0] if len(raws) == 1 else ctx.field.from_ints(raws), None, real)
        elif isinstance(other, bool | int | float | cint):
            if isinstance(other, cint):
                values = [signed(v, ctx.field.p) for v in other._ints()]
                raws = [encode(v, f, self._k + f) for v in values]
                reals = [Fraction(v) for v in values]
                public = _Public(raws[0] if len(raws) == 1 else ctx.field.from_ints(raws), None, reals)
                if len(values) == 1:
                    public.integer = values[0]
            else:
                raw = encode(other, f, self._k + f)
                integer = int(other) if isinstance(other, int) else None
                public = _Public(raw, integer, [Fraction(other)])
        else:
            return None
        if isinstance(public.raw, FieldArray) and len(public.raw) != a.length:
            if a.length != 1:
                raise length_error(a.length, len(public.raw))
            a = engine.repeat(a, len(public.raw))
        return a, public, "public"

    # -- arithmetic -------------------------------------------------------------------
    def _arith(self, other: object, op: str, reflected: bool = False) -> Any:
        pair = self._operand(other)
        if pair is None:
            return NotImplemented
        a, b, kind = pair
        engine, f = self._ctx.engine, self._f
        if kind == "int":
            assert isinstance(b, Node)
            b = engine.scale(b, 1 << f) if op != "*" else b
            kind = "fix" if op != "*" else "int"
        if op in "+-":
            if kind == "fix":
                assert isinstance(b, Node)
                node = engine.add(a, b) if op == "+" else engine.sub(b, a) if reflected else engine.sub(a, b)
            else:
                assert isinstance(b, _Public)
                if op == "+":
                    node = engine.add_public(a, b.raw)
                else:
                    node = engine.add_public(engine.neg(a), b.raw) if reflected else engine.add_public(a, -b.raw)
            return self._new(node)
        if kind == "int":  # sfix · secret integer: exact
            assert isinstance(b, Node)
            return self._new(engine.mul(a, b))
        if kind == "fix":
            assert isinstance(b, Node)
            return self._truncated(engine.mul(a, b))
        assert isinstance(b, _Public)
        if b.integer is not None:  # sfix · int: exact
            return self._new(engine.scale(a, b.integer))
        return self._truncated(engine.scale(a, b.raw))

    def _truncated(self, product: Node) -> sfix:
        """TruncPr(product, k+f, f): a product with 2f fractional bits back to f."""
        ctx, f, k = self._ctx, self._f, self._k
        return self._new(ops.trunc_pr(ctx.engine, product, k + f, f, ctx.security))

    def __add__(self, other: object) -> Any:
        return self._arith(other, "+")

    def __radd__(self, other: object) -> Any:
        return self._arith(other, "+", True)

    def __sub__(self, other: object) -> Any:
        return self._arith(other, "-")

    def __rsub__(self, other: object) -> Any:
        return self._arith(other, "-", True)

    def __mul__(self, other: object) -> Any:
        return self._arith(other, "*")

    def __rmul__(self, other: object) -> Any:
        return self._arith(other, "*", True)

    def __neg__(self) -> sfix:
        return self._new(self._ctx.engine.neg(self._v))

    def __pos__(self) -> sfix:
        return self

    def square(self) -> sfix:
        return self * self

    def __pow__(self, exponent: object) -> sfix:
        if not isinstance(exponent, int) or isinstance(exponent, bool) or exponent < 1:
            raise unsupported("an sfix power other than by a positive int")
        result = self
        for bit in bin(exponent)[3:]:
            result = result * result
            if bit == "1":
                result = result * self
        return result

    def __truediv__(self, other: object) -> Any:
        pair = self._operand(other)
        if pair is None:
            return NotImplemented
        a, b, kind = pair
        ctx, engine, f, k = self._ctx, self._ctx.engine, self._f, self._k
        if kind == "public":
            assert isinstance(b, _Public)
            return self._div_public(a, b.real)
        assert isinstance(b, Node)
        divisor = engine.scale(b, 1 << f) if kind == "int" else b
        return self._new(ops.fx_div(engine, a, divisor, k, f, ctx.security))

    def __rtruediv__(self, other: object) -> Any:
        """public / sfix: a reciprocal (numerator 1) or a division of the constant."""
        if isinstance(other, sint):
            return sfix(other) / self
        if isinstance(other, bool | int | float) and other == 1:
            return self.compute_reciprocal()
        if not isinstance(other, bool | int | float | cint | cfix):
            return NotImplemented
        return sfix(other, self.size) / self

    def compute_reciprocal(self) -> sfix:
        """1/self (error < 2 ulps)."""
        ctx = self._ctx
        return self._new(ops.fx_reciprocal(ctx.engine, self._v, self._k, self._f, ctx.security))

    def _div_public(self, a: Node, divisors: list[Fraction]) -> sfix:
        """a/c for public c: TruncPr(v·⌊2^g/c⌉, ·, g) with as many guard bits g as fit."""
        ctx, engine, k = self._ctx, self._ctx.engine, self._k
        if any(c == 0 for c in divisors):
            raise ProgramError("division by zero", rule="runtime")
        limit = max_truncation_bits(ctx.field.p, ctx.security)
        for g in range(limit, 0, -1):
            multipliers = [round(Fraction(1 << g) / c) for c in divisors]
            width = ((1 << (k - 1)) * max(abs(m) for m in multipliers)).bit_length() + 1
            if width <= limit and g < width:
                break
        else:
            raise ProgramError("division by a public number that does not fit sfix", rule="runtime")
        if len(multipliers) == 1:
            scaled = engine.scale(a, multipliers[0])
        else:
            scaled = engine.scale(a, ctx.field.from_ints(multipliers))
        return self._new(ops.trunc_pr(engine, scaled, width, g, ctx.security))

    # -- comparisons and selections ------------------------------------------------------
    def _compare(self, other: object, op: str) -> Any:
        pair = self._operand(other)
        if pair is None:
            return NotImplemented
        a, b, kind = pair
        ctx = self._ctx
        if kind == "int":
            assert isinstance(b, Node)
            b = ctx.engine.scale(b, 1 << self._f)
        right = b.raw if isinstance(b, _Public) else b
        ctx.budget.charge(a.length)
        return sintbit._make(ctx, integers.compare(ctx, a, right, op, self._k))

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

    def min(self, other: object) -> sfix:
        """Element-wise minimum."""
        return (self < other).if_else(self, other)  # type: ignore[no-any-return]

    def max(self, other: object) -> sfix:
        """Element-wise maximum."""
        return (self < other).if_else(other, self)  # type: ignore[no-any-return]

    def __abs__(self) -> sfix:
        ctx, engine = self._ctx, self._ctx.engine
        negative = ops.ltz(engine, self._v, self._k, ctx.security)
        return self._new(engine.sub(self._v, engine.scale(engine.mul(self._v, negative), 2)))

    # -- class methods ---------------------------------------------------------------
    @classmethod
    def set_precision(cls, f: object, k: object = None) -> None:
        """f fractional bits and k bits in all (k defaults to 2f) for sfix and cfix."""
        set_precision(f, k)

    @classmethod
    def read_from_socket(cls, client_id: object, n: object = 1, size: object = None) -> Any:
        """The next n input values as sfix (see the module doc for encodings)."""
        ctx = current()
        f, k = precision(ctx)
        count, width = to_index(n), 1 if size is None else vector_size(size)
        source, start = ctx.read_inputs(count * width)
        engine = ctx.engine
        node = engine.select(source, slice(start, start + count * width))
        factors: list[int] = []
        for _, length, kind, bits in ctx.input_encodings(start, count * width):
            if kind == "fixed" and bits > f:
                raise ProgramError(
                    f"an input has {bits} fractional bits, more than sfix's {f}; call sfix.set_precision({bits}, k)",
                    rule="inputs",
                )
            factors.extend([1 << (f - bits if kind == "fixed" else f)] * length)
        if len(set(factors)) == 1:
            if factors[0] != 1:
                node = engine.scale(node, factors[0])
        else:
            node = engine.scale(node, ctx.field.from_ints(factors))
        ctx.fixed_inputs = True
        values = [
            cls._make(ctx, engine.select(node, slice(i * width, (i + 1) * width)), f, k) for i in range(count)
        ]
        return values[0] if count == 1 else values

    @classmethod
    def write_to_socket(cls, client_id: object, values: object, message_type: object = None) -> None:
        """Declare an output stored with the fixed encoding (f fractional bits)."""
        ctx = current()
        f, k = precision(ctx)
        ctx.add_output(Output(raw_node(ctx, values, f, k), None, f))

    @classmethod
    def dot_product(cls, a: object, b: object) -> sfix:
        """Σ a_i·b_i with one truncation (error < 1 ulp)."""
        ctx = current()
        f, k = precision(ctx)
        x, y = raw_node(ctx, a, f, k), raw_node(ctx, b, f, k)
        if x.length != y.length:
            raise length_error(x.length, y.length)
        ctx.budget.charge(x.length)
        engine = ctx.engine
        total = engine.total(engine.mul(x, y))
        return cls._make(ctx, ops.trunc_pr(engine, total, k + f, f, ctx.security), f, k)

    @classmethod
    def Array(cls, size: int) -> Any:  # noqa: N802 - MP-SPDZ's name
        from .containers import Array  # noqa: PLC0415

        return Array(size, cls)


def raw_node(ctx: ProgramContext, value: object, f: int, k: int) -> Node:
    """Any sfix-able value as the raw secret vector v = x·2^f."""
    from .containers import Array  # noqa: PLC0415 - containers build on this module

    engine = ctx.engine
    if isinstance(value, sfix):
        if (value._f, value._k) != (f, k):
            raise ProgramError("sfix values of different precisions", rule="runtime")
        return value._v
    if isinstance(value, sint):
        return engine.scale(value._node, 1 << f)
    if isinstance(value, cfix):
        return engine.constant(ctx.field.from_ints(value._raw_list()))
    if isinstance(value, Array):
        vector = value._vector()
        if value.value_type is sfix:
            assert isinstance(vector, Node)
            return vector
        if isinstance(vector, Node):
            return engine.scale(vector, 1 << f)
        return engine.constant(vector * (1 << f))
    if isinstance(value, list | tuple):
        if not value:
            raise ProgramError("an empty list has no values", rule="runtime")
        ctx.budget.charge(len(value))
        if all(isinstance(item, bool | int | float) for item in value):
            return engine.constant(ctx.field.from_ints([encode(item, f, k) for item in value]))
        return engine.concat([raw_node(ctx, item, f, k) for item in value])
    if isinstance(value, bool | int | float | cint):
        if isinstance(value, cint):
            return engine.constant(ctx.field.from_ints([encode(signed(v, ctx.field.p), f, k) for v in value._ints()]))
        return engine.constant(ctx.field.from_ints([encode(value, f, k)]))
    raise ProgramError(f"cannot make sfix from {type(value).__name__}", rule="runtime")


def raw_vector(x: object) -> Node | FieldArray:
    """The raw integers v of an sfix (a node) or a cfix (public values)."""
    if isinstance(x, sfix):
        return x._v
    assert isinstance(x, cfix)
    return x._ctx.field.from_ints(x._raw_list())


def to_int_node(x: object) -> Node:
    """⌊x⌋ of an sfix (an exact Trunc) or a cfix, as a secret integer vector."""
    if isinstance(x, cfix):
        ctx = x._ctx
        return ctx.engine.constant(ctx.field.from_ints([v >> x._f for v in x._raw_list()]))
    assert isinstance(x, sfix)
    ctx = x._ctx
    ctx.budget.charge(x.size)
    return ops.trunc(ctx.engine, x._v, x._k, x._f, ctx.security)
