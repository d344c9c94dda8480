"""Non-linear operations on SPDZ shares: comparisons, truncation, division, fixed point.

Statistical-masking protocols after Catrina–de Hoogh (CdH10) as MP-SPDZ runs
them for an unknown prime, vectorised over n elements (rounds never grow with
n; all bit positions of a tree level are one vector operation) and written as
round programs (:mod:`.program`) so that independent work shares rounds.

Every operation takes its preprocessed tuples from a :class:`Material` pool
and has a ``needs_<op>`` / ``cost_<op>`` function (:mod:`.cost`) giving the
exact tuples it draws and the rounds it opens. Openings are partial: callers
run ``OnlineParty.mac_check()`` before results leave the VC.

Parameters: signed k-bit integers (default k = 64; comparisons of two k-bit
values use k+1 bits, as in MP-SPDZ), κ = 40, p > 2^(k+κ+1); fixed point
f = 16, k = 31.

Modules: :mod:`.material` (tuple pool), :mod:`.program` (round programs),
:mod:`.pack` (bit sums and public bits), :mod:`.prand` (PRandInt/PRandM),
:mod:`.bits` (BitLT, prefix carries, prefix-OR), :mod:`.trunc` (TruncPr,
Mod2m, Trunc, BitDec), :mod:`.compare` (LTZ, EQZ, comparisons, min/max/abs),
:mod:`.division` (public and secret divisors, normalisation, Goldschmidt),
:mod:`.fixed` (sfix), :mod:`.cost` and :mod:`.plans` (counts and plans).

This package may import from vcpd only errors, config, keys, logs, math, wire
and vcpd.protocol — never net, testing, services, api, node or daemon.
"""

from __future__ import annotations

from .compare import absolute as absolute
from .compare import eq as eq
from .compare import eqz as eqz
from .compare import eqz_program as eqz_program
from .compare import ge as ge
from .compare import gt as gt
from .compare import if_else as if_else
from .compare import if_else_program as if_else_program
from .compare import le as le
from .compare import lt as lt
from .compare import ltz as ltz
from .compare import ltz_program as ltz_program
from .compare import maximum as maximum
from .compare import minimum as minimum
from .compare import ne as ne
from .cost import DEFAULT_BITLT as DEFAULT_BITLT
from .cost import DEFAULT_K as DEFAULT_K
from .cost import FX_F as FX_F
from .cost import FX_K as FX_K
from .cost import KAPPA as KAPPA
from .cost import BitLtMethod as BitLtMethod
from .cost import Cost as Cost
from .cost import check_bit_length as check_bit_length
from .cost import needs_abs as needs_abs
from .cost import needs_bit_decompose as needs_bit_decompose
from .cost import needs_eqz as needs_eqz
from .cost import needs_if_else as needs_if_else
from .cost import needs_lt as needs_lt
from .cost import needs_ltz as needs_ltz
from .cost import needs_minmax as needs_minmax
from .cost import needs_mod2m as needs_mod2m
from .cost import needs_trunc as needs_trunc
from .cost import needs_trunc_pr as needs_trunc_pr
from .division import div_public as div_public
from .division import int_div as int_div
from .division import mod_public as mod_public
from .fixed import fx_div as fx_div
from .fixed import fx_from_int as fx_from_int
from .fixed import fx_mul as fx_mul
from .fixed import fx_mul_public as fx_mul_public
from .fixed import fx_reciprocal as fx_reciprocal
from .fixed import fx_to_int as fx_to_int
from .material import KINDS as KINDS
from .material import Material as Material
from .plans import needs_div_public as needs_div_public
from .plans import needs_fx_div as needs_fx_div
from .plans import needs_fx_mul as needs_fx_mul
from .plans import needs_fx_reciprocal as needs_fx_reciprocal
from .plans import needs_fx_to_int as needs_fx_to_int
from .plans import needs_int_div as needs_int_div
from .prand import prand_int as prand_int
from .prand import prand_m as prand_m
from .program import Program as Program
from .program import parallel as parallel
from .program import run as run
from .program import run_parallel as run_parallel
from .trunc import bit_decompose as bit_decompose
from .trunc import mod2m as mod2m
from .trunc import shift_left as shift_left
from .trunc import trunc as trunc
from .trunc import trunc_pr as trunc_pr

__all__ = [
    "DEFAULT_BITLT",
    "DEFAULT_K",
    "FX_F",
    "FX_K",
    "KAPPA",
    "KINDS",
    "BitLtMethod",
    "Cost",
    "Material",
    "Program",
    "absolute",
    "bit_decompose",
    "check_bit_length",
    "div_public",
    "eq",
    "eqz",
    "eqz_program",
    "fx_div",
    "fx_from_int",
    "fx_mul",
    "fx_mul_public",
    "fx_reciprocal",
    "fx_to_int",
    "ge",
    "gt",
    "if_else",
    "if_else_program",
    "int_div",
    "le",
    "lt",
    "ltz",
    "ltz_program",
    "maximum",
    "minimum",
    "mod2m",
    "mod_public",
    "ne",
    "needs_abs",
    "needs_bit_decompose",
    "needs_div_public",
    "needs_eqz",
    "needs_fx_div",
    "needs_fx_mul",
    "needs_fx_reciprocal",
    "needs_fx_to_int",
    "needs_if_else",
    "needs_int_div",
    "needs_lt",
    "needs_ltz",
    "needs_minmax",
    "needs_mod2m",
    "needs_trunc",
    "needs_trunc_pr",
    "parallel",
    "prand_int",
    "prand_m",
    "run",
    "run_parallel",
    "shift_left",
    "trunc",
    "trunc_pr",
]
