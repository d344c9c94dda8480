"""Pairwise products a_i·b_j by Gilboa's method over KOS random OTs.

For an ordered pair (P_i with a vector a, P_j with b), MASCOT (Keller, Orsini,
Scholl, CCS 2016, Fig. 9 "Multiply") decomposes every a_e into its bits
a_e = Σ_l 2^l·a_{e,l} and runs one OT per bit with P_i choosing:

1. the OT extension (:mod:`.otext`, IKNP + KOS check) gives P_j, for OT (e, l),
   s⁰ = H(q) and s¹ = H(q ⊕ Δ), and P_i the one it chose, s^{a_{e,l}};
2. P_j sends d = s⁰ − s¹ + b_e;
3. P_i computes q' = s^{a_{e,l}} + a_{e,l}·d = s⁰ + a_{e,l}·b_e;
4. shares of a_e·b_e: P_i holds Σ_l 2^l·q', P_j holds −Σ_l 2^l·s⁰.

A corrupt P_j may send inconsistent d (different b in different OTs). That
does not break correctness checks later (the sacrifice catches a wrong
product) but it can leak a few bits of a through selective failure; this is
why MASCOT combines τ = 3 such products with random coefficients
(:mod:`.triples`), which leaves a uniform in any case.

OT (e, l) is row j = l·E + e of the extension, then κ padding rows; every
party runs both roles with every peer in the same four rounds:

======  =========================================  ===============================
round   chooser P_i → P_j                          P_j → P_i
======  =========================================  ===============================
iknp    U columns (κ·m bits) ‖ nonce_i
chi                                                χ ‖ nonce_j
xt      x ‖ t (KOS check answer)
d                                                  d (one element per OT) [+ extra]
======  =========================================  ===============================

P_j checks the KOS equation before sending any d: a cheating chooser is
caught ("KOS correlation check failed with VCP i") before it gets anything.

This module must not import vcpd.net, vcpd.testing, services, api, node or
daemon; from vcpd it uses only errors, math and vcpd.protocol. Secrets (a, b,
Δ, seeds, OT outputs) never appear in logs or exceptions.
"""

from __future__ import annotations

import hmac
import os
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from vcpd.errors import SessionAborted
from vcpd.math import PrimeField
from vcpd.math._limbs import Limbs, int_limbs

from ..transport import Session
from ._common import KAPPA, U64, bit_masks, derive, deviated, field_bytes, field_limbs, gadget_sum, kernel_of, pairwise, per_peer
from .otext import (
    PAD_OTS,
    RowHash,
    expand_receiver,
    expand_sender,
    from_words,
    gf_mul,
    in_subfield,
    poly_eval,
    poly_eval_bits,
    row_hash,
    to_words,
)
from .setup import Link, check_link

__all__ = ["KOS_FAILURE", "GilboaChooser", "GilboaSender", "gilboa_products", "value_bits"]

KOS_FAILURE: Final = "KOS correlation check failed"
NONCE_BYTES: Final = 32


def value_bits(field: PrimeField, reps: Limbs) -> npt.NDArray[np.uint8]:
    """The 128 bits of every element's *value* as a (κ, E) 0/1 matrix (row l = bit l)."""
    plain = np.empty_like(reps)
    kernel_of(field).mul(reps, int_limbs(1), plain)  # x·R·R^-1 = x
    octets = np.ascontiguousarray(plain.T).view(np.uint8).reshape(-1, 16)
    return np.ascontiguousarray(np.unpackbits(octets, axis=1, bitorder="little").T)


def _hash_key(session_id: str, label: str, sender: int, chooser: int, chooser_nonce: bytes, sender_nonce: bytes) -> bytes:
    return derive(b"rot", session_id, label, sender, chooser, chooser_nonce, sender_nonce)


class GilboaChooser:
    """P_i's side of one link: chooses with the bits of its a (IKNP receiver)."""

    def __init__(self, field: PrimeField, link: Link, a_reps: Limbs, *, session_id: str, label: str, me: int, hasher: RowHash) -> None:
        self._field = field
        self._link = link
        self._session_id = session_id
        self._label = label
        self._me = me
        self._hasher = hasher
        self._elements = a_reps.shape[1]
        bits = value_bits(field, a_reps)  # (κ, E): OT j = l·E + e
        self._bits = bits.reshape(-1)
        self._choices = np.packbits(self._bits, bitorder="little").tobytes() + os.urandom(PAD_OTS // 8)
        self._nonce = os.urandom(NONCE_BYTES)
        self._t_rows: npt.NDArray[np.uint64] | None = None
        self._s: Limbs | None = None

    def first_message(self) -> bytes:
        """Round ``iknp``: U columns and this side's nonce."""
        u_cols, self._t_rows = expand_receiver(self._link.ext_send, self._choices, self._nonce)
        return u_cols.tobytes() + self._nonce + self._link.link_id

    def answer(self, message: object) -> bytes:
        """Round ``xt``: check χ, answer (x, t), and hash own outputs."""
        peer = self._link.peer
        if not isinstance(message, bytes) or len(message) != 16 + NONCE_BYTES:
            raise deviated(self._session_id, peer, f"malformed KOS challenge at {self._label!r}")
        chi = from_words(message[:16])
        if in_subfield(chi):
            # Such a χ would make x reveal linear information on the choice bits.
            raise deviated(self._session_id, peer, f"KOS challenge in a proper subfield at {self._label!r}")
        assert self._t_rows is not None
        x = poly_eval_bits(self._choices, chi)
        t = poly_eval(self._t_rows, chi)
        key = _hash_key(self._session_id, self._label, peer, self._me, self._nonce, message[16:])
        self._s = row_hash(self._hasher, self._field, self._t_rows[: KAPPA * self._elements], key)
        self._t_rows = None
        return to_words(x) + to_words(t)

    def finish(self, message: object) -> Limbs:
        """After round ``d``: this side's share Σ_l 2^l·(s + a_bit·d) of a·b, per element."""
        n = KAPPA * self._elements
        d = field_limbs(self._field, message, n)
        if d is None:
            raise deviated(self._session_id, self._link.peer, f"malformed Gilboa correction at {self._label!r}")
        assert self._s is not None
        d &= bit_masks(self._bits)  # branch-free: d where the bit is 1, else 0
        q = np.empty_like(d)
        kernel_of(self._field).add(self._s, d, q)
        self._s = None
        return gadget_sum(self._field, q.reshape(2, KAPPA, self._elements))


class GilboaSender:
    """P_j's side of one link: IKNP sender with Δ, inputs b per element."""

    def __init__(self, field: PrimeField, link: Link, b_reps: Limbs, *, session_id: str, label: str, me: int, hasher: RowHash) -> None:
        self._field = field
        self._link = link
        self._session_id = session_id
        self._label = label
        self._me = me
        self._hasher = hasher
        self._b = b_reps
        self._elements = b_reps.shape[1]
        self._q_rows: npt.NDArray[np.uint64] | None = None
        self._chi = 0
        self._nonce = os.urandom(NONCE_BYTES)
        self._chooser_nonce = b""
        self.output: Limbs | None = None

    def challenge(self, message: object) -> bytes:
        """Round ``chi``: absorb U, pick χ (outside every proper subfield)."""
        n = KAPPA * (self._elements + 1)
        size = KAPPA * n // 8
        if not isinstance(message, bytes) or len(message) != size + NONCE_BYTES + len(self._link.link_id):
            if isinstance(message, bytes) and len(message) > size + NONCE_BYTES:
                check_link(self._session_id, self._link, message[size + NONCE_BYTES :])
            raise deviated(self._session_id, self._link.peer, f"malformed OT extension message at {self._label!r}")
        check_link(self._session_id, self._link, message[size + NONCE_BYTES :])
        u_cols = np.frombuffer(message, np.uint8, count=size).reshape(KAPPA, n // 8)
        self._chooser_nonce = message[size : size + NONCE_BYTES]
        self._q_rows = expand_sender(self._link.ext_recv, self._link.delta, u_cols, self._chooser_nonce)
        while True:
            self._chi = int.from_bytes(os.urandom(16), "little")
            if not in_subfield(self._chi):
                break
        return to_words(self._chi) + self._nonce

    def correct(self, message: object) -> bytes:
        """Round ``d``: verify the KOS answer, then d = s⁰ − s¹ + b per OT.

        Raises:
            SessionAborted: "KOS correlation check failed with VCP i" — the
                chooser's columns were inconsistent (or its answer wrong).
        """
        peer = self._link.peer
        if not isinstance(message, bytes) or len(message) != 32:
            raise deviated(self._session_id, peer, f"malformed KOS answer at {self._label!r}")
        assert self._q_rows is not None
        x, t = from_words(message[:16]), from_words(message[16:])
        expected = to_words(poly_eval(self._q_rows, self._chi))
        delta = from_words(self._link.delta)
        if not hmac.compare_digest(expected, to_words(t ^ gf_mul(x, delta))):
            raise SessionAborted(
                self._session_id,
                f"{KOS_FAILURE} with VCP {peer} at {self._label!r}: its OT extension columns are inconsistent; "
                "this link's setup must be redone",
            )
        n = KAPPA * self._elements
        rows = self._q_rows[:n]
        self._q_rows = None
        key = _hash_key(self._session_id, self._label, self._me, peer, self._chooser_nonce, self._nonce)
        s0 = row_hash(self._hasher, self._field, rows, key)
        rows ^= np.frombuffer(self._link.delta, U64)[None, :]
        s1 = row_hash(self._hasher, self._field, rows, key)
        kernel = kernel_of(self._field)
        d = np.empty_like(s0)
        kernel.sub(s0, s1, d)
        kernel.add(d, np.tile(self._b, (1, KAPPA)), s1)
        share = gadget_sum(self._field, s0.reshape(2, KAPPA, self._elements))
        out = np.empty_like(share)
        kernel.sub(int_limbs(0), share, out)
        self.output = out
        return field_bytes(s1)


async def gilboa_products(
    session: Session,
    field: PrimeField,
    links: dict[int, Link],
    a_reps: Limbs,
    b_reps: Limbs,
    *,
    label: str,
    hasher: RowHash,
    threads: bool = False,
    extra: Any = None,
) -> tuple[Limbs, dict[int, Any]]:
    """This party's shares of Σ_{i≠j} a_i·b_j, element-wise, over every link.

    Args:
        a_reps: this party's a (E elements, Montgomery limbs): it chooses with their bits.
        b_reps: this party's b for the same E positions (it is the sender toward every peer).
        extra: a payload attached to the last round (``d``) toward every peer;
            what the peers attached is returned.

    Returns:
        (shares, extras): shares of the cross terms (add a_i·b_i locally to
        get shares of a·b), and the peers' extra payloads.
    """
    sid = session.id
    me = session.party
    choosers = {p: GilboaChooser(field, link, a_reps, session_id=sid, label=label, me=me, hasher=hasher) for p, link in links.items()}
    senders = {p: GilboaSender(field, link, b_reps, session_id=sid, label=label, me=me, hasher=hasher) for p, link in links.items()}
    peers = sorted(links)
    out = await per_peer(peers, lambda p: choosers[p].first_message(), threads=threads)
    got = await pairwise(session, f"{label}.iknp", out)
    out = await per_peer(peers, lambda p: senders[p].challenge(got[p]), threads=threads)
    got = await pairwise(session, f"{label}.chi", out)
    out = await per_peer(peers, lambda p: choosers[p].answer(got[p]), threads=threads)
    got = await pairwise(session, f"{label}.xt", out)
    out = await per_peer(peers, lambda p: [senders[p].correct(got[p]), extra], threads=threads)
    got = await pairwise(session, f"{label}.d", out)

    def finish(p: int) -> Limbs:
        message = got[p]
        if not isinstance(message, list) or len(message) != 2:
            raise deviated(sid, p, f"malformed Gilboa message at {label!r}")
        return choosers[p].finish(message[0])

    mine = await per_peer(peers, finish, threads=threads)
    kernel = kernel_of(field)
    total = np.zeros_like(a_reps)
    extras: dict[int, Any] = {}
    for p in peers:
        theirs = senders[p].output
        assert theirs is not None
        step = np.empty_like(total)
        kernel.add(total, mine[p], step)
        kernel.add(step, theirs, total)
        extras[p] = got[p][1]
    return total, extras
