"""The secure offline phase: MASCOT tuple generation without a trusted party.

Keller, Orsini and Scholl, "MASCOT: Faster Malicious Arithmetic Secure
Computation with Oblivious Transfer" (CCS 2016), structured as MP-SPDZ's
implementation: per-link base OTs (:mod:`.baseot`, Masny–Rindal endemic OT),
IKNP OT extension with the KOS correlation check (:mod:`.otext`), Gilboa
multiplication (:mod:`.gilboa`), COPEe authentication under each party's α_i
with the MAC-generation check (:mod:`.cope`), combine and sacrifice
(:mod:`.triples`), and every tuple kind (:mod:`.tuples`). See docs/offline.md.

Entry points for the generator backend::

    state = await mascot_setup(session, field, alpha_share, party, n_parties)   # once per VC
    blob = state.to_bytes(); state = MascotState.from_bytes(blob)             # persist it
    shares = await generate(session, state, field, "triple", count)           # per job

This package may import from vcpd only errors, config, keys, logs, math and
wire (and vcpd.protocol) — never net, testing, services, api, node or daemon.
"""

from __future__ import annotations

from .cope import MAC_GENERATION_FAILURE as MAC_GENERATION_FAILURE
from .gilboa import KOS_FAILURE as KOS_FAILURE
from .setup import Link as Link
from .setup import MascotState as MascotState
from .setup import mascot_setup as mascot_setup
from .triples import SACRIFICE_FAILURE as SACRIFICE_FAILURE
from .tuples import DEFAULT_BATCH as DEFAULT_BATCH
from .tuples import KINDS as KINDS
from .tuples import generate as generate

__all__ = [
    "DEFAULT_BATCH",
    "KINDS",
    "KOS_FAILURE",
    "MAC_GENERATION_FAILURE",
    "SACRIFICE_FAILURE",
    "Link",
    "MascotState",
    "generate",
    "mascot_setup",
]
