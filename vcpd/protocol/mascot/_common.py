"""Shared plumbing of the MASCOT offline phase: rounds, PRGs, limb helpers.

Everything here is either a network round helper (pairwise messages with a
time limit, failures surfaced as vcpd errors) or a vectorised primitive on the
``(2, n)`` Montgomery limb layout of :mod:`vcpd.math` (batched rejection
sampling of field elements from seeded ChaCha20 streams, the gadget sum
Σ_l 2^l·v_l of MASCOT's COPEe and Gilboa steps).

Limbs hold Montgomery representations x·2^128 mod p. Every operation used
here (additions, doubling, selection by a bit mask) is linear, so it is the
same on representations as on values; a uniformly random representation is a
uniformly random element.

This module must not import vcpd.net, vcpd.testing, services, api, node or
daemon; from vcpd it uses only errors, math and vcpd.protocol. It never logs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt
import trio
from nacl.bindings import randombytes_buf_deterministic

from vcpd.errors import SessionAborted, VcpError
from vcpd.math import FieldArray, PrimeField
from vcpd.math._limbs import Limbs, MontgomeryKernel, int_limbs
from vcpd.math.array import wrap_limbs

from ..transport import Session

__all__ = [
    "DEFAULT_TIMEOUT",
    "KAPPA",
    "TAU",
    "U64",
    "derive",
    "field_bytes",
    "field_limbs",
    "gadget_sum",
    "kernel_of",
    "limbs_of",
    "pairwise",
    "per_peer",
    "prg_field",
    "to_array",
]

KAPPA: Final = 128
"""Computational security parameter: base OTs per role and link, bits per
element decomposition (every supported p has at most 128 bits)."""

TAU: Final = 3
"""Plain triples combined into one output (MASCOT's τ, MP-SPDZ ``N_AMPLIFY``)."""

DEFAULT_TIMEOUT: Final = 300.0
"""Seconds one round waits for its peers before the job aborts."""

U64: Final = np.dtype("<u8")

_PERSON_DERIVE: Final = b"vcpd.mascot"

T = TypeVar("T")


def derive(*parts: bytes | str | int, size: int = 32) -> bytes:
    """BLAKE2b of length-prefixed parts: domain-separated key derivation.

    Ints are encoded as 8 bytes little-endian, strings as UTF-8; the length
    prefixes make every tuple of parts hash differently.
    """
    h = hashlib.blake2b(digest_size=size, person=_PERSON_DERIVE)
    for part in parts:
        if isinstance(part, int):
            data = part.to_bytes(8, "little")
        elif isinstance(part, str):
            data = part.encode()
        else:
            data = part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.digest()


def kernel_of(field: PrimeField) -> MontgomeryKernel:
    """The field's vectorised limb kernel (shared, stateless)."""
    return field._kernel


def limbs_of(array: FieldArray) -> Limbs:
    """The ``(2, n)`` Montgomery limbs of a FieldArray (a copy for short arrays)."""
    if len(array) == 0:
        return np.empty((2, 0), np.uint64)
    raw = np.frombuffer(array.to_bytes(), U64).reshape(-1, 2)
    return np.ascontiguousarray(raw.T)


def to_array(field: PrimeField, limbs: Limbs) -> FieldArray:
    """Wrap reduced Montgomery limbs (taken over) as a FieldArray."""
    return wrap_limbs(field, np.ascontiguousarray(limbs, dtype=np.uint64))


def field_bytes(limbs: Limbs) -> bytes:
    """Wire form of limbs: 16 bytes little-endian per element (as FieldArray.to_bytes)."""
    return np.ascontiguousarray(limbs.T).astype(U64, copy=False).tobytes()


def field_limbs(field: PrimeField, data: object, n: int) -> Limbs | None:
    """Parse ``n`` wire elements; None if the payload is malformed or not below p."""
    if not isinstance(data, bytes) or len(data) != 16 * n:
        return None
    limbs: Limbs = np.frombuffer(data, U64).reshape(n, 2).T.astype(np.uint64, order="C")
    if n and not kernel_of(field).below_p(limbs).all():
        return None
    return limbs


def _top_mask(p: int) -> np.uint64:
    return np.uint64((1 << (p.bit_length() - 64)) - 1)


def accept_below_p(field: PrimeField, lo: npt.NDArray[np.uint64], hi: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    """Element-wise (hi, lo) < p after masking hi (in place) to the bit length of p.

    The low words are only compared where hi equals p's high word, which is
    rare, so the common case is one pass over the high words.
    """
    p = field.p
    p0, p1 = np.uint64(p & ((1 << 64) - 1)), np.uint64(p >> 64)
    mask = _top_mask(p)
    if mask != np.uint64(0xFFFFFFFFFFFFFFFF):
        hi &= mask
    accepted: npt.NDArray[np.bool_] = hi < p1
    tie = hi == p1
    if tie.any():
        accepted |= tie & (lo < p0)
    return accepted


def prg_field(field: PrimeField, keys: Sequence[bytes], n: int) -> Limbs:
    """``len(keys)`` independent pseudorandom vectors of n elements, as ``(2, k, n)`` limbs.

    Vector i is drawn from the ChaCha20 stream of ``keys[i]`` (libsodium's
    ``randombytes_buf_deterministic``) by rejection sampling 16-byte blocks
    below p (masked to p's bit length): exactly uniform, and the same on
    every party holding the key. All streams are accepted in one vectorised
    pass (MASCOT COPEe's PRG expansion, KOS16 §4).
    """
    k = len(keys)
    out = np.empty((2, k, n), np.uint64)
    if k == 0 or n == 0:
        return out
    acceptance = field.p / (1 << field.bits)
    draws = math.ceil((n + 8 * math.sqrt(n) + 32) / acceptance)
    for i, key in enumerate(keys):
        size = draws
        while True:
            blocks = np.frombuffer(randombytes_buf_deterministic(16 * size, key), U64).reshape(size, 2)
            lo, hi = blocks[:, 0], blocks[:, 1]
            if field.bits < 128:
                hi = hi.copy()  # masked in place below; the stream's bytes are read-only
            accepted = accept_below_p(field, lo, hi)
            positions = np.flatnonzero(accepted)
            if positions.size >= n:
                break
            size *= 2  # practically never: a longer prefix of the same stream
        positions = positions[:n]
        np.take(lo, positions, out=out[0, i])
        np.take(hi, positions, out=out[1, i])
    return out


def _reduce_once(field: PrimeField, x: Limbs) -> Limbs:
    """x mod p for x < 2p (two 64-bit limbs), branch-free per element."""
    p0, p1 = np.uint64(field.p & ((1 << 64) - 1)), np.uint64(field.p >> 64)
    lo, hi = x[0], x[1]
    at_least = (hi > p1) | ((hi == p1) & (lo >= p0))
    out = x.copy()
    np.subtract(lo, p0, out=out[0], where=at_least)
    np.subtract(hi, p1 + (lo < p0).astype(np.uint64), out=out[1], where=at_least)
    return out


def gadget_sum(field: PrimeField, v: Limbs) -> Limbs:
    """Σ_l 2^l·v[:, l] mod p for ``v`` of shape ``(2, L, E)`` (L ≤ 128), reduced once.

    This is the gadget-vector recombination g·q of COPEe and of Gilboa's
    product (q = Σ 2^l q_l), on representations. Instead of 2L modular
    additions per element it accumulates exactly in 64-bit words: the
    representations are split into 32-bit limbs and, per group of 32 levels,
    Horner's rule (shift by one, add) keeps every word below 2^64. The 256-bit
    total (< 2^128·p) is carried into 32-bit limbs once and reduced as
    L + H·2^128 ≡ L + H·R (mod p): one Montgomery product per element.
    """
    levels, elements = v.shape[1], v.shape[2]
    if levels > 128:
        raise ValueError("gadget_sum supports at most 128 levels")
    halves = np.ascontiguousarray(v).view(np.uint32).reshape(2, levels, elements, 2)  # [word, l, e, half]
    groups = -(-levels // 32)
    acc = np.zeros((groups, 4, elements), np.uint64)  # [group, 32-bit limb, e]
    one = np.uint64(1)
    for level in range(levels - 1, -1, -1):
        g = acc[level // 32]
        np.left_shift(g, one, out=g)
        for limb in range(4):
            g[limb] += halves[limb // 2, level, :, limb % 2]
    # Word (group g, limb k) sits at bit 32·(g + k); split into 32-bit halves.
    positions = np.zeros((9, elements), np.uint64)
    mask = np.uint64(0xFFFFFFFF)
    shift = np.uint64(32)
    for g in range(groups):
        for limb in range(4):
            word = acc[g, limb]
            positions[g + limb] += word & mask
            positions[g + limb + 1] += word >> shift
    carry = np.zeros(elements, np.uint64)
    for pos in range(9):
        positions[pos] += carry
        carry = positions[pos] >> shift
        positions[pos] &= mask
    low = np.empty((2, elements), np.uint64)
    high = np.empty((2, elements), np.uint64)
    low[0] = positions[0] | (positions[1] << shift)
    low[1] = positions[2] | (positions[3] << shift)
    high[0] = positions[4] | (positions[5] << shift)
    high[1] = positions[6] | (positions[7] << shift)
    kernel = kernel_of(field)
    low = _reduce_once(field, low)
    high = _reduce_once(field, high)
    shifted = np.empty_like(high)
    kernel.mul(high, int_limbs(field.r_squared), shifted)  # H·R² / R = H·2^128 mod p
    out = np.empty_like(low)
    kernel.add(shifted, low, out)
    return out


def bit_masks(bits: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """0/1 values as uint64 masks (0 or all ones), for branch-free selection."""
    return np.negative(bits.astype(np.uint64))


async def per_peer(peers: Sequence[int], fn: Callable[[int], T], *, threads: bool) -> dict[int, T]:
    """``{peer: fn(peer)}``; with ``threads`` the links run in parallel worker threads.

    The first failure (in peer order) is re-raised as itself, never wrapped
    in an exception group.
    """
    if not threads:
        return {peer: fn(peer) for peer in peers}
    results: dict[int, T] = {}
    failures: dict[int, Exception] = {}

    async def one(peer: int) -> None:
        try:
            results[peer] = await trio.to_thread.run_sync(fn, peer)
        except Exception as exc:  # re-raised below, unwrapped
            failures[peer] = exc

    async with trio.open_nursery() as nursery:
        for peer in peers:
            nursery.start_soon(one, peer)
    if failures:
        raise failures[min(failures)]
    return results


async def pairwise(
    session: Session, step: str, payloads: Mapping[int, Any], *, timeout: float = DEFAULT_TIMEOUT
) -> dict[int, Any]:
    """Send ``payloads[peer]`` to each peer under ``step`` and collect each peer's message.

    Raises:
        PeerUnavailable, SessionAborted, WireError: the first transport
            failure (the other transfers are cancelled).
        SessionAborted: a peer's message did not arrive within ``timeout``.
    """
    results: dict[int, Any] = {}
    failures: list[VcpError] = []

    async def send_to(peer: int, scope: trio.CancelScope) -> None:
        try:
            await session.send(peer, step, payloads[peer])
        except VcpError as exc:
            failures.append(exc)
            scope.cancel()

    async def receive_from(peer: int, scope: trio.CancelScope) -> None:
        try:
            results[peer] = await session.receive(peer, step)
        except VcpError as exc:
            failures.append(exc)
            scope.cancel()

    with trio.move_on_after(timeout) as timer:
        async with trio.open_nursery() as nursery:
            for peer in sorted(payloads):
                nursery.start_soon(send_to, peer, nursery.cancel_scope)
                nursery.start_soon(receive_from, peer, nursery.cancel_scope)
    if failures:
        raise failures[0]
    if timer.cancelled_caught:
        missing = [str(k) for k in sorted(payloads) if k not in results]
        raise SessionAborted(session.id, f"no message {step!r} from VCP {', '.join(missing) or '?'} within {timeout:g} s")
    return results


def deviated(session_id: str, peer: int, what: str) -> SessionAborted:
    """The error for a malformed message from ``peer`` (names the step, never data)."""
    return SessionAborted(session_id, f"VCP {peer} deviated from the protocol: {what}")
