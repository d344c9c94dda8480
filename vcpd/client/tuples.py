"""Operator methods of :class:`vcpd.client.Client` for tuples (admin keys only)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio

from vcpd.errors import RequestError, VcpError

if TYPE_CHECKING:
    from .core import Client

__all__ = ["TUPLE_KINDS", "TuplesMixin"]

TUPLE_KINDS: Final = ("triple", "square", "bit", "inverse", "mask", "bounded")
POLL_INTERVAL: Final = 0.2  # seconds between job progress polls


class TuplesMixin:
    """Tuple stock, generation jobs and MP-SPDZ imports."""

    async def tuple_stock(self: Client, *, window: int = 60) -> list[dict[str, Any]]:
        """Every VCP's stock per kind (available, reserved, consumed, rate)."""
        return await self.call_all("tuples.stock", {"window": window})

    async def generate_tuples(self: Client, kind: str, count: int) -> str:
        """Start a generation job on the leader (VCP 0); return its id."""
        answer = await self.call(0, "tuples.generate", {"kind": kind, "count": count})
        return str(answer["job"])

    async def tuple_jobs(self: Client, *, limit: int = 50, party: int = 0) -> list[dict[str, Any]]:
        """The newest jobs as one VCP (default the leader) records them."""
        return list((await self.call(party, "tuples.jobs", {"limit": limit}))["jobs"])

    async def tuple_job(self: Client, job_id: str, *, party: int = 0) -> dict[str, Any]:
        return dict((await self.call(party, "tuples.job", {"id": job_id}))["job"])

    async def wait_tuple_job(
        self: Client,
        job_id: str,
        *,
        progress: Callable[[dict[str, Any]], None] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Wait until the job completed (or failed) on every VCP; return the leader's view.

        Raises:
            VcpError: the job failed (the message carries the job's error).
        """
        with trio.fail_after(timeout) if timeout is not None else trio.CancelScope():
            while True:
                views = await _job_views(self, job_id)
                leader = views[0] or {"id": job_id, "state": "pending", "progress": 0}
                if progress is not None:
                    progress(leader)
                jobs = [{"job": view or {"state": "pending"}} for view in views]
                states = [j["job"].get("state") for j in jobs]
                if "failed" in states:
                    errors = [j["job"].get("error") for j in jobs if j["job"].get("error")]
                    raise VcpError(f"tuple job {job_id} failed: {errors[0] if errors else 'unknown reason'}")
                if all(state == "completed" for state in states):
                    return leader
                await trio.sleep(POLL_INTERVAL)

    async def import_tuples(self: Client, kind: str, files: Sequence[Path], *, job_id: str | None = None) -> str:
        """Load MP-SPDZ preprocessing files (one per VCP, in party order) as one job.

        Every VCP checks its own file's header (prime, share size) and count;
        the job becomes usable only when all VCPs hold the same number of tuples.
        """
        if len(files) != self.n_parties:
            raise RequestError(
                "bad-request", f"need one file per VCP ({self.n_parties}), got {len(files)}; list them in party order"
            )
        job = job_id or str(uuid.uuid4())
        per_party = [
            {"job": job, "kind": kind, "data": Path(path).read_bytes(), "filename": Path(path).name} for path in files
        ]
        await self.call_all("tuples.import", per_party)
        await self.call_all("tuples.activate", {"job": job})
        return job


async def _job_views(client: Client, job_id: str) -> list[dict[str, Any] | None]:
    """Each VCP's view of a job; None where the VCP has not heard of it yet."""
    views: list[dict[str, Any] | None] = [None] * client.n_parties

    async def one(party: int) -> None:
        try:
            views[party] = dict((await client.call(party, "tuples.job", {"id": job_id}))["job"])
        except RequestError as exc:
            if exc.code != "not-found":
                raise

    async with trio.open_nursery() as nursery:
        for party in range(client.n_parties):
            nursery.start_soon(one, party)
    return views
