"""Structural pre-check of untrusted CBOR before cbor2 sees it.

cbor2 understands many semantic tags (datetimes, decimals, big floats,
regular expressions, MIME messages, shared references that build cyclic
objects, ...) and decodes them with no way to switch them off wholesale, and
it silently ignores trailing bytes. The client API needs none of that, so we
walk the encoded item first, iteratively and in linear time, and accept only
this subset:

* unsigned and negative integers, byte strings, UTF-8 text strings,
  definite-length arrays and maps;
* tags 2 and 3 (bignums) around a byte string: field elements are larger
  than 64 bits;
* ``false``, ``true``, ``null`` and half, single and double floats;
* map keys that are integers or text strings;
* at most ``max_depth`` nested containers and ``max_items`` items, exactly
  one top-level item and nothing after it.

Everything else (other tags, ``undefined``, other simple values,
indefinite lengths, lengths that run past the end) is refused before any
object is built.

This module must not import trio, sockets, or any vcpd module.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CborRejected", "check_cbor"]

_ALLOWED_TAGS: Final = frozenset({2, 3})
_ALLOWED_SIMPLE: Final = frozenset({20, 21, 22, 25, 26, 27})  # false true null f16 f32 f64
_KEY_MAJORS: Final = frozenset({0, 1, 3})


class CborRejected(ValueError):
    """The input is not a single well-formed item of the accepted CBOR subset."""


def check_cbor(data: bytes, *, max_depth: int, max_items: int) -> None:
    """Raise :class:`CborRejected` unless ``data`` is one acceptable CBOR item.

    Args:
        data: the encoded item.
        max_depth: most containers nested inside each other.
        max_items: most data items in total (bounds decoding work).
    """
    end = len(data)
    pos = 0
    items = 0
    # One entry per open container: items still expected (maps count keys and
    # values separately, so an even count means "a key comes next").
    remaining: list[int] = []
    is_map: list[bool] = []
    in_tag = False
    while True:
        if pos >= end:
            raise CborRejected("truncated CBOR")
        initial = data[pos]
        pos += 1
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            argument = info
        elif info <= 27:
            size = 1 << (info - 24)
            if pos + size > end:
                raise CborRejected("truncated CBOR")
            argument = int.from_bytes(data[pos : pos + size], "big")
            pos += size
        else:
            raise CborRejected("indefinite lengths and reserved values are not accepted")
        if in_tag and major != 2:
            raise CborRejected("a bignum tag must hold a byte string")
        if remaining and is_map[-1] and remaining[-1] % 2 == 0 and major not in _KEY_MAJORS:
            raise CborRejected("map keys must be integers or text strings")
        if major == 6:
            if argument not in _ALLOWED_TAGS or in_tag:
                raise CborRejected(f"CBOR tag {argument} is not accepted")
            in_tag = True
            continue
        in_tag = False
        items += 1
        if items > max_items:
            raise CborRejected(f"more than {max_items} CBOR items")
        if major in (2, 3):
            if argument > end - pos:
                raise CborRejected("CBOR string runs past the end")
            pos += argument
        elif major in (4, 5):
            count = argument * 2 if major == 5 else argument
            if count > end - pos:  # every item takes at least one byte
                raise CborRejected("CBOR container runs past the end")
            if count:
                if len(remaining) >= max_depth:
                    raise CborRejected(f"CBOR nested deeper than {max_depth}")
                remaining.append(count)
                is_map.append(major == 5)
                continue
        elif major == 7:
            if info not in _ALLOWED_SIMPLE:
                raise CborRejected(f"CBOR simple value {argument} is not accepted")
        # majors 0 and 1 (integers) need nothing more
        # The item is complete: close every container it completes.
        while remaining:
            remaining[-1] -= 1
            if remaining[-1]:
                break
            remaining.pop()
            is_map.pop()
        if not remaining:
            if pos != end:
                raise CborRejected("trailing bytes after the CBOR item")
            return
