"""One MPyC party of the executor comparison (bench/executor.py runs three).

    python bench/mpyc_workloads.py -M3 -I<i> -B<base port> --no-log [--sizes 100000,1000000]

Each party runs the same program: for every size n, party 0 inputs a secure
array a and party 1 a secure array b of n elements of the secure prime field
``mpc.SecFld(p)`` with vcpd's prime p (MPyC's numpy-style ``secfld.array``
holding Shamir shares, threshold t = 1 of 3 parties, passive security),
then ``--repeat`` times: the parties sync with one output, and every party
times

    c = a * b                                # n products: one resharing round
    total = await mpc.output(c.sum())        # local sum, one opening to all

i.e. the element-wise product of two secure arrays plus the output of the sum
of the products (the sum is local, so it only adds one opening of one field
element; awaiting it forces the whole product to be computed and reshared by
all three parties). Inputs and the sync are outside the clock. Every party
prints one JSON line per run: ``{"party", "n", "run", "seconds", "cpu_s", "ok"}``
(``time.perf_counter`` and ``time.process_time`` around the timed part; ``ok``
is the check of the opened sum against the plaintext). The figure to report
is party 0's ``seconds``.

MPyC's own options (``-M``, ``-I``, ``-B``, ``--no-log``, ...) are parsed by
MPyC; this script's options are the rest.
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

PRIME = 198766463529478683931867765928436695041  # vcpd's field (vcpd.math)


def operands(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The same small signed operands the vcpd side multiplies (as field elements)."""
    i = np.arange(n, dtype=np.int64)
    xs = i % 1000 - 500
    ys = (7 * i) % 1000 - 300
    return xs, ys


async def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=1)
    args, _ = parser.parse_known_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    secfld = mpc.SecFld(PRIME)
    assert secfld.field.order == PRIME
    await mpc.start()
    for n in sizes:
        xs, ys = operands(n)
        field_xs = np.array([int(x) % PRIME for x in xs], dtype=object)
        field_ys = np.array([int(y) % PRIME for y in ys], dtype=object)
        # Party 0 inputs a, party 1 inputs b (the other parties pass placeholders).
        a = mpc.input(secfld.array(field_xs if mpc.pid == 0 else np.zeros(n, dtype=object)), senders=0)
        b = mpc.input(secfld.array(field_ys if mpc.pid == 1 else np.zeros(n, dtype=object)), senders=1)
        await mpc.gather(a, b)
        expected = int(np.dot(xs, ys)) % PRIME  # |sum| < 2^63 for n <= 10^7
        for run in range(args.repeat):
            await mpc.output(secfld(0))  # sync the parties before the clock starts
            start, cpu = time.perf_counter(), time.process_time()
            c = a * b
            total = await mpc.output(c.sum())
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            ok = int(total.value) % PRIME == expected
            line = {"party": mpc.pid, "n": n, "run": run, "seconds": seconds, "cpu_s": cpu, "ok": ok}
            print(json.dumps(line), flush=True)
    await mpc.shutdown()


if __name__ == "__main__":
    mpc.run(main())
