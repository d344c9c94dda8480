"""Tests for vcpd.store: migrations, schema refusal, transactions, threads, blobs."""

from __future__ import annotations

import hashlib
import random
import sqlite3
import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from vcpd.errors import SchemaTooNew, StoreError, VcpInternalError
from vcpd.store import Migration, Store, StoreStatistics, open_store

TUPLES_V1 = Migration(
    "tuples", 1, ("CREATE TABLE tuples_chunk (id INTEGER PRIMARY KEY, data BLOB NOT NULL)",)
)
TUPLES_V2 = Migration(
    "tuples",
    2,
    (
        "ALTER TABLE tuples_chunk ADD COLUMN kind TEXT NOT NULL DEFAULT 'triple'",
        "CREATE TABLE tuples_cursor (kind TEXT PRIMARY KEY, consumed INTEGER NOT NULL)",
    ),
)
SECRETS_V1 = Migration(
    "secrets", 1, ("CREATE TABLE secrets_item (id TEXT PRIMARY KEY, share BLOB NOT NULL)",)
)
BANK_V1 = Migration(
    "bank",
    1,
    (
        "CREATE TABLE bank_acct (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)",
        "INSERT INTO bank_acct (id, balance) VALUES (1, 100), (2, 0)",
        "CREATE TABLE bank_log (n INTEGER PRIMARY KEY AUTOINCREMENT, amount INTEGER NOT NULL)",
    ),
)
ALL = (TUPLES_V1, TUPLES_V2, SECRETS_V1)


class Boom(Exception):
    pass


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _insert_chunk(conn: sqlite3.Connection, chunk_id: int, data: bytes | memoryview) -> None:
    conn.execute("INSERT INTO tuples_chunk (id, data) VALUES (?, ?)", (chunk_id, data))


def _chunk_ids(conn: sqlite3.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT id FROM tuples_chunk ORDER BY id")]


def _pragma(conn: sqlite3.Connection, name: str) -> object:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_fresh_store_applies_migrations_and_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "state" / "nested" / "vcp0.sqlite3"
    with trio.fail_after(10):
        async with open_store(path, ALL) as store:
            assert path.exists()
            stats = store.statistics()
            assert isinstance(stats, StoreStatistics)
            assert stats.path == path
            assert dict(stats.schema_versions) == {"store": 1, "tuples": 2, "secrets": 1}
            assert stats.size_bytes > 0
            assert not stats.closed
            tables = await store.read(_tables)
            assert {"schema_versions", "store_meta", "secrets_item"} <= tables
            assert {"tuples_chunk", "tuples_cursor"} <= tables
            assert await store.read(_pragma, "journal_mode") == "wal"
            assert await store.write(_pragma, "synchronous") == 2  # FULL
            assert await store.write(_pragma, "foreign_keys") == 1
            recorded = await store.read(
                lambda c: dict(c.execute("SELECT owner, version FROM schema_versions"))
            )
            assert recorded == {"store": 1, "tuples": 2, "secrets": 1}


async def test_reopen_is_idempotent_and_durable(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(10):
        async with open_store(path, ALL) as store:
            await store.write(_insert_chunk, 1, b"one")
        # The v1 statement has no IF NOT EXISTS: re-running it would fail.
        async with open_store(path, ALL) as store:
            assert await store.read(_chunk_ids) == [1]
            assert dict(store.statistics().schema_versions)["tuples"] == 2


async def test_later_migration_applies_only_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(10):
        async with open_store(path, [TUPLES_V1]) as store:
            await store.write(_insert_chunk, 7, b"x")
        async with open_store(path, [TUPLES_V2, TUPLES_V1]) as store:  # order given does not matter
            rows = await store.read(
                lambda c: c.execute("SELECT id, kind FROM tuples_chunk").fetchall()
            )
            assert rows == [(7, "triple")]
            assert "tuples_cursor" in await store.read(_tables)
            assert dict(store.statistics().schema_versions) == {"store": 1, "tuples": 2}


async def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(10):
        async with open_store(path, ALL) as store:
            await store.write(_insert_chunk, 1, b"keep")
        before = _digest(path)
        with pytest.raises(SchemaTooNew) as excinfo:
            async with open_store(path, [TUPLES_V1, SECRETS_V1]):
                pytest.fail("must not open")  # pragma: no cover
        message = str(excinfo.value)
        assert str(path) in message
        assert "'tuples'" in message
        assert "schema version 2" in message
        assert "supports up to version 1" in message
        assert "Upgrade vcpd" in message
        assert "downgrade" in message
        assert isinstance(excinfo.value, StoreError)
        assert _digest(path) == before
        # The right vcpd still opens it, data intact.
        async with open_store(path, ALL) as store:
            assert await store.read(_chunk_ids) == [1]


async def test_unknown_owner_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(10):
        async with open_store(path, ALL):
            pass
        before = _digest(path)
        with pytest.raises(SchemaTooNew) as excinfo:
            async with open_store(path, [TUPLES_V1, TUPLES_V2]):
                pytest.fail("must not open")  # pragma: no cover
        message = str(excinfo.value)
        assert str(path) in message
        assert "'secrets'" in message
        assert "does not know that owner" in message
        assert "Upgrade vcpd" in message
        assert _digest(path) == before


async def test_corrupt_file_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"this is certainly not an SQLite database\n" * 200)
    before = _digest(path)
    with trio.fail_after(10):
        with pytest.raises(StoreError) as excinfo:
            async with open_store(path, ALL):
                pytest.fail("must not open")  # pragma: no cover
    assert not isinstance(excinfo.value, SchemaTooNew)
    assert str(path) in str(excinfo.value)
    assert "not a database" in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, sqlite3.DatabaseError)
    assert _digest(path) == before


@pytest.mark.parametrize("layout", ["path_is_directory", "parent_is_file"])
async def test_unusable_path_raises_store_error(tmp_path: Path, layout: str) -> None:
    if layout == "path_is_directory":
        path = tmp_path / "db.sqlite3"
        path.mkdir()
    else:
        (tmp_path / "plain").write_text("a file, not a directory")
        path = tmp_path / "plain" / "db.sqlite3"
    with trio.fail_after(10):
        with pytest.raises(StoreError, match="db.sqlite3"):
            async with open_store(path, ALL):
                pytest.fail("must not open")  # pragma: no cover


async def test_path_that_is_a_directory_raises_store_error(tmp_path: Path) -> None:
    # (A permission test would pass vacuously as root, which CI is; a directory
    # in place of the database file fails for every user.)
    path = tmp_path / "db.sqlite3"
    path.mkdir()
    with trio.fail_after(10):
        with pytest.raises(StoreError, match="db.sqlite3"):
            async with open_store(path, ALL):
                pytest.fail("must not open")


async def test_failing_migration_rolls_back_and_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    broken_v2 = Migration(
        "tuples",
        2,
        (
            "CREATE TABLE tuples_cursor (kind TEXT PRIMARY KEY)",
            "INSERT INTO no_such_table VALUES (1)",
        ),
    )
    with trio.fail_after(10):
        async with open_store(path, [TUPLES_V1]) as store:
            await store.write(_insert_chunk, 1, b"a")
        with pytest.raises(StoreError, match=r"migration tuples v2 failed") as excinfo:
            async with open_store(path, [TUPLES_V1, broken_v2]):
                pytest.fail("must not open")  # pragma: no cover
        assert str(path) in str(excinfo.value)
        async with open_store(path, [TUPLES_V1, TUPLES_V2]) as store:  # the fixed release
            assert await store.read(_chunk_ids) == [1]
            assert dict(store.statistics().schema_versions)["tuples"] == 2


@pytest.mark.parametrize(
    ("migrations", "error"),
    [
        ([Migration("tuples", 2, ())], ValueError),  # must start at 1
        ([TUPLES_V1, TUPLES_V1], ValueError),  # duplicate
        ([TUPLES_V1, Migration("tuples", 3, ())], ValueError),  # gap
        ([Migration("store", 1, ())], ValueError),  # reserved owner
    ],
)
async def test_malformed_migration_lists_are_rejected(
    tmp_path: Path, migrations: list[Migration], error: type[Exception]
) -> None:
    with pytest.raises(error):
        async with open_store(tmp_path / "db.sqlite3", migrations):
            pytest.fail("must not open")  # pragma: no cover
    assert not (tmp_path / "db.sqlite3").exists()


def test_migration_record_checks_its_fields() -> None:
    with pytest.raises(ValueError):
        Migration("Tuples", 1, ())
    with pytest.raises(ValueError):
        Migration("tuples", 0, ())
    with pytest.raises(TypeError):
        Migration("tuples", 1, "CREATE TABLE t (x)")  # type: ignore[arg-type]


async def test_write_is_atomic_on_exception(tmp_path: Path) -> None:
    def insert_then_fail(conn: sqlite3.Connection) -> None:
        for i in range(3):
            _insert_chunk(conn, i, b"x")
        raise Boom("after three inserts")

    def insert_duplicate(conn: sqlite3.Connection) -> None:
        _insert_chunk(conn, 10, b"x")
        _insert_chunk(conn, 10, b"y")

    with trio.fail_after(10):
        async with open_store(tmp_path / "db.sqlite3", ALL) as store:
            with pytest.raises(Boom):  # the caller's own exception, unchanged
                await store.write(insert_then_fail)
            assert await store.read(_chunk_ids) == []
            with pytest.raises(StoreError, match="rolled back") as excinfo:
                await store.write(insert_duplicate)
            assert isinstance(excinfo.value.__cause__, sqlite3.IntegrityError)
            assert await store.read(_chunk_ids) == []
            # The writer is usable afterwards and returns fn's result.
            assert await store.write(lambda c: (_insert_chunk(c, 1, b"ok"), "done")[1]) == "done"
            assert await store.read(_chunk_ids) == [1]


async def test_write_function_may_not_end_the_transaction(tmp_path: Path) -> None:
    def sneaky(conn: sqlite3.Connection) -> None:
        _insert_chunk(conn, 1, b"x")
        conn.execute("COMMIT")

    with trio.fail_after(10):
        async with open_store(tmp_path / "db.sqlite3", ALL) as store:
            with pytest.raises(VcpInternalError):
                await store.write(sneaky)
            await store.write(_insert_chunk, 2, b"y")  # still usable


async def test_reads_cannot_write(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_store(tmp_path / "db.sqlite3", ALL) as store:
            with pytest.raises(StoreError, match="read failed"):
                await store.read(_insert_chunk, 1, b"x")
            assert await store.read(_chunk_ids) == []


async def test_concurrent_reads_and_writes_see_consistent_snapshots(tmp_path: Path) -> None:
    def transfer(conn: sqlite3.Connection, amount: int) -> None:
        conn.execute("UPDATE bank_acct SET balance = balance - ? WHERE id = 1", (amount,))
        conn.execute("UPDATE bank_acct SET balance = balance + ? WHERE id = 2", (amount,))
        conn.execute("INSERT INTO bank_log (amount) VALUES (?)", (amount,))

    def snapshot(conn: sqlite3.Connection) -> tuple[int, int, int]:
        total = conn.execute("SELECT SUM(balance) FROM bank_acct").fetchone()[0]
        moved = conn.execute("SELECT balance FROM bank_acct WHERE id = 2").fetchone()[0]
        logged = conn.execute("SELECT COALESCE(SUM(amount), 0) FROM bank_log").fetchone()[0]
        return total, moved, logged

    rng = random.Random(1)
    amounts = [[rng.randint(-3, 3) for _ in range(5)] for _ in range(20)]
    seen: list[tuple[int, int, int]] = []

    async def writer(batch: list[int]) -> None:
        for amount in batch:
            await store.write(transfer, amount)

    async def reader() -> None:
        for _ in range(10):
            seen.append(await store.read(snapshot))

    with trio.fail_after(10):
        async with open_store(tmp_path / "db.sqlite3", [BANK_V1], readers=3) as store:
            async with trio.open_nursery() as nursery:
                for batch in amounts:
                    nursery.start_soon(writer, batch)
                for _ in range(20):
                    nursery.start_soon(reader)
            final = await store.read(snapshot)
    assert len(seen) == 200
    for total, moved, logged in seen:
        assert total == 100
        assert moved == logged  # never a half-applied transfer
    assert final == (100, sum(map(sum, amounts)), sum(map(sum, amounts)))


async def test_reads_do_not_wait_for_a_write_in_progress(tmp_path: Path) -> None:
    started = trio.Event()
    proceed = threading.Event()

    def slow_insert(conn: sqlite3.Connection) -> None:
        _insert_chunk(conn, 1, b"pending")
        trio.from_thread.run_sync(started.set)
        assert proceed.wait(10)

    with trio.fail_after(10):
        async with open_store(tmp_path / "db.sqlite3", ALL) as store:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.write, slow_insert)
                await started.wait()
                assert await store.read(_chunk_ids) == []  # uncommitted: invisible
                proceed.set()
            assert await store.read(_chunk_ids) == [1]


async def test_cancel_mid_write_completes_the_transaction(tmp_path: Path) -> None:
    started = trio.Event()
    proceed = threading.Event()

    def two_inserts(conn: sqlite3.Connection) -> None:
        _insert_chunk(conn, 1, b"first")
        trio.from_thread.run_sync(started.set)
        assert proceed.wait(10)
        _insert_chunk(conn, 2, b"second")

    with trio.fail_after(10):
        async with open_store(tmp_path / "db.sqlite3", ALL) as store:
            scope = trio.CancelScope()

            async def cancellable_write() -> None:
                with scope:
                    await store.write(two_inserts)
                    await trio.lowlevel.checkpoint()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancellable_write)
                await started.wait()
                scope.cancel()
                proceed.set()
            assert scope.cancelled_caught
            assert await store.read(_chunk_ids) == [1, 2]  # all of it, never half
            await store.write(_insert_chunk, 3, b"after")  # lock released, writer idle
            assert await store.read(_chunk_ids) == [1, 2, 3]


async def test_cancel_while_queued_does_nothing(tmp_path: Path) -> None:
    started = trio.Event()
    proceed = threading.Event()

    def blocking_insert(conn: sqlite3.Connection) -> None:
        _insert_chunk(conn, 1, b"first")
        trio.from_thread.run_sync(started.set)
        assert proceed.wait(10)

    with trio.fail_after(10):
        async with open_store(tmp_path / "db.sqlite3", ALL) as store:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.write, blocking_insert)
                await started.wait()
                queued = trio.CancelScope()

                async def queued_write() -> None:
                    with queued:
                        await store.write(_insert_chunk, 2, b"never")

                nursery.start_soon(queued_write)
                await trio.testing.wait_all_tasks_blocked()
                queued.cancel()
                proceed.set()
            assert queued.cancelled_caught
            assert await store.read(_chunk_ids) == [1]


async def test_32mb_blob_round_trip_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    blob = random.Random(7).randbytes(32 * 1024 * 1024)

    def load(conn: sqlite3.Connection, chunk_id: int) -> bytes:
        return conn.execute("SELECT data FROM tuples_chunk WHERE id = ?", (chunk_id,)).fetchone()[0]

    with trio.fail_after(10):
        async with open_store(path, ALL) as store:
            await store.write(_insert_chunk, 1, memoryview(blob))
            assert await store.read(load, 1) == blob
        wal = tmp_path / "db.sqlite3-wal"
        assert not wal.exists() or wal.stat().st_size == 0  # checkpointed on close
        assert path.stat().st_size > len(blob)
        async with open_store(path, ALL) as store:
            assert await store.read(load, 1) == blob


async def test_meta_get_set_persists(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(10):
        async with open_store(path) as store:
            assert await store.get_meta("party_id") is None
            await store.set_meta("party_id", "0")
            await store.set_meta("vc_digest", "abc")
            await store.set_meta("vc_digest", "def")
            assert await store.get_meta("vc_digest") == "def"
        async with open_store(path) as store:
            assert await store.get_meta("party_id") == "0"
            assert await store.get_meta("vc_digest") == "def"


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_store(tmp_path / "db.sqlite3", ALL) as store:
            assert "open" in repr(store)
        assert isinstance(store, Store)
        assert store.statistics().closed
        await store.aclose()  # idempotent
        with pytest.raises(StoreError, match="closed"):
            await store.read(_chunk_ids)
        with pytest.raises(StoreError, match="closed"):
            await store.set_meta("k", "v")
