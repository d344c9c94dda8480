"""The secret store's data model: ids, tags, filters, sort orders, encodings, actions.

Everything a client sends is checked here, once, into small frozen values; a
malformed id, tag or filter becomes a ``bad-request``
:class:`~vcpd.errors.RequestError` naming the problem (never the secret's
contents: tag values are metadata, chosen by the client, and may be quoted).

The rules follow Carbyne Stack's Amphora (carbyne-notes §1.1): tag keys of at
most 128 characters matching ``[-.\\w]+`` (ASCII), values of at most 256
characters, ``LONG`` values that parse as signed 64-bit integers, no duplicate
keys, and two reserved keys (``owner``, ``creation-date``) that only the
server sets.

This module must not import trio, the store, or any vcpd module other than
:mod:`vcpd.errors` and :mod:`vcpd.services.ports`.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from vcpd.errors import RequestError
from vcpd.services.ports import SECRET_ENCODINGS, SecretEncoding

__all__ = [
    "ACTIONS",
    "CREATION_DATE_TAG",
    "MAX_PAGE_SIZE",
    "MAX_SECRET_LENGTH",
    "MAX_TAGS",
    "MAX_TAG_KEY_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "OWNER_TAG",
    "RESERVED_TAG_KEYS",
    "Sort",
    "Tag",
    "TagFilter",
    "parse_actions",
    "parse_encoding",
    "parse_filter",
    "parse_public_key",
    "parse_secret_id",
    "parse_sort",
    "parse_tags",
    "parse_uuid",
]

MAX_SECRET_LENGTH: Final = 1_000_000
"""Most field elements in one secret: a download answer carries 5 × 16 bytes
per element, and this keeps it (80 MB) well below the wire's 256 MiB message
limit while leaving room for real data sets."""

MAX_TAG_KEY_LENGTH: Final = 128  # characters (Amphora's Tag.MAX_KEY_LENGTH)
MAX_TAG_VALUE_LENGTH: Final = 256  # characters (Amphora's MAX_VALUE_LENGTH)
MAX_TAGS: Final = 64
"""Most tags one secret may carry (reserved ones included): tags are metadata,
not a place for data, and every listing returns them all."""

MAX_PAGE_SIZE: Final = 1000  # secrets per page of a listing (also the default size)
MAX_FILTERS: Final = 32  # filters in one listing

OWNER_TAG: Final = "owner"
CREATION_DATE_TAG: Final = "creation-date"
RESERVED_TAG_KEYS: Final = (OWNER_TAG, CREATION_DATE_TAG)
"""Set by the VCPs (uploader's public key; ms since the epoch), never by clients."""

ACTIONS: Final = ("read", "use", "delete", "tag")
"""What an owner can grant another client key: download the value, use it as a
program input, delete the secret, change its tags."""

TagType = Literal["STRING", "LONG"]
TAG_TYPES: Final = ("STRING", "LONG")

_KEY_RE: Final = re.compile(r"[-.\w]+\Z", re.ASCII)
_LONG_RE: Final = re.compile(r"-?[0-9]+\Z")
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_FILTER_OPS: Final = "=<>"


def _bad(message: str) -> RequestError:
    return RequestError("bad-request", message)


def _shown(text: str, limit: int = 40) -> str:
    """A client-supplied string quoted for an error message, cut to ``limit``."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_uuid(text: Any, what: str) -> str:
    """``text`` as a canonical lowercase UUID (8-4-4-4-12 hex digits).

    Raises:
        RequestError: ``bad-request`` naming ``what`` when it is not a UUID.
    """
    if not isinstance(text, str) or len(text) != 36:
        raise _bad(f"{what} {_shown(str(text))} is not a UUID (expected 8-4-4-4-12 hex digits)")
    try:
        canonical = str(uuid.UUID(text))
    except ValueError:
        raise _bad(f"{what} {_shown(text)} is not a UUID (expected 8-4-4-4-12 hex digits)") from None
    if canonical != text.lower():
        raise _bad(f"{what} {_shown(text)} is not a UUID (expected 8-4-4-4-12 hex digits)")
    return canonical


def parse_secret_id(text: Any) -> str:
    """A secret id as its canonical UUID string (the same on every VCP)."""
    return parse_uuid(text, "secret id")


def _parse_long(text: str, where: str) -> int:
    if not _LONG_RE.match(text):
        raise _bad(f"{where}: {_shown(text)} is not a signed 64-bit integer")
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _bad(f"{where}: {_shown(text)} is outside the signed 64-bit range")
    return value


def check_tag_key(key: Any, *, allow_reserved: bool = False) -> str:
    """A valid tag key (1..128 ASCII characters of ``[-.\\w]``), reserved ones refused."""
    if not isinstance(key, str) or not key:
        raise _bad("a tag key must be a non-empty string")
    if len(key) > MAX_TAG_KEY_LENGTH:
        raise _bad(f"tag key {_shown(key)} is longer than {MAX_TAG_KEY_LENGTH} characters")
    if not _KEY_RE.match(key):
        raise _bad(f"tag key {_shown(key)} may contain only letters, digits, '_', '-' and '.'")
    if not allow_reserved and key in RESERVED_TAG_KEYS:
        raise _bad(f"tag key {key!r} is reserved: the VCPs set it and clients may not set or delete it")
    return key


@dataclass(frozen=True, slots=True)
class Tag:
    """One key/value tag of a secret.

    Attributes:
        key: 1..128 characters of ``[-.\\w]``.
        value: at most 256 characters; for ``LONG`` the canonical decimal form.
        type: ``STRING`` (compared as text) or ``LONG`` (a signed 64-bit
            integer: filters ``<``/``>`` and sorting compare it as a number).
    """

    key: str
    value: str
    type: TagType = "STRING"

    @property
    def number(self) -> int | None:
        """The value as an int for LONG tags, else None."""
        return int(self.value) if self.type == "LONG" else None

    def to_wire(self) -> dict[str, str]:
        """The API form ``{"key", "value", "type"}``."""
        return {"key": self.key, "value": self.value, "type": self.type}

    @classmethod
    def parse(cls, data: Any, *, allow_reserved: bool = False) -> Tag:
        """A checked Tag from the API form (``type`` defaults to STRING).

        Raises:
            RequestError: ``bad-request`` naming the rule broken.
        """
        if not isinstance(data, Mapping):
            raise _bad("a tag must be a map with 'key', 'value' and optionally 'type'")
        unknown = set(data) - {"key", "value", "type"}
        if unknown:
            raise _bad(f"a tag has unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        key = check_tag_key(data.get("key"), allow_reserved=allow_reserved)
        value = data.get("value", "")
        kind = data.get("type", "STRING")
        if kind not in TAG_TYPES:
            raise _bad(f"tag {key!r}: type must be STRING or LONG, not {_shown(str(kind))}")
        if isinstance(value, int) and not isinstance(value, bool) and kind == "LONG":
            value = str(value)
        if not isinstance(value, str):
            raise _bad(f"tag {key!r}: the value must be a string")
        if len(value) > MAX_TAG_VALUE_LENGTH:
            raise _bad(f"tag {key!r}: the value is longer than {MAX_TAG_VALUE_LENGTH} characters")
        if kind == "LONG":
            value = str(_parse_long(value, f"tag {key!r} of type LONG"))
        return cls(key, value, kind)


def parse_tags(data: Any, *, allow_reserved: bool = False) -> tuple[Tag, ...]:
    """A list of tags in API form, checked and without duplicate keys, sorted by key.

    Raises:
        RequestError: ``bad-request`` for a malformed tag, a duplicate key, a
            reserved key (unless allowed) or too many tags.
    """
    if not isinstance(data, list | tuple):
        raise _bad("tags must be a list of {key, value, type} maps")
    if len(data) > MAX_TAGS:
        raise _bad(f"at most {MAX_TAGS} tags per secret, got {len(data)}")
    tags = [Tag.parse(item, allow_reserved=allow_reserved) for item in data]
    seen: set[str] = set()
    for tag in tags:
        if tag.key in seen:
            raise _bad(f"duplicate tag key {tag.key!r}")
        seen.add(tag.key)
    return tuple(sorted(tags, key=lambda t: t.key))


def tags_from_mapping(tags: Mapping[str, str | int]) -> tuple[Tag, ...]:
    """Tags from a ``{key: value}`` map: ints become LONG tags, strings STRING tags."""
    items = []
    for key, value in tags.items():
        if isinstance(value, int) and not isinstance(value, bool):
            items.append({"key": key, "value": str(value), "type": "LONG"})
        else:
            items.append({"key": key, "value": value, "type": "STRING"})
    return parse_tags(items)


def canonical_tags(tags: Iterable[Tag]) -> list[list[str]]:
    """Tags as sorted ``[key, type, value]`` triples: the form digests hash."""
    return sorted([t.key, t.type, t.value] for t in tags)


@dataclass(frozen=True, slots=True)
class TagFilter:
    """One listing condition; several are combined with AND.

    ``key=value`` compares the tag's value as text (any type); ``key<n`` and
    ``key>n`` compare LONG tags numerically. A secret without the tag never
    matches.
    """

    key: str
    op: Literal["=", "<", ">"]
    value: str

    @property
    def number(self) -> int:
        """The comparison operand of ``<``/``>``."""
        return int(self.value)

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


def parse_filter(text: Any) -> TagFilter:
    """Parse ``key=value``, ``key<n`` or ``key>n`` (n a signed 64-bit integer).

    The key cannot contain ``=``, ``<`` or ``>``, so the first of them is the
    operator and the value may contain anything (base64 owner keys end in ``=``).

    Raises:
        RequestError: ``bad-request`` naming the filter and the problem.
    """
    if not isinstance(text, str):
        raise _bad("a filter must be a string like 'key=value', 'key<n' or 'key>n'")
    position = next((i for i, ch in enumerate(text) if ch in _FILTER_OPS), -1)
    if position < 0:
        raise _bad(f"filter {_shown(text)} has no operator; write 'key=value', 'key<n' or 'key>n'")
    key, op, value = text[:position], text[position], text[position + 1 :]
    if not key:
        raise _bad(f"filter {_shown(text)} has no tag key before {op!r}")
    try:
        check_tag_key(key, allow_reserved=True)
    except RequestError as exc:
        raise _bad(f"filter {_shown(text)}: {exc.message}") from None
    if len(value) > MAX_TAG_VALUE_LENGTH:
        raise _bad(f"filter {_shown(text)}: the value is longer than {MAX_TAG_VALUE_LENGTH} characters")
    if op != "=":
        value = str(_parse_long(value, f"filter {_shown(text)}"))
    return TagFilter(key, op, value)  # type: ignore[arg-type]


def parse_filters(data: Any) -> tuple[TagFilter, ...]:
    """A list of filter strings (at most :data:`MAX_FILTERS`)."""
    if not isinstance(data, list | tuple):
        raise _bad("filters must be a list of strings like 'key=value', 'key<n' or 'key>n'")
    if len(data) > MAX_FILTERS:
        raise _bad(f"at most {MAX_FILTERS} filters, got {len(data)}")
    return tuple(parse_filter(item) for item in data)


@dataclass(frozen=True, slots=True)
class Sort:
    """A listing order: by a tag (LONG tags numerically, others as text).

    Secrets without the tag come last in either direction; ties are broken by
    creation date, then id, so pages never overlap.
    """

    key: str = CREATION_DATE_TAG
    descending: bool = False


def parse_sort(data: Any) -> Sort:
    """``None`` (creation date, ascending) or ``{"key": k, "order": "asc"|"desc"}``."""
    if data is None:
        return Sort()
    if not isinstance(data, Mapping):
        raise _bad("sort must be a map {'key': TAG, 'order': 'asc' or 'desc'}")
    unknown = set(data) - {"key", "order"}
    if unknown:
        raise _bad(f"sort has unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    key = check_tag_key(data.get("key"), allow_reserved=True)
    order = data.get("order", "asc")
    if order not in ("asc", "desc"):
        raise _bad(f"sort order must be 'asc' or 'desc', not {_shown(str(order))}")
    return Sort(key, order == "desc")


def parse_encoding(kind: Any, fraction_bits: Any = None) -> SecretEncoding:
    """The encoding named by the client (``fraction_bits`` only for ``fixed``, default 16)."""
    if kind not in SECRET_ENCODINGS:
        raise _bad(f"encoding must be one of {', '.join(SECRET_ENCODINGS)}, not {_shown(str(kind))}")
    if fraction_bits is not None and (isinstance(fraction_bits, bool) or not isinstance(fraction_bits, int)):
        raise _bad("fraction_bits must be an integer")
    if kind == "fixed":
        bits = 16 if fraction_bits is None else fraction_bits
        if not 0 <= bits <= 63:
            raise _bad(f"fraction_bits must be in 0..63, got {bits}")
        return SecretEncoding("fixed", bits)
    if fraction_bits not in (None, 0):
        raise _bad(f"fraction_bits applies to the 'fixed' encoding only, not {kind!r}")
    return SecretEncoding(kind, 0)


def parse_public_key(text: Any) -> str:
    """A client public key (base64 of 32 bytes), in canonical base64."""
    if not isinstance(text, str):
        raise _bad("a client public key must be a base64 string")
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{_shown(text)} is not a base64 Ed25519 public key") from None
    if len(raw) != 32:
        raise _bad(f"an Ed25519 public key has 32 bytes, {_shown(text)} has {len(raw)}")
    return base64.b64encode(raw).decode("ascii")


def parse_actions(data: Any) -> tuple[str, ...]:
    """A non-empty list of actions out of :data:`ACTIONS`, deduplicated, in canonical order."""
    if not isinstance(data, list | tuple) or not data:
        raise _bad(f"actions must be a non-empty list out of {', '.join(ACTIONS)}")
    unknown = [a for a in data if a not in ACTIONS]
    if unknown:
        raise _bad(f"unknown action {_shown(str(unknown[0]))}; actions are {', '.join(ACTIONS)}")
    return tuple(a for a in ACTIONS if a in data)


def check_length(count: Any) -> int:
    """A secret length: 1..:data:`MAX_SECRET_LENGTH` elements."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SECRET_LENGTH:
        raise _bad(f"count must be an integer in 1..{MAX_SECRET_LENGTH}")
    return count


def encoding_to_wire(encoding: SecretEncoding) -> dict[str, Any]:
    """The API fields describing an encoding."""
    return {"encoding": encoding.kind, "fraction_bits": encoding.fraction_bits}


def unique(values: Sequence[str], what: str) -> tuple[str, ...]:
    """``values`` without repeats (order kept); refuses an empty list."""
    if not values:
        raise _bad(f"give at least one {what}")
    return tuple(dict.fromkeys(values))
