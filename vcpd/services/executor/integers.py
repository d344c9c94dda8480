"""The integer semantics of ``sint``'s non-linear operators, on engine nodes.

MP-SPDZ semantics for signed k-bit secrets (k = the program's bit length,
default 64; ``program.set_bit_length(k)``):

* ``a < b`` (and ``>``, ``<=``, ``>=``) is LTZ(a − b) on k+1 bits, so any two
  k-bit values compare correctly, −2^(k−1) against 2^(k−1) − 1 included;
  ``a == b`` / ``a != b`` is EQZ(a − b) on k bits. Results are secret bits 0/1.
* ``x >> m`` is the exact floor ⌊x/2^m⌋ (−1 >> 1 = −1, as in Python);
  ``x << m`` is x·2^m (local; the result must fit the bit length).
* ``x % 2**m`` is x mod 2^m ∈ [0, 2^m); ``x % d`` and ``x // d`` for other
  public d are **floor division and modulo exactly as Python's** (rounding
  toward −∞, the remainder has the sign of d); by a secret divisor the same,
  for k ≤ 36 bits with the default prime (a secret divisor of 0 gives
  garbage, not an error, since nobody may learn that it is 0). MP-SPDZ
  has no ``//`` on sint, only ``x.int_div(y)``, which rounds toward zero;
  here ``x.int_div(y, bit_length)`` is the same floor division as ``//``,
  so the two differ for operands of different signs.
* ``abs(x)`` = x·(1 − 2·[x < 0]) (|−2^(k−1)| = 2^(k−1) is returned exactly);
  ``min``/``max`` are a comparison and a selection.

Everything is vectorised: operands are vectors (a scalar is a vector of one),
a public operand may be a scalar or a vector of the same length.

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math` and its siblings.
"""

from __future__ import annotations

from vcpd.errors import ProgramError
from vcpd.math import FieldArray

from . import nonlinear_ops as ops
from .context import ProgramContext
from .graph import Node

__all__ = [
    "COMPARISONS",
    "absolute",
    "compare",
    "floordiv",
    "minmax",
    "modulo",
    "one_minus",
    "select",
    "shift_right",
]

COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")

Operand = Node | int | FieldArray


def _difference(ctx: ProgramContext, a: Node, b: Operand) -> Node:
    engine = ctx.engine
    if isinstance(b, Node):
        return engine.sub(a, b)
    return engine.add_public(a, -b)


def one_minus(ctx: ProgramContext, bit: Node) -> Node:
    """1 − bit (NOT of a secret bit; local)."""
    return ctx.engine.add_public(ctx.engine.neg(bit), 1)


def compare(ctx: ProgramContext, a: Node, b: Operand, op: str, bit_length: int | None = None) -> Node:
    """The secret bit [a op b] for signed k-bit a, b (see the module doc)."""
    engine, kappa = ctx.engine, ctx.security
    k = ctx.bit_length if bit_length is None else bit_length
    diff = _difference(ctx, a, b)
    if op == "<":
        return ops.ltz(engine, diff, k + 1, kappa)
    if op == ">":
        return ops.ltz(engine, engine.neg(diff), k + 1, kappa)
    if op == "<=":
        return one_minus(ctx, ops.ltz(engine, engine.neg(diff), k + 1, kappa))
    if op == ">=":
        return one_minus(ctx, ops.ltz(engine, diff, k + 1, kappa))
    if op == "==":
        return ops.eqz(engine, diff, k, kappa)
    if op == "!=":
        return one_minus(ctx, ops.eqz(engine, diff, k, kappa))
    raise ProgramError(f"unknown comparison {op!r}", rule="runtime")


def select(ctx: ProgramContext, condition: Node, a: Node, b: Node) -> Node:
    """condition ? a : b for a secret bit: b + condition·(a − b) (one product)."""
    engine = ctx.engine
    return engine.add(b, engine.mul(condition, engine.sub(a, b)))


def minmax(ctx: ProgramContext, a: Node, b: Node, *, largest: bool) -> Node:
    """min(a, b) or max(a, b): [a < b], then a selection."""
    less = compare(ctx, a, b, "<")
    return select(ctx, less, b, a) if largest else select(ctx, less, a, b)


def absolute(ctx: ProgramContext, x: Node) -> Node:
    """|x| = x − 2·x·[x < 0]."""
    engine = ctx.engine
    negative = ops.ltz(engine, x, ctx.bit_length, ctx.security)
    return engine.sub(x, engine.scale(engine.mul(x, negative), 2))


def shift_right(ctx: ProgramContext, x: Node, m: int) -> Node:
    """⌊x/2^m⌋ (``x >> m``), exact."""
    if m < 0:
        raise ProgramError("negative shift count", rule="runtime")
    if m == 0:
        return x
    k = ctx.bit_length
    return ops.trunc(ctx.engine, x, k, min(m, k - 1), ctx.security)


def _power_of_two(d: int) -> int | None:
    return d.bit_length() - 1 if d > 0 and d & (d - 1) == 0 else None


def floordiv(ctx: ProgramContext, x: Node, d: Node | int) -> Node:
    """⌊x/d⌋ (Python ``//``) for a public int or a secret divisor."""
    engine, k, kappa = ctx.engine, ctx.bit_length, ctx.security
    if isinstance(d, Node):
        return ops.int_div(engine, x, d, k, kappa)
    if d == 0:
        raise ProgramError("division by zero", rule="runtime")
    if d == 1:
        return x
    if d == -1:
        return engine.neg(x)
    shift = _power_of_two(d)
    if shift is not None:
        return shift_right(ctx, x, shift)
    return ops.div_public(engine, x, k, d, kappa)


def modulo(ctx: ProgramContext, x: Node, d: Node | int) -> Node:
    """x mod d with the sign of d (Python ``%``) for a public int or a secret divisor."""
    engine, k, kappa = ctx.engine, ctx.bit_length, ctx.security
    if isinstance(d, Node):
        return engine.sub(x, engine.mul(d, floordiv(ctx, x, d)))
    if d == 0:
        raise ProgramError("modulo by zero", rule="runtime")
    if d in (1, -1):
        return engine.scale(x, 0)
    m = _power_of_two(d)
    if m is not None:
        if m < k:
            return ops.mod2m(engine, x, k, m, kappa)
        # x mod 2^m = x + 2^m·[x < 0] for signed k-bit x when m ≥ k
        return engine.add(x, engine.scale(ops.ltz(engine, x, k, kappa), 1 << m))
    return engine.sub(x, engine.scale(ops.div_public(engine, x, k, d, kappa), d))
