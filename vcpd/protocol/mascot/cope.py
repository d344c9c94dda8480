"""Authentication of shares under the MAC key: COPEe and the MAC-generation check.

COPEe (Keller, Orsini, Scholl, MASCOT, CCS 2016, Fig. 6 "Correlated OT with
errors"). For an ordered pair (P_i with α_i, P_j with a vector x): from the
setup, P_j holds κ seed pairs (k_l^0, k_l^1), P_i holds k_l^{α_{i,l}} where
α_i = Σ_l 2^l·α_{i,l}. Per job (fresh nonce from P_j):

1. t_l^b = PRG(k_l^b, nonce) ∈ F^n (uniform elements, :func:`._common.prg_field`);
2. P_j sends u_l = t_l^0 − t_l^1 + x for every l < κ;
3. P_i computes q_l = t_l^{α_{i,l}} + α_{i,l}·u_l = t_l^0 + α_{i,l}·x;
4. P_i's share: Σ_l 2^l·q_l = Σ_l 2^l·t_l^0 + α_i·x; P_j's share: −Σ_l 2^l·t_l^0.

Summing over pairs and adding α_i·x_i locally gives every party a share of
α·x for x = Σ_i x_i: that is :func:`authenticate` (MASCOT Fig. 7 Π_Auth).
A corrupt P_j can put a different x into each u_l ("errors"); then P_i's MAC
share is off by Σ_l 2^l·α_{i,l}·e_l. The **MAC-generation check** (Π_Auth's
check) catches that: after the MACs are fixed, coin-toss coefficients r_k,
open y = Σ_k r_k·x_k + x_0 (x_0 a random authenticated mask so y reveals
nothing) and run the MAC check on y; it passes with probability ≤ 2/p
unless every error is zero. A failure can still reveal one bit of α_i per
job (selective failure), which is why a failed check ends the setup.

Message per link and job: κ·n field elements plus a 32-byte nonce.

This module must not import vcpd.net, vcpd.testing, services, api, node or
daemon; from vcpd it uses only errors, math and vcpd.protocol. α_i, its bits
and the seeds never leave the party or reach a log or exception.
"""

from __future__ import annotations

import os
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from vcpd.math import FieldArray, PrimeField
from vcpd.math._limbs import Limbs, int_limbs

from ..transport import Session
from ._common import KAPPA, bit_masks, derive, deviated, field_bytes, field_limbs, gadget_sum, kernel_of, pairwise, per_peer, prg_field
from .setup import Link, check_link

__all__ = ["MAC_GENERATION_FAILURE", "authenticate", "cope_receive", "cope_send", "mac_generation_combination"]

MAC_GENERATION_FAILURE: Final = "MAC-generation check failed"
NONCE_BYTES: Final = 32


def mac_generation_combination(field: PrimeField, values: FieldArray, macs: FieldArray, seed: bytes) -> tuple[int, int]:
    """The MAC-generation check's combination y = Σ_k r_k·x_k + x₀ (value share, MAC share).

    ``values``/``macs`` are this party's shares of everything authenticated,
    the mask x₀ last; r comes from ``seed``, tossed after the MACs were fixed
    (MASCOT Π_Auth, "MACCheck" step). The caller opens y and runs the MAC
    check on it with the returned MAC share.
    """
    count = len(values) - 1
    r = field.random_seeded(seed, count, label=b"vcpd.mascot.macgen")
    y = (r.dot(values[:count]) + values[count : count + 1].sum()) % field.p
    m = (r.dot(macs[:count]) + macs[count : count + 1].sum()) % field.p
    return y, m


def _keys(seeds: list[bytes], nonce: bytes, session_id: str, label: str) -> list[bytes]:
    return [derive(b"cope", seed, nonce, session_id, label) for seed in seeds]


def cope_send(field: PrimeField, link: Link, x: Limbs, *, session_id: str, label: str) -> tuple[bytes, Limbs]:
    """P_j's COPEe extend: (message with u_l for all l and the nonce, own share −Σ 2^l t_l^0)."""
    n = x.shape[1]
    nonce = os.urandom(NONCE_BYTES)
    t0 = prg_field(field, _keys([k0 for k0, _ in link.cope_send], nonce, session_id, label), n)
    t1 = prg_field(field, _keys([k1 for _, k1 in link.cope_send], nonce, session_id, label), n)
    kernel = kernel_of(field)
    flat0, flat1 = t0.reshape(2, -1), t1.reshape(2, -1)
    u = np.empty_like(flat0)
    kernel.sub(flat0, flat1, u)
    kernel.add(u, np.tile(x, (1, KAPPA)), flat1)  # flat1 now holds u
    share = gadget_sum(field, t0)
    out = np.empty_like(share)
    kernel.sub(int_limbs(0), share, out)
    return field_bytes(flat1) + nonce + link.link_id, out


def cope_receive(
    field: PrimeField, link: Link, alpha_bits: npt.NDArray[np.uint8], message: object, n: int, *, session_id: str, label: str
) -> Limbs | None:
    """P_i's COPEe extend: own share Σ_l 2^l·(t_l + α_l·u_l), or None if malformed.

    Raises:
        SessionAborted: the peer runs with another setup for this link.
    """
    size = 16 * KAPPA * n
    if not isinstance(message, bytes) or len(message) < size + NONCE_BYTES:
        return None
    check_link(session_id, link, message[size + NONCE_BYTES :])
    nonce = message[size : size + NONCE_BYTES]
    u = field_limbs(field, message[:size], KAPPA * n)
    if u is None:
        return None
    t = prg_field(field, _keys(link.cope_recv, nonce, session_id, label), n)
    masked = u.reshape(2, KAPPA, n)
    masked &= bit_masks(alpha_bits)[None, :, None]  # branch-free in α's bits
    q = np.empty_like(u)
    kernel_of(field).add(t.reshape(2, -1), u, q)
    return gadget_sum(field, q.reshape(2, KAPPA, n))


async def authenticate(
    session: Session,
    field: PrimeField,
    links: dict[int, Link],
    alpha: int,
    alpha_bits: npt.NDArray[np.uint8],
    x: Limbs,
    *,
    label: str,
    threads: bool = False,
    extra: Any = None,
) -> tuple[Limbs, dict[int, Any]]:
    """MAC shares of the shared vector whose share here is ``x`` (MASCOT Π_Auth, one round).

    Every party calls it with its shares of the same-length vector. The
    result is *unchecked*: run the MAC-generation check on it (see
    :mod:`.triples`) before anything is used. ``extra`` rides along to every
    peer; the peers' extras are returned.
    """
    sid = session.id
    n = x.shape[1]
    kernel = kernel_of(field)
    macs = np.empty_like(x)
    kernel.mul(x, int_limbs(field.mont(alpha)), macs)  # α_i·x_i
    peers = sorted(links)
    me = session.party
    sent = await per_peer(peers, lambda p: cope_send(field, links[p], x, session_id=sid, label=f"{label}.{me}"), threads=threads)
    got = await pairwise(session, f"{label}.cope", {p: [sent[p][0], extra] for p in peers})

    def receive(p: int) -> Limbs:
        message = got[p]
        share = None
        if isinstance(message, list) and len(message) == 2:
            share = cope_receive(field, links[p], alpha_bits, message[0], n, session_id=sid, label=f"{label}.{p}")
        if share is None:
            raise deviated(sid, p, f"malformed COPE message at {label!r}")
        return share

    received = await per_peer(peers, receive, threads=threads)
    extras: dict[int, Any] = {}
    for p in peers:
        for share in (sent[p][1], received[p]):
            step = np.empty_like(macs)
            kernel.add(macs, share, step)
            macs = step
        extras[p] = got[p][1]
    return macs, extras
