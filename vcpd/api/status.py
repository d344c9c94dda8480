"""The ``status`` and ``ping`` operations.

``status`` answers every authenticated client (an application developer may
want to know whether the VC is up); link details (last errors, traffic) go to
admins only. The node supplies the facts through :class:`StatusSource`, so this
module knows nothing of the mesh.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vcpd import __version__

from .dispatch import Args, Caller, Dispatcher

__all__ = ["StatusSource", "register_status_ops"]


@dataclass(frozen=True, slots=True)
class StatusSource:
    """What ``status`` reports, provided by the node that owns the parts."""

    party: int
    n_parties: int
    offline: str
    vc_digest: str
    started: float  # time.time() at startup
    links: Callable[[], Mapping[int, Mapping[str, Any]]]  # peer -> {"state": "up"/"down", ...}
    extra: Callable[[], Mapping[str, Any]] = dict  # more facts (tuple stock, ...) for admins


def register_status_ops(dispatcher: Dispatcher, source: StatusSource) -> None:
    """Add ``ping`` and ``status`` to ``dispatcher``."""

    async def ping(caller: Caller, args: Args) -> dict[str, Any]:
        args.finish()
        return {"party": source.party, "time": time.time()}

    async def status(caller: Caller, args: Args) -> dict[str, Any]:
        args.finish()
        links = source.links()
        result: dict[str, Any] = {
            "party": source.party,
            "version": __version__,
            "offline": source.offline,
            "insecure_offline": source.offline == "dealer",
            "parties": source.n_parties,
            "vc": source.vc_digest,
            "uptime": round(time.time() - source.started, 3),
            "links": {str(peer): detail.get("state", "down") for peer, detail in sorted(links.items())},
            "admin": caller.is_admin,
        }
        if source.offline == "dealer":
            result["warning"] = "dealer offline phase: INSECURE, VCP 0 knows every tuple and the MAC key"
        if caller.is_admin:
            result["link_details"] = {str(peer): dict(detail) for peer, detail in sorted(links.items())}
            result.update(source.extra())
        return result

    dispatcher.register("ping", ping)
    dispatcher.register("status", status)
