"""The MP-SPDZ-style program library: types, containers, control flow, printing,
the socket shims, what is refused, and that programs cannot reach each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from exec_harness import ExecVC, new_key, open_exec_vc

from vcpd.errors import RequestError

PROLOGUE = "listen(10000)\ns = regint()\nacceptclientconnection(s, 10000)\n"


async def reveal(tmp_path: Path, source: str, *inputs: list[int], prologue: bool = True) -> Any:
    """Run ``source`` on 2 VCPs in reveal mode; the agreed result."""
    async with open_exec_vc(tmp_path, 2) as vc:
        return await _run(vc, source, list(inputs), prologue=prologue)


async def _run(
    vc: ExecVC, source: str, inputs: list[list[int]], *, prologue: bool = True, output: str = "reveal"
) -> Any:
    key = new_key()
    ids = [vc.secret(v, key) for v in inputs]
    return await vc.client(key).run_program((PROLOGUE if prologue else "") + source, inputs=ids, output=output)


async def failure(tmp_path: Path, source: str, *inputs: list[int]) -> RequestError:
    with pytest.raises(RequestError) as info:
        await reveal(tmp_path, source, *inputs)
    return info.value


# ---------------------------------------------------------------- sockets and inputs


async def test_inputs_are_every_element_of_every_input_secret_in_order(tmp_path: Path) -> None:
    source = """
first = sint.read_from_socket(s, 1)
rest = sint.read_from_socket(s, 4)
print_ln("%s %s", first, rest)
sint.write_to_socket(s, rest)
sint.write_to_socket(s, first)
"""
    result = await reveal(tmp_path, source, [10], [20, 30], [40, 50])
    assert result.values == ((20, 30, 40, 50), (10,))
    assert result.log == ("<secret> [<secret>, <secret>, <secret>, <secret>]",)  # n=1: one sint; more: a list


async def test_read_with_size_gives_vectors(tmp_path: Path) -> None:
    source = "a, b = sint.read_from_socket(s, 2, size=3)\nsint.write_to_socket(s, a * b)\nprint_ln('%s', len(a))\n"
    result = await reveal(tmp_path, source, [1, 2, 3, 4, 5, 6])
    assert result.values == ((4, 10, 18),)
    assert result.log == ("3",)


async def test_reading_more_values_than_the_inputs_hold_fails(tmp_path: Path) -> None:
    error = await failure(tmp_path, "v = sint.read_from_socket(s, 3)\n", [1, 2])
    assert error.code == "program-error"
    assert "reads 3 input values" in error.message and "hold 2" in error.message


async def test_socket_shim_variants(tmp_path: Path) -> None:
    source = "listen_for_clients(14000)\nc = accept_client_connection(14000)\nx = sint.read_from_socket(c, 1)\n"
    source += "sint.write_to_socket(c, [x + 1])\ncloseclientconnection(c)\n"
    result = await reveal(tmp_path, source, [41], prologue=False)
    assert result.values == ((42,),)


# ---------------------------------------------------------------- arithmetic and types


async def test_secret_arithmetic_with_public_values(tmp_path: Path) -> None:
    source = """
x, y = sint.read_from_socket(s, 2)
c = cint(10)
r = regint(3)
sint.write_to_socket(s, [x + y, x - y, x * y, -x, x + c, c - x, x * r, r * x, 7 - y, x ** 3, y.square(), x ** 0])
"""
    result = await reveal(tmp_path, source, [6, -4])
    assert result.values == ((2, 10, -24, -6, 16, 4, 18, 18, 11, 216, 16, 1),)


async def test_if_else_selects_obliviously(tmp_path: Path) -> None:
    source = """
bit, other, a, b = sint.read_from_socket(s, 4)
sint.write_to_socket(s, [bit.if_else(a, b), other.if_else(a, b), if_else(bit, a, 5)])
sint.write_to_socket(s, [if_else(1, a, b), if_else(cint(0), a, b)])
x, y = bit.cond_swap(a, b)
sint.write_to_socket(s, [x, y])
"""
    result = await reveal(tmp_path, source, [1, 0, 11, 22])
    assert result.values == ((11, 22, 11), (11, 22), (22, 11))


async def test_cint_arithmetic_is_mod_p_and_prints_signed(tmp_path: Path) -> None:
    source = """
x = sint.read_from_socket(s, 1)
c = x.reveal()
print_ln("%s %s %s %s %s", c, c - 10, c * c, c // 2, -c % 3)
print_ln("%s %s %s", c > 3, c == 5, int(c) + 1)
inverse = cint(1) / c
print_ln("%s", inverse * c)
cint.write_to_socket(s, [c, c + 1])
"""
    result = await reveal(tmp_path, source, [5])
    assert result.log == ("5 -5 25 2 1", "1 1 6", "1")
    assert result.values == ((5, 6),)


async def test_regint_indexes_and_bounds_loops(tmp_path: Path) -> None:
    source = """
a = Array.create_from(sint.read_from_socket(s, 4))
n = regint(2)
t = a[n] + a[regint(0)]
total = MemValue(sint(0))
@for_range(n, 4)
def _(i):
    total.iadd(a[i])
sint.write_to_socket(s, [t, total.read()])
"""
    result = await reveal(tmp_path, source, [1, 2, 3, 4])
    assert result.values == ((4, 7),)


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("r = x & x", "secret bits only"),
        ("r = x >> x", "a shift by a secret amount"),
        ("r = sfloat(1.5)", "sfloat is not supported yet"),
        ("r = sint.get_input_from(0)", "get_input_from"),
        ("r = a[x]", "secret index"),
    ],
)
async def test_unsupported_operations_say_so(tmp_path: Path, statement: str, words: str) -> None:
    source = f"x = sint.read_from_socket(s, 1)\na = Array(2, sint)\n{statement}\n"
    error = await failure(tmp_path, source, [1])
    assert error.code == "program-error" and words in error.message


async def test_a_secret_cannot_drive_python_control_flow(tmp_path: Path) -> None:
    error = await failure(tmp_path, "x = sint.read_from_socket(s, 1)\nif x:\n    pass\n", [1])
    assert "cannot decide a Python branch" in error.message
    error = await failure(tmp_path, "x = sint.read_from_socket(s, 1)\nfor i in range(x):\n    pass\n", [1])
    assert "cannot be used as a Python number" in error.message


# ---------------------------------------------------------------- containers


async def test_array_operations(tmp_path: Path) -> None:
    source = """
a = Array.create_from(sint.read_from_socket(s, 4))
b = Array(4, sint)
b.assign(sint.read_from_socket(s, 4))
c = a + b
d = a * b
e = 2 * a - 1
f = Array(4, sint)
f.assign_all(7)
f[1:3] = a.get_vector(0, 2)
g = Array(3, sint)
g[1] = a[3]
sint.write_to_socket(s, c)
sint.write_to_socket(s, d)
sint.write_to_socket(s, e)
sint.write_to_socket(s, f)
sint.write_to_socket(s, g)
sint.write_to_socket(s, [sum(a), a.sum(), sint.dot_product(a, b), a.dot(b), sum(a[i] for i in range(4))])
sint.write_to_socket(s, a[1:3])
sint.write_to_socket(s, -a)
print_ln("%s %s %s", len(a), a.length, a)
"""
    result = await reveal(tmp_path, source, [1, 2, 3, 4], [5, 6, 7, 8])
    assert result.values == (
        (6, 8, 10, 12),
        (5, 12, 21, 32),
        (1, 3, 5, 7),
        (7, 1, 2, 7),
        (0, 4, 0),
        (10, 10, 70, 70, 10),
        (2, 3),
        (-1, -2, -3, -4),
    )
    assert result.log == ("4 4 <Array of 4 secrets>",)


async def test_revealed_and_public_arrays(tmp_path: Path) -> None:
    source = """
a = Array.create_from(sint.read_from_socket(s, 3))
r = a.reveal()
print_ln("%s %s %s", r, r[0], r.reveal_list())
p = Array(3, cint)
p[0] = r[2]
p[1] = 9
q = Array.create_from([1, 2, 3])
print_ln("%s %s %s", p, q, a.get_vector().reveal())
mixed = a * p
sint.write_to_socket(s, mixed)
cint.write_to_socket(s, p)
"""
    result = await reveal(tmp_path, source, [4, -5, 6])
    assert result.log == ("[4, -5, 6] 4 [4, -5, 6]", "[6, 9, 0] [1, 2, 3] [4, -5, 6]")
    assert result.values == ((24, -45, 0), (6, 9, 0))


async def test_matrices(tmp_path: Path) -> None:
    source = """
A = Matrix(2, 3, sint)
A.assign(sint.read_from_socket(s, 6))
B = sint.Matrix(3, 2)
B.assign(sint.read_from_socket(s, 6))
C = A.dot(B)
D = A * B
v = Array.create_from([1, 0, 2])
Av = A.dot(v)
A[1][2] = sint(100)
sint.write_to_socket(s, C.get_vector())
sint.write_to_socket(s, D.get_vector())
sint.write_to_socket(s, Av)
sint.write_to_socket(s, A.transpose().get_vector())
print_ln("%s %s", A.sizes, C.reveal_list())
T = MultiArray([2, 2, 2], sint)
T[1][0][1] = sint(5)
T[0, 1, 1] = sint(3)
sint.write_to_socket(s, T.get_vector())
"""
    a = [1, 2, 3, 4, 5, 6]
    b = [7, 8, 9, 10, 11, 12]
    result = await reveal(tmp_path, source, a, b)
    c = [58, 64, 139, 154]
    assert result.values[0] == tuple(c)
    assert result.values[1] == tuple(c)
    assert result.values[2] == (7, 16)
    assert result.values[3] == (1, 4, 2, 5, 3, 100)
    assert result.values[4] == (0, 0, 0, 3, 0, 5, 0, 0)
    assert result.log == ("[2, 3] [[58, 64], [139, 154]]",)
    stats = result.stats[0]
    assert stats["mul_rounds"] == 1  # both products and the vector product share one round


# ---------------------------------------------------------------- control flow and printing


async def test_loops_and_public_branches(tmp_path: Path) -> None:
    source = """
out = Array(6, sint)
x = sint.read_from_socket(s, 1)
@for_range_opt([2, 3])
def _(i, j):
    out[i * 3 + j] = x * (i * 3 + j)
sint.write_to_socket(s, out)
count = MemValue(regint(0))
@do_while
def _():
    count.write(count.read() + 1)
    return count.read() < 3
@while_do(lambda k: k < 4, regint(0))
def _(k):
    print_str("%s,", k)
    return k + 1
print_ln("")
@if_e(count.read() == 3)
def _():
    print_ln("three")
@else_
def _():
    print_ln("not three")
@for_range(3)
def _(i):
    print_ln_if(i == 1, "one at %s", i)
@for_range_parallel(2, 2)
def _(i):
    print_ln("p%s", i)
"""
    result = await reveal(tmp_path, source, [10])
    assert result.values == ((0, 10, 20, 30, 40, 50),)
    assert result.log == ("0,1,2,3,", "three", "one at 1", "p0", "p1")


async def test_print_formats(tmp_path: Path) -> None:
    source = """
x = sint.read_from_socket(s, 1)
print_ln("secret %s public %s regint %s list %s", x, x.reveal(), regint(-3), [1, x, cint(-2)])
print("python print", 1, 2)
print_str("partial ")
print_str("line")
"""
    result = await reveal(tmp_path, source, [-8])
    assert result.log == (
        "secret <secret> public -8 regint -3 list [1, <secret>, -2]",
        "python print 1 2",
        "partial line",
    )


async def test_print_ln_needs_one_value_per_placeholder(tmp_path: Path) -> None:
    error = await failure(tmp_path, "print_ln('%s and %s', 1)\n")
    assert "2 '%s' but 1 values" in error.message


async def test_crash_and_runtime_error_if(tmp_path: Path) -> None:
    error = await failure(tmp_path, "runtime_error_if(regint(1), 'bad value %s', 7)\n")
    assert "bad value 7" in error.message
    error = await failure(tmp_path, "crash()\n")
    assert "crash()" in error.message


# ---------------------------------------------------------------- sandbox and isolation


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("import os", "no-import"),
        ("x = ().__class__", "no-private-attribute"),
        ("f = open('/etc/passwd')", "no-forbidden-name"),
        ("exec('1')", "no-forbidden-name"),
        ("x = sint._node", "no-private-attribute"),
    ],
)
async def test_forbidden_constructs_are_refused_with_the_rule(tmp_path: Path, source: str, rule: str) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        with pytest.raises(RequestError) as info:
            await _run(vc, source, [], prologue=False)
        assert info.value.code == "program-error"
        assert f"(rule: {rule})" in info.value.message
        records = [await e.list(new_key(), is_admin=True) for e in vc.executors]
        assert all(page[0].state == "failed" and page[0].error_code == "program-error" for page, _ in records)


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("sint.reveal = None", "cannot be changed"),
        ("sint.reveal.stash = []", "AttributeError"),
        ("Array.create_from.stash = []", "AttributeError"),
        ("print_ln.stash = []", "AttributeError"),
        ("sint.mro()[-1].stash = []", "TypeError"),
        ("x = sint(1)\nx.stash = 1", "AttributeError"),
        ("program.stash = 1", "AttributeError"),
    ],
)
async def test_programs_cannot_leave_state_in_the_shared_library(tmp_path: Path, statement: str, words: str) -> None:
    error = await failure(tmp_path, statement + "\n")
    assert words in error.message


async def test_concurrent_programs_do_not_see_each_others_values(tmp_path: Path) -> None:
    source = """
x = sint.read_from_socket(s, 1)
acc = Array(200, sint)
for i in range(200):
    acc[i] = x * i
sint.write_to_socket(s, acc)
"""
    async with open_exec_vc(tmp_path, 2) as vc:
        results: dict[int, Any] = {}

        async def one(value: int) -> None:
            results[value] = await _run(vc, source, [[value]])

        async with trio.open_nursery() as nursery:
            for value in (3, 5, 7):
                nursery.start_soon(one, value)
        for value, result in results.items():
            assert result.values == (tuple(value * i for i in range(200)),)
