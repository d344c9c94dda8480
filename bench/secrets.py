"""Verified upload and download through a local VC of real daemons.

    python bench/secrets.py [--parties 3] [--repeat 30] [--large 1000000]

Latency: median of --repeat uploads, then of as many downloads, of a
1-element secret (each a full protocol: upload = triples reserved and checked
by the client, then the masked values stored everywhere; download =
MAC-checked output delivery and the client's check). Throughput: one secret of --large elements each way.
Tuples per element come from the tuple store's consumption counters, read
between the phases, for uploads and downloads separately.
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


Used = dict[str, dict[str, float]]


async def _consumed(client: object) -> dict[str, int]:
    stock = (await client.tuple_stock())[0]["tuples"]  # type: ignore[attr-defined]
    return {kind: stock.get(kind, {}).get("consumed", 0) for kind in ("mask", "triple")}


async def run(config: object, repeat: int, large: int) -> tuple[list[list[object]], Used]:
    async with open_client(config) as client:  # type: ignore[arg-type]
        # Upload 1 triple, download 2 triples per element, plus slack; no masks.
        await client.wait_tuple_job(await client.generate_tuples("triple", 3 * (large + repeat) + 1000))
        counters = {"upload": dict.fromkeys(("mask", "triple"), 0), "download": dict.fromkeys(("mask", "triple"), 0)}
        # Consumption is read between phases only, never between two timed operations.
        mark = await _consumed(client)

        async def count(direction: str) -> None:
            nonlocal mark
            now = await _consumed(client)
            for kind in now:
                counters[direction][kind] += now[kind] - mark[kind]
            mark = now

        ups, downs, secrets = [], [], []
        for i in range(repeat):
            t0 = time.perf_counter()
            secrets.append(await client.create_secret([i]))
            ups.append(time.perf_counter() - t0)
        await count("upload")
        for i, secret in enumerate(secrets):
            t0 = time.perf_counter()
            got = await client.get_secret(secret)
            downs.append(time.perf_counter() - t0)
            assert got.values == [i]
        await count("download")
        values = list(range(-large // 2, large - large // 2))
        t0 = time.perf_counter()
        big = await client.create_secret(values)
        up_large = time.perf_counter() - t0
        await count("upload")
        t0 = time.perf_counter()
        got = await client.get_secret(big)
        down_large = time.perf_counter() - t0
        await count("download")
        assert got.values == values
        elements = repeat + large  # per direction
        used = {d: {k: v / elements for k, v in c.items()} for d, c in counters.items()}
        rows = [
            ["upload, 1 element", median_ms(ups), "-"],
            ["download, 1 element", median_ms(downs), "-"],
            [f"upload, {large:,} elements", f"{up_large * 1000:.0f}", f"{large / up_large:,.0f}"],
            [f"download, {large:,} elements", f"{down_large * 1000:.0f}", f"{large / down_large:,.0f}"],
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
    for direction, per in used.items():
        print(f"tuples per element, {direction}: masks {per['mask']:.2f}, triples {per['triple']:.2f}")


if __name__ == "__main__":
    main()
