"""The output-delivery object (ODO): how VCPs hand shares to a client verifiably.

To give a client a shared vector y (a stored secret on download, fresh input
masks on upload) the VCPs compute, per element k, with fresh independent
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

On download y is first re-randomised, y' = y + ⟨r⟩ − open(⟨r⟩) with a fresh
mask r (MP-SPDZ's ``reveal_to_clients``), so the shares the client sees are
fresh and independent of how y was produced.

Tuple cost per element (:data:`UPLOAD_TUPLES_PER_ELEMENT`,
:data:`DOWNLOAD_TUPLES_PER_ELEMENT`): upload 3 masks (the input mask r, ρ, v)
and 2 triples; download 3 masks (the re-randomising r, ρ, v) and 2 triples.
Both multiplications run as one Beaver round of length 2n.

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

__all__ = [
    "DOWNLOAD_TUPLES_PER_ELEMENT",
    "UPLOAD_TUPLES_PER_ELEMENT",
    "DeliveryShares",
    "OnlineOps",
    "deliver",
    "tuples_for",
]

UPLOAD_TUPLES_PER_ELEMENT: Final[Mapping[str, int]] = MappingProxyType({"mask": 3, "triple": 2})
"""Per uploaded element: the input mask r, plus ρ and v for its ODO; 2 triples."""

DOWNLOAD_TUPLES_PER_ELEMENT: Final[Mapping[str, int]] = MappingProxyType({"mask": 3, "triple": 2})
"""Per downloaded element: the re-randomising mask, ρ and v; 2 triples."""


class OnlineOps(Protocol):
    """The part of :class:`vcpd.protocol.online.OnlineParty` this module uses."""

    async def open(self, shares: Shares) -> FieldArray:
        """Open a shared vector to all VCPs (recorded for the next MAC check)."""
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


def tuples_for(n: int, per_element: Mapping[str, int]) -> dict[str, int]:
    """The reservation counts for ``n`` elements."""
    return {kind: count * n for kind, count in per_element.items()}


async def deliver(
    online: OnlineOps,
    y: Shares,
    *,
    masks: Shares,
    triple: Sequence[Shares],
    party: int,
    alpha_share: int,
    rerandomise: bool,
) -> DeliveryShares:
    """Compute and MAC-check the ODO of ``y``; return this VCP's value shares.

    Args:
        online: the session's online engine (its MAC check must cover every
            opening made through it in this call).
        y: this VCP's shares of the vector to deliver (n elements).
        masks: fresh masks, ρ then v then (if re-randomising) r: 2n or 3n.
        triple: (a, b, c), each 2n long.
        party: this VCP's index; ``alpha_share`` its MAC key share.
        rerandomise: replace y by y + r − open(r) first (downloads).

    Raises:
        MacCheckFailure: some opening was inconsistent; nothing is returned.
    """
    n = len(y)
    needed = 3 * n if rerandomise else 2 * n
    if len(masks) != needed or len(triple) != 3 or any(len(t) != 2 * n for t in triple):
        raise VcpInternalError(f"ODO of {n} elements got {len(masks)} masks and a wrongly sized triple")
    rho, v = masks[0:n], masks[n : 2 * n]
    if rerandomise:
        r = masks[2 * n : 3 * n]
        opened = await online.open(r)
        y = (y + r).add_public(-opened, party, alpha_share)
    products = await online.mul(Shares.concat([y, v]), Shares.concat([rho, rho]), triple)
    # Nothing derived from the openings above may leave before this passes.
    await online.mac_check()
    w, u = products[0:n], products[n : 2 * n]
    return DeliveryShares(y=y.values, rho=rho.values, v=v.values, w=w.values, u=u.values)
