"""Throughput of FieldArray arithmetic against plain Python ints.

Run ``python bench/field.py`` for the acceptance table (element-wise mul and add
at n = 10^3, 10^5, 10^6, best of several runs, in M elements/s), or
``python bench/field.py --crossover`` for the small-batch comparison behind
``vcpd.math.array.SMALL_THRESHOLD`` (numpy kernel vs CPython ints at equal n).

Timings are wall-clock ``time.perf_counter``, best of ``--repeat`` runs; on a
shared VM expect ±30 % between runs. The script asserts nothing.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

# Run as a script, bench/ would come first on sys.path and bench/secrets.py would
# shadow the standard library's 'secrets': put the repository root there instead.
_sys.path[0] = str(_Path(__file__).resolve().parent.parent)

import argparse
import time
from collections.abc import Callable

import numpy as np

from vcpd.math import PrimeField
from vcpd.math.array import SMALL_THRESHOLD


def best_seconds(fn: Callable[[], object], repeat: int, inner: int = 1) -> float:
    """The fastest of ``repeat`` runs of ``inner`` calls, per call."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - start) / inner)
    return best


def throughput_rows(field: PrimeField, n: int, repeat: int) -> list[str]:
    """Table rows for one n: FieldArray and list comprehensions on the same values."""
    p = field.p
    a, b = field.random(n), field.random(n)
    xs, ys = a.to_ints(), b.to_ints()
    inner = max(1, 100_000 // n)
    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("mul", lambda: a * b, lambda: [(x * y) % p for x, y in zip(xs, ys)]),
        ("add", lambda: a + b, lambda: [(x + y) % p for x, y in zip(xs, ys)]),
    ]
    rows = []
    for name, vectorised, python in cases:
        fast = n / best_seconds(vectorised, repeat, inner) / 1e6
        slow = n / best_seconds(python, repeat, inner) / 1e6
        rows.append(f"{n:>9} {name:>4} {fast:>11.1f} {slow:>11.1f} {fast / slow:>7.1f}x")
    return rows


def crossover_row(field: PrimeField, n: int, repeat: int) -> str:
    """Both internal paths at the same n, bypassing the length-based dispatch."""
    p, r, kernel = field.p, field.r, field._kernel
    a, b = field.random(n), field.random(n)
    x = np.frombuffer(a.to_bytes(), "<u8").reshape(n, 2).T.copy()
    y = np.frombuffer(b.to_bytes(), "<u8").reshape(n, 2).T.copy()
    xs, ys = a.to_ints(), b.to_ints()
    inner = max(3, 20_000 // n)
    paths: tuple[Callable[[], object], ...] = (
        lambda: kernel.mul(x, y, np.empty((2, n), np.uint64)),
        lambda: [(u * v) % p for u, v in zip(xs, ys)],
        lambda: kernel.add(x, y, np.empty((2, n), np.uint64)),
        lambda: [s - p if (s := u + v) >= p else s for u, v in zip(xs, ys)],
        lambda: x.T.tobytes(),
        lambda: b"".join([(u * r % p).to_bytes(16, "little") for u in xs]),
    )
    micros = [1e6 * best_seconds(fn, repeat, inner) for fn in paths]
    return f"{n:>6} " + " ".join(f"{v:>9.1f}" for v in micros)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crossover", action="store_true", help="compare the two internal paths at small n")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (best is kept)")
    args = parser.parse_args()
    field = PrimeField()
    if args.crossover:
        print(f"µs per call (best of {args.repeat}); SMALL_THRESHOLD = {SMALL_THRESHOLD}")
        print(
            f"{'n':>6} " + " ".join(f"{h:>9}" for h in ("mul np", "mul py", "add np", "add py", "bytes np", "bytes py"))
        )
        for n in (16, 64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 4096):
            print(crossover_row(field, n, args.repeat))
    else:
        print(f"p = {field.p:#x}; FieldArray vs Python ints, M elements/s (best of {args.repeat})")
        print(f"{'n':>9} {'op':>4} {'FieldArray':>11} {'Python int':>11} {'speedup':>8}")
        for n in (10**3, 10**5, 10**6):
            print("\n".join(throughput_rows(field, n, args.repeat)))


if __name__ == "__main__":
    main()
