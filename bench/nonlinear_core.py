"""Throughput of the non-linear protocols over the in-memory hub (no sockets, no crypto).

Run ``python -m bench.nonlinear_core`` (from the repository root) for the table: for each operation, n
elements in one vectorised call followed by the batched MAC check, 3 parties
by default (``--parties``), at the sizes given by ``--sizes``.

All parties run in one process and one trio thread, sharing the machine's
cores, so wall time covers *every* party's work ("x parties" is the rate one
VCP would reach alone on its own core, ignoring the network). Tuples are dealt
beforehand by a trusted dealer and not timed. Best of ``--repeat`` runs,
``time.perf_counter``; on a shared VM expect ±30 %. The last column is the
best process CPU time (``time.process_time``) per element and party, which
other work on a shared machine disturbs much less than wall time. The script asserts that
the results are correct and that the tuples drawn equal ``needs_*``.

``--mallopt`` keeps glibc from returning large blocks to the kernel after
every vector operation (``mallopt`` M_MMAP_THRESHOLD/M_TRIM_THRESHOLD, what
``MALLOC_MMAP_THRESHOLD_=…`` does from the environment): at 10^4-10^5
elements per vector the page faults of fresh 10-100 MB arrays otherwise cost
25-40 % of the wall time.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


import numpy as np
import trio

from vcpd.math import FieldArray, PrimeField, Shares, reconstruct, share_vector
from vcpd.protocol import OnlineParty, OnlineStatistics
from vcpd.protocol.nonlinear import Material, cost, div_public, eq, fx_div, fx_mul, lt, plans, trunc_pr
from vcpd.services.generator.dealing import bounded_values
from vcpd.testing import open_memory_transports

FIELD = PrimeField()
P = FIELD.p


@dataclass
class Case:
    """One benchmark row: inputs, the op, its cost and the reference."""

    name: str
    arity: int
    low: int
    high: int
    cost: Callable[[int], cost.Cost]
    op: Callable[..., Awaitable[Shares]]
    check: Callable[[list[int], list[int], list[int]], bool]
    max_n: int = 10**6


def _signed(values: FieldArray) -> list[int]:
    return [v - P if v > P // 2 else v for v in values.to_ints()]


CASES = {
    "lt64": Case(
        "a < b (64-bit, auto)", 2, -(2**63), 2**63,
        lambda n: cost.cost_lt(n, 64),
        lambda on, a, b, pool: lt(on, a, b, 64, pool),
        lambda a, b, r: r == [int(x < y) for x, y in zip(a, b)],
    ),
    "lt64t": Case(
        "a < b (64-bit, tree)", 2, -(2**63), 2**63,
        lambda n: cost.cost_lt(n, 64, bitlt="tree"),
        lambda on, a, b, pool: lt(on, a, b, 64, pool, bitlt="tree"),
        lambda a, b, r: r == [int(x < y) for x, y in zip(a, b)],
    ),
    "lt64p": Case(
        "a < b (64-bit, product)", 2, -(2**63), 2**63,
        lambda n: cost.cost_lt(n, 64, bitlt="product"),
        lambda on, a, b, pool: lt(on, a, b, 64, pool, bitlt="product"),
        lambda a, b, r: r == [int(x < y) for x, y in zip(a, b)],
    ),
    "eq64": Case(
        "a == b (64-bit)", 2, -(2**63), 2**63,
        lambda n: cost.cost_eqz(n, 64),
        lambda on, a, b, pool: eq(on, a, b, 64, pool),
        lambda a, b, r: r == [int(x == y) for x, y in zip(a, b)],
    ),
    "truncpr": Case(
        "TruncPr(x, 64, 16)", 1, -(2**63), 2**63,
        lambda n: cost.cost_trunc_pr(n, 64, 16),
        lambda on, a, b, pool: trunc_pr(on, a, 64, 16, pool),
        lambda a, b, r: all(s - (x >> 16) in (0, 1) for s, x in zip(_signedints(r), a)),
    ),
    "fxmul": Case(
        "sfix mul (k=31, f=16)", 2, -(2**22), 2**22,
        lambda n: plans.cost_fx_mul(n),
        lambda on, a, b, pool: fx_mul(on, a, b, pool),
        lambda a, b, r: all(abs(s - x * y / 2**16) < 1 for s, x, y in zip(_signedints(r), a, b)),
    ),
    "div10": Case(
        "x // 10 (64-bit)", 1, -(2**63), 2**63,
        lambda n: plans.cost_div_public(n, 64, 10),
        lambda on, a, b, pool: div_public(on, a, 64, 10, pool),
        lambda a, b, r: _signedints(r) == [x // 10 for x in a],
    ),
    "fxdiv": Case(
        "sfix a / b (k=31, f=16)", 2, 2**16, 2**29,
        lambda n: plans.cost_fx_div(n),
        lambda on, a, b, pool: fx_div(on, a, b, pool),
        lambda a, b, r: all(abs(s - x * 2**16 / y) < 2 for s, x, y in zip(_signedints(r), a, b) if abs(x / y) < 2**14),
        max_n=20000,
    ),
}


def _signedints(values: list[int]) -> list[int]:
    return [v - P if v > P // 2 else v for v in values]


def deal(alphas: list[int], needs: dict[str, int], parties: int) -> list[Material]:
    """Every party's pool with exactly ``needs`` (trusted dealer, not timed)."""
    alpha = sum(alphas) % P
    pools: list[dict[str, list[Shares]]] = [{} for _ in range(parties)]
    for kind, count in needs.items():
        if not count:
            continue
        if kind == "triple":
            a, b = FIELD.random(count), FIELD.random(count)
            values = [a, b, a * b]
        elif kind == "bit":
            values = [FIELD.from_ints((np.frombuffer(os.urandom(count), np.uint8) & 1).astype(np.int64))]
        elif kind == "bounded":
            values = [bounded_values(FIELD, count)]
        else:
            values = [FIELD.random(count)]
        per_component = [share_vector(FIELD, v, alpha, parties) for v in values]
        for i in range(parties):
            pools[i][kind] = [component[i] for component in per_component]
    return [Material(pool) for pool in pools]


async def bench(case: Case, parties: int, n: int) -> tuple[float, OnlineStatistics, int, dict[str, int]]:
    alphas = FIELD.random(parties).to_ints()
    alpha = sum(alphas) % P
    rng = random.Random(n)
    a = [rng.randrange(case.low, case.high) for _ in range(n)]
    b = [rng.randrange(case.low, case.high) for _ in range(n)]
    if case.name.startswith("a =="):
        b[: n // 2] = a[: n // 2]
    sa = share_vector(FIELD, FIELD.from_ints(a), alpha, parties)
    sb = share_vector(FIELD, FIELD.from_ints(b), alpha, parties)
    need = case.cost(n)
    pools = deal(alphas, need.needs, parties)
    out: dict[int, Shares] = {}
    stats: dict[int, OnlineStatistics] = {}
    async with open_memory_transports(parties) as hub:

        async def party(i: int) -> None:
            async with hub.transports[i].session("bench") as session:
                online = OnlineParty(session, FIELD, alphas[i])
                out[i] = await case.op(online, sa[i], sb[i], pools[i])
                await online.mac_check()
                stats[i] = online.statistics()

        start = time.perf_counter()
        cpu_start = time.process_time()
        async with trio.open_nursery() as nursery:
            for i in range(parties):
                nursery.start_soon(party, i)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    result = reconstruct([out[i] for i in range(parties)]).to_ints()
    assert case.check(a, b, result), case.name
    assert all(pool.used() == need.needs for pool in pools), case.name
    assert stats[0].open_rounds == need.rounds, case.name
    return seconds, cpu, stats[0], need.rounds, need.needs


async def main(parties: int, sizes: list[int], repeat: int, names: list[str]) -> None:
    print(f"non-linear protocols, {parties} parties over the memory hub (one process, one thread)")
    print(
        f"{'operation':<26} {'n':>8} {'wall s':>8} {'ops/s':>10} {'x parties':>10} "
        f"{'rounds':>6} {'triples':>8} {'bits':>5} {'MB/party':>9} {'cpu µs/op/party':>16}"
    )
    for n in sizes:
        for name in names:
            case = CASES[name]
            if n > case.max_n:
                continue
            best = None
            best_cpu = float("inf")
            for _ in range(repeat):
                run = await bench(case, parties, n)
                best = run if best is None or run[0] < best[0] else best
                best_cpu = min(best_cpu, run[1])
            assert best is not None
            seconds, _, stats, rounds, needs = best
            rate = n / seconds
            print(
                f"{case.name:<26} {n:>8} {seconds:>8.2f} {rate:>10,.0f} {rate * parties:>10,.0f} "
                f"{rounds:>6} {needs['triple'] / n:>8.0f} {needs['bit'] / n:>5.0f} {stats.bytes_sent / 1e6:>9.1f}"
                f" {best_cpu / n / parties * 1e6:>16.1f}"
            )


def tune_malloc() -> None:
    """Keep big freed blocks in the heap (glibc only; a no-op elsewhere)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return
    libc = ctypes.CDLL(name)
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, (1 << 31) - 1)
    libc.mallopt(m_top_pad, 256 << 20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--ops", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--mallopt", action="store_true", help="keep freed big blocks (glibc mallopt)")
    args = parser.parse_args()
    if args.mallopt:
        tune_malloc()
    trio.run(main, args.parties, args.sizes, args.repeat, args.ops)
