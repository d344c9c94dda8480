"""Preprocessed material for the non-linear protocols: a cursor over reserved tuples.

The executor counts what a program needs (the ``needs_*`` functions of
:mod:`.cost`), reserves exactly that from the tuple store, and hands every
protocol a :class:`Material` pool to draw from. Every protocol draws exactly
what its ``needs_*`` function announces — the tests check it — so a
reservation never runs short and no tuple is wasted or used twice.

Kinds and layout (one party's shares, as the tuple store hands them out):

* ``"triple"``: (a, b, c = a·b) — Beaver products;
* ``"square"``: (a, a²) — not used by these protocols (the caller may turn
  square pairs into bits with ``OnlineParty.bits_from_squares`` first);
* ``"bit"``: b ∈ {0, 1} uniform — bounded randomness (PRandInt/PRandM);
* ``"inverse"``: (r, r⁻¹) — not used by these protocols;
* ``"mask"``: r uniform in F_p — the randomiser of the zero test in the
  ``"product"`` variant of BitLT;
* ``"bounded"``: r uniform in [0, 2^40) — 40 bits of a mask's high part in
  one tuple (see :mod:`.prand`).

This module must not import trio or anything from vcpd except ``vcpd.errors``,
``vcpd.math`` and ``vcpd.protocol``; it holds shares, so nothing here logs or
puts values into exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from vcpd.errors import TuplesExhausted
from vcpd.math import Shares

from ..beaver import SquarePair, Triple
from .cost import BOUNDED_BITS

__all__ = ["BOUNDED_BITS", "KINDS", "Material", "Needs", "add_needs", "no_needs", "scale_needs"]

KINDS: Final = ("triple", "square", "bit", "inverse", "mask", "bounded")
"""Every tuple kind, in the tuple store's canonical order."""

_ARITY: Final = {"triple": 3, "square": 2, "bit": 1, "inverse": 2, "mask": 1, "bounded": 1}

Needs = dict[str, int]
"""Tuples per kind; every kind of :data:`KINDS` is present (zeros included)."""


def no_needs() -> Needs:
    """A :data:`Needs` with every count zero."""
    return dict.fromkeys(KINDS, 0)


def add_needs(*parts: Mapping[str, int]) -> Needs:
    """Kind-wise sum of several :data:`Needs`."""
    total = no_needs()
    for part in parts:
        for kind, count in part.items():
            total[kind] += count
    return total


def scale_needs(needs: Mapping[str, int], factor: int) -> Needs:
    """Every count multiplied by ``factor``."""
    return {kind: count * factor for kind, count in add_needs(needs).items()}


class Material:
    """One party's reserved tuples, consumed front to back.

    All VCPs must build their pools from the same tuples in the same order and
    run the same protocols in the same order, so they draw matching tuples.

    Args:
        tuples: kind → the shares of each component (``[a, b, c]`` for
            triples, ``[b]`` for bits, ...), all components of one kind of
            equal length. This is the shape a tuple reservation yields.
    """

    __slots__ = ("_parts", "_used")

    def __init__(self, tuples: Mapping[str, Sequence[Shares]] | None = None) -> None:
        self._parts: dict[str, list[Shares]] = {}
        self._used = no_needs()
        for kind, parts in (tuples or {}).items():
            if kind not in _ARITY:
                raise ValueError(f"unknown tuple kind {kind!r}; known kinds: {', '.join(KINDS)}")
            parts = list(parts)
            if len(parts) != _ARITY[kind]:
                raise ValueError(f"a {kind} tuple has {_ARITY[kind]} components, got {len(parts)}")
            if len({len(part) for part in parts}) > 1:
                raise ValueError(f"the components of the {kind} tuples differ in length")
            self._parts[kind] = parts

    @classmethod
    def of(
        cls,
        *,
        triples: Triple | Sequence[Shares] | None = None,
        bits: Shares | None = None,
        masks: Shares | None = None,
        squares: SquarePair | Sequence[Shares] | None = None,
        inverses: Sequence[Shares] | None = None,
        bounded: Shares | None = None,
    ) -> Material:
        """A pool from keyword arguments (convenient in tests)."""
        tuples: dict[str, Sequence[Shares]] = {}
        if triples is not None:
            tuples["triple"] = list(triples)
        if bits is not None:
            tuples["bit"] = [bits]
        if masks is not None:
            tuples["mask"] = [masks]
        if squares is not None:
            tuples["square"] = list(squares)
        if inverses is not None:
            tuples["inverse"] = list(inverses)
        if bounded is not None:
            tuples["bounded"] = [bounded]
        return cls(tuples)

    def __repr__(self) -> str:
        return f"<Material available={self.available()} used={self.used()}>"

    def available(self) -> Needs:
        """Tuples per kind not drawn yet."""
        out = no_needs()
        for kind, parts in self._parts.items():
            out[kind] = len(parts[0]) - self._used[kind]
        return out

    def used(self) -> Needs:
        """Tuples per kind drawn so far."""
        return dict(self._used)

    def take(self, kind: str, count: int) -> list[Shares]:
        """The next ``count`` tuples of ``kind``, one Shares per component.

        Protocols never ask for zero tuples (the pool may not know the field).

        Raises:
            TuplesExhausted: fewer than ``count`` remain (or none of ``kind``).
        """
        if count <= 0:
            raise ValueError(f"cannot take {count} tuples")
        have = self.available().get(kind, 0)
        if count > have:
            raise TuplesExhausted(kind, count, have)
        start = self._used[kind]
        self._used[kind] = start + count
        parts = self._parts[kind]
        if start == 0 and count == len(parts[0]):
            return list(parts)  # the whole pool: no copy
        return [part[start : start + count] for part in parts]

    def take_bits(self, count: int) -> Shares:
        """The next ``count`` random bits."""
        return self.take("bit", count)[0]

    def take_triples(self, count: int) -> Triple:
        """The next ``count`` Beaver triples."""
        a, b, c = self.take("triple", count)
        return Triple(a, b, c)

    def take_masks(self, count: int) -> Shares:
        """The next ``count`` uniform random field elements."""
        return self.take("mask", count)[0]

    def take_bounded(self, count: int) -> Shares:
        """The next ``count`` random values below 2^:data:`BOUNDED_BITS`."""
        return self.take("bounded", count)[0]

    def split(self, needs: Mapping[str, int]) -> Material:
        """Draw ``needs`` from this pool into a new pool of its own.

        This is how a caller who reserved for several operations at once
        hands each operation its share.
        """
        tuples: dict[str, list[Shares]] = {}
        for kind, count in add_needs(needs).items():
            if count > 0:
                tuples[kind] = self.take(kind, count)
        return Material(tuples)
