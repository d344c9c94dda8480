"""``vcpctl secrets ...`` against an in-process VC (stores persist between commands)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import vcpctl.secrets as secrets_cli
from secret_vc import FIELD, FakeClient, new_key, open_vc
from vcpctl.cli import cli


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Invoke vcpctl; each call runs a fresh trio loop over the same two SQLite stores."""
    alphas = [int(x) for x in FIELD.random(2).to_ints()]
    keys = {"me": new_key(), "friend": new_key()}
    who = {"key": keys["me"]}

    @asynccontextmanager
    async def connect(ctx: Any) -> AsyncIterator[FakeClient]:
        async with open_vc(tmp_path, 2, alpha_shares=alphas) as vc:
            yield vc.client(who["key"])

    monkeypatch.setattr(secrets_cli, "_connect", connect)
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None, as_key: str = "me", ok: bool = True) -> Any:
        who["key"] = keys[as_key]
        result = runner.invoke(cli, ["secrets", *args], input=stdin, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke.keys = keys  # type: ignore[attr-defined]
    return invoke


def test_create_get_list_tag_delete(run: Any) -> None:
    sid = run("create", "--tag", "team=red", "--tag", "score=12", "5", "-7", "9223372036854775807").output.strip()
    got = json.loads(run("get", sid, "--json").output)
    assert got["id"] == sid and got["values"] == [5, -7, 2**63 - 1]
    assert got["tags"]["team"] == "red" and got["tags"]["score"] == 12 and got["tags"]["owner"] == run.keys["me"]
    text = run("get", sid).output
    assert "values\n  5\n  -7\n" in text and "team=red" in text

    created = run("create", "--encoding", "fixed", "--fraction-bits", "8", "--json", stdin="1.5\n-0.25\n\n")
    fixed = json.loads(created.output)
    assert json.loads(run("get", fixed["id"], "--json").output)["values"] == [1.5, -0.25]

    listing = json.loads(run("list", "--filter", "score>10", "--json").output)
    assert [s["id"] for s in listing["secrets"]] == [sid] and listing["total"] == 1
    table = run("list", "--sort", "score:desc", "--page", "0", "--size", "1").output
    assert sid in table and "page 1 of 2, 2 secret(s) in all" in table

    tagged = json.loads(run("tag", sid, "score=13", "note=007", "--json").output)
    assert tagged["tags"]["score"] == 13 and tagged["tags"]["note"] == "007"  # not canonical: stays a string
    assert "note" not in json.loads(run("untag", sid, "note", "--json").output)["tags"]

    assert run("delete", sid, fixed["id"]).output.strip() == "deleted 2 secret(s)"
    assert json.loads(run("list", "--json").output)["total"] == 0


def test_grant_and_revoke(run: Any) -> None:
    sid = run("create", "42").output.strip()
    friend = run.keys["friend"]
    failed = run("get", sid, as_key="friend", ok=False)
    assert failed.exit_code == 1 and "not-found" in failed.output
    granted = json.loads(run("grant", sid, friend, "read", "use", "--json").output)
    assert granted["grants"] == {friend: ["read", "use"]}
    assert json.loads(run("get", sid, "--json", as_key="friend").output)["values"] == [42]
    assert "may now: use" in run("revoke", sid, friend, "read").output
    assert f"{friend}  use" in run("grants", sid).output
    assert run("get", sid, as_key="friend", ok=False).exit_code == 1


def test_usage_errors(run: Any) -> None:
    result = run("create", "--tag", "novalue", "1", ok=False)
    assert result.exit_code == 2 and "is not KEY=VALUE" in result.output
    result = run("create", "1.5", ok=False)
    assert result.exit_code == 2 and "is not an integer" in result.output
    result = run("create", ok=False, stdin="")
    assert result.exit_code == 2 and "no values" in result.output
    result = run("get", "not-a-uuid", ok=False)
    assert result.exit_code == 1 and "vcpctl: error: bad-request" in result.output
    result = run("create", "--tag", "owner=me", "1", ok=False)
    assert result.exit_code == 1 and "reserved" in result.output
    result = run("grant", "x", "y", "write", ok=False)
    assert result.exit_code == 2
