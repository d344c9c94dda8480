"""Program execution on a local VC of real daemons, and the same products in MPyC.

    python bench/executor.py [--sizes 100000,1000000] [--repeat 3] [--samples 30] [--no-mpyc]

Three tables, from one run:

1. **vcpd throughput**: a 3-VCP local VC (separate ``vcpd start`` processes,
   real websockets on 127.0.0.1, dealer tuples generated before any clock
   starts). Two secrets of n elements each are uploaded (verified upload),
   then one ``Client.run_program`` call runs

       a = sint.read_from_socket(socket, 1, size=N)
       b = sint.read_from_socket(socket, 1, size=N)
       sint.write_to_socket(socket, a * b)

   i.e. n products in one vector operation (one reservation of n triples, one
   Beaver opening round, the batched MAC check that the engine runs before it
   stores any output) and the product stored as a new secret on every VCP.
   Timed: the ``run_program`` call end to end on the client (request to every
   VCP, input loading, agreement, the products, the MAC check, storing the
   output, the answers). ``--repeat`` runs per n on the same inputs; the row
   shows the best (and the median and worst), the CPU time that the 3 daemons
   used together during the best run (from /proc: on a shared machine wall
   time depends on what else runs, CPU time much less), and VCP 0's
   execution statistics:
   rounds (all protocol rounds incl. the MAC check), multiplication rounds,
   triples taken, bytes VCP 0 sent, and its time in the program
   (``program_s``: products + MAC check) and in the whole execution
   (``elapsed_s``: + loading inputs, agreeing, storing the output).
   The product is checked by a second program (output ``reveal``) that opens
   the sum of its elements, and for n ≤ 10^5 also by downloading it.
2. **MPyC**, same machine, after the VC is stopped: ``bench/mpyc_workloads.py``
   as 3 local processes (``-M3 -I<i> -B<free port> --no-log``), the
   element-wise product of two secure arrays of ``mpc.SecFld(p)`` with vcpd's
   prime p; timed on party 0: ``c = a * b`` plus ``await mpc.output(c.sum())``
   (see that file), best of ``--repeat``, with the 3 parties' CPU time.
   Skipped with a note if ``mpyc`` is not importable (``pip install -e '.[bench]'``).
3. **Latency**: ``examples/add_two_secrets.mpc`` on two 1-element secrets,
   output a new secret; one ``run_program`` call per sample (the client and
   the VC already running), median and p90 of ``--samples`` after 3 warm-up
   runs. Each sample's result is downloaded (untimed) and checked.

Security models differ: vcpd is SPDZ with MACs (active security, dishonest
majority, online phase only: triples come from the dealer beforehand); MPyC is
Shamir secret sharing with t = 1 of 3 (passive security, honest majority, no
preprocessing needed for a product).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory would come first on sys.path and this
# file would shadow the standard library's 'secrets'; use the repo root instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import trio  # noqa: E402

from bench._common import local_vc, median_ms, mpyc_version, print_table, run_mpyc_parties, stamp
from vcpd.client import open_client

ROOT = Path(__file__).resolve().parent.parent
ADD_PROGRAM = ROOT / "examples" / "add_two_secrets.mpc"
MPYC_SCRIPT = Path(__file__).resolve().parent / "mpyc_workloads.py"
WARMUP = 3

PRODUCT = """# n products in one vector operation; the product becomes a new secret
N = {n}
listen(10000)
socket = regint()
acceptclientconnection(socket, 10000)
a = sint.read_from_socket(socket, 1, size=N)
b = sint.read_from_socket(socket, 1, size=N)
sint.write_to_socket(socket, a * b)
"""

CHECK_SUM = """# reveal the sum of one input secret of N elements (no products)
N = {n}
listen(10000)
socket = regint()
acceptclientconnection(socket, 10000)
c = Array.create_from(sint.read_from_socket(socket, 1, size=N))
sint.write_to_socket(socket, [c.sum()])
"""


def operands(n: int) -> tuple[list[int], list[int]]:
    """Small signed operands (the same as bench/mpyc_workloads.py)."""
    return [i % 1000 - 500 for i in range(n)], [(7 * i) % 1000 - 300 for i in range(n)]


def p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


# ---------------------------------------------------------------- vcpd


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU time of these processes (all their threads) so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime: stat fields 14, 15
    return user / ticks, system / ticks


async def vcpd_bench(
    config: Path, pids: list[int], sizes: list[int], repeat: int, samples: int
) -> tuple[list[list[object]], dict[int, tuple[float, float]], list[float], str]:
    """The table rows, {n: (best mults/s, CPU s)}, the latency samples, a note on the dealing."""
    async with open_client(config) as client:
        # Tuples for everything below, dealt before any clock starts: uploads take
        # 3 masks + 2 triples per element, downloads the same, a product 1 triple.
        uploaded = 2 * sum(sizes) + 2
        downloaded = sum(n for n in sizes if n <= 100_000) + samples + WARMUP
        masks = 3 * (uploaded + downloaded) + 10_000
        triples = 2 * (uploaded + downloaded) + repeat * sum(sizes) + 10_000
        started = time.perf_counter()
        for kind, count in (("mask", masks), ("triple", triples)):
            await client.wait_tuple_job(await client.generate_tuples(kind, count))
        dealt = f"dealt {masks:,} masks and {triples:,} triples in {time.perf_counter() - started:.1f} s"

        # Latency: a 2-input addition, one run_program call per sample.
        a = await client.create_secret([1234])
        b = await client.create_secret([-34])
        latencies: list[float] = []
        for i in range(WARMUP + samples):
            t0 = time.perf_counter()
            result = await client.run_program(ADD_PROGRAM, inputs=[a, b])
            elapsed = time.perf_counter() - t0
            (sum_id,) = result.secrets
            assert (await client.get_secret(sum_id)).values == [1200], "wrong sum"
            if i >= WARMUP:
                latencies.append(elapsed)

        # Throughput: n products in one vector operation, --repeat runs per n.
        rows: list[list[object]] = []
        best: dict[int, tuple[float, float]] = {}
        for n in sizes:
            xs, ys = operands(n)
            t0 = time.perf_counter()
            x_id = await client.create_secret(xs)
            y_id = await client.create_secret(ys)
            upload_s = time.perf_counter() - t0
            expected = sum(x * y for x, y in zip(xs, ys, strict=True))
            runs: list[tuple[float, tuple[float, float], dict[str, Any]]] = []
            for _ in range(repeat):
                before = (await client.tuple_stock())[0]["tuples"]["triple"]["consumed"]
                cpu0 = cpu_seconds(pids)
                t0 = time.perf_counter()
                result = await client.run_program(PRODUCT.format(n=n), inputs=[x_id, y_id])
                wall = time.perf_counter() - t0
                cpu1 = cpu_seconds(pids)
                cpu = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1])
                used = (await client.tuple_stock())[0]["tuples"]["triple"]["consumed"] - before
                stats: dict[str, Any] = dict(result.stats[0])
                assert used == n == stats["multiplications"], (used, stats)
                (product,) = result.secrets
                check = await client.run_program(CHECK_SUM.format(n=n), inputs=[product], output="reveal")
                assert check.values == ((expected,),), f"wrong sum of products: {check.values} != {expected}"
                if n <= 100_000 and not runs:  # download once per size
                    got = await client.get_secret(product)
                    assert got.values == [x * y for x, y in zip(xs, ys, strict=True)], "wrong products"
                runs.append((wall, cpu, stats))
            wall, cpu, stats = min(runs, key=lambda r: r[0])
            walls = [r[0] for r in runs]
            best[n] = (n / wall, cpu[0] + cpu[1])
            rows.append(
                [
                    f"{n:,}",
                    f"{wall:.3f}",
                    f"{n / wall:,.0f}",
                    f"{statistics.median(walls):.3f}" if repeat > 1 else "-",
                    f"{n / max(walls):,.0f}" if repeat > 1 else "-",
                    f"{cpu[0] + cpu[1]:.2f} ({cpu[0]:.2f}+{cpu[1]:.2f})",
                    stats["rounds"],
                    stats["mul_rounds"],
                    f"{stats['tuples'].get('triple', 0):,}",
                    f"{stats['bytes_sent'] / 1e6:.1f}",
                    f"{stats['program_s']:.3f}",
                    f"{stats['elapsed_s']:.3f}",
                    f"{upload_s:.1f}",
                ]
            )
        return rows, best, latencies, dealt


# ---------------------------------------------------------------- MPyC


def mpyc_bench(sizes: list[int], repeat: int, timeout: float) -> list[dict[str, Any]]:
    """Run the 3 MPyC parties; every party's JSON lines, checked."""
    args = ["--sizes", ",".join(map(str, sizes)), "--repeat", str(repeat)]
    results = run_mpyc_parties(MPYC_SCRIPT, args, timeout)
    assert len(results) == 3 * repeat * len(sizes) and all(r["ok"] for r in results), results
    return results


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (the best is reported)")
    parser.add_argument("--samples", type=int, default=30, help="latency samples")
    parser.add_argument("--no-mpyc", action="store_true", help="skip the MPyC rows")
    parser.add_argument("--mpyc-timeout", type=float, default=300.0, help="seconds for the MPyC run")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    total_started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with local_vc(3) as vc:
        pids = [process.pid for process in vc.processes.values()]
        rows, vcpd_best, latencies, dealt = trio.run(
            vcpd_bench, vc.client_config, pids, sizes, args.repeat, args.samples
        )

    mpyc_note = None if args.no_mpyc else mpyc_version()
    mpyc_runs: list[dict[str, Any]] = []
    mpyc_failure = None
    if mpyc_note is not None:
        try:
            mpyc_runs = mpyc_bench(sizes, args.repeat, args.mpyc_timeout)
        except (RuntimeError, AssertionError, subprocess.TimeoutExpired) as exc:
            mpyc_failure = f"(MPyC run failed: {exc})"
    load_after = os.getloadavg()[0]

    print(f"# executor, 3 VCPs (real daemons on 127.0.0.1), {stamp()}, {os.cpu_count()} cores")
    print(f"(1-min load average {load_before:.1f} at the start, {load_after:.1f} at the end; {dealt} before any clock)")
    print()
    print("## vcpd: n products in one vector operation; run_program end to end incl. the MAC check")
    print(f"(best of {args.repeat}; CPU s: all 3 daemons together during the best run, (user+system);")
    print(" rounds ... elapsed_s: VCP 0's execution statistics of the best run)")
    print_table(
        ["n", "wall s", "mults/s", "median s", "worst mults/s", "CPU s", "rounds", "mul rounds", "triples",
         "MB sent", "program_s", "elapsed_s", "upload a+b s"],
        rows,
    )
    print()
    print("## MPyC: the same products, 3 local processes; timed on party 0: c = a * b; await mpc.output(c.sum())")
    if mpyc_note is None:
        print("(skipped: mpyc is not importable; pip install -e '.[bench]')" if not args.no_mpyc else "(skipped)")
    elif mpyc_failure is not None:
        print(mpyc_failure)
    else:
        print(f"({mpyc_note}; mpc.SecFld(p) with vcpd's 128-bit prime p, Shamir t=1; best of {args.repeat};")
        print(" CPU s: all 3 parties together, time.process_time() around the timed part)")
        table = []
        for n in sizes:
            mine = [r for r in mpyc_runs if r["n"] == n and r["party"] == 0]
            best = min(mine, key=lambda r: r["seconds"])
            wall = best["seconds"]
            cpu = sum(r["cpu_s"] for r in mpyc_runs if r["n"] == n and r["run"] == best["run"])
            table.append(
                [
                    f"{n:,}",
                    f"{wall:.3f}",
                    f"{n / wall:,.0f}",
                    f"{statistics.median(r['seconds'] for r in mine):.3f}",
                    f"{cpu:.2f}",
                    f"{vcpd_best[n][0] / (n / wall):.1f}x",
                    f"{cpu / max(vcpd_best[n][1], 0.01):.1f}x",
                ]
            )
        print_table(
            ["n", "wall s", "mults/s", "median s", "CPU s", "vcpd/MPyC mults/s", "MPyC/vcpd CPU s"], table
        )
    print()
    print("## latency: examples/add_two_secrets.mpc, two 1-element inputs, output a new secret")
    print_table(
        ["samples", "median ms", "p90 ms", "min ms", "max ms"],
        [
            [
                len(latencies),
                median_ms(latencies),
                f"{p90(latencies) * 1000:.1f}",
                f"{min(latencies) * 1000:.1f}",
                f"{max(latencies) * 1000:.1f}",
            ]
        ],
    )
    whole = time.perf_counter() - total_started
    print(f"(one run_program call per sample, after {WARMUP} warm-up runs; whole bench {whole:.0f} s)")


if __name__ == "__main__":
    main()
