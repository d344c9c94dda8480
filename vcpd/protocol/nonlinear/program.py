"""Round programs: protocols written as generators of openings, run with merged rounds.

A non-linear protocol is a chain of rounds; in each it opens some shares and
continues with the opened values. Writing it as a generator makes that
explicit and lets independent protocols (or independent parts of one
protocol) share their rounds::

    def program(...) -> Program[Shares]:
        opened = yield [to_open_a, to_open_b]     # one network round
        ...
        return result

* :func:`parallel` runs several programs in lock step inside another program:
  round i of every program is merged into one round (a program that is done
  simply drops out), so a comparison and an equality test on other inputs
  cost max(rounds), not the sum.
* :func:`run` drives a program on an :class:`~vcpd.protocol.OnlineParty`
  (one ``open_many`` per round: one bytes payload per peer per round);
  :func:`run_parallel` drives several at once. The executor can use these
  directly to merge the rounds of independent non-linear operations.
* :func:`multiply` is a round of Beaver products (several pairs, one round).

Programs must not yield an empty list (that would not be a round); every VCP
runs the same programs in the same order, so their labels agree.

This module must not import vcpd.net, vcpd.testing, services, api or daemon;
from vcpd it uses only errors, math and vcpd.protocol.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any, TypeVar

from vcpd.math import FieldArray, Shares

from ..beaver import mul_prepare
from ..online import OnlineParty
from .material import Material

__all__ = ["Program", "multiply", "open_values", "parallel", "run", "run_parallel"]

T = TypeVar("T")

Program = Generator[list[Shares], list[FieldArray], T]
"""A protocol as a generator: yields the shares to open in a round, receives the
opened values (same order), returns its result."""


def _start(program: Program[Any]) -> tuple[bool, Any]:
    try:
        return False, program.send(None)  # type: ignore[arg-type]
    except StopIteration as stop:
        return True, stop.value


def _resume(program: Program[Any], opened: list[FieldArray]) -> tuple[bool, Any]:
    try:
        return False, program.send(opened)
    except StopIteration as stop:
        return True, stop.value


def parallel(*programs: Program[Any]) -> Program[list[Any]]:
    """Run ``programs`` in lock step: their i-th rounds become one round.

    Returns their results in order. Rounds: the maximum of theirs.
    """
    results: list[Any] = [None] * len(programs)
    pending: dict[int, list[Shares]] = {}
    for i, program in enumerate(programs):
        done, value = _start(program)
        if done:
            results[i] = value
        else:
            pending[i] = list(value)
    while pending:
        order = sorted(pending)
        opened = yield [part for i in order for part in pending[i]]
        nxt: dict[int, list[Shares]] = {}
        pos = 0
        for i in order:
            count = len(pending[i])
            done, value = _resume(programs[i], opened[pos : pos + count])
            pos += count
            if done:
                results[i] = value
            else:
                nxt[i] = list(value)
        pending = nxt
    return results


async def run(online: OnlineParty, program: Program[T]) -> T:
    """Drive ``program`` on ``online``: one ``open_many`` round per yield.

    The openings are partial (see ``OnlineParty.open``): run
    ``online.mac_check()`` before anything derived from the result leaves the VC.
    """
    done, value = _start(program)
    while not done:
        opened = await online.open_many(value)
        done, value = _resume(program, opened)
    return value  # type: ignore[no-any-return]


async def run_parallel(online: OnlineParty, *programs: Program[Any]) -> list[Any]:
    """Drive several programs with merged rounds; their results in order."""
    return await run(online, parallel(*programs))


def open_values(*parts: Shares) -> Program[list[FieldArray]]:
    """One round opening ``parts``."""
    opened = yield list(parts)
    return opened


def multiply(pairs: Sequence[tuple[Shares, Shares]], material: Material) -> Program[list[Shares]]:
    """Element-wise products x·y of every pair, with Beaver triples, in one round.

    One triple per element (drawn from ``material`` for all pairs at once);
    the openings ε = x − a and ρ = y − b of all pairs travel as one vector,
    and each product is ⟨c⟩ + ε·⟨y⟩ + ρ·⟨a⟩ (as :func:`vcpd.protocol.mul_prepare`).
    With no pairs, no round.
    """
    pairs = list(pairs)
    if not pairs:
        return []
    if len(pairs) == 1:
        x, y = pairs[0]
        prepared = mul_prepare(x, y, material.take_triples(len(x)))
        (opened,) = yield [prepared.to_open]
        return [prepared.finish(opened)]
    total = sum(len(x) for x, _ in pairs)
    a, b, c = material.take_triples(total)
    spans, pos = [], 0
    for x, _ in pairs:
        spans.append((pos, pos + len(x)))
        pos += len(x)
    differences = [(x, a[lo:hi]) for (x, _), (lo, hi) in zip(pairs, spans)]
    differences += [(y, b[lo:hi]) for (_, y), (lo, hi) in zip(pairs, spans)]
    combined = getattr(Shares, "concat_differences", None)  # newer vcpd.math: no temporaries
    if callable(combined):
        to_open = combined(differences)
    else:
        to_open = Shares.concat([x - t for x, t in differences])
    (opened,) = yield [to_open]
    return [
        c[lo:hi] + y * opened[lo:hi] + a[lo:hi] * opened[total + lo : total + hi]
        for (_, y), (lo, hi) in zip(pairs, spans)
    ]
