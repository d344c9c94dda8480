"""Non-linear operations as engine nodes: comparisons, shifts, divisions, fixed point.

Each builder here checks its parameters, picks the protocol of
:mod:`vcpd.protocol.nonlinear` and adds one ``PROTO`` node to the lazy engine
(:meth:`~.engine.Engine.nonlinear`) with a :class:`NonlinearOp` that knows the
protocol's exact tuple counts (``cost_*``) and rounds. The engine merges like
operations that start in the same round into one vector program, runs
different ones side by side in shared rounds, and reserves every tuple once
per flush (:mod:`.schedule`).

Parameters follow MP-SPDZ: signed k-bit integers (a program's bit length,
default 64), statistical security κ = 40, p > 2^(k+κ+1). The BitLT variant of
comparisons is fixed per node from its own length (log-depth tree below 256
elements, Toft's product from 256 on: fewer triples and less work on long
vectors, three more rounds), so an op's rounds never depend on how many
nodes get merged and its tuple counts add up.

Protocol parameters that do not fit the field, and divisions by zero, raise
``ProgramError`` (rule ``runtime``) when the operation is written, before any
tuple is reserved.

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math`, :mod:`vcpd.protocol.nonlinear` and its siblings (engine,
graph).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Hashable, Sequence
from typing import Any, cast

from vcpd.errors import FieldError, ProgramError
from vcpd.math import Shares
from vcpd.protocol.nonlinear import cost, plans
from vcpd.protocol.nonlinear.compare import eqz_program, ltz_program
from vcpd.protocol.nonlinear.division import div_public_program, int_div_program
from vcpd.protocol.nonlinear.fixed import fx_div_program, fx_reciprocal_program
from vcpd.protocol.nonlinear.material import Material
from vcpd.protocol.nonlinear.prand import prand_int
from vcpd.protocol.nonlinear.trunc import bit_decompose_program, mod2m_program, trunc_pr_program, trunc_program

from .engine import Engine
from .graph import LocalParty, Node

__all__ = [
    "NonlinearOp",
    "bit_decompose",
    "check_lengths",
    "div_public",
    "eqz",
    "fx_div",
    "fx_reciprocal",
    "int_div",
    "ltz",
    "mod2m",
    "random_bits",
    "random_ints",
    "trunc",
    "trunc_pr",
]

Maker = Callable[[LocalParty, Sequence[Shares], Material, int], Any]


class NonlinearOp:
    """A :class:`~.graph.RoundOp`: one protocol with fixed parameters."""

    __slots__ = ("_cost", "_make", "key", "rounds", "rows")

    def __init__(self, key: Hashable, cost_of: Callable[[int], cost.Cost], make: Maker, rows: int = 1) -> None:
        self.key = key
        self.rows = rows
        self._cost = cost_of
        self._make = make
        self.rounds = cost_of(1).rounds

    def __repr__(self) -> str:
        return f"<NonlinearOp {self.key!r} rounds={self.rounds}>"

    def needs(self, n: int) -> dict[str, int]:
        return self._cost(n).needs

    def program(self, local: LocalParty, inputs: Sequence[Shares], material: Material, n: int) -> Any:
        return self._make(local, inputs, material, n)


def _online(local: LocalParty) -> Any:
    """The programs type their party as OnlineParty; they only use its local operations."""
    return cast(Any, local)


def _bitlt(n: int, m: int) -> cost.BitLtMethod:
    """The BitLT variant for a node of n elements comparing m bits, fixed now (see the module doc)."""
    return cost.resolve_bitlt(cost.DEFAULT_BITLT, n, m)


def _fits(engine: Engine, k: int, kappa: int, what: str) -> None:
    try:
        cost.check_bit_length(engine.field.p, k, kappa)
    except FieldError as exc:
        raise ProgramError(f"{what}: {exc}", rule="runtime") from None


def check_lengths(engine: Engine, k: int, kappa: int) -> None:
    """Refuse a program bit length k whose comparisons (k+1 bits) do not fit the field."""
    _fits(engine, k + 1, kappa, f"a bit length of {k}")


# ---------------------------------------------------------------- integers


def ltz(engine: Engine, x: Node, k: int, kappa: int) -> Node:
    """[x < 0] for signed k-bit x (a secret bit)."""
    _fits(engine, k, kappa, "a comparison")
    method = _bitlt(x.length, k - 1)
    op = NonlinearOp(
        ("ltz", k, kappa, method),
        lambda n: cost.cost_ltz(n, k, kappa, method),
        lambda local, xs, material, n: ltz_program(_online(local), xs[0], k, material, kappa=kappa, bitlt=method),
    )
    return engine.nonlinear(op, [x], x.length)


def eqz(engine: Engine, x: Node, k: int, kappa: int) -> Node:
    """[x = 0] for x ∈ (−2^k, 2^k) (a secret bit)."""
    _fits(engine, k, kappa, "an equality test")
    op = NonlinearOp(
        ("eqz", k, kappa),
        lambda n: cost.cost_eqz(n, k, kappa),
        lambda local, xs, material, n: eqz_program(_online(local), xs[0], k, material, kappa=kappa),
    )
    return engine.nonlinear(op, [x], x.length)


def trunc(engine: Engine, x: Node, k: int, m: int, kappa: int) -> Node:
    """⌊x/2^m⌋ exactly (``x >> m``) for signed k-bit x and 0 < m."""
    _fits(engine, k, kappa, "a right shift")
    method = _bitlt(x.length, min(m, k - 1))
    op = NonlinearOp(
        ("trunc", k, m, kappa, method),
        lambda n: cost.cost_trunc(n, k, m, kappa, method),
        lambda local, xs, material, n: trunc_program(
            _online(local), xs[0], k, m, material, kappa=kappa, bitlt=method
        ),
    )
    return engine.nonlinear(op, [x], x.length)


def mod2m(engine: Engine, x: Node, k: int, m: int, kappa: int) -> Node:
    """x mod 2^m ∈ [0, 2^m) for signed k-bit x and 0 < m < k."""
    _fits(engine, k, kappa, "a reduction mod 2^m")
    method = _bitlt(x.length, m)
    op = NonlinearOp(
        ("mod2m", k, m, kappa, method),
        lambda n: cost.cost_mod2m(n, k, m, kappa, method),
        lambda local, xs, material, n: mod2m_program(
            _online(local), xs[0], k, m, material, kappa=kappa, bitlt=method
        ),
    )
    return engine.nonlinear(op, [x], x.length)


def trunc_pr(engine: Engine, x: Node, k: int, m: int, kappa: int) -> Node:
    """TruncPr: ⌊x/2^m⌋ + u, u ∈ {0, 1} with Pr[u = 1] = (x mod 2^m)/2^m (0 < m < k)."""
    _fits(engine, k, kappa, "a fixed-point truncation")
    op = NonlinearOp(
        ("trunc_pr", k, m, kappa),
        lambda n: cost.cost_trunc_pr(n, k, m, kappa),
        lambda local, xs, material, n: trunc_pr_program(_online(local), xs[0], k, m, material, kappa=kappa),
    )
    return engine.nonlinear(op, [x], x.length)


def bit_decompose(engine: Engine, x: Node, k: int, kappa: int) -> Node:
    """The k bits of x mod 2^k (two's complement, LSB first) as k stacked rows."""
    _fits(engine, k, kappa, "a bit decomposition")
    op = NonlinearOp(
        ("bitdec", k, kappa),
        lambda n: cost.cost_bit_decompose(n, k, kappa),
        lambda local, xs, material, n: bit_decompose_program(_online(local), xs[0], k, material, kappa=kappa),
        rows=k,
    )
    return engine.nonlinear(op, [x], x.length)


def div_public(engine: Engine, x: Node, k: int, d: int, kappa: int) -> Node:
    """⌊x/d⌋ (Python ``//``) for signed k-bit x and a public d ∉ {0, 1, −1}."""
    p = engine.field.p
    try:
        plans.plan_div_public(p, k, d, kappa)
    except FieldError as exc:
        raise ProgramError(f"division by {d}: {exc}", rule="runtime") from None
    method: cost.BitLtMethod = "tree"  # its comparisons are on a few bits
    op = NonlinearOp(
        ("div_public", k, d, kappa, method),
        lambda n: plans.cost_div_public(n, k, d, kappa, method, p=p),
        lambda local, xs, material, n: div_public_program(
            _online(local), xs[0], k, d, material, kappa=kappa, bitlt=method
        ),
    )
    return engine.nonlinear(op, [x], x.length)


def int_div(engine: Engine, x: Node, y: Node, k: int, kappa: int) -> Node:
    """⌊x/y⌋ (Python ``//``) for secret signed k-bit x and y ≠ 0."""
    p = engine.field.p
    try:
        cost.check_bit_length(p, k, kappa)
        plans.plan_int_div(p, k, kappa)
    except FieldError as exc:
        limit = (cost.max_truncation_bits(p, kappa) - 4) // 2
        raise ProgramError(
            f"division by a secret: {exc}; divide {min(limit, 36)}-bit values "
            "(program.set_bit_length(k) or x.int_div(y, bit_length=k))",
            rule="runtime",
        ) from None
    method = _bitlt(x.length, k)
    op = NonlinearOp(
        ("int_div", k, kappa, method),
        lambda n: plans.cost_int_div(n, k, kappa, method, p=p),
        lambda local, xs, material, n: int_div_program(
            _online(local), xs[0], xs[1], k, material, kappa=kappa, bitlt=method
        ),
    )
    return engine.nonlinear(op, [x, y], x.length)


# ---------------------------------------------------------------- fixed point


def fx_div(engine: Engine, a: Node, b: Node, k: int, f: int, kappa: int) -> Node:
    """a/b for fixed-point a, b (raw values with f fractional bits, k bits in all)."""
    p = engine.field.p
    try:
        guard = plans.fx_guard(p, k, f, kappa)
    except FieldError as exc:
        raise ProgramError(f"sfix division: {exc}", rule="runtime") from None
    if guard < k + 7:  # the quotient's error grows as |a|·2^−guard: keep it below 2^−8 ulp
        limit = cost.max_truncation_bits(p, kappa) - 8
        raise ProgramError(
            f"sfix division with k={k}, f={f} would lose precision in this field; "
            f"it needs 2k + f ≤ {limit} (sfix.set_precision)",
            rule="runtime",
        )
    op = NonlinearOp(
        ("fx_div", k, f, kappa),
        lambda n: plans.cost_fx_div(n, k, f, kappa, p=p),
        lambda local, xs, material, n: fx_div_program(_online(local), xs[0], xs[1], material, k, f, kappa=kappa),
    )
    return engine.nonlinear(op, [a, b], a.length)


def fx_reciprocal(engine: Engine, b: Node, k: int, f: int, kappa: int) -> Node:
    """1/b for fixed-point b."""
    p = engine.field.p
    try:
        plans.plan_reciprocal(p, k, kappa)
    except FieldError as exc:
        raise ProgramError(f"sfix reciprocal: {exc}", rule="runtime") from None
    op = NonlinearOp(
        ("fx_reciprocal", k, f, kappa),
        lambda n: plans.cost_fx_reciprocal(n, k, f, kappa, p=p),
        lambda local, xs, material, n: fx_reciprocal_program(_online(local), xs[0], material, k, f, kappa=kappa),
    )
    return engine.nonlinear(op, [b], b.length)


# ---------------------------------------------------------------- randomness


def _no_rounds(value: Shares) -> Generator[list[Shares], Any, Shares]:
    """A round program that opens nothing."""
    return value
    yield []  # pragma: no cover - makes this a generator


def random_bits(engine: Engine, n: int) -> Node:
    """n secret random bits, from the tuple store's ``bit`` tuples (no rounds)."""
    op = NonlinearOp(
        ("random_bits",),
        lambda count: cost.tuples(bit=count),
        lambda local, xs, material, count: _no_rounds(material.take_bits(count)),
    )
    return engine.nonlinear(op, [], n)


def random_ints(engine: Engine, bits: int, n: int) -> Node:
    """n secret random integers uniform in [0, 2^bits), each the sum of ``bits`` random bits."""
    op = NonlinearOp(
        ("random_ints", bits),
        lambda count: cost.tuples(bit=bits * count),
        lambda local, xs, material, count: _no_rounds(prand_int(material.take_bits(bits * count), bits, count)),
    )
    return engine.nonlinear(op, [], n)
