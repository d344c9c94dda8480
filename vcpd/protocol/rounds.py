"""One network round: send a payload to every peer and collect theirs, in time.

``Session.exchange`` leaves time limits to the caller and reports failures as
exception groups. Protocol code wants a plain answer: the first transport
failure as is (:class:`~vcpd.errors.PeerUnavailable`,
:class:`~vcpd.errors.SessionAborted`, :class:`~vcpd.errors.WireError`), and a
:class:`~vcpd.errors.SessionAborted` naming the silent peers when a peer stays
connected but stops following the protocol — so a withheld message fails the
session instead of hanging it.

This module must not import vcpd.net, vcpd.testing, services, api, node or
daemon; from vcpd it uses only errors and this package.
"""

from __future__ import annotations

import math
from typing import Any

import trio

from vcpd.errors import SessionAborted, VcpError

from .transport import Session

__all__ = ["exchange_all", "payload_size"]


async def exchange_all(session: Session, step: str, payload: Any, *, timeout: float = math.inf) -> dict[int, Any]:
    """Send ``payload`` labelled ``step`` to every peer; return every party's payload.

    Sends and receives run concurrently; the result includes this party's own
    payload under its id.

    Raises:
        PeerUnavailable, SessionAborted, WireError: the first failure of any
            send or receive (the others are cancelled).
        SessionAborted: not every peer's message arrived within ``timeout``
            seconds (the message names them).
    """
    peers = [k for k in range(session.n_parties) if k != session.party]
    results: dict[int, Any] = {session.party: payload}
    failures: list[VcpError] = []

    async def send_to(peer: int, scope: trio.CancelScope) -> None:
        try:
            await session.send(peer, step, payload)
        except VcpError as exc:
            failures.append(exc)
            scope.cancel()

    async def receive_from(peer: int, scope: trio.CancelScope) -> None:
        try:
            results[peer] = await session.receive(peer, step)
        except VcpError as exc:
            failures.append(exc)
            scope.cancel()

    with trio.move_on_after(timeout) as timer:
        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(send_to, peer, nursery.cancel_scope)
                nursery.start_soon(receive_from, peer, nursery.cancel_scope)
    if failures:
        raise failures[0]
    if timer.cancelled_caught:
        missing = [str(k) for k in peers if k not in results]
        if missing:
            reason = f"no message {step!r} from VCP {', '.join(missing)} within {timeout:g} s"
        else:
            reason = f"could not send {step!r} to every peer within {timeout:g} s"
        raise SessionAborted(session.id, reason)
    return results


def payload_size(payload: Any) -> int:
    """Bytes a payload carries (bytes counted exactly, other scalars as 8)."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return len(payload)
    if isinstance(payload, list | tuple):
        return sum(payload_size(item) for item in payload)
    return 8
