"""The executor service: runs client MPC programs in a sandbox (DESIGN §6).

Layer L4: may import vcpd.errors, config, logs, math, wire, store and
protocol; never another service, net, api, node or daemon.
"""

from __future__ import annotations

from .budget import Budget as Budget
from .sandbox import CompiledProgram as CompiledProgram
from .sandbox import ProgramCache as ProgramCache
from .sandbox import compile_program as compile_program
from .sandbox import source_digest as source_digest

__all__ = [
    "Budget",
    "CompiledProgram",
    "ProgramCache",
    "compile_program",
    "source_digest",
]
