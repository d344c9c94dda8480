"""MASCOT triple generation: multiply, combine, authenticate, sacrifice, check.

One batch of B triples (Keller, Orsini, Scholl, CCS 2016, Fig. 15 Π_Triple,
structured as MP-SPDZ's ``NPartyTripleGenerator``/``OTMultiplier``):

1. **Multiply** — every party P_i samples τ·B values a^{(i)} and B values
   b^{(i)} (τ = 3); pairwise Gilboa products over KOS OTs (:mod:`.gilboa`)
   plus the local a^{(i)}·b^{(i)} give shares of τ·B plain triples
   (a_k, b, c_k) sharing one b per group. Rounds ``iknp``, ``chi``, ``xt``, ``d``.
2. **Combine** — coefficients r, r̂ ∈ F^τ per triple, coin-tossed after the
   products are fixed (commitment rides on ``d``, opening is ``combine.open``):
   a = Σ r_k·a_k, c = Σ r_k·c_k, â = Σ r̂_k·a_k, ĉ = Σ r̂_k·c_k. Selective
   failure in Gilboa can leak a few bits of the a_k; the random combination
   leaves a (and â) uniform anyway.
3. **Authenticate** — COPEe (:mod:`.cope`) on (a, â, b, c, ĉ, x₀) in one round
   ``auth.cope``, x₀ a random mask for the MAC-generation check.
4. **Coins** — the MAC-generation coefficients and the sacrifice t ∈ F^B are
   coin-tossed after the MACs are fixed (commitment rides on ``auth.cope``,
   opening is ``check.open``); MP-SPDZ reuses the combination PRG here, we
   toss again so that a party cannot adapt its authenticated inputs to t.
5. **Open** (one round ``open``): y = Σ_k r_k·x_k + x₀ (MAC-generation check)
   and ρ = t·a − â (sacrifice).
6. **Check** (:func:`._check.named_mac_check`, three rounds): the batched MAC
   check on y ("MAC-generation check failed" catches COPE errors) and on ρ
   together with σ = t·c − ĉ − ρ·b claimed to be 0 ("sacrifice check failed"
   catches a wrong product: σ = t·e − ê for errors e, ê, zero with
   probability 1/p unless both are).
7. Output (a, b, c); â and ĉ are discarded.

Twelve rounds per batch; everything else is vectorised over the batch.

This module must not import vcpd.net, vcpd.testing, services, api, node or
daemon; from vcpd it uses only errors, math and vcpd.protocol.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from vcpd.errors import MacCheckFailure, SessionAborted
from vcpd.math import FieldArray, PrimeField, Shares
from vcpd.math._limbs import Limbs

from ..commit import FAILURE_MARKER
from ..rounds import exchange_all
from ..transport import Session
from ._check import CoinToss, named_mac_check, open_values
from ._common import TAU, kernel_of, limbs_of, to_array
from .cope import MAC_GENERATION_FAILURE, authenticate, mac_generation_combination
from .gilboa import gilboa_products
from .otext import make_row_hash
from .setup import MascotState

__all__ = ["SACRIFICE_FAILURE", "triple_batch"]

SACRIFICE_FAILURE: Final = "sacrifice check failed"


def _mul(field: PrimeField, x: Limbs, y: Limbs) -> Limbs:
    out = np.empty_like(x)
    kernel_of(field).mul(x, y, out)
    return out


def _add(field: PrimeField, x: Limbs, y: Limbs) -> Limbs:
    out = np.empty_like(x)
    kernel_of(field).add(x, y, out)
    return out


async def triple_batch(
    session: Session,
    state: MascotState,
    field: PrimeField,
    count: int,
    *,
    label: str,
    threads: bool = False,
) -> tuple[Shares, Shares, Shares]:
    """``count`` authenticated, checked triples (this party's shares of a, b, c).

    All parties call it with the same ``count`` and ``label``.

    Raises:
        SessionAborted: "KOS correlation check failed with VCP k", a
            malformed message, a missing peer.
        MacCheckFailure: "MAC-generation check failed", "sacrifice check
            failed", an invalid commitment or a broadcast mismatch.
    """
    sid, me = session.id, session.party
    try:
        hasher = make_row_hash(state.hash_name)
    except ImportError:
        raise SessionAborted(
            sid,
            f"this MASCOT setup uses the {state.hash_name!r} row hash, which needs the 'cryptography' package "
            "on this VCP: install it, or run the setup again on every VCP",
        ) from None
    alpha = state.alpha
    b_count = count
    a = limbs_of(field.random(TAU * b_count))  # a_k = a[:, k·B:(k+1)·B]
    b = limbs_of(field.random(b_count))
    b_rep = np.tile(b, (1, TAU))

    # 1. Multiply (+ commitment of the combination coins).
    combine = CoinToss(sid, me, f"{label}.combine")
    cross, extras = await gilboa_products(
        session, field, state.links, a, b_rep, label=f"{label}.mul", hasher=hasher, threads=threads, extra=combine.commitment
    )
    combine.accept(extras)
    c = _add(field, _mul(field, a, b_rep), cross)

    # 2. Combine.
    seed = combine.seed(await exchange_all(session, f"{label}.combine.open", combine.opening))
    coefficients = field.random_seeded(seed, 2 * TAU * b_count, label=b"vcpd.mascot.combine")
    a_parts = [to_array(field, a[:, k * b_count : (k + 1) * b_count]) for k in range(TAU)]
    c_parts = [to_array(field, c[:, k * b_count : (k + 1) * b_count]) for k in range(TAU)]

    def combined(row: int, parts: list[FieldArray]) -> FieldArray:
        total = field.zeros(b_count)
        for k in range(TAU):
            start = (row * TAU + k) * b_count
            total = total + coefficients[start : start + b_count] * parts[k]
        return total

    a0, a1 = combined(0, a_parts), combined(1, a_parts)
    c0, c1 = combined(0, c_parts), combined(1, c_parts)
    b_arr = to_array(field, b)

    # 3. Authenticate (a, â, b, c, ĉ, mask) (+ commitment of the check coins).
    values = field.concat([a0, a1, b_arr, c0, c1, field.random(1)])
    checks = CoinToss(sid, me, f"{label}.check")
    mac_limbs, extras = await authenticate(
        session, field, state.links, alpha, state.alpha_bits(), limbs_of(values), label=f"{label}.auth", threads=threads,
        extra=checks.commitment,
    )  # fmt: skip
    checks.accept(extras)
    macs = to_array(field, mac_limbs)

    def part(array: FieldArray, k: int) -> FieldArray:
        return array[k * b_count : (k + 1) * b_count]

    # 4. Coins for the MAC-generation check and the sacrifice.
    seed = checks.seed(await exchange_all(session, f"{label}.check.open", checks.opening))
    t = field.random_seeded(seed, b_count, label=b"vcpd.mascot.sacrifice")
    y_share, y_mac = mac_generation_combination(field, values, macs, seed)
    rho_share = t * part(values, 0) - part(values, 1)
    rho_mac = t * part(macs, 0) - part(macs, 1)

    # 5. Open y and ρ (+ commitment of the MAC-check coins).
    mac_coins = CoinToss(sid, me, f"{label}.mac")
    opened, digests = await open_values(session, field, f"{label}.open", field.concat([field.from_ints([y_share]), rho_share]), mac_coins)
    y = opened[0:1]
    rho = opened[1:]

    # 6. Sacrifice: σ = t·c − ĉ − ρ·b must be 0; both checks in one MAC check.
    sigma_mac = t * part(macs, 3) - part(macs, 4) - rho * part(macs, 2)
    await named_mac_check(
        session,
        field,
        alpha,
        mac_coins,
        [
            (MAC_GENERATION_FAILURE, y, field.from_ints([y_mac])),
            (SACRIFICE_FAILURE, field.concat([rho, field.zeros(b_count)]), field.concat([rho_mac, sigma_mac])),
        ],
        label=f"{label}.mac",
        digests=digests,
    )
    return Shares(a0, part(macs, 0)), Shares(b_arr, part(macs, 2)), Shares(c0, part(macs, 3))


def is_check_failure(exc: BaseException) -> bool:
    """Whether ``exc`` reports a failed check (the setup must not be reused)."""
    if isinstance(exc, MacCheckFailure):
        return True
    if isinstance(exc, SessionAborted):
        names = ("KOS correlation check failed", MAC_GENERATION_FAILURE, SACRIFICE_FAILURE, FAILURE_MARKER)
        return any(name in exc.reason for name in names)
    return False
