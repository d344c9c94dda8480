"""What the upload and download protocols share: their parts and two helpers.

:class:`ProtocolContext` bundles one VCP's store, transport, tuple source,
field and MAC key share; :func:`request_session` opens a request's session
under a deadline; :func:`agree_while_taking` runs a request's agreement and
its reservation (:func:`vcpd.services.ports.take_tuples`: consumed durably
before anything derived from it is sent, or discarded -- never left open,
never returned to the pool) side by side.

This module must not import any vcpd module other than :mod:`vcpd.errors`,
:mod:`vcpd.math`, :mod:`vcpd.protocol`, :mod:`vcpd.store` and
:mod:`vcpd.services.ports`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Final

import trio

from vcpd.errors import RequestError, SessionAborted, VcpInternalError
from vcpd.math import PrimeField, Shares
from vcpd.protocol.transport import Session, Transport
from vcpd.services.ports import TupleSource, take_tuples
from vcpd.store import Store

from .agreement import Agreement, agree
from .delivery import OnlineOps

__all__ = [
    "SESSION_TIMEOUT",
    "OnlineFactory",
    "ProtocolContext",
    "SessionIds",
    "agree_while_taking",
    "request_session",
    "session_name",
    "tuples_for",
]

SESSION_TIMEOUT: Final = 120.0
"""Seconds one multi-party request (agreement, reservation, ODO, storing) may
take before this VCP gives up and aborts it."""

REMEMBERED_SESSIONS: Final = 65536
"""Session ids each VCP remembers, so that a reused request id is refused at
once instead of meeting a peer whose mailbox already dropped that session."""

OnlineFactory = Callable[[Session, PrimeField, int], OnlineOps]
"""Builds the online engine for a session: ``OnlineParty(session, field, alpha_share)``."""


class SessionIds:
    """The most recent session ids this VCP used (a bounded memory)."""

    def __init__(self, capacity: int = REMEMBERED_SESSIONS) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def claim(self, session_id: str) -> None:
        """Record ``session_id`` as used.

        Raises:
            RequestError: ``conflict`` if it was used before.
        """
        if session_id in self._seen:
            raise RequestError("conflict", "this request id was used before; every request needs a fresh one")
        self._seen[session_id] = None
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)


@dataclass(frozen=True, slots=True)
class ProtocolContext:
    """One VCP's parts, as the secret store's protocols need them."""

    store: Store
    transport: Transport
    tuples: TupleSource
    field: PrimeField
    alpha_share: int
    online: OnlineFactory
    session_timeout: float = SESSION_TIMEOUT
    sessions: SessionIds = dataclass_field(default_factory=SessionIds)

    def __repr__(self) -> str:  # the MAC key share must never reach a log
        return f"<ProtocolContext party={self.transport.party}>"

    @property
    def party(self) -> int:
        """This VCP's index."""
        return self.transport.party


def session_name(kind: str, request_id: str, caller: str) -> str:
    """The session id of one client request: kind, request id and a tag of the caller.

    The caller's tag keeps another client that learned a request id from
    claiming (and so spoiling) that session.
    """
    tag = hashlib.blake2b(caller.encode(), digest_size=6, person=b"vcpd.secrets.ses").hexdigest()
    return f"secrets.{kind}/{request_id}/{tag}"


@asynccontextmanager
async def request_session(ctx: ProtocolContext, session_id: str) -> AsyncIterator[Session]:
    """The session ``session_id``, cancelled and aborted after the session timeout.

    Every session id is used once: session ids derive from client request ids,
    and a reused one would meet peers that have already forgotten it.

    Raises:
        SessionAborted: the deadline passed (the peers were told).
        RequestError: ``conflict`` if the session id was used before (a
            client reused a request id).
    """
    ctx.sessions.claim(session_id)
    timed_out = False
    try:
        with trio.fail_after(ctx.session_timeout):
            async with AsyncExitStack() as stack:
                try:
                    session = await stack.enter_async_context(ctx.transport.session(session_id))
                except ValueError:  # the id is open already: another request reused it
                    raise RequestError("conflict", "this request id is in use on this VCP; use a fresh one") from None
                yield session
    except trio.TooSlowError:
        timed_out = True
    if timed_out:
        raise SessionAborted(session_id, f"no result within {ctx.session_timeout:g} s; a peer VCP may be slow or gone")


def tuples_for(n: int, per_element: Mapping[str, int]) -> dict[str, int]:
    """The reservation counts for ``n`` elements."""
    return {kind: count * n for kind, count in per_element.items()}


async def agree_while_taking(
    ctx: ProtocolContext,
    session: Session,
    verdict: Callable[[], Awaitable[RequestError | None]],
    own_digest: bytes,
    *,
    mismatch: Callable[[], RequestError],
    take: tuple[str, Mapping[str, int]] | None,
    extra: object = None,
) -> tuple[Agreement | RequestError, dict[str, list[Shares]]]:
    """Agree on a request (see :func:`.agreement.agree`) while its tuples are being taken.

    The agreement round and the multi-party reservation are independent, so
    they run at the same time instead of one after the other. ``verdict`` is
    awaited first (a store read, say) and gives this VCP's own refusal, if
    any; ``take`` is the (request id, counts) to reserve and take, or None
    when this VCP already knows it refuses (then it starts no reservation, and
    the other VCPs, refused by the agreement, give theirs up).

    If the agreement fails, the reservation is cancelled: whatever it recorded
    is discarded or consumed -- burnt, never reused, just as for an upload that
    is never committed -- and the agreement's error is returned. If the
    agreement passes, this waits for the tuples; a failed reservation raises
    its error here, inside the session, so every VCP aborts.

    Returns:
        The agreement (or the error to answer) and the taken tuples (empty if
        the agreement failed).
    """
    taken: dict[str, list[Shares]] = {}
    failure: list[Exception] = []
    done = trio.Event()

    async def take_tuples_now(request_id: str, counts: Mapping[str, int]) -> None:
        try:
            taken.update(await take_tuples(ctx.tuples, request_id, counts))
        except Exception as exc:  # reported after the agreement, never cancels it
            failure.append(exc)
        finally:
            done.set()

    outcome: Agreement | RequestError | None = None
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        if take is not None:
            nursery.start_soon(take_tuples_now, *take)
        else:
            done.set()
        try:
            outcome = await agree(session, await verdict(), own_digest, mismatch=mismatch, extra=extra)
        except Exception as exc:
            error = exc
        if error is not None or isinstance(outcome, RequestError):
            nursery.cancel_scope.cancel()
        else:
            await done.wait()
    if error is not None:
        raise error
    assert outcome is not None
    if isinstance(outcome, RequestError):
        return outcome, {}
    if failure:
        raise failure[0]
    if take is None:
        raise VcpInternalError("agreed to a request without taking its tuples")
    return outcome, taken
