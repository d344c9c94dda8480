"""The output-delivery object (ODO): how VCPs hand shares to a client verifiably.

To give a client a stored secret y (downloads; uploads check their masks
with a triple instead, see :mod:`~vcpd.services.secrets.upload`) the VCPs
take, per element k, two fresh triples (a, b, c) and (a', b', c'), set
ρ_k = b_k and v_k = a'_k, and compute by Beaver multiplication
(mpc-notes §2.3, DDNNT15)::

    w_k = y_k · ρ_k        u_k = v_k · ρ_k

then each VCP sends its *value* shares of y', ρ, v, w, u, where y' is a fresh
sharing of y (below). The client sums them and accepts iff w = y·ρ and
u = v·ρ for every element: a VCP that shifts its reported share of y by δ
would have to shift its share of w by δ·ρ without knowing ρ, one that
shifts ρ by δ would have to shift u by δ·v without knowing v, and one that
shifts v would have to shift u by δ·ρ.

That client check alone is not enough (mpc-notes §2.6): a VCP that shifts y
*and* the Beaver opening y − a consistently passes it. So every opening behind
w and u goes through the batched MAC check **before** this module returns
anything; since ⟨y⟩ − ⟨a⟩ is opened with y's own MAC shares, the check also
covers a stored share that was tampered with at rest.

Where Amphora takes three separate masks per element (a re-randomiser, ρ
and v), the triples' own components serve, without changing what the
client receives or checks. ρ and v only have to be uniform, unknown to every
VCP and used nowhere else; b and a' are, and no VCP learns anything about
them: the only values opened are ε = y − a (masked by a) and δ = b − b'
(masked by b'), and the triples are never used again. Then

* w = y·b is the Beaver product of y and b with the triple (a, b, c):
  its second difference b − b is 0, so only ε is opened and
  w = c + ε·b;
* u = a'·b is the Beaver product of a' and b with the triple (a', b', c'):
  its first difference a' − a' is 0, so only δ is opened and
  u = c' + δ·a';
* y is re-randomised by the first product: y' = ⟨a⟩ + ε (party 0 adds ε) is
  a sharing of y whose shares are those of the fresh, never reused a --
  independent of the stored shares and of how y was produced, which
  MP-SPDZ's ``reveal_to_clients`` gets from y + ⟨r⟩ − open(⟨r⟩) at the cost
  of one more mask and opening. A shift of ε shifts y' and w together, and
  is what the MAC check catches.

Both products are still Beaver multiplications whose openings the MAC check
covers before release; a difference that is 0 by construction is not sent,
so there is nothing in it a VCP could shift.

Tuple cost per element (:data:`DOWNLOAD_TUPLES_PER_ELEMENT`): 2 triples, no
masks. The two openings of an ODO (y − a and b − b') travel in one flight,
followed by the MAC check: one network round plus the check's.

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

DOWNLOAD_TUPLES_PER_ELEMENT: Final[Mapping[str, int]] = MappingProxyType({"triple": 2})
"""Per downloaded element: 2 triples (the first one's b is ρ, the second one's a is v)."""


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
    triple: Sequence[Shares],
    party: int,
) -> DeliveryShares:
    """Compute and MAC-check the ODO of ``y``, re-randomised; return this VCP's value shares.

    Both products run as one Beaver round: open ε = y − a and δ = b − b',
    then w = c + ε·b, u = c' + δ·a', y' = a + ε, ρ = b and v = a'. Only value
    shares of w, u and y' are computed: they go to the client and nowhere
    else, so their MAC shares would never be used.

    Args:
        online: the session's online engine (its MAC check must cover every
            opening made through it in this call).
        y: this VCP's shares of the vector to deliver (n elements).
        triple: (a, b, c), each 2n long: the first n for w, the rest for u.
        party: this VCP's index.

    Raises:
        MacCheckFailure: some opening was inconsistent; nothing is returned.
    """
    n = len(y)
    if len(triple) != 3 or any(len(t) != 2 * n for t in triple):
        raise VcpInternalError(f"ODO of {n} elements got a wrongly sized triple")
    a, b, c = triple
    a1, a2, b1, b2 = a[0:n], a[n : 2 * n], b[0:n], b[n : 2 * n]
    to_open = Shares.concat_differences([(y, a1), (b1, b2)])
    (opened,) = await online.open_many([to_open])
    # Nothing derived from the openings may leave before this passes.
    await online.mac_check()
    eps, delta = opened[0:n], opened[n : 2 * n]
    rho, v, a1_values = b1.values, a2.values, a1.values
    w = c.values[0:n] + rho * eps
    u = c.values[n : 2 * n] + v * delta
    y_fresh = a1_values + eps if party == 0 else a1_values
    return DeliveryShares(y=y_fresh, rho=rho, v=v, w=w, u=u)
