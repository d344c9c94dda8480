"""Dealer tuple generation into a local VC of real daemons, end to end.

    python bench/tuples.py [--parties 3] [--counts 100000,1000000]

Each row: one `tuples.generate` job on the leader, timed until every VCP
reports it completed (generated, transferred over the encrypted peer links,
stored in each VCP's SQLite file and activated).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory would come first on sys.path and this
# file would shadow the standard library's 'secrets'; use the repo root instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import time  # noqa: E402

import trio  # noqa: E402

from bench._common import local_vc, print_table, stamp
from vcpd.client import open_client


async def generate(config: object, kind: str, count: int) -> float:
    async with open_client(config) as client:  # type: ignore[arg-type]
        started = time.perf_counter()
        job = await client.generate_tuples(kind, count)
        await client.wait_tuple_job(job)
        elapsed = time.perf_counter() - started
        stock = await client.tuple_stock()
        assert len({s["tuples"][kind]["available"] for s in stock}) == 1, "VCPs disagree on stock"
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--counts", default="100000,1000000")
    parser.add_argument("--kinds", default="triple,mask,bit")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    rows = []
    with local_vc(args.parties) as vc:
        for kind in args.kinds.split(","):
            for count in counts:
                elapsed = trio.run(generate, vc.client_config, kind, count)
                rows.append([kind, f"{count:,}", f"{elapsed:.2f}", f"{count / elapsed:,.0f}"])
    print(f"# dealer generation, {args.parties} VCPs (real daemons on 127.0.0.1), {stamp()}")
    print_table(["kind", "count", "seconds", "tuples/s"], rows)


if __name__ == "__main__":
    main()
