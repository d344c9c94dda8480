"""The one exception hierarchy of vcpd (daemon, client library and vcpctl).

Every error vcpd raises on purpose derives from :class:`VcpError`, so callers can
catch the whole family with one clause, and every class says who raises it and
when. Messages name the cause and, where there is one, the fix. They never
contain a share, a MAC, a MAC key or a secret value.

::

    VcpError
    ├── ConfigError              bad config or key file (names file and key)
    ├── FieldError               value or bytes not valid for the field
    ├── StoreError               persistent store unusable
    │   └── SchemaTooNew         database written by a newer vcpd
    ├── WireError                malformed or unauthentic data on a connection
    │   ├── HandshakeError       the handshake did not complete
    │   │   ├── AuthenticationError   unknown key or bad signature
    │   │   └── ParameterMismatch     the peer runs a different VC
    │   └── ChannelError         tampered, replayed, reordered or truncated frame
    ├── PeerUnavailable          a peer VCP cannot be reached or went away
    ├── SessionAborted           a multi-party session stopped on some VCP
    │   └── MacCheckFailure      the MAC check failed: someone cheated
    ├── IntegrityError           client-side verification of VCP answers failed
    ├── TuplesExhausted          not enough tuples of a type to reserve
    ├── ProgramError             a client program broke a rule or failed
    ├── RequestError             an API request was refused (carries a code)
    └── VcpInternalError         a bug: this should never happen
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AuthenticationError",
    "ChannelError",
    "ConfigError",
    "FieldError",
    "HandshakeError",
    "IntegrityError",
    "MacCheckFailure",
    "ParameterMismatch",
    "PeerUnavailable",
    "ProgramError",
    "RequestError",
    "SchemaTooNew",
    "SessionAborted",
    "StoreError",
    "TuplesExhausted",
    "VcpError",
    "VcpInternalError",
    "WireError",
]


class VcpError(Exception):
    """Base class of every error vcpd raises deliberately."""


class ConfigError(VcpError):
    """A configuration or key file is missing, malformed or inconsistent.

    Raised once, at the edge, by the config loaders; the message starts with the
    file and, where there is one, the offending key (``vcp0.toml: [vc].prime: ...``).
    """

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = ": ".join(part for part in (path, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class FieldError(VcpError, ValueError):
    """A value does not belong to the field: out of range, wrong byte length,
    a non-canonical encoding, or an inverse of zero."""


class StoreError(VcpError):
    """The persistent store cannot be opened or used."""


class SchemaTooNew(StoreError):
    """The database was written by a newer vcpd; refuse to touch it."""


class WireError(VcpError):
    """Data received on a connection is malformed or not authentic.

    The connection it arrived on is closed; the daemon carries on.
    """


class HandshakeError(WireError):
    """The connection handshake did not complete."""


class AuthenticationError(HandshakeError):
    """The other side presented an unknown identity key or a bad signature."""


class ParameterMismatch(HandshakeError):
    """The peer runs with different VC parameters; ``differences`` says which."""

    def __init__(self, message: str, differences: tuple[str, ...] = ()) -> None:
        self.differences = differences
        super().__init__(message)


class ChannelError(WireError):
    """A frame failed authentication or arrived out of order: the connection is
    closed because it has been tampered with, replayed into, or truncated."""


class PeerUnavailable(VcpError):
    """A peer VCP cannot be reached, or its link dropped during a session."""

    def __init__(self, peer: int, reason: str = "") -> None:
        self.peer = peer
        text = f"peer VCP {peer} is unavailable"
        super().__init__(f"{text}: {reason}" if reason else text)


class SessionAborted(VcpError):
    """A multi-party session (execution, upload, download, generation job) was
    aborted on this VCP; nothing derived from it has been released."""

    def __init__(self, session: str, reason: str) -> None:
        self.session = session
        self.reason = reason
        super().__init__(f"session {session} aborted: {reason}")


class MacCheckFailure(SessionAborted):
    """The batched MAC check failed: some VCP deviated from the protocol.

    Security with abort: nothing opened since the last good check is used.
    """


class IntegrityError(VcpError):
    """The client library found the VCPs' answers inconsistent (a failed
    output-delivery check, or mismatching metadata): at least one VCP cheated or
    is broken, and no value is returned."""


class TuplesExhausted(VcpError):
    """A reservation asked for more tuples of a type than are available."""

    def __init__(self, kind: str, needed: int, available: int, *, request: Mapping[str, int] | None = None) -> None:
        self.kind = kind
        self.needed = needed
        self.available = available
        # The whole request, so that one error tells an operator every kind to
        # generate (a comparison needs triples, bits, bounded values and masks).
        others = {k: n for k, n in (request or {}).items() if n and k != kind}
        wanted = "".join(f", {k} {n}" for k, n in sorted(others.items()))
        also = f" (the request also needs{wanted[1:]})" if others else ""
        super().__init__(
            f"not enough {kind} tuples: needed {needed}, available {available}{also}; "
            f"generate more with 'vcpctl tuples generate {kind} COUNT'"
        )


class ProgramError(VcpError):
    """A client program was refused or failed while running."""

    def __init__(self, message: str, *, line: int | None = None, rule: str | None = None) -> None:
        self.line = line
        self.rule = rule
        prefix = f"line {line}: " if line is not None else ""
        super().__init__(prefix + message)


class RequestError(VcpError):
    """An API request was refused. ``code`` is a stable machine-readable string
    (see docs/protocol.md); the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class VcpInternalError(VcpError):
    """This should never happen: an invariant of vcpd itself is broken. Please
    report it with the log."""
