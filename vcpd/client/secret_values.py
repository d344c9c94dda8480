"""Secret values on the client: their encodings, and the checks of what the VCPs send.

* :func:`encode_values` / :func:`decode_values`: ``int64`` (signed 64-bit
  integers), ``field`` (raw elements in [0, p)) and ``fixed`` (reals as
  round(x·2^f) in signed 64 bits), vectorised for big secrets;
* :func:`verify_masks`: an upload's input masks, from every VCP's shares of
  fresh triples (a, b, c): the masks a only if a·b = c everywhere (see
  :mod:`vcpd.services.secrets.upload` for why that catches a lying VCP);
* :func:`verify_delivery`: a download, from every VCP's shares of the
  output-delivery object: y only if w = y·ρ and u = v·ρ everywhere.

Both checks run in two threads for big secrets (numpy releases the GIL, and
the VCPs wait for the client meanwhile). Failures are
:class:`~vcpd.errors.IntegrityError` naming the VCP whose answer was
malformed where that is known, never a value.

May import only vcpd.errors and vcpd.math (a part of the client library).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import trio

from vcpd.errors import FieldError, IntegrityError
from vcpd.math import FieldArray, PrimeField

__all__ = [
    "DELIVERY_FAILURE",
    "ENCODINGS",
    "MASK_FAILURE",
    "decode_values",
    "encode_values",
    "verify_delivery",
    "verify_in_threads",
    "verify_masks",
]

ENCODINGS: Final = ("int64", "field", "fixed")
DELIVERY_FAILURE: Final = (
    "VCP answers failed the output-delivery check: a VCP cheated or is broken; no value returned"
)
MASK_FAILURE: Final = (
    "VCP answers failed the input-mask check (a·b ≠ c): a VCP cheated or is broken; nothing was sent"
)
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_ODO_FIELDS: Final = ("y", "rho", "v", "w", "u")
_TRIPLE_FIELDS: Final = ("a", "b", "c")
_VECTORISE: Final = 512  # values from which encoding and decoding run in numpy
_PARALLEL: Final = 1 << 16  # elements from which a delivery is checked in two threads


# ---------------------------------------------------------------- encoding


def encode_values(field_: PrimeField, values: Iterable[int | float], encoding: str, fraction_bits: int) -> FieldArray:
    """Values as field elements per ``encoding``.

    Raises:
        FieldError: a value does not fit the encoding (its position is named;
            the value itself is not, as it may be secret).
    """
    items = values if isinstance(values, list) else list(values)
    if not items:
        raise FieldError("a secret needs at least one value")
    if encoding == "int64":
        if len(items) >= _VECTORISE and set(map(type, items)) == {int}:
            # Plain ints only: numpy converts them in C and refuses any beyond int64.
            try:
                return field_.from_signed(np.array(items, dtype=np.int64), 64)
            except OverflowError:
                pass  # the slow path below names the offending value
        bad = next((i for i, v in enumerate(items) if isinstance(v, bool) or not isinstance(v, int)), None)
        if bad is not None:
            raise FieldError(f"value {bad} is not an integer (use encoding 'fixed' for reals)")
        return field_.from_signed(items, 64)  # type: ignore[arg-type]
    if encoding == "field":
        bad = next(
            (i for i, v in enumerate(items) if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < field_.p),
            None,
        )
        if bad is not None:
            raise FieldError(f"value {bad} is not a field element in [0, p)")
        return field_.from_ints(items)  # type: ignore[arg-type]
    if encoding == "fixed":
        if not 0 <= fraction_bits <= 63:
            raise FieldError(f"fraction_bits must be in 0..63, got {fraction_bits}")
        scaled = []
        for i, v in enumerate(items):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise FieldError(f"value {i} is not a finite number")
            s = round(v * (1 << fraction_bits)) if isinstance(v, float) else v << fraction_bits
            if not _INT64_MIN <= s <= _INT64_MAX:
                raise FieldError(f"value {i} times 2^{fraction_bits} does not fit in a signed 64-bit integer")
            scaled.append(s)
        return field_.from_signed(scaled, 64)
    raise FieldError(f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")


def decode_values(elements: FieldArray, encoding: str, fraction_bits: int) -> list[int] | list[float]:
    """Field elements back to the values they encode.

    Raises:
        FieldError: an element is outside the encoding's range (e.g. a program
            result that overflowed 64 bits); fetch such secrets as ``field``.
    """
    if encoding == "field":
        return elements.to_ints()
    if encoding == "int64":
        return elements.to_signed(64)
    if encoding == "fixed":
        scale = float(1 << fraction_bits)
        if len(elements) >= _VECTORISE:
            # int64 -> float64 rounds as float(int) does, then the same IEEE division.
            return (elements.to_int64(64) / scale).tolist()  # type: ignore[no-any-return]
        return [v / scale for v in elements.to_signed(64)]
    raise FieldError(f"unknown encoding {encoding!r} (this client is older than the VC?)")


# ---------------------------------------------------------------- verification


def _sum_field(
    field_: PrimeField, answers: Sequence[Mapping[str, Any]], name: str, n: int, failure: str = DELIVERY_FAILURE
) -> FieldArray:
    total: FieldArray | None = None
    for party, answer in enumerate(answers):
        if not isinstance(answer, Mapping):
            raise IntegrityError(f"VCP {party} sent a malformed answer; {failure}")
        data = answer.get(name)
        if not isinstance(data, bytes | memoryview) or len(data) != 16 * n:
            raise IntegrityError(f"VCP {party} sent a malformed '{name}' in its answer; {failure}")
        try:
            shares = field_.from_bytes(data)
        except FieldError:
            raise IntegrityError(f"VCP {party} sent non-field data in its answer; {failure}") from None
        total = shares if total is None else total + shares
    assert total is not None
    return total


def verify_delivery(field_: PrimeField, answers: Sequence[Mapping[str, Any]], n: int) -> FieldArray:
    """Sum every VCP's ODO shares and return y iff w = y·ρ and u = v·ρ everywhere.

    Raises:
        IntegrityError: a malformed answer or a failed check.
    """
    if not answers:
        raise IntegrityError(DELIVERY_FAILURE)
    y, rho, v, w, u = (_sum_field(field_, answers, name, n) for name in _ODO_FIELDS)
    if not (w - y * rho).all_zero() or not (u - v * rho).all_zero():
        raise IntegrityError(DELIVERY_FAILURE)
    if rho.has_zero():  # ρ = 0 would make the check vacuous (chance 1/p per element when honest)
        raise IntegrityError(DELIVERY_FAILURE)
    return y


def verify_masks(field_: PrimeField, answers: Sequence[Mapping[str, Any]], n: int) -> FieldArray:
    """Sum every VCP's triple shares and return the masks a iff a·b = c everywhere.

    A VCP that shifted its share of a by δ must have shifted c by δ·b
    without knowing b (see :mod:`vcpd.services.secrets.upload`).

    Raises:
        IntegrityError: a malformed answer or a failed check.
    """
    if not answers:
        raise IntegrityError(MASK_FAILURE)
    a, b, c = (_sum_field(field_, answers, name, n, MASK_FAILURE) for name in _TRIPLE_FIELDS)
    if not (a * b - c).all_zero():
        raise IntegrityError(MASK_FAILURE)
    if b.has_zero():  # b = 0 would let a shift of a pass (chance 1/p per element when honest)
        raise IntegrityError(MASK_FAILURE)
    return a


async def verify_in_threads(
    field_: PrimeField, answers: Sequence[Mapping[str, Any]], n: int, *, masks: bool
) -> FieldArray:
    """:func:`verify_masks` (``masks``) or :func:`verify_delivery` of a big answer, in two threads.

    The elements are independent, so each half is checked on its own; numpy
    releases the GIL, and while the client checks, the VCPs wait for it.
    """
    verify, names, failure = (
        (verify_masks, _TRIPLE_FIELDS, MASK_FAILURE) if masks else (verify_delivery, _ODO_FIELDS, DELIVERY_FAILURE)
    )
    if n < _PARALLEL or not answers:
        return verify(field_, answers, n)
    for party, answer in enumerate(answers):  # the checks verify makes, before slicing
        if not isinstance(answer, Mapping):
            raise IntegrityError(f"VCP {party} sent a malformed answer; {failure}")
        for name in names:
            data = answer.get(name)
            if not isinstance(data, bytes) or len(data) != 16 * n:
                raise IntegrityError(f"VCP {party} sent a malformed '{name}' in its answer; {failure}")
    half = n // 2
    halves: list[FieldArray | None] = [None, None]
    failures: list[BaseException] = []

    def check(index: int, start: int, stop: int) -> None:
        part = [{name: memoryview(a[name])[16 * start : 16 * stop] for name in names} for a in answers]
        try:
            halves[index] = verify(field_, part, stop - start)
        except IntegrityError as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, check, 0, 0, half)
        nursery.start_soon(trio.to_thread.run_sync, check, 1, half, n)
    if failures:
        raise failures[0]
    assert halves[0] is not None and halves[1] is not None
    return field_.concat([halves[0], halves[1]])
