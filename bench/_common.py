"""Shared helpers for the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vcpd.procvc import LocalVc, free_base_port, make_local_vc


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


def mpyc_version() -> str | None:
    """MPyC's version and what it runs on, or None if it is not installed."""
    if importlib.util.find_spec("mpyc") is None:
        return None
    gmpy2 = "with gmpy2" if importlib.util.find_spec("gmpy2") is not None else "without gmpy2"
    return f"MPyC {importlib.metadata.version('mpyc')} ({gmpy2}, numpy {importlib.metadata.version('numpy')})"


def run_mpyc_parties(script: Path, args: Sequence[str], timeout: float) -> list[dict[str, Any]]:
    """Run ``script`` as 3 local MPyC parties; every party's JSON lines (raises if one fails)."""
    base = free_base_port(3)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(script), "-M3", "-B", str(base), "--no-log", *args]
    processes = [
        subprocess.Popen([*command, "-I", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for i in (2, 1, 0)
    ]
    outputs: list[tuple[str, str]] = []
    try:
        deadline = time.monotonic() + timeout
        for process in processes:
            outputs.append(process.communicate(timeout=max(1.0, deadline - time.monotonic())))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_, err) in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"an MPyC party exited with {process.returncode}:\n{err}")
    return [json.loads(line) for out, _ in outputs for line in out.splitlines() if line.startswith("{")]
