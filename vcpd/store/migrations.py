"""Versioned schema migrations: the record type, plan checks and the bookkeeping.

Each service owns its tables and ships an ordered list of :class:`Migration`
records for them under its own *owner* name ("tuples", "secrets", ...). The
table ``schema_versions`` records, per owner, the last version applied. Opening
a store applies what is pending, one transaction per migration, and refuses a
database that some newer vcpd has already moved past: a downgrade could
misread tuple cursors and hand out a tuple twice, so we never try.

Everything here is synchronous and runs in the store's worker thread, on the
writer connection. This module must not import trio nor any vcpd module other
than :mod:`vcpd.errors`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vcpd.errors import SchemaTooNew, StoreError

__all__ = [
    "STORE_OWNER",
    "Migration",
    "apply_pending",
    "check_not_too_new",
    "ensure_bookkeeping",
    "plan",
    "read_versions",
]

STORE_OWNER = "store"
"""The owner name the store itself uses for its metadata table; reserved."""

_OWNER_RE = re.compile(r"[a-z][a-z0-9_]*\Z")

Plan = Mapping[str, tuple["Migration", ...]]
"""Migrations grouped by owner, in version order 1, 2, ...; owners in first-seen order."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of one owner's schema.

    Attributes:
        owner: the service that owns the tables touched, a lowercase identifier.
            Prefix your table names with it so owners never collide.
        version: 1 for the first migration of the owner, then 2, 3, ...
            Once released, a migration is never edited: add a new one instead,
            because databases in the field have already run the old text.
        statements: SQL statements, one per string (``executescript`` is not
            used, since it would commit behind our back). They run in a single
            transaction together with the version bump, so a migration is all
            or nothing; PRAGMAs that cannot run inside a transaction do not
            belong here.
    """

    owner: str
    version: int
    statements: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.owner, str) or not _OWNER_RE.match(self.owner):
            raise ValueError(f"migration owner must be a lowercase identifier, got {self.owner!r}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ValueError(
                f"migration {self.owner} version must be an int >= 1, got {self.version!r}"
            )
        # A bare string is iterable too; catching it here saves running SQL one letter at a time.
        statements = self.statements
        if not isinstance(statements, tuple) or not all(isinstance(s, str) for s in statements):
            raise TypeError(
                f"migration {self.owner} v{self.version}: statements must be a tuple of str"
            )


def plan(
    migrations: Iterable[Migration], *, reserved: Iterable[str] = ()
) -> dict[str, tuple[Migration, ...]]:
    """Group migrations by owner and check each owner's versions run 1..n.

    Args:
        migrations: every migration this vcpd knows, in any order.
        reserved: owner names callers may not use (the store's own).

    Returns:
        Owner -> its migrations sorted by version, owners in first-seen order.

    Raises:
        ValueError: a reserved owner, a duplicate version or a gap. These are
            bugs in vcpd, found at start-up before the database is touched.
    """
    reserved_set = set(reserved)
    grouped: dict[str, list[Migration]] = {}
    for migration in migrations:
        if migration.owner in reserved_set:
            raise ValueError(
                f"migration owner {migration.owner!r} is reserved for the store itself"
            )
        grouped.setdefault(migration.owner, []).append(migration)
    result: dict[str, tuple[Migration, ...]] = {}
    for owner, items in grouped.items():
        items.sort(key=lambda m: m.version)
        versions = [m.version for m in items]
        if versions != list(range(1, len(items) + 1)):
            raise ValueError(
                f"migrations of owner {owner!r} must have versions 1..{len(items)}, got {versions}"
            )
        result[owner] = tuple(items)
    return result


def read_versions(conn: sqlite3.Connection) -> dict[str, int]:
    """Return owner -> applied version as recorded in the database.

    An empty dict for a fresh database (no ``schema_versions`` table yet). Only
    reads, so it is safe on a database we are about to refuse.
    """
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_versions'"
    ).fetchone()
    if exists is None:
        return {}
    found: dict[str, int] = {}
    for owner, version in conn.execute("SELECT owner, version FROM schema_versions"):
        if not isinstance(owner, str) or isinstance(version, bool) or not isinstance(version, int):
            raise StoreError(f"schema_versions holds a malformed row ({owner!r}, {version!r})")
        found[owner] = version
    return found


def check_not_too_new(path: Path, found: Mapping[str, int], known: Plan) -> None:
    """Raise :class:`SchemaTooNew` if the database is ahead of this code anywhere.

    Ahead means: an owner recorded at a version above the highest migration we
    have for it, or an owner we have no migrations for at all (a newer vcpd
    added a service). Either way the only safe fix is a newer vcpd.
    """
    problems = []
    for owner, version in sorted(found.items()):
        supported = len(known.get(owner, ()))
        if version > supported:
            if owner in known:
                problems.append(
                    f"owner {owner!r} is at schema version {version}, "
                    f"but this vcpd supports up to version {supported}"
                )
            else:
                problems.append(
                    f"owner {owner!r} is at schema version {version}, "
                    f"but this vcpd does not know that owner (supported version 0)"
                )
    if problems:
        raise SchemaTooNew(
            f"{path}: the database was written by a newer vcpd: {'; '.join(problems)}. "
            "Upgrade vcpd to a release that supports this schema. The file was left untouched; "
            "do not downgrade it or edit it by hand."
        )


def ensure_bookkeeping(conn: sqlite3.Connection) -> None:
    """Create ``schema_versions`` if missing (own transaction)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions ("
            "owner TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL)"
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def apply_pending(path: Path, conn: sqlite3.Connection, known: Plan) -> dict[str, int]:
    """Apply every migration newer than what the database records.

    One transaction per migration (statements plus version bump), so a crash
    or a failing statement leaves the database at the previous version, never
    in between. Re-reads the recorded version inside each transaction rather
    than trusting an earlier read.

    Returns:
        Owner -> version now applied, for every owner in ``known``.

    Raises:
        StoreError: a statement failed; names the owner, version and cause.
    """
    versions: dict[str, int] = {}
    for owner, migrations in known.items():
        for migration in migrations:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT version FROM schema_versions WHERE owner = ?", (owner,)
                ).fetchone()
                current = 0 if row is None else int(row[0])
                if migration.version <= current:
                    conn.execute("ROLLBACK")
                    continue
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO schema_versions (owner, version) VALUES (?, ?)",
                    (owner, migration.version),
                )
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(
                    f"{path}: migration {owner} v{migration.version} failed "
                    f"and was rolled back: {exc}"
                ) from exc
        versions[owner] = len(migrations)
    return versions
