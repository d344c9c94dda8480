"""The one SQLite database of a VCP, used from trio through worker threads.

All four services keep their state in one file so that a change touching
several of their tables (say, consuming tuples and recording the result they
produced) can commit atomically. SQLite is blocking, so every call runs in a
worker thread via :func:`trio.to_thread.run_sync`:

* one *writer* connection, serialised by a :class:`trio.Lock`; each
  :meth:`Store.write` is exactly one ``BEGIN IMMEDIATE ... COMMIT``;
* a few *reader* connections (``query_only``), which under WAL read a
  consistent snapshot without waiting for the writer.

A connection is only ever used by one thread at a time, which is what makes
``check_same_thread=False`` safe. Writes run with ``synchronous=FULL``: when
:meth:`Store.write` returns the change is on disk, so a service may then send
anything derived from it (a consumed tuple is recorded before it is used).

This module must not import any vcpd module other than :mod:`vcpd.errors`
(and its sibling :mod:`vcpd.store.migrations`): services build on the store,
never the other way round.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar, TypeVarTuple, Unpack, final

import trio

from vcpd.errors import StoreError, VcpInternalError

from .migrations import (
    STORE_OWNER,
    Migration,
    apply_pending,
    check_not_too_new,
    ensure_bookkeeping,
    plan,
    read_versions,
)

__all__ = ["DEFAULT_BUSY_TIMEOUT", "DEFAULT_READERS", "Store", "StoreStatistics", "open_store"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

DEFAULT_READERS = 4
"""Reader connections: enough for the services' concurrent reads, few enough to stay cheap."""

DEFAULT_BUSY_TIMEOUT = 10.0
"""Seconds SQLite waits for a lock held by another process (a backup tool, say)."""

# Tuple chunks are big; truncate the WAL back to this after checkpoints rather than keep it.
_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024

# Map the database file into memory (SQLite clamps this to its compile-time
# maximum). Tuple chunks are blobs spanning thousands of overflow pages: read
# through the page cache each page costs a pread and a copy, mapped it is one
# memcpy. Measured on the reference VM: blob reads 0.26 GB/s unmapped, 6.3 GB/s
# mapped, and the executor takes ~8 KB of tuples per 64-bit comparison. The
# price (a documented SQLite caveat): an I/O error on a mapped page (a failing
# disk, a file truncated behind SQLite's back) kills the process with SIGBUS
# instead of raising SQLITE_IOERR. Both mean the store must be restored anyway.
_MMAP_SIZE = 1 << 40

_STORE_MIGRATIONS = (
    Migration(
        STORE_OWNER,
        1,
        ("CREATE TABLE store_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)",),
    ),
)

_log = logging.getLogger("vcpd.store")


@dataclass(frozen=True, slots=True)
class StoreStatistics:
    """A snapshot of the store for ``vcpctl status`` and logs.

    Attributes:
        path: the database file.
        size_bytes: size of the database file on disk.
        wal_bytes: size of the write-ahead log (0 once checkpointed).
        schema_versions: owner -> schema version applied, including ``"store"``.
        sqlite_version: the SQLite library in use, for bug reports.
        readers: number of reader connections.
        closed: whether :meth:`Store.aclose` has run.
    """

    path: Path
    size_bytes: int
    wal_bytes: int
    schema_versions: Mapping[str, int]
    sqlite_version: str
    readers: int
    closed: bool


@final
class Store:
    """An open store. Get one from :func:`open_store`; do not construct it."""

    def __init__(
        self,
        path: Path,
        writer: sqlite3.Connection,
        readers: list[sqlite3.Connection],
        versions: Mapping[str, int],
    ) -> None:
        self._path = path
        self._writer = writer
        self._n_readers = len(readers)
        self._free_readers = readers
        self._reader_slots = trio.Semaphore(len(readers))
        self._write_lock = trio.Lock()
        self._versions = MappingProxyType(dict(versions))
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Store {str(self._path)!r} {state}, readers={self._n_readers}>"

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    async def read(
        self, fn: Callable[[sqlite3.Connection, Unpack[Ts]], T], *args: Unpack[Ts]
    ) -> T:
        """Run ``fn(conn, *args)`` in a thread on a reader connection; return its result.

        ``fn`` runs inside one read transaction, so all its queries see the same
        snapshot even while writes commit. It must return plain values (call
        ``fetchall()``; never return a cursor) and cannot write: the
        connection is ``query_only``. Reads wait for ``fn`` to finish even when
        cancelled (the connection must not be reused under a running thread),
        so keep them short.

        Raises:
            StoreError: the store is closed, or SQLite failed (cause chained).
                Any other exception from ``fn`` propagates unchanged.
        """
        self._check_open()
        async with self._reader_slots:
            self._check_open()
            conn = self._free_readers.pop()
            try:
                return await trio.to_thread.run_sync(_run_read, conn, fn, args)
            except sqlite3.Error as exc:
                raise StoreError(f"{self._path}: read failed: {exc}") from exc
            finally:
                self._free_readers.append(conn)

    async def write(
        self, fn: Callable[[sqlite3.Connection, Unpack[Ts]], T], *args: Unpack[Ts]
    ) -> T:
        """Run ``fn(conn, *args)`` as one transaction on the writer; return its result.

        This is how a service makes a multi-statement change atomic: the whole
        of ``fn`` commits, durably, or (if it raises) none of it does. Writes
        are serialised in FIFO order. ``fn`` must not commit or roll back
        itself. Blob parameters may be ``bytes`` or ``memoryview``; SQLite
        copies them once.

        Cancellation: while waiting for its turn a write is simply not done.
        Once ``fn`` has started, the thread always finishes the transaction
        (commit or rollback) and the cancellation is delivered afterwards, so
        the database never holds half a change.

        Raises:
            StoreError: the store is closed, or SQLite failed; the transaction
                was rolled back (cause chained). Catch expected SQLite errors,
                such as a unique-constraint violation, inside ``fn``.
                Any other exception from ``fn`` propagates unchanged, after rollback.
        """
        self._check_open()
        async with self._write_lock:
            self._check_open()
            try:
                return await trio.to_thread.run_sync(_run_write, self._writer, fn, args)
            except sqlite3.Error as exc:
                raise StoreError(f"{self._path}: write failed and was rolled back: {exc}") from exc

    async def get_meta(self, key: str) -> str | None:
        """Return the daemon metadata value stored under ``key``, or None."""
        return await self.read(_get_meta, key)

    async def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (replacing any old value), durably."""
        await self.write(_set_meta, key, value)

    def statistics(self) -> StoreStatistics:
        """Return a :class:`StoreStatistics` snapshot (file sizes read now)."""
        return StoreStatistics(
            path=self._path,
            size_bytes=_file_size(self._path),
            wal_bytes=_file_size(self._path.with_name(self._path.name + "-wal")),
            schema_versions=self._versions,
            sqlite_version=sqlite3.sqlite_version,
            readers=self._n_readers,
            closed=self._closed,
        )

    async def aclose(self) -> None:
        """Wait for running calls, checkpoint the WAL and close all connections.

        Shielded from cancellation: leaving connections open under a running
        thread would be worse than the short wait. Calls still queued when
        closing starts fail with :class:`StoreError`. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            async with self._write_lock:
                for _ in range(self._n_readers):
                    await self._reader_slots.acquire()
                await trio.to_thread.run_sync(_close_all, self._writer, self._free_readers)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self._path}: the store is closed")


@asynccontextmanager
async def open_store(
    path: str | os.PathLike[str],
    migrations: Sequence[Migration] = (),
    *,
    readers: int = DEFAULT_READERS,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> AsyncIterator[Store]:
    """Open (creating if needed) and migrate the store; close it on exit.

    Args:
        path: the database file; missing parent directories are created.
        migrations: every migration of every owner this vcpd has. An owner
            found in the database but absent here counts as "too new", so
            always pass the full set.
        readers: number of reader connections (at least 1).
        busy_timeout: seconds to wait on a lock held by another process.

    Raises:
        SchemaTooNew: the database is ahead of this vcpd; it was not modified.
        StoreError: the file cannot be created, opened, read as a database,
            or migrated. The message names the file and the cause.
        ValueError: the migrations are malformed (a bug in vcpd).
    """
    if readers < 1:
        raise ValueError(f"readers must be at least 1, got {readers}")
    known = {**plan(_STORE_MIGRATIONS), **plan(migrations, reserved=(STORE_OWNER,))}
    db_path = Path(path)
    writer, reader_conns, versions = await trio.to_thread.run_sync(
        _open_sync, db_path, known, readers, busy_timeout
    )
    store = Store(db_path, writer, reader_conns, versions)
    try:
        yield store
    finally:
        await store.aclose()


def _open_sync(
    path: Path, known: Mapping[str, tuple[Migration, ...]], n_readers: int, busy_timeout: float
) -> tuple[sqlite3.Connection, list[sqlite3.Connection], dict[str, int]]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create directory {path.parent}: {exc}") from exc
    opened: list[sqlite3.Connection] = []
    try:
        writer = _connect(path, busy_timeout)
        opened.append(writer)
        try:
            # Read and judge the recorded versions before anything can write to
            # the file: a database from a newer vcpd must stay byte-for-byte intact.
            writer.execute("BEGIN")
            try:
                found = read_versions(writer)
            finally:
                if writer.in_transaction:
                    writer.execute("ROLLBACK")
            check_not_too_new(path, found, known)
            mode = writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"{path}: cannot switch to WAL mode (got {mode!r}); "
                    "put the store on a local filesystem"
                )
            # FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on
            # power loss, and a lost "tuple consumed" record means reuse.
            writer.execute("PRAGMA synchronous=FULL")
            writer.execute(f"PRAGMA journal_size_limit={_JOURNAL_SIZE_LIMIT}")
            ensure_bookkeeping(writer)
        except sqlite3.Error as exc:
            raise _open_error(path, exc) from exc
        versions = apply_pending(path, writer, known)
        for _ in range(n_readers):
            reader = _connect(path, busy_timeout)
            opened.append(reader)
            reader.execute("PRAGMA query_only=ON")
        return writer, opened[1:], versions
    except BaseException:
        for conn in opened:
            conn.close()
        raise


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves; the sqlite3
        # module's implicit transactions would split or merge ours.
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise _open_error(path, exc) from exc
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA mmap_size={_MMAP_SIZE}")
    except sqlite3.Error as exc:
        conn.close()
        raise _open_error(path, exc) from exc
    return conn


def _open_error(path: Path, exc: sqlite3.Error) -> StoreError:
    return StoreError(
        f"{path}: cannot open the store: {exc}. Check that the file is a vcpd database "
        "(not corrupt or truncated) and that vcpd may read and write it and its directory; "
        "restore it from a backup or point [store].path at a new file"
    )


def _run_read(
    conn: sqlite3.Connection,
    fn: Callable[[sqlite3.Connection, Unpack[Ts]], T],
    args: tuple[Unpack[Ts]],
) -> T:
    conn.execute("BEGIN")
    try:
        return fn(conn, *args)
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _run_write(
    conn: sqlite3.Connection,
    fn: Callable[[sqlite3.Connection, Unpack[Ts]], T],
    args: tuple[Unpack[Ts]],
) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
        if not conn.in_transaction:
            raise VcpInternalError(f"store write function {fn!r} ended the transaction itself")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _close_all(writer: sqlite3.Connection, readers: list[sqlite3.Connection]) -> None:
    for reader in readers:
        reader.close()
    try:
        # Fold the WAL back into the main file so the database is one
        # self-contained file at rest (easy to back up and to copy).
        writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        # Not fatal: the WAL stays valid and SQLite replays it on next open.
        _log.warning("WAL checkpoint on close failed: %s", exc)
    finally:
        writer.close()


def _get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM store_meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO store_meta (key, value) VALUES (?, ?)", (key, value))


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
