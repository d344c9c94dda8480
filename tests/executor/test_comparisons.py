"""Secret comparisons, equality, shifts, reductions, division and bits in programs.

Every program runs on real executors over the in-memory hub (real
OnlineParty, SQLite stores, dealer tuples). Results are checked against
Python on random signed 64-bit inputs and the boundary values −2^63, −1, 0,
1, 2^63 − 1; the round counts and the single reservation per flush are
checked against the protocols' cost functions (:mod:`vcpd.protocol.nonlinear.cost`):
what a flush reserves is exactly what its operations draw.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from exec_harness import ExecVC, new_key, open_exec_vc

from vcpd.protocol.nonlinear import cost, plans

PROLOGUE = "listen(10000)\ns = regint()\nacceptclientconnection(s, 10000)\n"
BOUNDARY = [-(2**63), -1, 0, 1, 2**63 - 1]
KAPPA = 40


async def run(vc: ExecVC, source: str, values: list[list[int]], output: str = "reveal") -> Any:
    key = new_key()
    inputs = [vc.secret(v, key) for v in values]
    return await vc.client(key).run_program(PROLOGUE + source, inputs=inputs, output=output)


def add(*parts: dict[str, int]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for kind, count in part.items():
            if count:
                total[kind] = total.get(kind, 0) + count
    return total


def pairs(seed: int, extra: int = 15) -> tuple[list[int], list[int]]:
    """Every pair of boundary values, equal pairs, and random 64-bit pairs."""
    rng = random.Random(seed)
    xs = [a for a in BOUNDARY for _ in BOUNDARY]
    ys = [b for _ in BOUNDARY for b in BOUNDARY]
    for _ in range(extra):
        x = rng.randrange(-(2**63), 2**63)
        xs.append(x)
        ys.append(x if rng.random() < 0.3 else rng.randrange(-(2**63), 2**63))
    return xs, ys


COMPARISONS = """
a = sint.read_from_socket(s, 1, size=N)
b = sint.read_from_socket(s, 1, size=N)
sint.write_to_socket(s, a < b)
sint.write_to_socket(s, a <= b)
sint.write_to_socket(s, a > b)
sint.write_to_socket(s, a >= b)
sint.write_to_socket(s, a == b)
sint.write_to_socket(s, a != b)
"""


@pytest.mark.parametrize("parties", [2, 3])
async def test_every_comparison_matches_python_on_64_bit_boundaries(tmp_path: Path, parties: int) -> None:
    xs, ys = pairs(parties)
    n = len(xs)
    async with open_exec_vc(tmp_path, parties) as vc:
        result = await run(vc, f"N = {n}\n" + COMPARISONS, [xs, ys])
        expected = [
            [int(x < y) for x, y in zip(xs, ys, strict=True)],
            [int(x <= y) for x, y in zip(xs, ys, strict=True)],
            [int(x > y) for x, y in zip(xs, ys, strict=True)],
            [int(x >= y) for x, y in zip(xs, ys, strict=True)],
            [int(x == y) for x, y in zip(xs, ys, strict=True)],
            [int(x != y) for x, y in zip(xs, ys, strict=True)],
        ]
        assert [list(v) for v in result.values] == expected
        # The four LTZ (65 bits) merge into one vector program, the two EQZ into another;
        # both run side by side, and the reveal of the outputs follows in the next round.
        ltz = cost.cost_ltz(4 * n, 65, KAPPA, "tree")
        eqz = cost.cost_eqz(2 * n, 64, KAPPA)
        needs = add(ltz.needs, eqz.needs)
        for stats in result.stats:
            assert stats["reservations"] == 1 and stats["flushes"] == 1
            assert stats["open_rounds"] == max(ltz.rounds, eqz.rounds) + 1
            assert stats["tuples"] == needs
            assert stats["nonlinear"] == 6 * n
        assert list(vc.dealer.counts.values()) == [needs]  # reserved once, all of it used


async def test_comparisons_with_public_values_and_chained_logic(tmp_path: Path) -> None:
    xs = [*BOUNDARY, 5, -7, 42]
    source = f"""
x = sint.read_from_socket(s, 1, size={len(xs)})
sint.write_to_socket(s, x < 0)
sint.write_to_socket(s, 0 <= x)
sint.write_to_socket(s, x == -1)
sint.write_to_socket(s, cint(5) > x)
sint.write_to_socket(s, x != regint(42))
sint.write_to_socket(s, x >= 2**63 - 1)
both = (x > -10) & (x < 10)
either = (x < -10) | (x > 10)
sint.write_to_socket(s, both)
sint.write_to_socket(s, either ^ 1)
sint.write_to_socket(s, ~both)
sint.write_to_socket(s, both.if_else(x * 2, x - 1))
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [xs])
        both = [int(-10 < x < 10) for x in xs]
        assert [list(v) for v in result.values] == [
            [int(x < 0) for x in xs],
            [int(0 <= x) for x in xs],
            [int(x == -1) for x in xs],
            [int(5 > x) for x in xs],
            [int(x != 42) for x in xs],
            [int(x >= 2**63 - 1) for x in xs],
            both,
            [1 - int(x < -10 or x > 10) for x in xs],
            [1 - b for b in both],
            [x * 2 if b else x - 1 for x, b in zip(xs, both, strict=True)],
        ]


async def test_scalar_comparisons_in_a_python_loop_are_one_vector_program(tmp_path: Path) -> None:
    rng = random.Random(7)
    n = 24
    xs = [rng.randrange(-(2**63), 2**63) for _ in range(n)]
    ys = [rng.randrange(-(2**63), 2**63) for _ in range(n)]
    source = f"""
a = Array.create_from(sint.read_from_socket(s, {n}))
b = Array.create_from(sint.read_from_socket(s, {n}))
c = Array({n}, sint)
for i in range({n}):
    c[i] = a[i] < b[i]
sint.write_to_socket(s, c)
"""
    async with open_exec_vc(tmp_path, 3) as vc:
        result = await run(vc, source, [xs, ys], output="secrets")
        assert vc.registry.value(result.secrets[0]) == [int(x < y) for x, y in zip(xs, ys, strict=True)]
        one = cost.cost_ltz(1, 65, KAPPA, "tree")
        for stats in result.stats:
            assert stats["open_rounds"] == one.rounds  # n comparisons cost the rounds of one
            assert stats["reservations"] == 1
            assert stats["tuples"] == add(cost.cost_ltz(n, 65, KAPPA, "tree").needs)


async def test_independent_comparison_and_equality_share_rounds(tmp_path: Path) -> None:
    source = """
a, b, c, d = sint.read_from_socket(s, 4)
lt = a < b
eq = c == d
sint.write_to_socket(s, [lt, eq, lt * eq])
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [[3, 9, 4, 4]], output="secrets")
        assert vc.registry.value(result.secrets[0]) == [1, 1, 1]
        ltz, eqz = cost.cost_ltz(1, 65, KAPPA, "tree"), cost.cost_eqz(1, 64, KAPPA)
        stats = result.stats[0]
        assert eqz.rounds < ltz.rounds
        assert stats["open_rounds"] == ltz.rounds + 1  # side by side, then the product
        assert stats["tuples"] == add(ltz.needs, eqz.needs, {"triple": 1})


async def test_a_large_vector_comparison_uses_the_product_bitlt(tmp_path: Path) -> None:
    rng = random.Random(11)
    n = 300  # from 256 elements on, auto picks Toft's product (fewer triples)
    xs = [rng.randrange(-(2**63), 2**63) for _ in range(n)]
    ys = [rng.randrange(-(2**63), 2**63) for _ in range(n)]
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, f"N = {n}\n" + COMPARISONS.split("sint.write_to_socket(s, a <= b)")[0], [xs, ys])
        assert list(result.values[0]) == [int(x < y) for x, y in zip(xs, ys, strict=True)]
        method = cost.resolve_bitlt("auto", n, 64)
        assert method == "product"
        assert result.stats[0]["tuples"] == add(cost.cost_ltz(n, 65, KAPPA, method).needs)


# ---------------------------------------------------------------- shifts, reductions, bits


async def test_shifts_reductions_min_max_abs_match_python(tmp_path: Path) -> None:
    rng = random.Random(3)
    xs = [*BOUNDARY, *(rng.randrange(-(2**63), 2**63) for _ in range(6)), -5, 5, 1000]
    ys = [*reversed(BOUNDARY), *(rng.randrange(-(2**63), 2**63) for _ in range(6)), 3, -3, 1000]
    n = len(xs)
    source = f"""
x = sint.read_from_socket(s, 1, size={n})
y = sint.read_from_socket(s, 1, size={n})
sint.write_to_socket(s, x % 2**16)
sint.write_to_socket(s, x % 2)
sint.write_to_socket(s, x >> 1)
sint.write_to_socket(s, x >> 40)
sint.write_to_socket(s, x >> 70)
sint.write_to_socket(s, (x >> 8) << 8)
sint.write_to_socket(s, x.min(y))
sint.write_to_socket(s, x.max(y))
sint.write_to_socket(s, abs(x))
sint.write_to_socket(s, min(x, y, 0))
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [xs, ys])
        assert [list(v) for v in result.values] == [
            [x % 2**16 for x in xs],
            [x % 2 for x in xs],
            [x >> 1 for x in xs],
            [x >> 40 for x in xs],
            [x >> 70 for x in xs],
            [(x >> 8) << 8 for x in xs],
            [min(x, y) for x, y in zip(xs, ys, strict=True)],
            [max(x, y) for x, y in zip(xs, ys, strict=True)],
            [abs(x) for x in xs],  # |−2^63| = 2^63 exactly
            [min(x, y, 0) for x, y in zip(xs, ys, strict=True)],
        ]


async def test_bit_decomposition_and_composition(tmp_path: Path) -> None:
    xs = [*BOUNDARY, 12345, -12345]
    source = f"""
x = sint.read_from_socket(s, 1, size={len(xs)})
bits = x.bit_decompose()
sint.write_to_socket(s, bits)
sint.write_to_socket(s, sint.bit_compose(bits[:8]))
low = x.bit_decompose(4)
sint.write_to_socket(s, low[0] ^ low[1])
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [xs])
        values = [list(v) for v in result.values]
        assert values[0] == [(x >> i) & 1 for i in range(64) for x in xs]  # bit i of every element, LSB first
        assert values[1] == [x % 256 for x in xs]
        assert values[2] == [(x & 1) ^ ((x >> 1) & 1) for x in xs]
        stats = result.stats[0]
        full = cost.cost_bit_decompose(len(xs), 64, KAPPA).needs  # 4 low bits: of a full decomposition
        assert stats["tuples"] == add(full, full, {"triple": len(xs)})


# ---------------------------------------------------------------- division


@pytest.mark.parametrize("parties", [2, 3])
async def test_division_by_public_values_is_python_floor_division(tmp_path: Path, parties: int) -> None:
    rng = random.Random(5 + parties)
    xs = [*BOUNDARY, *(rng.randrange(-(2**63), 2**63) for _ in range(5)), -7, 7, 6, -6]
    divisors = [7, -3, 10, 1000003, 16, -1]
    source = f"x = sint.read_from_socket(s, 1, size={len(xs)})\n"
    for d in divisors:
        source += f"sint.write_to_socket(s, x // {d})\nsint.write_to_socket(s, x % {d})\n"
    async with open_exec_vc(tmp_path, parties) as vc:
        result = await run(vc, source, [xs])
        values = [list(v) for v in result.values]
        for i, d in enumerate(divisors):
            assert values[2 * i] == [x // d for x in xs], d
            assert values[2 * i + 1] == [x % d for x in xs], d
        expected = add(  # x // d and x % d = x - d·(x // d) share one division
            *(plans.cost_div_public(2 * len(xs), 64, d, KAPPA, "tree").needs for d in (7, -3, 10, 1000003)),
            cost.cost_trunc(len(xs), 64, 4, KAPPA, "tree").needs,
            cost.cost_mod2m(len(xs), 64, 4, KAPPA, "tree").needs,
        )
        assert result.stats[0]["tuples"] == expected


async def test_division_by_secret_values(tmp_path: Path) -> None:
    rng = random.Random(9)
    xs = [-(2**31), 2**31 - 1, 0, -1, 1, 100, -100, *(rng.randrange(-(2**31), 2**31) for _ in range(5))]
    ys = [7, -3, 5, 2**31 - 1, -(2**31), 9, 9, *(rng.choice([-1, 1]) * rng.randrange(1, 2**20) for _ in range(5))]
    source = f"""
program.set_bit_length(32)
x = sint.read_from_socket(s, 1, size={len(xs)})
y = sint.read_from_socket(s, 1, size={len(xs)})
sint.write_to_socket(s, x // y)
sint.write_to_socket(s, x % y)
sint.write_to_socket(s, x.int_div(y))
sint.write_to_socket(s, 100 // y)
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [xs, ys])
        quotients = [x // y for x, y in zip(xs, ys, strict=True)]
        assert [list(v) for v in result.values] == [
            quotients,
            [x % y for x, y in zip(xs, ys, strict=True)],
            quotients,
            [100 // y for y in ys],
        ]


async def test_secret_division_needs_a_small_bit_length(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        key = new_key()
        with pytest.raises(Exception) as info:
            await vc.client(key).run_program(
                PROLOGUE + "x, y = sint.read_from_socket(s, 2)\nz = x // y\n", inputs=[vc.secret([7, 2], key)]
            )
        assert "set_bit_length" in str(info.value)
        assert vc.dealer.counts == {}  # refused before anything was reserved


# ---------------------------------------------------------------- bit length and randomness


async def test_a_smaller_bit_length_makes_comparisons_cheaper(tmp_path: Path) -> None:
    source = """
program.set_bit_length(16)
a, b, c, d = sint.read_from_socket(s, 4)
sint.write_to_socket(s, [a < b, c.less_than(d, 8), c.equal(d, 8)])
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [[-(2**15), 2**15 - 1, -128, 127]])
        assert result.values == ((1, 1, 0),)
        needs = add(cost.cost_ltz(1, 17, KAPPA, "tree").needs, cost.cost_ltz(1, 9, KAPPA, "tree").needs,
                    cost.cost_eqz(1, 8, KAPPA).needs)
        assert result.stats[0]["tuples"] == needs


async def test_a_bit_length_beyond_the_field_is_refused(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        key = new_key()
        with pytest.raises(Exception) as info:
            await vc.client(key).run_program(PROLOGUE + "program.set_bit_length(100)\n")
        assert "fit" in str(info.value) or "field" in str(info.value)


async def test_random_bits_and_integers_come_from_bit_tuples(tmp_path: Path) -> None:
    source = """
bits = sint.get_random_bit(size=200)
small = sint.get_random_int(8, size=50)
one = sint.get_random_bit()
sint.write_to_socket(s, bits)
sint.write_to_socket(s, small)
sint.write_to_socket(s, [one, bits[0] & one])
"""
    async with open_exec_vc(tmp_path, 3) as vc:
        result = await run(vc, source, [])
        bits, small, last = (list(v) for v in result.values)
        assert set(bits) == {0, 1}  # 200 random bits: both values occur
        assert all(0 <= v < 256 for v in small) and len(set(small)) > 10
        assert last[0] in (0, 1) and last[1] == bits[0] * last[0]
        for stats in result.stats:
            assert stats["tuples"] == {"bit": 200 + 8 * 50 + 1, "triple": 1}
            assert stats["open_rounds"] == 2  # the product, then the reveal; random bits need no round
        assert list(vc.dealer.counts.values()) == [{"bit": 601, "triple": 1}]
