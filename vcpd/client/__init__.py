"""The public Python client library of vcpd.

Async (trio)::

    async with open_client("local-vc/client.toml") as client:
        print(await client.status())

Sync (scripts, notebooks)::

    with SyncClient("local-vc/client.toml") as client:
        print(client.status())
"""

from __future__ import annotations

from .core import Client as Client
from .core import VcpStatus as VcpStatus
from .core import open_client as open_client
from .core import probe_vc as probe_vc
from .sync import SyncClient as SyncClient

__all__ = ["Client", "SyncClient", "VcpStatus", "open_client", "probe_vc"]
