"""Throughput of the SPDZ online core over the in-memory hub (no sockets, no crypto).

Run ``python bench/online_core.py`` for the table: vectorised Beaver products
(one round) followed by the batched MAC check over their openings, and random
bits from square pairs, for 3 parties by default (``--parties``), at
n = 10^4, 10^5, 10^6 (``--sizes``).

All parties run in one process and one trio thread, sharing the machine's
cores (large rounds hand their arithmetic to worker threads, so two cores do
help). Wall time therefore covers *every* party's work; a deployment runs each
VCP on its own machine, where per-party time is roughly wall/parties plus the
network. Tuples are dealt beforehand and not timed. Best of ``--repeat`` runs,
``time.perf_counter``; on a shared VM expect ±30 %. The script asserts only
that results are correct.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

# Run as a script, bench/ would come first on sys.path and bench/secrets.py would
# shadow the standard library's 'secrets': put the repository root there instead.
_sys.path[0] = str(_Path(__file__).resolve().parent.parent)

import argparse
import time

import trio

from vcpd.math import FieldArray, PrimeField, Shares, reconstruct, share_vector
from vcpd.protocol import OnlineParty, OnlineStatistics, SquarePair, Triple
from vcpd.testing import open_memory_transports


def deal(field: PrimeField, alpha: int, parties: int, values: list[FieldArray]) -> list[list[Shares]]:
    """Per value, every party's shares (dealer style)."""
    return [share_vector(field, v, alpha, parties) for v in values]


async def run_parties(parties: int, body: object) -> tuple[float, OnlineStatistics, int]:
    """Run ``body(online, party)`` on every party; wall seconds, party 0's stats, hub bytes."""
    stats: dict[int, OnlineStatistics] = {}
    async with open_memory_transports(parties) as hub:

        async def party(i: int, field: PrimeField, alpha_share: int) -> None:
            async with hub.transports[i].session("bench") as session:
                online = OnlineParty(session, field, alpha_share, worker_threads=WORKER_THREADS[0])
                await body(online, i)  # type: ignore[operator]
                stats[i] = online.statistics()

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(parties):
                nursery.start_soon(party, i, FIELD, ALPHAS[i])
        return time.perf_counter() - start, stats[0], hub.sent_bytes


FIELD = PrimeField()
ALPHAS: list[int] = []
WORKER_THREADS = [False]


async def bench_mul(parties: int, n: int, check: bool) -> tuple[float, OnlineStatistics, int]:
    alpha = sum(ALPHAS) % FIELD.p
    x, y, a, b = (FIELD.random(n) for _ in range(4))
    sx, sy, sa, sb, sc = deal(FIELD, alpha, parties, [x, y, a, b, a * b])
    out: dict[int, Shares] = {}

    async def body(online: OnlineParty, i: int) -> None:
        out[i] = await online.mul(sx[i], sy[i], Triple(sa[i], sb[i], sc[i]))
        if check:
            await online.mac_check()

    result = await run_parties(parties, body)
    assert reconstruct([out[i] for i in range(parties)]).equals(x * y)
    return result


async def bench_bits(parties: int, n: int) -> tuple[float, OnlineStatistics, int]:
    alpha = sum(ALPHAS) % FIELD.p
    a = FIELD.random(n)
    sa, sa2 = deal(FIELD, alpha, parties, [a, a * a])
    out: dict[int, Shares] = {}

    async def body(online: OnlineParty, i: int) -> None:
        out[i] = await online.bits_from_squares(SquarePair(sa[i], sa2[i]))
        await online.mac_check()

    result = await run_parties(parties, body)
    bits = reconstruct([out[i] for i in range(parties)]).to_ints()
    assert set(bits) <= {0, 1}
    return result


def row(name: str, n: int, seconds: float, parties: int, stats: OnlineStatistics) -> str:
    """One table line; 'x parties' is ops/s times the party count (each VCP on its own core)."""
    rate = n / seconds
    return (
        f"{name:<22} {n:>9} {seconds:>8.3f} {rate:>12,.0f} {rate * parties:>10,.0f} "
        f"{stats.rounds:>6} {stats.bytes_sent / 1e6:>9.1f}"
    )


async def main(parties: int, sizes: list[int], repeat: int, bits_max: int) -> None:
    ALPHAS[:] = FIELD.random(parties).to_ints()
    threads = "with" if WORKER_THREADS[0] else "without"
    print(f"SPDZ online core, {parties} parties over the memory hub (all in one process, {threads} worker threads)")
    print(f"{'operation':<22} {'n':>9} {'wall s':>8} {'ops/s':>12} {'x parties':>10} {'rounds':>6} {'MB/party':>9}")
    cases = [("mul (1 round)", False), ("mul + MAC check", True)]
    for n in sizes:
        for name, check in cases:
            best = None
            for _ in range(repeat):
                run = await bench_mul(parties, n, check)
                best = run if best is None or run[0] < best[0] else best
            assert best is not None
            seconds, stats, _ = best
            print(row(name, n, seconds, parties, stats))
        if n <= bits_max:
            seconds, stats, _ = await bench_bits(parties, n)
            print(row("bits + MAC check", n, seconds, parties, stats))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5, 10**6])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--bits-max", type=int, default=10**5, help="largest n for the bits row")
    parser.add_argument("--worker-threads", action="store_true", help="OnlineParty(worker_threads=True)")
    args = parser.parse_args()
    WORKER_THREADS[0] = args.worker_threads
    trio.run(main, args.parties, args.sizes, args.repeat, args.bits_max)
