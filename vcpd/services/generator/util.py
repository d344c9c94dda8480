"""Small trio helpers for talking to all peers at once without exception groups.

Protocol code wants "send to every follower, fail with the first error";
a bare nursery would wrap that error in an ExceptionGroup. These helpers run
the per-peer calls concurrently, cancel the rest on the first vcpd error and
re-raise that error on its own.

This module must not import another service, vcpd.net, api, node or daemon.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import trio

from vcpd.errors import VcpError

__all__ = ["describe", "first_error", "for_all", "gather"]

T = TypeVar("T")


async def for_all(peers: Iterable[int], fn: Callable[[int], Awaitable[Any]], *, strict: bool = True) -> None:
    """Run ``fn(peer)`` for every peer concurrently.

    With ``strict`` the first :class:`VcpError` cancels the others and is
    re-raised alone; without, such errors are swallowed (best-effort notices).
    """
    failures: list[BaseException] = []
    async with trio.open_nursery() as nursery:

        async def one(peer: int) -> None:
            try:
                await fn(peer)
            except VcpError as exc:
                failures.append(exc)
                if strict:
                    nursery.cancel_scope.cancel()

        for peer in peers:
            nursery.start_soon(one, peer)
    if strict and failures:
        raise failures[0]


async def gather(peers: Iterable[int], fn: Callable[[int], Awaitable[T]]) -> dict[int, T]:
    """``fn(peer)`` for every peer concurrently; results by peer (see :func:`for_all`)."""
    results: dict[int, T] = {}

    async def one(peer: int) -> None:
        results[peer] = await fn(peer)

    await for_all(peers, one)
    return results


def first_error(exc: BaseException) -> BaseException:
    """The most telling exception inside (possibly nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        inner = [first_error(e) for e in exc.exceptions]
        return next((e for e in inner if isinstance(e, VcpError)), inner[0])
    return exc


def describe(exc: BaseException) -> str:
    """A one-line reason for a failed job, safe for logs and peers (no values)."""
    exc = first_error(exc)
    if isinstance(exc, VcpError):
        return str(exc)
    if isinstance(exc, trio.Cancelled):
        return "cancelled (the VCP shut down or the job was stopped)"
    if isinstance(exc, trio.TooSlowError):
        return "timed out waiting for another VCP"
    return f"internal error ({type(exc).__name__}: {str(exc)[:200]})"
