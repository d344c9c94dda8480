"""Client-side secret store: verified upload and download, tags, listing, grants.

:class:`SecretsMixin` is mixed into :class:`vcpd.client.Client`. Its methods
talk to every VCP of the VC and **trust none of them alone**:

* an upload first fetches shares of fresh triples (a, b, c) and checks
  a·b = c for every element before sending μ = x − a; so the masked values
  sent out hide x behind a mask no VCP could have shifted (the argument is in
  :mod:`vcpd.services.secrets.upload`);
* a download sums every VCP's shares of y, ρ, v, w, u and returns y only if
  w = y·ρ and u = v·ρ for every element, else raises
  :class:`~vcpd.errors.IntegrityError`; the VCPs have MAC-checked every
  opening behind w and u before answering;
* metadata that several VCPs answer (tags, listings, lengths, encodings)
  must agree, else :class:`~vcpd.errors.IntegrityError`.

Values are encoded as ``int64`` (the default), ``field`` or ``fixed``
(:mod:`.secret_values`, which also holds both checks); the encoding is
stored with the secret, so :meth:`SecretsMixin.get_secret` returns what was
put in.

The client library may import only vcpd.errors, config, keys, logs, math,
wire and net (never services or api): the rules for ids and tags are
enforced by the VCPs and only mirrored here where that saves a round trip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from vcpd.errors import IntegrityError, RequestError
from vcpd.math import PrimeField

from .secret_values import (
    DELIVERY_FAILURE,
    ENCODINGS,
    MASK_FAILURE,
    decode_values,
    encode_values,
    verify_delivery,
    verify_in_threads,
    verify_masks,
)

__all__ = [
    "DELIVERY_FAILURE",
    "MASK_FAILURE",
    "ENCODINGS",
    "Page",
    "Secret",
    "SecretInfo",
    "SecretsMixin",
    "decode_values",
    "encode_values",
    "verify_delivery",
    "verify_masks",
]

Encoding = Literal["int64", "field", "fixed"]
DEFAULT_FRACTION_BITS: Final = 16
RESERVED_TAGS: Final = ("owner", "creation-date")


TagValue = str | int


# ---------------------------------------------------------------- value types


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A secret's metadata, as listings return it (no values).

    Attributes:
        id: the secret's UUID.
        length: number of elements.
        encoding: ``int64``, ``field`` or ``fixed``.
        fraction_bits: f for ``fixed``, else 0.
        tags: every tag, reserved ones included (LONG tags as ints).
    """

    id: str
    length: int
    encoding: str
    fraction_bits: int
    tags: dict[str, TagValue]

    @property
    def owner(self) -> str | None:
        """The owner's public key (base64)."""
        value = self.tags.get("owner")
        return value if isinstance(value, str) else None

    @property
    def creation_date(self) -> int | None:
        """Creation date in ms since the epoch."""
        value = self.tags.get("creation-date")
        return value if isinstance(value, int) else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "id": self.id,
            "length": self.length,
            "encoding": self.encoding,
            "fraction_bits": self.fraction_bits,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True, slots=True)
class Secret:
    """A downloaded, verified secret.

    Attributes:
        id: the secret's UUID.
        values: decoded per the stored encoding (ints, or floats for fixed).
        tags: every tag, reserved ones included (LONG tags as ints).
        encoding: ``int64``, ``field`` or ``fixed``.
        fraction_bits: f for ``fixed``, else 0.
        tuples: tuples the download consumed on each VCP, per kind.
    """

    id: str
    values: list[int] | list[float]
    tags: dict[str, TagValue]
    encoding: str
    fraction_bits: int = 0
    tuples: dict[str, int] = field(default_factory=dict)

    def __repr__(self) -> str:  # keep values out of logs and tracebacks
        return f"<Secret {self.id} n={len(self.values)} encoding={self.encoding}>"

    @property
    def owner(self) -> str | None:
        """The owner's public key (base64)."""
        value = self.tags.get("owner")
        return value if isinstance(value, str) else None

    @property
    def creation_date(self) -> int | None:
        """Creation date in ms since the epoch."""
        value = self.tags.get("creation-date")
        return value if isinstance(value, int) else None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing.

    Attributes:
        items: the secrets on this page.
        page: its number, from 0.
        size: the page size asked for.
        total: matching secrets on all pages.
        pages: number of pages.
    """

    items: list[SecretInfo]
    page: int
    size: int
    total: int
    pages: int


def _tags_from_wire(party: int, data: Any) -> dict[str, TagValue]:
    if not isinstance(data, list):
        raise IntegrityError(f"VCP {party} sent malformed tags")
    tags: dict[str, TagValue] = {}
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not isinstance(item.get("value"), str):
            raise IntegrityError(f"VCP {party} sent a malformed tag")
        if item.get("type") == "LONG":
            try:
                tags[item["key"]] = int(item["value"])
            except ValueError:
                raise IntegrityError(f"VCP {party} sent a LONG tag that is not an integer") from None
        else:
            tags[item["key"]] = item["value"]
    return tags


def _tags_to_wire(tags: Mapping[str, TagValue]) -> list[dict[str, str]]:
    wire = []
    for key, value in tags.items():
        if not isinstance(key, str):
            raise RequestError("bad-request", "tag keys must be strings")
        if key in RESERVED_TAGS:
            raise RequestError("bad-request", f"tag key {key!r} is reserved: the VCPs set it")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise RequestError("bad-request", f"tag {key!r}: values must be str or int")
        kind = "LONG" if isinstance(value, int) else "STRING"
        wire.append({"key": key, "value": str(value), "type": kind})
    return wire


def _same(answers: Sequence[Any], what: str) -> Any:
    """The common answer of every VCP, or IntegrityError naming the first that differs."""
    first = answers[0]
    for party, answer in enumerate(answers[1:], start=1):
        if answer != first:
            raise IntegrityError(f"VCP 0 and VCP {party} disagree about {what}: a VCP cheated or is broken")
    return first


def _info(party: int, data: Any) -> SecretInfo:
    if not isinstance(data, dict):
        raise IntegrityError(f"VCP {party} sent malformed metadata")
    try:
        return SecretInfo(
            id=str(data["id"]),
            length=int(data["length"]),
            encoding=str(data["encoding"]),
            fraction_bits=int(data["fraction_bits"]),
            tags=_tags_from_wire(party, data["tags"]),
        )
    except (KeyError, TypeError, ValueError):
        raise IntegrityError(f"VCP {party} sent malformed metadata") from None


def _grant_args(secret_id: str, client_public_key: str, actions: Sequence[str] | str) -> dict[str, Any]:
    """The arguments of ``secrets.grant`` and ``secrets.revoke`` (a fresh request id each call)."""
    return {
        "id": _secret_id(secret_id),
        "client": client_public_key,
        "actions": _actions(actions),
        "request_id": str(uuid.uuid4()),
    }


def _secret_id(text: str | uuid.UUID) -> str:
    try:
        return str(uuid.UUID(str(text)))
    except ValueError:
        raise RequestError("bad-request", f"secret id {str(text)[:40]!r} is not a UUID") from None


def _actions(actions: Sequence[str] | str) -> list[str]:
    return [actions] if isinstance(actions, str) else list(actions)


def parse_sort(sort: str | tuple[str, str] | None) -> dict[str, str] | None:
    """``"key"``, ``"key:asc"``, ``"key:desc"`` or ``(key, order)`` as the API's sort map."""
    if sort is None:
        return None
    if isinstance(sort, str):
        key, _, order = sort.partition(":")
    else:
        key, order = sort
    return {"key": key, "order": order or "asc"}


# ---------------------------------------------------------------- the mixin


class SecretsMixin:
    """Secret store methods of :class:`vcpd.client.Client` (see the module doc)."""

    if TYPE_CHECKING:
        field: PrimeField

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
        ) -> list[Any]: ...

    async def create_secret(
        self,
        values: Iterable[int | float],
        *,
        tags: Mapping[str, TagValue] | None = None,
        encoding: Encoding = "int64",
        fraction_bits: int = DEFAULT_FRACTION_BITS,
        secret_id: str | None = None,
    ) -> str:
        """Upload a secret with verified input masks; return its id.

        Args:
            values: the values (ints for ``int64``/``field``, numbers for ``fixed``).
            tags: ``{key: value}``; int values become LONG tags.
            encoding: ``int64`` (default), ``field`` or ``fixed``.
            fraction_bits: f for ``fixed`` (ignored otherwise).
            secret_id: a UUID to use (default: a fresh random one).

        Raises:
            FieldError: a value does not fit the encoding.
            IntegrityError: the VCPs' input masks failed their check
                (a·b ≠ c); nothing was sent that depends on the values.
            RequestError: a VCP refused (``conflict`` for an existing id,
                ``bad-request`` for malformed tags, ...).
        """
        elements = encode_values(self.field, values, encoding, fraction_bits)
        wire_tags = _tags_to_wire(tags or {})
        sid = _secret_id(secret_id) if secret_id is not None else str(uuid.uuid4())
        request_id = str(uuid.uuid4())
        n = len(elements)
        answers = await self.call_all("secrets.upload.begin", {"id": sid, "count": n, "request_id": request_id})
        masks = await verify_in_threads(self.field, answers, n, masks=True)
        mu = (elements - masks).to_bytes()
        commit: dict[str, Any] = {
            "id": sid,
            "request_id": request_id,
            "mu": mu,
            "tags": wire_tags,
            "encoding": encoding,
        }
        if encoding == "fixed":
            commit["fraction_bits"] = fraction_bits
        results = await self.call_all("secrets.upload.commit", commit)
        _same([_info(p, r) for p, r in enumerate(results)], f"the metadata of the new secret {sid}")
        return sid

    async def get_secret(self, secret_id: str) -> Secret:
        """Download and verify a secret; return its decoded values and tags.

        Raises:
            IntegrityError: the answers failed the output-delivery check or
                disagree about metadata; no value is returned.
            RequestError: ``not-found``/``forbidden``; ``mac-check-failed``
                when the VCPs caught a cheater themselves.
            FieldError: the values do not fit the stored encoding.
        """
        sid = _secret_id(secret_id)
        answers = await self.call_all("secrets.get", {"id": sid, "request_id": str(uuid.uuid4())})
        info = _same([_info(p, a) for p, a in enumerate(answers)], f"the metadata of secret {sid}")
        if info.id != sid or not 1 <= info.length:
            raise IntegrityError(f"the VCPs answered for another secret than {sid}")
        elements = await verify_in_threads(self.field, answers, info.length, masks=False)
        tuples = answers[0].get("tuples")
        return Secret(
            id=sid,
            values=decode_values(elements, info.encoding, info.fraction_bits),
            tags=info.tags,
            encoding=info.encoding,
            fraction_bits=info.fraction_bits,
            tuples=dict(tuples) if isinstance(tuples, dict) else {},
        )

    async def list_secrets(
        self,
        *,
        filters: Sequence[str] = (),
        sort: str | tuple[str, str] | None = None,
        page: int | None = None,
        size: int | None = None,
    ) -> Page:
        """The secrets this client may read, filtered, sorted and paged.

        Args:
            filters: ``key=value`` (text equality), ``key<n``, ``key>n`` (LONG
                tags), all of which must hold.
            sort: a tag key, optionally ``:asc``/``:desc`` (default: creation date).
            page: page number from 0; size: secrets per page (default and
                maximum 1000).
        """
        args: dict[str, Any] = {"filters": list(filters)}
        sort_map = parse_sort(sort)
        if sort_map is not None:
            args["sort"] = sort_map
        if page is not None:
            args["page"] = page
        if size is not None:
            args["size"] = size
        answers = await self.call_all("secrets.list", args)
        pages = []
        for party, answer in enumerate(answers):
            try:
                items = [_info(party, item) for item in answer["secrets"]]
                numbers = [int(answer[k]) for k in ("page", "size", "total", "pages")]
                pages.append(Page(items, *numbers))
            except (KeyError, TypeError, ValueError):
                raise IntegrityError(f"VCP {party} sent a malformed listing") from None
        return _same(pages, "the listing")  # type: ignore[no-any-return]

    async def delete_secrets(self, secret_ids: Sequence[str] | str) -> int:
        """Delete secrets on every VCP (``delete`` right needed); return how many."""
        ids = [_secret_id(s) for s in _actions(secret_ids)]
        answers = await self.call_all("secrets.delete", {"ids": ids, "request_id": str(uuid.uuid4())})
        return int(_same([a.get("deleted") for a in answers], "how many secrets were deleted"))

    async def get_tags(self, secret_id: str) -> dict[str, TagValue]:
        """Every tag of a secret, reserved ones included; the VCPs must agree."""
        sid = _secret_id(secret_id)
        answers = await self.call_all("secrets.tags.get", {"id": sid})
        tags = [_tags_from_wire(p, a.get("tags")) for p, a in enumerate(answers)]
        return _same(tags, f"the tags of {sid}")  # type: ignore[no-any-return]

    async def set_tags(self, secret_id: str, tags: Mapping[str, TagValue]) -> None:
        """Create or update tags (int values become LONG tags)."""
        args = {"id": _secret_id(secret_id), "tags": _tags_to_wire(tags), "request_id": str(uuid.uuid4())}
        await self.call_all("secrets.tags.set", args)

    async def delete_tags(self, secret_id: str, keys: Sequence[str] | str) -> None:
        """Delete tags by key (all or nothing)."""
        args = {"id": _secret_id(secret_id), "keys": _actions(keys), "request_id": str(uuid.uuid4())}
        await self.call_all("secrets.tags.delete", args)

    async def grant(self, secret_id: str, client_public_key: str, actions: Sequence[str] | str) -> None:
        """Let another client key ``read``, ``use``, ``delete`` or ``tag`` a secret you own."""
        await self.call_all("secrets.grant", _grant_args(secret_id, client_public_key, actions))

    async def revoke(self, secret_id: str, client_public_key: str, actions: Sequence[str] | str) -> None:
        """Take rights on a secret you own away from another client key."""
        await self.call_all("secrets.revoke", _grant_args(secret_id, client_public_key, actions))

    async def get_grants(self, secret_id: str) -> dict[str, list[str]]:
        """Client key -> granted actions of a secret you own; the VCPs must agree."""
        sid = _secret_id(secret_id)
        answers = await self.call_all("secrets.grants", {"id": sid})
        return _same([a.get("grants") for a in answers], f"the grants of {sid}")  # type: ignore[no-any-return]
