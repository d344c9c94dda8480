"""A synchronous facade over :class:`vcpd.client.Client` for scripts and notebooks.

``with SyncClient("local-vc/client.toml") as client: client.status()`` runs a
trio event loop in a background thread that holds the connections; each method
call is forwarded to it and blocks until the answer is there. Async code should
use :func:`vcpd.client.open_client` directly.
"""

from __future__ import annotations

import functools
import inspect
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import trio

from vcpd.config import ClientConfig

from .core import Client, open_client

__all__ = ["SyncClient"]


class SyncClient:
    """Blocking access to a VC; every coroutine method of Client becomes a plain method."""

    def __init__(self, config: ClientConfig | str | Path) -> None:
        self._config = config
        self._client: Client | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    async def _main(self) -> None:
        try:
            async with open_client(self._config) as client:
                self._client = client
                self._token = trio.lowlevel.current_trio_token()
                self._stop = trio.Event()
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # handed to the caller's thread in __enter__
            self._error = exc
            self._ready.set()

    def __enter__(self) -> SyncClient:
        self._thread = threading.Thread(target=trio.run, args=(self._main,), name="vcpd-client", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            error, self._error = self._error, None
            if isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
                error = error.exceptions[0]
            raise error
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection and stop the background loop (idempotent)."""
        if self._token is not None and self._stop is not None and self._thread is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            self._thread.join()
            self._token = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or self._client is None or self._token is None:
            raise AttributeError(name)
        attribute = getattr(self._client, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        token = self._token

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            return trio.from_thread.run(functools.partial(attribute, *args, **kwargs), trio_token=token)

        return call
