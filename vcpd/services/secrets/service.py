"""The secret store service of one VCP (Carbyne Stack's Amphora).

:class:`SecretStore` is what the API layer and the executor talk to. Every
method takes the caller's public key and decides access on this VCP alone
(:mod:`~vcpd.services.secrets.acl`); checks and changes run in one store
transaction, so a grant revoked a moment ago cannot slip through. The
multi-party operations (upload, download, derived results) live in
:mod:`~vcpd.services.secrets.upload` and
:mod:`~vcpd.services.secrets.download`.

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.logs`, :mod:`vcpd.math`, :mod:`vcpd.protocol`, :mod:`vcpd.store`,
:mod:`vcpd.services.ports` and its own package (never another service).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from vcpd.errors import FieldError, MacCheckFailure, RequestError, SessionAborted
from vcpd.logs import get_logger
from vcpd.math import PrimeField, Shares
from vcpd.protocol.online import OnlineParty
from vcpd.protocol.transport import Session, Transport
from vcpd.services.ports import SecretEncoding, TupleSource
from vcpd.store import Store

from . import acl, storage
from .agreement import agree, digest
from .changes import agreed_change
from .context import SESSION_TIMEOUT, OnlineFactory, ProtocolContext, request_session, session_name
from .delivery import DOWNLOAD_TUPLES_PER_ELEMENT
from .download import download
from .model import (
    MAX_PAGE_SIZE,
    MAX_SECRET_LENGTH,
    MAX_TAGS,
    Sort,
    Tag,
    TagFilter,
    canonical_tags,
    encoding_to_wire,
    parse_encoding,
    parse_secret_id,
    tags_from_mapping,
)
from .upload import UPLOAD_COMMIT_TIMEOUT, UPLOAD_TUPLES_PER_ELEMENT, Uploads, agreed_time, store_everywhere

__all__ = ["SecretStore", "default_online"]

log = get_logger("secrets")

_MAX_USE_BATCH: Final = 10_000  # secrets one load_for_use call may ask for


def default_online(session: Session, field: PrimeField, alpha_share: int) -> OnlineParty:
    """The online engine of a request's session in the daemon.

    Seed commitments ride along with the first opening (a MAC check takes
    three rounds instead of four), what one flight carries goes to each peer
    as one message, and million-element arithmetic runs in worker threads,
    keeping the peer links served meanwhile.
    """
    return OnlineParty(
        session, field, alpha_share, precommit_seed=True, bundle_flights=True, worker_threads=True
    )


def _metadata(record: storage.SecretRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "length": record.length,
        **encoding_to_wire(record.encoding),
        "tags": [t.to_wire() for t in record.tags],
    }


class SecretStore:
    """Secrets as SPDZ shares with tags, verified client I/O and access control.

    Args:
        store: this VCP's open store (migrated with
            :data:`~vcpd.services.secrets.MIGRATIONS`).
        transport: sessions with the other VCPs.
        tuples: where masks and triples come from.
        field: the VC's field.
        alpha_share: this VCP's MAC key share α_i.
        online: builds the online engine of a session (default:
            :class:`vcpd.protocol.online.OnlineParty`).
        session_timeout: seconds one multi-party request may take.
        commit_timeout: seconds an upload may wait for its commit.
    """

    def __init__(
        self,
        store: Store,
        transport: Transport,
        tuples: TupleSource,
        field: PrimeField,
        alpha_share: int,
        *,
        online: OnlineFactory | None = None,
        session_timeout: float = SESSION_TIMEOUT,
        commit_timeout: float = UPLOAD_COMMIT_TIMEOUT,
    ) -> None:
        self._ctx = ProtocolContext(
            store=store,
            transport=transport,
            tuples=tuples,
            field=field,
            alpha_share=alpha_share,
            online=online or default_online,
            session_timeout=session_timeout,
        )
        self._uploads = Uploads(self._ctx, commit_timeout=commit_timeout)
        self._downloads = 0
        self._mac_failures = 0

    def __repr__(self) -> str:
        return f"<SecretStore party={self._ctx.party}>"

    @property
    def field(self) -> PrimeField:
        """The VC's field."""
        return self._ctx.field

    @property
    def party(self) -> int:
        """This VCP's index."""
        return self._ctx.party

    def statistics(self) -> dict[str, Any]:
        """Counters for ``status``, and the documented tuple cost per element."""
        return {
            "uploads_pending": self._uploads.pending,
            "uploads_begun": self._uploads.begun,
            "uploads_committed": self._uploads.committed,
            "uploads_expired": self._uploads.expired,
            "downloads": self._downloads,
            "mac_check_failures": self._mac_failures,
            "tuples_per_element": {
                "upload": dict(UPLOAD_TUPLES_PER_ELEMENT),
                "download": dict(DOWNLOAD_TUPLES_PER_ELEMENT),
            },
        }

    # ------------------------------------------------------------ client I/O

    async def begin_upload(self, caller: str, secret_id: str, count: int, request_id: str) -> dict[str, Any]:
        """Upload step 1 (see :mod:`~vcpd.services.secrets.upload`): shares of fresh triples."""
        return await self._uploads.begin(caller, secret_id, count, request_id)

    async def commit_upload(
        self,
        caller: str,
        secret_id: str,
        request_id: str,
        mu: bytes,
        tags: tuple[Tag, ...],
        encoding: SecretEncoding,
    ) -> dict[str, Any]:
        """Upload step 3: store x = a + μ on every VCP or on none."""
        return await self._uploads.commit(caller, secret_id, request_id, mu, tags, encoding)

    async def download(self, caller: str, secret_id: str, request_id: str) -> dict[str, Any]:
        """This VCP's verified-download answer (see :mod:`~vcpd.services.secrets.download`)."""
        try:
            answer = await download(self._ctx, caller, secret_id, request_id)
        except MacCheckFailure:
            self._mac_failures += 1
            log.warning(
                "MAC check failed while delivering a secret: a VCP deviated or a stored share was altered; "
                "nothing was released",
                extra={"ctx": {"secret": secret_id}},
            )
            raise
        self._downloads += 1
        return answer

    # ------------------------------------------------------------ metadata

    async def list(self, caller: str, filters: Sequence[TagFilter], sort: Sort, page: int, size: int) -> dict[str, Any]:
        """One page of the secrets ``caller`` may read that match every filter.

        Raises:
            RequestError: ``bad-request`` for a negative page or a size outside
                1..:data:`~vcpd.services.secrets.model.MAX_PAGE_SIZE`.
        """
        if page < 0:
            raise RequestError("bad-request", f"page numbers start at 0, got {page}")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise RequestError("bad-request", f"size must be in 1..{MAX_PAGE_SIZE}, got {size}")
        if page * size > 1 << 62:
            raise RequestError("bad-request", "page is too large")
        records, total = await self._ctx.store.read(storage.list_secrets, caller, filters, sort, page * size, size)
        return {
            "secrets": [_metadata(r) for r in records],
            "page": page,
            "size": size,
            "total": total,
            "pages": -(-total // size),
        }

    async def get_tags(self, caller: str, secret_id: str) -> list[dict[str, str]]:
        """Every tag of a secret the caller may read (reserved ones included)."""

        def run(conn: sqlite3.Connection) -> tuple[Tag, ...]:
            acl.check(conn, secret_id, caller, "read")
            return storage.get_tags(conn, secret_id)

        return [t.to_wire() for t in await self._ctx.store.read(run)]

    # Changes: every VCP makes them or none does (see :mod:`.changes`).

    async def set_tags(self, caller: str, secret_id: str, tags: Sequence[Tag], request_id: str) -> None:
        """Create or update tags (``tag`` right); reserved keys are refused by the model."""

        def run(conn: sqlite3.Connection) -> None:
            acl.check(conn, secret_id, caller, "tag")
            storage.set_tags(conn, secret_id, tags, MAX_TAGS)

        parts = [f"{key}\x00{kind}\x00{value}" for key, kind, value in canonical_tags(tags)]
        await agreed_change(self._ctx, caller, request_id, "tags.set", run, secret_id, *parts)

    async def delete_tags(self, caller: str, secret_id: str, keys: Sequence[str], request_id: str) -> None:
        """Delete tags by key (``tag`` right); all or nothing.

        Raises:
            RequestError: ``not-found`` naming a key the secret does not carry.
        """

        def run(conn: sqlite3.Connection) -> None:
            acl.check(conn, secret_id, caller, "tag")
            missing = storage.delete_tags(conn, secret_id, keys)
            if missing:
                raise RequestError("not-found", f"secret {secret_id} has no tag {missing[0]!r}; no tag was deleted")

        await agreed_change(self._ctx, caller, request_id, "tags.delete", run, secret_id, *sorted(keys))

    async def delete(self, caller: str, secret_ids: Sequence[str], request_id: str) -> int:
        """Delete secrets (``delete`` right on each); all or nothing, on every VCP."""

        def run(conn: sqlite3.Connection) -> int:
            for secret_id in secret_ids:
                acl.check(conn, secret_id, caller, "delete")
            return storage.delete_secrets(conn, secret_ids)

        deleted = await agreed_change(self._ctx, caller, request_id, "delete", run, *sorted(secret_ids))
        log.info("secrets deleted", extra={"ctx": {"count": deleted}})
        return deleted

    async def grant(self, caller: str, secret_id: str, grantee: str, actions: Sequence[str], request_id: str) -> None:
        """Give ``grantee`` the ``actions`` on a secret (owner only)."""

        def run(conn: sqlite3.Connection) -> None:
            acl.check(conn, secret_id, caller, acl.OWNER_ONLY)
            acl.grant(conn, secret_id, grantee, actions)

        await agreed_change(self._ctx, caller, request_id, "grant", run, secret_id, grantee, *sorted(actions))

    async def revoke(self, caller: str, secret_id: str, grantee: str, actions: Sequence[str], request_id: str) -> None:
        """Take ``actions`` on a secret away from ``grantee`` (owner only)."""

        def run(conn: sqlite3.Connection) -> None:
            acl.check(conn, secret_id, caller, acl.OWNER_ONLY)
            acl.revoke(conn, secret_id, grantee, actions)

        await agreed_change(self._ctx, caller, request_id, "revoke", run, secret_id, grantee, *sorted(actions))

    async def grants(self, caller: str, secret_id: str) -> dict[str, list[str]]:
        """Grantee -> actions of a secret (owner only)."""

        def run(conn: sqlite3.Connection) -> dict[str, list[str]]:
            acl.check(conn, secret_id, caller, acl.OWNER_ONLY)
            return acl.list_grants(conn, secret_id)

        return await self._ctx.store.read(run)

    # ------------------------------------------------------------ executor (SecretSource)

    async def load_for_use(self, secret_ids: Sequence[str], caller_key: str) -> list[tuple[Shares, SecretEncoding]]:
        """This VCP's shares of each secret, after checking ``use`` (owners have it).

        Implements :class:`vcpd.services.ports.SecretSource`. The shares are
        the stored value‖MAC shares; the executor MAC-checks whatever it opens.

        Raises:
            RequestError: ``bad-request`` for a malformed id, ``not-found`` or
                ``forbidden`` for a secret the caller may not use.
        """
        if len(secret_ids) > _MAX_USE_BATCH:
            raise RequestError("bad-request", f"at most {_MAX_USE_BATCH} input secrets per program")
        ids = [parse_secret_id(s) for s in secret_ids]

        def run(conn: sqlite3.Connection) -> list[storage.SecretRecord]:
            records = []
            for secret_id in ids:
                acl.check(conn, secret_id, caller_key, "use")
                record = storage.load_record(conn, secret_id, with_shares=True)
                assert record is not None
                records.append(record)
            return records

        records = await self._ctx.store.read(run)
        result = []
        for record in records:
            assert record.shares is not None
            try:
                shares = Shares.from_bytes(self._ctx.field, record.shares)
            except FieldError as exc:
                reason = f"the stored shares of secret {record.id} are corrupt"
                raise SessionAborted(f"use/{record.id}", reason) from exc
            result.append((shares, record.encoding))
        return result

    async def store_result(
        self,
        owner_key: str,
        shares: Shares,
        encoding: SecretEncoding | str,
        tags: Mapping[str, str | int],
        *,
        secret_id: str | None = None,
    ) -> str:
        """Store a derived secret owned by ``owner_key`` on every VCP or on none.

        Implements :class:`vcpd.services.ports.SecretSource`; every VCP's
        executor calls it with the same arguments except the shares. The VCPs
        compare a digest of (id, owner, length, encoding, tags), agree on one
        creation date, store, and confirm as an upload commit does.

        Args:
            owner_key: the executing client's public key (base64).
            shares: this VCP's value‖MAC shares of the result, already covered
                by a successful MAC check.
            encoding: a :class:`SecretEncoding` or its kind name.
            tags: provenance tags such as ``derived-from`` and ``program``
                (ints become LONG tags; ``owner``/``creation-date`` refused).
            secret_id: the result's id; by default derived from owner,
                encoding, length and tags (so include an execution id tag).
                It names the VCPs' session, so use a fresh id per attempt:
                an id that was tried before is refused with ``conflict``.

        Raises:
            RequestError: ``bad-request`` for malformed tags or id,
                ``conflict`` if the id exists, or a disagreement between VCPs.
            SessionAborted, PeerUnavailable: not stored anywhere.
        """
        ctx = self._ctx
        if isinstance(encoding, str):
            encoding = parse_encoding(encoding, None if encoding != "fixed" else 16)
        parsed_tags = tags_from_mapping(tags)
        if not 1 <= len(shares) <= MAX_SECRET_LENGTH:
            raise RequestError("bad-request", f"a secret has 1..{MAX_SECRET_LENGTH} elements, got {len(shares)}")
        if shares.field != ctx.field:
            raise RequestError("bad-request", "the result's shares belong to another field")
        shape = (owner_key, len(shares), encoding.kind, encoding.fraction_bits, repr(canonical_tags(parsed_tags)))
        if secret_id is None:
            secret_id = str(uuid.UUID(bytes=digest("result-id", *map(str, shape))[:16], version=4))
        else:
            secret_id = parse_secret_id(secret_id)
        if await ctx.store.read(storage.secret_exists, secret_id):
            # Refused without a session: a session id is used once, and a
            # result that exists everywhere (the usual retry) fails at once.
            raise RequestError("conflict", f"a secret with id {secret_id} already exists")
        own = digest("result", secret_id, *map(str, shape))
        now_ms = int(time.time() * 1000)
        error: RequestError | None = None
        async with request_session(ctx, session_name("result", secret_id, owner_key)) as session:
            outcome = await agree(
                session,
                None,
                own,
                mismatch=lambda: RequestError(
                    "aborted", f"the VCPs were asked to store different results under id {secret_id}"
                ),
                extra=now_ms,
            )
            if isinstance(outcome, RequestError):
                error = outcome
            else:
                created = agreed_time(outcome, now_ms)
                record = storage.SecretRecord(
                    id=secret_id,
                    owner=owner_key,
                    created_ms=created,
                    encoding=encoding,
                    length=len(shares),
                    tags=parsed_tags,
                    shares=shares.to_bytes(),
                )
                await store_everywhere(ctx, session, record)
                return secret_id
        assert error is not None
        raise error

