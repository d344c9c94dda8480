"""Active security of the non-linear protocols: a lie in any opening is caught.

A VCP that adds an error to its share of any value opened inside a
non-linear subprotocol — the masked value of an LTZ, a Beaver opening deep
in its carry tree, the second stage of an EQZ, a TruncPr, a division stage —
makes the next MAC check fail on every honest VCP (``MacCheckFailure``),
whichever round it picks. Also: the masked openings do not depend on the
secret beyond statistical distance (they look uniform in the low bits).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from test_nonlinear_harness import FIELD, P, Dealer, random_signed, run_parties

from vcpd.errors import MacCheckFailure
from vcpd.protocol import OnlineParty
from vcpd.protocol.nonlinear import cost, div_public, eqz, fx_div, int_div, ltz, plans, trunc_pr
from vcpd.testing import open_memory_transports


def tamper_opening(step: str, src: int, dst: int, delta: int = 1) -> Callable[..., Any]:
    """``src`` adds ``delta`` to element 0 of its share in opening ``step`` sent to ``dst``."""

    def fn(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and message[2] == step and s == src and d == dst:
            values = FIELD.from_bytes(message[3]).to_ints()
            values[0] = (values[0] + delta) % P
            return (*message[:3], FIELD.from_ints(values).to_bytes())
        return message

    return fn


CASES = [
    # (name, rounds to try, needs, body)
    ("ltz", [0, 2, 5], lambda n: cost.needs_ltz(n, 65), lambda on, x, pool: ltz(on, x, 65, pool)),
    ("ltz-product", [0, 8], lambda n: cost.needs_ltz(n, 65, bitlt="product"),
     lambda on, x, pool: ltz(on, x, 65, pool, bitlt="product")),
    ("eqz", [0, 1, 3], lambda n: cost.needs_eqz(n, 64), lambda on, x, pool: eqz(on, x, 64, pool)),
    ("trunc_pr", [0], lambda n: cost.needs_trunc_pr(n, 64, 16), lambda on, x, pool: trunc_pr(on, x, 64, 16, pool)),
    ("div_public", [0, 1, 3], lambda n: plans.needs_div_public(n, 64, 10),
     lambda on, x, pool: div_public(on, x, 64, 10, pool)),
    ("int_div", [0, 9, 25], lambda n: plans.needs_int_div(n, 20), lambda on, x, pool: int_div(on, x, x, 20, pool)),
    ("fx_div", [4, 12], lambda n: plans.needs_fx_div(n), lambda on, x, pool: fx_div(on, x, x, pool)),
]


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize(("name", "rounds", "needs", "op"), CASES, ids=[c[0] for c in CASES])
async def test_tampered_opening_fails_the_mac_check(
    parties: int, name: str, rounds: list[int], needs: Any, op: Any
) -> None:
    rng = random.Random(name)
    xs = [v or 1 for v in random_signed(12, 20, rng)]
    for round_ in rounds:
        dealer = Dealer(parties)
        sx = dealer.ints(xs)
        pools = dealer.material(needs(len(xs)))
        async with open_memory_transports(parties) as hub:
            hub.tamper(tamper_opening(f"open.{round_}", src=parties - 1, dst=0))
            results, _ = await run_parties(dealer, lambda i, online: op(online, sx[i], pools[i]), hub=hub)
        for i in range(parties):
            assert isinstance(results[i], MacCheckFailure), (name, round_, i, results[i])


async def test_untampered_runs_pass_the_same_checks() -> None:
    dealer = Dealer(3)
    xs = random_signed(12, 20, random.Random(1))
    sx = dealer.ints(xs)
    pools = dealer.material(cost.needs_ltz(len(xs), 20))
    results, _ = await run_parties(dealer, lambda i, online: ltz(online, sx[i], 20, pools[i]))
    assert not any(isinstance(r, Exception) for r in results.values())


async def test_masked_openings_look_uniform() -> None:
    """TruncPr opens c = x + 2^63 + r: below 2^(k+κ+1) (no wrap mod p) and uniform low bits.

    All x are equal here, so any structure in c would come from x.
    """
    dealer = Dealer(2)
    n = 4096
    sx = dealer.ints([-(2**63) + 12345] * n)
    pools = dealer.material(cost.needs_trunc_pr(n, 64, 8))
    shares: dict[int, bytes] = {}

    def spy(s: int, d: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if message[0] == "m" and message[2] == "open.0":
            shares[s] = message[3]
        return message

    async with open_memory_transports(2) as hub:
        hub.tamper(spy)

        async def body(i: int, online: OnlineParty) -> Any:
            return await trunc_pr(online, sx[i], 64, 8, pools[i])

        results, _ = await run_parties(dealer, body, hub=hub)
    assert not any(isinstance(r, Exception) for r in results.values())
    c = (FIELD.from_bytes(shares[0]) + FIELD.from_bytes(shares[1])).to_ints()
    assert max(c) < 1 << (64 + 40 + 1)
    counts = [0] * 256
    for v in c:
        counts[v & 255] += 1
    expected = n / 256
    chi2 = sum((k - expected) ** 2 / expected for k in counts)
    assert chi2 < 400  # 255 degrees of freedom: mean 255, sd ≈ 22.6
