"""MP-SPDZ's ``Array`` for vcpd programs (matrices: :mod:`.matrix`).

An :class:`Array` of ``sint`` is stored as **one vector node** plus the
elements assigned since (a small dict), so whole-array operations stay
vectorised -- ``a * b`` for two arrays of 10^6 elements is one node, one
round, one batch of triples -- while element-wise code (``c[i] = a[i] * b[i]``
in a loop) also works: its products meet in one merged round, and the next
whole-array use folds the assigned elements back into one vector with a
single gather. Arrays of ``cint``/``regint`` hold public values the same way.

Slicing returns a vector (``sint``/``cint``), as in MP-SPDZ.

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math` and its siblings.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

import numpy as np

from vcpd.errors import ProgramError
from vcpd.math import FieldArray

from .context import ProgramContext, Sealed, current, to_index, unsupported, vector_size
from .graph import Node
from .types import cint, public_value, regint, secret_vector, sint

__all__ = ["Array", "array_value_type", "vector_length", "wrap_vector"]


def _has_fixed(values: object) -> bool:
    from .fixed import cfix, sfix  # noqa: PLC0415

    if isinstance(values, sfix):
        return True
    if isinstance(values, Array):
        return values._type is sfix
    return isinstance(values, list | tuple) and any(isinstance(v, sfix | cfix) for v in values)


def _fixed_raw(ctx: ProgramContext, values: object) -> Node:
    from .fixed import raw_node  # noqa: PLC0415

    f, k = ctx.fixed
    return raw_node(ctx, values, f, k)

_TYPES = (sint, cint, regint)


def wrap_vector(ctx: ProgramContext, vector: Node | FieldArray) -> sint | cint:
    """A vector as the program sees it: a secret node as sint, public values as cint."""
    return sint._make(ctx, vector) if isinstance(vector, Node) else cint._of(ctx, vector)


def array_value_type(value_type: object, *, fixed: bool = False) -> type:
    if value_type not in _TYPES and not (fixed and value_type is _sfix()):
        name = getattr(value_type, "__name__", type(value_type).__name__)
        raise unsupported(f"containers of {name}")
    return value_type


def _sfix() -> type:
    from .fixed import sfix  # noqa: PLC0415 - fixed point builds on the containers' types

    return sfix


def vector_length(vector: Node | FieldArray) -> int:
    return vector.length if isinstance(vector, Node) else len(vector)


class Array(metaclass=Sealed):
    """A fixed-length array of sint, cint or regint (see the module doc)."""

    __slots__ = ("_base", "_ctx", "_length", "_patch", "_type")

    def __init__(self, length: int, value_type: type, address: object = None) -> None:
        ctx = current()
        self._ctx = ctx
        self._length = vector_size(length, "an Array's length")
        self._type = array_value_type(value_type, fixed=True)
        self._base: Node | FieldArray | cint | None = None  # None: all zeros; cint: a pending reveal
        self._patch: dict[int, Any] = {}  # position -> Node (secret) or public object
        ctx.budget.tick()

    @classmethod
    def _from_vector(cls, ctx: ProgramContext, vector: Node | FieldArray, value_type: type) -> Array:
        array = object.__new__(cls)
        array._ctx, array._length, array._type = ctx, vector_length(vector), value_type
        array._base, array._patch = vector, {}
        return array

    @classmethod
    def create_from(cls, values: object) -> Array:
        """An Array holding ``values`` (a list, a vector or another Array)."""
        ctx = current()
        if _has_fixed(values):
            return cls._from_vector(ctx, _fixed_raw(ctx, values), _sfix())
        vector = secret_vector(ctx, values)
        if isinstance(vector, Node):
            value_type: type = sint
        elif isinstance(values, Array):
            value_type = values._type
        elif isinstance(values, cint) or (
            isinstance(values, list | tuple) and any(isinstance(v, cint) for v in values)
        ):
            value_type = cint
        else:
            value_type = regint
        return cls._from_vector(ctx, vector, value_type)

    # -- shape ----------------------------------------------------------------
    @property
    def length(self) -> int:
        return self._length

    @property
    def value_type(self) -> type:
        return self._type

    def __len__(self) -> int:
        return self._length

    @property
    def _secret(self) -> bool:
        return self._type is sint or self._type is _sfix()

    def _wrap(self, node: Node) -> Any:
        """A secret vector of this array as the program sees it (sint, or sfix of raw values)."""
        if self._type is sint:
            return sint._make(self._ctx, node)
        f, k = self._ctx.fixed
        return _sfix()._make(self._ctx, node, f, k)

    def _secret_values(self, value: object) -> Node | FieldArray:
        """Values to store, as a vector (raw fixed-point integers for an sfix Array)."""
        if self._type is sint:
            return secret_vector(self._ctx, value)
        return _fixed_raw(self._ctx, value)

    # -- storage ----------------------------------------------------------------
    def _vector(self) -> Node | FieldArray:
        """The whole array as one vector (folding assigned elements in)."""
        ctx, n = self._ctx, self._length
        if self._secret:
            return self._secret_vector()
        base = self._base
        if isinstance(base, cint):  # a pending reveal
            base = base._get()
        values = base if isinstance(base, FieldArray) else ctx.field.zeros(n)
        if self._patch:
            ints = values.to_ints()
            for i, item in self._patch.items():
                ints[i] = int(public_value(item)) % ctx.field.p  # type: ignore[arg-type]
            values = ctx.field.from_ints(ints)
            self._base, self._patch = values, {}
        return values

    def _secret_vector(self) -> Node:
        ctx, n, engine = self._ctx, self._length, self._ctx.engine
        base = self._base if isinstance(self._base, Node) else None
        if not self._patch:
            return base if base is not None else ctx.zeros(n)
        positions = sorted(self._patch)
        parts = [self._patch[i] for i in positions]
        if len(positions) == n:
            node = engine.concat(parts)
        else:
            order = np.arange(n, dtype=np.int64)
            order[positions] = n + np.arange(len(positions), dtype=np.int64)
            node = engine.select(engine.concat([base if base is not None else ctx.zeros(n), *parts]), order)
        self._base, self._patch = node, {}
        return node

    def _element(self, i: int) -> Any:
        ctx = self._ctx
        item = self._patch.get(i)
        if self._secret:
            if item is not None:
                return self._wrap(item)
            node = self._base if isinstance(self._base, Node) else ctx.zeros(self._length)
            return self._wrap(ctx.engine.element(node, i))
        if item is None:
            base = self._base
            item = base[i] if isinstance(base, cint) else cint._of(ctx, base[i]) if isinstance(base, FieldArray) else 0
        if self._type is regint:
            return regint(item)
        return item if isinstance(item, cint) else cint._of(ctx, ctx.field.from_ints([int(item)]))

    def _store(self, i: int, value: object) -> None:
        ctx = self._ctx
        if self._secret:
            values = self._secret_values(value)
            node = values if isinstance(values, Node) else ctx.engine.constant(values)
            if node.length != 1:
                raise ProgramError(f"cannot store a vector of {node.length} in one Array element", rule="runtime")
            self._patch[i] = node
        else:
            if isinstance(value, sint):
                raise ProgramError("cannot store a secret in a public Array; reveal() it first", rule="runtime")
            if not isinstance(value, cint | int) or (isinstance(value, cint) and len(value) != 1):
                raise ProgramError(
                    f"cannot store {type(value).__name__} in an Array of {self._type.__name__}", rule="runtime"
                )
            self._patch[i] = value
        ctx.budget.tick()

    def _positions(self, key: slice) -> np.ndarray:
        return np.arange(self._length, dtype=np.int64)[key]

    # -- indexing -------------------------------------------------------------
    def __getitem__(self, index: object) -> Any:
        if isinstance(index, slice):
            vector = self._vector()
            positions = self._positions(index)
            if not len(positions):
                raise ProgramError("an empty slice of an Array", rule="runtime")
            self._ctx.budget.charge(len(positions))
            if isinstance(vector, Node):
                return self._wrap(self._ctx.engine.select(vector, index))
            return cint._of(self._ctx, vector[index])
        return self._element(self._check_index(index))

    def __setitem__(self, index: object, value: object) -> None:
        if isinstance(index, slice):
            self._assign_positions(self._positions(index), value)
        else:
            self._store(self._check_index(index), value)

    def _check_index(self, index: object) -> int:
        if isinstance(index, sint):
            raise unsupported("indexing with a secret index")
        i = to_index(index)
        if not -self._length <= i < self._length:
            raise IndexError(f"index {i} out of range for an Array of {self._length}")
        return i % self._length

    def _assign_positions(self, positions: np.ndarray, values: object) -> None:
        ctx, n, k = self._ctx, self._length, len(positions)
        vector = self._secret_values(values) if self._secret else secret_vector(ctx, values)
        if vector_length(vector) == 1 and k > 1:
            vector = (
                ctx.engine.repeat(vector, k) if isinstance(vector, Node) else ctx.field.constant(vector.to_ints()[0], k)
            )
        if vector_length(vector) != k:
            raise ProgramError(f"cannot assign {vector_length(vector)} values to {k} Array elements", rule="runtime")
        ctx.budget.charge(k)
        if self._secret:
            new = vector if isinstance(vector, Node) else ctx.engine.constant(vector)
            if k == n and np.array_equal(positions, np.arange(n)):
                self._base, self._patch = new, {}
                return
            order = np.arange(n, dtype=np.int64)
            order[positions] = n + np.arange(k, dtype=np.int64)
            self._base = ctx.engine.select(ctx.engine.concat([self._secret_vector(), new]), order)
            return
        if isinstance(vector, Node):
            raise ProgramError("cannot store secrets in a public Array; reveal() them first", rule="runtime")
        ints = self._vector().to_ints()  # type: ignore[union-attr]
        for position, value in zip(positions.tolist(), vector.to_ints(), strict=True):
            ints[position] = value
        self._base, self._patch = ctx.field.from_ints(ints), {}

    def __iter__(self) -> Iterator[Any]:
        self._ctx.budget.charge(self._length)
        return iter([self._element(i) for i in range(self._length)])

    # -- MP-SPDZ methods ---------------------------------------------------------
    def get_vector(self, base: int = 0, size: int | None = None) -> Any:
        """Elements [base, base+size) as one vector (sint or cint)."""
        start = operator.index(base)
        stop = self._length if size is None else start + operator.index(size)
        return self[start:stop]

    def get_range(self, start: int, size: int) -> list[Any]:
        """Elements [start, start+size) as a list."""
        return [self[i] for i in range(operator.index(start), operator.index(start) + operator.index(size))]

    def assign(self, values: object, base: int = 0) -> None:
        """Set elements from ``base`` on to ``values`` (a list, vector or Array)."""
        if isinstance(values, Array):
            k = len(values)
        else:
            k = vector_length(self._secret_values(values) if self._secret else secret_vector(self._ctx, values))
        start = operator.index(base)
        if start < 0 or start + k > self._length:
            raise ProgramError(f"cannot assign {k} values at {start} to an Array of {self._length}", rule="runtime")
        self._assign_positions(np.arange(start, start + k, dtype=np.int64), values)

    assign_vector = assign

    def assign_all(self, value: object) -> None:
        """Set every element to one value."""
        self._assign_positions(np.arange(self._length, dtype=np.int64), value)

    def reveal(self) -> Any:
        """A public Array of the values (MAC-checked when first used); for sfix a cfix vector."""
        if not self._secret:
            return self
        if self._type is not sint:
            return self._wrap(self._secret_vector()).reveal()
        opened = sint._make(self._ctx, self._secret_vector()).reveal()  # forced on first use
        array = object.__new__(Array)
        array._ctx, array._length, array._type = self._ctx, self._length, cint
        array._base, array._patch = opened, {}
        return array

    def reveal_list(self) -> list[Any]:
        """The revealed values as a list of cint."""
        return list(self.reveal())

    reveal_nested = reveal_list

    def sum(self) -> Any:
        """Σ of the elements (no products)."""
        vector = self._vector()
        self._ctx.budget.charge(self._length)
        if isinstance(vector, Node):
            return self._wrap(self._ctx.engine.total(vector))
        return cint._of(self._ctx, self._ctx.field.from_ints([vector.sum()]))

    def dot(self, other: object) -> Any:
        """Σ self_i·other_i (see ``sint.dot_product``, ``sfix.dot_product``)."""
        if self._type is not sint and self._secret:
            return self._type.dot_product(self, other)
        return sint.dot_product(self, other)

    def same_shape(self) -> Array:
        return Array(self._length, self._type)

    def shuffle(self) -> None:
        raise unsupported("Array.shuffle")

    def sort(self, *args: object) -> None:
        raise unsupported("Array.sort (needs comparisons)")

    # -- element-wise arithmetic ------------------------------------------------
    def _binary(self, other: object, fn: Any) -> Array:
        lhs = self.get_vector()
        rhs = other.get_vector() if isinstance(other, Array) else other
        result = fn(lhs, rhs)
        if result is NotImplemented:
            return NotImplemented  # type: ignore[no-any-return]
        if isinstance(result, sint):
            return Array._from_vector(self._ctx, result._node, sint)
        if isinstance(result, _sfix()):
            return Array._from_vector(self._ctx, result._v, _sfix())
        return Array._from_vector(self._ctx, result._get(), cint if self._type is cint else self._type)

    def __add__(self, other: object) -> Array:
        return self._binary(other, operator.add)

    def __radd__(self, other: object) -> Array:
        return self._binary(other, lambda a, b: b + a)

    def __sub__(self, other: object) -> Array:
        return self._binary(other, operator.sub)

    def __rsub__(self, other: object) -> Array:
        return self._binary(other, lambda a, b: b - a)

    def __mul__(self, other: object) -> Array:
        return self._binary(other, operator.mul)

    def __rmul__(self, other: object) -> Array:
        return self._binary(other, lambda a, b: b * a)

    def __neg__(self) -> Array:
        return self._binary(0, lambda a, b: -a)

    def __str__(self) -> str:
        if self._secret:
            return f"<Array of {self._length} secrets>"
        return str(cint._of(self._ctx, self._vector()))  # type: ignore[arg-type]

    __repr__ = __str__
