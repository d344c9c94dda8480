"""Uniform field elements from the OS CSPRNG or from a seeded ChaCha20 stream.

Both samplers draw 16-byte little-endian blocks, mask the top limb down to the
bit length of p and reject blocks ≥ p (acceptance > 1/2 for every allowed p),
so the output is exactly uniform. An accepted block *is* the element's
Montgomery representation; since x ↦ x·2^128 is a bijection mod p, that is as
uniform as drawing x itself, and it skips a conversion.

The seeded expansion is a compatibility contract: every party (and any other
implementation) must derive the same vector from the same seed and label::

    key    = BLAKE2b-256(u64le(len(seed)) ‖ seed ‖ label, person=b"vcpd.field.prg")
    stream = randombytes_buf_deterministic(·, key)   # libsodium ChaCha20-IETF
    x_i    = i-th accepted 16-byte LE block of stream, its value masked to
             p.bit_length() bits, rejected if ≥ p; it is x_i's Montgomery form

The stream is prefix-consistent, so asking for more bytes never changes the
elements already produced.

This module must not import trio or vcpd, nor the ``random`` module or numpy's
random generators: every bit comes from ``os.urandom`` or libsodium.
"""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np
from nacl.bindings import randombytes_buf_deterministic

from ._limbs import Limbs, MontgomeryKernel

__all__ = ["derive_key", "os_random_limbs", "seeded_random_limbs"]

_PERSON = b"vcpd.field.prg"


def derive_key(seed: bytes, label: bytes = b"") -> bytes:
    """The 32-byte ChaCha20 key for (seed, label).

    The seed's length is hashed in front, so (b"ab", b"c") and (b"a", b"bc")
    give unrelated streams: labels really separate.
    """
    data = len(seed).to_bytes(8, "little") + seed + label
    return hashlib.blake2b(data, digest_size=32, person=_PERSON).digest()


def _draws_for(n: int, acceptance: float) -> int:
    """Blocks to draw so that fewer than n get accepted practically never: the
    margin exceeds eight standard deviations of the accepted count."""
    return math.ceil((n + 6 * math.sqrt(n) + 16) / acceptance)


def _accept(raw: bytes, p: int, kernel: MontgomeryKernel) -> Limbs:
    """The blocks of raw that encode elements, in order, as limbs."""
    blocks = np.frombuffer(raw, dtype="<u8").reshape(-1, 2).T.astype(np.uint64, order="C")
    blocks[1] &= np.uint64((1 << (p.bit_length() - 64)) - 1)
    accepted: Limbs = blocks[:, kernel.below_p(blocks)]
    return accepted


def _acceptance(p: int) -> float:
    """The chance that a masked block is below p: p / 2^bits > 1/2."""
    return p / (1 << p.bit_length())


def os_random_limbs(p: int, kernel: MontgomeryKernel, n: int) -> Limbs:
    """n uniform elements (Montgomery limbs) from ``os.urandom``."""
    parts: list[Limbs] = [np.empty((2, 0), np.uint64)]
    have = 0
    while have < n:
        part = _accept(os.urandom(16 * _draws_for(n - have, _acceptance(p))), p, kernel)
        parts.append(part)
        have += part.shape[1]
    return np.ascontiguousarray(np.concatenate(parts, axis=1)[:, :n])


def seeded_random_limbs(p: int, kernel: MontgomeryKernel, seed: bytes, label: bytes, n: int) -> Limbs:
    """The first n elements of the (seed, label) stream, as Montgomery limbs."""
    key = derive_key(seed, label)
    draws = _draws_for(n, _acceptance(p))
    while True:
        accepted = _accept(randombytes_buf_deterministic(16 * draws, key), p, kernel)
        if accepted.shape[1] >= n:
            return np.ascontiguousarray(accepted[:, :n])
        draws *= 2  # a longer prefix of the same stream: earlier elements stay put
