"""Tuple-based operations split around their one opening (Beaver, squares, bits).

Each function takes one party's shares of the operands and of a preprocessed
tuple and returns a :class:`Prepared`: the shares to open and a local
``finish`` that turns the opened values into the result. Splitting lets the
executor merge the openings of many independent operations into one network
round (:meth:`vcpd.protocol.online.OnlineParty.complete`); the async
conveniences ``mul``, ``square`` and ``bits_from_squares`` live there too.

Each operation costs a handful of vector operations per element (a Beaver
product: four field products per party); nothing here talks to the network.
Tuples are single-use: reusing a triple or a square pair leaks the operands.

This module must not import trio or any vcpd module except ``vcpd.errors``,
``vcpd.math`` and this package.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from vcpd.errors import FieldError, MacCheckFailure
from vcpd.math import FieldArray, Shares

from .commit import FAILURE_MARKER
from .tonelli import sqrt

__all__ = ["Prepared", "SquarePair", "Triple", "bits_prepare", "mul_prepare", "square_prepare"]


class Triple(NamedTuple):
    """One party's shares of a Beaver triple: c = a·b (element-wise)."""

    a: Shares
    b: Shares
    c: Shares


class SquarePair(NamedTuple):
    """One party's shares of a square pair: a_squared = a² (element-wise)."""

    a: Shares
    a_squared: Shares


class Prepared(NamedTuple):
    """A multiplication-like operation split around its one opening.

    Open ``to_open`` (possibly merged with others in one ``open_many`` round),
    then call ``finish`` with the opened values. ``finish`` is local and
    synchronous; the opened values must go through the MAC check like any
    other opening before anything derived from them leaves the VC.
    """

    to_open: Shares
    finish: Callable[[FieldArray], Shares]


def check_lengths(what: str, *parts: Shares) -> int:
    """The common length of ``parts``; ValueError if they differ."""
    n = len(parts[0])
    if any(len(part) != n for part in parts):
        raise ValueError(f"{what}: operands and tuple shares must have equal lengths ({[len(p) for p in parts]})")
    return n


def mul_prepare(x: Shares, y: Shares, triple: Triple | Sequence[Shares]) -> Prepared:
    """A Beaver product ⟨x·y⟩ around its opening of ε = x − a and ρ = y − b.

    ``finish`` computes ⟨z⟩ = ⟨c⟩ + ε·⟨y⟩ + ρ·⟨a⟩, which equals
    c + ε·b + ρ·a + ε·ρ = x·y without any public constant (ε·⟨y⟩ already
    carries ε·ρ): two products per component instead of three.
    """
    a, b, c = triple
    n = check_lengths("mul", x, y, a, b, c)

    def finish(opened: FieldArray) -> Shares:
        if len(opened) != 2 * n:
            raise ValueError(f"mul finish expects {2 * n} opened values, got {len(opened)}")
        return c.plus_products(y, opened[:n], a, opened[n:])

    return Prepared(Shares.concat_differences([(x, a), (y, b)]), finish)


def square_prepare(x: Shares, pair: SquarePair | Sequence[Shares]) -> Prepared:
    """⟨x²⟩ with a square pair, around its opening of e = x − a.

    ``finish`` computes ⟨x²⟩ = ⟨a²⟩ + e·(⟨x⟩ + ⟨a⟩) = a² + 2e·a + e².
    """
    a, a_squared = pair
    n = check_lengths("square", x, a, a_squared)

    def finish(e: FieldArray) -> Shares:
        if len(e) != n:
            raise ValueError(f"square finish expects {n} opened values, got {len(e)}")
        return a_squared + (x + a) * e

    return Prepared(x - a, finish)


def bits_prepare(pair: SquarePair | Sequence[Shares], *, party: int, alpha_share: int, session_id: str) -> Prepared:
    """Random shared bits from square pairs (mpc-notes §1.5), around the opening of s = a².

    ``finish`` drops positions where s = 0 (probability 1/p each, so the
    result is shorter only in theory), takes √s (Tonelli–Shanks, the same
    root on every VCP) and returns ⟨b⟩ = (⟨a⟩/√s + 1)/2: a/√s = ±1 uniformly
    and unknown to everyone, so b is a uniform secret bit.

    ``finish`` raises MacCheckFailure if some s is not a square: with honest
    tuples that proves a VCP shifted its share of s.
    """
    a, a_squared = pair
    check_lengths("bits", a, a_squared)
    inv2 = (a.field.p + 1) // 2

    def finish(s: FieldArray) -> Shares:
        shares = a
        words = np.frombuffer(s.to_bytes(), "<u8").reshape(-1, 2)
        nonzero = (words[:, 0] | words[:, 1]) != 0
        if not nonzero.all():
            s, shares = s[nonzero], shares[nonzero]
        try:
            root = sqrt(s)
        except FieldError:
            raise MacCheckFailure(
                session_id,
                f"{FAILURE_MARKER}: an opened square is not a square, so a VCP deviated from the protocol; "
                "nothing opened since the last check is trusted",
            ) from None
        scale = root.inverse() * inv2 if len(root) else root
        return (shares * scale).add_public(inv2, party, alpha_share)

    return Prepared(a_squared, finish)
