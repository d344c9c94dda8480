"""The tuple store service (reference: Carbyne Stack's Castor).

Keeps this VCP's shares of preprocessed tuples (triples, squares, bits,
inverse pairs, input masks) as chunks of jobs, runs the cross-VCP reservation
protocol so that every VCP consumes the same tuples in the same order and none
twice, imports/exports MP-SPDZ preprocessing files and reports stock.

Layer L4: imports only vcpd.errors, config, keys, logs, math, wire, store,
protocol and vcpd.services.ports -- never another service, vcpd.net,
vcpd.testing, api, node or daemon.
"""

from __future__ import annotations

from .kinds import KINDS as KINDS
from .kinds import TupleKind as TupleKind
from .mpspdz import build_header as build_header
from .mpspdz import parse_file as parse_file
from .reservation import SESSION_PREFIX as RESERVE_SESSION_PREFIX
from .schema import MIGRATIONS as MIGRATIONS
from .store import ACTIVATE_PREFIX as ACTIVATE_SESSION_PREFIX
from .store import TupleStore as TupleStore
from .telemetry import KindStock as KindStock
from .telemetry import StoredJob as StoredJob
from .telemetry import TupleStoreStatistics as TupleStoreStatistics

__all__ = [
    "ACTIVATE_SESSION_PREFIX",
    "KINDS",
    "MIGRATIONS",
    "RESERVE_SESSION_PREFIX",
    "KindStock",
    "StoredJob",
    "TupleKind",
    "TupleStore",
    "TupleStoreStatistics",
    "build_header",
    "parse_file",
]
