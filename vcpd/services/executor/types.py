"""MP-SPDZ's secret type for vcpd programs: ``sint``, and the vector helpers.

* :class:`sint` -- a secret vector (a scalar is a vector of one) over F_p,
  read as signed. ``+ - *`` with secrets, ints, ``cint`` and ``regint``;
  unary minus; ``**`` by a public non-negative int; ``if_else``;
  ``reveal()``; indexing of vectors. Every operation only adds a node to the
  lazy engine (:mod:`.engine`). The non-linear operations -- comparisons
  (``sintbit`` results), ``//``, ``%``, ``>>``, ``<<``, ``abs``, ``min``/``max``,
  bit decomposition, random bits -- come from its base class
  :class:`~.secret_ops.SecretIntegerOps` (semantics: :mod:`.integers`); ``/``
  and a ``float`` operand give fixed point (``sfix``, :mod:`.fixed`). A
  secret never turns into a Python value: it prints as ``<secret>`` and
  refuses ``bool()``/``int()``.
* :class:`sintbit` -- a secret bit (what comparisons return) with ``& | ^ ~``.
* ``cint`` and ``regint`` (public) live in :mod:`.public` and are re-exported here.
* :func:`secret_vector` / :func:`as_node` turn whatever a program passes
  (sints, lists, Arrays, public values) into one vector.

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math` and its siblings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from vcpd.errors import ProgramError
from vcpd.math import FieldArray

from . import integers
from .context import Output, ProgramContext, current, to_index, unsupported, vector_size
from .engine import Engine
from .graph import Node
from .public import cint, index_of, length_error, public_value, regint, signed
from .secret_ops import SecretIntegerOps, fixed_of, fixed_operand, fixed_raw, fixed_to_int

if TYPE_CHECKING:
    from .containers import Array

__all__ = [
    "SECRET_PLACEHOLDER",
    "as_node",
    "broadcast",
    "cint",
    "public_value",
    "regint",
    "secret_vector",
    "signed",
    "sint",
    "sintbit",
]

SECRET_PLACEHOLDER = "<secret>"
"""What printing a secret shows (MP-SPDZ refuses to print secrets; we never show a share)."""

def secret_vector(ctx: ProgramContext, x: object) -> Node | FieldArray:
    """x as one vector: a node if anything in it is secret, else its public values.

    Accepts sint (vectors too), cint, ints, Arrays, MultiArrays and lists or
    tuples of scalars.
    """
    from .containers import Array  # noqa: PLC0415 - the containers build on these types
    from .matrix import MultiArray  # noqa: PLC0415

    if isinstance(x, sint):
        return x._node
    if isinstance(x, Array | MultiArray):
        return x._vector()
    if fixed_operand(x):  # fixed point: its raw integers v (MP-SPDZ's sfix.v)
        return fixed_raw(x)
    if isinstance(x, list | tuple):
        if not x:
            raise ProgramError("an empty list has no values", rule="runtime")
        if any(fixed_operand(item) for item in x):
            x = [_raw_item(ctx, item) for item in x]
        ctx.budget.charge(len(x))
        if not any(isinstance(item, sint) for item in x):
            return ctx.field.from_ints([_public_scalar(item) for item in x])
        parts = []
        for item in x:
            if isinstance(item, sint):
                parts.append(item._node)
            else:
                parts.append(ctx.engine.constant(ctx.field.from_ints([_public_scalar(item)])))
        return ctx.engine.concat(parts)
    value = public_value(x)
    if value is None:
        raise ProgramError(f"expected secret or public values, not {type(x).__name__}", rule="runtime")
    return value if isinstance(value, FieldArray) else ctx.field.from_ints([value])


def _public_scalar(item: object) -> int:
    value = public_value(item)
    if value is None or isinstance(value, FieldArray):
        raise ProgramError(f"expected a number, not {type(item).__name__}", rule="runtime")
    return value


def as_node(ctx: ProgramContext, x: object) -> Node:
    """x as a secret vector node (public values become constant shares)."""
    vector = secret_vector(ctx, x)
    return ctx.engine.constant(vector) if isinstance(vector, FieldArray) else vector


def broadcast(engine: Engine, a: Node, b: Node) -> tuple[Node, Node]:
    """Equal-length operands: a vector of one is repeated; other mismatches fail."""
    if a.length == b.length:
        return a, b
    if a.length == 1:
        return engine.repeat(a, b.length), b
    if b.length == 1:
        return a, engine.repeat(b, a.length)
    raise length_error(a.length, b.length)


class sint(SecretIntegerOps):
    """A secret integer (or vector of them); see the module doc."""

    __slots__ = ("_ctx", "_node")

    def __init__(self, value: object = None, size: int | None = None) -> None:
        ctx = current()
        self._ctx = ctx
        n = None if size is None else vector_size(size)
        if value is None:
            self._node = ctx.zeros(n or 1)
            return
        node = fixed_to_int(value) if fixed_operand(value) else as_node(ctx, value)
        if n is not None and node.length != n:
            ctx.budget.charge(n)
            node = broadcast(ctx.engine, node, ctx.zeros(n))[0]
        self._node = node

    @classmethod
    def _make(cls, ctx: ProgramContext, node: Node) -> sint:
        obj = object.__new__(cls)
        obj._ctx = ctx
        obj._node = node
        return obj

    # -- shape ----------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of elements (1 for a scalar)."""
        return self._node.length

    def __len__(self) -> int:
        return self._node.length

    def __getitem__(self, index: object) -> sint:
        ctx = self._ctx
        if isinstance(index, slice):
            node = ctx.engine.select(self._node, index)
            if node.length == 0:
                raise ProgramError("an empty slice of a vector", rule="runtime")
            return type(self)._make(ctx, node)  # a sintbit stays one
        return type(self)._make(ctx, ctx.engine.element(self._node, index_of(index, self._node.length)))

    def __iter__(self) -> Iterator[sint]:
        return iter([self[i] for i in range(self._node.length)])

    # -- arithmetic -----------------------------------------------------------
    def _arith(self, other: object, op: str, reflected: bool = False) -> sint:
        ctx, engine = self._ctx, self._ctx.engine
        a = self._node
        if isinstance(other, float):  # MP-SPDZ: a secret integer and a real make an sfix
            return fixed_of(self)._arith(other, op, reflected)  # type: ignore[no-any-return]
        if isinstance(other, sint):
            x, y = broadcast(engine, a, other._node)
            if op == "+":
                node = engine.add(x, y)
            elif op == "-":
                node = engine.sub(x, y)
            else:
                node = engine.mul(x, y)
        else:
            c = public_value(other)
            if c is None:
                return NotImplemented  # type: ignore[no-any-return]
            if isinstance(c, FieldArray) and len(c) != a.length:
                if a.length != 1:
                    raise length_error(a.length, len(c))
                a = engine.repeat(a, len(c))
            if op == "+":
                node = engine.add_public(a, c)
            elif op == "-":
                node = engine.add_public(engine.neg(a), c) if reflected else engine.add_public(a, -c)
            else:
                node = engine.scale(a, c)
        ctx.budget.charge(node.length)
        return sint._make(ctx, node)

    def __add__(self, other: object) -> sint:
        return self._arith(other, "+")

    def __radd__(self, other: object) -> sint:
        return self._arith(other, "+", True)

    def __sub__(self, other: object) -> sint:
        return self._arith(other, "-")

    def __rsub__(self, other: object) -> sint:
        return self._arith(other, "-", True)

    def __mul__(self, other: object) -> sint:
        return self._arith(other, "*")

    def __rmul__(self, other: object) -> sint:
        return self._arith(other, "*", True)

    def __neg__(self) -> sint:
        self._ctx.budget.charge(self._node.length)
        return sint._make(self._ctx, self._ctx.engine.neg(self._node))

    def __pos__(self) -> sint:
        return self

    def __pow__(self, exponent: object) -> sint:
        if isinstance(exponent, sint) or not isinstance(exponent, int | cint):
            raise unsupported("a secret or non-integer exponent")
        e = int(exponent)
        if e < 0:
            raise unsupported("a negative exponent of a secret")
        if e == 0:
            return sint._make(self._ctx, self._ctx.engine.constant(self._ctx.field.constant(1, self.size)))
        result = self
        for bit in bin(e)[3:]:  # square-and-multiply, as MP-SPDZ does
            result = result * result
            if bit == "1":
                result = result * self
        return result

    def square(self) -> sint:
        """self²."""
        return self * self

    def if_else(self, a: object, b: object) -> Any:
        """``a`` where self is 1, ``b`` where it is 0: b + self·(a − b) (one product).

        self must hold bits; for other values the result is meaningless, as in MP-SPDZ.
        """
        return b + self * (a - b)  # type: ignore[operator]

    def cond_swap(self, a: object, b: object) -> tuple[Any, Any]:
        """(a, b) where self is 0, (b, a) where it is 1."""
        product = self * (a - b)  # type: ignore[operator]
        return a - product, b + product

    def reveal(self) -> cint:
        """The public value, MAC-checked before it can be used (see the module doc)."""
        ctx = self._ctx
        ctx.budget.charge(self._node.length)
        return cint._pending(ctx, ctx.engine.open(self._node), self._node.length)

    # -- what secrets refuse -------------------------------------------------
    def __bool__(self) -> NoReturn:
        raise ProgramError(
            "a secret value cannot decide a Python branch; use if_else, or reveal() it first", rule="secret-branch"
        )

    def __index__(self) -> NoReturn:
        raise ProgramError("a secret value cannot be used as a Python number; reveal() it first", rule="runtime")

    __int__ = __index__

    def _unsupported_op(self, other: object = None) -> NoReturn:
        raise unsupported("this operation on secret integers (&, |, ^, ~ work on secret bits only)")

    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = __invert__ = _unsupported_op

    def __repr__(self) -> str:
        return SECRET_PLACEHOLDER

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(SECRET_PLACEHOLDER, spec)

    # -- MP-SPDZ class methods -------------------------------------------------
    @classmethod
    def read_from_socket(cls, client_id: object, n: int = 1, size: int | None = None) -> Any:
        """The next n input values, in the order of the execution's input secrets.

        All elements of all input secrets form one sequence, as Ephemeral feeds
        them; n=1 returns one sint, more a list (MP-SPDZ's convention). With
        ``size``, each value is a vector of that many consecutive elements.
        """
        ctx = current()
        n, k = to_index(n), 1 if size is None else vector_size(size)
        source, start = ctx.read_inputs(n * k)
        engine = ctx.engine
        values = [cls._make(ctx, engine.select(source, slice(start + i * k, start + (i + 1) * k))) for i in range(n)]
        return values[0] if n == 1 else values

    @classmethod
    def write_to_socket(cls, client_id: object, values: object, message_type: object = None) -> None:
        """Declare one output of the execution: one new secret (or revealed values)."""
        ctx = current()
        ctx.add_output(Output(as_node(ctx, values), None))

    @classmethod
    def dot_product(cls, a: object, b: object) -> sint:
        """Σ a_i·b_i; one product per element unless one side is public (then none)."""
        ctx = current()
        x, y = secret_vector(ctx, a), secret_vector(ctx, b)
        n = x.length if isinstance(x, Node) else len(x)
        m = y.length if isinstance(y, Node) else len(y)
        if n != m:
            raise length_error(n, m)
        ctx.budget.charge(n)
        engine = ctx.engine
        if isinstance(x, FieldArray) and isinstance(y, FieldArray):
            return cls._make(ctx, engine.constant(ctx.field.from_ints([x.dot(y)])))
        if isinstance(x, FieldArray):
            x, y = y, x
        assert isinstance(x, Node)
        product = engine.scale(x, y) if isinstance(y, FieldArray) else engine.mul(x, y)
        return cls._make(ctx, engine.total(product))

    @classmethod
    def get_input_from(cls, player: object, size: object = None) -> NoReturn:
        raise unsupported("sint.get_input_from (inputs come from the execution's input secrets: read_from_socket)")

    @classmethod
    def Array(cls, size: int) -> Array:  # noqa: N802 - MP-SPDZ's name
        from .containers import Array  # noqa: PLC0415

        return Array(size, cls)

    @classmethod
    def Matrix(cls, rows: int, columns: int) -> Any:  # noqa: N802 - MP-SPDZ's name
        from .matrix import Matrix  # noqa: PLC0415

        return Matrix(rows, columns, cls)


class sintbit(sint):
    """A secret bit, as comparisons return it: ``&``, ``|``, ``^``, ``~`` are logic.

    Arithmetic on bits gives plain ``sint``; with a public 0 or 1 the logic
    operators are local, between two secret bits ``&`` and ``|`` cost one
    product, ``^`` one product.
    """

    __slots__ = ()

    def _logic(self, other: object, op: str) -> Any:
        ctx, engine = self._ctx, self._ctx.engine
        a = self._node
        if isinstance(other, sintbit):
            a, b = broadcast(engine, a, other._node)
            ctx.budget.charge(a.length)
            product = engine.mul(a, b)
            both = engine.add(a, b)
            if op == "&":
                node = product
            elif op == "|":
                node = engine.sub(both, product)
            else:
                node = engine.sub(both, engine.scale(product, 2))
            return sintbit._make(ctx, node)
        if isinstance(other, sint) or not isinstance(other, int | cint) or int(other) not in (0, 1):
            return NotImplemented
        bit = int(other)
        if op == "&":
            node = a if bit else engine.scale(a, 0)
        elif op == "|":
            node = engine.add_public(engine.scale(a, 0), 1) if bit else a
        else:
            node = integers.one_minus(ctx, a) if bit else a
        return sintbit._make(ctx, node)

    def __and__(self, other: object) -> Any:
        return self._logic(other, "&")

    def __or__(self, other: object) -> Any:
        return self._logic(other, "|")

    def __xor__(self, other: object) -> Any:
        return self._logic(other, "^")

    __rand__ = __and__
    __ror__ = __or__
    __rxor__ = __xor__

    def __invert__(self) -> sintbit:
        return self.bit_not()

    def bit_not(self) -> sintbit:
        """1 − self."""
        self._ctx.budget.charge(self._node.length)
        return sintbit._make(self._ctx, integers.one_minus(self._ctx, self._node))

    def bit_and(self, other: object) -> Any:
        return self & other

    def bit_or(self, other: object) -> Any:
        return self | other

    def bit_xor(self, other: object) -> Any:
        return self ^ other


def _raw_item(ctx: ProgramContext, item: object) -> object:
    if not fixed_operand(item):
        return item
    raw = fixed_raw(item)
    return sint._make(ctx, raw) if isinstance(raw, Node) else cint._of(ctx, raw)

