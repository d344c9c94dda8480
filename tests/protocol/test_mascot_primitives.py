"""MASCOT building blocks: base OT, bit transposes, GF(2^128), hashes, PRGs, setup state."""

from __future__ import annotations

import os

import numpy as np
import pytest
import trio

from vcpd.math import PrimeField
from vcpd.protocol.mascot import MascotState, baseot, mascot_setup
from vcpd.protocol.mascot._common import gadget_sum, kernel_of, limbs_of, prg_field, to_array
from vcpd.protocol.mascot.otext import (
    Blake2bRowHash,
    expand_receiver,
    expand_sender,
    gf_mul,
    in_subfield,
    poly_eval,
    poly_eval_bits,
    row_hash,
    transpose_columns,
)
from vcpd.testing import open_memory_transports

FIELD = PrimeField()


def test_base_ot_gives_chosen_seed_only() -> None:
    context = baseot.BaseOtContext("s", 0, 1)
    sender = baseot.sender_message()
    choices = [b & 1 for b in os.urandom(40)]
    receiver = baseot.receiver_message(context, choices)
    pairs = baseot.sender_keys(context, sender, receiver.message, len(choices))
    keys = baseot.receiver_keys(context, receiver, sender.public)
    assert pairs is not None and keys is not None
    for c, key, pair in zip(choices, keys, pairs, strict=True):
        assert key == pair[c] and key != pair[1 - c]


def test_base_ot_rejects_invalid_points() -> None:
    context = baseot.BaseOtContext("s", 0, 1)
    sender = baseot.sender_message()
    assert baseot.sender_keys(context, sender, bytes(64), 1) is None
    receiver = baseot.receiver_message(context, [1])
    assert baseot.receiver_keys(context, receiver, bytes(32)) is None
    assert baseot.sender_keys(context, sender, b"short", 1) is None


def test_transpose_matches_unpackbits() -> None:
    cols = np.frombuffer(os.urandom(128 * 24), np.uint8).reshape(128, 24)
    rows = transpose_columns(cols).view(np.uint8).reshape(-1, 16)
    expected = np.packbits(np.unpackbits(cols, axis=1, bitorder="little").T, axis=1, bitorder="little")
    assert np.array_equal(rows, expected)


def _slow_eval(rows: list[int], chi: int) -> int:
    acc = 0
    for value in reversed(rows):
        acc = gf_mul(acc, chi) ^ value
    return acc


def test_gf128_and_polynomial_evaluation() -> None:
    a, b, c = (int.from_bytes(os.urandom(16), "little") for _ in range(3))
    assert gf_mul(gf_mul(a, b), c) == gf_mul(a, gf_mul(b, c))
    assert gf_mul(a, b ^ c) == gf_mul(a, b) ^ gf_mul(a, c)
    assert gf_mul(a, 1) == a
    chi = int.from_bytes(os.urandom(16), "little")
    for n in (5, 300, 3000):
        raw = np.frombuffer(os.urandom(16 * n), np.uint64).reshape(n, 2)
        ints = [int(lo) | (int(hi) << 64) for lo, hi in raw.tolist()]
        assert poly_eval(raw, chi) == _slow_eval(ints, chi)
    bits = os.urandom(48)
    unpacked = np.unpackbits(np.frombuffer(bits, np.uint8), bitorder="little").tolist()
    assert poly_eval_bits(bits, chi) == _slow_eval(unpacked, chi)


def test_subfield_detection() -> None:
    # x^(2^64) = x holds exactly on GF(2^64) ⊂ GF(2^128); a random element is outside.
    assert in_subfield(0) and in_subfield(1)
    chi = int.from_bytes(os.urandom(16), "little")
    assert not in_subfield(chi)


def test_iknp_correlation() -> None:
    delta = os.urandom(16)
    dbits = np.unpackbits(np.frombuffer(delta, np.uint8), bitorder="little")
    pairs = [(os.urandom(32), os.urandom(32)) for _ in range(128)]
    seeds = [pair[bit] for pair, bit in zip(pairs, dbits, strict=True)]
    choices = os.urandom(64)  # 512 OTs
    nonce = os.urandom(32)
    u, t_rows = expand_receiver(pairs, choices, nonce)
    q_rows = expand_sender(seeds, delta, u, nonce)
    r = np.unpackbits(np.frombuffer(choices, np.uint8), bitorder="little").astype(np.uint64)
    d = np.frombuffer(delta, np.uint64)
    assert np.array_equal(q_rows, t_rows ^ (np.negative(r)[:, None] & d[None, :]))


def test_row_hash_is_deterministic_and_in_field() -> None:
    rows = np.frombuffer(os.urandom(16 * 600), np.uint64).reshape(600, 2)
    key = os.urandom(32)
    h = Blake2bRowHash()
    a = row_hash(h, FIELD, rows, key)
    assert np.array_equal(a, row_hash(h, FIELD, rows.copy(), key))
    assert kernel_of(FIELD).below_p(a).all()
    assert not np.array_equal(a, row_hash(h, FIELD, rows, os.urandom(32)))
    assert len(set(map(int, a[0]))) == 600


def test_prg_field_and_gadget_sum() -> None:
    keys = [os.urandom(32) for _ in range(4)]
    v = prg_field(FIELD, keys, 700)
    assert v.shape == (2, 4, 700)
    assert np.array_equal(v, prg_field(FIELD, keys, 700))
    assert kernel_of(FIELD).below_p(v.reshape(2, -1)).all()
    total = to_array(FIELD, gadget_sum(FIELD, v))
    expected = FIELD.zeros(700)
    for level in range(4):
        expected = expected + to_array(FIELD, v[:, level].copy()) * (1 << level)
    assert total.equals(expected)
    x = FIELD.random(10)
    assert to_array(FIELD, limbs_of(x)).equals(x)
    # 128 levels of p - 1 (the largest total) and random values, against Python ints.
    worst = np.repeat(limbs_of(FIELD.constant(FIELD.p - 1, 3))[:, None, :], 128, axis=1)
    rand = np.ascontiguousarray(prg_field(FIELD, [os.urandom(32) for _ in range(128)], 3))
    for v in (worst, rand):
        got = to_array(FIELD, gadget_sum(FIELD, v)).to_ints()
        reps = [[int(v[0, l, e]) | (int(v[1, l, e]) << 64) for l in range(128)] for e in range(3)]
        want = [FIELD.unmont(sum(r << l for l, r in enumerate(rs))) for rs in reps]
        assert got == want


async def _setup(n: int) -> tuple[list[int], list[MascotState]]:
    alphas = FIELD.random(n).to_ints()
    states: list[MascotState | None] = [None] * n
    async with open_memory_transports(n) as hub:

        async def one(i: int) -> None:
            async with hub.transports[i].session("setup") as session:
                states[i] = await mascot_setup(session, FIELD, alphas[i], i, n)

        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(one, i)
    return alphas, [s for s in states if s is not None]


async def test_setup_links_are_consistent_and_round_trip() -> None:
    alphas, states = await _setup(3)
    for state in states:
        again = MascotState.from_bytes(state.to_bytes())
        assert again.to_bytes() == state.to_bytes()
        assert again.alpha == state.alpha and sorted(again.links) == sorted(state.links)
        assert "seed" not in repr(state) and str(state.alpha) not in repr(state)
    for i, state in enumerate(states):
        for j, link in state.links.items():
            other = states[j].links[i]
            dbits = np.unpackbits(np.frombuffer(link.delta, np.uint8), bitorder="little")
            abits = np.unpackbits(np.frombuffer(alphas[i].to_bytes(16, "little"), np.uint8), bitorder="little")
            assert all(link.ext_recv[b] == other.ext_send[b][dbits[b]] for b in range(128))
            assert all(link.cope_recv[b] == other.cope_send[b][abits[b]] for b in range(128))
    assert len({state.hash_name for state in states}) == 1


async def test_state_rejects_corruption() -> None:
    _, states = await _setup(2)
    blob = bytearray(states[0].to_bytes())
    blob[40] ^= 1
    with pytest.raises(ValueError, match="corrupted"):
        MascotState.from_bytes(bytes(blob))
    with pytest.raises(ValueError, match="not a vcpd MASCOT"):
        MascotState.from_bytes(b"garbage")
