"""Verified upload: one preprocessed triple per element, checked by the client.

The client never sends a secret value, only x − a for a mask a it learned in
shares. The mask comes with its own proof (MP-SPDZ's
``sint.receive_from_client``, from the same DDNNT FC 2016 paper as the ODO,
mpc-notes §2.5):

1. ``begin`` (every VCP, same id, count and request id): the VCPs agree that
   the id is free and, at the same time, reserve and take n triples
   (a, b, c = a·b) in **one** reservation (the tuple source records them
   consumed *before* anything derived from them is sent); each VCP keeps its
   shares of a (value and MAC) in memory and returns its *value* shares of
   a, b and c. No online multiplication, opening or MAC check is needed.
   A begin refused by some VCP (the id is taken, the requests differ) burns
   whatever was reserved meanwhile, like an upload that is never committed:
   any client can spend triples by uploading, so this hands a client nothing
   new, and it keeps the agreement off the latency path.
2. The client sums the shares and accepts iff a·b = c for every element (and
   b ≠ 0); then it sends every VCP the same μ = x − a with the tags and
   encoding.
3. ``commit``: the VCPs exchange a digest of (id, μ, tags, encoding, caller)
   and go on only if all match, so a client that sends different μ to
   different VCPs stores nothing anywhere. Each VCP stores
   x_i = a_i + [i=0]·μ, m_i = m_i(a) + α_i·μ in one transaction, then they
   exchange "stored"; if any failed, every VCP deletes what it stored.

Why the client's check suffices (security argument). Let the corrupt VCPs
(any number up to n − 1) report shares that differ from the ones they hold,
so the client reconstructs a + δa, b + δb, c + δc; the deviations are fixed
before anything depends on a or b, since the answers are all the client sees
before it decides. The check passes iff

    (a + δa)(b + δb) = c + δc   ⇔   a·δb + b·δa + δa·δb = δc    (as c = a·b).

The honest VCP's shares are uniform and unknown to the adversary, so a and b
are uniform and independent in its view (b and c are never opened or used
again; the triple is consumed). If δa ≠ 0 or δb ≠ 0 the left side is a
non-constant polynomial of degree 1 in (a, b), which hits the fixed δc with
probability at most 1/p (about 2^-127) per element; if δa = δb = 0 it passes
only with δc = 0. So a mask shifted by δa ≠ 0 (the only shift that would
change the stored x, to x − δa) is caught except with probability 1/p,
before μ leaves the client. The b ≠ 0 test only rejects an event of
probability 1/p in which δc = 0 would hide δa. That the triple itself is correct (c = a·b) and
its shares carry valid MACs under α is the offline phase's guarantee
(MASCOT's sacrifice, or the dealer), not the upload's. The stored MAC
shares m_i(a) + α_i·μ are then correct MACs of x, so every later opening
that involves x is MAC-checked as usual (a VCP that stores something else
than a_i + [i=0]·μ is caught there, as any share altered at rest). Privacy: μ = x − a with a uniform
and never used again hides x from the VCPs; the client learns a, b, c, which
no one uses afterwards. Compared with an ODO over a fresh mask (the former
design and Amphora's, 3 masks and 2 triples per element, two Beaver products
and a MAC check), this costs 1 triple per element and no online round.

Masks are consumed exactly once: whatever happens after ``begin`` took them
-- a commit that fails, a mismatch, a client that never comes back -- the
pending upload is dropped and its triples are gone. A pending upload lives at
most :data:`UPLOAD_COMMIT_TIMEOUT` seconds.

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.logs`, :mod:`vcpd.math`, :mod:`vcpd.protocol`, :mod:`vcpd.store`,
:mod:`vcpd.services.ports` and its own package.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import trio

from vcpd.errors import FieldError, RequestError, StoreError, VcpInternalError
from vcpd.logs import get_logger
from vcpd.math import Shares
from vcpd.protocol.transport import Session
from vcpd.services.ports import SecretEncoding

from . import storage
from .agreement import Agreement, agree, digest
from .context import ProtocolContext, agree_while_taking, request_session, session_name, tuples_for
from .model import Tag, canonical_tags, encoding_to_wire

__all__ = [
    "MAX_PENDING_ELEMENTS",
    "UPLOAD_COMMIT_TIMEOUT",
    "UPLOAD_TUPLES_PER_ELEMENT",
    "Uploads",
    "agreed_time",
    "store_everywhere",
]

log = get_logger("secrets")

UPLOAD_TUPLES_PER_ELEMENT: Final[Mapping[str, int]] = MappingProxyType({"triple": 1})
"""Per uploaded element: one triple (a, b, a·b); a is the mask."""

UPLOAD_COMMIT_TIMEOUT: Final = 300.0
"""Seconds between a successful ``begin`` and the ``commit`` that must follow;
after that the upload is forgotten and its masks stay consumed."""

MAX_PENDING_ELEMENTS: Final = 4_000_000
"""Most mask elements held for uncommitted uploads at once on one VCP (32 bytes
each -- the value and MAC shares of a -- so 128 MB): a client that begins uploads and never commits cannot make
a VCP hold more."""

STORED_STEP: Final = "secrets.stored"
_MAX_TIME_MS: Final = 1 << 53  # a creation date a peer proposes beyond this is ignored


@dataclass(slots=True)
class _Pending:
    """An upload between begin and commit, on this VCP."""

    request_id: str
    caller: str
    count: int
    deadline: float  # trio clock
    masks: Shares | None = None  # this VCP's shares of the masks a, once begin succeeded

    def __repr__(self) -> str:
        return f"<PendingUpload n={self.count} ready={self.masks is not None}>"


class Uploads:
    """The pending uploads of one VCP and the begin/commit protocols."""

    def __init__(self, ctx: ProtocolContext, *, commit_timeout: float = UPLOAD_COMMIT_TIMEOUT) -> None:
        self._ctx = ctx
        self._commit_timeout = commit_timeout
        self._pending: dict[str, _Pending] = {}
        self.begun = 0
        self.committed = 0
        self.expired = 0

    @property
    def pending(self) -> int:
        """Uploads begun (or beginning) and not yet committed or expired."""
        self._expire()
        return len(self._pending)

    def _expire(self) -> None:
        now = trio.current_time()
        for secret_id, item in list(self._pending.items()):
            if item.deadline <= now:
                del self._pending[secret_id]
                self.expired += 1
                log.info("upload expired without commit; its masks stay consumed", extra={"ctx": {"secret": secret_id}})

    def _pending_elements(self) -> int:
        return sum(item.count for item in self._pending.values())

    async def begin(self, caller: str, secret_id: str, count: int, request_id: str) -> dict[str, Any]:
        """Run the begin step; return this VCP's value shares of n fresh triples.

        Raises:
            RequestError: ``conflict`` (id taken or being uploaded, or too many
                uploads pending), or a peer's refusal.
            TuplesExhausted, SessionAborted, PeerUnavailable: the multi-party
                part failed; nothing was released.
        """
        ctx = self._ctx
        self._expire()
        refusal: RequestError | None = None
        slot: _Pending | None = None
        if secret_id in self._pending:
            refusal = RequestError("conflict", f"an upload of secret {secret_id} is already in progress")
        elif self._pending_elements() + count > MAX_PENDING_ELEMENTS:
            refusal = RequestError(
                "conflict", "too many uploads are waiting for their commit on this VCP; retry in a few minutes"
            )
        else:
            slot = _Pending(request_id, caller, count, trio.current_time() + self._commit_timeout)
            self._pending[secret_id] = slot

        async def verdict() -> RequestError | None:
            if refusal is None and await ctx.store.read(storage.secret_exists, secret_id):
                return RequestError("conflict", f"a secret with id {secret_id} already exists")
            return refusal

        counts = tuples_for(count, UPLOAD_TUPLES_PER_ELEMENT)
        error: RequestError | None = None
        try:
            async with request_session(ctx, session_name("begin", request_id, caller)) as session:
                outcome, tuples = await agree_while_taking(
                    ctx,
                    session,
                    verdict,
                    digest("begin", secret_id, request_id, count, caller),
                    mismatch=lambda: RequestError(
                        "bad-request", "the VCPs received different upload requests (id, count or client differ)"
                    ),
                    take=(f"secrets.upload/{request_id}", counts) if refusal is None else None,
                )
                if isinstance(outcome, RequestError):
                    error = outcome  # raised after leaving the session: no abort notice needed
        except BaseException:
            if slot is not None:
                self._pending.pop(secret_id, None)
            raise
        if error is not None:
            if slot is not None:
                self._pending.pop(secret_id, None)
            raise error
        assert slot is not None
        a, b, c = tuples["triple"]
        if not len(a) == len(b) == len(c) == count:
            self._pending.pop(secret_id, None)
            raise VcpInternalError(f"an upload of {count} elements got {len(a)} triples")
        # Keep a alone (not the whole take, of which it may be a view) while
        # the upload waits for its commit; b and c are never needed again.
        slot.masks = Shares(a.values.copy(), a.macs.copy())
        slot.deadline = trio.current_time() + self._commit_timeout
        self.begun += 1
        return {
            "id": secret_id,
            "request_id": request_id,
            "a": a.values.to_bytes(),
            "b": b.values.to_bytes(),
            "c": c.values.to_bytes(),
            "expires_in": self._commit_timeout,
            "tuples": counts,
        }

    async def commit(
        self,
        caller: str,
        secret_id: str,
        request_id: str,
        mu: bytes,
        tags: tuple[Tag, ...],
        encoding: SecretEncoding,
    ) -> dict[str, Any]:
        """Run the commit step: agree on μ, store, confirm (or delete everywhere).

        Raises:
            RequestError: ``not-found`` (no such upload from this caller, it
                expired, or another commit already took it), ``bad-request``
                (μ malformed, or the VCPs received different commits).
            SessionAborted, PeerUnavailable: storing did not complete on every
                VCP; it was undone here.
        """
        ctx = self._ctx
        self._expire()
        refusal: RequestError | None = None
        item = self._pending.get(secret_id)
        mu_values = None
        if item is None or item.request_id != request_id or item.caller != caller or item.masks is None:
            refusal = RequestError(
                "not-found",
                f"no upload of secret {secret_id} is waiting for this commit; begin a new upload "
                f"(uncommitted uploads expire after {self._commit_timeout:g} s)",
            )
            item = None
        else:
            # Whatever happens from here, these masks are never used again.
            del self._pending[secret_id]
            try:
                mu_values = ctx.field.from_bytes(mu)
            except FieldError as exc:
                refusal = RequestError("bad-request", f"mu is not a vector of field elements: {exc}")
            else:
                if len(mu_values) != item.count:
                    refusal = RequestError(
                        "bad-request", f"mu has {len(mu_values)} elements but the upload began with {item.count}"
                    )
        now_ms = int(time.time() * 1000)
        own_digest = digest(
            "commit",
            secret_id,
            request_id,
            caller,
            mu,
            repr(canonical_tags(tags)),
            encoding.kind,
            encoding.fraction_bits,
        )
        async with request_session(ctx, session_name("commit", request_id, caller)) as session:
            outcome = await agree(
                session,
                refusal,
                own_digest,
                mismatch=lambda: RequestError(
                    "bad-request",
                    "the VCPs received different commits (mu, tags or encoding differ); nothing was stored",
                ),
                extra=now_ms,
            )
            if isinstance(outcome, RequestError):
                error = outcome
                if refusal is None and outcome.code == "bad-request":
                    # mpc-notes §2.6 (3): a client sent different masked inputs.
                    log.warning(
                        "VCPs received different commits for one upload; nothing stored",
                        extra={"ctx": {"secret": secret_id, "client": caller}},
                    )
            else:
                assert item is not None and item.masks is not None and mu_values is not None
                created_ms = agreed_time(outcome, now_ms)
                record = storage.SecretRecord(
                    id=secret_id,
                    owner=caller,
                    created_ms=created_ms,
                    encoding=encoding,
                    length=item.count,
                    tags=tags,
                    shares=item.masks.add_public(mu_values, ctx.party, ctx.alpha_share).to_bytes(),
                )
                await store_everywhere(ctx, session, record)
                self.committed += 1
                return {
                    "id": secret_id,
                    "length": item.count,
                    **encoding_to_wire(encoding),
                    "tags": [t.to_wire() for t in storage.reserved_tags(caller, created_ms) + tags],
                }
        raise error


async def store_everywhere(ctx: ProtocolContext, session: Session, record: storage.SecretRecord) -> None:
    """Store ``record`` here, then confirm with every VCP; undo here if any failed.

    The second phase of a commit: each VCP stores in one transaction and says
    whether it could; unless every VCP could, each deletes what it stored (a
    failure or timeout anywhere also aborts the session, with the same effect).
    """
    stored = False
    failure: BaseException | None = None
    try:
        await ctx.store.write(storage.insert_secret, record)
        stored = True
    except (RequestError, StoreError) as exc:
        failure = exc
    try:
        replies = await session.exchange(STORED_STEP, stored)
        bad = sorted(p for p in range(session.n_parties) if replies.get(p) is not True)
        if bad:
            if failure is not None:
                raise failure
            raise RequestError("aborted", f"VCP {bad[0]} could not store secret {record.id}; it was stored nowhere")
    except BaseException:
        if stored:
            with trio.CancelScope(shield=True):
                await ctx.store.write(storage.delete_secrets, [record.id])
        raise


def agreed_time(outcome: Agreement, fallback: int) -> int:
    """The creation date every VCP stores: the latest proposal (ms since the epoch)."""
    proposals = [
        v for v in outcome.extras.values() if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _MAX_TIME_MS
    ]
    return max(proposals, default=fallback)
