"""Tuple operations (admin only): stock, generation jobs, MP-SPDZ import.

Generation is led by VCP 0: clients send ``tuples.generate`` there, and every
VCP reports the job under the same id. Imports go to every VCP, each with its
own party's file, followed by ``tuples.activate`` on all of them.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from vcpd.errors import RequestError
from vcpd.services.generator import Job, TupleGenerator
from vcpd.services.tuples import StoredJob, TupleStore

from .dispatch import Args, Caller, Dispatcher

__all__ = ["job_view", "register_tuple_ops"]

MAX_IMPORT_BYTES = 256 * 2**20  # one import request; larger files go in several jobs


def job_view(job: Job, stored: StoredJob | None) -> dict[str, Any]:
    """A generation job as clients see it (plus the store's view of its tuples)."""
    view = dataclasses.asdict(job)
    view["id"] = view.pop("job_id")
    if stored is not None:
        view["tuples"] = {
            "state": stored.state,
            "stored": stored.stored,
            "used": stored.used,
            "consumed": stored.consumed,
            "discarded": stored.discarded,
        }
    return view


def _stored_view(stored: StoredJob) -> dict[str, Any]:
    view = dataclasses.asdict(stored)
    view["id"] = view.pop("job_id")
    return view


def _check_id(op: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise RequestError("bad-request", f"{op}: '{value}' is not a UUID") from None


def register_tuple_ops(dispatcher: Dispatcher, tuples: TupleStore, generator: TupleGenerator) -> None:
    """Add the ``tuples.*`` operations to ``dispatcher``."""

    async def stock(caller: Caller, args: Args) -> dict[str, Any]:
        window = args.int("window", 60)
        args.finish()
        if not 1 <= window <= 86400:
            raise RequestError("bad-request", "tuples.stock: window must be 1..86400 seconds")
        stats = tuples.statistics(float(window))
        gen = generator.statistics()
        return {
            "tuples": {kind: dataclasses.asdict(stock) for kind, stock in stats.kinds.items()},
            "window": stats.window,
            "open_reservations": stats.open_reservations,
            "generating": dict(gen.in_flight),
            "offline": gen.backend,
            "insecure_offline": gen.insecure,
        }

    async def generate(caller: Caller, args: Args) -> dict[str, Any]:
        kind = args.str("kind")
        count = args.int("count")
        args.finish()
        return {"job": await generator.generate(kind, count)}

    async def jobs(caller: Caller, args: Args) -> dict[str, Any]:
        limit = args.int("limit", 50)
        args.finish()
        if not 1 <= limit <= 1000:
            raise RequestError("bad-request", "tuples.jobs: limit must be 1..1000")
        found = await generator.jobs(limit)
        return {"jobs": [job_view(job, await tuples.job(job.job_id)) for job in found]}

    async def job(caller: Caller, args: Args) -> dict[str, Any]:
        job_id = _check_id("tuples.job", args.str("id"))
        args.finish()
        found = await generator.job(job_id)
        stored = await tuples.job(job_id)
        if found is None:
            if stored is None:
                raise RequestError("not-found", f"no tuple job {job_id} on this VCP")
            return {"job": _stored_view(stored)}
        return {"job": job_view(found, stored)}

    async def import_file(caller: Caller, args: Args) -> dict[str, Any]:
        job_id = _check_id("tuples.import", args.str("job"))
        kind = args.str("kind")
        data = args.bytes("data")
        filename = args.str("filename", None)
        args.finish()
        if len(data) > MAX_IMPORT_BYTES:
            raise RequestError("bad-request", f"tuples.import: at most {MAX_IMPORT_BYTES} bytes per request")
        stored = await tuples.import_mpspdz(job_id, kind, data, filename=filename)
        return {"job": _stored_view(stored)}

    async def activate(caller: Caller, args: Args) -> dict[str, Any]:
        job_id = _check_id("tuples.activate", args.str("job"))
        args.finish()
        return {"job": _stored_view(await tuples.activate_imported(job_id))}

    dispatcher.register("tuples.stock", stock, admin=True)
    dispatcher.register("tuples.generate", generate, admin=True)
    dispatcher.register("tuples.jobs", jobs, admin=True)
    dispatcher.register("tuples.job", job, admin=True)
    dispatcher.register("tuples.import", import_file, admin=True)
    dispatcher.register("tuples.activate", activate, admin=True)
