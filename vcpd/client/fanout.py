"""Sending one request to every VCP of a VC at once.

:class:`FanOutMixin` gives a client class ``call_all`` on top of its own
``call`` (one request to one VCP) and ``n_parties``. The library's
:class:`~vcpd.client.Client` uses it over websockets; test doubles that
dispatch in process use the same one, so they fail exactly as the client does.

This module must not import anything from vcpd except :mod:`vcpd.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import trio

from vcpd.errors import RequestError, VcpError

__all__ = ["FanOutMixin"]


class FanOutMixin:
    """``call_all`` for any class with ``call(party, op, args, timeout=...)`` and ``n_parties``."""

    if TYPE_CHECKING:

        @property
        def n_parties(self) -> int: ...

        async def call(
            self, party: int, op: str, args: Mapping[str, Any] | None = None, *, timeout: float | None = None
        ) -> Any: ...

    async def call_all(
        self,
        op: str,
        args: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        timeout: float | None = None,
    ) -> list[Any]:
        """The same request (or one per party, if a sequence is given) to every VCP at once.

        If any VCP fails, the first error (by party order, preferring the most
        telling code) is raised after all calls finished, so no request is left
        half-sent.
        """
        per_party = list(args) if isinstance(args, Sequence) else [args or {}] * self.n_parties
        results: list[Any] = [None] * self.n_parties
        errors: list[tuple[int, BaseException]] = []

        async def one(party: int) -> None:
            try:
                results[party] = await self.call(party, op, per_party[party], timeout=timeout)
            except VcpError as exc:
                errors.append((party, exc))

        async with trio.open_nursery() as nursery:
            for party in range(self.n_parties):
                nursery.start_soon(one, party)
        if errors:
            raise _most_telling(errors)
        return results


_PREFERRED: Final = ("mac-check-failed", "integrity", "forbidden", "not-found", "tuples-exhausted", "program-error")


def _most_telling(errors: list[tuple[int, BaseException]]) -> BaseException:
    errors.sort(key=lambda item: item[0])
    for code in _PREFERRED:
        for _, exc in errors:
            if isinstance(exc, RequestError) and exc.code == code:
                return exc
    return errors[0][1]
