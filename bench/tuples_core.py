"""In-process throughput of dealer generation + transfer + storage.

Runs N VCPs (default 3) in one trio process over the in-memory transport of
:mod:`vcpd.testing` (or, with ``--transport mesh``, over real peer meshes on
127.0.0.1: handshake, encrypted channel, websockets), each with its own SQLite
file in a temporary directory,
and times one dealer job from ``generate`` until every VCP has the job
completed (tuples dealt, sent, checked, stored durably, activated). Prints
a table of tuples/s per kind and encoding, plus the time to reserve and take
a large block of the stock and the store's size against the raw share bytes.

All parties share this process's two cores, so this is a lower bound for the
leader-only work of a real VC and an upper bound for nothing; the lead's
``bench/tuples.py`` measures the end-to-end figure over real peer links.

Usage: ``python bench/tuples_core.py [--count 1000000] [--parties 3]
[--kinds triple,bit] [--encodings seed,shares] [--batch 32768]
[--transport memory|mesh]``. Wall-clock timings on a shared VM vary by ±30 %.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

# Run as a script, bench/ would come first on sys.path and bench/secrets.py would
# shadow the standard library's 'secrets': put the repository root there instead.
_sys.path[0] = str(_Path(__file__).resolve().parent.parent)

import argparse
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from vcpd.config import TupleSettings
from vcpd.keys import MacKey
from vcpd.math.field import PrimeField
from vcpd.protocol.transport import Transport
from vcpd.services.generator import TupleGenerator
from vcpd.services.tuples import KINDS, TupleStore
from vcpd.store import open_store
from vcpd.testing import open_local_mesh, open_memory_transports


@asynccontextmanager
async def open_transports(kind: str, parties: int) -> AsyncIterator[list[Transport]]:
    """``parties`` connected transports: the memory hub or real peer meshes."""
    if kind == "memory":
        async with open_memory_transports(parties) as hub:
            yield list(hub.transports)
    else:
        async with open_local_mesh(parties) as local:
            await local.wait_linked(30)
            yield [local[i] for i in range(parties)]


async def run_case(
    kind: str, count: int, parties: int, encoding: str, batch: int, transport: str = "memory"
) -> dict[str, float]:
    """One job of ``count`` tuples on fresh stores; returns timings."""
    field = PrimeField()
    alpha = 111657633366150805646207385542583740015  # a fixed key is fine for timing
    migrations = (*TupleStore.MIGRATIONS, *TupleGenerator.MIGRATIONS)
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with open_transports(transport, parties) as transports, trio.open_nursery() as nursery:
            generators: list[TupleGenerator] = []
            stores: list[TupleStore] = []
            ready = trio.Event()

            async def vcp(party: int, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                async with open_store(Path(tmp) / f"vcp{party}.sqlite3", migrations) as store:
                    share = alpha if party == 0 else 0
                    tuples = TupleStore(store, transports[party], field, party, parties)
                    key = MacKey(share, alpha if party == 0 else None)
                    generator = TupleGenerator(
                        store, tuples, transports[party], field, key, party, parties, TupleSettings(),
                        encoding=encoding, batch=batch,  # type: ignore[arg-type]
                    )  # fmt: skip
                    async with trio.open_nursery() as inner:
                        await inner.start(tuples.serve)
                        await inner.start(generator.serve)
                        generators.append(generator)
                        stores.append(tuples)
                        task_status.started()
                        await ready.wait()
                        inner.cancel_scope.cancel()

            for party in range(parties):
                await nursery.start(vcp, party)
            by_party = {g.statistics().leader: g for g in generators}
            leader = by_party[True]
            start = time.perf_counter()
            job_id = await leader.generate(kind, count)
            for generator in generators:
                job = await generator.wait_job(job_id)
                assert job.state == "completed", job.error
            result["generate"] = time.perf_counter() - start

            take = min(count, 100_000)
            start = time.perf_counter()
            reservations: dict[int, object] = {}

            async def reserve(i: int) -> None:
                reservations[i] = await stores[i].reserve("bench", {kind: take})

            async with trio.open_nursery() as inner:
                for i in range(parties):
                    inner.start_soon(reserve, i)
            for i in range(parties):
                await stores[i].take(reservations[i])  # type: ignore[arg-type]
            result["take"] = time.perf_counter() - start
            result["taken"] = take
            ready.set()
            nursery.cancel_scope.cancel()
        files = sorted(Path(tmp).glob("vcp*.sqlite3"))
        result["bytes"] = sum(f.stat().st_size for f in files)
        result["raw"] = parties * count * KINDS[kind].tuple_bytes
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--kinds", default="triple")
    parser.add_argument("--encodings", default="seed,shares")
    parser.add_argument("--batch", type=int, default=1 << 15)
    parser.add_argument("--transport", choices=("memory", "mesh"), default="memory")
    args = parser.parse_args()
    logging.getLogger("vcpd").setLevel(logging.ERROR)  # the dealer warns that it is insecure
    print(
        f"{args.parties} VCPs in one process over {args.transport} transports, "
        f"{args.count} tuples per job, batch {args.batch}"
    )
    print(f"{'kind':>8} {'encoding':>8} {'tuples/s':>10} {'seconds':>8} {'take/s':>10} {'size/raw':>9}")
    for kind in args.kinds.split(","):
        for encoding in args.encodings.split(","):
            r = trio.run(run_case, kind, args.count, args.parties, encoding, args.batch, args.transport)
            print(
                f"{kind:>8} {encoding:>8} {args.count / r['generate']:>10.0f} {r['generate']:>8.2f}"
                f" {r['taken'] / r['take']:>10.0f} {r['bytes'] / r['raw']:>9.4f}"
            )


if __name__ == "__main__":
    main()
