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

**Bounded coefficients** (:func:`seeded_bounded_limbs`) serve random linear
combinations, which need unpredictable, not uniform, field elements: chunk k
of ``CHUNK`` blocks is ``randombytes_buf_deterministic(16·CHUNK, K_k)`` with
``K_k = BLAKE2b-256(u64le(k), key=key, person=b"vcpd.field.coef")``, and each
16-byte LE block masked to p.bit_length() − 1 bits *is* the element's
Montgomery form. So every element takes one of 2^(bits−1) values (2^127 for
the default prime; always more than p/2), uniformly and independently -- for
a combination with a nonzero coefficient vector the chance of hitting zero is
at most 2^-(bits−1) -- with no rejection, no big stream buffer, and generated
chunk by chunk.

This module must not import trio or vcpd, nor the ``random`` module or numpy's
random generators: every bit comes from ``os.urandom`` or libsodium.
"""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np
import numpy.typing as npt
from nacl.bindings import randombytes_buf_deterministic

from ._limbs import CHUNK, Limbs, MontgomeryKernel

__all__ = [
    "bounded_chunk_limbs32",
    "bounded_chunk_words",
    "derive_key",
    "os_random_limbs",
    "seeded_bounded_limbs",
    "seeded_random_limbs",
]

_PERSON = b"vcpd.field.prg"
_PERSON_COEF = b"vcpd.field.coef"


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


def _chunk_key(key: bytes, index: int) -> bytes:
    return hashlib.blake2b(index.to_bytes(8, "little"), key=key, digest_size=32, person=_PERSON_COEF).digest()


def bounded_chunk_limbs32(p: int, key: bytes, index: int, c: int, out: npt.NDArray[np.uint64]) -> None:
    """Chunk ``index`` (its first ``c`` elements) of the :func:`seeded_bounded_limbs`
    stream of ``key = derive_key(seed, label)``, as four 32-bit limbs into ``out`` ``(4, c)``."""
    raw = randombytes_buf_deterministic(16 * c, _chunk_key(key, index))
    np.copyto(out, np.frombuffer(raw, dtype="<u4").reshape(c, 4).T)
    top = p.bit_length() - 1  # values are below 2^top
    limb, bits = divmod(top, 32)
    out[limb] &= np.uint64((1 << bits) - 1)
    if limb < 3:
        out[limb + 1 :] = 0


def bounded_chunk_words(p: int, key: bytes, index: int, c: int) -> list[int]:
    """:func:`bounded_chunk_limbs32` as Python ints (the Montgomery forms), for short chunks."""
    raw = randombytes_buf_deterministic(16 * c, _chunk_key(key, index))
    mask = (1 << (p.bit_length() - 1)) - 1
    return [int.from_bytes(raw[16 * i : 16 * i + 16], "little") & mask for i in range(c)]


def seeded_bounded_limbs(p: int, seed: bytes, label: bytes, n: int) -> Limbs:
    """n elements below 2^(b−1), b = p.bit_length(), as Montgomery limbs from (seed, label).

    See the module docstring: uniform over 2^(b−1) > p/2 of the p values (2^127
    for the default prime), not over all of F_p, which is what random linear
    combinations need.
    """
    if p <= 1 << 64:
        raise ValueError("bounded coefficients need p > 2^64")
    high_mask = np.uint64((1 << (p.bit_length() - 1 - 64)) - 1)
    key = derive_key(seed, label)
    out = np.empty((2, n), np.uint64)
    for index, start in enumerate(range(0, n, CHUNK)):
        stop = min(n, start + CHUNK)
        raw = randombytes_buf_deterministic(16 * (stop - start), _chunk_key(key, index))
        out[:, start:stop] = np.frombuffer(raw, dtype="<u8").reshape(-1, 2).T
    out[1] &= high_mask
    return out
