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
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from vcpd.errors import SessionAborted, VcpError

from .transport import Session

__all__ = ["exchange_all", "exchange_each", "payload_size"]


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
    answers = await exchange_each(
        session, {peer: [(step, payload)] for peer in peers}, {peer: [step] for peer in peers}, timeout=timeout
    )
    results: dict[int, Any] = {session.party: payload}
    results.update((peer, answer[0]) for peer, answer in answers.items())
    return results


async def exchange_each(
    session: Session,
    sends: Mapping[int, Sequence[tuple[str, Any]]],
    receives: Mapping[int, Sequence[str]],
    *,
    timeout: float = math.inf,
) -> dict[int, list[Any]]:
    """One round with different payloads per peer: send ``sends[peer]`` (labelled
    payloads, in order) to each peer and receive the steps ``receives[peer]``.

    Per peer, one task sends its payloads and one receives its answers, all
    concurrently; the failure semantics are those of :func:`exchange_all`.
    Peers missing from ``sends`` (``receives``) get (are expected to send)
    nothing. :func:`exchange_all` is the case of one payload, the same for
    every peer.

    Returns:
        For each peer in ``receives``, its payloads in the order of the steps.

    Raises:
        PeerUnavailable, SessionAborted, WireError: the first failure of any
            send or receive (the others are cancelled).
        SessionAborted: some expected message did not arrive within
            ``timeout`` seconds (the message names the steps and peers).
    """
    results: dict[int, list[Any]] = {peer: [] for peer in receives}
    failures: list[VcpError] = []

    async def send_to(peer: int, items: Sequence[tuple[str, Any]], scope: trio.CancelScope) -> None:
        try:
            for step, payload in items:
                await session.send(peer, step, payload)
        except VcpError as exc:
            failures.append(exc)
            scope.cancel()

    async def receive_from(peer: int, steps: Sequence[str], scope: trio.CancelScope) -> None:
        try:
            for step in steps:
                results[peer].append(await session.receive(peer, step))
        except VcpError as exc:
            failures.append(exc)
            scope.cancel()

    with trio.move_on_after(timeout) as timer:
        async with trio.open_nursery() as nursery:
            for peer, items in sends.items():
                if items:
                    nursery.start_soon(send_to, peer, items, nursery.cancel_scope)
            for peer, steps in receives.items():
                if steps:
                    nursery.start_soon(receive_from, peer, steps, nursery.cancel_scope)
    if failures:
        raise failures[0]
    if timer.cancelled_caught:
        missing = sorted(
            f"{step!r} from VCP {peer}"
            for peer, steps in receives.items()
            for step in steps[len(results[peer]) :]
        )
        if missing:
            reason = f"no message {', '.join(missing)} within {timeout:g} s"
        else:
            first = next((items[0][0] for items in sends.values() if items), "?")
            reason = f"could not send {first!r} to every peer within {timeout:g} s"
        raise SessionAborted(session.id, reason)
    return results


def payload_size(payload: Any) -> int:
    """Bytes a payload carries (bytes counted exactly, other scalars as 8)."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return len(payload)
    if isinstance(payload, list | tuple):
        return sum(payload_size(item) for item in payload)
    return 8
