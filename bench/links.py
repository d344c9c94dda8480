"""Benchmark of peer links: latency and throughput through the whole stack.

Two VCPs linked by the real peer mesh over websockets on 127.0.0.1
(handshake, encrypted channel, chunking, mailboxes, sessions). Measured with
labelled session messages, as the protocols use them:

* round trip of a small message (party 0 sends, party 1 answers), median and p90;
* throughput of one 16 MiB payload (10^6 field elements as 16-byte values),
  from the first send to the arrival of the receiver's acknowledgement, best
  of several; and of 4 such payloads in flight at once.

Run both VCPs in one process (one core does both ends' crypto) and in two
processes (one core each, like two daemons)::

    python bench/links.py [--pings 2000] [--trials 5]

Prints a table. Target: at least 100 MB/s for a 16 MiB payload.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

# Run as a script, bench/ would come first on sys.path and bench/secrets.py would
# shadow the standard library's 'secrets': put the repository root there instead.
_sys.path[0] = str(_Path(__file__).resolve().parent.parent)

import argparse
import multiprocessing
import socket
import statistics
import time
from collections.abc import Callable
from typing import Any

import trio
from nacl.signing import SigningKey

from vcpd.config import VcpConfig
from vcpd.net.mesh import PeerMesh, serve_peer_mesh
from vcpd.testing import make_vcp_configs

PAYLOAD = 16 * 2**20  # bytes: 10^6 field elements are 16 MB; a round 16 MiB here
CONCURRENT = 4


def free_ports(count: int) -> list[int]:
    """Ports the OS says are free now (good enough for a benchmark)."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def configs(seeds: list[bytes], ports: list[int]) -> tuple[list[VcpConfig], list[SigningKey]]:
    keys = [SigningKey(seed) for seed in seeds]
    return make_vcp_configs([("127.0.0.1", port) for port in ports], identities=keys)


async def reflector(mesh: PeerMesh, pings: int, trials: int) -> None:
    """Party 1: answer every ping, acknowledge every payload."""
    async with mesh.session("latency") as session:
        for i in range(pings):
            await session.send(0, f"pong.{i}", await session.receive(0, f"ping.{i}"))

    async def ack(sid: str) -> None:
        async with mesh.session(sid) as session:
            data = await session.receive(0, "data")
            await session.send(0, "ack", len(data))

    for trial in range(trials):
        await ack(f"bulk.{trial}")
        async with trio.open_nursery() as nursery:
            for k in range(CONCURRENT):
                nursery.start_soon(ack, f"bulk.{trial}.{k}")


async def driver(mesh: PeerMesh, pings: int, trials: int) -> dict[str, Any]:
    """Party 0: time round trips and bulk transfers."""
    rtts = []
    async with mesh.session("latency") as session:
        for i in range(pings):
            start = time.perf_counter()
            await session.send(1, f"ping.{i}", b"0123456789abcdef")
            await session.receive(1, f"pong.{i}")
            rtts.append(time.perf_counter() - start)
    payload = bytes(range(256)) * (PAYLOAD // 256)

    async def send(sid: str) -> None:
        async with mesh.session(sid) as session:
            await session.send(1, "data", payload)
            assert await session.receive(1, "ack") == PAYLOAD

    single, concurrent = [], []
    for trial in range(trials):
        start = time.perf_counter()
        await send(f"bulk.{trial}")
        single.append(time.perf_counter() - start)
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for k in range(CONCURRENT):
                nursery.start_soon(send, f"bulk.{trial}.{k}")
        concurrent.append(time.perf_counter() - start)
    rtts.sort()
    return {
        "rtt_median": statistics.median(rtts),
        "rtt_p90": rtts[int(0.9 * len(rtts))],
        "single": PAYLOAD / min(single) / 1e6,
        "concurrent": CONCURRENT * PAYLOAD / min(concurrent) / 1e6,
    }


async def run_party(
    party: int, seeds: list[bytes], ports: list[int], work: Callable[..., Any], *args: Any
) -> Any:
    config, keys = configs(seeds, ports)
    async with trio.open_nursery() as nursery:
        mesh: PeerMesh = await nursery.start(serve_peer_mesh, config[party], keys[party])
        await mesh.wait_linked(30)
        result = await work(mesh, *args)
        await trio.sleep(0.2)  # let the last acknowledgement leave before closing
        nursery.cancel_scope.cancel()
    return result


def child(seeds: list[bytes], ports: list[int], pings: int, trials: int) -> None:
    trio.run(run_party, 1, seeds, ports, reflector, pings, trials)


async def one_process(seeds: list[bytes], ports: list[int], pings: int, trials: int) -> dict[str, Any]:
    results: dict[str, Any] = {}

    async def drive() -> None:
        results.update(await run_party(0, seeds, ports, driver, pings, trials))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_party, 1, seeds, ports, reflector, pings, trials)
        nursery.start_soon(drive)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    seeds = [bytes([i + 1]) * 32 for i in range(2)]
    rows = []
    ports = free_ports(2)
    rows.append(("1 process", trio.run(one_process, seeds, ports, args.pings, args.trials)))
    ports = free_ports(2)
    process = multiprocessing.get_context("spawn").Process(target=child, args=(seeds, ports, args.pings, args.trials))
    process.start()
    rows.append(("2 processes", trio.run(run_party, 0, seeds, ports, driver, args.pings, args.trials)))
    process.join()

    print(f"peer links over websockets on 127.0.0.1 ({args.pings} round trips, best of {args.trials} transfers)")
    print()
    head = ("VCPs in", "RTT median", "RTT p90", "16 MiB: MB/s", f"{CONCURRENT} x 16 MiB: MB/s")
    table = [
        (name, f"{r['rtt_median'] * 1e3:.3f} ms", f"{r['rtt_p90'] * 1e3:.3f} ms", f"{r['single']:.0f}",
         f"{r['concurrent']:.0f}")
        for name, r in rows
    ]  # fmt: skip
    widths = [max(len(cell) for cell in column) for column in zip(head, *table, strict=True)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cells in table:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |")
    print()
    print("MB = 10^6 bytes; throughput is payload bytes from the first send to the receiver's acknowledgement.")


if __name__ == "__main__":
    main()
