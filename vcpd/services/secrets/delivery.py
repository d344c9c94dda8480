"""The output-delivery object (ODO): how VCPs hand shares to a client verifiably.

To give a client a stored secret y (downloads; uploads check their masks
with a triple instead, see :mod:`~vcpd.services.secrets.upload`) the VCPs
compute, per element k, with fresh independent masks ρ_k and v_k and two
Beaver multiplications with triples (a, b, c) and (a', b', c')
(mpc-notes §2.3, DDNNT15)::

    w_k = y_k · ρ_k        u_k = v_k · ρ_k

and each VCP sends its *value* shares of y', ρ, v, w, u, where y' is a fresh
sharing of y (below). The client sums them and accepts iff w = y·ρ and
u = v·ρ for every element: a VCP that shifts its reported share of y by δ
would have to shift its share of w by δ·ρ without knowing ρ.

That client check alone is not enough (mpc-notes §2.6): a VCP that shifts y
*and* the Beaver opening y − a consistently passes it. So every opening behind
w and u goes through the batched MAC check **before** this module returns
anything; since ⟨y⟩ − ⟨a⟩ is opened with y's own MAC shares, the check also
covers a stored share that was tampered with at rest.

Re-randomising comes with the Beaver round for free: ε = y − a is opened
anyway, so y' = ⟨a⟩ + ε (party 0 adds ε) is a sharing of y whose shares are
those of the fresh, never reused triple component a -- independent of the
stored shares and of how y was produced, which is what MP-SPDZ's
``reveal_to_clients`` gets from y + ⟨r⟩ − open(⟨r⟩) at the cost of one more
mask and one more opening per element. Soundness is unchanged: ε is the
opening the MAC check covers, and the client's check binds y' to w exactly
as it bound y.

Tuple cost per element (:data:`DOWNLOAD_TUPLES_PER_ELEMENT`): 2 masks (ρ, v)
and 2 triples. All four openings of an ODO (y − a, v − a', ρ − b, ρ − b')
travel in one flight, followed by the MAC check: one network round plus the
check's.

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

__all__ = ["DOWNLOAD_TUPLES_PER_ELEMENT", "DeliveryShares", "OnlineOps", "deliver"]

DOWNLOAD_TUPLES_PER_ELEMENT: Final[Mapping[str, int]] = MappingProxyType({"mask": 2, "triple": 2})
"""Per downloaded element: the masks ρ and v; 2 triples."""


class OnlineOps(Protocol):
    """The part of :class:`vcpd.protocol.online.OnlineParty` this module uses."""

    async def open_many(self, parts: Sequence[Shares]) -> list[FieldArray]:
        """Open vectors to all VCPs in one round (recorded for the next MAC check)."""
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
    """Compute and MAC-check the ODO of ``y``, re-randomised; return this VCP's value shares.

    Both products run as one Beaver round of length 2n: open (y, v) − a and
    (ρ, ρ) − b, then (w, u) = c + (ρ, ρ)·ε + a·δ, and y' = a + ε. Only value
    shares of w, u and y' are computed: they go to the client and nowhere
    else, so their MAC shares would never be used.

    Args:
        online: the session's online engine (its MAC check must cover every
            opening made through it in this call).
        y: this VCP's shares of the vector to deliver (n elements).
        masks: 2n fresh masks: ρ, then v.
        triple: (a, b, c), each 2n long.
        party: this VCP's index.

    Raises:
        MacCheckFailure: some opening was inconsistent; nothing is returned.
    """
    n = len(y)
    if len(masks) != 2 * n or len(triple) != 3 or any(len(t) != 2 * n for t in triple):
        raise VcpInternalError(f"ODO of {n} elements got {len(masks)} masks and a wrongly sized triple")
    rho, v = masks[0:n], masks[n : 2 * n]
    a, b, c = triple
    a1, a2, b1, b2 = a[0:n], a[n : 2 * n], b[0:n], b[n : 2 * n]
    to_open = Shares.concat_differences([(y, a1), (v, a2), (rho, b1), (rho, b2)])
    (opened,) = await online.open_many([to_open])
    # Nothing derived from the openings may leave before this passes.
    await online.mac_check()
    eps1, eps2, delta1, delta2 = (opened[k * n : (k + 1) * n] for k in range(4))
    rho_values = rho.values
    w = c.values[0:n] + rho_values * eps1 + a1.values * delta1
    u = c.values[n : 2 * n] + rho_values * eps2 + a2.values * delta2
    y_fresh = a1.values + eps1 if party == 0 else a1.values
    return DeliveryShares(y=y_fresh, rho=rho_values, v=v.values, w=w, u=u)
