"""Generation jobs: the record type, the table, and its SQL (reference: Klyshko's
TupleGenerationJob).

A job has an id (UUID string, equal on every VCP), kind, count, backend,
state (``pending`` -> ``running`` -> ``completed`` or ``failed``), created /
started / finished wall-clock timestamps, progress (tuples stored on this VCP,
or on every VCP as far as the leader knows) and an error text. The leader
records a job when it is created; followers record it when the leader
announces it, so ``vcpctl tuples jobs`` shows the same jobs everywhere.

The synchronous functions run inside one store transaction in a worker thread.
This module must not import trio, another service, vcpd.net, api, node or
daemon.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Final, Literal

from vcpd.store import Migration

__all__ = ["ACTIVE_STATES", "JOB_STATES", "MIGRATIONS", "Job", "JobState"]

JobState = Literal["pending", "running", "completed", "failed"]
JOB_STATES: Final = ("pending", "running", "completed", "failed")
ACTIVE_STATES: Final = ("pending", "running")

MAX_ERROR_CHARS: Final = 1000
"""Error texts are cut to this length before they are stored."""

MIGRATIONS: Final = (
    Migration(
        "generator",
        1,
        (
            "CREATE TABLE generator_job ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " job_id TEXT NOT NULL UNIQUE,"
            " kind TEXT NOT NULL,"
            " count INTEGER NOT NULL CHECK (count > 0),"
            " backend TEXT NOT NULL,"
            " state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'completed', 'failed')),"
            " created REAL NOT NULL,"
            " started REAL,"
            " finished REAL,"
            " progress INTEGER NOT NULL DEFAULT 0,"
            " error TEXT)",
            "CREATE INDEX generator_job_by_state ON generator_job (state, seq)",
        ),
    ),
)
"""Schema migrations of the generator (owner ``generator``); pass them to ``open_store``."""


@dataclass(frozen=True, slots=True)
class Job:
    """A generation job as this VCP knows it.

    Attributes:
        job_id: UUID string, equal on every VCP.
        kind: the tuple kind.
        count: tuples the job makes.
        backend: ``dealer`` or ``mascot``.
        state: ``pending``, ``running``, ``completed`` or ``failed``.
        created, started, finished: wall-clock seconds since the epoch (None
            until reached).
        progress: tuples stored so far (on the leader: on every VCP).
        error: why the job failed, or None.
    """

    job_id: str
    kind: str
    count: int
    backend: str
    state: JobState
    created: float
    started: float | None
    finished: float | None
    progress: int
    error: str | None

    @property
    def active(self) -> bool:
        """Pending or running."""
        return self.state in ACTIVE_STATES

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly dict of the fields (``vcpctl tuples jobs --json``)."""
        return {name: getattr(self, name) for name in self.__slots__}


_COLUMNS: Final = "job_id, kind, count, backend, state, created, started, finished, progress, error"


def _job(row: tuple[object, ...]) -> Job:
    return Job(*row)  # type: ignore[arg-type]


def insert(conn: sqlite3.Connection, job_id: str, kind: str, count: int, backend: str, state: JobState) -> Job:
    """Record a new job (ValueError if the id exists)."""
    if conn.execute("SELECT 1 FROM generator_job WHERE job_id = ?", (job_id,)).fetchone():
        raise ValueError(f"generation job {job_id} already exists on this VCP")
    now = time.time()
    conn.execute(
        "INSERT INTO generator_job (job_id, kind, count, backend, state, created, started)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (job_id, kind, count, backend, state, now, now if state == "running" else None),
    )
    row = get(conn, job_id)
    assert row is not None
    return row


def get(conn: sqlite3.Connection, job_id: str) -> Job | None:
    """One job, or None."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM generator_job WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else _job(row)


def newest(conn: sqlite3.Connection, limit: int, states: tuple[str, ...] = JOB_STATES) -> list[Job]:
    """The newest ``limit`` jobs in ``states``, newest first."""
    marks = ", ".join("?" * len(states))
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM generator_job WHERE state IN ({marks}) ORDER BY seq DESC LIMIT ?", (*states, limit)
    ).fetchall()
    return [_job(row) for row in rows]


def start(conn: sqlite3.Connection, job_id: str) -> None:
    """pending -> running."""
    conn.execute(
        "UPDATE generator_job SET state = 'running', started = ? WHERE job_id = ? AND state = 'pending'",
        (time.time(), job_id),
    )


def set_progress(conn: sqlite3.Connection, job_id: str, progress: int) -> None:
    """Record how many tuples are stored (only grows)."""
    conn.execute(
        "UPDATE generator_job SET progress = MAX(progress, ?) WHERE job_id = ? AND state = 'running'",
        (progress, job_id),
    )


def finish(conn: sqlite3.Connection, job_id: str, state: JobState, error: str | None = None) -> bool:
    """Move an active (or, to fail it, a completed) job to a final state.

    Returns whether anything changed. Failing a completed job is allowed: a
    follower learns this way that the leader never activated it.
    """
    if state not in ("completed", "failed"):
        raise ValueError(f"{state} is not a final job state")
    allowed = ("pending", "running", "completed") if state == "failed" else ("pending", "running")
    cur = conn.execute(
        f"UPDATE generator_job SET state = ?, finished = ?, error = ? WHERE job_id = ? AND state IN {allowed!r}",
        (state, time.time(), None if error is None else error[:MAX_ERROR_CHARS], job_id),
    )
    return cur.rowcount > 0


def fail_active(conn: sqlite3.Connection, reason: str) -> list[str]:
    """Fail every pending or running job (start-up recovery); return their ids."""
    ids = [r[0] for r in conn.execute("SELECT job_id FROM generator_job WHERE state IN ('pending', 'running')")]
    for job_id in ids:
        finish(conn, job_id, "failed", reason)
    return ids


def prune(conn: sqlite3.Connection, finished_before: float, keep: int) -> int:
    """Forget finished jobs that ended before ``finished_before``, except the newest ``keep``."""
    cur = conn.execute(
        "DELETE FROM generator_job WHERE state IN ('completed', 'failed') AND finished < ?"
        " AND seq NOT IN (SELECT seq FROM generator_job ORDER BY seq DESC LIMIT ?)",
        (finished_before, keep),
    )
    return cur.rowcount


def states_of(conn: sqlite3.Connection, job_ids: list[str]) -> dict[str, str]:
    """job id -> state, for the ids this VCP knows."""
    found: dict[str, str] = {}
    for job_id in job_ids:
        row = conn.execute("SELECT state FROM generator_job WHERE job_id = ?", (job_id,)).fetchone()
        if row is not None:
            found[job_id] = row[0]
    return found
