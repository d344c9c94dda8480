"""Fixed point in programs: sfix/cfix arithmetic, error bounds, comparisons, encodings.

The stated error bounds (see ``vcpd.services.executor.fixed``), in ulps of
2^−f against the exact result of the fixed-point operands: + and − exact;
sfix·sfix < 1 ulp (probabilistic truncation); sfix/sfix and 1/sfix < 2 ulps;
division by a public number < 1 ulp (+ a negligible term); dot products < 1
ulp; comparisons exact. Programs run on real executors over the in-memory
hub, inputs are uploaded with the ``fixed`` encoding where that matters.
"""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from exec_harness import ExecVC, new_key, open_exec_vc
from test_examples import VcClient, open_real_vc

PROLOGUE = "listen(10000)\ns = regint()\nacceptclientconnection(s, 10000)\n"
F = 16


async def run(
    vc: ExecVC, source: str, values: list[list[int]], output: str = "reveal", *, fraction_bits: int | None = F
) -> Any:
    key = new_key()
    if fraction_bits is None:
        inputs = [vc.secret(v, key) for v in values]
    else:
        inputs = [vc.secret(v, key, encoding="fixed", fraction_bits=fraction_bits) for v in values]
    return await vc.client(key).run_program(PROLOGUE + source, inputs=inputs, output=output)


def raw(x: float, f: int = F) -> int:
    return round(x * (1 << f))


def ulps(got: int, exact: Fraction, f: int = F) -> float:
    """|got·2^−f − exact| in ulps (2^−f)."""
    return float(abs(Fraction(got, 1 << f) - exact) * (1 << f))


def operands(seed: int, n: int) -> tuple[list[int], list[int]]:
    rng = random.Random(seed)
    xs = [raw(rng.uniform(-100, 100)) for _ in range(n)]
    ys = [raw(rng.choice([-1, 1]) * rng.uniform(0.5, 100)) for _ in range(n)]
    return xs, ys


ARITHMETIC = """
a = sfix.read_from_socket(s, 1, size=N)
b = sfix.read_from_socket(s, 1, size=N)
sfix.write_to_socket(s, a + b)
sfix.write_to_socket(s, a - b)
sfix.write_to_socket(s, a * b)
sfix.write_to_socket(s, a / b)
sfix.write_to_socket(s, 1 / b)
sfix.write_to_socket(s, a / 3)
sfix.write_to_socket(s, a * 0.1)
sfix.write_to_socket(s, a * 3)
"""


@pytest.mark.parametrize("parties", [2, 3])
async def test_arithmetic_is_within_the_stated_error_bounds(tmp_path: Path, parties: int) -> None:
    n = 24
    xs, ys = operands(parties, n)
    async with open_exec_vc(tmp_path, parties) as vc:
        result = await run(vc, f"N = {n}\n" + ARITHMETIC, [xs, ys])
        add, sub, mul, div, rec, third, tenth, triple = (list(v) for v in result.values)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            a, b = Fraction(x, 1 << F), Fraction(y, 1 << F)
            assert add[i] == x + y and sub[i] == x - y and triple[i] == 3 * x  # exact
            assert ulps(mul[i], a * b) < 1
            assert ulps(div[i], a / b) < 2
            assert ulps(rec[i], 1 / b) < 2
            assert ulps(third[i], a / 3) < 1.001
            assert ulps(tenth[i], a * Fraction(raw(0.1), 1 << F)) < 1
        # sfix·sfix is one Beaver product and one TruncPr: two rounds, no more
        assert result.stats[0]["reservations"] == 1


async def test_comparisons_of_fixed_point_values_are_exact(tmp_path: Path) -> None:
    top, bottom = 2**30 - 1, -(2**30)  # the sfix range for k = 31: [−2^14, 2^14 − 2^−16]
    xs = [bottom, bottom, top, -1, 0, 1, raw(2.5), raw(-2.5), raw(3.0)]
    ys = [top, bottom, bottom, 0, 0, 0, raw(2.5), raw(2.5), raw(2.9999)]
    source = f"""
a = sfix.read_from_socket(s, 1, size={len(xs)})
b = sfix.read_from_socket(s, 1, size={len(xs)})
sint.write_to_socket(s, a < b)
sint.write_to_socket(s, a <= b)
sint.write_to_socket(s, a > b)
sint.write_to_socket(s, a >= b)
sint.write_to_socket(s, a == b)
sint.write_to_socket(s, a != b)
sint.write_to_socket(s, a < 2.75)
sint.write_to_socket(s, 0 < a)
sfix.write_to_socket(s, a.max(b))
sfix.write_to_socket(s, abs(a))
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [xs, ys])
        pairs = list(zip(xs, ys, strict=True))
        assert [list(v) for v in result.values] == [
            [int(x < y) for x, y in pairs],
            [int(x <= y) for x, y in pairs],
            [int(x > y) for x, y in pairs],
            [int(x >= y) for x, y in pairs],
            [int(x == y) for x, y in pairs],
            [int(x != y) for x, y in pairs],
            [int(x < raw(2.75)) for x in xs],
            [int(0 < x) for x in xs],
            [max(x, y) for x, y in pairs],
            [abs(x) for x in xs],
        ]


async def test_conversions_between_sint_and_sfix(tmp_path: Path) -> None:
    values = [7, -7, 0, 12345, -1]
    source = f"""
x = sint.read_from_socket(s, 1, size={len(values)})
y = sfix(x) / 2
sint.write_to_socket(s, sint(y))
sint.write_to_socket(s, y.v)
sfix.write_to_socket(s, x / 4)
sfix.write_to_socket(s, x + 0.5)
sint.write_to_socket(s, sint(sfix(x) * 0.25 - 0.125))
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [values], fraction_bits=None)
        floor_half, raw_half, quarter, plus_half, floored = (list(v) for v in result.values)
        assert floor_half == [x // 2 for x in values]  # sint(sfix) rounds toward −∞
        assert raw_half == [raw(x / 2) for x in values]
        assert quarter == [raw(x / 4) for x in values]
        assert plus_half == [raw(x + 0.5) for x in values]
        assert floored == [(2 * x - 1) // 8 for x in values]


async def test_fixed_inputs_and_outputs_keep_their_encodings(tmp_path: Path) -> None:
    source = """
a = sfix.read_from_socket(s, 2)
b = sfix.read_from_socket(s, 1)
c = sfix.read_from_socket(s, 1)
sfix.write_to_socket(s, [a[0] + a[1], b, c])
sint.write_to_socket(s, [a[0] < a[1]])
cfix.write_to_socket(s, [cfix(0.75)])
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        key = new_key()
        inputs = [
            vc.secret([raw(1.25), raw(-3.5)], key, encoding="fixed", fraction_bits=16),
            vc.secret([7], key),  # int64: read as the integer 7
            vc.secret([raw(0.5, 8)], key, encoding="fixed", fraction_bits=8),  # rescaled to f = 16
        ]
        result = await vc.client(key).run_program(PROLOGUE + source, inputs=inputs)
        reals, flag, public = result.secrets
        assert vc.registry.value(reals) == [raw(-2.25), raw(7), raw(0.5)]
        assert vc.registry.result_encoding[reals].kind == "fixed"
        assert vc.registry.result_encoding[reals].fraction_bits == 16
        assert vc.registry.value(flag) == [0]
        assert vc.registry.result_encoding[flag].kind == "int64"  # a comparison is an integer
        assert vc.registry.value(public) == [raw(0.75)]
        assert vc.registry.result_encoding[public].fraction_bits == 16


async def test_more_input_fraction_bits_than_sfix_is_refused(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        with pytest.raises(Exception) as info:
            await run(vc, "a = sfix.read_from_socket(s, 1)\n", [[raw(1.0, 20)]], fraction_bits=20)
        assert "sfix.set_precision(20" in str(info.value)


async def test_set_precision_changes_the_resolution(tmp_path: Path) -> None:
    f = 20
    rng = random.Random(4)
    xs = [raw(rng.uniform(-50, 50), f) for _ in range(10)]
    ys = [raw(rng.choice([-1, 1]) * rng.uniform(1, 50), f) for _ in range(10)]
    source = f"""
sfix.set_precision({f}, 28)
a = sfix.read_from_socket(s, 1, size=10)
b = sfix.read_from_socket(s, 1, size=10)
sfix.write_to_socket(s, a * b)
sfix.write_to_socket(s, a / b)
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [xs, ys], fraction_bits=f)
        mul, div = (list(v) for v in result.values)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            a, b = Fraction(x, 1 << f), Fraction(y, 1 << f)
            assert ulps(mul[i], a * b, f) < 1
            assert ulps(div[i], a / b, f) < 2


async def test_a_precision_too_wide_for_exact_division_is_refused(tmp_path: Path) -> None:
    source = "sfix.set_precision(24, 40)\na = sfix.read_from_socket(s, 2)\nb = a[0] * a[1]\nc = a[0] / a[1]\n"
    async with open_exec_vc(tmp_path, 2) as vc:
        with pytest.raises(Exception) as info:
            await run(vc, source, [[raw(1.0, 24), raw(3.0, 24)]], fraction_bits=24)
        assert "line 7" in str(info.value) and "2k + f ≤ 78" in str(info.value)
        assert vc.dealer.counts == {}  # refused while the program was written, before any round


async def test_public_fixed_point_and_printing(tmp_path: Path) -> None:
    source = """
x = sfix.read_from_socket(s, 1)
y = x.reveal()
c = cfix(1.5)
print_ln('%s %s %s %s', y, c * 2, c / 4, y > c)
print_ln('%s', x)
print_ln('%s', (x * c).reveal())
cfix.write_to_socket(s, [y + c])
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [[raw(2.25)]])
        assert result.log == ("2.25 3 0.375 1", "<secret>", "3.375")
        assert result.values == ((raw(3.75),),)


async def test_arrays_dot_products_and_min_of_sfix(tmp_path: Path) -> None:
    xs = [raw(v) for v in (1.5, -2.25, 3.0, 0.125)]
    ys = [raw(v) for v in (2.0, 4.0, -1.0, 8.0)]
    source = """
a = Array.create_from(sfix.read_from_socket(s, 4))
b = sfix.Array(4)
for i in range(4):
    b[i] = sfix.read_from_socket(s, 1)
c = a * b
sfix.write_to_socket(s, [sum(a), sfix.dot_product(a, b), a.dot(b), min(a), max(b), c[1]])
sfix.write_to_socket(s, c)
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [xs + ys])
        scalars, products = (list(v) for v in result.values)
        dot = sum(Fraction(x * y, 1 << (2 * F)) for x, y in zip(xs, ys, strict=True))
        assert scalars[0] == sum(xs)
        assert ulps(scalars[1], dot) < 1 and ulps(scalars[2], dot) < 1
        assert scalars[3] == min(xs) and scalars[4] == max(ys)
        assert products == [x * y >> F for x, y in zip(xs, ys, strict=True)]  # exact here
        assert scalars[5] == products[1]


async def test_sfix_through_the_real_secret_store_shows_floats(tmp_path: Path) -> None:
    source = """
v = sfix.read_from_socket(s, 3)
mean = (v[0] + v[1] + v[2]) / 3
sfix.write_to_socket(s, [mean, v[0] * v[1]])
sint.write_to_socket(s, [v[0] < v[1]])
"""
    async with open_real_vc(tmp_path, 2) as (vc, _):
        client = VcClient(vc, new_key())
        x = await client.create_secret([1.5, -0.25, 10.0], encoding="fixed", fraction_bits=16)
        result = await client.run_program(PROLOGUE + source, inputs=[x])
        reals, flag = result.secrets
        got = await client.get_secret(reals)
        assert got.encoding == "fixed" and got.fraction_bits == 16
        assert abs(got.values[0] - 11.25 / 3) <= 2**-16 and abs(got.values[1] + 0.375) <= 2**-16
        assert (await client.get_secret(flag)).values == [0]
