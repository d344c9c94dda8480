"""The output-delivery object (ODO): how VCPs hand shares to a client verifiably.

To give a client a stored secret y (downloads; uploads check their masks
with a triple instead, see :mod:`~vcpd.services.secrets.upload`) the VCPs
compute, per element k, with fresh independent
masks ρ_k and v_k and two Beaver multiplications (mpc-notes §2.3, DDNNT15)::

    w_k = y_k · ρ_k        u_k = v_k · ρ_k

and each VCP sends its *value* shares of y, ρ, v, w, u. The client sums them
and accepts iff w = y·ρ and u = v·ρ for every element: a VCP that shifts its
reported share of y by δ would have to shift its share of w by δ·ρ without
knowing ρ.

That client check alone is not enough (mpc-notes §2.6): a VCP that shifts y
*and* the Beaver opening y − a consistently passes it. So every opening behind
w and u -- and the opening that re-randomises y -- goes through the batched
MAC check **before** this module returns anything; since ⟨y⟩ − ⟨a⟩ is opened
with y's own MAC shares, the check also covers a stored share that was
tampered with at rest.

y is first re-randomised, y' = y + ⟨r⟩ − open(⟨r⟩) with a fresh mask r
(MP-SPDZ's ``reveal_to_clients``), so the shares the client sees are fresh
and independent of how y was produced.

Tuple cost per element (:data:`DOWNLOAD_TUPLES_PER_ELEMENT`): 3 masks (the
re-randomising r, ρ, v) and 2 triples.
Every opening of an ODO -- the re-randomising one included -- travels in one
flight, followed by the MAC check: two network rounds plus the check's.

This module must not import the store or any vcpd module other than
:mod:`vcpd.errors`, :mod:`vcpd.math`, :mod:`vcpd.protocol` and
:mod:`vcpd.services.ports`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol

from vcpd.errors import VcpInternalError
from vcpd.math import FieldArray, Shares
from vcpd.protocol.online import DeferredOpening

__all__ = ["DOWNLOAD_TUPLES_PER_ELEMENT", "DeliveryShares", "OnlineOps", "deliver"]

DOWNLOAD_TUPLES_PER_ELEMENT: Final[Mapping[str, int]] = MappingProxyType({"mask": 3, "triple": 2})
"""Per downloaded element: the re-randomising mask, ρ and v; 2 triples."""


class OnlineOps(Protocol):
    """The part of :class:`vcpd.protocol.online.OnlineParty` this module uses."""

    def open_with_next(self, shares: Shares) -> DeferredOpening:
        """Queue an opening to travel with the next opening round."""
        ...

    async def mul(self, x: Shares, y: Shares, triple: Sequence[Shares]) -> Shares:
        """⟨x·y⟩ by one Beaver round with the triple (a, b, c)."""
        ...

    async def mac_check(self) -> None:
        """Batched MAC check of every opening so far; MacCheckFailure if it fails."""
        ...


@dataclass(frozen=True, slots=True)
class DeliveryShares:
    """This VCP's value shares of an ODO (no MAC shares: those never leave)."""

    y: FieldArray
    rho: FieldArray
    v: FieldArray
    w: FieldArray
    u: FieldArray

    def __repr__(self) -> str:
        return f"<DeliveryShares n={len(self.y)}>"

    def to_wire(self) -> dict[str, bytes]:
        """The API form: five byte strings of 16-byte LE Montgomery words."""
        return {
            "y": self.y.to_bytes(),
            "rho": self.rho.to_bytes(),
            "v": self.v.to_bytes(),
            "w": self.w.to_bytes(),
            "u": self.u.to_bytes(),
        }


async def deliver(
    online: OnlineOps,
    y: Shares,
    *,
    masks: Shares,
    triple: Sequence[Shares],
    party: int,
) -> DeliveryShares:
    """Compute and MAC-check the ODO of re-randomised ``y``; return this VCP's value shares.

    y is replaced by y' = y + r − R with R = open(r). The product is taken of
    y + r, whose Beaver opening does not need R, and corrected afterwards:
    y'·ρ = (y + r)·ρ − R·ρ. So the opening of r, the Beaver opening of
    u = v·ρ and that of (y + r)·ρ (through ``online.mul``) travel in one
    flight (``open.k``, ``open.k+1``, ``open.k+2``): one round instead of
    two, revealing the same values.

    Only value shares of u are computed by hand: it goes to the client and
    nowhere else, so its MAC shares would never be used.

    Args:
        online: the session's online engine (its MAC check must cover every
            opening made through it in this call).
        y: this VCP's shares of the vector to deliver (n elements).
        masks: 3n fresh masks: ρ, then v, then r.
        triple: (a, b, c), each 2n long.
        party: this VCP's index.

    Raises:
        MacCheckFailure: some opening was inconsistent; nothing is returned.
    """
    n = len(y)
    if len(masks) != 3 * n or len(triple) != 3 or any(len(t) != 2 * n for t in triple):
        raise VcpInternalError(f"ODO of {n} elements got {len(masks)} masks and a wrongly sized triple")
    rho, v, r = masks[0:n], masks[n : 2 * n], masks[2 * n : 3 * n]
    a, b, c = triple
    a1, a2, b1, b2 = a[0:n], a[n : 2 * n], b[0:n], b[n : 2 * n]
    opened_r = online.open_with_next(r)
    opened_vr = online.open_with_next(Shares.concat_differences([(v, a2), (rho, b2)]))
    y_plus_r = y + r
    # y'·ρ as a Beaver product of (y + r)·ρ through mul(), the other product
    # by hand (its MAC shares are never needed); one flight carries all three.
    w_plus = await online.mul(y_plus_r, rho, (a1, b1, c[0:n]))
    big_r = opened_r.value
    # Nothing derived from the openings above may leave before this passes.
    await online.mac_check()
    eps2, delta2 = opened_vr.value[0:n], opened_vr.value[n : 2 * n]
    y_values = y_plus_r.values - big_r if party == 0 else y_plus_r.values
    w = w_plus.values - rho.values * big_r
    u = c.values[n : 2 * n] + rho.values * eps2 + a2.values * delta2
    return DeliveryShares(y=y_values, rho=rho.values, v=v.values, w=w, u=u)
