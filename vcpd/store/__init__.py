"""The persistent store: one SQLite database per VCP, shared by its services.

Each service owns its tables and declares them as versioned
:class:`Migration` records; :func:`open_store` applies what is pending and
refuses a database written by a newer vcpd. Services then run their SQL in
worker threads through :meth:`Store.read` and :meth:`Store.write`.

This package is layer L2: it must not import any vcpd module other than
:mod:`vcpd.errors` (stdlib ``sqlite3`` and trio are fine).
"""

from __future__ import annotations

from .db import DEFAULT_BUSY_TIMEOUT as DEFAULT_BUSY_TIMEOUT
from .db import DEFAULT_READERS as DEFAULT_READERS
from .db import Store as Store
from .db import StoreStatistics as StoreStatistics
from .db import open_store as open_store
from .migrations import Migration as Migration

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_READERS",
    "Migration",
    "Store",
    "StoreStatistics",
    "open_store",
]
