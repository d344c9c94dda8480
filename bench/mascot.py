"""Throughput and traffic of the secure (MASCOT) offline phase over the in-memory hub.

Run ``python bench/mascot.py`` for the table: authenticated, sacrificed,
MAC-checked triples per second for 2 and 3 parties (``--parties``), and the
bytes every party sent per triple and per ordered pair of parties, next to
MP-SPDZ's cost model for MASCOT (``Compiler/cost.py``: l·(3·64 + 64·l) =
19,456 bytes for l = 16).

All parties run in one process (one trio thread, heavy steps handed to worker
threads with ``--threads``, the default), so wall time covers *every* party's
work on this machine's cores: a deployment runs each VCP on its own host.
Setup (base OTs, once per VC) is timed separately. Bytes are the hub's
msgpack-encoded messages, labels and checks included. Every row hash this
installation offers is measured (fixed-key AES needs the optional
``cryptography`` package; BLAKE2b is always there); ``--hash`` picks one. Best of
``--repeat`` runs, ``time.perf_counter``; on a shared VM expect ±30 %. The
script asserts that the triples are correct.

``--daemons`` measures instead through a local ``mascot`` VC of real daemons
(``vcpd.procvc``: one process per VCP, encrypted websockets on 127.0.0.1,
SQLite stores; worker threads on, as the daemon runs): a first small job
that includes the setup, then one ``tuples.generate triple COUNT`` job timed
from the request until every VCP has stored and activated it.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path[0] = str(_Path(__file__).resolve().parent.parent)

import argparse
import time
from typing import Any

import trio

from vcpd.math import PrimeField, check_macs, reconstruct
from vcpd.protocol.mascot import MascotState, generate, mascot_setup
from vcpd.protocol.mascot.otext import available_hashes
from vcpd.testing import open_memory_transports

MODEL_BYTES = 16 * (3 * 64 + 64 * 16)  # MP-SPDZ cost.py, per triple and ordered pair
FIELD = PrimeField()


async def run(parties: int, count: int, batch: int, hashes: list[str], threads: bool, repeat: int) -> dict[str, Any]:
    alphas = FIELD.random(parties).to_ints()
    async with open_memory_transports(parties) as hub:
        states: list[Any] = [None] * parties

        async def setup(i: int) -> None:
            async with hub.transports[i].session("setup") as session:
                states[i] = await mascot_setup(session, FIELD, alphas[i], i, parties, hashes=hashes, threads=threads)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(parties):
                nursery.start_soon(setup, i)
        setup_time = time.perf_counter() - start
        best, sent = float("inf"), 0
        for attempt in range(repeat):
            results: list[Any] = [None] * parties

            async def job(i: int, name: str = f"job{attempt}", results: list[Any] = results) -> None:
                async with hub.transports[i].session(name) as session:
                    results[i] = await generate(session, states[i], FIELD, "triple", count, batch_size=batch, threads=threads)

            before = hub.sent_bytes
            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for i in range(parties):
                    nursery.start_soon(job, i)
            best = min(best, time.perf_counter() - start)
            sent = hub.sent_bytes - before
            a, b, c = (reconstruct([r[k] for r in results]) for k in range(3))
            assert (a * b).equals(c), "wrong triples"
            assert all(check_macs([r[k] for r in results], alphas) for k in range(3)), "wrong MACs"
        state: MascotState = states[0]
    return {
        "parties": parties,
        "hash": state.hash_name,
        "setup_s": setup_time,
        "triples_per_s": count / best,
        "bytes_per_pair": sent / count / (parties * (parties - 1)),
    }


async def daemon_job(config: object, kind: str, count: int) -> float:
    from vcpd.client import open_client  # noqa: PLC0415 - only for --daemons

    async with open_client(config) as client:  # type: ignore[arg-type]
        started = time.perf_counter()
        job = await client.wait_tuple_job(await client.generate_tuples(kind, count))
        elapsed = time.perf_counter() - started
        assert job["state"] == "completed", job
        stock = await client.tuple_stock()
        assert len({s["tuples"][kind]["available"] for s in stock}) == 1, "VCPs disagree on stock"
        return elapsed


def run_daemons(parties: list[int], count: int) -> None:
    from bench._common import local_vc  # noqa: PLC0415 - only for --daemons

    print(f"MASCOT offline phase through real daemons (local mascot VC), {count} triples per job, "
          f"row hashes available here: {', '.join(available_hashes())}")  # fmt: skip
    header = f"{'parties':>7}  {'setup job s':>11}  {'triples/s':>9}"
    print(header)
    print("-" * len(header))
    for n in parties:
        with local_vc(n, "mascot") as vc:
            first = trio.run(daemon_job, vc.client_config, "mask", 100)  # includes the setup
            elapsed = trio.run(daemon_job, vc.client_config, "triple", count)
        print(f"{n:>7}  {first:>11.2f}  {count / elapsed:>9.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--count", type=int, default=4096, help="triples per job (default 4096)")
    parser.add_argument("--batch", type=int, default=2048, help="triples per protocol batch")
    parser.add_argument("--hash", choices=["all", "aes", "blake2b"], default="all")
    parser.add_argument("--no-threads", action="store_true", help="compute in the trio thread only")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--daemons", action="store_true", help="through a local VC of real daemons instead")
    args = parser.parse_args()
    if args.daemons:
        run_daemons(args.parties, args.count)
        return
    hashes = available_hashes() if args.hash == "all" else [args.hash]
    print(f"MASCOT offline phase, p = {FIELD.p:#x}, in-process memory hub, {args.count} triples per job, "
          f"batches of {args.batch}, row hashes available here: {', '.join(available_hashes())}")  # fmt: skip
    header = f"{'parties':>7}  {'hash':>7}  {'setup s':>7}  {'triples/s':>9}  {'B/triple/pair':>13}  {'model':>6}  {'ratio':>5}"
    print(header)
    print("-" * len(header))
    for name in hashes:
        for parties in args.parties:
            row = trio.run(run, parties, args.count, args.batch, [name], not args.no_threads, args.repeat)
            print(
                f"{row['parties']:>7}  {row['hash']:>7}  {row['setup_s']:>7.2f}  {row['triples_per_s']:>9.0f}  "
                f"{row['bytes_per_pair']:>13.0f}  {MODEL_BYTES:>6}  {row['bytes_per_pair'] / MODEL_BYTES:>5.2f}"
            )


if __name__ == "__main__":
    main()
