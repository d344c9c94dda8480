"""Shared helpers for the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from vcpd.procvc import LocalVc, make_local_vc


@contextmanager
def local_vc(n_parties: int = 3, offline: str = "dealer") -> Iterator[LocalVc]:
    """A fresh local VC of real daemons in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="vcpd-bench-") as tmp:
        vc = make_local_vc(Path(tmp), n_parties=n_parties, offline=offline)
        try:
            vc.wait_healthy()
            yield vc
        finally:
            vc.stop_all()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def median_ms(samples: Sequence[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f}"


def stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime())
