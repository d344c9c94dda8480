"""Execution records in the VCP's store: schema, rows and their SQL.

Every execution this VCP takes part in gets a row in ``executor_execution``
(owner ``executor``): who ran which program digest on which inputs, its state
(``running`` → ``completed`` | ``failed``), timing, the output secret ids, the
program's log, the statistics and, for a failure, the error code and message.
Revealed values are **not** stored: they went to the client and nowhere else.

All functions here are synchronous and run inside :meth:`Store.read` /
:meth:`Store.write` worker threads.

This module must not import any vcpd module other than :mod:`vcpd.errors`
and :mod:`vcpd.store`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from vcpd.store import Migration

__all__ = [
    "COMPLETED",
    "FAILED",
    "MIGRATIONS",
    "RUNNING",
    "STATES",
    "ExecutionRecord",
    "finish_record",
    "insert_record",
    "interrupt_running",
    "list_records",
    "load_record",
]

OWNER: Final = "executor"
RUNNING: Final = "running"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
STATES: Final = (RUNNING, COMPLETED, FAILED)

MIGRATIONS: Final = (
    Migration(
        OWNER,
        1,
        (
            """CREATE TABLE executor_execution (
                id TEXT PRIMARY KEY NOT NULL,
                owner TEXT NOT NULL,
                digest TEXT NOT NULL,
                output_mode TEXT NOT NULL,
                inputs TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('running', 'completed', 'failed')),
                created_ms INTEGER NOT NULL,
                finished_ms INTEGER,
                outputs TEXT NOT NULL DEFAULT '[]',
                log TEXT NOT NULL DEFAULT '[]',
                stats TEXT NOT NULL DEFAULT '{}',
                error_code TEXT,
                error_message TEXT
            )""",
            "CREATE INDEX executor_execution_owner ON executor_execution (owner, created_ms)",
            "CREATE INDEX executor_execution_created ON executor_execution (created_ms)",
        ),
    ),
)
"""The executor's schema migrations (pass them to :func:`vcpd.store.open_store`)."""

_COLUMNS: Final = (
    "id, owner, digest, output_mode, inputs, state, created_ms, finished_ms, outputs, log, stats, "
    "error_code, error_message"
)


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """One execution as this VCP recorded it.

    Attributes:
        id: the execution id (a UUID, the same on every VCP).
        owner: the public key of the client that ran it.
        digest: SHA-256 of the program source.
        output_mode: ``secrets`` or ``reveal``.
        inputs: the input secret ids, in order.
        state: ``running``, ``completed`` or ``failed``.
        created_ms, finished_ms: milliseconds since the epoch.
        outputs: ids of the secrets the execution stored.
        log: the program's output lines.
        stats: rounds, openings, tuples used, steps, timings.
        error_code, error_message: why it failed.
    """

    id: str
    owner: str
    digest: str
    output_mode: str
    inputs: tuple[str, ...]
    state: str
    created_ms: int
    finished_ms: int | None = None
    outputs: tuple[str, ...] = ()
    log: tuple[str, ...] = ()
    stats: Mapping[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None

    def summary(self) -> dict[str, Any]:
        """The listing form (no log)."""
        elapsed = None if self.finished_ms is None else self.finished_ms - self.created_ms
        data: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "digest": self.digest,
            "output": self.output_mode,
            "inputs": list(self.inputs),
            "owner": self.owner,
            "created_ms": self.created_ms,
            "finished_ms": self.finished_ms,
            "elapsed_ms": elapsed,
            "outputs": list(self.outputs),
        }
        if self.error_code is not None:
            data["error"] = {"code": self.error_code, "message": self.error_message}
        return data

    def to_wire(self) -> dict[str, Any]:
        """The full form ``executions.get`` answers."""
        return {**self.summary(), "log": list(self.log), "stats": dict(self.stats)}


def _row(row: Sequence[Any]) -> ExecutionRecord:
    return ExecutionRecord(
        id=row[0],
        owner=row[1],
        digest=row[2],
        output_mode=row[3],
        inputs=tuple(json.loads(row[4])),
        state=row[5],
        created_ms=row[6],
        finished_ms=row[7],
        outputs=tuple(json.loads(row[8])),
        log=tuple(json.loads(row[9])),
        stats=json.loads(row[10]),
        error_code=row[11],
        error_message=row[12],
    )


def insert_record(conn: sqlite3.Connection, record: ExecutionRecord) -> bool:
    """Insert a new running record; False if the id is taken (nothing changed)."""
    if conn.execute("SELECT 1 FROM executor_execution WHERE id = ?", (record.id,)).fetchone():
        return False
    conn.execute(
        f"INSERT INTO executor_execution ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.id, record.owner, record.digest, record.output_mode, json.dumps(list(record.inputs)),
            record.state, record.created_ms, record.finished_ms, json.dumps(list(record.outputs)),
            json.dumps(list(record.log)), json.dumps(dict(record.stats)), record.error_code, record.error_message,
        ),
    )  # fmt: skip
    return True


def finish_record(
    conn: sqlite3.Connection,
    execution_id: str,
    *,
    state: str,
    finished_ms: int,
    outputs: Sequence[str] = (),
    log: Sequence[str] = (),
    stats: Mapping[str, Any] | None = None,
    error: tuple[str, str] | None = None,
) -> None:
    """Record the end of an execution (completed or failed)."""
    conn.execute(
        "UPDATE executor_execution SET state = ?, finished_ms = ?, outputs = ?, log = ?, stats = ?, "
        "error_code = ?, error_message = ? WHERE id = ?",
        (
            state, finished_ms, json.dumps(list(outputs)), json.dumps(list(log)), json.dumps(dict(stats or {})),
            None if error is None else error[0], None if error is None else error[1], execution_id,
        ),
    )  # fmt: skip


def load_record(conn: sqlite3.Connection, execution_id: str) -> ExecutionRecord | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM executor_execution WHERE id = ?", (execution_id,)).fetchone()
    return None if row is None else _row(row)


def list_records(
    conn: sqlite3.Connection, owner: str | None, state: str | None, limit: int, offset: int
) -> tuple[list[ExecutionRecord], int]:
    """Newest first; ``owner`` None lists everyone's (admins). Returns (page, total)."""
    where, params = [], []
    if owner is not None:
        where.append("owner = ?")
        params.append(owner)
    if state is not None:
        where.append("state = ?")
        params.append(state)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT COUNT(*) FROM executor_execution{clause}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM executor_execution{clause} ORDER BY created_ms DESC, id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return [_row(row) for row in rows], int(total)


def interrupt_running(conn: sqlite3.Connection, finished_ms: int) -> int:
    """Mark executions left running by a stopped daemon as failed; returns how many."""
    cursor = conn.execute(
        "UPDATE executor_execution SET state = 'failed', finished_ms = ?, error_code = 'aborted', "
        "error_message = 'the VCP stopped while the execution ran' WHERE state = 'running'",
        (finished_ms,),
    )
    return cursor.rowcount
