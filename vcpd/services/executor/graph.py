"""The lazy graph's parts: vector nodes, openings, statistics and graph helpers.

A :class:`Node` is one vector of secret values as this VCP sees it: an input
or constant (born with its shares), a linear function of other nodes, or a
product (which waits for a flush). :mod:`.engine` builds and schedules them;
programs never see a node, only the ``sint`` that holds one in a ``_`` slot.

This module must not import any vcpd module other than :mod:`vcpd.errors`
and :mod:`vcpd.math`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol

from vcpd.errors import VcpInternalError
from vcpd.math import FieldArray, Shares

__all__ = [
    "ADD",
    "ADD_PUBLIC",
    "CONCAT",
    "KIND_NAMES",
    "LEAF",
    "MUL",
    "NEG",
    "SCALE",
    "SEGMENT_SUM",
    "SELECT",
    "SUB",
    "SUM",
    "Channel",
    "EngineStatistics",
    "Node",
    "Opening",
    "PreparedMul",
    "bump",
    "contiguous",
    "depths",
    "same_length",
    "segment_sums",
    "window",
]

# Node kinds. LEAF nodes are born with a value; MUL consumes triples; the rest are linear.
LEAF, ADD, SUB, NEG, SCALE, ADD_PUBLIC, SELECT, CONCAT, SUM, SEGMENT_SUM, MUL = range(11)
KIND_NAMES: Final = (
    "leaf",
    "add",
    "sub",
    "neg",
    "scale",
    "add-public",
    "select",
    "concat",
    "sum",
    "segment-sum",
    "mul",
)


class Node:
    """One vector of secret values in the lazy graph (this VCP's view).

    Attributes:
        kind: the operation (module constants ``ADD``, ``MUL``, ...).
        inputs: operand nodes; emptied once the node has its value.
        arg: the public parameter of the operation (a constant, an index...).
        length: number of elements.
        value: this VCP's shares, once computed (None while pending).
    """

    __slots__ = ("arg", "inputs", "kind", "length", "value")

    def __init__(self, kind: int, inputs: tuple[Node, ...], length: int, arg: Any = None) -> None:
        self.kind = kind
        self.inputs = inputs
        self.length = length
        self.arg = arg
        self.value: Shares | None = None

    def __repr__(self) -> str:  # never the shares
        state = "ready" if self.value is not None else "pending"
        return f"<Node {KIND_NAMES[self.kind]} n={self.length} {state}>"

    @property
    def ready(self) -> bool:
        """Whether this VCP's shares of the node are computed."""
        return self.value is not None


class Opening:
    """A requested reveal; ``value`` is set only after the MAC check passed."""

    __slots__ = ("node", "value")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.value: FieldArray | None = None


class PreparedMul(NamedTuple):
    """A Beaver product split around its opening (see ``OnlineParty.mul_prepare``)."""

    to_open: Shares
    finish: Callable[[FieldArray], Shares]


class Channel(Protocol):
    """The engine's blocking access to the other VCPs (called from the worker thread)."""

    def reserve(self, counts: Mapping[str, int]) -> Mapping[str, Sequence[Shares]]:
        """Reserve and take tuples in one reservation; kind -> components."""
        ...

    def prepare_mul(self, x: Shares, y: Shares, triple: Sequence[Shares]) -> PreparedMul:
        """Local half of a Beaver product (no network)."""
        ...

    def open_many(self, parts: Sequence[Shares]) -> list[FieldArray]:
        """Open several vectors in one network round (recorded for the MAC check)."""
        ...

    def mac_check(self) -> None:
        """Check every opening so far; raises MacCheckFailure."""
        ...

    def pending_checks(self) -> int:
        """Opened elements not yet covered by a MAC check."""
        ...


@dataclass(frozen=True, slots=True)
class EngineStatistics:
    """What the engine did, as the execution record reports it.

    Attributes:
        flushes: flushes that did any network work.
        rounds: opening rounds the engine ran (multiplications and reveals merged).
        mul_rounds: rounds that carried multiplications.
        multiplications: elements multiplied (= triples used).
        reveals: elements revealed (opened for the program, MAC-checked).
        reservations: tuple reservations made (at most one per flush).
        mac_checks: MAC checks the engine asked for.
    """

    flushes: int = 0
    rounds: int = 0
    mul_rounds: int = 0
    multiplications: int = 0
    reveals: int = 0
    reservations: int = 0
    mac_checks: int = 0


def same_length(a: Node, b: Node) -> int:
    if a.length != b.length:
        raise VcpInternalError(f"operands of different lengths ({a.length} and {b.length})")
    return a.length


def bump(stats: EngineStatistics, **deltas: int) -> EngineStatistics:
    return EngineStatistics(**{k: getattr(stats, k) + deltas.get(k, 0) for k in EngineStatistics.__slots__})


def depths(roots: Sequence[Node]) -> dict[int, int]:
    """Multiplicative depth of every unevaluated node under ``roots`` (by id).

    Ready nodes count as depth 0, so work left over from an earlier flush does
    not push new products into later rounds.
    """
    memo: dict[int, int] = {}
    for root in roots:
        stack = [root]
        while stack:
            node = stack[-1]
            key = id(node)
            if key in memo:
                stack.pop()
                continue
            if node.value is not None:
                memo[key] = 0
                stack.pop()
                continue
            missing = [i for i in node.inputs if id(i) not in memo]
            if missing:
                stack.extend(missing)
                continue
            base = max((memo[id(i)] for i in node.inputs), default=0)
            memo[key] = base + 1 if node.kind == MUL else base
            stack.pop()
    return memo


def contiguous(parts: Sequence[Node]) -> tuple[Node, slice] | None:
    """(source, slice) if ``parts`` are back-to-back unit-step slices of one node."""
    first = parts[0]
    if first.kind != SELECT or not isinstance(first.arg, slice) or not first.inputs:
        return None
    source = first.inputs[0]
    start = expected = first.arg.indices(source.length)[0]
    for node in parts:
        arg = node.arg
        if node.kind != SELECT or not isinstance(arg, slice) or not node.inputs or node.inputs[0] is not source:
            return None
        lo, _, step = arg.indices(source.length)
        if step != 1 or lo != expected:
            return None
        expected = lo + node.length
    return source, slice(start, expected)


def window(component: Shares, offset: int, n: int, total: int) -> Shares:
    return component if (offset, n) == (0, total) else component[offset : offset + n]


def segment_sums(a: Shares, size: int) -> Shares:
    """Σ of each group of ``size`` consecutive elements (size strided slices added)."""
    total = a[0::size]
    for j in range(1, size):
        total = total + a[j::size]
    return total
