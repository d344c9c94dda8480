"""SPDZ authenticated shares: one party's (value, MAC) shares of a vector.

A secret vector x is held as additive shares x = Σ_i x_i with MAC shares
Σ_i m_i = α·x, where α = Σ_i α_i is the global MAC key and party i knows only
α_i. Linear operations are local (mpc-notes §1.2): add and subtract shares,
multiply by public scalars, and add a public constant with
:meth:`Shares.add_public`. The byte layout is MP-SPDZ's and Carbyne Stack's:
per element the 16-byte value share followed by the 16-byte MAC share.

The module-level helpers (:func:`share_vector`, :func:`reconstruct`,
:func:`check_macs`) see every party's shares at once: they are for the trusted
dealer and for tests, never for a party's online code.

This module must not import trio or any vcpd module except ``vcpd.errors``
and :mod:`vcpd.math`; it does no I/O beyond OS randomness.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import SupportsIndex, final

import numpy as np

from vcpd.errors import FieldError

from .array import SMALL_THRESHOLD, FieldArray, Index
from .field import PrimeField

__all__ = ["Shares", "check_macs", "reconstruct", "share_vector"]


@final
class Shares:
    """One party's authenticated shares of a vector: value shares and MAC shares.

    Immutable; ``values`` and ``macs`` have the same field and length.
    """

    __slots__ = ("_macs", "_values")
    __array_ufunc__ = None  # numpy scalars defer to our reflected operators

    def __init__(self, values: FieldArray, macs: FieldArray) -> None:
        if values.field != macs.field:
            raise FieldError("value and MAC shares belong to different fields")
        if len(values) != len(macs):
            raise FieldError(f"{len(values)} value shares but {len(macs)} MAC shares")
        self._values = values
        self._macs = macs

    @property
    def values(self) -> FieldArray:
        """This party's additive shares of the values."""
        return self._values

    @property
    def macs(self) -> FieldArray:
        """This party's additive shares of α·values."""
        return self._macs

    @property
    def field(self) -> PrimeField:
        """The field of both components."""
        return self._values.field

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<Shares n={len(self)} p={self.field.p:#x}>"

    def equals(self, other: Shares) -> bool:
        """True iff both components are equal (whole-array comparison)."""
        return isinstance(other, Shares) and self._values.equals(other._values) and self._macs.equals(other._macs)

    # ------------------------------------------------------------ linear ops

    def __add__(self, other: Shares) -> Shares:
        if not isinstance(other, Shares):
            return NotImplemented
        return Shares(self._values + other._values, self._macs + other._macs)

    def __sub__(self, other: Shares) -> Shares:
        if not isinstance(other, Shares):
            return NotImplemented
        return Shares(self._values - other._values, self._macs - other._macs)

    def __neg__(self) -> Shares:
        return Shares(-self._values, -self._macs)

    def __mul__(self, scalar: FieldArray | SupportsIndex) -> Shares:
        """Multiply by public scalar(s): both components scale, so the MAC relation holds."""
        if not isinstance(scalar, FieldArray):
            try:
                scalar = operator.index(scalar)
            except TypeError:
                return NotImplemented
        return Shares(self._values * scalar, self._macs * scalar)

    __rmul__ = __mul__

    def plus_products(self, x1: Shares, e1: FieldArray, x2: Shares, e2: FieldArray) -> Shares:
        """``self + x1·e1 + x2·e2`` for public vectors e1, e2, each component
        reduced once (``FieldArray.mul_add2``): a Beaver product's finish."""
        return Shares(
            FieldArray.mul_add2(self._values, x1._values, e1, x2._values, e2),
            FieldArray.mul_add2(self._macs, x1._macs, e1, x2._macs, e2),
        )

    def add_public(self, c: FieldArray | int, party: int, alpha_share: int) -> Shares:
        """Add the public constant(s) c to the shared vector.

        Only party 0 adds c to its value share, so the values still sum to
        x + c; every party adds c·α_i to its MAC share, so the MACs sum to
        α·(x + c).

        Args:
            c: one public constant or a public vector of this length.
            party: this party's index (0-based).
            alpha_share: this party's share α_i of the MAC key.
        """
        values = self._values + c if party == 0 else self._values
        return Shares(values, self._macs + c * alpha_share)

    # ------------------------------------------------------------ layout

    def __getitem__(self, key: Index) -> Shares:
        """The same selection of both components (see ``FieldArray.__getitem__``)."""
        return Shares(self._values[key], self._macs[key])

    @classmethod
    def concat(cls, parts: Sequence[Shares]) -> Shares:
        """Join non-empty ``parts`` end to end."""
        if not parts:
            raise ValueError("Shares.concat needs at least one part")
        return Shares(
            FieldArray.concat([s._values for s in parts]),
            FieldArray.concat([s._macs for s in parts]),
        )

    @classmethod
    def concat_differences(cls, pairs: Sequence[tuple[Shares, Shares]]) -> Shares:
        """``concat([x − y for x, y in pairs])`` without temporaries (see
        :meth:`FieldArray.concat_differences`)."""
        return Shares(
            FieldArray.concat_differences([(x._values, y._values) for x, y in pairs]),
            FieldArray.concat_differences([(x._macs, y._macs) for x, y in pairs]),
        )

    def to_bytes(self) -> bytes:
        """32 bytes per element: value share ‖ MAC share, each 16-byte LE Montgomery."""
        n = len(self)
        if n < SMALL_THRESHOLD:
            interleaved = np.empty((n, 32), np.uint8)
            interleaved[:, :16] = np.frombuffer(self._values.to_bytes(), np.uint8).reshape(n, 16)
            interleaved[:, 16:] = np.frombuffer(self._macs.to_bytes(), np.uint8).reshape(n, 16)
            return interleaved.tobytes()
        words = np.empty((n, 4), "<u8")  # per element: value lo, hi, MAC lo, hi
        words[:, 0:2] = self._values.limbs().T
        words[:, 2:4] = self._macs.limbs().T
        return words.tobytes()

    @classmethod
    def from_bytes(cls, field: PrimeField, b: bytes) -> Shares:
        """Parse the 32-bytes-per-element layout of :meth:`to_bytes`.

        Raises:
            FieldError: the length is not a multiple of 32, or a word is ≥ p.
        """
        if len(b) % 32:
            raise FieldError(f"share data must be a multiple of 32 bytes, got {len(b)}")
        n = len(b) // 32
        if n < SMALL_THRESHOLD:
            pairs = np.frombuffer(b, np.uint8).reshape(-1, 32)
            return cls(field.from_bytes(pairs[:, :16].tobytes()), field.from_bytes(pairs[:, 16:].tobytes()))
        words = np.frombuffer(b, "<u8").reshape(n, 4)
        limbs = np.empty((2, 2, n), np.uint64)  # one strided copy: (value, MAC) x (lo, hi) rows
        limbs[0] = words[:, 0:2].T
        limbs[1] = words[:, 2:4].T
        return cls(field.from_limbs(limbs[0]), field.from_limbs(limbs[1]))


# ---------------------------------------------------------------- dealer/test helpers


def share_vector(field: PrimeField, x: FieldArray, alpha: int, n_parties: int) -> list[Shares]:
    """Split x into fresh authenticated shares for n_parties parties.

    Values and MACs are split independently with CSPRNG randomness: parties
    0..n-2 get uniform shares and the last party the difference.
    """
    if n_parties < 1:
        raise ValueError(f"need at least one party, got {n_parties}")
    if x.field != field:
        raise FieldError("x belongs to another field")
    n = len(x)
    value_shares = [field.random(n) for _ in range(n_parties - 1)]
    mac_shares = [field.random(n) for _ in range(n_parties - 1)]
    mac = x * alpha
    value_shares.append(x - _sum(value_shares) if value_shares else x)
    mac_shares.append(mac - _sum(mac_shares) if mac_shares else mac)
    return [Shares(v, m) for v, m in zip(value_shares, mac_shares)]


def _sum(arrays: Sequence[FieldArray]) -> FieldArray:
    total = arrays[0]
    for a in arrays[1:]:
        total = total + a
    return total


def reconstruct(shares: Sequence[Shares]) -> FieldArray:
    """Σ of all parties' value shares: the shared vector (MACs unchecked)."""
    if not shares:
        raise ValueError("reconstruct needs the shares of at least one party")
    return _sum([s.values for s in shares])


def check_macs(shares: Sequence[Shares], alpha_shares: Sequence[int]) -> bool:
    """True iff Σ m_i = (Σ α_i)·(Σ x_i) for every element."""
    if not shares or len(shares) != len(alpha_shares):
        raise ValueError(f"{len(shares)} parties' shares but {len(alpha_shares)} MAC key shares")
    alpha = sum(alpha_shares)
    return _sum([s.macs for s in shares]).equals(reconstruct(shares) * alpha)
