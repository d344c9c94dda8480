"""The integer linear layer of BitLT-product and the halves-paired product tree.

Both were rewritten for speed; these tests pin them to the formulas they
replace: :func:`bit_lt_terms` must give every party exactly the shares the
old field-arithmetic code gave (running sum, table offsets), and
:func:`product_tree` must multiply all rows whatever the pairing.
"""

from __future__ import annotations

import os

import numpy as np
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from test_nonlinear_harness import FIELD, Dealer, opened, run_parties

from vcpd.math import FieldArray, Shares
from vcpd.protocol import OnlineParty
from vcpd.protocol.nonlinear import cost
from vcpd.protocol.nonlinear.bits import product_tree, rows
from vcpd.protocol.nonlinear.pack import add_small, choose
from vcpd.protocol.nonlinear.program import run
from vcpd.protocol.nonlinear.suffix import bit_lt_terms

P = FIELD.p


class _Constants:
    """The part of OnlineParty that the linear layer uses: shares of public constants."""

    def __init__(self, party: int, alpha_share: int) -> None:
        self.party = party
        self.alpha = alpha_share

    def constant(self, c: FieldArray | int, length: int | None = None) -> Shares:
        if not isinstance(c, FieldArray):
            assert length is not None
            c = FIELD.constant(c, length)
        values = c if self.party == 0 else FIELD.zeros(len(c))
        return Shares(values, c * self.alpha)


def _old_terms(online: _Constants, c: np.ndarray, r: Shares, sign_bit: Shares, rho: Shares, m: int, n: int) -> Shares:
    """The linear layer as bit_lt_product computed it before (field additions)."""
    r3 = r + r + r
    signed3 = choose([r3, -r3], c)
    running = -(sign_bit + sign_bit)
    partial: list[Shares] = [running] * (m + 1)
    for i in range(m - 1, -1, -1):
        partial[i] = running
        running = running + rows(signed3, [i], n)
    partial[m] = running
    e = Shares.concat([r + Shares.concat(partial[:m]), partial[m]])
    above = np.cumsum(c[::-1].astype(np.int64), axis=0)[::-1]
    strictly_above = np.concatenate([above[1:], np.zeros((1, n), np.int64)])
    offsets = np.concatenate([1 - c.astype(np.int64) + 3 * strictly_above, 3 * above[:1]])
    e = add_small(online.constant, e, offsets)
    return Shares.concat([e, rho])


def _check_terms(m: int, n: int, c: np.ndarray, parties: int = 3) -> None:
    dealer = Dealer(parties)
    r = dealer.share(FIELD.from_ints((np.frombuffer(os.urandom(m * n), np.uint8) & 1).astype(np.int64)))
    sign = dealer.share(FIELD.from_ints((np.frombuffer(os.urandom(n), np.uint8) & 1).astype(np.int64)))
    rho = dealer.share(FIELD.random(n))
    for i in range(parties):
        online = _Constants(i, dealer.alphas[i])
        new = bit_lt_terms(online, c, r[i], sign[i], rho[i], m, n)  # type: ignore[arg-type]
        old = _old_terms(online, c, r[i], sign[i], rho[i], m, n)
        assert new.equals(old), (m, n, i)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 70), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_terms_match_old_formula(m: int, n: int, seed: int) -> None:
    c = np.random.default_rng(seed).integers(0, 2, size=(m, n), dtype=np.uint8)
    _check_terms(m, n, c)


def test_terms_edge_bits_and_blocks() -> None:
    """All-zero and all-one c, and a width that spans several row blocks."""
    for m, n in ((64, 3), (65, 1)):
        _check_terms(m, n, np.zeros((m, n), np.uint8))
        _check_terms(m, n, np.ones((m, n), np.uint8))
    m, n = 64, 1500  # 32768 // 1500 = 21 rows per block: four blocks, numpy words
    _check_terms(m, n, np.random.default_rng(7).integers(0, 2, size=(m, n), dtype=np.uint8), parties=2)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 11), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_product_tree_multiplies_all_rows(count: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = [int(v) for v in rng.integers(0, 2**62, size=count * n)]
    values[: n // 2] = [0, P - 1, 1][: n // 2]  # edge values in the first row
    dealer = Dealer(2)
    x = dealer.ints(values)
    need = cost.cost_product_tree(n, count)
    pools = dealer.material(need.tuples)

    async def body(i: int, online: OnlineParty) -> Shares:
        return await run(online, product_tree(x[i], count, n, pools[i]))

    results, stats = trio.run(run_parties, dealer, body)
    expected = [1] * n
    for row in range(count):
        for j in range(n):
            expected[j] = expected[j] * values[row * n + j] % P
    assert opened(results, 2).to_ints() == expected
    assert all(pool.used() == need.tuples for pool in pools)
    assert stats[0].open_rounds == need.rounds
