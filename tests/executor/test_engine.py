"""The lazy engine: round merging by depth, one reservation per flush, vectors.

Programs run on real executors over the in-memory hub (real OnlineParty,
SQLite stores, dealer tuples); the assertions look at the engine's and the
online phase's statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from exec_harness import FIELD, ExecVC, new_key, open_exec_vc

PROLOGUE = "listen(10000)\ns = regint()\nacceptclientconnection(s, 10000)\n"


async def run(vc: ExecVC, source: str, values: list[list[int]], output: str = "secrets") -> Any:
    key = new_key()
    inputs = [vc.secret(v, key) for v in values]
    return await vc.client(key).run_program(PROLOGUE + source, inputs=inputs, output=output)


async def test_thousand_independent_products_in_a_python_loop_take_one_round(tmp_path: Path) -> None:
    xs, ys = list(range(-500, 500)), [3 * i + 1 for i in range(1000)]
    source = """
a = Array.create_from(sint.read_from_socket(s, 1000))
b = Array.create_from(sint.read_from_socket(s, 1000))
c = Array(1000, sint)
for i in range(1000):
    c[i] = a[i] * b[i]
sint.write_to_socket(s, c)
"""
    async with open_exec_vc(tmp_path, 3) as vc:
        result = await run(vc, source, [xs, ys])
        assert vc.registry.value(result.secrets[0]) == [x * y for x, y in zip(xs, ys, strict=True)]
        for stats in result.stats:
            assert stats["mul_rounds"] == 1
            assert stats["open_rounds"] == 1  # the one Beaver round; nothing else was opened
            assert stats["multiplications"] == 1000
            assert stats["reservations"] == 1
            assert stats["tuples"] == {"triple": 1000}
            assert stats["mac_checks"] == 1
        assert list(vc.dealer.counts.values()) == [{"triple": 1000}]


@pytest.mark.parametrize(
    ("expression", "depth"),
    [
        ("((x * y) * z) * w", 3),
        ("(x * y) * (z * w)", 2),
        ("tree_reduce(lambda p, q: p * q, [x, y, z, w])", 2),
        ("x * y + z * w + (x + 1) * (w - 2)", 1),
    ],
)
async def test_products_take_one_round_per_multiplicative_depth(tmp_path: Path, expression: str, depth: int) -> None:
    source = f"x, y, z, w = sint.read_from_socket(s, 4)\nr = {expression}\nsint.write_to_socket(s, [r])\n"
    values = [3, -4, 5, 7]
    x, y, z, w = values
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [values])
        assert vc.registry.value(result.secrets[0]) == [eval(expression, {"tree_reduce": _tree}, locals())]
        assert result.stats[0]["mul_rounds"] == depth
        assert result.stats[0]["reservations"] == 1


def _tree(fn: Any, items: list[int]) -> int:
    while len(items) > 1:
        items = [fn(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)] + (
            items[-1:] if len(items) % 2 else []
        )
    return items[0]


async def test_whole_array_product_is_one_vector_operation(tmp_path: Path) -> None:
    n = 50_000
    xs = [(i * 7919) % 100_003 - 50_000 for i in range(n)]
    ys = [(i * 104_729) % 99_991 - 40_000 for i in range(n)]
    source = f"""
a = Array.create_from(sint.read_from_socket(s, {n}))
b = Array.create_from(sint.read_from_socket(s, {n}))
sint.write_to_socket(s, a * b)
sint.write_to_socket(s, [sint.dot_product(a, b)])
"""
    async with open_exec_vc(tmp_path, 3) as vc:
        result = await run(vc, source, [xs, ys])
        assert vc.registry.value(result.secrets[0]) == [x * y for x, y in zip(xs, ys, strict=True)]
        assert vc.registry.value(result.secrets[1]) == [sum(x * y for x, y in zip(xs, ys, strict=True))]
        stats = result.stats[0]
        assert stats["mul_rounds"] == 1 and stats["open_rounds"] == 1
        assert stats["multiplications"] == 2 * n
        assert stats["steps"] < 10 * n  # element operations are charged, not per-node Python work


async def test_reveals_merge_into_the_rounds_and_share_one_mac_check(tmp_path: Path) -> None:
    source = """
x, y, z = sint.read_from_socket(s, 3)
a = x.reveal()
b = (y * z).reveal()
c = (x + y).reveal()
print_ln("%s %s %s", a, b, c)
"""
    async with open_exec_vc(tmp_path, 3) as vc:
        result = await run(vc, source, [[4, -6, 9]], output="reveal")
        assert result.log == ("4 -54 -2",)
        stats = result.stats[0]
        # x and x+y open with the product's round; y*z the round after; one check for all
        assert stats["open_rounds"] == 2
        assert stats["mul_rounds"] == 1
        assert stats["mac_checks"] == 1
        assert stats["reveals"] == 3


async def test_a_python_decision_on_a_revealed_value_flushes_the_graph(tmp_path: Path) -> None:
    source = """
x, y = sint.read_from_socket(s, 2)
p = x * y
if p.reveal() > 10:
    q = p * x
else:
    q = p * y
sint.write_to_socket(s, [q])
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [[3, 5]])
        assert vc.registry.value(result.secrets[0]) == [45]
        stats = result.stats[0]
        assert stats["reservations"] == 2  # one per flush
        assert stats["flushes"] == 2
        assert sorted(c["triple"] for c in vc.dealer.counts.values()) == [1, 1]


async def test_long_chains_of_linear_operations_evaluate_without_recursion(tmp_path: Path) -> None:
    source = """
x = sint.read_from_socket(s, 1)
total = sint(0)
for i in range(30000):
    total = total + x
sint.write_to_socket(s, [total * x])
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [[3]])
        assert vc.registry.value(result.secrets[0]) == [30000 * 9]


async def test_unused_products_still_run_so_every_vcp_does_the_same(tmp_path: Path) -> None:
    source = "x, y = sint.read_from_socket(s, 2)\nunused = x * y\nsint.write_to_socket(s, [x + y])\n"
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [[2, 3]])
        assert vc.registry.value(result.secrets[0]) == [5]
        assert result.stats[0]["multiplications"] == 1


async def test_public_constants_and_signed_values_round_trip(tmp_path: Path) -> None:
    source = """
x = sint.read_from_socket(s, 1)
sint.write_to_socket(s, [x * -1, 5 - x, x - 5, -x + cint(-3), sint(-7), x * (2**62)])
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, source, [[11]], output="reveal")
        assert result.values == ((-11, -6, 6, -14, -7, 11 * 2**62),)
        assert FIELD.p > 11 * 2**62
