"""The tuple generator service (reference: Carbyne Stack's Klyshko).

Runs generation jobs (the insecure trusted dealer, or the secure MASCOT
protocol, behind :class:`GenerationBackend`), keeps job records on every
VCP, and on the leader schedules jobs to keep each kind's stock above its
threshold. Tuples go to the tuple store through
:class:`vcpd.services.ports.TupleSink`.

Layer L4: imports only vcpd.errors, config, keys, logs, math, wire, store,
protocol and vcpd.services.ports -- never another service, vcpd.net,
vcpd.testing, api, node or daemon.
"""

from __future__ import annotations

from .backend import GenerationBackend as GenerationBackend
from .backend import JobSpec as JobSpec
from .control import CONTROL_PREFIX as CONTROL_SESSION_PREFIX
from .control import HELLO_PREFIX as HELLO_SESSION_PREFIX
from .dealer import DealerBackend as DealerBackend
from .dealing import deal_batch as deal_batch
from .dealing import expand_seed as expand_seed
from .jobs import MIGRATIONS as MIGRATIONS
from .jobs import Job as Job
from .mascot import STATE_FILE as MASCOT_STATE_FILE
from .mascot import MascotBackend as MascotBackend
from .scheduler import pick_kind as pick_kind
from .service import JOB_PREFIX as JOB_SESSION_PREFIX
from .service import GeneratorStatistics as GeneratorStatistics
from .service import TupleGenerator as TupleGenerator

__all__ = [
    "CONTROL_SESSION_PREFIX",
    "HELLO_SESSION_PREFIX",
    "JOB_SESSION_PREFIX",
    "MASCOT_STATE_FILE",
    "MIGRATIONS",
    "DealerBackend",
    "GenerationBackend",
    "GeneratorStatistics",
    "Job",
    "JobSpec",
    "MascotBackend",
    "TupleGenerator",
    "deal_batch",
    "expand_seed",
    "pick_kind",
]
