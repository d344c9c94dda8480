"""Access control of secrets, decided by each VCP on its own.

The owner (the uploading client's key, or the executing client's for program
results) may do everything, including granting and revoking other client
keys the actions of :data:`~vcpd.services.secrets.model.ACTIONS`. Nobody else
may do anything without a grant -- admin keys included: running a VCP does not
entitle anyone to read its clients' secrets.

Refusals are shaped so that they do not leak existence: a caller holding no
right at all on a secret gets ``not-found``, exactly as if it did not exist; a
caller that holds some right (so already knows the secret exists) but not the
one needed gets ``forbidden``.

Rights live in the ``secrets_grant`` table (created by
:data:`~vcpd.services.secrets.storage.MIGRATIONS`); the SQL functions here are
synchronous and run inside the service's store transactions, so a decision and
the change it allows commit together.

This module must not import trio or any vcpd module other than
:mod:`vcpd.errors` and its own package.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from vcpd.errors import RequestError

__all__ = ["OWNER_ONLY", "Action", "Rights", "grant", "list_grants", "load_rights", "may", "require", "revoke"]

OWNER_ONLY: Final = "grant"
"""The pseudo-action for what only the owner may do (grant, revoke, list grants)."""

Action = Literal["read", "use", "delete", "tag", "grant"]


@dataclass(frozen=True, slots=True)
class Rights:
    """What one caller may do with one secret on this VCP."""

    owner: str
    granted: frozenset[str]


def may(rights: Rights, caller: str, action: Action) -> bool:
    """Whether ``caller`` may perform ``action`` given ``rights``."""
    if caller == rights.owner:
        return True
    return action != OWNER_ONLY and action in rights.granted


def require(rights: Rights | None, caller: str, action: Action, secret_id: str) -> Rights:
    """Return ``rights`` if ``caller`` may perform ``action``, else raise.

    Raises:
        RequestError: ``not-found`` if the secret does not exist or the caller
            holds no right on it; ``forbidden`` if it holds some other right.
    """
    if rights is None or (caller != rights.owner and not rights.granted):
        raise RequestError("not-found", f"no secret {secret_id} (or it is not visible to this key)")
    if not may(rights, caller, action):
        if action == OWNER_ONLY:
            raise RequestError("forbidden", f"only the owner may grant or revoke rights on secret {secret_id}")
        raise RequestError("forbidden", f"this key may not {action} secret {secret_id}; ask its owner for a grant")
    return rights


def check(conn: sqlite3.Connection, secret_id: str, caller: str, action: Action) -> Rights:
    """Load the rights and :func:`require` ``action``, in the caller's transaction."""
    return require(load_rights(conn, secret_id, caller), caller, action, secret_id)


def load_rights(conn: sqlite3.Connection, secret_id: str, caller: str) -> Rights | None:
    """The owner and the actions granted to ``caller``; None if no such secret."""
    row = conn.execute("SELECT owner FROM secrets_secret WHERE id = ?", (secret_id,)).fetchone()
    if row is None:
        return None
    granted = conn.execute(
        "SELECT action FROM secrets_grant WHERE secret_id = ? AND grantee = ?", (secret_id, caller)
    ).fetchall()
    return Rights(owner=str(row[0]), granted=frozenset(str(a) for (a,) in granted))


def grant(conn: sqlite3.Connection, secret_id: str, grantee: str, actions: Sequence[str]) -> None:
    """Give ``grantee`` the ``actions`` (idempotent)."""
    conn.executemany(
        "INSERT OR IGNORE INTO secrets_grant (secret_id, grantee, action) VALUES (?, ?, ?)",
        [(secret_id, grantee, a) for a in actions],
    )


def revoke(conn: sqlite3.Connection, secret_id: str, grantee: str, actions: Sequence[str]) -> None:
    """Take ``actions`` away from ``grantee`` (idempotent)."""
    conn.executemany(
        "DELETE FROM secrets_grant WHERE secret_id = ? AND grantee = ? AND action = ?",
        [(secret_id, grantee, a) for a in actions],
    )


def list_grants(conn: sqlite3.Connection, secret_id: str) -> dict[str, list[str]]:
    """Grantee -> granted actions of one secret."""
    result: dict[str, list[str]] = {}
    for grantee, action in conn.execute(
        "SELECT grantee, action FROM secrets_grant WHERE secret_id = ? ORDER BY grantee, action", (secret_id,)
    ):
        result.setdefault(str(grantee), []).append(str(action))
    return result
