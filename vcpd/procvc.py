"""A real local VC as separate `vcpd start` processes on 127.0.0.1.

For end-to-end tests and benchmarks: each daemon is its own process with its
own SQLite file, talking over real websockets, exactly as
`scripts/run_local_vc.sh` runs them. Production code never imports this.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from vcpd.client import probe_vc
from vcpd.config import load_client_config
from vcpd.vcinit import init_local_vc

READY_TIMEOUT = 60.0  # seconds for every daemon to be up and linked


def free_base_port(n_parties: int) -> int:
    """A base port P such that P .. P+2n-1 are all free right now."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + 2 * n_parties >= 65000:
            continue
        sockets = []
        try:
            for port in range(base, base + 2 * n_parties):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port range")


@dataclass
class LocalVc:
    """Daemons of a local VC: start/stop them, wait until healthy, read logs."""

    directory: Path
    n_parties: int
    offline: str
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def client_config(self) -> Path:
        return self.directory / "client.toml"

    def log(self, party: int) -> str:
        path = self.directory / "logs" / f"vcp{party}.log"
        return path.read_text() if path.exists() else ""

    def start(self, party: int) -> None:
        (self.directory / "logs").mkdir(exist_ok=True)
        with open(self.directory / "logs" / f"vcp{party}.log", "ab") as log:
            self.processes[party] = subprocess.Popen(
                [sys.executable, "-m", "vcpd", "start", "--config", str(self.directory / f"vcp{party}.toml")],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def stop(self, party: int, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        process = self.processes.pop(party)
        process.send_signal(sig)
        return process.wait(timeout)

    def stop_all(self) -> dict[int, int]:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        codes = {party: process.wait(20) for party, process in self.processes.items()}
        self.processes.clear()
        return codes

    def wait_healthy(self, timeout: float = READY_TIMEOUT) -> list[dict]:
        deadline = time.monotonic() + timeout
        config = load_client_config(self.client_config)
        while True:
            for party, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"vcp{party} exited with {process.returncode}:\n{self.log(party)}")
            statuses = trio.run(probe_vc, config)
            if all(s.reachable and all(v == "up" for v in s.info.get("links", {}).values()) for s in statuses):
                return [s.as_dict() for s in statuses]
            if time.monotonic() > deadline:
                raise RuntimeError(f"VC not healthy in {timeout} s: {[s.as_dict() for s in statuses]}")
            time.sleep(0.2)


def make_local_vc(directory: Path, n_parties: int = 3, offline: str = "dealer") -> LocalVc:
    """Write a VC on free ports under ``directory``/vc and start every daemon."""
    base = free_base_port(n_parties)
    local = init_local_vc(directory / "vc", parties=n_parties, base_port=base, offline=offline)
    vc = LocalVc(directory=local.directory, n_parties=n_parties, offline=offline)
    for party in range(n_parties):
        vc.start(party)
    return vc
