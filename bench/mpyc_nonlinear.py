"""One MPyC party of the non-linear comparison (bench/nonlinear.py runs three).

    python bench/mpyc_nonlinear.py -M3 -I<i> -B<base port> --no-log [--elements 1000]

Each party runs the same program on the same workloads as the vcpd side, with
MPyC's own secure types and primes (MPyC picks a prime per type, |p| ≈ l + κ + 2
bits; it cannot use vcpd's 128-bit prime for comparisons of 64-bit values
without changing its security parameter):

* ``lt``:  ``mpc.SecInt(64)`` arrays a, b of n elements; ``a < b``
  (Toft-style comparison, vectorised over the array);
* ``eq``:  the same arrays; ``a == b`` (MPyC's zero test);
* ``fxmul``: ``mpc.SecFxp(32, 16)`` arrays (16 fractional bits like sfix);
  ``a * b`` (a product and a truncation).

Party 0 inputs the arrays; each workload is timed on every party from a sync
(one output) to the awaited output of the whole result vector, and checked
against the plaintext. Every party prints one JSON line per workload:
``{"party", "op", "n", "seconds", "cpu_s", "ok", "prime_bits"}``. MPyC is
passively secure with t = 1 of 3 (honest majority), with no preprocessing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# Run as a script, this file's directory would come first on sys.path and this
# file would shadow the standard library's 'secrets'; use the repo root instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import numpy as np  # noqa: E402
from mpyc.runtime import mpc  # noqa: E402


def operands(n: int, seed: int = 7) -> tuple[list[int], list[int]]:
    """Signed 63-bit operands, every fourth pair equal (so == is sometimes true)."""
    rng = np.random.default_rng(seed)
    xs = [int(v) for v in rng.integers(-(2**62), 2**62, n)]
    ys = [int(v) for v in rng.integers(-(2**62), 2**62, n)]
    for i in range(0, n, 4):
        ys[i] = xs[i]
    return xs, ys


async def timed(op: str, n: int, work, check, prime_bits: int) -> None:  # type: ignore[no-untyped-def]
    await mpc.output(mpc.SecInt(8)(0))  # sync the parties before the clock starts
    start, cpu = time.perf_counter(), time.process_time()
    result = await work()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    line = {"party": mpc.pid, "op": op, "n": n, "seconds": seconds, "cpu_s": cpu, "ok": bool(check(result))}
    line["prime_bits"] = prime_bits
    print(json.dumps(line), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--elements", type=int, default=1000)
    parser.add_argument("--ops", default="lt,eq,fxmul")
    args, _ = parser.parse_known_args()
    n, ops = args.elements, args.ops.split(",")
    await mpc.start()
    xs, ys = operands(n)
    secint = mpc.SecInt(64)
    zeros = np.zeros(n, dtype=object)
    a = mpc.input(secint.array(np.array(xs, dtype=object) if mpc.pid == 0 else zeros), senders=0)
    b = mpc.input(secint.array(np.array(ys, dtype=object) if mpc.pid == 0 else zeros), senders=0)
    await mpc.gather(a, b)  # inputs are outside the clock
    int_bits = secint.field.order.bit_length()
    if "lt" in ops:
        less = [int(x < y) for x, y in zip(xs, ys)]
        await timed("lt", n, lambda: mpc.output(a < b), lambda r: [int(v) for v in r] == less, int_bits)
    if "eq" in ops:
        equal = [int(x == y) for x, y in zip(xs, ys)]
        await timed("eq", n, lambda: mpc.output(a == b), lambda r: [int(v) for v in r] == equal, int_bits)
    if "fxmul" in ops:
        secfxp = mpc.SecFxp(32, 16)
        rng = np.random.default_rng(3)
        fx = rng.uniform(-100, 100, n)
        fy = rng.uniform(-100, 100, n)
        # Non-senders pass placeholders; all-integral floats (np.zeros) would make
        # MPyC 0.11 encode them as integers, unscaled, and the parties disagree.
        dummy = np.full(n, 0.5)
        fa = mpc.input(secfxp.array(fx if mpc.pid == 0 else dummy), senders=0)
        fb = mpc.input(secfxp.array(fy if mpc.pid == 0 else dummy), senders=0)
        await mpc.gather(fa, fb)
        expected = fx * fy

        def close(result) -> bool:  # type: ignore[no-untyped-def]
            return bool(np.all(np.abs(np.asarray(result, dtype=float) - expected) < 0.01))

        await timed("fxmul", n, lambda: mpc.output(fa * fb), close, secfxp.field.order.bit_length())
    await mpc.shutdown()


if __name__ == "__main__":
    mpc.run(main())
