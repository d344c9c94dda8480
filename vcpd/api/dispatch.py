"""Request dispatch: operation name -> handler, with argument checks and typed errors.

A request is ``{"id", "op", "args"}`` (see docs/protocol.md). The dispatcher
looks the operation up, checks the caller may use it (admin operations need a
key from the VCP's ``admin_keys``), runs the handler and turns every failure
into a :class:`~vcpd.errors.RequestError` with a stable code. Nothing a client
sends can raise anything else out of :meth:`Dispatcher.dispatch`: malformed
input gets an error answer and the daemon stays up.

L5: may import services, protocol, wire, math and L0; never net or the daemon.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import trio

from vcpd.errors import (
    IntegrityError,
    MacCheckFailure,
    PeerUnavailable,
    ProgramError,
    RequestError,
    SessionAborted,
    TuplesExhausted,
    VcpError,
)
from vcpd.logs import get_logger

__all__ = ["ERROR_CODES", "Args", "Caller", "Dispatcher", "Handler", "to_request_error"]

log = get_logger("api")

ERROR_CODES: Final = {
    "bad-request": "the request is malformed or an argument is invalid",
    "unknown-op": "no such operation",
    "forbidden": "the caller's key may not do this",
    "not-found": "no such secret, job or execution (or not visible to the caller)",
    "conflict": "the id already exists or the state does not allow this",
    "unavailable": "a peer VCP is unreachable; retry when 'vcpctl status' shows all links up",
    "aborted": "the multi-party session aborted; nothing was stored or released",
    "mac-check-failed": "the MAC check failed: a VCP cheated or is broken; nothing was released",
    "tuples-exhausted": "not enough tuples of a type; generate more",
    "program-error": "the program was refused or failed",
    "integrity": "an integrity check failed",
    "internal": "a bug in vcpd; the VCP log has details",
}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: the verified public key of its connection."""

    public_key: str  # base64 Ed25519
    is_admin: bool


Handler = Callable[[Caller, "Args"], Awaitable[Any]]
T = TypeVar("T")


class Args:
    """Typed access to a request's ``args`` map; every miss is a bad-request error."""

    def __init__(self, op: str, data: Mapping[str, Any]) -> None:
        self.op = op
        self._data = dict(data)
        self._seen: set[str] = set()

    def _get(self, name: str, kinds: tuple[type, ...], default: Any) -> Any:
        self._seen.add(name)
        if name not in self._data or self._data[name] is None:
            if default is ...:
                raise RequestError("bad-request", f"{self.op}: missing argument '{name}'")
            return default
        value = self._data[name]
        if isinstance(value, bool) and bool not in kinds:
            value_ok = False
        else:
            value_ok = isinstance(value, kinds)
        if not value_ok:
            names = "/".join(k.__name__ for k in kinds)
            raise RequestError(
                "bad-request", f"{self.op}: argument '{name}' must be {names}, not {type(value).__name__}"
            )
        return value

    def str(self, name: str, default: Any = ...) -> Any:
        return self._get(name, (str,), default)

    def int(self, name: str, default: Any = ...) -> Any:
        return self._get(name, (int,), default)

    def bool(self, name: str, default: Any = ...) -> Any:
        return self._get(name, (bool,), default)

    def bytes(self, name: str, default: Any = ...) -> Any:
        return self._get(name, (bytes,), default)

    def list(self, name: str, default: Any = ...) -> Any:
        return self._get(name, (list,), default)

    def map(self, name: str, default: Any = ...) -> Any:
        return self._get(name, (dict,), default)

    def str_list(self, name: str, default: Any = ...) -> list[str]:
        values = self.list(name, default)
        if not all(isinstance(v, str) for v in values):
            raise RequestError("bad-request", f"{self.op}: argument '{name}' must be a list of strings")
        return list(values)

    def finish(self) -> None:
        """Refuse arguments the operation does not know (typos must not pass silently)."""
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            raise RequestError("bad-request", f"{self.op}: unknown argument(s) {', '.join(unknown)}")


@dataclass(frozen=True, slots=True)
class _Operation:
    handler: Handler
    admin: bool


class Dispatcher:
    """Maps operation names to handlers; see :data:`ERROR_CODES` for failures."""

    def __init__(self, admin_keys: frozenset[str]) -> None:
        self._ops: dict[str, _Operation] = {}
        self._admin_keys = admin_keys

    def caller(self, public_key: str) -> Caller:
        return Caller(public_key=public_key, is_admin=public_key in self._admin_keys)

    def register(self, name: str, handler: Handler, *, admin: bool = False) -> None:
        if name in self._ops:
            raise ValueError(f"operation {name} registered twice")
        self._ops[name] = _Operation(handler, admin)

    @property
    def operations(self) -> list[str]:
        return sorted(self._ops)

    async def dispatch(self, caller: Caller, op: str, args: Mapping[str, Any]) -> Any:
        """Run one request; raise only RequestError (or trio.Cancelled)."""
        operation = self._ops.get(op)
        if operation is None:
            raise RequestError("unknown-op", f"unknown operation '{op}'; known: {', '.join(self.operations)}")
        if operation.admin and not caller.is_admin:
            raise RequestError("forbidden", f"'{op}' is an admin operation and this key is not in admin_keys")
        try:
            return await operation.handler(caller, Args(op, args))
        except trio.Cancelled:
            raise
        except Exception as exc:
            error = to_request_error(exc)
            if error.code == "internal":
                log.error("operation %s failed with an internal error", op, exc_info=exc)
            raise error from exc


_MAPPING: Final[tuple[tuple[type[VcpError], str], ...]] = (
    (MacCheckFailure, "mac-check-failed"),
    (TuplesExhausted, "tuples-exhausted"),
    (PeerUnavailable, "unavailable"),
    (SessionAborted, "aborted"),
    (ProgramError, "program-error"),
    (IntegrityError, "integrity"),
)


def to_request_error(exc: BaseException) -> RequestError:
    """The RequestError a client sees for ``exc`` (exception groups unwrapped)."""
    if isinstance(exc, RequestError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        errors = [to_request_error(inner) for inner in exc.exceptions]
        # The most specific cause wins: a MAC failure explains the aborts it caused.
        for code in ("mac-check-failed", "tuples-exhausted", "program-error", "integrity", "unavailable", "aborted"):
            for error in errors:
                if error.code == code:
                    return error
        return errors[0]
    for kind, code in _MAPPING:
        if isinstance(exc, kind):
            return RequestError(code, str(exc))
    if isinstance(exc, VcpError):
        return RequestError("bad-request", str(exc))
    return RequestError("internal", f"internal error ({type(exc).__name__}); see the VCP log")
