"""IKNP OT extension with the KOS correlation check, on numpy bit matrices.

Roles (Ishai–Kilian–Nissim–Petrank 2003; Keller–Orsini–Scholl, CRYPTO 2015):
the extension *receiver* R has m choice bits r; the extension *sender* S has
a random Δ ∈ {0,1}^κ and, from the base OTs where S was the base-OT receiver
with choice bits Δ, the seeds k_b^{Δ_b}; R holds both k_b^0, k_b^1 (κ = 128).

1. R: T_b = G(k_b^0), U_b = T_b ⊕ G(k_b^1) ⊕ r for every column b < κ; sends U.
2. S: Q_b = G(k_b^{Δ_b}) ⊕ Δ_b·U_b. Transposed, row j: q_j = t_j ⊕ r_j·Δ.
3. KOS check (this module's :func:`poly_eval`): S picks χ ∈ GF(2^128) after
   U arrived and sends it; R answers x = Σ_j χ^j·r_j and t = Σ_j χ^j·t_j;
   S accepts iff Σ_j χ^j·q_j = t ⊕ x·Δ (constant-time comparison).
4. Outputs are hashed: S gets H(j, q_j) and H(j, q_j ⊕ Δ), R gets H(j, t_j).

The check uses the powers χ^j of one random χ (a polynomial hash) instead of
KOS's independent χ_j: every inconsistency makes Σ_j χ^j·e_j a non-zero
polynomial of degree < m in χ, so it vanishes with probability ≤ m/2^128
(Schwartz–Zippel) instead of 2^-128 — below 2^-100 for any batch. The powers
make the sum a Horner evaluation whose multiplier is fixed, i.e. a GF(2)-linear
map applied with 16 byte-indexed tables per row (~25 ns per row in numpy),
where independent χ_j would need a full carry-less product per row.
R's last κ choice bits are random padding; R refuses a χ in a proper subfield
(χ^(2^64) = χ), so that x = Σ χ^j r_j is uniform whatever χ S picked and
reveals nothing about the real choice bits.

The hash H(j, ·) turns each 128-bit row into a uniform field element by
rejection sampling on its output (see :class:`RowHash`): BLAKE2b by default;
fixed-key AES (TMMO, Guo–Katz–Wang–Yu 2020) when the optional ``cryptography``
package is installed on every VCP, which is about ten times faster.

Bit layout everywhere: bit i of a byte string is bit (i mod 8) of byte i // 8
(little-endian); a row is 16 bytes, bit b being column b; a column of m OTs
is m/8 bytes.

This module must not import trio, vcpd.net, vcpd.testing, services, api,
node or daemon; from vcpd it uses only errors and math. Δ, seeds and rows are
never logged or put in an exception.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
from nacl.bindings import randombytes_buf_deterministic

from vcpd.math import PrimeField
from vcpd.math._limbs import Limbs

from ._common import KAPPA, U64, accept_below_p, derive

__all__ = [
    "HASHES",
    "PAD_OTS",
    "Blake2bRowHash",
    "RowHash",
    "available_hashes",
    "expand_receiver",
    "expand_sender",
    "gf_mul",
    "in_subfield",
    "poly_eval",
    "poly_eval_bits",
    "row_hash",
    "transpose_columns",
]

PAD_OTS: Final = KAPPA
"""Random OTs appended to every batch so that the KOS check hides the choice bits."""

_POLY: Final = (1 << 128) | 0x87  # x^128 + x^7 + x^2 + x + 1
_MASK128: Final = (1 << 128) - 1
_LANES: Final = 8192
"""Rows evaluated side by side in :func:`poly_eval` (one Horner chain per lane)."""

# ------------------------------------------------------------------ GF(2^128)


def gf_mul(a: int, b: int) -> int:
    """a·b in GF(2^128) = GF(2)[x]/(x^128 + x^7 + x^2 + x + 1), as 128-bit ints.

    Branch-free in the bits of both operands (masks instead of ifs), because
    one operand may be the secret Δ.
    """
    r = 0
    for i in range(128):
        r ^= a & -((b >> i) & 1)
        a = (a << 1) ^ (_POLY & -((a >> 127) & 1))
    return r


def in_subfield(chi: int) -> bool:
    """True iff χ lies in GF(2^64) (which contains every proper subfield): χ^(2^64) = χ."""
    v = chi
    for _ in range(64):
        v = gf_mul(v, v)
    return v == chi


def _int_words(v: int) -> tuple[int, int]:
    return v & 0xFFFFFFFFFFFFFFFF, v >> 64


def _tables(basis: Sequence[int]) -> npt.NDArray[np.uint64]:
    """Byte tables of a GF(2)-linear map given by the images of x^0..x^127.

    ``tables[k*256 + v]`` is the image of byte value v at byte position k, so
    the image of a row is the XOR of 16 lookups.
    """
    base = np.array([_int_words(v) for v in basis], dtype=np.uint64).reshape(16, 8, 2)
    tables = np.zeros((16, 256, 2), np.uint64)
    for u in range(8):
        width = 1 << u
        tables[:, width : 2 * width] = tables[:, :width] ^ base[:, u][:, None, :]
    return tables.reshape(4096, 2)


def _mul_tables(c: int) -> npt.NDArray[np.uint64]:
    """Tables of y ↦ c·y."""
    basis = []
    v = c
    for _ in range(128):
        basis.append(v)
        v = (v << 1) ^ (_POLY & -((v >> 127) & 1))
    return _tables(basis)


_OFFSETS: Final = [np.intp(256 * k) for k in range(16)]


def _apply(tables: npt.NDArray[np.uint64], rows: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The linear map of ``tables`` on every row of ``rows`` ((n, 2) uint64)."""
    octets = rows.view(np.uint8).reshape(-1, 16)
    acc = np.take(tables, octets[:, 0].astype(np.intp), axis=0)
    for k in range(1, 16):
        acc ^= np.take(tables, octets[:, k] + _OFFSETS[k], axis=0)
    return acc


def _row_int(row: npt.NDArray[np.uint64]) -> int:
    return int(row[0]) | (int(row[1]) << 64)


def poly_eval(rows: npt.NDArray[np.uint64], chi: int) -> int:
    """Σ_j χ^j·rows[j] in GF(2^128) for ``rows`` of shape (n, 2) (uint64 LE words).

    Row j = k·W + w: the sum is Σ_w χ^w·(Σ_k (χ^W)^k·rows[kW + w]); the inner
    sums are W Horner chains with the fixed multiplier χ^W (table lookups),
    and the outer sum is the same problem on W rows.
    """
    n = rows.shape[0]
    if n <= 64:
        acc = 0
        for j in range(n - 1, -1, -1):
            acc = gf_mul(acc, chi) ^ _row_int(rows[j])
        return acc
    lanes = min(_LANES, 1 << max(6, (n // 16).bit_length() - 1))  # at least ~16 Horner steps
    steps = -(-n // lanes)
    padded = np.zeros((steps * lanes, 2), np.uint64)
    padded[:n] = rows
    grid = padded.reshape(steps, lanes, 2)
    chi_w = 1
    for bit in bin(lanes)[2:]:  # χ^lanes by square-and-multiply (public values)
        chi_w = gf_mul(chi_w, chi_w)
        if bit == "1":
            chi_w = gf_mul(chi_w, chi)
    tables = _mul_tables(chi_w)
    acc = grid[steps - 1].copy()
    for k in range(steps - 2, -1, -1):
        acc = _apply(tables, acc)
        acc ^= grid[k]
    return poly_eval(acc, chi)


def poly_eval_bits(bits: bytes, chi: int) -> int:
    """Σ_j χ^j·r_j for the bit vector r (little-endian bits, length a multiple of 128).

    Blocks of 128 bits go through the linear map v ↦ Σ_u v_u·χ^u (tables of
    the powers χ^0..χ^127), then Σ_K (χ^128)^K·y_K is a row evaluation.
    """
    powers = []
    v = 1
    for _ in range(128):
        powers.append(v)
        v = gf_mul(v, chi)
    blocks = np.frombuffer(bits, U64).reshape(-1, 2)
    images = _apply(_tables(powers), blocks)
    return poly_eval(images, v)  # v = χ^128


def to_words(v: int) -> bytes:
    """A GF(2^128) element as 16 bytes little-endian."""
    return (v & _MASK128).to_bytes(16, "little")


def from_words(b: bytes) -> int:
    return int.from_bytes(b, "little")


# ------------------------------------------------------------------ bit matrices

_SWAP_MASKS: Final = {
    32: np.uint64(0x00000000FFFFFFFF),
    16: np.uint64(0x0000FFFF0000FFFF),
    8: np.uint64(0x00FF00FF00FF00FF),
    4: np.uint64(0x0F0F0F0F0F0F0F0F),
    2: np.uint64(0x3333333333333333),
    1: np.uint64(0x5555555555555555),
}


def transpose_columns(columns: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """The κ × m bit matrix (128 columns of m bits, m a multiple of 64) as m rows.

    Returns an (m, 2) uint64 array: row j holds bit j of every column. Works
    on 64×64 blocks of words with six masked-swap stages (Eklundh), then
    reorders whole words; no per-bit unpacking.
    """
    words = columns.reshape(KAPPA, -1).view(U64)
    m = words.shape[1] * 64
    blocks = words.reshape(2, 64, -1).copy()  # [half w, bit-row u, word c]
    for s in (32, 16, 8, 4, 2, 1):
        view = blocks.reshape(2, 64 // (2 * s), 2, s, -1)
        a, b = view[:, :, 0], view[:, :, 1]
        t = np.right_shift(a, np.uint64(s))
        t ^= b
        t &= _SWAP_MASKS[s]
        b ^= t
        t <<= np.uint64(s)
        a ^= t
    # blocks[w, v, c] now holds bits u of row j = 64c + v, columns 64w + u.
    return np.ascontiguousarray(blocks.transpose(2, 1, 0)).reshape(m, 2)


def prg_bits(seed: bytes, nonce: bytes, nbytes: int) -> npt.NDArray[np.uint8]:
    """G(seed): ``nbytes`` of the ChaCha20 stream keyed by (seed, batch nonce)."""
    key = derive(b"iknp", seed, nonce)
    return np.frombuffer(randombytes_buf_deterministic(nbytes, key), np.uint8)


def expand_receiver(
    pairs: Sequence[tuple[bytes, bytes]], choices: bytes, nonce: bytes
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint64]]:
    """IKNP step 1 for R: (U columns to send, T as rows).

    Args:
        pairs: the κ seed pairs (k_b^0, k_b^1) from the base OTs.
        choices: the m choice bits r (m/8 bytes; padding included).
        nonce: fresh per batch (R's own), sent along with U.
    """
    nbytes = len(choices)
    r = np.frombuffer(choices, np.uint8)
    t_cols = np.empty((KAPPA, nbytes), np.uint8)
    u_cols = np.empty((KAPPA, nbytes), np.uint8)
    for b, (k0, k1) in enumerate(pairs):
        t_cols[b] = prg_bits(k0, nonce, nbytes)
        np.bitwise_xor(t_cols[b], prg_bits(k1, nonce, nbytes), out=u_cols[b])
        u_cols[b] ^= r
    return u_cols, transpose_columns(t_cols)


def expand_sender(seeds: Sequence[bytes], delta: bytes, u_cols: npt.NDArray[np.uint8], nonce: bytes) -> npt.NDArray[np.uint64]:
    """IKNP step 2 for S: Q_b = G(k_b^{Δ_b}) ⊕ Δ_b·U_b, returned as rows q_j.

    Branch-free in Δ: U_b is ANDed with a 0x00/0xFF byte mask.
    """
    nbytes = u_cols.shape[1]
    dbits = np.unpackbits(np.frombuffer(delta, np.uint8), bitorder="little")
    masks = np.negative(dbits).astype(np.uint8)  # 0x00 or 0xff per column
    q_cols = np.empty((KAPPA, nbytes), np.uint8)
    for b, seed in enumerate(seeds):
        np.bitwise_and(u_cols[b], masks[b], out=q_cols[b])
        q_cols[b] ^= prg_bits(seed, nonce, nbytes)
    return transpose_columns(q_cols)


# ------------------------------------------------------------------ row hashes


class RowHash(Protocol):
    """H(j, row) → a uniform field element per row, identical on every VCP."""

    name: str

    def candidates(self, rows: npt.NDArray[np.uint64], key: bytes, index: npt.NDArray[np.uint64], round_: int) -> npt.NDArray[np.uint64]:
        """``(c, n, 2)`` uint64: c independent 128-bit outputs per row for retry round ``round_``."""
        ...


class Blake2bRowHash:
    """BLAKE2b-512(key ‖ row ‖ j ‖ round): four 128-bit candidates per call.

    About 0.5 µs per row (one CPython call each); the default, since hashlib
    is always there.
    """

    name = "blake2b"

    def candidates(self, rows: npt.NDArray[np.uint64], key: bytes, index: npt.NDArray[np.uint64], round_: int) -> npt.NDArray[np.uint64]:
        n = rows.shape[0]
        data = np.empty((n, 5), np.uint64)
        data[:, :2] = np.frombuffer(key[:16], U64)
        data[:, 2:4] = rows
        data[:, 4] = index | np.uint64(round_ << 56)
        buf = data.tobytes()
        b2 = hashlib.blake2b
        digests = b"".join([b2(buf[i : i + 40], digest_size=64).digest() for i in range(0, 40 * n, 40)])
        return np.frombuffer(digests, U64).reshape(n, 4, 2).transpose(1, 0, 2).copy()


class AesRowHash:
    """Fixed-key AES in the TMMO construction: H(x, tweak) = π(π(x) ⊕ tweak) ⊕ π(x).

    π is AES-128 under a per-batch public key, run over whole arrays in ECB
    mode (AES-NI through the optional ``cryptography`` package). TMMO is a
    tweakable circular correlation-robust hash in the ideal-permutation model
    (Guo, Katz, Wang, Yu, "Efficient and Secure Multiparty Computation from
    Fixed-Key Block Ciphers", S&P 2020), which is what hashing IKNP outputs
    needs; tweaks are (j, candidate) and never repeat under one key.
    """

    name = "aes"

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        self._cipher = Cipher
        self._algorithm = algorithms.AES
        self._mode = modes.ECB

    def candidates(self, rows: npt.NDArray[np.uint64], key: bytes, index: npt.NDArray[np.uint64], round_: int) -> npt.NDArray[np.uint64]:
        n = rows.shape[0]
        encryptor = self._cipher(self._algorithm(key[:16]), self._mode()).encryptor()
        first = np.empty((n + 1, 2), np.uint64)  # update_into wants one spare block
        encryptor.update_into(memoryview(np.ascontiguousarray(rows)).cast("B"), memoryview(first).cast("B"))
        first = first[:n]
        tweaked = np.empty((2, n, 2), np.uint64)  # [candidate, row, word]
        np.bitwise_xor(first[:, 0], index, out=tweaked[0, :, 0])
        np.copyto(tweaked[1, :, 0], tweaked[0, :, 0])
        np.bitwise_xor(first[:, 1], np.uint64(2 * round_ + 1), out=tweaked[0, :, 1])
        np.bitwise_xor(first[:, 1], np.uint64(2 * round_ + 2), out=tweaked[1, :, 1])
        second = np.empty((2 * n + 1, 2), np.uint64)
        encryptor.update_into(memoryview(tweaked).cast("B"), memoryview(second).cast("B"))
        out = second[: 2 * n].reshape(2, n, 2)
        out ^= first[None, :, :]
        return out


def available_hashes() -> list[str]:
    """Row hashes this installation can run, fastest first."""
    names = []
    try:
        AesRowHash()
        names.append("aes")
    except ImportError:
        pass
    names.append("blake2b")
    return names


HASHES: Final = ("aes", "blake2b")


def make_row_hash(name: str) -> RowHash:
    if name == "aes":
        return AesRowHash()
    if name == "blake2b":
        return Blake2bRowHash()
    raise ValueError(f"unknown row hash {name!r}")


def row_hash(hasher: RowHash, field: PrimeField, rows: npt.NDArray[np.uint64], key: bytes, start: int = 0) -> Limbs:
    """H(start + j, rows[j]) as uniform field elements, ``(2, n)`` Montgomery limbs.

    Each call of the hash yields several 128-bit candidates; the first one
    below p (masked to p's bit length) is the element's representation. Rows
    whose candidates all fail are hashed again with the next retry round. The
    accepted value is uniform and independent of how many rounds it took, so
    the data-dependent retries leak nothing about it.
    """
    n = rows.shape[0]
    out = np.empty((2, n), np.uint64)
    todo: npt.NDArray[np.intp] | None = None  # None: every row
    index = np.arange(start, start + n, dtype=np.uint64)
    round_ = 0
    while True:
        cand = hasher.candidates(rows if todo is None else rows[todo], key, index if todo is None else index[todo], round_)
        lo, hi = cand[:, :, 0], cand[:, :, 1]
        ok = accept_below_p(field, lo, hi)
        # The first accepted candidate of each row: scan from the last one down.
        last = cand.shape[0] - 1
        pick = cand[last].copy()
        found = ok[last].copy()
        for c in range(last - 1, -1, -1):
            np.copyto(pick, cand[c], where=ok[c][:, None])
            found |= ok[c]
        if todo is None:
            out[:] = pick.T
            todo = np.flatnonzero(~found)
        else:
            out[:, todo[found]] = pick[found].T
            todo = todo[~found]
        if not todo.size:
            return out
        round_ += 1
        if round_ > 64:  # 2^-100 per row even with the AES hash: a broken hash
            raise RuntimeError("row hash rejected every candidate")


def random_bits(nbits: int) -> bytes:
    """nbits/8 bytes from the OS CSPRNG."""
    return os.urandom(nbits // 8)
