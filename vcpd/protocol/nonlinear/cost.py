"""Tuple and round counts of every non-linear protocol, and the schedules they follow.

The executor reserves preprocessed tuples before it runs a program, so it must
know *exactly* what each operation will draw. Every protocol of this package
has a ``cost_<op>(n, …) -> Cost`` here (integer operations) or in
:mod:`.plans` (division, fixed point) — tuples per kind for a vector of n
elements, and opening rounds — and the ``needs_<op>`` shorthand for the tuple
part. Counts depend on n (the BitLT variant ``"auto"`` switches at
:data:`AUTO_PRODUCT_MIN`), so count with the length of the actual call; the protocols consume exactly that (the tests check it against
:meth:`.material.Material.used`) and open exactly ``rounds`` times (checked
against ``OnlineStatistics.open_rounds``). MAC-check rounds are not counted.

The tree shapes (carry-out tree, Sklansky prefix, product tree) are defined
here once and walked by both the protocols and the counts, so the two cannot
drift apart.

Parameters everywhere: ``k`` is the bit length of signed inputs
(x ∈ [−2^(k−1), 2^(k−1))), κ (``kappa``) the statistical security parameter;
statistical masking needs p > 2^(k+κ+1) (:func:`check_bit_length`).

This module is pure (no I/O, no trio) and imports from vcpd only ``errors``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, ParamSpec

from vcpd.errors import FieldError

__all__ = [
    "AUTO_PRODUCT_MIN",
    "AUTO_PRODUCT_SAVING",
    "DEFAULT_BITLT",
    "DEFAULT_K",
    "FX_F",
    "FX_K",
    "KAPPA",
    "BitLtMethod",
    "Cost",
    "carry_tree_levels",
    "check_bit_length",
    "empty_is_free",
    "cost_abs",
    "cost_bit_decompose",
    "cost_bit_lt",
    "cost_eqz",
    "cost_if_else",
    "cost_lt",
    "cost_ltz",
    "cost_minmax",
    "cost_mod2m",
    "cost_prand",
    "prand_split",
    "cost_prefix_carries",
    "cost_prefix_or",
    "cost_product_tree",
    "cost_trunc",
    "cost_trunc_pr",
    "eqz_stages",
    "max_truncation_bits",
    "needs_abs",
    "needs_bit_decompose",
    "needs_eqz",
    "needs_if_else",
    "needs_lt",
    "needs_ltz",
    "needs_minmax",
    "needs_mod2m",
    "needs_trunc",
    "needs_trunc_pr",
    "product_tree_levels",
    "resolve_bitlt",
    "sklansky_levels",
    "tuples",
]

KAPPA: Final = 40
"""Statistical security parameter κ: masks hide inputs up to statistical distance 2^−κ."""
DEFAULT_K: Final = 64
"""Default bit length of secret integers (MP-SPDZ's ``program.bit_length``)."""
FX_K: Final = 31
"""Default total bit length of fixed-point values (MP-SPDZ ``sfix``)."""
FX_F: Final = 16
"""Default fractional bits of fixed-point values (MP-SPDZ ``sfix``)."""

BitLtMethod = Literal["auto", "tree", "product"]
DEFAULT_BITLT: Final[BitLtMethod] = "auto"
"""BitLT variant: ``"tree"`` (log-depth carry tree: fewer rounds), ``"product"``
(Toft's product: m+1 instead of ~1.4m triples, three more rounds), or
``"auto"``: the product when the vector has at least :data:`AUTO_PRODUCT_MIN`
elements *and* it saves at least :data:`AUTO_PRODUCT_SAVING` triples per
element (m ≥ 31), else the tree."""

AUTO_PRODUCT_MIN: Final = 256
"""Vector length from which ``"auto"`` may pick the product variant: three more
rounds (~1 ms each on a LAN) against ≥ 8 Beaver products saved per element."""

AUTO_PRODUCT_SAVING: Final = 8
"""Triples per element the product variant must save for ``"auto"`` to pick it
(its linear layer costs about as much as a few products more than the tree's)."""


def resolve_bitlt(method: BitLtMethod, n: int, m: int) -> Literal["tree", "product"]:
    """The variant ``method`` means for n comparisons of m bits."""
    if method == "auto":
        if n < AUTO_PRODUCT_MIN:
            return "tree"
        saving = _tree_triples(m) - (m + 1)
        return "product" if saving >= AUTO_PRODUCT_SAVING else "tree"
    if method in ("tree", "product"):
        return method
    raise ValueError(f"unknown BitLT method {method!r}; use 'auto', 'tree' or 'product'")


_KINDS: Final = ("triple", "square", "bit", "inverse", "mask", "bounded")

P = ParamSpec("P")


def check_bit_length(p: int, k: int, kappa: int = KAPPA) -> None:
    """Refuse a bit length that statistical masking cannot handle in F_p.

    A masked value 2^(k−1) + x + r with r < 2^(k+κ) must not wrap mod p.

    Raises:
        FieldError: k < 1, κ < 1 or p ≤ 2^(k+κ+1).
    """
    if k < 1 or kappa < 1:
        raise FieldError(f"bit length k={k} and security κ={kappa} must be positive")
    if p <= 1 << (k + kappa + 1):
        raise FieldError(
            f"{k}-bit secrets with κ={kappa} need p > 2^{k + kappa + 1}; the field has {p.bit_length()} bits "
            f"(use k ≤ {max_truncation_bits(p, kappa)})"
        )


def max_truncation_bits(p: int, kappa: int = KAPPA) -> int:
    """The largest k with p > 2^(k+κ+1)."""
    return (p - 1).bit_length() - kappa - 2


@dataclass(frozen=True)
class Cost:
    """Tuples (per kind, for the whole vector) and opening rounds of an operation.

    ``a + b`` is a then b (rounds add); ``a | b`` is a alongside b with merged
    rounds (rounds take the maximum). Tuples add either way.
    """

    tuples: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(_KINDS, 0))
    rounds: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(_sum(self.tuples, other.tuples), self.rounds + other.rounds)

    def __or__(self, other: Cost) -> Cost:
        return Cost(_sum(self.tuples, other.tuples), max(self.rounds, other.rounds))

    @property
    def needs(self) -> dict[str, int]:
        """The tuple counts as a fresh dict (every kind present)."""
        return _sum(self.tuples, {})


def _sum(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict.fromkeys(_KINDS, 0)
    for part in (a, b):
        for kind, count in part.items():
            out[kind] += count
    return out


def empty_is_free(function: Callable[P, Cost]) -> Callable[P, Cost]:
    """Make a ``cost_<op>(n, …)`` return nothing for n = 0 (the protocols do nothing then)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Cost:
        n = args[0] if args else kwargs["n"]
        return Cost() if n == 0 else function(*args, **kwargs)

    return wrapper


def tuples(rounds: int = 0, **counts: int) -> Cost:
    """A Cost from keyword counts (``triple=…, bit=…, mask=…``)."""
    return Cost(_sum(counts, {}), rounds)


# ---------------------------------------------------------------- tree schedules


def carry_tree_levels(nodes: int) -> list[list[tuple[int, int, bool]]]:
    """Levels of the carry-out tree over ``nodes`` (G, P) blocks, lowest first.

    Each level combines nodes (2i+1 over 2i) into node i: a list of
    (hi, lo, need_p); an odd top node passes through. The P of node 0 is never
    needed (nothing lies below it), so need_p is false for i = 0.
    """
    levels = []
    count = nodes
    while count > 1:
        levels.append([(2 * i + 1, 2 * i, i >= 1) for i in range(count // 2)])
        count = (count + 1) // 2
    return levels


def product_tree_levels(count: int) -> list[int]:
    """Pairs multiplied per level of a product tree over ``count`` rows."""
    levels = []
    while count > 1:
        levels.append(count // 2)
        count = (count + 1) // 2
    return levels


def sklansky_levels(m: int) -> list[list[tuple[int, int, bool]]]:
    """Sklansky's parallel prefix over m positions: per level, (hi, lo, keep_p).

    At level j (blocks of 2^(j+1)), every position h in the upper half of a
    block absorbs the prefix ending at lo, the top of the lower half.
    keep_p is false when the block starts at 0 (that prefix is complete).
    """
    levels = []
    size = 1
    while size < m:
        level = []
        for start in range(0, m, 2 * size):
            lo = start + size - 1
            level.extend((h, lo, start > 0) for h in range(start + size, min(start + 2 * size, m)))
        levels.append(level)
        size *= 2
    return levels


# ---------------------------------------------------------------- building blocks


def cost_bit_lt(n: int, m: int, method: BitLtMethod = DEFAULT_BITLT) -> tuple[Cost, Cost]:
    """BitLT on m bits: (part merged into the masking round, part after it)."""
    method = resolve_bitlt(method, n, m)
    if m <= 1:
        return Cost(), Cost()
    if method == "tree":
        levels = carry_tree_levels((m + 1) // 2)
        return tuples(1, triple=n * (m // 2)), tuples(len(levels), triple=n * (_tree_triples(m) - m // 2))
    return Cost(), tuples(len(product_tree_levels(m + 2)) + 1, triple=n * (m + 1), bit=n, mask=n)


def _tree_triples(m: int) -> int:
    """Triples per element of the tree variant of BitLT on m ≥ 2 bits (pairs + carry tree)."""
    levels = carry_tree_levels((m + 1) // 2)
    return m // 2 + sum(len(level) + sum(need for _, _, need in level) for level in levels)


def cost_prefix_carries(n: int, m: int) -> tuple[Cost, Cost]:
    """All prefix comparisons on m bits: (merged pair round, the rest)."""
    levels = sklansky_levels(m)[1:]
    products = sum(len(level) + sum(keep for _, _, keep in level) for level in levels)
    first = tuples(1, triple=n * (m // 2)) if m >= 2 else Cost()
    return first, tuples(len(levels), triple=n * products)


def cost_prefix_or(n: int, m: int) -> Cost:
    """Prefix-OR over m rows (Sklansky: one product per absorbed position)."""
    levels = sklansky_levels(m)
    return tuples(len(levels), triple=n * sum(len(level) for level in levels))


def cost_product_tree(n: int, count: int) -> Cost:
    """Product of ``count`` rows."""
    levels = product_tree_levels(count)
    return tuples(len(levels), triple=n * sum(levels))


BOUNDED_BITS: Final = 40
"""Width of a ``"bounded"`` tuple (r uniform in [0, 2^40)); see :mod:`.prand`."""


def prand_split(k: int, m: int, kappa: int = KAPPA) -> tuple[int, int]:
    """PRandM(k, m)'s high part r'' of k+κ−m bits: (single bits, bounded tuples).

    The bounded tuples cover the top 40-bit blocks; the remainder (k+κ−m mod 40
    bits) comes as single bits below them.
    """
    high = k + kappa - m
    return high % BOUNDED_BITS, high // BOUNDED_BITS


def cost_prand(n: int, k: int, m: int, kappa: int = KAPPA) -> Cost:
    """PRandM(k, m) for masking a k-bit value: the m low bits singly, the high
    k+κ−m bits as bounded tuples plus a few bits (:func:`prand_split`)."""
    bits, bounded = prand_split(k, m, kappa)
    return tuples(bit=n * (m + bits), bounded=n * bounded)


def eqz_stages(k: int) -> list[int]:
    """Bit widths of the masked stages of EQZ: [k] for k < 4, else [k, bit length of k]."""
    return [k] if k < 4 else [k, k.bit_length()]


# ---------------------------------------------------------------- operations


@empty_is_free
def cost_trunc_pr(n: int, k: int, m: int, kappa: int = KAPPA) -> Cost:
    """TruncPr(x, k, m): one round, k+κ bits per element (none for m = 0)."""
    return Cost() if m == 0 else cost_prand(n, k, m, kappa) + tuples(1)


@empty_is_free
def cost_mod2m(n: int, k: int, m: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> Cost:
    """Mod2m(x, k, m): the masking round (merged with BitLT's pair round), then BitLT."""
    if m == 0:
        return Cost()
    merged, rest = cost_bit_lt(n, m, bitlt)
    return cost_prand(n, k, m, kappa) + (tuples(1) | merged) + rest


@empty_is_free
def cost_trunc(n: int, k: int, m: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> Cost:
    """Exact Trunc(x, k, m) = Mod2m(x, k, min(m, k−1))."""
    return cost_mod2m(n, k, min(m, k - 1), kappa, bitlt)


@empty_is_free
def cost_ltz(n: int, k: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> Cost:
    """LTZ(x, k) = −Trunc(x, k, k−1)."""
    return cost_trunc(n, k, k - 1, kappa, bitlt)


@empty_is_free
def cost_lt(n: int, k: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> Cost:
    """a < b (also >, ≤, ≥) for signed k-bit a, b: LTZ with k+1 bits."""
    return cost_ltz(n, k + 1, kappa, bitlt)


@empty_is_free
def cost_eqz(n: int, k: int, kappa: int = KAPPA) -> Cost:
    """EQZ(x, k) (also ==, != with the same k): see ``compare.eqz_program``."""
    stages = eqz_stages(k)
    width = stages[-1]
    bits = cost_prand(n, stages[1], stages[1], kappa) if len(stages) > 1 else Cost()
    pairs = tuples(1, triple=n * (width // 2)) if width >= 2 else Cost()
    first = cost_prand(n, k, k, kappa) + bits + (tuples(1) | pairs)
    second = tuples(1) if len(stages) == 2 else Cost()
    return first + second + cost_product_tree(n, (width + 1) // 2)


@empty_is_free
def cost_bit_decompose(n: int, k: int, kappa: int = KAPPA) -> Cost:
    """BitDec(x, k): masking round (with the pair products), then Sklansky prefix."""
    merged, rest = cost_prefix_carries(n, k)
    return cost_prand(n, k, k, kappa) + (tuples(1) | merged) + rest


@empty_is_free
def cost_if_else(n: int) -> Cost:
    """c·(a − b) + b: one product."""
    return tuples(1, triple=n)


@empty_is_free
def cost_minmax(n: int, k: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> Cost:
    """min/max of signed k-bit values: a < b, then a selection."""
    return cost_lt(n, k, kappa, bitlt) + cost_if_else(n)


@empty_is_free
def cost_abs(n: int, k: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> Cost:
    """|x|: LTZ(x, k), then one product."""
    return cost_ltz(n, k, kappa, bitlt) + cost_if_else(n)


# ---------------------------------------------------------------- needs_* shorthands
#
# Tuples per kind (every kind present) that the protocol of the same name draws
# for n elements; the executor reserves exactly this.


def needs_trunc_pr(n: int, k: int, m: int, kappa: int = KAPPA) -> dict[str, int]:
    """Tuples of ``trunc_pr``."""
    return cost_trunc_pr(n, k, m, kappa).needs


def needs_mod2m(n: int, k: int, m: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> dict[str, int]:
    """Tuples of ``mod2m``."""
    return cost_mod2m(n, k, m, kappa, bitlt).needs


def needs_trunc(n: int, k: int, m: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> dict[str, int]:
    """Tuples of ``trunc`` (exact ``>>``)."""
    return cost_trunc(n, k, m, kappa, bitlt).needs


def needs_ltz(n: int, k: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> dict[str, int]:
    """Tuples of ``ltz``."""
    return cost_ltz(n, k, kappa, bitlt).needs


def needs_lt(n: int, k: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> dict[str, int]:
    """Tuples of ``lt``, ``le``, ``gt`` and ``ge`` on signed k-bit inputs."""
    return cost_lt(n, k, kappa, bitlt).needs


def needs_eqz(n: int, k: int, kappa: int = KAPPA) -> dict[str, int]:
    """Tuples of ``eqz``, ``eq`` and ``ne``."""
    return cost_eqz(n, k, kappa).needs


def needs_bit_decompose(n: int, k: int, kappa: int = KAPPA) -> dict[str, int]:
    """Tuples of ``bit_decompose``."""
    return cost_bit_decompose(n, k, kappa).needs


def needs_if_else(n: int) -> dict[str, int]:
    """Tuples of ``if_else``."""
    return cost_if_else(n).needs


def needs_minmax(n: int, k: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> dict[str, int]:
    """Tuples of ``minimum`` and ``maximum``."""
    return cost_minmax(n, k, kappa, bitlt).needs


def needs_abs(n: int, k: int, kappa: int = KAPPA, bitlt: BitLtMethod = DEFAULT_BITLT) -> dict[str, int]:
    """Tuples of ``absolute``."""
    return cost_abs(n, k, kappa, bitlt).needs
