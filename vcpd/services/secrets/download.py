"""Verified download: every VCP re-randomises, multiplies, MAC-checks, then answers.

``secrets.get`` reaches every VCP with the same secret id and a fresh request
id from the client. Each VCP

1. checks on its own that the caller may ``read`` the secret, then exchanges
   its verdict with the others (with a digest of id, caller, length and
   encoding), so a refusal anywhere fails every VCP promptly;
2. reserves and takes 2n triples (n = length) under the request id;
3. computes the ODO of the stored shares, re-randomised as y' = ⟨a⟩ + ε by
   the Beaver round's own fresh a (ρ and v are components of the triples);
   its openings, including ε = ⟨y⟩ − ⟨a⟩ made with the *stored* MAC shares,
   all pass the MAC check before anything is returned (see
   :mod:`~vcpd.services.secrets.delivery`);
4. answers with its value shares of y', ρ, v, w, u and the metadata.

The client sums the answers and accepts iff w = y·ρ and u = v·ρ.

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.logs`, :mod:`vcpd.math`, :mod:`vcpd.protocol`, :mod:`vcpd.store`,
:mod:`vcpd.services.ports` and its own package.
"""

from __future__ import annotations

from typing import Any

from vcpd.errors import FieldError, RequestError, SessionAborted
from vcpd.math import Shares
from vcpd.services.ports import take_tuples

from . import acl, storage
from .agreement import agree, digest
from .context import ProtocolContext, request_session, session_name, tuples_for
from .delivery import DOWNLOAD_TUPLES_PER_ELEMENT, deliver
from .model import encoding_to_wire

__all__ = ["download"]


def _load(conn: Any, secret_id: str, caller: str) -> tuple[storage.SecretRecord | None, acl.Rights | None]:
    rights = acl.load_rights(conn, secret_id, caller)
    allowed = rights is not None and acl.may(rights, caller, "read")
    return (storage.load_record(conn, secret_id, with_shares=True) if allowed else None), rights


async def download(ctx: ProtocolContext, caller: str, secret_id: str, request_id: str) -> dict[str, Any]:
    """Run the download protocol for one secret; return this VCP's answer.

    Raises:
        RequestError: ``not-found``/``forbidden`` (here or on another VCP).
        MacCheckFailure: an opening failed the MAC check (a VCP cheated or a
            stored share was altered); nothing was released.
        TuplesExhausted, SessionAborted, PeerUnavailable: the protocol failed.
    """
    record, rights = await ctx.store.read(_load, secret_id, caller)
    refusal: RequestError | None = None
    try:
        acl.require(rights, caller, "read", secret_id)
    except RequestError as exc:
        refusal = exc
    if refusal is None:
        assert record is not None
        encoding = record.encoding
        own = digest("get", secret_id, request_id, caller, record.length, encoding.kind, encoding.fraction_bits)
    else:
        own = digest("get", secret_id, request_id, caller)
    error: RequestError | None = None
    async with request_session(ctx, session_name("get", request_id, caller)) as session:
        # Agreement first: a refusal anywhere (access is decided by each VCP)
        # must not spend tuples.
        outcome = await agree(
            session,
            refusal,
            own,
            mismatch=lambda: RequestError(
                "aborted", f"the VCPs disagree about secret {secret_id} (length or encoding); their stores diverged"
            ),
        )
        if isinstance(outcome, RequestError):
            error = outcome
        else:
            assert record is not None and record.shares is not None
            try:
                y = Shares.from_bytes(ctx.field, record.shares)
            except FieldError as exc:
                raise SessionAborted(session.id, f"the stored shares of secret {secret_id} are corrupt") from exc
            n = record.length
            tuples = await take_tuples(ctx.tuples, f"secrets.get/{request_id}", tuples_for(n, DOWNLOAD_TUPLES_PER_ELEMENT))
            shares = await deliver(
                ctx.online(session, ctx.field, ctx.alpha_share),
                y,
                triple=tuples["triple"],
                party=ctx.party,
            )
            return {
                "id": secret_id,
                "length": n,
                **encoding_to_wire(record.encoding),
                "tags": [t.to_wire() for t in record.tags],
                **shares.to_wire(),
                "tuples": tuples_for(n, DOWNLOAD_TUPLES_PER_ELEMENT),
            }
    assert error is not None
    raise error
