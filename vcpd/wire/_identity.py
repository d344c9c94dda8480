"""Identity blocks: what each side of the handshake signs and sends encrypted.

A block is a msgpack array, signed as raw bytes (so that no canonical
re-encoding is ever needed to check a signature)::

    responder:  [key, party, params]
    initiator:  [key, party, expected_party, params]

``key`` is the 32-byte Ed25519 identity key, ``party`` an int or nil (clients),
``params`` a sorted list of ``[name, value]`` pairs or nil (a client sends
none). The signed payload is ``[block, signature]``.

This module must not import trio, sockets, or any vcpd module other than
:mod:`vcpd.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import msgpack

from ._crypto import KEY_BYTES, SIGNATURE_BYTES
from .params import validate_params

MAX_PARTY: Final = (1 << 31) - 1


class MalformedIdentity(ValueError):
    """An identity block or signed payload does not have the expected shape."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A decoded identity block (signature not yet checked)."""

    key: bytes
    party: int | None
    expected_party: int | None
    params: dict[str, str] | None


def encode_block(
    key: bytes, party: int | None, params: Mapping[str, str] | None, *, expected: int | None, initiator: bool
) -> bytes:
    """Serialize our identity block."""
    pairs = None if params is None else [[name, params[name]] for name in sorted(params)]
    fields = [key, party, expected, pairs] if initiator else [key, party, pairs]
    block: bytes = msgpack.packb(fields, use_bin_type=True)
    return block


def encode_signed(block: bytes, signature: bytes) -> bytes:
    """The payload that travels encrypted: block and signature."""
    payload: bytes = msgpack.packb([block, signature], use_bin_type=True)
    return payload


def decode_signed(payload: bytes, *, initiator: bool) -> tuple[bytes, bytes, Identity]:
    """Split a decrypted payload into (block, signature, decoded identity).

    Args:
        payload: the decrypted payload.
        initiator: whether the block comes from an initiator (4 fields).

    Raises:
        MalformedIdentity: with a short reason.
    """
    outer = _unpack(payload)
    if not (isinstance(outer, list) and len(outer) == 2 and all(isinstance(x, bytes) for x in outer)):
        raise MalformedIdentity("payload is not [block, signature]")
    block, signature = outer
    if len(signature) != SIGNATURE_BYTES:
        raise MalformedIdentity("signature has the wrong length")
    fields = _unpack(block)
    if not isinstance(fields, list) or len(fields) != (4 if initiator else 3):
        raise MalformedIdentity("identity block has the wrong shape")
    key, party, *rest = fields
    expected = rest[0] if initiator else None
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise MalformedIdentity("identity key is not 32 bytes")
    if not (_is_party(party) and _is_party(expected)):
        raise MalformedIdentity("party id is not a small non-negative integer")
    return block, signature, Identity(key, party, expected, _read_params(rest[-1]))


def _read_params(pairs: object) -> dict[str, str] | None:
    if pairs is None:
        return None
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise MalformedIdentity("VC parameters are not a list of pairs")
    try:
        params = validate_params(dict(pairs), what="VC parameters")
    except (ValueError, TypeError) as exc:  # TypeError: unhashable name
        raise MalformedIdentity(str(exc)) from None
    if len(params) != len(pairs):
        raise MalformedIdentity("VC parameters repeat a name")
    return params


def _unpack(data: bytes) -> object:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception:  # malformed msgpack in any of its many ways
        return None


def _is_party(value: object) -> bool:
    return value is None or (type(value) is int and 0 <= value <= MAX_PARTY)
