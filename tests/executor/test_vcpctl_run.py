"""``vcpctl run`` and ``vcpctl executions``: arguments, output formats, errors.

The VC is replaced by a stub client (``vcpctl.run._connect``), so these tests
check the command line alone; the executions themselves are tested elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import vcpctl.run as run_module
from vcpctl.cli import cli
from vcpd.client.executions import ExecutionInfo, ExecutionResult
from vcpd.errors import RequestError

EID = "6f1c1e0a-9a8e-4a53-9b7e-2f4f3b9f5a11"


class StubClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.error: Exception | None = None

    async def run_program(self, source: str, **kwargs: Any) -> ExecutionResult:
        self.calls.append(("run", (source, kwargs)))
        if self.error is not None:
            raise self.error
        if kwargs["output"] == "reveal":
            return ExecutionResult(
                EID,
                "ab" * 32,
                "reveal",
                values=((42, -1), (7,)),
                log=("hello",),
                stats=({"rounds": 5, "tuples": {"triple": 3}},),
            )
        return ExecutionResult(
            EID, "ab" * 32, "secrets", secrets=("s-1", "s-2"), log=("hello",), stats=({"rounds": 5},)
        )

    async def list_executions(self, **kwargs: Any) -> list[ExecutionInfo]:
        self.calls.append(("list", kwargs))
        done = ("completed", "completed")
        boom = {0: {"code": "program-error", "message": "line 1: boom"}}
        return [
            ExecutionInfo(EID, "cd" * 32, "secrets", ("i-1",), ("s-1",), 1_700_000_000_000, 1_700_000_001_500, done),
            ExecutionInfo(
                "e2", "ef" * 32, "reveal", (), (), 1_700_000_002_000, 1_700_000_002_100, ("failed",) * 2, boom
            ),
        ]

    async def get_execution(self, execution_id: str) -> ExecutionInfo:
        self.calls.append(("get", execution_id))
        errors = {1: {"code": "aborted", "message": "peer gone"}}
        states = ("completed", "failed")
        info = ExecutionInfo(execution_id, "cd" * 32, "secrets", ("i-1",), ("s-1",), 1, 2, states, errors)
        return dataclasses.replace(info, log=("line one",), stats={"rounds": 9})


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> StubClient:
    client = StubClient()

    @asynccontextmanager
    async def connect(ctx: Any) -> AsyncIterator[StubClient]:
        yield client

    monkeypatch.setattr(run_module, "_connect", connect)
    return client


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "prog.mpc"
    path.write_text("print_ln('hello')\n", encoding="utf-8")
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_run_prints_new_secret_ids_on_stdout_and_the_log_on_stderr(stub: StubClient, program: Path) -> None:
    result = invoke("run", str(program), "--input", "i-1", "--input", "i-2")
    assert result.exit_code == 0
    assert result.stdout == "s-1\ns-2\n"
    assert result.stderr == "hello\n"
    source, kwargs = stub.calls[0][1]
    assert source == "print_ln('hello')\n"
    assert kwargs == {
        "inputs": ["i-1", "i-2"],
        "output": "secrets",
        "execution_id": None,
        "max_steps": None,
        "timeout": None,
    }


def test_run_reveal_prints_one_line_per_output(stub: StubClient, program: Path) -> None:
    result = invoke("run", str(program), "--output", "reveal", "--stats", "--timeout", "2.5", "--max-steps", "1000")
    assert result.exit_code == 0
    assert result.stdout == "42 -1\n7\n"
    assert "hello" in result.stderr and "rounds" in result.stderr and "triple=3" in result.stderr
    assert stub.calls[0][1][1]["timeout"] == 2.5 and stub.calls[0][1][1]["max_steps"] == 1000


def test_run_json(stub: StubClient, program: Path) -> None:
    data = json.loads(invoke("run", str(program), "--json").stdout)
    assert data["secrets"] == ["s-1", "s-2"] and data["log"] == ["hello"] and "stats" not in data
    data = json.loads(invoke("run", str(program), "--json", "--stats", "--output", "reveal").stdout)
    assert data["values"] == [[42, -1], [7]] and data["stats"][0]["rounds"] == 5


def test_run_reports_errors_in_one_line(stub: StubClient, program: Path) -> None:
    stub.error = RequestError("forbidden", "VCP 1: program abc is not allowed")
    result = CliRunner().invoke(cli, ["run", str(program)])
    assert result.exit_code == 1
    assert result.stderr == "vcpctl: error: forbidden: VCP 1: program abc is not allowed\n"


def test_run_needs_an_existing_file(stub: StubClient, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "missing.mpc")])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_executions_list_and_show(stub: StubClient) -> None:
    result = invoke("executions", "list", "--state", "failed", "--limit", "5")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "state", "program", "output", "created", "elapsed", "outputs", "error"]
    assert EID in lines[2] and "completed" in lines[2] and "1.50s" in lines[2]
    assert "program-error" in lines[3]
    assert stub.calls[0] == ("list", {"state": "failed", "limit": 5})
    data = json.loads(invoke("executions", "list", "--json").stdout)
    assert data["executions"][1]["state"] == "failed"

    result = invoke("executions", "show", EID)
    assert "state:    failed (VCP 0: completed, VCP 1: failed)" in result.stdout
    assert "VCP 1: aborted: peer gone" in result.stdout and "  line one" in result.stdout
    assert json.loads(invoke("executions", "show", EID, "--json").stdout)["states"] == ["completed", "failed"]
