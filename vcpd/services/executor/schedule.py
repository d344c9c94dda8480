"""One flush of the lazy engine: plan the rounds, reserve once, run them merged.

:func:`plan` looks at every pending product (``MUL``), non-linear operation
(``PROTO``, a round program, see :class:`~.graph.RoundOp`) and requested
opening, and gives each the round in which it can start
(:func:`~.graph.ready_rounds`: a product of values known after round r goes
out in round r; a non-linear operation starting in round r is known after
r + its rounds). Then:

* the products of one round become one vector Beaver product;
* the non-linear operations of one round with the same op (``key``) become
  **one vector program** over their concatenated inputs -- 10^4 scalar
  comparisons written in a Python loop cost what one comparison of a vector
  of 10^4 does;
* different programs running at the same time (a comparison, an equality
  test, a truncation started a round later...) **share rounds**: the
  openings of every program, product and reveal of a round travel in one
  ``open_many``;
* every tuple all of this draws (triples, random bits, masks) is counted up
  front with the ops' ``needs`` and reserved in **one** reservation; after
  the last round the pool must be exactly empty (no tuple is wasted, and a
  reservation never runs short), else the flush fails as an internal error.

:class:`FlushRunner` runs a plan on this VCP. Every VCP builds the same graph
and therefore the same plan, draws the same tuples in the same order and
opens the same vectors in the same rounds; nothing depends on timing or on
secret values.

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math`, :mod:`vcpd.protocol.nonlinear` (the tuple pool) and its
sibling :mod:`.graph`. It logs nothing and never puts shares into messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vcpd.errors import VcpInternalError
from vcpd.math import FieldArray, Shares
from vcpd.protocol.nonlinear.material import Material

from .graph import Channel, LocalParty, Node, Opening, RoundOp, ready_rounds

__all__ = ["FlushRunner", "FlushTotals", "Group", "Plan", "RoundWork", "plan"]

TRIPLE = "triple"


@dataclass(slots=True)
class Group:
    """Non-linear nodes of one op that start in the same round: one vector program."""

    op: RoundOp
    start: int
    nodes: list[Node] = field(default_factory=list)

    @property
    def length(self) -> int:
        return sum(node.length // self.op.rows for node in self.nodes)


@dataclass(slots=True)
class RoundWork:
    """What starts in one round."""

    muls: list[Node] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    openings: list[Opening] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    """A flush: the work per starting round and every tuple it will draw."""

    rounds: dict[int, RoundWork]
    needs: dict[str, int]
    triples: int  # for the products (MUL nodes) alone
    nonlinear: int  # elements of non-linear operations


@dataclass(frozen=True, slots=True)
class FlushTotals:
    """What running a plan did (for the engine's statistics)."""

    rounds: int
    mul_rounds: int
    reserved: bool
    reserve_s: float  # wall time spent reserving and taking the tuples


def plan(muls: Sequence[Node], protos: Sequence[Node], openings: Sequence[Opening]) -> Plan:
    """Give every pending operation its round and count the tuples (see the module doc)."""
    ready = ready_rounds([*muls, *protos, *(o.node for o in openings)])

    def start(node: Node) -> int:
        return max((ready[id(i)] for i in node.inputs), default=0)

    rounds: dict[int, RoundWork] = {}
    triples = 0
    for node in muls:
        rounds.setdefault(start(node), RoundWork()).muls.append(node)
        triples += node.length
    groups: dict[tuple[int, Any], Group] = {}
    for node in protos:
        op: RoundOp = node.arg
        if op.rounds == 0 and node.inputs:
            raise VcpInternalError("a non-linear operation without rounds must not have inputs")
        s = start(node)
        group = groups.get((s, op.key))
        if group is None:
            group = groups[(s, op.key)] = Group(op, s)
            rounds.setdefault(s, RoundWork()).groups.append(group)
        group.nodes.append(node)
    for opening in openings:  # an opening goes out in the round its value is known
        rounds.setdefault(ready[id(opening.node)], RoundWork()).openings.append(opening)
    needs: dict[str, int] = {TRIPLE: triples} if triples else {}
    nonlinear = 0
    for group in groups.values():
        n = group.length
        nonlinear += n
        for kind, count in group.op.needs(n).items():
            if count:
                needs[kind] = needs.get(kind, 0) + count
    return Plan(rounds, needs, triples, nonlinear)


@dataclass(slots=True)
class _Running:
    group: Group
    program: Any  # the generator
    parts: list[Shares]


class FlushRunner:
    """Runs a :class:`Plan` on this VCP (see the module doc).

    Args:
        channel: the engine's network steps.
        local: public-constant arithmetic for the programs.
        evaluate: a node's shares once its inputs are known (local work).
        join: concatenation of many (possibly tiny) vectors.
        split: hands each node its slice of a merged result.
    """

    def __init__(
        self,
        channel: Channel,
        local: LocalParty,
        evaluate: Callable[[Node], Shares],
        join: Callable[[Sequence[Shares]], Shares],
        split: Callable[[Shares, list[Node]], None],
    ) -> None:
        self._channel = channel
        self._local = local
        self._evaluate = evaluate
        self._join = join
        self._split = split

    def run(
        self, work: Plan, prefetch: Mapping[str, int] | None = None
    ) -> tuple[FlushTotals, list[tuple[Opening, FieldArray]]]:
        """Reserve, run every round, and return the opened values (not yet released).

        ``prefetch``: the exact tuple needs of the next flush, if known; their
        taking starts once this flush has its own tuples, and overlaps its rounds.
        """
        started = time.perf_counter()
        material = self._reserve(work.needs)
        reserve_s = time.perf_counter() - started
        if prefetch:
            self._channel.prefetch(prefetch)
        running: list[_Running] = []
        opened_values: list[tuple[Opening, FieldArray]] = []
        rounds = mul_rounds = 0
        last = max(work.rounds, default=-1)
        s = 0
        while s <= last or running:
            step = work.rounds.get(s, RoundWork())
            for group in sorted(step.groups, key=lambda g: g.op.rounds != 0):  # randomness first
                self._start(group, material, running)
            parts: list[Shares] = []
            prepared = None
            if step.muls:
                n = sum(node.length for node in step.muls)
                x = self._join([self._evaluate(node.inputs[0]) for node in step.muls])
                y = self._join([self._evaluate(node.inputs[1]) for node in step.muls])
                prepared = self._channel.prepare_mul(x, y, list(material.take_triples(n)))
                parts.append(prepared.to_open)
            for item in running:
                parts.extend(item.parts)
            parts.extend(self._evaluate(o.node) for o in step.openings)
            if parts:
                opened = self._channel.open_many(parts)
                rounds += 1
                pos = 0
                if prepared is not None:
                    self._split(prepared.finish(opened[0]), step.muls)
                    mul_rounds += 1
                    pos = 1
                still: list[_Running] = []
                for item in running:
                    count = len(item.parts)
                    answer = opened[pos : pos + count]
                    pos += count
                    try:
                        item.parts = list(item.program.send(answer))
                    except StopIteration as stop:
                        if s + 1 != item.group.start + item.group.op.rounds:
                            raise VcpInternalError("a non-linear operation took other rounds than planned") from None
                        self._finish(item.group, stop.value)
                        continue
                    if not item.parts:
                        raise VcpInternalError("a round program yielded an empty round")
                    still.append(item)
                running = still
                opened_values.extend(zip(step.openings, opened[pos:], strict=True))
            s += 1
        left = {kind: count for kind, count in material.available().items() if count}
        if left:
            raise VcpInternalError(f"a flush reserved tuples it did not use: {left}")
        return FlushTotals(rounds, mul_rounds, bool(work.needs), reserve_s), opened_values

    def _reserve(self, needs: dict[str, int]) -> Material:
        if not needs:
            return Material()
        taken = self._channel.reserve(needs)
        tuples: dict[str, list[Shares]] = {}
        for kind, count in needs.items():
            parts = list(taken.get(kind, ()))
            if not parts or any(len(part) != count for part in parts):
                raise VcpInternalError(f"the tuple source returned the wrong number of {kind} tuples")
            tuples[kind] = parts
        return Material(tuples)

    def _start(self, group: Group, material: Material, running: list[_Running]) -> None:
        nodes = group.nodes
        arity = len(nodes[0].inputs)
        inputs = [self._join([self._evaluate(node.inputs[j]) for node in nodes]) for j in range(arity)]
        if arity == 0:
            inputs = []
        program = group.op.program(self._local, inputs, material, group.length)
        try:
            parts = list(program.send(None))
        except StopIteration as stop:
            if group.op.rounds != 0:
                raise VcpInternalError("a non-linear operation took other rounds than planned") from None
            self._finish(group, stop.value)
            return
        if not parts:
            raise VcpInternalError("a round program yielded an empty round")
        running.append(_Running(group, program, parts))

    def _finish(self, group: Group, result: Shares) -> None:
        rows = group.op.rows
        total = group.length
        if len(result) != rows * total:
            raise VcpInternalError("a non-linear operation returned a result of the wrong length")
        if rows == 1:
            self._split(result, group.nodes)
            return
        offset = 0
        for node in group.nodes:
            n = node.length // rows
            index = (np.arange(rows, dtype=np.int64)[:, None] * total + offset + np.arange(n, dtype=np.int64)).ravel()
            node.value = result if len(group.nodes) == 1 else result[index]
            node.inputs = ()
            offset += n

