"""The executor service: runs client MPC programs in a sandbox (DESIGN §6).

* :mod:`.sandbox` / :mod:`.budget` -- the restricted language and its limits;
* :mod:`.graph`, :mod:`.engine`, :mod:`.schedule` -- the lazy, round-merging
  SPDZ engine (one exact tuple reservation per flush);
* :mod:`.nonlinear_ops`, :mod:`.integers`, :mod:`.secret_ops` -- comparisons,
  shifts, divisions, bits and randomness as engine nodes running the protocols
  of :mod:`vcpd.protocol.nonlinear`, with MP-SPDZ's (and Python's floor
  division) semantics;
* :mod:`.fixed`, :mod:`.fixed_public` -- ``sfix`` and ``cfix`` (error bounds
  in :mod:`.fixed`);
* :mod:`.context` -- one run's state, and the sealing that keeps runs apart;
* :mod:`.types`, :mod:`.public`, :mod:`.containers`, :mod:`.matrix`,
  :mod:`.library` -- MP-SPDZ's program API (``sint``, ``sintbit``, ``cint``,
  ``regint``, ``sfix``, ``cfix``, ``Array``, ``Matrix``, ``print_ln``,
  ``for_range``, the socket shims...);
* :mod:`.runner` -- one execution on this VCP, with every other VCP;
* :mod:`.executions`, :mod:`.records` -- the :class:`Executor` service and
  its records in the store (owner ``executor``).

Layer L4: may import vcpd.errors, config, keys, logs, math, wire, store,
protocol and vcpd.services.ports; never another service, net, api, node or
daemon.
"""

from __future__ import annotations

from .budget import Budget as Budget
from .engine import Engine as Engine
from .executions import MIGRATIONS as MIGRATIONS
from .executions import ExecutionReport as ExecutionReport
from .executions import Executor as Executor
from .graph import EngineStatistics as EngineStatistics
from .records import ExecutionRecord as ExecutionRecord
from .runner import OUTPUT_MODES as OUTPUT_MODES
from .sandbox import CompiledProgram as CompiledProgram
from .sandbox import ProgramCache as ProgramCache
from .sandbox import compile_program as compile_program
from .sandbox import source_digest as source_digest

__all__ = [
    "MIGRATIONS",
    "OUTPUT_MODES",
    "Budget",
    "CompiledProgram",
    "Engine",
    "EngineStatistics",
    "ExecutionRecord",
    "ExecutionReport",
    "Executor",
    "ProgramCache",
    "compile_program",
    "source_digest",
]
