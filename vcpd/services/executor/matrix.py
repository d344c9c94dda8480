"""MP-SPDZ's multi-dimensional containers: ``Matrix``, ``MultiArray``; and ``MemValue``.

A :class:`MultiArray` is a list of rows (Arrays, or MultiArrays of one
dimension less); ``m[i]`` is the row itself, so ``m[i][j] = x`` changes the
matrix. Whole-container operations work on one vector (``get_vector``), and
``Matrix.dot`` (or ``*`` between matrices) gathers every product a matrix
product needs into **one** vector multiplication -- one round, r·c·k
triples -- followed by local sums. :class:`MemValue` is MP-SPDZ's mutable
cell, which is how a ``for_range`` body accumulates (programs may not use
``nonlocal``).

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math` and its siblings.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from typing import Any

import numpy as np

from vcpd.errors import ProgramError
from vcpd.math import FieldArray

from .budget import MAX_SEQUENCE_LENGTH
from .containers import Array, array_value_type, vector_length, wrap_vector
from .context import ProgramContext, Sealed, current, to_index, unsupported, vector_size
from .graph import Node
from .types import cint, secret_vector, sint

__all__ = ["Matrix", "MemValue", "MultiArray"]


class MultiArray(metaclass=Sealed):
    """A container of two or more dimensions: a list of rows (see the module doc)."""

    __slots__ = ("_ctx", "_rows", "_sizes", "_type")

    def __init__(self, sizes: list[int] | tuple[int, ...], value_type: type) -> None:
        ctx = current()
        dims = tuple(vector_size(s, "a dimension") for s in sizes)
        if len(dims) < 2:
            raise ProgramError("a MultiArray needs at least two dimensions; use Array", rule="runtime")
        if math.prod(dims) > MAX_SEQUENCE_LENGTH:
            raise ProgramError(f"a MultiArray may hold at most {MAX_SEQUENCE_LENGTH} elements", rule="too-large-value")
        self._ctx, self._sizes, self._type = ctx, dims, array_value_type(value_type)
        ctx.budget.charge(dims[0])
        inner = dims[1:]
        self._rows: list[Any] = [
            Array(inner[0], value_type) if len(inner) == 1 else MultiArray(inner, value_type) for _ in range(dims[0])
        ]

    @property
    def sizes(self) -> tuple[int, ...]:
        return self._sizes

    shape = sizes

    @property
    def value_type(self) -> type:
        return self._type

    def total_size(self) -> int:
        return math.prod(self._sizes)

    def __len__(self) -> int:
        return self._sizes[0]

    def __getitem__(self, index: object) -> Any:
        if isinstance(index, tuple):
            item: Any = self
            for i in index:
                item = item[i]
            return item
        if isinstance(index, sint):
            raise unsupported("indexing with a secret index")
        return self._rows[to_index(index)]

    def __setitem__(self, index: object, value: object) -> None:
        if isinstance(index, tuple):
            *path, last = index
            target: Any = self
            for i in path:
                target = target[i]
            target[last] = value
            return
        self[index].assign(value)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._rows))

    def _vector(self) -> Node | FieldArray:
        parts = [row._vector() for row in self._rows]
        if isinstance(parts[0], Node):
            return self._ctx.engine.concat(parts)
        return self._ctx.field.concat(parts)

    def get_vector(self) -> Any:
        """Every element, row by row, as one vector."""
        return wrap_vector(self._ctx, self._vector())

    def assign(self, values: object) -> None:
        """Set every element from a flat vector, list or same-size container."""
        vector = secret_vector(self._ctx, values)
        if vector_length(vector) != self.total_size():
            raise ProgramError(
                f"cannot assign {vector_length(vector)} values to {self.total_size()} elements", rule="runtime"
            )
        step = self.total_size() // self._sizes[0]
        engine = self._ctx.engine
        for r, row in enumerate(self._rows):
            part = slice(r * step, (r + 1) * step)
            row.assign(
                wrap_vector(self._ctx, engine.select(vector, part) if isinstance(vector, Node) else vector[part])
            )

    assign_vector = assign

    def assign_all(self, value: object) -> None:
        for row in self._rows:
            row.assign_all(value)

    def reveal(self) -> MultiArray:
        """A public container of the values (one opening for all of them)."""
        if self._type is not sint:
            return self
        result = MultiArray(self._sizes, cint)
        result.assign(self.get_vector().reveal())
        return result

    def reveal_list(self) -> list[Any]:
        return [row.reveal_list() for row in self.reveal()]

    reveal_nested = reveal_list

    def _elementwise(self, other: object, fn: Any) -> MultiArray:
        rhs = other.get_vector() if isinstance(other, MultiArray) else other
        result = fn(self.get_vector(), rhs)
        if result is NotImplemented:
            return NotImplemented  # type: ignore[no-any-return]
        out = MultiArray(self._sizes, sint if isinstance(result, sint) else cint)
        out.assign(result)
        return out

    def __add__(self, other: object) -> MultiArray:
        return self._elementwise(other, operator.add)

    __radd__ = __add__

    def __sub__(self, other: object) -> MultiArray:
        return self._elementwise(other, operator.sub)

    def __rsub__(self, other: object) -> MultiArray:
        return self._elementwise(other, lambda a, b: b - a)

    def __mul__(self, other: object) -> Any:
        if isinstance(other, MultiArray | Array) and len(self._sizes) == 2:
            return self.dot(other)
        return self._elementwise(other, operator.mul)

    def __rmul__(self, other: object) -> MultiArray:
        return self._elementwise(other, lambda a, b: b * a)

    def dot(self, other: object) -> Any:
        """Matrix product with a Matrix (r×k · k×c) or an Array (r×k · k): one round."""
        if len(self._sizes) != 2:
            raise unsupported("products of containers with more than two dimensions")
        r, k = self._sizes
        if isinstance(other, Array):
            c, rows_b = 1, len(other)
        elif isinstance(other, MultiArray) and len(other._sizes) == 2:
            rows_b, c = other._sizes
        else:
            raise ProgramError("Matrix.dot takes a Matrix or an Array", rule="runtime")
        if rows_b != k:
            raise ProgramError(f"cannot multiply a {r}×{k} matrix by a {rows_b}×{c} one", rule="runtime")
        ctx = self._ctx
        ctx.budget.charge(r * c * k)
        i, j, l_ = np.ogrid[:r, :c, :k]
        left = np.broadcast_to(i * k + l_, (r, c, k)).ravel()
        right = np.broadcast_to(l_ * c + j, (r, c, k)).ravel()
        x, y = self._vector(), other._vector()
        product = _gather_product(ctx, x, left, y, right, k)
        if isinstance(other, Array):
            return Array._from_vector(ctx, product, sint if isinstance(product, Node) else cint)
        out = Matrix(r, c, sint if isinstance(product, Node) else cint)
        out.assign(wrap_vector(ctx, product))
        return out

    def transpose(self) -> MultiArray:
        if len(self._sizes) != 2:
            raise unsupported("transposing containers with more than two dimensions")
        r, c = self._sizes
        order = np.arange(r * c, dtype=np.int64).reshape(r, c).T.ravel()
        vector = self._vector()
        out = Matrix(c, r, self._type)
        picked = self._ctx.engine.select(vector, order) if isinstance(vector, Node) else vector[order]
        out.assign(wrap_vector(self._ctx, picked))
        return out

    def __str__(self) -> str:
        return f"<{'x'.join(map(str, self._sizes))} {self._type.__name__} container>"

    __repr__ = __str__


def _gather_product(
    ctx: ProgramContext, x: Node | FieldArray, left: np.ndarray, y: Node | FieldArray, right: np.ndarray, k: int
) -> Node | FieldArray:
    """Σ_l x[left]·y[right] over groups of k: products only where both sides are secret."""
    engine = ctx.engine
    if isinstance(x, FieldArray) and isinstance(y, FieldArray):
        products = x[left] * y[right]
        sums = products[0::k]
        for j in range(1, k):
            sums = sums + products[j::k]
        return sums
    if isinstance(x, FieldArray):
        x, left, y, right = y, right, x, left
    assert isinstance(x, Node)
    gathered = engine.select(x, left)
    if isinstance(y, FieldArray):
        product = engine.scale(gathered, y[right])
    else:
        product = engine.mul(gathered, engine.select(y, right))
    return engine.segment_sums(product, k)


class Matrix(MultiArray):
    """A two-dimensional container: ``Matrix(rows, columns, sint)``."""

    __slots__ = ()

    def __init__(self, rows: int, columns: int, value_type: type, address: object = None) -> None:
        super().__init__((rows, columns), value_type)


class MemValue(metaclass=Sealed):
    """A mutable cell (MP-SPDZ's MemValue): how a ``for_range`` body accumulates."""

    __slots__ = ("_value",)

    def __init__(self, value: object) -> None:
        self._value = value

    def read(self) -> Any:
        return self._value

    def write(self, value: object) -> None:
        self._value = value

    def iadd(self, value: object) -> None:
        self._value = self._value + value  # type: ignore[operator]

    def reveal(self) -> Any:
        return self._value.reveal()  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return str(self._value)
