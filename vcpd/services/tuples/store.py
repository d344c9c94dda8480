"""The tuple store service (reference: Carbyne Stack's Castor).

:class:`TupleStore` keeps this VCP's shares of tuples as chunks of jobs in the
VCP's SQLite store and hands them out so that **all VCPs consume the same
tuples in the same order, each exactly once** (DESIGN §2, §7):

* as a :class:`~vcpd.services.ports.TupleSource` it runs the reservation
  protocol of :mod:`.reservation` and records consumption durably, in the same
  transaction that reads the shares, before the caller can use them;
* as a :class:`~vcpd.services.ports.TupleSink` it stores the chunks a
  generator produces and activates or deletes whole jobs;
* it imports and exports MP-SPDZ preprocessing files (:mod:`.mpspdz`);
* it reports stock and consumption rates (:mod:`.telemetry`).

On start (:meth:`TupleStore.recover`, run by :meth:`TupleStore.serve`) every
still-open reservation is discarded -- its tuples burnt -- because whoever
held it is gone, and incomplete jobs are deleted: no producer resumes them.

Layer L4: imports only vcpd.errors, logs, math, store, protocol and
vcpd.services.ports (never another service, net, api, node or daemon).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import trio

from vcpd.errors import SessionAborted, TuplesExhausted
from vcpd.logs import get_logger
from vcpd.math.field import PrimeField
from vcpd.math.shares import Shares
from vcpd.protocol.transport import Transport
from vcpd.services.ports import TUPLE_KINDS, Reservation
from vcpd.store import Store

from . import schema
from .kinds import KINDS, check_counts, check_id, kind_of, unpack_tuples
from .mpspdz import build_header, parse_file
from .reservation import (
    SESSION_PREFIX,
    follow_reservation,
    follow_taking,
    lead_reservation,
    lead_taking,
    take_sync,
)
from .telemetry import DEFAULT_RATE_WINDOW, KindStock, RateMeter, StoredJob, TupleStoreStatistics

__all__ = ["ACTIVATE_TIMEOUT", "RESERVATION_RETENTION", "TupleStore"]

log = get_logger("tuples")
T = TypeVar("T")

RESERVATION_RETENTION: Final = 7 * 24 * 3600.0
"""Seconds closed reservation rows are kept (to refuse a reused request id) once their jobs are retired."""

ACTIVATE_TIMEOUT: Final = 60.0
"""Seconds each step of activating an imported job may wait for the other VCPs."""

ACTIVATE_PREFIX: Final = "tuples.activate:"

UNPACK_IN_THREAD_BYTES: Final = 1 << 20
"""Takes larger than this (bytes) are parsed in a worker thread, off the event loop."""

FAILED_JOB_RETENTION: Final = 30 * 24 * 3600.0
"""Seconds the row of a failed job is kept (for ``jobs``) before recovery prunes it."""


class TupleStore:
    """This VCP's tuple store; see the module docstring.

    Args:
        store: the VCP's open store (migrated with :data:`MIGRATIONS`).
        transport: sessions to the other VCPs.
        field: the VC's field.
        party: this VCP's party id (0 is the leader, which assigns ranges).
        n_parties: number of VCPs.
        mac_share: this VCP's α_i, used to check and write MP-SPDZ file headers.
    """

    MIGRATIONS: Final = schema.MIGRATIONS

    def __init__(
        self,
        store: Store,
        transport: Transport,
        field: PrimeField,
        party: int,
        n_parties: int,
        *,
        mac_share: int | None = None,
    ) -> None:
        self._store = store
        self._transport = transport
        self._field = field
        self._party = party
        self._n_parties = n_parties
        self._mac_share = mac_share
        self._totals = schema.Totals(dict.fromkeys(KINDS, 0), dict.fromkeys(KINDS, 0), dict.fromkeys(KINDS, 0), 0)
        self._rates = RateMeter()

    @property
    def is_leader(self) -> bool:
        """Whether this VCP assigns reservation ranges (party 0)."""
        return self._party == 0

    # ------------------------------------------------------------------ lifecycle

    async def recover(self) -> None:
        """Discard open reservations, delete incomplete jobs, load the counters.

        Run once at start, before any other call (``serve`` does it).
        """
        now = time.time()
        discarded, dropped, pruned = await self._write(
            schema.recover, now - RESERVATION_RETENTION, now - FAILED_JOB_RETENTION
        )
        if discarded or dropped:
            log.warning(
                "recovered the tuple store: discarded open reservations, deleted incomplete jobs",
                extra={"ctx": {"reservations": discarded, "jobs": dropped, "pruned": pruned}},
            )

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Recover, report ready, then idle (the store has no background work)."""
        await self.recover()
        task_status.started()
        await trio.sleep_forever()

    def statistics(self, window: float = DEFAULT_RATE_WINDOW) -> TupleStoreStatistics:
        """Stock per kind and consumption rates over ``window`` seconds (no I/O)."""
        rates = self._rates.rates(trio.current_time(), window)
        t = self._totals
        kinds = {
            k: KindStock(t.available[k], t.reserved[k], t.consumed[k], round(rates[k], 3)) for k in TUPLE_KINDS
        }
        return TupleStoreStatistics(kinds, window, t.open_reservations, self.is_leader)

    async def jobs(self, limit: int = 100) -> list[StoredJob]:
        """The newest ``limit`` jobs this store holds or held, newest first."""
        rows = await self._store.read(schema.job_rows, limit)
        return [_stored(row) for row in rows]

    async def job(self, job_id: str) -> StoredJob | None:
        """One job, or None if this VCP never had it."""
        row = await self._store.read(schema.job_row, job_id)
        return None if row is None else _stored(row)

    # ------------------------------------------------------------------ TupleSource

    async def reserve(self, request_id: str, counts: Mapping[str, int]) -> Reservation:
        """Reserve tuples for ``request_id`` on every VCP (see :mod:`.reservation`).

        Every VCP calls this with the same request id and counts and gets the
        same :class:`Reservation`.

        Raises:
            ValueError: a malformed id or counts (nothing is sent).
            TuplesExhausted: too few tuples of a kind, on every VCP; nothing recorded.
            SessionAborted, PeerUnavailable: the session failed; anything this
                VCP recorded for it is discarded.
        """
        check_id(request_id, "request id")
        wanted = check_counts(counts)
        if not wanted:
            return Reservation(request_id, ())
        async with self._transport.session(SESSION_PREFIX + request_id) as session:
            if self.is_leader:
                outcome = await lead_reservation(session, self._write, request_id, wanted)
            else:
                outcome = await follow_reservation(session, self._write, request_id, wanted)
        if isinstance(outcome, TuplesExhausted):
            raise outcome
        return outcome

    async def reserve_and_take(self, request_id: str, counts: Mapping[str, int]) -> dict[str, list[Shares]]:
        """:meth:`reserve` and :meth:`take` in one step, for callers that take at once.

        Every VCP calls this with the same request id and counts (never mixed
        with :meth:`reserve` for one id) and gets its shares of the same
        tuples, recorded consumed (durably) first. Followers record and take
        in one store write, the leader sends its ranges as soon as it has
        chosen them and does not wait for the followers (see
        :mod:`.reservation`): a failure anywhere fails the caller's session
        on every VCP, and the tuples are burnt either way.

        Raises:
            ValueError: a malformed id or counts (nothing is sent).
            TuplesExhausted: too few tuples of a kind, on every VCP; nothing recorded.
            SessionAborted, PeerUnavailable: the reservation failed; whatever
                this VCP recorded for it is discarded or consumed, never reused.
        """
        check_id(request_id, "request id")
        wanted = check_counts(counts)
        if not wanted:
            return {}
        async with self._transport.session(SESSION_PREFIX + request_id) as session:
            if self.is_leader:
                outcome = await lead_taking(session, self._write, request_id, wanted)
            else:
                outcome = await follow_taking(session, self._write, request_id, wanted)
        if isinstance(outcome, TuplesExhausted):
            raise outcome
        reservation, raw = outcome
        self._rates.record(trio.current_time(), reservation.counts)
        return await self._unpack(raw)

    async def take(self, reservation: Reservation) -> dict[str, list[Shares]]:
        """This VCP's shares of a reservation, recorded consumed (durably) first.

        Returns kind -> one :class:`Shares` per component, in the reservation's
        order. Shielded from cancellation once the store write has started, as
        every store write is.

        Raises:
            VcpInternalError: the reservation was already taken or discarded,
                or does not match what this VCP recorded.
        """
        if not reservation.ranges:
            return {}
        raw: dict[str, list[bytes]] = await self._write(take_sync, reservation)
        self._rates.record(trio.current_time(), reservation.counts)
        return await self._unpack(raw)

    async def _unpack(self, raw: dict[str, list[bytes]]) -> dict[str, list[Shares]]:
        if sum(len(data) for parts in raw.values() for data in parts) > UNPACK_IN_THREAD_BYTES:
            return await trio.to_thread.run_sync(_unpack_all, self._field, raw)
        return _unpack_all(self._field, raw)

    async def discard(self, reservation: Reservation) -> None:
        """Burn an open reservation's tuples (no-op if already taken or discarded)."""
        if reservation.ranges:
            await self._write(schema.discard_open, [reservation.request_id])

    # ------------------------------------------------------------------ TupleSink

    async def create_job(self, job_id: str, kind: str, count: int, *, source: str) -> None:
        """Register an empty, inactive job.

        Raises:
            ValueError: bad arguments, or the id exists on this VCP.
        """
        check_id(job_id, "job id")
        kind_of(kind)
        if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            raise ValueError(f"a job holds a positive number of tuples, got {count!r}")
        await self._write(schema.create_job, job_id, kind, count, source)

    async def store_chunk(self, job_id: str, offset: int, count: int, data: bytes) -> int:
        """Append ``count`` tuples at ``offset`` to a filling job; return the number stored.

        Raises:
            ValueError: unknown or inactive job, wrong offset or size.
            FieldError: a word of ``data`` is not below p.
        """
        return int(await self._write(schema.store_chunk, self._field, job_id, offset, count, data))

    async def activate_job(self, job_id: str) -> None:
        """Make a completely stored job usable (idempotent for an active job).

        Raises:
            ValueError: unknown, failed or incomplete job.
        """
        await self._write(schema.activate, job_id)

    async def delete_job(self, job_id: str) -> None:
        """Make a job unusable forever and delete its chunks (idempotent)."""
        await self._write(schema.delete_job, job_id)

    def available(self) -> Mapping[str, int]:
        """Activated, unreserved tuples per kind (from the last committed change)."""
        return dict(self._totals.available)

    # ------------------------------------------------------------------ MP-SPDZ files

    async def import_mpspdz(self, job_id: str, kind: str, data: bytes, *, filename: str | None = None) -> StoredJob:
        """Import this VCP's MP-SPDZ preprocessing file as job ``job_id`` (inactive).

        Every VCP imports its own party's file under the same job id; then
        :meth:`activate_imported` on every VCP makes the job usable once all
        agree. The file is checked strictly (see :mod:`.mpspdz`).

        Raises:
            FieldError: the file does not fit this VC (the message says why).
            ValueError: a bad id or kind, or the job id exists.
        """
        check_id(job_id, "job id")
        spec = kind_of(kind)
        parsed = parse_file(
            data,
            self._field,
            spec,
            mac_share=self._mac_share,
            filename=filename,
            party=self._party,
            n_parties=self._n_parties,
        )
        await self._write(schema.import_body, job_id, kind, parsed.count, parsed.body, spec.tuple_bytes)
        log.info("imported an MP-SPDZ file", extra={"ctx": {"job": job_id, "kind": kind, "count": parsed.count}})
        job = await self.job(job_id)
        assert job is not None
        return job

    async def activate_imported(self, job_id: str) -> StoredJob:
        """Activate an imported job once every VCP holds it with the same kind and count.

        All VCPs call this with the same id (session ``tuples.activate:<job>``,
        steps ``check``, ``activated``, ``done``). Followers activate first and
        the leader last, so a failure midway can only leave tuples active on a
        follower, where nothing will ever assign them; calling again finishes
        the job.

        Raises:
            SessionAborted: the VCPs disagree (which ones and how is named) or
                one failed; PeerUnavailable: a VCP is unreachable.
        """
        check_id(job_id, "job id")
        async with self._transport.session(ACTIVATE_PREFIX + job_id) as session:
            row = await self._store.read(schema.job_row, job_id)
            mine = schema.activation_view(row)
            with trio.fail_after(ACTIVATE_TIMEOUT):
                raw_views = await session.exchange("check", mine)
            views = {p: v if isinstance(v, dict) else {"error": "malformed answer"} for p, v in raw_views.items()}
            problems = [f"VCP {p}: {v['error']}" for p, v in sorted(views.items()) if "error" in v]
            shapes = {(v.get("kind"), v.get("count")) for v in views.values() if "error" not in v}
            if problems or len(shapes) != 1:
                detail = "; ".join(problems) or "VCPs hold different kinds or counts: " + ", ".join(
                    f"VCP {p}: {v.get('count')} {v.get('kind')}" for p, v in sorted(views.items())
                )
                raise SessionAborted(session.id, f"cannot activate job {job_id}: {detail}")
            with trio.fail_after(ACTIVATE_TIMEOUT):
                if self.is_leader:
                    for peer in range(1, self._n_parties):
                        await session.receive(peer, "activated")
                    await self.activate_job(job_id)
                    for peer in range(1, self._n_parties):
                        await session.send(peer, "done", True)
                else:
                    await self.activate_job(job_id)
                    await session.send(0, "activated", True)
                    await session.receive(0, "done")
        job = await self.job(job_id)
        assert job is not None
        return job

    async def export_job(self, job_id: str) -> bytes:
        """This VCP's shares of an unused job as an MP-SPDZ file; the job is retired.

        The tuples leave vcpd's control, so they are counted as discarded here
        and never handed out by this VCP again (single use). The whole file is
        built in memory.

        Raises:
            ValueError: the job is unknown, incomplete, or some tuple was reserved.
        """
        body = await self._write(schema.export_body, job_id)
        return build_header(self._field, self._mac_share) + body

    # ------------------------------------------------------------------ internals

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """``Store.write`` that also refreshes the cached per-kind totals."""
        result, totals = await self._store.write(schema.with_totals, fn, args)
        self._totals = totals
        return result  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- SQL (worker thread)


def _unpack_all(field: PrimeField, raw: dict[str, list[bytes]]) -> dict[str, list[Shares]]:
    return {kind: unpack_tuples(field, KINDS[kind], raw[kind]) for kind in TUPLE_KINDS if kind in raw}


def _stored(row: schema.JobRow) -> StoredJob:
    return StoredJob(
        row.job_id, row.kind, row.count, row.stored, row.state, row.used,
        row.consumed, row.discarded, row.source, row.created,
    )  # fmt: skip
