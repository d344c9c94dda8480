"""Programs with non-linear operations end to end: examples, cheating, accounting.

* The comparison and fixed-point programs of ``examples/`` give the right answers.
* A share tampered with inside a non-linear subprotocol (the masked opening of
  an LTZ, the second stage of an EQZ, the TruncPr of an sfix product, a
  division) fails the execution with ``mac-check-failed`` on every VCP and
  nothing is stored.
* The engine's flush reserves exactly what its operations draw: an operation
  that announces more tuples than it uses, or other rounds than it takes,
  fails as an internal error instead of silently wasting or running short.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from exec_harness import FIELD, ExecVC, new_key, open_exec_vc

from vcpd.errors import RequestError, VcpInternalError
from vcpd.math import FieldArray, Shares
from vcpd.protocol.nonlinear import cost
from vcpd.services.executor.engine import Engine
from vcpd.services.executor.graph import PreparedMul

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROLOGUE = "listen(10000)\ns = regint()\nacceptclientconnection(s, 10000)\n"
F = 16


def example(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


async def run(vc: ExecVC, source: str, values: list[list[int]], output: str = "secrets", **kwargs: Any) -> Any:
    key = new_key()
    inputs = [vc.secret(v, key, **kwargs) for v in values]
    return await vc.client(key).run_program(source, inputs=inputs, output=output)


def raw(x: float) -> int:
    return round(x * (1 << F))


# ---------------------------------------------------------------- examples


async def test_millionaires_example(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 3) as vc:
        result = await run(vc, example("millionaires.mpc"), [[1_000_000], [2_500_000]])
        assert vc.registry.value(result.secrets[0]) == [1]
        assert vc.registry.result_encoding[result.secrets[0]].kind == "int64"


@pytest.mark.parametrize("bids", [[30, 75, 12, 75, 60, 5, 99, 41], [7, 1, 2, 3, 4, 5, 6, 0]])
async def test_second_price_auction(tmp_path: Path, bids: list[int]) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, example("second_price_auction.mpc"), [bids])
        winner = bids.index(max(bids))
        price = sorted(bids)[-2]
        assert vc.registry.value(result.secrets[0]) == [winner, price]
        assert result.log == (f"bidder {winner} wins and pays {price}",)


async def test_histogram_and_median(tmp_path: Path) -> None:
    values = [-4, 3, 15, 15, 27, 80, 9, 0, 50]
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, example("histogram.mpc"), [values])
        counts, median = (vc.registry.value(s) for s in result.secrets)
        edges = [float("-inf"), 0, 10, 20, 50, float("inf")]
        assert counts == [sum(lo <= v < hi for v in values) for lo, hi in zip(edges, edges[1:], strict=False)]
        assert median == [sorted(values)[len(values) // 2]]
        assert result.log == (f"histogram {counts}",)
        # the N·4 bin comparisons and the N² rank comparisons are one vector program: the
        # whole program is one flush with one reservation (the reveal for the log forces it)
        stats = result.stats[0]
        assert stats["reservations"] == 1 and stats["flushes"] == 1
        ltz, eqz = cost.cost_ltz(1, 65, 40, "tree"), cost.cost_eqz(1, 64, 40)
        # ranks: comparisons (with the ties' equality tests alongside), the == of the rank,
        # the selection; the reveal of the counts goes out with the first of these rounds
        assert stats["open_rounds"] == ltz.rounds + eqz.rounds + 1


@pytest.mark.parametrize("op", ["<", "=="])
async def test_long_operations_run_in_blocks_with_the_same_results(
    tmp_path: Path, op: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vcpd.services.executor import engine

    monkeypatch.setattr(engine, "BLOCK_TUPLES", 3000)  # ~20 elements per block instead of ~10^4
    n = 100
    rng = np.random.default_rng(7)  # test data only, not key material
    xs = [int(v) for v in rng.integers(-(2**63), 2**63 - 1, n)]
    ys = [x if i % 3 == 0 else int(v) for i, (x, v) in enumerate(zip(xs, rng.integers(-(2**63), 2**63 - 1, n)))]
    source = PROLOGUE + (
        f"a = sint.read_from_socket(s, 1, size={n})\nb = sint.read_from_socket(s, 1, size={n})\n"
        f"sint.write_to_socket(s, a {op} b)\n"
    )
    async with open_exec_vc(tmp_path, 3) as vc:
        result = await run(vc, source, [xs, ys])
        expected = [int(x < y) if op == "<" else int(x == y) for x, y in zip(xs, ys, strict=True)]
        assert vc.registry.value(result.secrets[0]) == expected
        stats = result.stats[0]
        assert stats["flushes"] >= 3 and stats["reservations"] == stats["flushes"]  # one per block
        bitlt = cost.resolve_bitlt("auto", n, 64)  # fixed by the whole operation's length
        single = cost.cost_ltz(n, 65, 40, bitlt) if op == "<" else cost.cost_eqz(n, 64, 40)
        assert stats["tuples"] == {k: v for k, v in single.needs.items() if v}  # blocks draw what the whole would


async def test_fixed_point_mean_and_variance(tmp_path: Path) -> None:
    xs = [1.5, 2.25, -0.5, 4.0, 3.75, 0.125, 2.0, 1.0]
    async with open_exec_vc(tmp_path, 3) as vc:
        result = await run(vc, example("fixed_mean_variance.mpc"), [[raw(x) for x in xs]],
                           encoding="fixed", fraction_bits=F)
        (secret,) = result.secrets
        mean, variance = (Fraction(v, 1 << F) for v in vc.registry.value(secret))
        assert vc.registry.result_encoding[secret].kind == "fixed"
        assert abs(mean - Fraction(statistics.fmean(xs))) < Fraction(1, 1 << F)
        assert abs(variance - Fraction(statistics.pvariance(xs))) < Fraction(2, 1 << F)


async def test_linear_regression(tmp_path: Path) -> None:
    xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    ys = [2.9, 5.1, 7.0, 9.2, 10.8, 13.1]
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, example("linear_regression.mpc"), [[raw(x) for x in xs + ys]],
                           encoding="fixed", fraction_bits=F)
        intercept, slope = (v / (1 << F) for v in vc.registry.value(result.secrets[0]))
        b, a = np.polyfit(xs, ys, 1)
        assert abs(slope - b) < 4 / (1 << F) and abs(intercept - a) < 16 / (1 << F)


# ---------------------------------------------------------------- cheating


def _add_error_to_opening(party: int, step: str) -> Any:
    """A hub tamper function: ``party`` adds 1 to its first share in opening ``step``."""

    def tamper(src: int, dst: int, message: Any) -> Any:
        if message[0] == "m" and src == party and message[1].startswith("executor/") and message[2] == step:
            payload = message[3]
            first = FIELD.from_bytes(payload[:16]) + 1
            return (message[0], message[1], message[2], first.to_bytes() + payload[16:])
        return message

    return tamper


@pytest.mark.parametrize(
    ("name", "program", "step"),
    [
        ("LTZ masked opening", "c = a < b", "open.0"),
        ("LTZ carry tree", "c = a > b", "open.2"),
        ("EQZ second stage", "c = a == b", "open.1"),
        ("TruncPr of an sfix product", "c = (sfix(a) * sfix(b)).v", "open.1"),
        ("public division", "c = a // 7", "open.0"),
        ("secret division", "program.set_bit_length(32)\nc = a // b", "open.3"),
        ("sfix division", "c = (sfix(a) / sfix(b)).v", "open.6"),
    ],
)
async def test_a_tampered_share_in_a_nonlinear_subprotocol_fails_the_mac_check(
    tmp_path: Path, name: str, program: str, step: str
) -> None:
    source = PROLOGUE + f"a, b = sint.read_from_socket(s, 2)\n{program}\nsint.write_to_socket(s, [c])\n"
    async with open_exec_vc(tmp_path, 3) as vc:
        key = new_key()
        inputs = [vc.secret([37, 5], key)]
        opened: list[str] = []
        tamper = _add_error_to_opening(1, step)

        def watch(src: int, dst: int, message: Any) -> Any:
            if message[0] == "m" and message[2].startswith("open."):
                opened.append(message[2])
            return tamper(src, dst, message)

        vc.hub.tamper(watch)
        with pytest.raises(RequestError) as info:
            await vc.client(key).run_program(source, inputs=inputs)
        assert step in opened, name  # the tampered round exists
        assert info.value.code == "mac-check-failed", name
        assert vc.registry.results == {}
        assert all(not source.calls for source in vc.sources)
        for executor in vc.executors:
            page, _ = await executor.list(key)
            assert page[0].state == "failed" and page[0].error_code == "mac-check-failed"
            assert page[0].outputs == ()


# ---------------------------------------------------------------- accounting (engine level)


class OneParty:
    """A Channel for a VC of one party: an opening is the share itself."""

    def __init__(self, alpha: int) -> None:
        self.alpha = alpha
        self.reserved: list[dict[str, int]] = []
        self.prefetched: list[tuple[int, dict[str, int]]] = []  # (reserves before it, counts)
        self.rounds = 0

    def prefetch(self, counts: Mapping[str, int]) -> None:
        self.prefetched.append((len(self.reserved), dict(counts)))

    def reserve(self, counts: Mapping[str, int]) -> Mapping[str, Sequence[Shares]]:
        self.reserved.append(dict(counts))
        out: dict[str, list[Shares]] = {}
        for kind, n in counts.items():
            if kind == "triple":
                a, b = FIELD.random(n), FIELD.random(n)
                comps = [a, b, a * b]
            elif kind == "bit":
                comps = [FIELD.from_ints(np.frombuffer(np.random.bytes(n), np.uint8) & 1)]
            elif kind == "bounded":
                comps = [FIELD.from_ints([int.from_bytes(np.random.bytes(5), "little") for _ in range(n)])]
            else:
                comps = [FIELD.random(n)]
            out[kind] = [Shares(c, c * self.alpha) for c in comps]
        return out

    def prepare_mul(self, x: Shares, y: Shares, triple: Sequence[Shares]) -> PreparedMul:
        a, b, c = triple
        to_open = Shares.concat([x - a, y - b])
        n = len(x)

        def finish(opened: FieldArray) -> Shares:
            eps, rho = opened[:n], opened[n:]
            return c + b * eps + a * rho + Shares(eps * rho, eps * rho * self.alpha)

        return PreparedMul(to_open, finish)

    def open_many(self, parts: Sequence[Shares]) -> list[FieldArray]:
        self.rounds += 1
        return [p.values for p in parts]

    def mac_check(self) -> None:
        pass

    def pending_checks(self) -> int:
        return 0


class Skewed:
    """A RoundOp wrapper announcing other tuples or rounds than its program uses."""

    def __init__(self, inner: Any, *, extra_bits: int = 0, extra_rounds: int = 0) -> None:
        self._inner = inner
        self.key = ("skewed", inner.key)
        self.rows = inner.rows
        self.rounds = inner.rounds + extra_rounds
        self._extra = extra_bits

    def needs(self, n: int) -> dict[str, int]:
        needs = dict(self._inner.needs(n))
        needs["bit"] = needs.get("bit", 0) + self._extra
        return needs

    def program(self, *args: Any) -> Any:
        return self._inner.program(*args)


def _engine_and_ltz(x: list[int]) -> tuple[Engine, OneParty, Any]:
    from vcpd.services.executor import nonlinear_ops  # noqa: PLC0415

    alpha = 12345
    channel = OneParty(alpha)
    engine = Engine(FIELD, 0, alpha, channel)
    leaf = engine.constant(FIELD.from_ints(x))
    node = nonlinear_ops.ltz(engine, leaf, 64, 40)
    return engine, channel, node


def test_a_flush_reserves_exactly_what_it_draws() -> None:
    xs = [-5, 0, 7, -(2**63)]
    engine, channel, node = _engine_and_ltz(xs)
    bits = engine.shares(node)
    assert bits.values.to_ints() == [1, 0, 0, 1]
    expected = cost.cost_ltz(len(xs), 64, 40, "tree")
    assert channel.reserved == [{k: v for k, v in expected.needs.items() if v}]
    assert channel.rounds == expected.rounds


@pytest.mark.parametrize(("extra_bits", "extra_rounds", "words"), [(3, 0, "did not use"), (0, 1, "other rounds")])
def test_an_operation_that_misstates_its_needs_fails_loudly(extra_bits: int, extra_rounds: int, words: str) -> None:
    engine, _, node = _engine_and_ltz([1, 2, 3])
    node.arg = Skewed(node.arg, extra_bits=extra_bits, extra_rounds=extra_rounds)
    with pytest.raises(VcpInternalError) as info:
        engine.shares(node)
    assert words in str(info.value)


def test_each_block_but_the_last_is_prefetched_with_its_exact_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    """While block k computes, block k+1's tuples are taken: exactly what its flush reserves."""
    from vcpd.services.executor import engine as engine_module  # noqa: PLC0415

    monkeypatch.setattr(engine_module, "BLOCK_TUPLES", 3000)
    xs = [(-1) ** i * (i * 7919) for i in range(90)]
    engine, channel, node = _engine_and_ltz(xs)
    bits = engine.shares(node)
    assert bits.values.to_ints() == [int(x < 0) for x in xs]
    assert len(channel.reserved) >= 3
    # prefetch i is issued right after reserve i and claimed by reserve i + 1
    assert [before for before, _ in channel.prefetched] == list(range(1, len(channel.reserved) - 1))
    for before, counts in channel.prefetched:
        assert channel.reserved[before] == {kind: n for kind, n in counts.items() if n}
