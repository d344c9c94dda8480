"""The tuple store's tables and the synchronous SQL run inside store transactions.

Tables (owner ``tuples``):

* ``tuples_job`` -- one row per job (a set of chunks with one id on every VCP):
  kind, expected ``count``, ``stored`` so far, ``state`` (``filling`` ->
  ``active`` -> ``retired``, or ``failed``), and counters: ``cursor`` (leader:
  next position to hand out), ``used`` (tuples in recorded ranges),
  ``consumed``, ``discarded``. ``seq`` orders jobs oldest first.
* ``tuples_chunk`` -- the share bytes, one blob per chunk, keyed (job, start).
* ``tuples_reservation`` -- one row per request id: ``open``, ``consumed`` or
  ``discarded``.
* ``tuples_range`` -- the ranges recorded for reservations; on a follower they
  are what a new range from the leader must not overlap.

A job whose tuples are all consumed or discarded is *retired*: its chunks and
ranges are deleted, its row stays (so its id is never reused and its counts
stay in the telemetry) and every range in it is refused from then on.

Every function here takes a ``sqlite3.Connection`` and runs inside one
:meth:`vcpd.store.Store.write` / ``read`` transaction, in a worker thread.
This module must not import trio, nor any vcpd module other than
:mod:`vcpd.errors`, :mod:`vcpd.math`, :mod:`vcpd.store` and its own package.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from vcpd.math.field import PrimeField
from vcpd.store import Migration

from .kinds import KINDS, check_words

__all__ = [
    "IMPORT_CHUNK_TUPLES",
    "MIGRATIONS",
    "JobRow",
    "Totals",
    "activate",
    "activation_view",
    "close_ranges",
    "create_job",
    "delete_job",
    "discard_open",
    "export_body",
    "import_body",
    "job_row",
    "job_rows",
    "prune_reservations",
    "read_range",
    "read_range_parts",
    "recover",
    "store_chunk",
    "totals",
    "with_totals",
]

IMPORT_CHUNK_TUPLES: Final = 1 << 15
"""Tuples per chunk when importing a file (a few MiB per blob)."""

MIGRATIONS: Final = (
    Migration(
        "tuples",
        1,
        (
            "CREATE TABLE tuples_job ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " job_id TEXT NOT NULL UNIQUE,"
            " kind TEXT NOT NULL,"
            " count INTEGER NOT NULL CHECK (count > 0),"
            " stored INTEGER NOT NULL DEFAULT 0 CHECK (stored BETWEEN 0 AND count),"
            " state TEXT NOT NULL CHECK (state IN ('filling', 'active', 'retired', 'failed')),"
            " cursor INTEGER NOT NULL DEFAULT 0,"
            " used INTEGER NOT NULL DEFAULT 0 CHECK (used BETWEEN 0 AND stored),"
            " consumed INTEGER NOT NULL DEFAULT 0,"
            " discarded INTEGER NOT NULL DEFAULT 0,"
            " source TEXT NOT NULL,"
            " created REAL NOT NULL,"
            " CHECK (consumed + discarded <= used))",
            "CREATE INDEX tuples_job_by_kind ON tuples_job (kind, state, seq)",
            "CREATE TABLE tuples_chunk ("
            " id INTEGER PRIMARY KEY,"
            " job_id TEXT NOT NULL,"
            " start INTEGER NOT NULL,"
            " count INTEGER NOT NULL CHECK (count > 0),"
            " data BLOB NOT NULL,"
            " UNIQUE (job_id, start))",
            "CREATE TABLE tuples_reservation ("
            " request_id TEXT PRIMARY KEY NOT NULL,"
            " state TEXT NOT NULL CHECK (state IN ('open', 'consumed', 'discarded')),"
            " created REAL NOT NULL,"
            " closed REAL)",
            "CREATE INDEX tuples_reservation_by_state ON tuples_reservation (state, created)",
            "CREATE TABLE tuples_range ("
            " job_id TEXT NOT NULL,"
            " start INTEGER NOT NULL,"
            " count INTEGER NOT NULL CHECK (count > 0),"
            " kind TEXT NOT NULL,"
            " request_id TEXT NOT NULL,"
            " pos INTEGER NOT NULL,"
            " PRIMARY KEY (job_id, start)) WITHOUT ROWID",
            "CREATE INDEX tuples_range_by_request ON tuples_range (request_id, pos)",
        ),
    ),
)
"""Schema migrations of the tuple store (owner ``tuples``); pass them to ``open_store``."""


@dataclass(frozen=True, slots=True)
class JobRow:
    """One ``tuples_job`` row."""

    job_id: str
    kind: str
    count: int
    stored: int
    state: str
    cursor: int
    used: int
    consumed: int
    discarded: int
    source: str
    created: float


@dataclass(frozen=True, slots=True)
class Totals:
    """Store-wide counters per kind, read in the same transaction as a change."""

    available: dict[str, int]
    reserved: dict[str, int]
    consumed: dict[str, int]
    open_reservations: int


_JOB_COLUMNS: Final = "job_id, kind, count, stored, state, cursor, used, consumed, discarded, source, created"


def job_row(conn: sqlite3.Connection, job_id: str) -> JobRow | None:
    """The job's row, or None."""
    row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM tuples_job WHERE job_id = ?", (job_id,)).fetchone()
    return None if row is None else JobRow(*row)


def job_rows(conn: sqlite3.Connection, limit: int) -> list[JobRow]:
    """The newest ``limit`` jobs, newest first."""
    rows = conn.execute(f"SELECT {_JOB_COLUMNS} FROM tuples_job ORDER BY seq DESC LIMIT ?", (limit,))
    return [JobRow(*row) for row in rows.fetchall()]


def totals(conn: sqlite3.Connection) -> Totals:
    """Per-kind available / reserved / consumed (a few rows per job; cheap)."""
    available = dict.fromkeys(KINDS, 0)
    reserved = dict.fromkeys(KINDS, 0)
    consumed = dict.fromkeys(KINDS, 0)
    rows = conn.execute(
        "SELECT kind, SUM(CASE WHEN state = 'active' THEN stored - used ELSE 0 END),"
        " SUM(used - consumed - discarded), SUM(consumed) FROM tuples_job GROUP BY kind"
    )
    for kind, avail, res, cons in rows.fetchall():
        if kind in available:
            available[kind], reserved[kind], consumed[kind] = int(avail), int(res), int(cons)
    (open_count,) = conn.execute("SELECT COUNT(*) FROM tuples_reservation WHERE state = 'open'").fetchone()
    return Totals(available, reserved, consumed, int(open_count))


def delete_job(conn: sqlite3.Connection, job_id: str) -> None:
    """Mark a job failed and delete its chunks and ranges (no-op if unknown)."""
    conn.execute("UPDATE tuples_job SET state = 'failed' WHERE job_id = ? AND state != 'retired'", (job_id,))
    conn.execute("DELETE FROM tuples_chunk WHERE job_id = ?", (job_id,))
    conn.execute("DELETE FROM tuples_range WHERE job_id = ?", (job_id,))


def read_range(conn: sqlite3.Connection, job_id: str, start: int, count: int, tuple_bytes: int) -> bytes:
    """The stored bytes of tuples ``[start, start + count)`` of a job.

    Reads only the needed part of each chunk through SQLite's incremental blob
    I/O, so taking a few tuples from a multi-megabyte chunk stays cheap.

    Raises:
        sqlite3.DatabaseError: chunks are missing (the store is corrupt).
    """
    parts = read_range_parts(conn, job_id, start, count, tuple_bytes)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_range_parts(conn: sqlite3.Connection, job_id: str, start: int, count: int, tuple_bytes: int) -> list[bytes]:
    """:func:`read_range` as one byte string per chunk touched, not joined
    (a big take is then copied once, from these straight into limb arrays)."""
    end = start + count
    rows = conn.execute(
        "SELECT id, start, count FROM tuples_chunk WHERE job_id = ? AND start < ? AND start + count > ?"
        " ORDER BY start",
        (job_id, end, start),
    ).fetchall()
    parts: list[bytes] = []
    position = start
    for rowid, chunk_start, chunk_count in rows:
        if chunk_start > position:
            break
        lo, hi = position - chunk_start, min(end, chunk_start + chunk_count) - chunk_start
        with conn.blobopen("tuples_chunk", "data", rowid, readonly=True) as blob:
            blob.seek(lo * tuple_bytes)
            parts.append(blob.read((hi - lo) * tuple_bytes))
        position = chunk_start + hi
    if position != end:
        raise sqlite3.DatabaseError(f"job {job_id}: tuples {position}..{end} are missing from the store")
    return parts


def close_ranges(conn: sqlite3.Connection, ranges: Iterable[tuple[str, int]], column: str) -> None:
    """Count ``(job_id, n)`` tuples as consumed or discarded; retire finished jobs.

    A job is retired when every tuple it holds is closed: its chunks (share
    bytes) and ranges are deleted then, so consumed shares do not linger on disk
    longer than their job.
    """
    if column not in ("consumed", "discarded"):
        raise ValueError(f"cannot close ranges as {column!r}")
    touched: dict[str, int] = {}
    for job_id, n in ranges:
        touched[job_id] = touched.get(job_id, 0) + n
    for job_id, n in touched.items():
        conn.execute(f"UPDATE tuples_job SET {column} = {column} + ? WHERE job_id = ?", (n, job_id))
        row = conn.execute(
            "SELECT state, count, stored, consumed + discarded FROM tuples_job WHERE job_id = ?", (job_id,)
        ).fetchone()
        if row is not None and row[0] == "active" and row[1] == row[2] == row[3]:
            conn.execute("UPDATE tuples_job SET state = 'retired' WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM tuples_chunk WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM tuples_range WHERE job_id = ?", (job_id,))


def discard_open(conn: sqlite3.Connection, request_ids: Iterable[str] | None = None) -> int:
    """Turn open reservations (all of them, or those listed) into discarded.

    Their tuples are burnt: counted as discarded, never handed out again.
    Returns how many reservations were discarded.
    """
    if request_ids is None:
        ids = [r[0] for r in conn.execute("SELECT request_id FROM tuples_reservation WHERE state = 'open'")]
    else:
        ids = list(request_ids)
    done = 0
    now = time.time()
    for request_id in ids:
        cur = conn.execute(
            "UPDATE tuples_reservation SET state = 'discarded', closed = ? WHERE request_id = ? AND state = 'open'",
            (now, request_id),
        )
        if cur.rowcount:
            done += 1
            ranges = conn.execute(
                "SELECT job_id, count FROM tuples_range WHERE request_id = ?", (request_id,)
            ).fetchall()
            close_ranges(conn, ranges, "discarded")
    return done


def prune_reservations(conn: sqlite3.Connection, older_than: float) -> int:
    """Forget closed reservations closed before ``older_than`` (wall-clock seconds).

    Only the reservation rows go; ranges live as long as their job, which is
    what keeps the no-overlap check sound.
    """
    cur = conn.execute(
        "DELETE FROM tuples_reservation WHERE state != 'open' AND closed < ?"
        " AND NOT EXISTS (SELECT 1 FROM tuples_range r WHERE r.request_id = tuples_reservation.request_id)",
        (older_than,),
    )
    return cur.rowcount


# ---------------------------------------------------------------------- job changes


def with_totals(conn: sqlite3.Connection, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, Totals]:
    """Run ``fn(conn, *args)``, then read the per-kind totals in the same transaction."""
    result = fn(conn, *args)
    return result, totals(conn)


def recover(conn: sqlite3.Connection, reservations_before: float, failed_before: float) -> tuple[int, int, int]:
    """Start-up: discard open reservations, delete incomplete jobs, prune old rows."""
    discarded = discard_open(conn)
    rows = conn.execute("SELECT job_id FROM tuples_job WHERE state = 'filling' AND stored < count")
    incomplete = [r[0] for r in rows.fetchall()]
    for job_id in incomplete:
        delete_job(conn, job_id)
    pruned = prune_reservations(conn, reservations_before)
    # Failed jobs never held usable tuples: their rows only matter for a while.
    conn.execute("DELETE FROM tuples_job WHERE state = 'failed' AND created < ?", (failed_before,))
    return discarded, len(incomplete), pruned


def create_job(conn: sqlite3.Connection, job_id: str, kind: str, count: int, source: str) -> None:
    """Register an empty ``filling`` job (ValueError if the id exists)."""
    if conn.execute("SELECT 1 FROM tuples_job WHERE job_id = ?", (job_id,)).fetchone():
        raise ValueError(f"job {job_id} already exists on this VCP")
    conn.execute(
        "INSERT INTO tuples_job (job_id, kind, count, state, source, created) VALUES (?, ?, ?, 'filling', ?, ?)",
        (job_id, kind, count, source, time.time()),
    )


def store_chunk(
    conn: sqlite3.Connection, field: PrimeField, job_id: str, offset: int, count: int, data: bytes
) -> int:
    """Append a checked chunk to a filling job; return the number stored."""
    row = job_row(conn, job_id)
    if row is None or row.state != "filling":
        raise ValueError(f"job {job_id} is {'unknown' if row is None else row.state}, not accepting tuples")
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0 or row.stored + count > row.count:
        raise ValueError(f"job {job_id}: {count} more tuples do not fit ({row.stored} of {row.count} stored)")
    if offset != row.stored:
        raise ValueError(f"job {job_id}: chunk at {offset} but {row.stored} tuples are stored (chunks go in order)")
    size = KINDS[row.kind].tuple_bytes
    if len(data) != count * size:
        raise ValueError(f"job {job_id}: {len(data)} bytes for {count} {row.kind} tuples of {size} bytes")
    check_words(field, data)
    conn.execute(
        "INSERT INTO tuples_chunk (job_id, start, count, data) VALUES (?, ?, ?, ?)", (job_id, offset, count, data)
    )
    conn.execute("UPDATE tuples_job SET stored = stored + ? WHERE job_id = ?", (count, job_id))
    return row.stored + count


def activate(conn: sqlite3.Connection, job_id: str) -> None:
    """filling and complete -> active (a no-op for an active job)."""
    row = job_row(conn, job_id)
    if row is not None and row.state in ("active", "retired"):
        return
    if row is None or row.state != "filling" or row.stored != row.count:
        what = "unknown" if row is None else f"{row.state} with {row.stored} of {row.count} tuples"
        raise ValueError(f"job {job_id} cannot be activated: it is {what}")
    conn.execute("UPDATE tuples_job SET state = 'active' WHERE job_id = ?", (job_id,))


def import_body(conn: sqlite3.Connection, job_id: str, kind: str, count: int, body: memoryview, size: int) -> None:
    """Register a job holding a whole MP-SPDZ file body, chunked; it stays inactive."""
    create_job(conn, job_id, kind, count, "import")
    for start in range(0, count, IMPORT_CHUNK_TUPLES):
        n = min(IMPORT_CHUNK_TUPLES, count - start)
        conn.execute(
            "INSERT INTO tuples_chunk (job_id, start, count, data) VALUES (?, ?, ?, ?)",
            (job_id, start, n, body[start * size : (start + n) * size]),
        )
    conn.execute("UPDATE tuples_job SET stored = count WHERE job_id = ?", (job_id,))


def export_body(conn: sqlite3.Connection, job_id: str) -> bytes:
    """Read a complete, unused job whole and retire it (its tuples leave vcpd)."""
    row = job_row(conn, job_id)
    if row is None or row.state not in ("filling", "active") or row.stored != row.count or row.used:
        what = "unknown" if row is None else f"{row.state}, {row.stored} of {row.count} stored, {row.used} reserved"
        raise ValueError(f"job {job_id} cannot be exported: it is {what} (only complete, unused jobs can)")
    body = read_range(conn, job_id, 0, row.count, KINDS[row.kind].tuple_bytes)
    conn.execute(
        "UPDATE tuples_job SET state = 'retired', cursor = count, used = count, discarded = count WHERE job_id = ?",
        (job_id,),
    )
    conn.execute("DELETE FROM tuples_chunk WHERE job_id = ?", (job_id,))
    return body


def activation_view(row: JobRow | None) -> dict[str, Any]:
    """What this VCP says about a job when the VCPs compare before activation."""
    if row is None:
        return {"error": "job unknown"}
    if row.state not in ("filling", "active") or row.stored != row.count:
        return {"error": f"job is {row.state} with {row.stored} of {row.count} tuples"}
    return {"kind": row.kind, "count": row.count}
