"""End to end on a ``mascot`` VC: real `vcpd` daemons make their tuples with the
secure offline phase (no dealer), then clients upload secrets, run programs
with multiplications and a comparison on them and download correct results.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcpd.config import load_vcp_config
from vcpd.keys import load_mac_key
from vcpd.math.field import PrimeField
from vcpd.procvc import LocalVc, make_local_vc
from vcpd.services.generator import MASCOT_STATE_FILE

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"

MILLIONAIRES = """listen(10000)
socket_id = regint()
acceptclientconnection(socket_id, 10000)
v = sint.read_from_socket(socket_id, 2)
result = v[0] < v[1]
resp = Array(1, sint)
resp[0] = result
sint.write_to_socket(socket_id, resp)
"""


@pytest.fixture
def vc(tmp_path: Path) -> Iterator[LocalVc]:
    local = make_local_vc(tmp_path, n_parties=2, offline="mascot")
    try:
        local.wait_healthy()
        yield local
    finally:
        codes = local.stop_all()
        assert all(code == 0 for code in codes.values()), f"unclean shutdown: {codes}"


def vcpctl(vc: LocalVc, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "vcpctl", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "VCPCTL_VC": str(vc.client_config)},
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def generate(vc: LocalVc, kind: str, count: int) -> dict:
    result = json.loads(vcpctl(vc, "tuples", "generate", kind, str(count), "--json"))
    assert result["state"] == "completed", result
    return result


def test_mascot_vc_generates_tuples_and_runs_programs(vc: LocalVc) -> None:
    for entry in json.loads(vcpctl(vc, "status", "--json"))["vcps"]:
        assert entry["offline"] == "mascot" and entry["insecure_offline"] is False

    generate(vc, "mask", 1000)  # runs the setup first (base OTs), once for the VC
    timed = generate(vc, "triple", 4096)
    print(f"mascot, 2 real daemons: {4096 / timed['seconds']:,.0f} triples/s")  # noqa: T201 (shown with -s)
    generate(vc, "bit", 300)  # a comparison takes ~65 bits, 1 bounded value and ~90 triples
    generate(vc, "bounded", 4)
    stock = json.loads(vcpctl(vc, "tuples", "stock", "--json"))
    for kind, count in (("triple", 4096), ("mask", 1000), ("bit", 300), ("bounded", 4)):
        assert [v["tuples"][kind]["available"] for v in stock["vcps"]] == [count, count]
    jobs = json.loads(vcpctl(vc, "tuples", "jobs", "--json"))["jobs"]
    assert [(j["kind"], j["state"], j["error"]) for j in jobs] == [
        ("bounded", "completed", None), ("bit", "completed", None), ("triple", "completed", None),
        ("mask", "completed", None),
    ]

    # Each VCP persisted its setup 0600 beside its own α_i, and holds nobody else's α_i.
    configs = [load_vcp_config(vc.directory / f"vcp{i}.toml") for i in range(2)]
    field = PrimeField(configs[0].vc.prime)
    alphas = [load_mac_key(c.data_dir / "mac_key", field.p).share for c in configs]
    for i, config in enumerate(configs):
        path = config.data_dir / MASCOT_STATE_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        other = alphas[1 - i]
        encodings = [field.from_ints([other]).to_bytes(), other.to_bytes(16, "little"), other.to_bytes(16, "big"), str(other).encode()]
        for name in (path, config.store_path):
            data = name.read_bytes()
            assert not any(e in data for e in encodings), f"VCP {i}'s {name.name} holds VCP {1 - i}'s α_i"
        assert str(other) not in vc.log(i)

    x = vcpctl(vc, "secrets", "create", "--", "3", "-1", "4", "1", "5", "-9", "2", "6").strip()
    (stats,) = vcpctl(vc, "run", str(EXAMPLES / "mean_variance.mpc"), "--input", x).split()  # one write: one secret
    squares = sum(v * v for v in (3, -1, 4, 1, 5, -9, 2, 6))  # 8 products, as sum(x)^2 is one more
    assert json.loads(vcpctl(vc, "secrets", "get", stats, "--json"))["values"] == [11, 8 * squares - 11 * 11]

    a = vcpctl(vc, "secrets", "create", "--", "1", "2", "3", "-4").strip()
    b = vcpctl(vc, "secrets", "create", "--", "5", "-6", "7", "8").strip()
    (dot,) = vcpctl(vc, "run", str(EXAMPLES / "dot_product.mpc"), "--input", a, "--input", b).split()
    assert json.loads(vcpctl(vc, "secrets", "get", dot, "--json"))["values"] == [5 - 12 + 21 - 32]

    program = vc.directory / "millionaires.mpc"
    program.write_text(MILLIONAIRES)
    for first, second, richer in ((10, 20, 1), (7, -3, 0)):
        pair = vcpctl(vc, "secrets", "create", "--", str(first), str(second)).strip()
        (result,) = vcpctl(vc, "run", str(program), "--input", pair).split()
        assert json.loads(vcpctl(vc, "secrets", "get", result, "--json"))["values"] == [richer]

    # A restarted VCP reloads its setup: the next job runs without a new one.
    vc.stop(1)
    vc.start(1)
    vc.wait_healthy(timeout=30)
    generate(vc, "triple", 300)
    for i in range(2):
        log = vc.log(i)
        assert log.count("MASCOT setup done") == 1, log
    assert "loaded the MASCOT setup" in vc.log(1)
