"""Base oblivious transfers: Masny–Rindal endemic OT over edwards25519 (pynacl).

MASCOT needs, once per ordered pair of VCPs, κ = 128 random OTs for each of
two jobs (see :mod:`.setup`): the IKNP/KOS extension, with the extension
sender's random Δ as choice bits, and COPEe, with the bits of the receiver's
MAC key share α_i as choice bits. Both are 1-out-of-2 *random* OTs: the
sender learns two 32-byte seeds (k_0, k_1), the receiver learns k_c.

Protocol (Masny and Rindal, "Endemic Oblivious Transfer", CCS 2019, §5 with
the random-oracle POPF). G is the edwards25519 base point, H a hash onto the
prime-order subgroup (libsodium's Elligator ``crypto_core_ed25519_from_uniform``
of a BLAKE2b digest, domain-separated per link, direction and OT index):

1. sender: random scalar a, sends A = a·G (one A for the whole batch);
2. receiver with choice c: random scalar b, B = b·G; random group element
   r_{1-c} (``from_uniform`` of fresh bytes, so nobody knows its discrete
   log); r_c = B − H(r_{1-c}); sends (r_0, r_1);
3. sender: F_i = r_i + H(r_{1-i}), k_i = KDF(a·F_i, i, transcript);
   receiver: k_c = KDF(b·A, c, transcript), and b·A = a·B = a·F_c.

The two messages are independent, so all base OTs of a setup take **one
round**. The KDF hashes the whole transcript of that OT (A, r_0, r_1, index,
parties, session), which binds each key to its exchange. Points arriving from
a peer are checked with ``crypto_core_ed25519_is_valid_point`` (canonical,
on the curve, main subgroup, not of small order) before use.

Why not Chou–Orlandi "Simplest OT" (what MP-SPDZ uses): its UC proof was
found flawed (Genç, Iovino, Rial 2017; Hauck, Loss 2017): a malicious
receiver is not extractable and the sender's keys need transcript hashing to
be safe. Endemic OT is proven in the random-oracle model for exactly this use
(seeds of an OT extension), at the price of one hash-to-group per message.
*Endemic* means a corrupt party may choose its own outputs; honest parties'
outputs are uniform, which is all KOS and COPEe need.

Costs (measured on the reference 2-core VM): ~0.5 ms per OT for the sender
(two hash-to-group, two variable-base multiplications), ~0.3 ms for the
receiver; 256 OTs per direction and link ≈ 0.2 s per link, once.

This module must not import trio, vcpd.net, vcpd.testing, services, api,
node or daemon; from vcpd it uses only errors. No secret (scalar, choice bit,
key) is logged or put in an exception.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Final

from nacl.bindings import (
    crypto_core_ed25519_add,
    crypto_core_ed25519_from_uniform,
    crypto_core_ed25519_is_valid_point,
    crypto_core_ed25519_scalar_reduce,
    crypto_core_ed25519_sub,
    crypto_scalarmult_ed25519_base_noclamp,
    crypto_scalarmult_ed25519_noclamp,
)
from nacl.exceptions import RuntimeError as NaclRuntimeError

__all__ = [
    "POINT_BYTES",
    "SEED_BYTES",
    "BaseOtContext",
    "ReceiverSecret",
    "SenderSecret",
    "receiver_keys",
    "receiver_message",
    "sender_keys",
    "sender_message",
]

POINT_BYTES: Final = 32
SEED_BYTES: Final = 32
"""Length of every base-OT output seed."""

_PERSON_H2G: Final = b"vcpd.ot.h2g"
_PERSON_KDF: Final = b"vcpd.ot.kdf"


@dataclass(frozen=True, slots=True)
class BaseOtContext:
    """What binds a batch of base OTs to one link and direction.

    Attributes:
        session_id: the setup session.
        sender: party id of the OT sender.
        receiver: party id of the OT receiver.
    """

    session_id: str
    sender: int
    receiver: int

    def prefix(self, index: int) -> bytes:
        sid = self.session_id.encode()
        return b"".join(
            (
                len(sid).to_bytes(4, "little"),
                sid,
                self.sender.to_bytes(4, "little"),
                self.receiver.to_bytes(4, "little"),
                index.to_bytes(4, "little"),
            )
        )


@dataclass(frozen=True, slots=True)
class SenderSecret:
    """The sender's scalar a and its public A = a·G."""

    scalar: bytes
    public: bytes


@dataclass(frozen=True, slots=True)
class ReceiverSecret:
    """The receiver's scalars b, its choices and its message (kept until A arrives)."""

    scalars: tuple[bytes, ...]
    choices: tuple[int, ...]
    message: bytes


def _random_scalar() -> bytes:
    """A uniform scalar mod the group order ℓ (64 random bytes reduced: bias 2^-259)."""
    return crypto_core_ed25519_scalar_reduce(os.urandom(64))


def _hash_to_group(context: BaseOtContext, index: int, side: int, point: bytes) -> bytes:
    digest = hashlib.blake2b(
        context.prefix(index) + side.to_bytes(1, "little") + point, digest_size=32, person=_PERSON_H2G
    ).digest()
    return crypto_core_ed25519_from_uniform(digest)


def _kdf(context: BaseOtContext, index: int, choice: int, public: bytes, pair: bytes, shared: bytes) -> bytes:
    data = context.prefix(index) + choice.to_bytes(1, "little") + public + pair + shared
    return hashlib.blake2b(data, digest_size=SEED_BYTES, person=_PERSON_KDF).digest()


def sender_message() -> SenderSecret:
    """Step 1: a fresh scalar a and A = a·G (send A)."""
    scalar = _random_scalar()
    return SenderSecret(scalar, crypto_scalarmult_ed25519_base_noclamp(scalar))


def receiver_message(context: BaseOtContext, choices: list[int]) -> ReceiverSecret:
    """Step 2: the (r_0, r_1) pairs for every choice bit (send ``.message``).

    The pair is built the same way for both choices (one random point, one
    programmed point) and only their order depends on c.
    """
    scalars: list[bytes] = []
    parts: list[bytes] = []
    for index, choice in enumerate(choices):
        c = choice & 1
        b = _random_scalar()
        big_b = crypto_scalarmult_ed25519_base_noclamp(b)
        free = crypto_core_ed25519_from_uniform(os.urandom(32))  # r_{1-c}: unknown discrete log
        programmed = crypto_core_ed25519_sub(big_b, _hash_to_group(context, index, 1 - c, free))  # r_c
        pair = (programmed, free) if c == 0 else (free, programmed)
        scalars.append(b)
        parts.append(pair[0] + pair[1])
    return ReceiverSecret(tuple(scalars), tuple(c & 1 for c in choices), b"".join(parts))


def sender_keys(context: BaseOtContext, secret: SenderSecret, message: object, count: int) -> list[tuple[bytes, bytes]] | None:
    """Step 3 (sender): (k_0, k_1) per OT, or None if the receiver's message is invalid."""
    if not isinstance(message, bytes) or len(message) != 2 * POINT_BYTES * count:
        return None
    keys: list[tuple[bytes, bytes]] = []
    for index in range(count):
        pair = message[2 * POINT_BYTES * index : 2 * POINT_BYTES * (index + 1)]
        r = (pair[:POINT_BYTES], pair[POINT_BYTES:])
        if not (crypto_core_ed25519_is_valid_point(r[0]) and crypto_core_ed25519_is_valid_point(r[1])):
            return None
        out = []
        for i in (0, 1):
            f = crypto_core_ed25519_add(r[i], _hash_to_group(context, index, 1 - i, r[1 - i]))
            try:
                shared = crypto_scalarmult_ed25519_noclamp(secret.scalar, f)
            except NaclRuntimeError:  # F_i is the identity: not an honest message
                return None
            out.append(_kdf(context, index, i, secret.public, pair, shared))
        keys.append((out[0], out[1]))
    return keys


def receiver_keys(context: BaseOtContext, secret: ReceiverSecret, public: object) -> list[bytes] | None:
    """Step 3 (receiver): k_c per OT, or None if the sender's A is invalid."""
    if not isinstance(public, bytes) or len(public) != POINT_BYTES or not crypto_core_ed25519_is_valid_point(public):
        return None
    keys = []
    for index, (b, c) in enumerate(zip(secret.scalars, secret.choices, strict=True)):
        pair = secret.message[2 * POINT_BYTES * index : 2 * POINT_BYTES * (index + 1)]
        try:
            shared = crypto_scalarmult_ed25519_noclamp(b, public)
        except NaclRuntimeError:
            return None
        keys.append(_kdf(context, index, c, public, pair, shared))
    return keys
