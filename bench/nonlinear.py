"""Non-linear operations in programs on a local VC of real daemons, and the same in MPyC.

    python bench/nonlinear.py [--elements 100000] [--repeat 1] [--mpyc-elements 1000] [--no-mpyc]

One run, three tables:

1. **vcpd**: a 3-VCP local VC (separate ``vcpd start`` processes, real
   websockets on 127.0.0.1). First the dealer generates every tuple the run
   needs (counted with the protocols' ``cost_*`` functions, so the stock is
   exact; the time is reported, not part of any rate), then four secrets of
   n elements are uploaded (verified upload): a, b (signed 64-bit integers,
   every fourth pair equal) and x, y (reals with the fixed encoding, f = 16).
   Each workload is one ``Client.run_program`` call, output ``reveal``:

       a < b     a = sint.read_from_socket(s, 1, size=N); ...; sint.write_to_socket(s, a < b)
       a == b    the same with a == b
       sfix x*y  x = sfix.read_from_socket(s, 1, size=N); ...; sfix.write_to_socket(s, x * y)

   i.e. n operations as one vector program (one reservation, the rounds of
   one operation, the batched MAC check, then the one round that reveals the
   n results to the client). Timed: the call end to end on the client
   (request to every VCP, loading the inputs, agreement, taking the tuples
   from SQLite, the protocol, the MAC check, the reveal, the answers); the
   results are checked against Python. With ``--repeat R`` each workload runs
   R times on the same daemons and the row shows the best run (``first s``:
   the first run's time, which pays the page faults of a daemon's first big
   vectors). The row also shows VCP 0's
   statistics: protocol rounds without the reveal, tuples per operation,
   MB VCP 0 sent, its time in the program (``program_s``) and the part of
   it spent reserving and taking the tuples from its store (``tuples s``).
2. **MPyC**, same machine, after the VC is stopped:
   ``bench/mpyc_nonlinear.py`` as 3 local processes on ``--mpyc-elements``
   elements (MPyC's vectorised secure arrays; its comparisons run at ~100/s
   here, so 10^5 would take ~20 minutes): ``mpc.SecInt(64)`` ``a < b`` and
   ``a == b`` and ``mpc.SecFxp(32, 16)`` ``x * y``, each with MPyC's own prime
   for the type (96 and 80 bits); timed on party 0 until the output of the
   whole vector. Rates are per second, so the columns compare.
3. **Rounds and tuples per operation**, vcpd next to mpc-notes §3.6 (MP-SPDZ's
   defaults).

Security models differ: vcpd is SPDZ with MACs (active security, dishonest
majority; online phase only, tuples from the dealer beforehand); MPyC is
Shamir secret sharing with t = 1 of 3 (passive, honest majority, no
preprocessing).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory would come first on sys.path and this
# file would shadow the standard library's 'secrets'; use the repo root instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import trio  # noqa: E402

from bench._common import local_vc, mpyc_version, print_table, run_mpyc_parties, stamp
from vcpd.client import open_client
from vcpd.protocol.nonlinear import cost

MPYC_SCRIPT = Path(__file__).resolve().parent / "mpyc_nonlinear.py"
PROLOGUE = "listen(10000)\nsocket = regint()\nacceptclientconnection(socket, 10000)\n"
F = 16
KAPPA = 40

PROGRAMS = {
    "a < b": "a = sint.read_from_socket(socket, 1, size={n})\nb = sint.read_from_socket(socket, 1, size={n})\n"
    "sint.write_to_socket(socket, a < b)\n",
    "a == b": "a = sint.read_from_socket(socket, 1, size={n})\nb = sint.read_from_socket(socket, 1, size={n})\n"
    "sint.write_to_socket(socket, a == b)\n",
    "sfix x*y": "x = sfix.read_from_socket(socket, 1, size={n})\ny = sfix.read_from_socket(socket, 1, size={n})\n"
    "sfix.write_to_socket(socket, x * y)\n",
}
MPYC_OPS = {"a < b": "lt", "a == b": "eq", "sfix x*y": "fxmul"}
TARGETS = {"a < b": 10_000, "a == b": None, "sfix x*y": 100_000}


def costs(n: int) -> dict[str, cost.Cost]:
    """What each workload draws, per the protocols' cost functions (as the engine reserves)."""
    return {
        "a < b": cost.cost_ltz(n, 65, KAPPA, cost.resolve_bitlt("auto", n, 64)),
        "a == b": cost.cost_eqz(n, 64, KAPPA),
        "sfix x*y": cost.tuples(1, triple=n) + cost.cost_trunc_pr(n, 31 + F, F, KAPPA),
    }


def operands(n: int) -> tuple[list[int], list[int], list[float], list[float]]:
    rng = random.Random(1)
    xs = [rng.randrange(-(2**63), 2**63) for _ in range(n)]
    ys = [x if i % 4 == 0 else rng.randrange(-(2**63), 2**63) for i, x in enumerate(xs)]
    fx = [rng.uniform(-100, 100) for _ in range(n)]
    fy = [rng.uniform(-100, 100) for _ in range(n)]
    return xs, ys, fx, fy


def signed(values: Any) -> list[int]:
    return [int(v) for v in values]


# ---------------------------------------------------------------- vcpd


async def vcpd_bench(config: Path, n: int, repeat: int) -> tuple[list[dict[str, Any]], str]:
    workloads = costs(n)
    # verified uploads of 4 secrets (a triple per element); every kind gets some slack, so that no generation
    # job is used up (and retired: its chunks deleted from the store, inside the taking transaction) during a
    # timed run
    needs: dict[str, int] = {"mask": 1000, "triple": 4 * n + 1000, "bit": 1000}
    for c in workloads.values():
        for kind, count in c.needs.items():
            if count:
                needs[kind] = needs.get(kind, 0) + repeat * count
    async with open_client(config) as client:
        started = time.perf_counter()
        for kind in needs:
            await client.wait_tuple_job(await client.generate_tuples(kind, needs[kind]))
        dealt = ", ".join(f"{needs[k]:,} {k}" for k in ("triple", "bit", "bounded", "mask") if k in needs)
        dealt = f"dealer: {dealt} in {time.perf_counter() - started:.0f} s"

        xs, ys, fx, fy = operands(n)
        started = time.perf_counter()
        a = await client.create_secret(xs)
        b = await client.create_secret(ys)
        x = await client.create_secret(fx, encoding="fixed", fraction_bits=F)
        y = await client.create_secret(fy, encoding="fixed", fraction_bits=F)
        dealt += f"; upload of 4 x {n:,} elements {time.perf_counter() - started:.0f} s"
        rx = [round(v * (1 << F)) for v in fx]
        ry = [round(v * (1 << F)) for v in fy]

        rows = []
        for name, template in PROGRAMS.items():
            inputs = [a, b] if name != "sfix x*y" else [x, y]
            walls = []
            for _ in range(repeat):
                before = (await client.tuple_stock())[0]["tuples"]
                t0 = time.perf_counter()
                result = await client.run_program(PROLOGUE + template.format(n=n), inputs=inputs, output="reveal")
                walls.append(time.perf_counter() - t0)
                after = (await client.tuple_stock())[0]["tuples"]
                if walls[-1] == min(walls):
                    best = result, before, after
            result, before, after = best
            got = signed(result.values[0])
            if name == "a < b":
                assert got == [int(p < q) for p, q in zip(xs, ys, strict=True)], "wrong comparison"
            elif name == "a == b":
                assert got == [int(p == q) for p, q in zip(xs, ys, strict=True)], "wrong equality"
            else:
                assert all(abs(g - p * q / (1 << F)) < 1 for g, p, q in zip(got, rx, ry, strict=True)), "wrong sfix"
            stats: dict[str, Any] = dict(result.stats[0])
            used = {k: after[k]["consumed"] - before[k]["consumed"] for k in after}
            expected = {k: v for k, v in workloads[name].needs.items() if v}
            assert stats["tuples"] == expected, (stats["tuples"], expected)
            assert {k: v for k, v in used.items() if v} == expected, (used, expected)
            rows.append({"name": name, "wall": min(walls), "first": walls[0], "stats": stats, "cost": workloads[name]})
        return rows, dealt


# ---------------------------------------------------------------- MPyC


def mpyc_bench(n: int, timeout: float) -> list[dict[str, Any]]:
    results = run_mpyc_parties(MPYC_SCRIPT, ["--elements", str(n)], timeout)
    assert len(results) == 3 * len(MPYC_OPS) and all(r["ok"] for r in results), results
    return results


# ---------------------------------------------------------------- main


NOTES_36 = {  # mpc-notes §3.6 (MP-SPDZ defaults, -c log): rounds, triples, bits
    "a < b": ("7", "≈128", "105"),
    "a == b": ("7", "63", "104"),
    "sfix x*y": ("2", "1", "87"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=100_000, help="operations per vcpd workload")
    parser.add_argument("--mpyc-elements", type=int, default=1000, help="operations per MPyC workload")
    parser.add_argument("--repeat", type=int, default=1, help="runs per vcpd workload (the best is shown)")
    parser.add_argument("--no-mpyc", action="store_true", help="skip the MPyC rows")
    parser.add_argument("--mpyc-timeout", type=float, default=240.0)
    args = parser.parse_args()
    n = args.elements

    total_started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with local_vc(3) as vc:
        rows, dealt = trio.run(vcpd_bench, vc.client_config, n, args.repeat)

    mpyc_note = None if args.no_mpyc else mpyc_version()
    mpyc_runs: list[dict[str, Any]] = []
    if mpyc_note is not None:
        mpyc_runs = mpyc_bench(args.mpyc_elements, args.mpyc_timeout)
    load_after = os.getloadavg()[0]

    print(f"# non-linear operations, 3 VCPs (real daemons on 127.0.0.1), {stamp()}, {os.cpu_count()} cores")
    print(f"(1-min load average {load_before:.1f} at the start, {load_after:.1f} at the end;")
    print(f" {dealt}, before any clock)")
    print()
    best = f", best of {args.repeat} runs" if args.repeat > 1 else ""
    print(f"## vcpd: n = {n:,} operations in one program; run_program end to end (output reveal), incl. the MAC check{best}")
    table = []
    for row in rows:
        stats, c = row["stats"], row["cost"]
        tuples = stats["tuples"]
        rate = n / row["wall"]
        target = TARGETS[row["name"]]
        table.append(
            [
                row["name"],
                f"{n:,}",
                f"{row['wall']:.2f}",
                f"{row['first']:.2f}",
                f"{rate:,.0f}",
                f"{target:,}" if target else "-",
                f"{stats['program_s']:.2f}",
                f"{stats['reserve_s']:.2f}",
                stats["open_rounds"] - 1,
                stats["flushes"],
                f"{tuples.get('triple', 0) / n:.1f}",
                f"{tuples.get('bit', 0) / n:.1f}",
                f"{tuples.get('bounded', 0) / n:.1f}",
                f"{tuples.get('mask', 0) / n:.1f}",
                f"{stats['bytes_sent'] / 1e6:.0f}",
            ]
        )
        if stats["flushes"] == 1:  # a long operation runs in blocks (engine.BLOCK_TUPLES), one flush each
            assert stats["open_rounds"] - 1 == c.rounds
    print_table(
        ["op", "n", "wall s", "first s", "ops/s", "target/s", "program_s", "tuples s", "rounds", "blocks", "triples/op", "bits/op",
         "bounded/op", "masks/op", "MB sent"],
        table,
    )
    print("(VCP 0's statistics: program_s = its time in the program, of which tuples s = reserving and taking the")
    print(" tuples from its store; rounds = protocol opening rounds, without the reveal and the MAC check)")
    print()
    print(f"## MPyC: the same operations, 3 local processes, n = {args.mpyc_elements:,} (rates per second compare)")
    if mpyc_note is None:
        print("(skipped: mpyc is not importable; pip install -e '.[bench]')" if not args.no_mpyc else "(skipped)")
    else:
        print(f"({mpyc_note}; Shamir t=1; MPyC's own prime per type; timed on party 0 until the output)")
        vcpd_rate = {row["name"]: n / row["wall"] for row in rows}
        mtable = []
        for name, op in MPYC_OPS.items():
            mine = next(r for r in mpyc_runs if r["op"] == op and r["party"] == 0)
            cpu = sum(r["cpu_s"] for r in mpyc_runs if r["op"] == op)
            rate = args.mpyc_elements / mine["seconds"]
            kind = "SecInt(64)" if op != "fxmul" else "SecFxp(32, 16)"
            mtable.append(
                [name, kind, f"{mine['prime_bits']}", f"{args.mpyc_elements:,}", f"{mine['seconds']:.2f}",
                 f"{rate:,.0f}", f"{cpu:.2f}", f"{vcpd_rate[name] / rate:,.0f}x"]
            )  # fmt: skip
        print_table(["op", "MPyC type", "prime bits", "n", "wall s", "ops/s", "CPU s", "vcpd / MPyC"], mtable)
    print()
    print("## rounds and tuples per operation: vcpd (this run) next to mpc-notes §3.6 (MP-SPDZ defaults)")
    rtable = []
    for row in rows:
        c = row["cost"]
        notes = NOTES_36[row["name"]]
        per = {k: v / n for k, v in c.needs.items() if v}
        rtable.append(
            [row["name"], *notes, c.rounds, f"{per.get('triple', 0):.0f}", f"{per.get('bit', 0):.0f}",
             f"{per.get('bounded', 0):.0f}", f"{per.get('mask', 0):.0f}"]
        )  # fmt: skip
    tree = cost.cost_ltz(1, 65, KAPPA, "tree")
    tree_row = [tree.rounds, tree.needs["triple"], tree.needs["bit"], tree.needs["bounded"], 0]
    rtable.append(["a < b, n < 256 (tree)", *NOTES_36["a < b"], *tree_row])
    print_table(
        ["op", "§3.6 rounds", "§3.6 triples", "§3.6 bits", "vcpd rounds", "vcpd triples", "vcpd bits", "vcpd bounded",
         "vcpd masks"],
        rtable,
    )
    print(f"(whole bench {time.perf_counter() - total_started:.0f} s)")


if __name__ == "__main__":
    main()
