"""Metadata changes that every VCP makes or none does: tags, grants, deletes.

A client sends the same change (with one request id) to every VCP. Each VCP
applied it on its own before, so a VCP that was down, or on which the caller
lacked the right (after a revoke that reached only some VCPs), or that did
not hold the secret, left the VCPs disagreeing: tags differing per VCP, a
secret deleted on some VCPs only and unreadable from then on.

Now each VCP first runs the change as a *dry run* -- the very write, rolled
back -- so its verdict is exactly what the change would do here (``forbidden``,
``not-found``, a tag limit...). Then the VCPs agree (:func:`.agreement.agree`)
on their verdicts and on a digest of the change; only if every VCP said yes
and they all received the same change does each VCP make it, in one
transaction. A VCP that is down or never receives the request makes the
others fail their agreement (peer unavailable, or the session times out):
nothing changes anywhere, and the client can simply retry.

What this does not cover: a VCP that crashes, or whose disk fails, between
the agreement and its own commit, and a concurrent change on one VCP between
its dry run and its commit (the commit re-checks everything, so it fails
there alone). Both leave a divergence that the next read of the secret
reports (the VCPs' answers or digests differ) rather than hides.

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.logs`, :mod:`vcpd.protocol`, :mod:`vcpd.store` and its own package.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

from vcpd.errors import RequestError

from .agreement import agree, digest
from .context import ProtocolContext, request_session, session_name

__all__ = ["agreed_change"]

T = TypeVar("T")


class _DryRun(Exception):
    """Raised inside the dry run's transaction so that it rolls back."""


async def agreed_change(
    ctx: ProtocolContext,
    caller: str,
    request_id: str,
    kind: str,
    change: Callable[[sqlite3.Connection], T],
    *parts: bytes | str | int,
) -> T:
    """Make ``change`` on this VCP only if every VCP can make the same change.

    Args:
        kind: the change's name (``delete``, ``tags.set``, ...): part of the
            session name and the digest.
        change: the write; it checks the caller's rights and raises
            :class:`RequestError` to refuse. It runs twice: rolled back, then
            for real.
        parts: what identifies the change (ids, canonical tags, grantee,
            actions) for the digest the VCPs compare.

    Raises:
        RequestError: this VCP's refusal, another VCP's refusal code, or
            ``bad-request`` if the VCPs received different changes.
        PeerUnavailable, SessionAborted: a VCP is unreachable or the session
            failed; nothing was changed here.
    """

    def dry_run(conn: sqlite3.Connection) -> None:
        change(conn)
        raise _DryRun

    refusal: RequestError | None = None
    try:
        await ctx.store.write(dry_run)
    except _DryRun:
        pass
    except RequestError as exc:
        refusal = exc
    own = digest("change", kind, request_id, caller, *parts)
    async with request_session(ctx, session_name(kind, request_id, caller)) as session:
        outcome = await agree(
            session,
            refusal,
            own,
            mismatch=lambda: RequestError(
                "bad-request", f"the VCPs received different {kind} requests; nothing was changed"
            ),
        )
    if isinstance(outcome, RequestError):
        raise outcome
    return await ctx.store.write(change)
