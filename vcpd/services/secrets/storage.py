"""The secret store's tables and the SQL that reads and writes them.

Three tables, all owned by ``secrets`` (see :data:`MIGRATIONS`):

* ``secrets_secret`` -- one row per secret: owner key, creation date,
  encoding, length and this VCP's shares as one blob (value‖MAC, 32 bytes
  per element, the Carbyne/MP-SPDZ layout);
* ``secrets_tag`` -- its tags, reserved ones (``owner``, ``creation-date``)
  included so that filters and sorting treat them like any other; LONG tags
  also keep their value as an integer for numeric comparison;
* ``secrets_grant`` -- (secret, grantee key, action) rights the owner gave
  (read and written by :mod:`~vcpd.services.secrets.acl`).

Every function here is synchronous and takes a :class:`sqlite3.Connection`:
the service runs it through :meth:`vcpd.store.Store.read`/``write``, so each
call is one transaction. No function logs or formats share bytes.

This module must not import trio or any vcpd module other than
:mod:`vcpd.errors`, :mod:`vcpd.store`, :mod:`vcpd.services.ports` and its own
package.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from vcpd.errors import RequestError, StoreError
from vcpd.services.ports import SecretEncoding
from vcpd.store import Migration

from .model import CREATION_DATE_TAG, OWNER_TAG, Sort, Tag, TagFilter

__all__ = [
    "MIGRATIONS",
    "SecretRecord",
    "delete_secrets",
    "delete_tags",
    "get_tags",
    "insert_secret",
    "list_secrets",
    "load_record",
    "reserved_tags",
    "secret_exists",
    "set_tags",
]

OWNER: Final = "secrets"

MIGRATIONS: Final = (
    Migration(
        OWNER,
        1,
        (
            "CREATE TABLE secrets_secret ("
            " id TEXT PRIMARY KEY NOT NULL,"
            " owner TEXT NOT NULL,"
            " created_ms INTEGER NOT NULL,"
            " encoding TEXT NOT NULL,"
            " fraction_bits INTEGER NOT NULL,"
            " length INTEGER NOT NULL CHECK (length > 0),"
            " shares BLOB NOT NULL CHECK (length(shares) = 32 * length))",
            "CREATE TABLE secrets_tag ("
            " secret_id TEXT NOT NULL REFERENCES secrets_secret(id) ON DELETE CASCADE,"
            " key TEXT NOT NULL,"
            " value TEXT NOT NULL,"
            " type TEXT NOT NULL CHECK (type IN ('STRING', 'LONG')),"
            " number INTEGER,"
            " PRIMARY KEY (secret_id, key)) WITHOUT ROWID",
            "CREATE INDEX secrets_tag_value ON secrets_tag (key, value)",
            "CREATE INDEX secrets_tag_number ON secrets_tag (key, number)",
            "CREATE TABLE secrets_grant ("
            " secret_id TEXT NOT NULL REFERENCES secrets_secret(id) ON DELETE CASCADE,"
            " grantee TEXT NOT NULL,"
            " action TEXT NOT NULL,"
            " PRIMARY KEY (secret_id, grantee, action)) WITHOUT ROWID",
            "CREATE INDEX secrets_grant_grantee ON secrets_grant (grantee, action)",
        ),
    ),
)
"""The secret store's schema (owner ``secrets``); pass it to :func:`vcpd.store.open_store`."""


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """A stored secret as this VCP holds it.

    Attributes:
        id: the UUID, the same on every VCP.
        owner: the uploader's (or executor's) public key, base64.
        created_ms: creation date, ms since the epoch (agreed by all VCPs).
        encoding: how the client encoded its values.
        length: number of field elements.
        tags: every tag, reserved ones included, sorted by key.
        shares: this VCP's value‖MAC shares (None when not loaded).
    """

    id: str
    owner: str
    created_ms: int
    encoding: SecretEncoding
    length: int
    tags: tuple[Tag, ...]
    shares: bytes | None = None

    def __repr__(self) -> str:  # never show share bytes
        return f"<SecretRecord {self.id} n={self.length}>"


def reserved_tags(owner: str, created_ms: int) -> tuple[Tag, Tag]:
    """The server-set tags of a new secret."""
    return Tag(OWNER_TAG, owner, "STRING"), Tag(CREATION_DATE_TAG, str(created_ms), "LONG")


def _insert_tags(conn: sqlite3.Connection, secret_id: str, tags: Sequence[Tag]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO secrets_tag (secret_id, key, value, type, number) VALUES (?, ?, ?, ?, ?)",
        [(secret_id, t.key, t.value, t.type, t.number) for t in tags],
    )


def insert_secret(conn: sqlite3.Connection, record: SecretRecord) -> None:
    """Store a new secret with its tags (the reserved ones are added here).

    Raises:
        RequestError: ``conflict`` if the id exists on this VCP.
    """
    assert record.shares is not None
    exists = conn.execute("SELECT 1 FROM secrets_secret WHERE id = ?", (record.id,)).fetchone()
    if exists is not None:
        raise RequestError("conflict", f"a secret with id {record.id} already exists")
    conn.execute(
        "INSERT INTO secrets_secret (id, owner, created_ms, encoding, fraction_bits, length, shares)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            record.id,
            record.owner,
            record.created_ms,
            record.encoding.kind,
            record.encoding.fraction_bits,
            record.length,
            record.shares,
        ),
    )
    user_tags = [t for t in record.tags if t.key not in (OWNER_TAG, CREATION_DATE_TAG)]
    _insert_tags(conn, record.id, [*reserved_tags(record.owner, record.created_ms), *user_tags])


def secret_exists(conn: sqlite3.Connection, secret_id: str) -> bool:
    """Whether a secret with this id is stored here (whoever may see it)."""
    return conn.execute("SELECT 1 FROM secrets_secret WHERE id = ?", (secret_id,)).fetchone() is not None


def _tags_of(conn: sqlite3.Connection, secret_id: str) -> tuple[Tag, ...]:
    rows = conn.execute(
        "SELECT key, value, type FROM secrets_tag WHERE secret_id = ? ORDER BY key", (secret_id,)
    ).fetchall()
    return tuple(Tag(str(k), str(v), t) for k, v, t in rows)


def _record(conn: sqlite3.Connection, row: tuple[object, ...], with_shares: bool) -> SecretRecord:
    secret_id, owner, created, kind, bits, length, shares = row
    try:
        encoding = SecretEncoding(str(kind), int(bits))  # type: ignore[call-overload]
    except ValueError as exc:
        raise StoreError(f"secret {secret_id} has a malformed encoding in the store: {exc}") from None
    return SecretRecord(
        id=str(secret_id),
        owner=str(owner),
        created_ms=int(created),  # type: ignore[call-overload]
        encoding=encoding,
        length=int(length),  # type: ignore[call-overload]
        tags=_tags_of(conn, str(secret_id)),
        shares=bytes(shares) if with_shares and shares is not None else None,  # type: ignore[arg-type]
    )


def load_record(conn: sqlite3.Connection, secret_id: str, *, with_shares: bool = False) -> SecretRecord | None:
    """One secret with its tags (and shares if asked); None if absent."""
    shares = "shares" if with_shares else "NULL"
    row = conn.execute(
        f"SELECT id, owner, created_ms, encoding, fraction_bits, length, {shares}"  # noqa: S608 - fixed text
        " FROM secrets_secret WHERE id = ?",
        (secret_id,),
    ).fetchone()
    return None if row is None else _record(conn, row, with_shares)


def delete_secrets(conn: sqlite3.Connection, secret_ids: Sequence[str]) -> int:
    """Delete secrets (tags and grants cascade); returns how many existed."""
    deleted = 0
    for secret_id in secret_ids:
        deleted += conn.execute("DELETE FROM secrets_secret WHERE id = ?", (secret_id,)).rowcount
    return deleted


def set_tags(conn: sqlite3.Connection, secret_id: str, tags: Sequence[Tag], max_tags: int) -> None:
    """Create or update non-reserved tags of an existing secret.

    Raises:
        RequestError: ``bad-request`` if the secret would carry more than ``max_tags``.
    """
    existing = {t.key for t in _tags_of(conn, secret_id)}
    total = len(existing | {t.key for t in tags})
    if total > max_tags:
        raise RequestError("bad-request", f"a secret may carry at most {max_tags} tags; this would make {total}")
    _insert_tags(conn, secret_id, tags)


def delete_tags(conn: sqlite3.Connection, secret_id: str, keys: Sequence[str]) -> list[str]:
    """Delete tags by key; returns the keys that did not exist (nothing deleted then).

    All or nothing: a missing key leaves every tag in place, so a typo does not
    half-apply.
    """
    existing = {t.key for t in _tags_of(conn, secret_id)}
    missing = [k for k in keys if k not in existing]
    if missing:
        return missing
    conn.executemany("DELETE FROM secrets_tag WHERE secret_id = ? AND key = ?", [(secret_id, k) for k in keys])
    return []


def get_tags(conn: sqlite3.Connection, secret_id: str) -> tuple[Tag, ...]:
    """Every tag of a secret, sorted by key."""
    return _tags_of(conn, secret_id)


def _filter_sql(f: TagFilter) -> tuple[str, tuple[object, ...]]:
    if f.op == "=":
        return "s.id IN (SELECT secret_id FROM secrets_tag WHERE key = ? AND value = ?)", (f.key, f.value)
    comparison = "<" if f.op == "<" else ">"
    return (
        f"s.id IN (SELECT secret_id FROM secrets_tag WHERE key = ? AND type = 'LONG' AND number {comparison} ?)",
        (f.key, f.number),
    )


def list_secrets(
    conn: sqlite3.Connection,
    caller: str,
    filters: Sequence[TagFilter],
    sort: Sort,
    offset: int,
    limit: int,
) -> tuple[list[SecretRecord], int]:
    """One page of the secrets ``caller`` may read that match every filter.

    Returns:
        The page (tags loaded, shares not) and the total number of matches.
    """
    where = ["(s.owner = ? OR s.id IN (SELECT secret_id FROM secrets_grant WHERE grantee = ? AND action = 'read'))"]
    params: list[object] = [caller, caller]
    for f in filters:
        clause, values = _filter_sql(f)
        where.append(clause)
        params.extend(values)
    condition = " AND ".join(where)
    total = conn.execute(f"SELECT count(*) FROM secrets_secret s WHERE {condition}", params).fetchone()[0]  # noqa: S608
    direction = "DESC" if sort.descending else "ASC"
    # Secrets lacking the sort tag come last; LONG values sort numerically
    # before STRING values sorted as text; creation date and id break ties.
    rows = conn.execute(
        "SELECT s.id, s.owner, s.created_ms, s.encoding, s.fraction_bits, s.length, NULL"  # noqa: S608
        " FROM secrets_secret s LEFT JOIN secrets_tag t ON t.secret_id = s.id AND t.key = ?"
        f" WHERE {condition}"
        " ORDER BY (t.key IS NULL), (t.type = 'STRING'),"
        f" t.number {direction}, t.value {direction}, s.created_ms {direction}, s.id {direction}"
        " LIMIT ? OFFSET ?",
        [sort.key, *params, limit, offset],
    ).fetchall()
    return [_record(conn, row, False) for row in rows], int(total)
