"""MP-SPDZ preprocessing files: parse and write the header, check the body.

A gfp preprocessing file as MP-SPDZ's ``Fake-Offline.x`` (and so Carbyne
Stack's Klyshko generators) writes it is::

    u64 LE   L                        length of the header that follows
    8 bytes  "SPDZ gfp"               the share type (Share<gfp>::type_string)
    1 byte   0x00                     sign of the prime (octetStream::store(bigint))
    u32 LE   n                        byte length of the prime
    n bytes  p, big-endian
    [16 bytes α_i, LE Montgomery]     only in newer MP-SPDZ: the file's MAC key share
    body: tuples, each component value ‖ MAC (16 + 16 bytes LE Montgomery)

(``Tools/octetStream.cpp`` ``output``/``store(bigint)``, ``Math/gfp.hpp``
``specification``, ``Tools/Buffer.h`` ``file_signature``; Carbyne's CLI strips
exactly the 8 + 29 = 37 bytes of the older form.)

The parser is strict: it accepts exactly these two header forms, refuses
GF(2^n) files, a prime other than the VC's, a body that is not a whole number
of tuples of the declared kind (a wrong share size or a truncated file), a
word ≥ p, a MAC key share other than this VCP's (when the header carries one
and the caller knows its own), and, when the caller passes the file's MP-SPDZ
name (``[<N>-p-<bits>/]<Name>-p-P<i>[-T<t>]``), a name for another kind, party,
party count or prime size. Messages never contain share or key values.

This module must not import trio, the store, or any vcpd module other than
:mod:`vcpd.errors`, :mod:`vcpd.math` and its own package.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Final

from vcpd.errors import FieldError
from vcpd.math.field import PrimeField

from .kinds import ELEMENT_BYTES, TupleKind, check_words

__all__ = ["GFP_TYPE", "MpSpdzFile", "build_header", "parse_file"]

GFP_TYPE: Final = b"SPDZ gfp"
_GF2N_PREFIX: Final = b"SPDZ gf2n"
_NAME_RE: Final = re.compile(r"(?:(?P<n>\d+)-p-(?P<bits>\d+)/)?(?P<name>[A-Za-z]+)-p-P(?P<party>\d+)(?:-T\d+)?\Z")


@dataclass(frozen=True, slots=True)
class MpSpdzFile:
    """A parsed preprocessing file.

    Attributes:
        header_bytes: bytes before the body (8 + header length).
        count: number of tuples in the body.
        has_mac_key: whether the header carried a MAC key share.
        body: the tuples, ready to store as they are.
    """

    header_bytes: int
    count: int
    has_mac_key: bool
    body: memoryview


def build_header(field: PrimeField, mac_share: int | None = None) -> bytes:
    """The header MP-SPDZ expects for ``field`` (with α_i if given, as newer MP-SPDZ)."""
    prime = field.p.to_bytes((field.p.bit_length() + 7) // 8, "big")
    header = GFP_TYPE + b"\x00" + struct.pack("<I", len(prime)) + prime
    if mac_share is not None:
        header += field.int_to_bytes(mac_share)
    return struct.pack("<Q", len(header)) + header


def parse_file(
    data: bytes | memoryview,
    field: PrimeField,
    kind: TupleKind,
    *,
    mac_share: int | None = None,
    filename: str | None = None,
    party: int | None = None,
    n_parties: int | None = None,
) -> MpSpdzFile:
    """Parse and check one party's preprocessing file for ``kind`` tuples.

    Args:
        data: the whole file.
        field: the VC's field; the file's prime must be its p.
        kind: the kind the operator declares the file holds.
        mac_share: this VCP's α_i, to compare with a key share in the header.
        filename: the file's MP-SPDZ name or path, checked when given.
        party, n_parties: this VCP and the VC size, compared with the name.

    Raises:
        FieldError: the file does not fit (the message says what and how).
    """
    if kind.name == "bounded":
        # Nothing in a file can show its values are uniform below 2^40, and a
        # mask whose high part came from, say, a bit file would hide almost nothing.
        raise FieldError(
            f"{kind.name} tuples cannot be imported (MP-SPDZ has no such file); "
            "generate them with 'vcpctl tuples generate'"
        )
    view = memoryview(data).cast("B")
    if len(view) < 8:
        raise FieldError(f"not an MP-SPDZ preprocessing file: {len(view)} bytes, shorter than its length prefix")
    (length,) = struct.unpack_from("<Q", view, 0)
    prime_len = (field.p.bit_length() + 7) // 8
    base = len(GFP_TYPE) + 1 + 4 + prime_len
    header = bytes(view[8 : 8 + min(length, 256)])
    if header.startswith(_GF2N_PREFIX):
        raise FieldError("the file holds GF(2^n) tuples; vcpd only uses gfp tuples")
    if not header.startswith(GFP_TYPE):
        raise FieldError("not an MP-SPDZ gfp preprocessing file (the header does not start with 'SPDZ gfp')")
    if length not in (base, base + ELEMENT_BYTES) or len(view) < 8 + length:
        raise FieldError(
            f"unsupported or truncated MP-SPDZ header of {length} bytes "
            f"(expected {base}, or {base + ELEMENT_BYTES} with a MAC key share, for a {field.bits}-bit prime)"
        )
    sign, n = header[len(GFP_TYPE)], struct.unpack_from("<I", header, len(GFP_TYPE) + 1)[0]
    if sign != 0 or n != prime_len:
        raise FieldError(f"the file was made for another prime ({n}-byte prime in its header, the VC uses {prime_len})")
    prime = int.from_bytes(header[len(GFP_TYPE) + 5 : base], "big")
    if prime != field.p:
        raise FieldError(
            f"the file was made for the prime {prime}, but this VC uses {field.p}; "
            "regenerate it with the VC's prime (MP-SPDZ option --prime)"
        )
    has_mac_key = length == base + ELEMENT_BYTES
    if has_mac_key:
        key_bytes = header[base : base + ELEMENT_BYTES]
        try:
            key = field.int_from_bytes(key_bytes)
        except FieldError:
            raise FieldError("the MAC key share in the file header is not a field element") from None
        if mac_share is not None and key != mac_share % field.p:
            raise FieldError("the file was made for another MAC key share than this VCP's; use this party's file")
    if filename is not None:
        _check_name(filename, kind, field, party, n_parties)
    body = view[8 + length :]
    if len(body) == 0:
        raise FieldError("the file holds no tuples")
    if len(body) % kind.tuple_bytes:
        raise FieldError(
            f"the file body ({len(body)} bytes) is not a whole number of {kind.name} tuples of "
            f"{kind.tuple_bytes} bytes ({kind.arity} × value‖MAC of 16+16 bytes): it is truncated, "
            "holds another kind, or uses another share size"
        )
    check_words(field, body)
    return MpSpdzFile(8 + length, len(body) // kind.tuple_bytes, has_mac_key, body)


def _check_name(filename: str, kind: TupleKind, field: PrimeField, party: int | None, n_parties: int | None) -> None:
    tail = "/".join(filename.replace("\\", "/").split("/")[-2:])
    match = _NAME_RE.search(tail) or _NAME_RE.search(tail.split("/")[-1])
    if match is None:
        raise FieldError(f"{filename!r} is not an MP-SPDZ gfp preprocessing file name (<Name>-p-P<party>)")
    if kind.mpspdz_name is not None and match["name"] != kind.mpspdz_name:
        raise FieldError(f"{filename!r} holds {match['name']}, not {kind.mpspdz_name} ({kind.name} tuples)")
    if party is not None and int(match["party"]) != party:
        raise FieldError(f"{filename!r} is party {match['party']}'s file; this VCP is party {party}")
    if match["n"] is not None and n_parties is not None and int(match["n"]) != n_parties:
        raise FieldError(f"{filename!r} was made for {match['n']} parties; this VC has {n_parties}")
    if match["bits"] is not None and int(match["bits"]) != field.bits:
        raise FieldError(f"{filename!r} was made for a {match['bits']}-bit prime; the VC's has {field.bits} bits")
