"""The trusted dealer's arithmetic: make tuples and split them into SPDZ shares.

Pure and vectorised (numpy through :class:`~vcpd.math.FieldArray`); no trio, no
I/O beyond OS randomness, so a batch can be dealt in a worker thread.

Randomness: every cleartext value comes from ``field.random`` (the OS CSPRNG);
the bits of ``bit`` tuples from ``os.urandom``. Shares are split with fresh
randomness per batch, in one of two encodings for followers:

* ``seed`` (default): each follower gets a fresh 32-byte seed from
  ``os.urandom`` and expands its value and MAC shares with
  ``field.random_seeded`` (ChaCha20, :mod:`vcpd.math.prg`); the dealer's own
  shares are the remainder. A follower learns exactly what it would learn from
  receiving its shares in full -- pseudo-random shares, nothing about the
  tuple -- while the message shrinks from ``arity·32`` bytes per tuple to 32
  bytes per batch and the expansion runs on the follower's own core. This is
  what makes the ≥ 200,000 triples/s target reachable over encrypted peer
  links: sending 96 bytes per triple to every follower would put ~40 MB/s per
  follower through the websocket and AEAD layers. Dealer mode is insecure by
  construction anyway (the dealer knows every tuple and α); the seed encoding
  adds only the assumption that ChaCha20 is a PRG.
* ``shares``: each follower's shares are drawn with ``field.random`` and sent in
  full (MP-SPDZ layout); kept for comparison and for transports where the
  follower's CPU is the bottleneck.

This module must not import trio, the store, or any vcpd module other than
:mod:`vcpd.errors`, :mod:`vcpd.math` and :mod:`vcpd.services.ports`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from vcpd.errors import FieldError
from vcpd.math.array import FieldArray
from vcpd.math.field import PrimeField
from vcpd.services.ports import BOUNDED_BITS, KIND_ARITY

__all__ = ["SEED_BYTES", "DealtBatch", "Encoding", "bounded_values", "deal_batch", "expand_seed", "make_tuples", "pack"]

SEED_BYTES: Final = 32
"""Bytes of a follower's per-batch seed."""

_LABEL: Final = b"vcpd.dealer.v1."

Encoding = Literal["seed", "shares"]


@dataclass(frozen=True, slots=True)
class DealtBatch:
    """One batch of tuples, split for every party.

    Attributes:
        own: the dealer's (party 0's) shares, packed (MP-SPDZ layout).
        payloads: follower -> its seed (``seed`` encoding) or its packed shares.
    """

    own: bytes
    payloads: dict[int, bytes]


def make_tuples(field: PrimeField, kind: str, n: int) -> list[FieldArray]:
    """n fresh cleartext tuples of ``kind``, one array per component."""
    if kind == "triple":
        a, b = field.random(n), field.random(n)
        return [a, b, a * b]
    if kind == "square":
        a = field.random(n)
        return [a, a * a]
    if kind == "bit":
        bits = np.unpackbits(np.frombuffer(os.urandom((n + 7) // 8), np.uint8))[:n]
        return [field.from_ints(bits.astype(np.int64))]
    if kind == "inverse":
        while True:
            r = field.random(n)
            try:
                return [r, r.inverse()]
            except FieldError:  # some r = 0 (probability n/p): draw the batch again
                continue
    if kind == "mask":
        return [field.random(n)]
    if kind == "bounded":
        return [bounded_values(field, n)]
    raise ValueError(f"unknown tuple kind {kind!r}")


def bounded_values(field: PrimeField, n: int) -> FieldArray:
    """n values uniform in [0, 2^BOUNDED_BITS), from the OS CSPRNG (whole bytes, no bias)."""
    width = BOUNDED_BITS // 8
    raw = np.frombuffer(os.urandom(width * n), np.uint8).reshape(n, width)
    padded = np.zeros((n, 8), np.uint8)
    padded[:, :width] = raw
    return field.from_ints(padded.view("<u8").ravel().astype(np.int64))


def pack(field: PrimeField, parts: Sequence[FieldArray], n: int) -> bytes:
    """Lay out ``[v0, m0, v1, m1, ...]`` (each of length n) as n tuples.

    The result is, per tuple, per component, value ‖ MAC (16 + 16 bytes LE
    Montgomery): MP-SPDZ's and Castor's layout.
    """
    joined = field.concat(list(parts)) if len(parts) > 1 else parts[0]
    return _pack_joined(joined, len(parts) // 2, n)


def _pack_joined(joined: FieldArray, arity: int, n: int) -> bytes:
    raw = np.frombuffer(joined.to_bytes(), np.uint8).reshape(arity, 2, n, 16)
    return np.ascontiguousarray(raw.transpose(2, 0, 1, 3)).tobytes()


def expand_seed(field: PrimeField, kind: str, n: int, seed: bytes) -> bytes:
    """A follower's packed shares of a batch, from its seed (``seed`` encoding)."""
    if len(seed) != SEED_BYTES:
        raise ValueError(f"a dealer seed has {SEED_BYTES} bytes, got {len(seed)}")
    arity = KIND_ARITY[kind]
    return _pack_joined(field.random_seeded(seed, 2 * arity * n, label=_LABEL + kind.encode()), arity, n)


def deal_batch(
    field: PrimeField, kind: str, n: int, alpha: int, n_parties: int, encoding: Encoding = "seed"
) -> DealtBatch:
    """Make n tuples and split values and MACs (under α) into shares for every party.

    Followers' value and MAC shares are uniform (seeded or drawn); the dealer
    keeps ``[x_j, α·x_j] - Σ followers``. All components of all parties are
    handled as one vector of ``2·arity·n`` elements, so the work is a few
    large numpy operations per batch whatever the party count.
    """
    arity = KIND_ARITY[kind]
    values = make_tuples(field, kind, n)
    parts: list[FieldArray] = []
    for x in values:
        parts += [x, x * alpha]
    total = field.concat(parts) if len(parts) > 1 else parts[0]
    payloads: dict[int, bytes] = {}
    label = _LABEL + kind.encode()
    for party in range(1, n_parties):
        if encoding == "seed":
            seed = os.urandom(SEED_BYTES)
            theirs = field.random_seeded(seed, 2 * arity * n, label=label)
            payloads[party] = seed
        elif encoding == "shares":
            theirs = field.random(2 * arity * n)
            payloads[party] = _pack_joined(theirs, arity, n)
        else:
            raise ValueError(f"unknown dealer encoding {encoding!r}")
        total = total - theirs
    return DealtBatch(_pack_joined(total, arity, n), payloads)
