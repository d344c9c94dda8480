"""The lazy, round-merging SPDZ engine behind a program's secret values.

A program never computes on shares directly: every secret operation adds a
*vector node* to a graph (:class:`~.graph.Node`), and nothing touches the network
until a value is needed -- a reveal whose result Python looks at, an output,
or the end of the program. Then :meth:`Engine.flush`:

1. finds every pending multiplication, non-linear operation (a comparison,
   truncation, division... run as a round program of
   :mod:`vcpd.protocol.nonlinear`) and requested opening, and gives each the
   round in which it can start (linear nodes add nothing; a product adds
   one round, a non-linear operation its own number of rounds);
2. **counts the tuples** the whole batch needs (one triple per multiplied
   element, plus the exact ``needs`` of every non-linear operation) and
   reserves them in **one** reservation;
3. runs the rounds: all products starting in a round are one vector Beaver
   product, like non-linear operations starting together are one vector
   program, and every opening of every program, product and reveal of that
   round goes out in **one** ``open_many`` -- so 1,000 independent products
   (or comparisons) written as a Python loop cost the rounds of one, and a
   product of two 10^6-element arrays is one vector operation
   (:mod:`.schedule` has the details);
4. runs the batched MAC check (through the :class:`Channel`, i.e. the
   :class:`~vcpd.protocol.OnlineParty`) before any revealed value is handed
   back.

Linear operations are local and evaluated on demand, iteratively (no
recursion, so a chain of a million additions is fine), and a node drops its
inputs once it has a value, so the graph above it can be freed.

Every VCP runs the same program and therefore builds the same graph, flushes
at the same points and asks for the same tuples in the same order; nothing
here depends on timing, garbage collection or the values of secrets.

Threading: an engine belongs to the worker thread that runs the program. The
:class:`Channel` hides how the network steps reach trio (the executor's
channel calls :func:`trio.from_thread.run`).

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math` and its siblings :mod:`.graph` and :mod:`.schedule` (never
net, api, node, daemon or another service). It logs nothing, and keeps the MAC key share in a
``_``-prefixed attribute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, cast

import numpy as np

from vcpd.errors import VcpInternalError
from vcpd.math import SMALL_THRESHOLD, FieldArray, PrimeField, Shares

from .graph import (
    ADD,
    ADD_PUBLIC,
    CONCAT,
    KIND_NAMES,
    LEAF,
    MUL,
    NEG,
    PROTO,
    SCALE,
    SEGMENT_SUM,
    SELECT,
    SUB,
    SUM,
    Channel,
    EngineStatistics,
    LocalParty,
    Node,
    Opening,
    RoundOp,
    bump,
    contiguous,
    same_length,
    segment_sums,
)
from .schedule import FlushRunner, plan

__all__ = ["BLOCK_TUPLES", "MAC_CHECK_THRESHOLD", "SCALAR_CACHE_LIMIT", "TRIPLE", "Engine"]

TRIPLE: Final = "triple"
"""The tuple kind a Beaver product consumes (one per element)."""

SCALAR_CACHE_LIMIT: Final = 1 << 20
"""Largest vector whose elements the engine keeps as Python ints while scalar
code picks them one by one (numpy's fixed cost per call is ~100 µs, an int
list slice ~1 µs)."""
_SCALAR_CACHE_ENTRIES: Final = 8

MAC_CHECK_THRESHOLD: Final = 1 << 21
"""Opened elements (about 64 MiB of logged values and MACs) after which a
flush runs a MAC check even without a reveal, bounding the check log's memory
(MP-SPDZ checks every 10^6 openings)."""

BLOCK_TUPLES: Final = 800_000
"""Tuples one block of a long non-linear operation may draw (~6,000 comparisons of
64-bit values, ~17,000 fixed-point truncations): see :meth:`Engine.nonlinear`.
Measured best of 0.4, 0.8 and 1.5 million on 10^5 comparisons."""


class Engine:
    """The lazy graph and its scheduler for one execution on this VCP.

    Args:
        field: the VC's field.
        party: this VCP's index (party 0 holds public constants).
        alpha_share: this VCP's MAC key share (for public constants).
        channel: the network steps.
    """

    def __init__(self, field: PrimeField, party: int, alpha_share: int, channel: Channel) -> None:
        self._field = field
        self._party = party
        self._alpha = alpha_share % field.p
        self._channel = channel
        self._muls: list[Node] = []
        self._protos: list[Node] = []
        self._local = LocalParty(field, party, self._alpha)
        self._openings: list[Opening] = []
        self._stats = EngineStatistics()
        self._scalar_cache: dict[int, tuple[Shares, list[int], list[int]]] = {}

    def __repr__(self) -> str:
        return f"<Engine party={self._party} pending={len(self._muls)}>"

    @property
    def field(self) -> PrimeField:
        """The VC's field."""
        return self._field

    def statistics(self) -> EngineStatistics:
        """A snapshot of the counters."""
        return self._stats

    @property
    def pending(self) -> int:
        """Multiplication and non-linear nodes waiting for the next flush."""
        return len(self._muls) + len(self._protos)

    # ------------------------------------------------------------ building the graph

    def leaf(self, shares: Shares) -> Node:
        """A node whose shares are known (an input)."""
        node = Node(LEAF, (), len(shares))
        node.value = shares
        return node

    def constant(self, values: FieldArray) -> Node:
        """Shares of a public vector: party 0 holds it, every party its MAC share."""
        own = values if self._party == 0 else self._field.zeros(len(values))
        return self.leaf(Shares(own, values * self._alpha))

    def add(self, a: Node, b: Node) -> Node:
        return Node(ADD, (a, b), same_length(a, b))

    def sub(self, a: Node, b: Node) -> Node:
        return Node(SUB, (a, b), same_length(a, b))

    def neg(self, a: Node) -> Node:
        return Node(NEG, (a,), a.length)

    def scale(self, a: Node, c: int | FieldArray) -> Node:
        """a·c for a public scalar or a public vector of a's length."""
        if isinstance(c, FieldArray) and len(c) != a.length:
            raise VcpInternalError("scale: public vector of the wrong length")
        return Node(SCALE, (a,), a.length, c)

    def add_public(self, a: Node, c: int | FieldArray) -> Node:
        """a + c for a public scalar or vector (party 0 adds to its value share)."""
        if isinstance(c, FieldArray) and len(c) != a.length:
            raise VcpInternalError("add_public: public vector of the wrong length")
        return Node(ADD_PUBLIC, (a,), a.length, c)

    def select(self, a: Node, index: slice | np.ndarray) -> Node:
        """Elements of a by a slice or an array of positions (gathers, repeats)."""
        if isinstance(index, slice):
            start, stop, step = index.indices(a.length)
            if (start, step) == (0, 1) and stop == a.length:
                return a
            length = len(range(start, stop, step))
        else:
            length = len(index)
        return Node(SELECT, (a,), length, index)

    def element(self, a: Node, i: int) -> Node:
        return a if a.length == 1 and i == 0 else Node(SELECT, (a,), 1, slice(i, i + 1))

    def repeat(self, a: Node, n: int) -> Node:
        """A length-1 node broadcast to n elements."""
        if a.length == n:
            return a
        return Node(SELECT, (a,), n, np.zeros(n, dtype=np.int64))

    def concat(self, parts: Sequence[Node]) -> Node:
        """Join nodes end to end; consecutive slices of one node become one slice
        (so ``Array.create_from(sint.read_from_socket(s, 10**6))`` is one vector)."""
        if len(parts) == 1:
            return parts[0]
        run = contiguous(parts)
        if run is not None:
            return self.select(*run)
        return Node(CONCAT, tuple(parts), sum(p.length for p in parts))

    def total(self, a: Node) -> Node:
        """Σ of a's elements, as a length-1 node."""
        return Node(SUM, (a,), 1)

    def segment_sums(self, a: Node, size: int) -> Node:
        """Sums of consecutive groups of ``size`` elements."""
        if size < 1 or a.length % size:
            raise VcpInternalError("segment_sums: length is not a multiple of the group size")
        return Node(SEGMENT_SUM, (a,), a.length // size, size)

    def mul(self, a: Node, b: Node) -> Node:
        """Element-wise product: one triple per element, at the next flush."""
        node = Node(MUL, (a, b), same_length(a, b))
        self._muls.append(node)
        return node

    def nonlinear(self, op: RoundOp, inputs: Sequence[Node], n: int) -> Node:
        """A non-linear operation on n-element inputs (or none): ``op.rows``·n
        elements, at the next flush, merged with every like operation that
        can start in the same round (see :mod:`.schedule`).

        A very long element-wise operation runs in blocks of about
        :data:`BLOCK_TUPLES` tuples, each flushed before the next is added
        (the last one stays pending, to merge with what follows): its
        working set then stays small enough for the caches and for memory the
        process already holds. Measured on 10^5 comparisons with 3 daemons on
        2 cores: ~25 % more comparisons per second (warm; ~60 % on a daemon's first
        run) than one 10^5-element vector.
        """
        for node in inputs:
            if node.length != n:
                raise VcpInternalError("non-linear operands of different lengths")
        block = self._block(op, n) if inputs and op.rows == 1 else n
        if block >= n:
            node = Node(PROTO, tuple(inputs), op.rows * n, op)
            self._protos.append(node)
            return node
        parts = []
        for start in range(0, n, block):
            stop = min(n, start + block)
            if parts:  # the previous block runs now; this one waits like any node
                # This block is flushed alone by the next pass of the loop unless it
                # is the last (which may merge with what follows): its tuples are
                # then known exactly and are taken while the previous block computes.
                self.flush(prefetch=op.needs(stop - start) if stop < n else None)
            part = Node(PROTO, tuple(self.select(node, slice(start, stop)) for node in inputs), stop - start, op)
            self._protos.append(part)
            parts.append(part)
        return self.concat(parts)

    @staticmethod
    def _block(op: RoundOp, n: int) -> int:
        """Elements per block: all of them unless they draw more than BLOCK_TUPLES tuples."""
        total = sum(op.needs(n).values())
        if total <= BLOCK_TUPLES:
            return n
        return max(1, BLOCK_TUPLES * n // total)

    def open(self, node: Node) -> Opening:
        """Ask for ``node`` to be revealed at the next flush (merged with others)."""
        opening = Opening(node)
        self._openings.append(opening)
        return opening

    # ------------------------------------------------------------ values

    def shares(self, node: Node) -> Shares:
        """This VCP's shares of ``node`` (flushing pending products first if needed)."""
        if node.value is None and self._needs_flush(node):
            self.flush()
        return self._evaluate(node)

    def revealed(self, opening: Opening) -> FieldArray:
        """The MAC-checked value of a requested opening (flushing if needed)."""
        if opening.value is None:
            self.flush(check=True)
        if opening.value is None:
            raise VcpInternalError("an opening was lost by the scheduler")
        return opening.value

    def _needs_flush(self, root: Node) -> bool:
        stack, seen = [root], set()
        while stack:
            node = stack.pop()
            if node.value is not None or id(node) in seen:
                continue
            if node.kind in (MUL, PROTO):
                return True
            seen.add(id(node))
            stack.extend(node.inputs)
        return False

    # ------------------------------------------------------------ scheduling

    def flush(self, *, check: bool = False, prefetch: Mapping[str, int] | None = None) -> None:
        """Run every pending product, non-linear operation and opening, merged
        into as few rounds as they allow (:mod:`.schedule`); then MAC-check.

        Args:
            check: run the MAC check even if nothing is revealed (before outputs).
            prefetch: the exact tuple needs of the next flush, to take while
                this one computes (see :meth:`Channel.prefetch`).
        """
        muls, self._muls = self._muls, []
        protos, self._protos = self._protos, []
        openings, self._openings = [o for o in self._openings if o.value is None], []
        if not muls and not protos and not openings:
            if check:
                self._mac_check()
            return
        work = plan(muls, protos, openings)
        runner = FlushRunner(self._channel, self._local, self._evaluate, self._join, self._split)
        totals, opened_values = runner.run(work, prefetch)
        revealed = sum(len(v) for _, v in opened_values)
        self._stats = bump(
            self._stats,
            flushes=1,
            rounds=totals.rounds,
            mul_rounds=totals.mul_rounds,
            multiplications=work.triples,
            nonlinear=work.nonlinear,
            reveals=revealed,
            reservations=1 if totals.reserved else 0,
            reserve_s=totals.reserve_s,
        )
        if openings or check or self._channel.pending_checks() >= MAC_CHECK_THRESHOLD:
            self._mac_check()
        for opening, value in opened_values:  # released only now, after the check passed
            opening.value = value
        self._scalar_cache.clear()

    def _mac_check(self) -> None:
        if self._channel.pending_checks():
            self._channel.mac_check()
            self._stats = bump(self._stats, mac_checks=1)

    # ------------------------------------------------------------ local evaluation

    def _evaluate(self, root: Node) -> Shares:
        """Compute a node from ready inputs, iteratively (deep chains are fine)."""
        if root.value is not None:
            return root.value
        stack = [root]
        while stack:
            node = stack[-1]
            if node.value is not None:
                stack.pop()
                continue
            missing = [i for i in node.inputs if i.value is None]
            if missing:
                if node.kind in (MUL, PROTO):
                    raise VcpInternalError("a product was evaluated before its round")
                stack.extend(missing)
                continue
            node.value = self._compute(node)
            node.inputs = ()
            stack.pop()
        assert root.value is not None
        return root.value

    def _compute(self, node: Node) -> Shares:
        kind = node.kind
        values = [i.value for i in node.inputs if i.value is not None]
        if len(values) != len(node.inputs):
            raise VcpInternalError("a node was evaluated before its inputs")
        if kind == CONCAT:
            return self._join(values)
        a = values[0]
        if kind == ADD:
            return a + values[1]
        if kind == SUB:
            return a - values[1]
        if kind == NEG:
            return -a
        if kind == SCALE:
            return a * cast(int | FieldArray, node.arg)
        if kind == ADD_PUBLIC:
            return a.add_public(node.arg, self._party, self._alpha)
        if kind == SELECT:
            return self._select(a, node.arg, node.length)
        if kind == SUM:
            return Shares(self._field.from_ints([a.values.sum()]), self._field.from_ints([a.macs.sum()]))
        if kind == SEGMENT_SUM:
            return segment_sums(a, node.arg)
        raise VcpInternalError(f"cannot evaluate a {KIND_NAMES[kind]} node locally")

    # ------------------------------------------------------------ scalar code, fast

    def _select(self, source: Shares, index: slice | np.ndarray, length: int) -> Shares:
        """A selection; a few elements of a large vector come from a cached int list."""
        n = len(source)
        if not (isinstance(index, slice) and length < 64 and SMALL_THRESHOLD <= n <= SCALAR_CACHE_LIMIT):
            return source[index]
        entry = self._scalar_cache.get(id(source))
        if entry is None or entry[0] is not source:
            if len(self._scalar_cache) >= _SCALAR_CACHE_ENTRIES:
                self._scalar_cache.pop(next(iter(self._scalar_cache)))
            entry = (source, source.values.to_ints(), source.macs.to_ints())
            self._scalar_cache[id(source)] = entry
        _, values, macs = entry
        field = self._field
        return Shares(field.from_ints(values[index]), field.from_ints(macs[index]))

    def _join(self, parts: Sequence[Shares]) -> Shares:
        """Concatenate; many small parts are joined as int lists (one conversion)."""
        if len(parts) == 1:
            return parts[0]
        if len(parts) <= 4 or sum(len(p) for p in parts) < SMALL_THRESHOLD or len(parts) * 64 < sum(map(len, parts)):
            return Shares.concat(parts)
        values: list[int] = []
        macs: list[int] = []
        for part in parts:
            values.extend(part.values.to_ints())
            macs.extend(part.macs.to_ints())
        return Shares(self._field.from_ints(values), self._field.from_ints(macs))

    def _split(self, result: Shares, nodes: list[Node]) -> None:
        """Hand each product node its slice of a merged round's result."""
        if len(nodes) == 1:
            nodes[0].value, nodes[0].inputs = result, ()
            return
        small = len(result) >= SMALL_THRESHOLD and len(nodes) * 64 >= len(result)
        values = result.values.to_ints() if small else None
        macs = result.macs.to_ints() if small else None
        field, start = self._field, 0
        for node in nodes:
            end = start + node.length
            if values is not None and macs is not None:
                node.value = Shares(field.from_ints(values[start:end]), field.from_ints(macs[start:end]))
            else:
                node.value = result[start:end]
            node.inputs = ()
            start = end
