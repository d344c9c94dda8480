"""Identity blocks: what each side of the handshake signs and sends encrypted.

A block is a msgpack array, signed as raw bytes (so that no canonical
re-encoding is ever needed to check a signature)::

    responder:  [key, party, params, offered_ciphers]
    initiator:  [key, party, expected_party, params, chosen_cipher]

``key`` is the 32-byte Ed25519 identity key, ``party`` an int or nil (clients),
``params`` a sorted list of ``[name, value]`` pairs or nil (a client sends
none). ``offered_ciphers`` lists the traffic AEADs the responder supports, in
its order of preference; ``chosen_cipher`` is the one the initiator picked
from that list. The signed payload is ``[block, signature]``.

Version 1 blocks had no cipher fields: they are refused as malformed (the
HELLO version normally stops an old peer before any block is read).

This module must not import trio, sockets, or any vcpd module other than
:mod:`vcpd.errors`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import msgpack

from ._crypto import KEY_BYTES, SIGNATURE_BYTES
from .params import validate_params

MAX_PARTY: Final = (1 << 31) - 1
MAX_CIPHERS: Final = 8
"""Most traffic AEADs a responder may offer."""
_CIPHER_NAME: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
"""What a cipher name looks like: names reach logs and error messages."""


class MalformedIdentity(ValueError):
    """An identity block or signed payload does not have the expected shape."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A decoded identity block (signature not yet checked).

    ``offered`` is set in a responder's block (and empty in an initiator's),
    ``chosen`` in an initiator's (and ``None`` in a responder's).
    """

    key: bytes
    party: int | None
    expected_party: int | None
    params: dict[str, str] | None
    offered: tuple[str, ...] = ()
    chosen: str | None = None


def encode_responder_block(key: bytes, party: int | None, params: Mapping[str, str], offered: Sequence[str]) -> bytes:
    """Serialize the responder's identity block, with the traffic AEADs it offers."""
    block: bytes = msgpack.packb([key, party, _pairs(params), list(offered)], use_bin_type=True)
    return block


def encode_initiator_block(
    key: bytes, party: int | None, expected: int | None, params: Mapping[str, str] | None, chosen: str
) -> bytes:
    """Serialize the initiator's identity block, with the traffic AEAD it chose."""
    block: bytes = msgpack.packb([key, party, expected, _pairs(params), chosen], use_bin_type=True)
    return block


def _pairs(params: Mapping[str, str] | None) -> list[list[str]] | None:
    return None if params is None else [[name, params[name]] for name in sorted(params)]


def encode_signed(block: bytes, signature: bytes) -> bytes:
    """The payload that travels encrypted: block and signature."""
    payload: bytes = msgpack.packb([block, signature], use_bin_type=True)
    return payload


def decode_signed(payload: bytes, *, initiator: bool) -> tuple[bytes, bytes, Identity]:
    """Split a decrypted payload into (block, signature, decoded identity).

    Args:
        payload: the decrypted payload.
        initiator: whether the block comes from an initiator (5 fields, else 4).

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
    if not isinstance(fields, list):
        raise MalformedIdentity("identity block is not an array")
    if len(fields) == (4 if initiator else 3):
        raise MalformedIdentity("identity block has no traffic cipher field (a version 1 block)")
    if len(fields) != (5 if initiator else 4):
        raise MalformedIdentity("identity block has the wrong shape")
    if initiator:
        key, party, expected, pairs, chosen = fields
        offered: tuple[str, ...] = ()
        if not _is_cipher_name(chosen):
            raise MalformedIdentity("chosen traffic cipher is not a cipher name")
    else:
        key, party, pairs, listed = fields
        expected = chosen = None
        offered = _read_offered(listed)
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise MalformedIdentity("identity key is not 32 bytes")
    if not (_is_party(party) and _is_party(expected)):
        raise MalformedIdentity("party id is not a small non-negative integer")
    return block, signature, Identity(key, party, expected, _read_params(pairs), offered, chosen)


def _read_offered(listed: object) -> tuple[str, ...]:
    """The responder's traffic AEADs; names we do not know are kept (and never chosen)."""
    if not isinstance(listed, list) or not 1 <= len(listed) <= MAX_CIPHERS:
        raise MalformedIdentity(f"offered traffic ciphers are not a list of 1 to {MAX_CIPHERS} names")
    if not all(_is_cipher_name(name) for name in listed):
        raise MalformedIdentity("an offered traffic cipher is not a cipher name")
    if len(set(listed)) != len(listed):
        raise MalformedIdentity("offered traffic ciphers repeat a name")
    return tuple(listed)


def _is_cipher_name(value: object) -> bool:
    return isinstance(value, str) and _CIPHER_NAME.fullmatch(value) is not None


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
