"""Verified upload and download through a local VC of real daemons.

    python bench/secrets.py [--parties 3] [--repeat 30] [--large 1000000]

Latency: median of --repeat uploads / downloads of a 1-element secret (each a
full protocol: masks reserved, MAC-checked output delivery, client check).
Throughput: one secret of --large elements each way. Tuples per element come
from the tuple store's consumption counters.
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

from bench._common import local_vc, median_ms, print_table, stamp
from vcpd.client import open_client


async def run(config: object, repeat: int, large: int) -> tuple[list[list[object]], dict[str, float]]:
    async with open_client(config) as client:  # type: ignore[arg-type]
        for kind, count in (("mask", 6 * (large + repeat) + 1000), ("triple", 4 * (large + repeat) + 1000)):
            await client.wait_tuple_job(await client.generate_tuples(kind, count))
        before = (await client.tuple_stock())[0]["tuples"]
        ups, downs = [], []
        for i in range(repeat):
            t0 = time.perf_counter()
            secret = await client.create_secret([i])
            t1 = time.perf_counter()
            got = await client.get_secret(secret)
            t2 = time.perf_counter()
            assert got.values == [i]
            ups.append(t1 - t0)
            downs.append(t2 - t1)
        values = list(range(-large // 2, large - large // 2))
        t0 = time.perf_counter()
        big = await client.create_secret(values)
        t1 = time.perf_counter()
        got = await client.get_secret(big)
        t2 = time.perf_counter()
        assert got.values == values
        after = (await client.tuple_stock())[0]["tuples"]
        elements = 2 * (repeat + large)  # uploads + downloads, elements each
        used = {k: (after[k]["consumed"] - before[k]["consumed"]) / elements for k in ("mask", "triple")}
        rows = [
            ["upload, 1 element", median_ms(ups), "-"],
            ["download, 1 element", median_ms(downs), "-"],
            [f"upload, {large:,} elements", f"{(t1 - t0) * 1000:.0f}", f"{large / (t1 - t0):,.0f}"],
            [f"download, {large:,} elements", f"{(t2 - t1) * 1000:.0f}", f"{large / (t2 - t1):,.0f}"],
        ]
        return rows, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    with local_vc(args.parties) as vc:
        rows, used = trio.run(run, vc.client_config, args.repeat, args.large)
    print(f"# secrets, {args.parties} VCPs (real daemons on 127.0.0.1), {stamp()}")
    print_table(["operation", "ms (median)", "elements/s"], rows)
    print(f"tuples per element (upload or download, averaged): masks {used['mask']:.2f}, triples {used['triple']:.2f}")


if __name__ == "__main__":
    main()
