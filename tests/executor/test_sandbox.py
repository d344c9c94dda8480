"""The program sandbox: rules refused at compile time, budget, deadline and size
guards at run time, and the compiled-program cache."""

from __future__ import annotations

import functools
import hashlib
import time
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from vcpd.errors import ProgramError, SessionAborted, VcpInternalError
from vcpd.services.executor import Budget, CompiledProgram, ProgramCache, compile_program, source_digest
from vcpd.services.executor.budget import MAX_SEQUENCE_LENGTH, SAFE_BUILTINS
from vcpd.services.executor.sandbox import MAX_NESTING_DEPTH, MAX_SOURCE_BYTES


def run(source: str, namespace: dict[str, Any] | None = None, *, steps: int = 1_000_000) -> dict[str, object]:
    return compile_program(source).run(namespace or {}, budget=Budget(steps))


def refused(source: str) -> ProgramError:
    with pytest.raises(ProgramError) as info:
        compile_program(source)
    return info.value


def failed(
    source: str, namespace: dict[str, Any] | None = None, *, budget: Budget | None = None
) -> ProgramError:
    program = compile_program(source)
    with pytest.raises(ProgramError) as info:
        program.run(namespace or {}, budget=budget or Budget(1_000_000))
    return info.value


# ---------------------------------------------------------------- compile-time rules

REFUSED = [
    ("import os", "no-import", 1),
    ("x = 1\nfrom os import path", "no-import", 2),
    ("().__class__", "no-private-attribute", 1),
    ("x = 1\ny = x.__class__.__bases__", "no-private-attribute", 2),
    ("(1).__class__", "no-private-attribute", 1),
    ("x = [1]\nx._shares", "no-private-attribute", 2),
    ("def f():\n    pass\ng = f.__globals__", "no-private-attribute", 3),
    ("y = f'{x.__class__}'", "no-private-attribute", 1),
    ("open('f')", "no-forbidden-name", 1),
    ("exec('1')", "no-forbidden-name", 1),
    ("eval('1')", "no-forbidden-name", 1),
    ("__import__('os')", "no-forbidden-name", 1),
    ("x = 1\ngetattr(x, '__class__')", "no-forbidden-name", 2),
    ("t = type(1)", "no-forbidden-name", 1),
    ("def f(vars):\n    pass", "no-forbidden-name", 1),
    ("'{0.__class__}'.format(1)", "no-format", 1),
    ("'{a}'.format_map({})", "no-format", 1),
    ("g = (x for x in [1]).gi_frame", "no-internal-attribute", 1),
    ("x = 1\nf = 'a'.ljust", "no-unbounded-method", 2),
    ("class A:\n    pass", "no-class", 1),
    ("global x", "no-global", 1),
    ("def f():\n    x = 1\n    def g():\n        nonlocal x", "no-global", 4),
    ("try:\n    pass\nexcept Exception:\n    pass", "no-try", 1),
    ("x = 1\nwith x:\n    pass", "no-with", 2),
    ("async def f():\n    pass", "no-async", 1),
    ("def f():\n    yield 1", "no-generator", 2),
    ("def f():\n    yield from [1]", "no-generator", 2),
    ("raise ValueError('x')", "no-raise", 1),
    ("match 1:\n    case 1:\n        pass", "no-match", 1),
    ("for name in {'a', 'b'}:\n    pass", "no-set", 1),
    ("x = 1\ns = {k for k in 'ab'}", "no-set", 2),
    ("__x = 1", "no-dunder-name", 1),
    ("__vcpd_tick__ = None", "no-dunder-name", 1),
    ("def __f():\n    pass", "no-dunder-name", 1),
    ("f = lambda __a: 1", "no-dunder-name", 1),
    ("x = __builtins__", "no-dunder-name", 1),
    ("x = 1\ny = (", "syntax", 2),
    ("def f():\nreturn 1", "syntax", 2),
    ("return 1", "syntax", 1),
    ("x = 10**10**10", "too-large-value", 1),
    ("x = 1 << 10**9", "too-large-value", 1),
]


@pytest.mark.parametrize(("source", "rule", "line"), REFUSED)
def test_forbidden_constructs_are_refused_with_rule_and_line(source: str, rule: str, line: int) -> None:
    error = refused(source)
    assert (error.rule, error.line) == (rule, line)
    assert str(error).startswith(f"line {line}: ")
    if rule != "syntax":
        assert str(error).endswith(f"(rule: {rule})")


def test_messages_name_the_construct_and_the_rule() -> None:
    assert str(refused("import os")) == "line 1: imports are not allowed (rule: no-import)"
    assert str(refused("x = 1\ny = 2\nopen('f')")) == (
        "line 3: 'open' is not available in programs (rule: no-forbidden-name)"
    )


def test_oversized_programs_are_refused_before_parsing() -> None:
    error = refused("x = 1\n" + "#" * MAX_SOURCE_BYTES)
    assert error.rule == "too-large"
    deep = "x = " + "[" * (MAX_NESTING_DEPTH + 5) + "]" * (MAX_NESTING_DEPTH + 5)
    assert refused(deep).rule == "too-large"
    assert refused("x = " + "+".join(["1"] * 20_000)).rule == "too-large"  # parser recursion
    assert refused("x = 0x1" + "0" * 30_000).rule == "too-large-value"


# ---------------------------------------------------------------- allowed programs

def test_ordinary_python_runs_and_returns_globals() -> None:
    result = run(
        """
squares = [i * i for i in range(5)]
evens = {i: i % 2 == 0 for i in range(4)}
total = 0
for value in squares:
    total += value
n = 0
while n < 3:
    n = n + 1
def twice(v, *, by=2):
    return v * by
def _(i):
    return i + 1
_x = _(41)
label = f'{total:>5}|{twice(3)!r}|{"s"}'
pieces = 'a,b,c'.split(',')[::-1]
joined = '-'.join(pieces) + 'x' * 3
text = '%s=%d' % ('n', n)
data = {'k': [1, 2, 3]}
data['k'].append(4)
data['k'][1:3] = [9]
first, *rest = data['k']
doubled = list(map(lambda v: v * 2, rest))
kept = sorted(filter(lambda v: v > 2, [5, 1, 3]), reverse=True)
nested = sum(x for row in [[1, 2], [3]] for x in row)
big = pow(2, 100) + (1 << 70)
assert isinstance(total, int)
"""
    )
    assert result["squares"] == [0, 1, 4, 9, 16]
    assert result["evens"] == {0: True, 1: False, 2: True, 3: False}
    assert result["total"] == 30
    assert result["n"] == 3
    assert result["_x"] == 42
    assert result["label"] == "   30|6|s"
    assert result["joined"] == "c-b-axxx"
    assert result["text"] == "n=3"
    assert result["data"] == {"k": [1, 9, 4]}
    assert (result["first"], result["rest"], result["doubled"]) == (1, [9, 4], [18, 8])
    assert result["kept"] == [5, 3]
    assert result["nested"] == 6
    assert result["big"] == 2**100 + 2**70
    assert not any(key.startswith("__") for key in result)


def test_augmented_assignment_evaluates_target_parts_once() -> None:
    calls: list[str] = []
    box = SimpleNamespace(v=1)

    def index() -> int:
        calls.append("index")
        return 0

    def get_box() -> SimpleNamespace:
        calls.append("box")
        return box

    result = run(
        """
cells = [5, 6]
cells[index()] += 10
get_box().v *= 7
grid = [[1, 2], [3, 4]]
grid[index()][index():] += [0]
word = 'ab'
word *= 2
""",
        {"index": index, "get_box": get_box},
    )
    assert result["cells"] == [15, 6]
    assert box.v == 7
    assert result["grid"] == [[1, 2, 0], [3, 4]]
    assert result["word"] == "abab"
    assert calls == ["index", "box", "index", "index"]


SAME_AS_PYTHON = [
    "a = [1, 2, 3]\nb = a\na += [4]\nsame = a is b",
    "t = (1,)\nu = t\nt += (2,)\nsame = t is u",
    "s = 'x'\ns *= 3\ns += 'y'\nn = 7\nn **= 3\nn <<= 2\nn %= 1000\nm = 2 ** -1",
    "g = [[1, 2], [3, 4]]\ni = 0\ng[i][i + 1:] += [5]\ng[-1][0] *= 2\ng[1][::2] *= 1",
    "d = {'k': 1}\nfor key in ['k', 'k']:\n    d[key] += 1\nd.setdefault('z', [])\nd['z'] += [0]",
    "x = 3\nr = [x := x + 1 for _ in range(3)]\nlast = x",
    "f = lambda n: n and n * f(n - 1) or 1\nten = f(10)",
    "r = f'{3.5:+08.2f}|{\"ab\"!r:^8}|{10:{\"x\"}}|{5 % 3}'",
    "p = '%-5s|%05.1f|%(never)s' % ('a', 2.25, {}) if False else '%-5s|%05.1f' % ('a', 2.25)",
    "w = ' '.join(['a', 'b']).replace('a', 'c').center(7, '*').zfill(9) + 'x\ty'.expandtabs(3)",
    "b = (258).to_bytes(2, 'big') + (1).to_bytes(length=1, byteorder='little')",
    "total = sum([[1], [2]], [])\ntup = sum([(1,)], ())\nplain = sum([1.5, 2])\npw = pow(3, 4, 5) + pow(2, 10)",
    "e = []\ne.extend(range(3))\ne.extend([x * x for x in e])\nz = list(zip(e, reversed(e)))",
    "def outer():\n    acc = []\n    def inner(v):\n        acc.append(v)\n        return len(acc)\n    return [inner(i) for i in range(3)]\nres = outer()",
]


@pytest.mark.parametrize("source", SAME_AS_PYTHON)
def test_instrumented_programs_behave_like_python(source: str) -> None:
    expected: dict[str, Any] = {}
    exec(source, expected)  # noqa: S102 - the reference semantics
    expected = {k: v for k, v in expected.items() if not k.startswith("__") and not callable(v)}
    result = {k: v for k, v in run(source).items() if not callable(v)}
    assert result == expected


def test_decorated_loops_with_namespace_for_range() -> None:
    def for_range(n: int):  # the library's version runs the body eagerly
        def decorate(body):
            for i in range(n):
                body(i)
            return body

        return decorate

    seen: list[int] = []
    run("@for_range(4)\ndef _(i):\n    seen.append(i * 10)", {"for_range": for_range, "seen": seen})
    assert seen == [0, 10, 20, 30]


def test_print_goes_to_print_fn() -> None:
    lines: list[str] = []
    program = compile_program("print('a', 1, sep='-')\nprint('b', end='')")
    program.run({}, budget=Budget(100), print_fn=lines.append)
    assert lines == ["a-1\n", "b"]
    program.run({}, budget=Budget(100))  # no hook: dropped
    assert failed("print('x', file=None)").rule == "runtime"


def test_only_whitelisted_builtins_exist() -> None:
    assert "getattr" not in SAFE_BUILTINS and "open" not in SAFE_BUILTINS
    for name in ("bytes", "iter", "id", "hash", "frozenset", "issubclass"):
        error = failed(f"x = {name}")
        assert (error.rule, str(error)) == ("runtime", f"line 1: NameError: name '{name}' is not defined")


class FakeSint:
    """Just enough of the library's sint for the reference example program."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __add__(self, other: object) -> FakeSint:
        return FakeSint(self.value + (other.value if isinstance(other, FakeSint) else other))

    def __lt__(self, other: FakeSint) -> FakeSint:
        return FakeSint(int(self.value < other.value))

    def assign(self, other: FakeSint) -> None:
        self.value = other.value

    def reveal(self) -> int:
        return self.value

    @classmethod
    def read_from_socket(cls, socket: int, n: int) -> list[FakeSint]:
        return [cls(3), cls(7)][:n]

    @staticmethod
    def write_to_socket(socket: int, values: list[FakeSint]) -> None:
        written.extend(v.value for v in values)


written: list[int] = []

EXAMPLE = """\
listen(10000)
client_socket_id = regint()
acceptclientconnection(client_socket_id, 10000)
v = sint.read_from_socket(client_socket_id, 2)
result = v[0] < v[1]
resp = Array(1, sint)
resp[0] = result
sint.write_to_socket(client_socket_id, resp)

@for_range(10)
def _(i):
    total.assign(total + i)   # note: a function literally named `_` is common MP-SPDZ style

print_ln('sum is %s', total.reveal())
"""


def test_reference_example_program_runs_against_stub_library() -> None:
    printed: list[str] = []

    def for_range(n: int):
        def decorate(body):
            for i in range(n):
                body(i)
            return body

        return decorate

    namespace = {
        "listen": lambda port: None,
        "regint": lambda: 0,
        "acceptclientconnection": lambda socket, port: None,
        "sint": FakeSint,
        "Array": lambda n, kind: [None] * n,
        "for_range": for_range,
        "print_ln": lambda fmt, *args: printed.append(fmt % args),
        "total": FakeSint(0),
    }
    written.clear()
    result = compile_program(EXAMPLE).run(namespace, budget=Budget(10_000))
    assert written == [1]
    assert printed == ["sum is 45"]
    assert callable(result["_"])


# ---------------------------------------------------------------- budget, timeout, recursion

@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("while True:\n    pass", 1),  # ticks report the loop or function header
        ("x = [[[0 for a in range(100)] for b in range(100)] for c in range(100)]", 1),
        ("f = lambda: 1\nx = [f() for _ in range(99999)]", 2),
        ("x = 0\ndef f():\n    return 1\nwhile True:\n    x = f()", 4),
        ("e = [1]\ne.extend(x for x in e)", 2),  # a list feeding itself
    ],
)
def test_budget_exhaustion(source: str, line: int) -> None:
    budget = Budget(50_000)
    error = failed(source, budget=budget)
    assert error.rule == "budget"
    assert error.line == line
    assert "operation budget of 50000 steps exhausted" in str(error)
    with pytest.raises(ProgramError):  # stays exhausted
        budget.tick()


def test_recursion_is_a_program_error() -> None:
    error = failed("def f():\n    f()\nf()", budget=Budget(10**7))
    assert error.rule == "recursion" and error.line in (1, 2)
    error = failed("x = [1]\nfor _ in range(5000):\n    x = [x]\ny = str(x)")
    assert error.rule == "recursion"


def test_library_charges_count_against_the_budget() -> None:
    budget = Budget(1_000)

    def work(n: int) -> None:
        budget.charge(n)

    program = compile_program("work(600)\nwork(600)")
    with pytest.raises(ProgramError) as info:
        program.run({"work": work}, budget=budget)
    assert (info.value.rule, info.value.line) == ("budget", 2)
    assert budget.steps == 1_200


def test_timeout_with_fake_clock() -> None:
    now = [100.0]

    def clock() -> float:
        now[0] += 0.25
        return now[0]

    budget = Budget.with_timeout(10**9, 2.0, clock=clock)
    error = failed("x = 0\nwhile True:\n    x = x + 1", budget=budget)
    assert error.rule == "timeout"
    assert "wall-clock timeout of 2 s exceeded" in str(error)
    with pytest.raises(ProgramError, match="timeout"):
        Budget(5, now[0] - 1, clock).tick()


def test_cancel_stops_the_next_tick() -> None:
    budget = Budget(10**9)
    error = failed("stop()\nwhile True:\n    pass", {"stop": budget.cancel}, budget=budget)
    assert error.rule == "cancelled"


async def test_trio_stays_responsive_and_can_cancel_a_worker_thread() -> None:
    budget = Budget(10**12)
    program = compile_program("while True:\n    pass")
    ticks = 0

    async def stop_later() -> None:
        nonlocal ticks
        for _ in range(5):
            await trio.sleep(0.01)
            ticks += 1
        budget.cancel("stopped by the executor")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_later)
        with pytest.raises(ProgramError) as info:
            await trio.to_thread.run_sync(functools.partial(program.run, {}, budget=budget))
    assert (info.value.rule, ticks) == ("cancelled", 5)
    assert "stopped by the executor" in str(info.value)


def test_library_vcp_errors_propagate_unchanged() -> None:
    def abort() -> None:
        raise SessionAborted("s1", "peer went away")

    program = compile_program("abort()")
    with pytest.raises(SessionAborted):
        program.run({"abort": abort}, budget=Budget(10))


def test_runtime_errors_carry_the_program_line() -> None:
    error = failed("x = 1\ny = {}\nz = y['nope']")
    assert (error.rule, error.line, str(error)) == ("runtime", 3, "line 3: KeyError: 'nope'")
    assert failed("x = 1 / 0").rule == "runtime"


@pytest.mark.parametrize(
    "source",
    [
        "x = [0] * 10**12",
        "x = 'x' * 10**10",
        "x = 10**5\ny = 10**x",
        "x = 10**5\ny = 1 << x",
        "x = 2**60000\ny = x * x",
        "x = [1, 2]\nx *= 10**8",
        "x = [0] * 6000000\ny = x + x",
        "x = [0] * 6000000\nx += x",
        "x = [0] * 6000000\nx.extend(x)",
        "x = 'ab'.ljust(10**9)",
        "x = (1).to_bytes(10**10, 'big')",
        "x = 'x' * 10**6\ny = x.replace('x', x)",
        "x = 'x' * 10**4\ny = x.join([x] * 2000)",
        "x = 'a' * 5000\ny = x.translate({97: x})",
        "x = f'{1:>10000000000}'",
        "x = 10**10\ny = f'{1:>{x}}'",
        "x = '%10000000000d' % 1",
        "x = '%*d' % (10**9, 1)",
        "x = list(range(10**8))",
        "x = pow(7, 10**6)",
    ],
)
def test_huge_values_are_refused_before_they_are_built(source: str) -> None:
    start = time.perf_counter()
    error = failed(source, budget=Budget(10**9))
    assert error.rule == "too-large-value", error
    assert time.perf_counter() - start < 2


def test_element_creation_is_charged() -> None:
    budget = Budget(10**9)
    compile_program("x = [0] * 1000\ny = list(range(500))").run({}, budget=budget)
    assert budget.steps >= 1_500
    assert failed("x = sum([[1]] * 100000, [])", budget=Budget(10**6)).rule == "budget"
    assert MAX_SEQUENCE_LENGTH == 10_000_000


def test_a_million_iterations_stay_cheap() -> None:
    program = compile_program("total = 0\nfor i in range(1000000):\n    total += i")
    start = time.perf_counter()
    result = program.run({}, budget=Budget(10**7))
    assert result["total"] == sum(range(1_000_000))
    assert time.perf_counter() - start < 5


# ---------------------------------------------------------------- namespace, digest, cache

def test_namespace_may_not_use_reserved_names() -> None:
    with pytest.raises(VcpInternalError):
        compile_program("x = 1").run({"__builtins__": {}}, budget=Budget(10))


def test_runs_get_fresh_globals_and_leave_the_namespace_alone() -> None:
    program = compile_program("k = k + 1\nfresh = 1")
    namespace = {"k": 1}
    first = program.run(namespace, budget=Budget(100))
    second = program.run(namespace, budget=Budget(100))
    assert first == second == {"k": 2, "fresh": 1}
    assert namespace == {"k": 1}


def test_digest_is_sha256_of_the_source() -> None:
    program = compile_program("x = 1", filename="p.mpc")
    assert program.digest == hashlib.sha256(b"x = 1").hexdigest() == source_digest("x = 1")
    assert (program.source, program.filename) == ("x = 1", "p.mpc")


def test_cache_is_a_bounded_lru() -> None:
    cache = ProgramCache(capacity=2)
    a = cache.compile("a = 1")
    assert cache.compile("a = 1") is a
    b = cache.compile("b = 1")
    assert cache.get(a.digest) is a  # a is now most recent
    cache.compile("c = 1")
    assert b.digest not in cache and a.digest in cache and len(cache) == 2
    with pytest.raises(ProgramError):
        cache.compile("import os")
    assert len(cache) == 2
    assert isinstance(a, CompiledProgram)


@pytest.mark.parametrize(
    "expression",
    ["d.keys() | e.keys()", "d.keys() & e", "d.items() - e.items()", "e.keys() ^ d.keys()", "[1] and d.keys() - []"],
)
def test_set_operations_on_dict_views_are_refused_at_run_time(expression: str) -> None:
    error = failed(f"d = {{'a': 1, 'b': 2}}\ne = {{'b': 3, 'c': 4}}\nx = {expression}")
    assert (error.rule, error.line) == ("no-set", 3)


def test_augmented_set_operations_on_dict_views_are_refused() -> None:
    error = failed("d = {'a': 1}\nk = d.keys()\nk |= {'b': 1}.keys()")
    assert (error.rule, error.line) == ("no-set", 3)


def test_subtraction_and_bit_operations_still_work_on_everything_else() -> None:
    env = run("a = 7 - 2\nb = 6 | 1\nc = 6 & 3\nd = 6 ^ 3\ne = 10\ne -= 4\ne |= 8\nf = [k for k in {'x': 1}.keys()]")
    assert [env[k] for k in "abcdef"] == [5, 7, 2, 5, 14, ["x"]]
