"""End to end: real `vcpd` processes, real websockets on 127.0.0.1, real SQLite files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcpd.procvc import LocalVc, make_local_vc

pytestmark = pytest.mark.slow


@pytest.fixture
def vc(tmp_path: Path) -> Iterator[LocalVc]:
    local = make_local_vc(tmp_path, n_parties=3)
    try:
        local.wait_healthy()
        yield local
    finally:
        codes = local.stop_all()
        assert all(code == 0 for code in codes.values()), f"unclean shutdown: {codes}"


def vcpctl(vc: LocalVc, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "vcpctl", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "VCPCTL_VC": str(vc.client_config)},
    )
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def test_status_shows_every_vcp_linked(vc: LocalVc) -> None:
    data = json.loads(vcpctl(vc, "status", "--json").stdout)
    assert [v["party"] for v in data["vcps"]] == [0, 1, 2]
    for entry in data["vcps"]:
        assert entry["reachable"] is True
        assert entry["offline"] == "dealer" and entry["insecure_offline"] is True
        assert entry["version"]
        others = {str(p) for p in range(3) if p != entry["party"]}
        assert entry["links"] == {p: "up" for p in others}
    text = vcpctl(vc, "status").stdout
    assert "dealer (INSECURE)" in text


def test_killed_vcp_is_reported_down_quickly_and_relinks(vc: LocalVc) -> None:
    vc.stop(1)
    started = time.monotonic()
    while True:
        result = vcpctl(vc, "status", "--json", check=False)
        data = json.loads(result.stdout)
        by_party = {v["party"]: v for v in data["vcps"]}
        if (
            not by_party[1]["reachable"]
            and by_party[0]["links"]["1"] == "down"
            and by_party[2]["links"]["1"] == "down"
        ):
            break
        assert time.monotonic() - started < 5, data
    assert result.returncode == 1
    vc.start(1)
    vc.wait_healthy(timeout=30)
    assert vcpctl(vc, "status", "--wait", "10").returncode == 0


def test_second_daemon_on_same_data_dir_is_refused(vc: LocalVc) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vcpd", "start", "--config", str(vc.directory / "vcp0.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "another vcpd is already running" in result.stderr
    assert "Traceback" not in result.stderr


def test_generated_tuples_reported_equally_on_every_vcp(vc: LocalVc) -> None:
    result = vcpctl(vc, "tuples", "generate", "triple", "100000")
    assert "completed" in result.stdout
    stock = json.loads(vcpctl(vc, "tuples", "stock", "--json").stdout)
    assert [v["tuples"]["triple"]["available"] for v in stock["vcps"]] == [100000] * 3
    jobs = json.loads(vcpctl(vc, "tuples", "jobs", "--json").stdout)["jobs"]
    assert jobs[0]["state"] == "completed" and jobs[0]["count"] == 100000


def test_secret_round_trip_through_vcpctl(vc: LocalVc) -> None:
    for kind in ("mask", "triple"):
        vcpctl(vc, "tuples", "generate", kind, "1000")
    values = ["-9223372036854775808", "-1", "0", "42", "9223372036854775807"]
    secret = vcpctl(vc, "secrets", "create", "--tag", "team=blue", "--", *values).stdout.strip()
    got = json.loads(vcpctl(vc, "secrets", "get", secret, "--json").stdout)
    assert got["values"] == [int(v) for v in values]
    assert got["tags"]["team"] == "blue"
    listed = json.loads(vcpctl(vc, "secrets", "list", "--filter", "team=blue", "--json").stdout)
    assert [s["id"] for s in listed["secrets"]] == [secret]


def test_vcp_killed_mid_job_leaves_no_tuple_usable(vc: LocalVc) -> None:
    job = vcpctl(vc, "tuples", "generate", "triple", "3000000", "--no-wait").stdout.strip()
    deadline = time.monotonic() + 30
    while True:  # wait until the job is under way, then kill a follower hard
        jobs = json.loads(vcpctl(vc, "tuples", "jobs", "--json").stdout)["jobs"]
        if jobs and jobs[0]["id"] == job and jobs[0]["progress"] > 0:
            break
        assert time.monotonic() < deadline, jobs
    vc.stop(2, sig=9)
    vc.start(2)
    vc.wait_healthy(timeout=30)
    deadline = time.monotonic() + 30
    while True:
        state = json.loads(vcpctl(vc, "tuples", "jobs", "--json").stdout)["jobs"][0]["state"]
        if state in ("failed", "completed"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    stock = json.loads(vcpctl(vc, "tuples", "stock", "--json").stdout)
    available = [v["tuples"]["triple"]["available"] for v in stock["vcps"]]
    # Either the job failed everywhere (nothing usable) or it completed everywhere.
    assert available in ([0, 0, 0], [3000000] * 3), (state, available)
    assert state == "failed" or available == [3000000] * 3
    # and the VC still works: a new job completes on every VCP
    vcpctl(vc, "tuples", "generate", "triple", "1000")
    stock = json.loads(vcpctl(vc, "tuples", "stock", "--json").stdout)
    assert len({v["tuples"]["triple"]["available"] for v in stock["vcps"]}) == 1


def test_program_run_through_vcpctl(vc: LocalVc) -> None:
    examples = Path(__file__).resolve().parent.parent.parent / "examples"
    for kind in ("mask", "triple"):
        vcpctl(vc, "tuples", "generate", kind, "1000")
    a = vcpctl(vc, "secrets", "create", "1234").stdout.strip()
    b = vcpctl(vc, "secrets", "create", "--", "-34").stdout.strip()
    out = vcpctl(vc, "run", str(examples / "add_two_secrets.mpc"), "--input", a, "--input", b).stdout.split()
    assert len(out) == 1
    got = json.loads(vcpctl(vc, "secrets", "get", out[0], "--json").stdout)
    assert got["values"] == [1200]
    assert a in got["tags"]["derived-from"] and b in got["tags"]["derived-from"]
    revealed = vcpctl(vc, "run", str(examples / "reveal_sum.mpc"), "--input", a, "--input", b, "--output", "reveal")
    assert revealed.stdout.split() == ["1200"]
    bad = vc.directory / "bad.mpc"
    bad.write_text("import os\n")
    refused = vcpctl(vc, "run", str(bad), check=False)
    assert refused.returncode != 0
    assert "no-import" in refused.stderr and "line 1" in refused.stderr
