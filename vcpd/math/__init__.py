"""Pure field arithmetic and SPDZ share types (no trio, no I/O).

Re-exports the public names of :mod:`vcpd.math.field`, :mod:`vcpd.math.array`
and :mod:`vcpd.math.shares`. This package may import only ``vcpd.errors`` from
vcpd, plus numpy, nacl and the standard library (never ``random``).
"""

from __future__ import annotations

from .array import SMALL_THRESHOLD as SMALL_THRESHOLD
from .array import FieldArray as FieldArray
from .field import DEFAULT_PRIME as DEFAULT_PRIME
from .field import PrimeField as PrimeField
from .shares import Shares as Shares
from .shares import check_macs as check_macs
from .shares import reconstruct as reconstruct
from .shares import share_vector as share_vector

__all__ = [
    "DEFAULT_PRIME",
    "SMALL_THRESHOLD",
    "FieldArray",
    "PrimeField",
    "Shares",
    "check_macs",
    "reconstruct",
    "share_vector",
]
