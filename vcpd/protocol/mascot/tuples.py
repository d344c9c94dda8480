"""Every tuple kind from the secure machinery, and the job entry point :func:`generate`.

* ``triple`` — :func:`.triples.triple_batch` (multiply, combine, authenticate,
  sacrifice, MAC check), in batches.
* ``mask`` — input masks are *independent* authenticated random values
  (DESIGN §2): every party authenticates a random share vector with COPEe
  (:func:`.cope.authenticate`) and the MAC-generation check runs on it. No
  multiplication: κ·16 = 2 KB per mask and ordered pair, about a tenth of a
  triple's cost.
* ``square`` (a, a²) — from a checked triple (a, b, c): open e = a − b, then
  ⟨a²⟩ = ⟨c⟩ + e·⟨a⟩ (a·a = a·b + a·e). e is uniform and independent of a
  (b is), so the pair is a uniform square pair; the opening is MAC-checked.
* ``bit`` — from square pairs (mpc-notes §1.5): open s = a², b = (a/√s + 1)/2
  (:meth:`vcpd.protocol.online.OnlineParty.bits_from_squares`).
* ``bounded`` r ∈ [0, 2^40) — r = Σ_{i<40} 2^i·b_i from 40 of the bits
  above: a fixed public linear combination of authenticated, independent,
  uniform bits is an authenticated uniform 40-bit value, and no opening is
  added (the bits' openings are MAC-checked as for ``bit``).
* ``inverse`` (r, r⁻¹) — from a checked triple (r, s, t = r·s): open t, then
  ⟨r⁻¹⟩ = t⁻¹·⟨s⟩. t is uniform and independent of r (s is); zeros
  (probability 2/p) are dropped and made up.

Every derived opening goes through the online phase's batched MAC check
before :func:`generate` returns, so the outputs are authenticated exactly
like dealer tuples: value‖MAC shares under α = Σ α_i.

This module must not import vcpd.net, vcpd.testing, services, api, node or
daemon; from vcpd it uses only errors, math and vcpd.protocol.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from vcpd.math import FieldArray, PrimeField, Shares

from ..online import OnlineParty
from ..rounds import exchange_all
from ..nonlinear.cost import BOUNDED_BITS  # r uniform in [0, 2^BOUNDED_BITS)
from ..transport import Session
from ._check import CoinToss, named_mac_check, open_values
from ._common import limbs_of, to_array
from .cope import MAC_GENERATION_FAILURE, authenticate, mac_generation_combination
from .setup import MascotState
from .triples import is_check_failure, triple_batch

__all__ = ["DEFAULT_BATCH", "KINDS", "generate", "mask_batch"]

DEFAULT_BATCH: Final = 2048
"""Triples per batch: ~45 MB of OT data per link and batch in memory, ~45 KB per
triple on the wire (two parties); large enough that rounds cost little."""

KINDS: Final = ("triple", "square", "bit", "inverse", "mask", "bounded")


async def mask_batch(session: Session, state: MascotState, field: PrimeField, count: int, *, label: str, threads: bool = False) -> Shares:
    """``count`` authenticated uniformly random values (MASCOT Π_Auth with its check)."""
    sid, me = session.id, session.party
    values = field.random(count + 1)  # the last one masks the check's opening
    coins = CoinToss(sid, me, f"{label}.check")
    mac_limbs, extras = await authenticate(
        session, field, state.links, state.alpha, state.alpha_bits(), limbs_of(values), label=f"{label}.auth",
        threads=threads, extra=coins.commitment,
    )  # fmt: skip
    coins.accept(extras)
    macs = to_array(field, mac_limbs)
    seed = coins.seed(await exchange_all(session, f"{label}.check.open", coins.opening))
    y_share, y_mac = mac_generation_combination(field, values, macs, seed)
    mac_coins = CoinToss(sid, me, f"{label}.mac")
    y, digests = await open_values(session, field, f"{label}.open", field.from_ints([y_share]), mac_coins)
    await named_mac_check(
        session, field, state.alpha, mac_coins, [(MAC_GENERATION_FAILURE, y, field.from_ints([y_mac]))],
        label=f"{label}.mac", digests=digests,
    )  # fmt: skip
    return Shares(values[:count], macs[:count])


def _batches(count: int, size: int) -> list[int]:
    full, rest = divmod(count, size)
    return [size] * full + ([rest] if rest else [])


async def _triples(session: Session, state: MascotState, field: PrimeField, count: int, *, prefix: str, batch: int, threads: bool) -> list[Shares]:
    parts: list[tuple[Shares, Shares, Shares]] = []
    for index, n in enumerate(_batches(count, batch)):
        parts.append(await triple_batch(session, state, field, n, label=f"{prefix}.{index}", threads=threads))
    return [Shares.concat([p[k] for p in parts]) for k in range(3)]


def _nonzero(values: FieldArray) -> np.ndarray:
    words = np.frombuffer(values.to_bytes(), "<u8").reshape(-1, 2)
    mask: np.ndarray = (words[:, 0] | words[:, 1]) != 0
    return mask


async def generate(
    session: Session,
    state: MascotState,
    field: PrimeField,
    kind: str,
    count: int,
    *,
    batch_size: int = DEFAULT_BATCH,
    threads: bool = False,
) -> list[Shares]:
    """Make ``count`` tuples of ``kind`` with every other VCP (all call it alike).

    Returns one :class:`~vcpd.math.Shares` per component — triple: [a, b, c];
    square: [a, a²]; bit: [b]; inverse: [r, r⁻¹]; mask: [r] — in the dealer's
    format (value‖MAC under α = Σ α_i). Nothing is returned unless every check
    passed.

    Args:
        batch_size: triples (or masks) per protocol batch.
        threads: run the heavy local steps in worker threads (parties and
            links overlap; do not combine with trio's autojump clock).

    Raises:
        SessionAborted: "KOS correlation check failed with VCP k", malformed
            messages, timeouts, a peer's abort (its reason names the check).
        MacCheckFailure: "MAC-generation check failed", "sacrifice check
            failed", or the MAC check of a derived kind's openings.
        ValueError: unknown kind or negative count.

    After a failed check the state is marked failed and refuses further jobs.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown tuple kind {kind!r} (expected one of {', '.join(KINDS)})")
    if count < 0 or batch_size < 1:
        raise ValueError("count must be ≥ 0 and batch_size ≥ 1")
    state.check_usable(session.id, field, session.party, session.n_parties)
    if count == 0:
        return [Shares(field.zeros(0), field.zeros(0)) for _ in range({"triple": 3, "square": 2, "inverse": 2}.get(kind, 1))]
    try:
        return await _generate(session, state, field, kind, count, batch_size=batch_size, threads=threads)
    except BaseException as exc:
        if is_check_failure(exc):
            state.failed = True
        raise


async def _generate(session: Session, state: MascotState, field: PrimeField, kind: str, count: int, *, batch_size: int, threads: bool) -> list[Shares]:
    prefix = f"mascot.{kind}"
    if kind == "triple":
        return await _triples(session, state, field, count, prefix=prefix, batch=batch_size, threads=threads)
    if kind == "mask":
        parts = [
            await mask_batch(session, state, field, n, label=f"{prefix}.{index}", threads=threads)
            for index, n in enumerate(_batches(count, batch_size))
        ]
        return [Shares.concat(parts)]
    online = OnlineParty(session, field, state.alpha, label_prefix=f"{prefix}.online.")
    if kind == "square":
        a, b, c = await _triples(session, state, field, count, prefix=prefix, batch=batch_size, threads=threads)
        e = await online.open(a - b)
        squares = c + a * e
        await online.mac_check()
        return [a, squares]
    if kind in ("bit", "bounded"):
        width = BOUNDED_BITS if kind == "bounded" else 1
        found: list[Shares] = []
        have, round_ = 0, 0
        while have < width * count:
            need = width * count - have
            a, b, c = await _triples(session, state, field, need, prefix=f"{prefix}.{round_}", batch=batch_size, threads=threads)
            e = await online.open(a - b)
            bits = await online.bits_from_squares([a, c + a * e])  # drops s = 0 (probability 1/p)
            found.append(bits)
            have += len(bits)
            round_ += 1
        await online.mac_check()
        bits = Shares.concat(found)[: width * count]
        if kind == "bit":
            return [bits]
        # Row i = bit i of every value; Horner from the top: r = Σ 2^i·b_i (linear, so MACs follow).
        value = bits[(width - 1) * count :]
        for i in range(width - 2, -1, -1):
            value = value + value + bits[i * count : (i + 1) * count]
        return [value]
    # inverse
    rs: list[Shares] = []
    inverses: list[Shares] = []
    have, round_ = 0, 0
    while have < count:
        r, s, t = await _triples(session, state, field, count - have, prefix=f"{prefix}.{round_}", batch=batch_size, threads=threads)
        u = await online.open(t)
        keep = _nonzero(u)
        if not keep.all():
            r, s, u = r[keep], s[keep], u[keep]
        if len(u):
            rs.append(r)
            inverses.append(s * u.inverse())
            have += len(u)
        round_ += 1
    await online.mac_check()
    return [Shares.concat(rs)[:count], Shares.concat(inverses)[:count]]
