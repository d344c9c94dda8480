"""VC parameter comparison for the handshake.

The VC parameters are an opaque ``dict[str, str]`` supplied by the caller
(prime, offline mode, party count, pinned keys, ...). Two VCPs may only link
up when their mappings are identical, and when they are not, operators on
*both* ends need to read exactly which entries differ. This module validates
such a mapping, compares two of them key by key and phrases the differences.

This module must not import trio, sockets, or any vcpd module other than
:mod:`vcpd.errors`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from vcpd.errors import ParameterMismatch

__all__ = [
    "MAX_PARAMS",
    "MAX_PARAM_KEY",
    "MAX_PARAM_VALUE",
    "Difference",
    "compare_params",
    "mismatch_error",
    "validate_params",
]

MAX_PARAMS: Final = 256
"""Most entries a parameters mapping may have (bounds handshake message size)."""

MAX_PARAM_KEY: Final = 128
"""Longest parameter name, in characters."""

MAX_PARAM_VALUE: Final = 1024
"""Longest parameter value, in characters."""

_SHOW: Final = 24  # values longer than this are abbreviated in messages


@dataclass(frozen=True, slots=True)
class Difference:
    """One parameter that is not the same on both sides.

    ``ours`` or ``theirs`` is ``None`` when that side lacks the key.
    """

    key: str
    ours: str | None
    theirs: str | None

    def swapped(self) -> Difference:
        """The same difference seen from the other side of the connection."""
        return Difference(self.key, self.theirs, self.ours)

    def describe(self) -> str:
        """A one-line, human-readable account, e.g. ``prime differs: ours 1987…041, theirs 1701…969``."""
        if self.theirs is None:
            return f"{self.key} missing on their side (ours {_short(self.ours or '')})"
        if self.ours is None:
            return f"{self.key} missing on our side (theirs {_short(self.theirs)})"
        ours, theirs = _short(self.ours), _short(self.theirs)
        if ours == theirs:  # the abbreviations hide the difference: show everything
            ours, theirs = self.ours, self.theirs
        return f"{self.key} differs: ours {ours}, theirs {theirs}"


def _short(value: str) -> str:
    if len(value) <= _SHOW:
        return value
    return f"{value[:8]}…{value[-6:]}"


def validate_params(params: object, *, what: str = "parameters") -> dict[str, str]:
    """Check that ``params`` is a bounded ``Mapping[str, str]`` and return a copy.

    Args:
        params: the mapping to check (ours, or one decoded from the wire).
        what: how to name it in the error message.

    Raises:
        ValueError: with a message naming the first offending entry. The
            handshake turns it into a :class:`vcpd.errors.HandshakeError` for
            remote input; for local input it is a programming error.
    """
    if not isinstance(params, Mapping):
        raise ValueError(f"{what} must be a mapping of str to str")
    if len(params) > MAX_PARAMS:
        raise ValueError(f"{what} have {len(params)} entries (at most {MAX_PARAMS})")
    result: dict[str, str] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_PARAM_KEY:
            raise ValueError(f"{what}: bad key {key!r:.40}")
        if not isinstance(value, str) or len(value) > MAX_PARAM_VALUE:
            raise ValueError(f"{what}: bad value for {key!r}")
        result[key] = value
    return result


def compare_params(ours: Mapping[str, str], theirs: Mapping[str, str]) -> tuple[Difference, ...]:
    """Return every difference between two parameter mappings, sorted by key."""
    differences = []
    for key in sorted(set(ours) | set(theirs)):
        mine, other = ours.get(key), theirs.get(key)
        if mine != other:
            differences.append(Difference(key, mine, other))
    return tuple(differences)


def mismatch_error(differences: Iterable[Difference], *, prefix: str) -> ParameterMismatch:
    """Build the :class:`ParameterMismatch` for ``differences``.

    Args:
        differences: from :func:`compare_params` (or a peer's refusal, swapped).
        prefix: who we compared with, e.g. ``"VC parameters differ from party 1"``.
    """
    texts = tuple(d.describe() for d in differences)
    return ParameterMismatch(f"{prefix}: {'; '.join(texts)}", texts)
