"""CBOR for client API messages that carry bulk byte strings, without cbor2's copies.

A secret of n elements travels as a few byte strings of 16·n bytes each
(``y``, ``rho``, ... in a download answer; ``mu`` in an upload commit;
``a``, ``b``, ``c`` in an upload begin). cbor2 handles them slowly for our
purpose: its encoder grows one output buffer (copying it as it grows), and
its decoder copies the whole input into a file object and then reads long
byte strings in 64 KiB pieces that it joins again. For a 10^6-element
download that was about a tenth of a second per VCP answer on the client,
on the critical path after every VCP has finished.

* :func:`encode_with_bulk` emits the same bytes as ``cbor2.dumps`` but
  splices every byte string of at least :data:`BULK_BYTES` into the output
  with one ``join`` (containers around it are walked; every other item is
  encoded by cbor2 itself, so only the framing is done here).
* :func:`decode_checked` decodes an item that :func:`._cborcheck.check_cbor`
  has already accepted (so lengths, depth, item count, tags and simple values
  are known to be in the accepted subset), building exactly what cbor2 would:
  ints, bignums (tags 2/3), bytes, UTF-8 text, lists, dicts (duplicate keys
  refused), ``False``/``True``/``None`` and floats. Each byte string is copied
  once, straight out of the input buffer.

This module must not import trio, sockets, or any vcpd module.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

import cbor2

__all__ = ["BULK_BYTES", "DuplicateKey", "decode_checked", "encode_with_bulk", "has_bulk"]

BULK_BYTES: Final = 1 << 16
"""Byte strings from this length on are spliced, not encoded by cbor2."""

_FLOATS: Final = {25: struct.Struct(">e"), 26: struct.Struct(">f"), 27: struct.Struct(">d")}
_SIMPLE: Final = {20: False, 21: True, 22: None}


class DuplicateKey(ValueError):
    """A CBOR map holds the same key twice."""


def _is_bulk(value: object) -> bool:
    return isinstance(value, bytes | bytearray | memoryview) and memoryview(value).nbytes >= BULK_BYTES


def has_bulk(obj: object, depth: int = 3) -> bool:
    """Whether ``obj`` holds a bulk byte string in its first ``depth`` levels."""
    if _is_bulk(obj):
        return True
    if depth <= 0:
        return False
    if isinstance(obj, Mapping):
        return any(has_bulk(v, depth - 1) for v in obj.values())
    if isinstance(obj, list | tuple):
        return any(has_bulk(v, depth - 1) for v in obj)
    return False


def _head(major: int, argument: int) -> bytes:
    """The initial byte(s) of a CBOR item with a definite length/value (as cbor2 writes them)."""
    if argument < 24:
        return bytes((major << 5 | argument,))
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * size):
            return bytes((major << 5 | info,)) + argument.to_bytes(size, "big")
    raise ValueError("CBOR argument beyond 64 bits")


def _pieces(obj: object, out: list[Any], depth: int) -> None:
    if _is_bulk(obj):
        view = memoryview(obj).cast("B")  # type: ignore[arg-type]
        out.append(_head(2, view.nbytes))
        out.append(view)
    elif depth > 0 and isinstance(obj, Mapping) and has_bulk(obj, depth):
        out.append(_head(5, len(obj)))
        for key, value in obj.items():
            out.append(cbor2.dumps(key))
            _pieces(value, out, depth - 1)
    elif depth > 0 and isinstance(obj, list | tuple) and has_bulk(obj, depth):
        out.append(_head(4, len(obj)))
        for value in obj:
            _pieces(value, out, depth - 1)
    else:
        out.append(cbor2.dumps(obj))


def encode_with_bulk(obj: object, depth: int = 3) -> bytes:
    """``cbor2.dumps(obj)``, with bulk byte strings in the first ``depth`` levels copied once."""
    out: list[Any] = []
    _pieces(obj, out, depth)
    return b"".join(out)


def decode_checked(data: bytes | bytearray | memoryview) -> Any:
    """Decode one CBOR item that ``check_cbor`` accepted.

    Raises:
        DuplicateKey: a map repeats a key.
        UnicodeDecodeError: a text string is not UTF-8.
        ValueError, IndexError: the input was not checked first.
    """
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    value, pos = _item(view, 0)
    if pos != len(view):
        raise ValueError("trailing bytes after the CBOR item")
    return value


def _argument(data: Sequence[int], pos: int) -> tuple[int, int, int, int]:
    initial = data[pos]
    pos += 1
    major, info = initial >> 5, initial & 0x1F
    if info < 24:
        return major, info, info, pos
    size = 1 << (info - 24)
    return major, info, int.from_bytes(data[pos : pos + size], "big"), pos + size


def _item(data: Any, pos: int) -> tuple[Any, int]:
    major, info, argument, pos = _argument(data, pos)
    if major == 0:
        return argument, pos
    if major == 1:
        return -1 - argument, pos
    if major == 2:
        return bytes(data[pos : pos + argument]), pos + argument
    if major == 3:
        return str(data[pos : pos + argument], "utf-8"), pos + argument
    if major == 4:
        items = []
        for _ in range(argument):
            value, pos = _item(data, pos)
            items.append(value)
        return items, pos
    if major == 5:
        result: dict[Any, Any] = {}
        for _ in range(argument):
            key, pos = _item(data, pos)
            if key in result:
                raise DuplicateKey("duplicate key in a CBOR map")
            result[key], pos = _item(data, pos)
        return result, pos
    if major == 6:  # a bignum (tags 2 and 3 only, around a byte string)
        payload, pos = _item(data, pos)
        number = int.from_bytes(payload, "big")
        return (number if argument == 2 else -1 - number), pos
    if info in _SIMPLE:
        return _SIMPLE[info], pos
    codec = _FLOATS[info]
    start = pos - codec.size
    return codec.unpack_from(data, start)[0], pos
