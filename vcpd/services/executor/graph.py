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
from vcpd.math import FieldArray, PrimeField, Shares

__all__ = [
    "ADD",
    "PROTO",
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
    "LocalParty",
    "Node",
    "Opening",
    "PreparedMul",
    "RoundOp",
    "bump",
    "contiguous",
    "ready_rounds",
    "same_length",
    "segment_sums",
    "window",
]

# Node kinds. LEAF nodes are born with a value; MUL consumes triples; PROTO runs a
# round program (a non-linear protocol, see ``RoundOp``); the rest are linear.
LEAF, ADD, SUB, NEG, SCALE, ADD_PUBLIC, SELECT, CONCAT, SUM, SEGMENT_SUM, MUL, PROTO = range(12)
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
    "nonlinear",
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


class RoundOp(Protocol):
    """A non-linear operation the engine runs as a round program (a ``PROTO`` node's ``arg``).

    Nodes whose ops have equal ``key`` and that can start in the same round
    are merged into one vector program (their inputs concatenated), so the
    op's tuple counts must be additive in n and its rounds independent of n.

    Attributes:
        key: what makes two nodes mergeable (operation and parameters).
        rounds: opening rounds the program takes (the same for every n).
        rows: output rows per input element (a bit decomposition has k).
    """

    key: Any
    rounds: int
    rows: int

    def needs(self, n: int) -> Mapping[str, int]:
        """The tuples (per kind) the program draws for n elements."""
        ...

    def program(self, local: LocalParty, inputs: Sequence[Shares], material: Any, n: int) -> Any:
        """A round-program generator over ``inputs`` (n elements each; none for randomness)."""
        ...


class LocalParty:
    """The local operations of ``OnlineParty`` that round programs use (no network).

    Non-linear programs add public constants and build constant shares; the
    engine hands them this instead of the real online party, whose network
    steps it drives itself. Keeps the MAC key share behind ``_`` names.
    """

    __slots__ = ("_alpha", "_field", "_party")

    def __init__(self, field: PrimeField, party: int, alpha_share: int) -> None:
        self._field = field
        self._party = party
        self._alpha = alpha_share

    def __repr__(self) -> str:
        return f"<LocalParty party={self._party}>"

    @property
    def field(self) -> PrimeField:
        return self._field

    @property
    def party(self) -> int:
        return self._party

    def constant(self, c: FieldArray | int, length: int | None = None) -> Shares:
        """Shares of a public vector (an int needs ``length``)."""
        if not isinstance(c, FieldArray):
            if length is None:
                raise VcpInternalError("constant(int) needs a length")
            c = self._field.constant(c, length)
        own = c if self._party == 0 else self._field.zeros(len(c))
        return Shares(own, c * self._alpha)

    def add_public(self, x: Shares, c: FieldArray | int) -> Shares:
        """x + c for public c."""
        return x.add_public(c, self._party, self._alpha)


class Channel(Protocol):
    """The engine's blocking access to the other VCPs (called from the worker thread)."""

    def reserve(self, counts: Mapping[str, int]) -> Mapping[str, Sequence[Shares]]:
        """Reserve and take tuples in one reservation; kind -> components."""
        ...

    def prefetch(self, counts: Mapping[str, int]) -> None:
        """Start taking the tuples of the next :meth:`reserve`, which must ask
        for exactly ``counts``, while this flush computes (may do nothing)."""
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
        multiplications: elements multiplied by the program's products (one
            triple each; non-linear operations draw more, see the tuples used).
        nonlinear: elements that went through non-linear operations
            (comparisons, truncations, divisions, random bits...).
        reveals: elements revealed (opened for the program, MAC-checked).
        reservations: tuple reservations made (at most one per flush).
        reserve_s: seconds spent reserving and taking those tuples.
        mac_checks: MAC checks the engine asked for.
    """

    flushes: int = 0
    rounds: int = 0
    mul_rounds: int = 0
    multiplications: int = 0
    nonlinear: int = 0
    reveals: int = 0
    reservations: int = 0
    reserve_s: float = 0.0
    mac_checks: int = 0


def same_length(a: Node, b: Node) -> int:
    if a.length != b.length:
        raise VcpInternalError(f"operands of different lengths ({a.length} and {b.length})")
    return a.length


def bump(stats: EngineStatistics, **deltas: float) -> EngineStatistics:
    return EngineStatistics(**{k: getattr(stats, k) + deltas.get(k, 0) for k in EngineStatistics.__slots__})


def ready_rounds(roots: Sequence[Node]) -> dict[int, int]:
    """The round after which each unevaluated node under ``roots`` is known (by id).

    0 means before the first round (inputs, constants, anything linear in
    them). A product of operands known after round r goes out in round r and
    is known after r + 1; a ``PROTO`` node starts in round r (when its inputs
    are known) and is known after r + ``rounds``. Ready nodes count as 0.
    For products alone this is the multiplicative depth.
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
            if node.kind == MUL:
                base += 1
            elif node.kind == PROTO:
                base += node.arg.rounds
            memo[key] = base
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
