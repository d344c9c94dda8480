"""The cross-VCP reservation protocol: every VCP gets the same ranges, none twice.

The invariant everything relies on is that all VCPs consume the same tuples in
the same order and no tuple is ever handed out twice, across crashes and
aborts. It rests on three rules:

1. only the leader (party 0) chooses ranges, inside one store write that also
   records them, from a per-job cursor that never moves back (oldest job first);
2. a follower records a range only after checking, in one store write, that the
   kind and counts match its own caller's request, that the range lies in a job
   it holds *activated* and that it overlaps no range it has recorded before;
3. a reservation whose session fails is discarded -- its tuples are burnt, never
   returned to the pool -- and a restart discards every open reservation.

Session ``"tuples.reserve:" + request_id``; steps:

* ``ranges`` leader -> followers: ``{"counts": {kind: n}, "ranges": [[kind, job,
  start, count], ...]}``, or ``{"counts": ..., "exhausted": [kind, needed,
  available]}`` when the stock cannot meet the request (nothing is recorded
  anywhere then, and every VCP raises :class:`~vcpd.errors.TuplesExhausted`);
* ``verdict`` follower -> leader: ``{"ok": true}`` once recorded durably, or
  ``{"ok": false, "reason": str}``;
* ``go`` leader -> followers: ``{"ok": true}`` after every follower agreed.
  Any failure instead makes the leader leave the session with an error, which
  sends the abort notice.

**Taking reservations** (:meth:`TupleStore.reserve_and_take`, for callers that
take at once, as the secret store does) run the same session with one message.
The leader chooses and records its ranges (rule 1) in a store write that also
reads their shares and records them consumed; the ranges leave for the
followers (``ranges`` with ``"take": true``) as soon as they are chosen, while
that write goes on to its commit. Each follower checks and records them
(rule 2) *and* takes them -- reads the shares and records them consumed -- in
one store write. There is no ``verdict`` and no ``go``: a follower that refuses
raises and its caller's session aborts on every VCP, so nobody uses a
reservation that failed anywhere, and since every VCP records consumption
durably before it returns the shares, whatever was reserved is burnt, never
handed out again. A follower refuses a message whose ``take`` flag differs
from its own call, so the two variants never mix under one request id. This
takes three sequential store writes and two round trips off the latency path
of every client request.

Why the leader may send ranges before its write commits: what keeps a tuple
from being used twice is that **every VCP records its own use of its own
share durably before using it**, and that a follower never records a range
overlapping one it recorded before (rule 2). Ranges are names, not shares:
sending them reveals nothing. If the leader crashes before its commit, its
cursor comes back behind ranges it already sent; when it assigns them again,
the followers that recorded them refuse (rule 2) and that one request fails --
the leader's own commit of it moves the cursor past them for good. No VCP
ever uses its share of a tuple twice, which is what privacy needs; a VCP that
used a tuple in a request the others did not join only sent openings masked
by its own fresh share, and the session failed.

This module must not import another service, vcpd.net, api, node or daemon.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

import trio

from vcpd.errors import SessionAborted, StoreError, TuplesExhausted, VcpError, VcpInternalError
from vcpd.logs import get_logger
from vcpd.protocol.transport import Session
from vcpd.services.ports import TUPLE_KINDS, Reservation, TupleRange

from .kinds import KINDS, check_counts
from .schema import close_ranges, discard_open, read_range_parts

__all__ = [
    "GO_TIMEOUT",
    "RANGES_TIMEOUT",
    "SESSION_PREFIX",
    "VERDICT_TIMEOUT",
    "follow_reservation",
    "follow_taking",
    "lead_reservation",
    "lead_taking",
    "take_sync",
]

log = get_logger("tuples.reserve")

SESSION_PREFIX: Final = "tuples.reserve:"

RANGES_TIMEOUT: Final = 30.0
"""Seconds a follower waits for the leader's ranges (covers callers starting apart)."""

VERDICT_TIMEOUT: Final = 30.0
"""Seconds the leader waits for every follower's verdict."""

GO_TIMEOUT: Final = 30.0
"""Seconds a follower waits for the leader's go-ahead after recording."""

MAX_RANGES: Final = 100_000
"""More ranges than this in one message is refused as malformed."""

T = TypeVar("T")
Writer = Callable[..., Awaitable[Any]]
"""``Store.write``-like: ``await write(fn, *args)`` runs ``fn(conn, *args)`` in one transaction."""


class _Refused(Exception):
    """A follower's check failed; the message is safe to send (ids and counts only)."""


# ----------------------------------------------------------------------- SQL parts


def _assign(
    conn: sqlite3.Connection, request_id: str, counts: dict[str, int]
) -> list[TupleRange] | tuple[str, int, int]:
    """Leader: choose and record ranges, or return the first shortage (kind, needed, available)."""
    if conn.execute("SELECT 1 FROM tuples_reservation WHERE request_id = ?", (request_id,)).fetchone():
        raise _Refused(f"request id {request_id} was already used for a reservation")
    for kind, need in counts.items():
        (available,) = conn.execute(
            "SELECT COALESCE(SUM(stored - cursor), 0) FROM tuples_job WHERE kind = ? AND state = 'active'", (kind,)
        ).fetchone()
        if available < need:
            return (kind, need, int(available))
    ranges: list[TupleRange] = []
    for kind, need in counts.items():
        jobs = conn.execute(
            "SELECT job_id, stored, cursor FROM tuples_job WHERE kind = ? AND state = 'active' AND stored > cursor"
            " ORDER BY seq",
            (kind,),
        )
        for job_id, stored, cursor in jobs.fetchall():
            take = min(need, stored - cursor)
            ranges.append(TupleRange(kind, job_id, cursor, take))
            need -= take
            if need == 0:
                break
        if need:
            raise VcpInternalError(f"stock of {kind} tuples changed inside one transaction")
    for range_ in ranges:
        conn.execute(
            "UPDATE tuples_job SET cursor = cursor + ?, used = used + ? WHERE job_id = ?",
            (range_.count, range_.count, range_.job_id),
        )
    _insert(conn, request_id, ranges)
    return ranges


def _record(conn: sqlite3.Connection, request_id: str, ranges: list[TupleRange]) -> None:
    """Follower: check every range against what this VCP holds, then record them."""
    if conn.execute("SELECT 1 FROM tuples_reservation WHERE request_id = ?", (request_id,)).fetchone():
        raise _Refused(f"request id {request_id} already has a reservation on this VCP")
    for pos, r in enumerate(ranges):
        row = conn.execute("SELECT kind, state, stored FROM tuples_job WHERE job_id = ?", (r.job_id,)).fetchone()
        if row is None:
            raise _Refused(f"job {r.job_id} is unknown on this VCP")
        kind, state, stored = row
        if state != "active":
            raise _Refused(f"job {r.job_id} is {state} on this VCP, not active")
        if kind != r.kind:
            raise _Refused(f"job {r.job_id} holds {kind} tuples, not {r.kind}")
        if r.end > stored:
            raise _Refused(f"range {r.offset}..{r.end} of job {r.job_id} lies beyond its {stored} tuples")
        # Recorded ranges are disjoint, so only the last one starting before our
        # end can reach into us. Ranges of this same message were inserted
        # above, so they are checked against each other too.
        prior = conn.execute(
            "SELECT start + count FROM tuples_range WHERE job_id = ? AND start < ? ORDER BY start DESC LIMIT 1",
            (r.job_id, r.end),
        ).fetchone()
        if prior is not None and prior[0] > r.offset:
            raise _Refused(f"range {r.offset}..{r.end} of job {r.job_id} overlaps tuples already reserved")
        conn.execute("UPDATE tuples_job SET used = used + ? WHERE job_id = ?", (r.count, r.job_id))
        conn.execute(
            "INSERT INTO tuples_range (job_id, start, count, kind, request_id, pos) VALUES (?, ?, ?, ?, ?, ?)",
            (r.job_id, r.offset, r.count, r.kind, request_id, pos),
        )
    conn.execute(
        "INSERT INTO tuples_reservation (request_id, state, created) VALUES (?, 'open', ?)", (request_id, time.time())
    )


def _insert(conn: sqlite3.Connection, request_id: str, ranges: list[TupleRange]) -> None:
    conn.execute(
        "INSERT INTO tuples_reservation (request_id, state, created) VALUES (?, 'open', ?)", (request_id, time.time())
    )
    conn.executemany(
        "INSERT INTO tuples_range (job_id, start, count, kind, request_id, pos) VALUES (?, ?, ?, ?, ?, ?)",
        [(r.job_id, r.offset, r.count, r.kind, request_id, i) for i, r in enumerate(ranges)],
    )


def _discard(conn: sqlite3.Connection, request_id: str) -> None:
    discard_open(conn, [request_id])


def take_sync(conn: sqlite3.Connection, reservation: Reservation) -> dict[str, list[bytes]]:
    """Read a reservation's share bytes and record it consumed, in one transaction.

    Returns kind -> the tuple bytes of its ranges, in order (one byte string
    per chunk touched).

    Raises:
        VcpInternalError: the reservation is unknown, not open (taken or
            discarded before), or differs from what this VCP recorded.
    """
    rid = reservation.request_id
    row = conn.execute("SELECT state FROM tuples_reservation WHERE request_id = ?", (rid,)).fetchone()
    if row is None or row[0] != "open":
        state = "unknown" if row is None else row[0]
        raise VcpInternalError(f"reservation {rid} cannot be taken: it is {state} (tuples are single-use)")
    recorded = [
        TupleRange(kind, job_id, start, count)
        for kind, job_id, start, count in conn.execute(
            "SELECT kind, job_id, start, count FROM tuples_range WHERE request_id = ? ORDER BY pos", (rid,)
        ).fetchall()
    ]
    if tuple(recorded) != reservation.ranges:
        raise VcpInternalError(f"reservation {rid} does not match the ranges this VCP recorded")
    return _consume(conn, rid, recorded)


def _consume(conn: sqlite3.Connection, request_id: str, ranges: list[TupleRange]) -> dict[str, list[bytes]]:
    """Read the share bytes of an open reservation's ranges and record it consumed.

    Runs inside the caller's transaction, which must have checked that the
    reservation is open and that ``ranges`` are its recorded ranges. Returns
    kind -> the bytes of its ranges in order, one string per chunk touched.
    """
    parts: dict[str, list[bytes]] = {}
    for r in ranges:
        parts.setdefault(r.kind, []).extend(
            read_range_parts(conn, r.job_id, r.offset, r.count, KINDS[r.kind].tuple_bytes)
        )
    conn.execute(
        "UPDATE tuples_reservation SET state = 'consumed', closed = ? WHERE request_id = ?", (time.time(), request_id)
    )
    close_ranges(conn, [(r.job_id, r.count) for r in ranges], "consumed")
    return parts


def _assign_and_consume(
    conn: sqlite3.Connection,
    request_id: str,
    counts: dict[str, int],
    announce: Callable[[list[TupleRange]], None],
) -> tuple[list[TupleRange], dict[str, list[bytes]]] | tuple[str, int, int]:
    """Leader of a taking reservation: choose and record ranges, announce them
    (before the commit, see the module docstring), read them and record them
    consumed -- all in one transaction."""
    outcome = _assign(conn, request_id, counts)
    if isinstance(outcome, tuple):
        return outcome
    announce(outcome)
    return outcome, _consume(conn, request_id, outcome)


def _record_and_consume(
    conn: sqlite3.Connection, request_id: str, ranges: list[TupleRange]
) -> dict[str, list[bytes]]:
    """Follower of a taking reservation: rule 2's checks and record, then take, in one transaction."""
    _record(conn, request_id, ranges)
    return _consume(conn, request_id, ranges)


# ----------------------------------------------------------------------- protocol


async def lead_reservation(
    session: Session, write: Writer, request_id: str, counts: Mapping[str, int]
) -> Reservation | TuplesExhausted:
    """The leader's side of :meth:`TupleStore.reserve` (see the module docstring).

    Returns (rather than raises) :class:`TuplesExhausted`, so that the caller
    can leave the session normally: an abort notice would overtake the
    exhaustion message at followers that have not read it yet.
    """
    wanted = check_counts(counts)
    try:
        outcome = await write(_assign, request_id, wanted)
    except _Refused as exc:
        raise SessionAborted(session.id, str(exc)) from None
    peers = [p for p in range(session.n_parties) if p != session.party]
    if isinstance(outcome, tuple):
        notice = {"counts": wanted, "exhausted": list(outcome)}
        # Best effort: a follower that misses this times out on its own.
        await _to_all(peers, lambda p: session.send(p, "ranges", notice), strict=False)
        return TuplesExhausted(*outcome, request=wanted)
    reservation = Reservation(request_id, tuple(outcome))
    payload = {"counts": wanted, "ranges": [[r.kind, r.job_id, r.offset, r.count] for r in outcome]}
    try:
        await _to_all(peers, lambda p: session.send(p, "ranges", payload))
        with trio.fail_after(VERDICT_TIMEOUT):
            verdicts = await _gather(peers, lambda p: session.receive(p, "verdict"))
        for peer, verdict in sorted(verdicts.items()):
            if not (isinstance(verdict, dict) and verdict.get("ok") is True):
                reason = verdict.get("reason") if isinstance(verdict, dict) else None
                raise SessionAborted(session.id, f"VCP {peer} refused the ranges: {str(reason)[:300]}")
        await _to_all(peers, lambda p: session.send(p, "go", {"ok": True}))
    except BaseException as exc:
        await _discard_quietly(write, request_id)
        if isinstance(exc, trio.TooSlowError):
            raise SessionAborted(session.id, "a follower did not answer the reservation in time") from None
        raise
    return reservation


async def follow_reservation(
    session: Session, write: Writer, request_id: str, counts: Mapping[str, int]
) -> Reservation | TuplesExhausted:
    """A follower's side of :meth:`TupleStore.reserve` (see the module docstring).

    Like :func:`lead_reservation`, returns the leader's exhaustion notice as a
    :class:`TuplesExhausted` for the caller to raise outside the session.
    """
    wanted = check_counts(counts)
    try:
        with trio.fail_after(RANGES_TIMEOUT):
            message = await session.receive(0, "ranges")
    except trio.TooSlowError:
        raise SessionAborted(session.id, "the leader sent no ranges in time") from None
    try:
        leader_counts, ranges, exhausted = _parse_ranges(message)
        if isinstance(message, dict) and message.get("take") is not None:
            raise _Refused("the leader reserved and took at once but this VCP's caller takes later")
        if leader_counts != wanted:
            raise _Refused(f"the leader reserved {leader_counts} but this VCP's caller asked for {wanted}")
        if exhausted is not None:
            return TuplesExhausted(*exhausted, request=wanted)
        if _sum_counts(ranges) != wanted:
            raise _Refused("the leader's ranges do not add up to the requested counts")
        await write(_record, request_id, ranges)
    except _Refused as exc:
        refusal = {"ok": False, "reason": str(exc)}
        with trio.move_on_after(GO_TIMEOUT):
            await _to_all([0], lambda p: session.send(p, "verdict", refusal), strict=False)
        raise SessionAborted(session.id, str(exc)) from None
    try:
        await session.send(0, "verdict", {"ok": True})
        with trio.fail_after(GO_TIMEOUT):
            go = await session.receive(0, "go")
        if not (isinstance(go, dict) and go.get("ok") is True):
            raise SessionAborted(session.id, "the leader did not give the go-ahead")
    except BaseException as exc:
        await _discard_quietly(write, request_id)
        if isinstance(exc, trio.TooSlowError):
            raise SessionAborted(session.id, "the leader gave no go-ahead in time") from None
        raise
    return Reservation(request_id, tuple(ranges))


async def lead_taking(
    session: Session, write: Writer, request_id: str, counts: Mapping[str, int]
) -> tuple[Reservation, dict[str, list[bytes]]] | TuplesExhausted:
    """The leader's side of :meth:`TupleStore.reserve_and_take` (see the module docstring).

    One store write chooses and records the ranges (rule 1), hands them to this
    task -- which sends them to the followers at once -- and goes on to read
    the shares and record them consumed, then commits. So the followers check,
    record and take while the leader does (see the module docstring for why
    sending before the commit is safe). Returns the reservation with the share
    bytes, or :class:`TuplesExhausted` rather than raising it, as
    :func:`lead_reservation` does.
    """
    wanted = check_counts(counts)
    peers = [p for p in range(session.n_parties) if p != session.party]
    send, receive = trio.open_memory_channel[list[TupleRange]](1)
    token = trio.lowlevel.current_trio_token()

    def announce(ranges: list[TupleRange]) -> None:  # in the store's worker thread
        trio.from_thread.run_sync(send.send_nowait, ranges, trio_token=token)

    outcome: list[Any] = []

    async def assign_and_take() -> None:
        async with send:
            outcome.append(await write(_assign_and_consume, request_id, wanted, announce))

    sent = False
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(assign_and_take)
            async with receive:
                async for ranges in receive:
                    payload = {
                        "counts": wanted,
                        "ranges": [[r.kind, r.job_id, r.offset, r.count] for r in ranges],
                        "take": True,
                    }
                    await _to_all(peers, lambda p: session.send(p, "ranges", payload))
                    sent = True
    except _Refused as exc:
        raise SessionAborted(session.id, str(exc)) from None
    except BaseExceptionGroup as group:
        refused = group.subgroup(_Refused)
        if refused is not None:
            raise SessionAborted(session.id, str(refused.exceptions[0])) from None
        vcp_errors = group.subgroup(VcpError)
        if vcp_errors is not None and len(group.exceptions) == 1:
            raise vcp_errors.exceptions[0] from None
        raise
    result = outcome[0]
    if isinstance(result, tuple) and len(result) == 3:
        notice = {"counts": wanted, "exhausted": list(result), "take": True}
        await _to_all(peers, lambda p: session.send(p, "ranges", notice), strict=False)
        return TuplesExhausted(*result, request=wanted)
    assert sent
    ranges, raw = result
    return Reservation(request_id, tuple(ranges)), raw


async def follow_taking(
    session: Session, write: Writer, request_id: str, counts: Mapping[str, int]
) -> tuple[Reservation, dict[str, list[bytes]]] | TuplesExhausted:
    """A follower's side of :meth:`TupleStore.reserve_and_take`: check, record and
    take the leader's ranges in one store write; return them with the share bytes.

    Raises:
        SessionAborted: the leader's ranges or counts were refused, or none came
            in time; nothing was recorded here.
    """
    wanted = check_counts(counts)
    try:
        with trio.fail_after(RANGES_TIMEOUT):
            message = await session.receive(0, "ranges")
    except trio.TooSlowError:
        raise SessionAborted(session.id, "the leader sent no ranges in time") from None
    try:
        leader_counts, ranges, exhausted = _parse_ranges(message)
        if not (isinstance(message, dict) and message.get("take") is True):
            raise _Refused("the leader reserved without taking but this VCP's caller takes at once")
        if leader_counts != wanted:
            raise _Refused(f"the leader reserved {leader_counts} but this VCP's caller asked for {wanted}")
        if exhausted is not None:
            return TuplesExhausted(*exhausted, request=wanted)
        if _sum_counts(ranges) != wanted:
            raise _Refused("the leader's ranges do not add up to the requested counts")
        raw: dict[str, list[bytes]] = await write(_record_and_consume, request_id, ranges)
    except _Refused as exc:
        refusal = {"ok": False, "reason": str(exc)}  # read only by a leader that waits for verdicts
        with trio.move_on_after(GO_TIMEOUT):
            await _to_all([0], lambda p: session.send(p, "verdict", refusal), strict=False)
        raise SessionAborted(session.id, str(exc)) from None
    return Reservation(request_id, tuple(ranges)), raw


async def _discard_quietly(write: Writer, request_id: str) -> None:
    """Discard a failed reservation, shielded from cancellation.

    If the store is already closed (the VCP is going down) the reservation
    stays open on disk and the next start's recovery discards it, so the
    original error is kept rather than replaced by the store's.
    """
    with trio.CancelScope(shield=True):
        try:
            await write(_discard, request_id)
        except StoreError as exc:
            log.warning("could not discard reservation %s now (recovery will): %s", request_id, exc)


def _parse_ranges(message: Any) -> tuple[dict[str, int], list[TupleRange], tuple[str, int, int] | None]:
    """Check the shape of the leader's message (it is untrusted input)."""
    if not isinstance(message, dict) or not isinstance(message.get("counts"), dict):
        raise _Refused("malformed ranges message")
    try:
        counts = check_counts(message["counts"])
    except ValueError as exc:
        raise _Refused(f"malformed counts: {exc}") from None
    exhausted = message.get("exhausted")
    if exhausted is not None:
        if not (
            isinstance(exhausted, list)
            and len(exhausted) == 3
            and exhausted[0] in KINDS
            and all(isinstance(x, int) and not isinstance(x, bool) for x in exhausted[1:])
        ):
            raise _Refused("malformed exhaustion notice")
        return counts, [], (exhausted[0], exhausted[1], exhausted[2])
    raw = message.get("ranges")
    if not isinstance(raw, list) or len(raw) > MAX_RANGES:
        raise _Refused("malformed ranges list")
    ranges: list[TupleRange] = []
    for item in raw:
        if not (
            isinstance(item, list)
            and len(item) == 4
            and item[0] in KINDS
            and isinstance(item[1], str)
            and all(isinstance(x, int) and not isinstance(x, bool) for x in item[2:])
            and item[2] >= 0
            and item[3] > 0
        ):
            raise _Refused("malformed range")
        ranges.append(TupleRange(item[0], item[1], item[2], item[3]))
    order = [TUPLE_KINDS.index(r.kind) for r in ranges]
    if order != sorted(order):
        raise _Refused("ranges are not grouped by kind in canonical order")
    return counts, ranges, None


def _sum_counts(ranges: list[TupleRange]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for r in ranges:
        totals[r.kind] = totals.get(r.kind, 0) + r.count
    return {k: totals[k] for k in TUPLE_KINDS if k in totals}


async def _gather(peers: list[int], fn: Callable[[int], Awaitable[T]]) -> dict[int, T]:
    """Run ``fn(peer)`` for every peer concurrently; raise the first failure plainly."""
    results: dict[int, T] = {}

    async def one(peer: int) -> None:
        results[peer] = await fn(peer)

    await _to_all(peers, one)
    return results


async def _to_all(peers: list[int], fn: Callable[[int], Awaitable[Any]], *, strict: bool = True) -> None:
    """Run ``fn(peer)`` for every peer concurrently.

    The first vcpd error cancels the rest and is re-raised on its own (not as
    an exception group), so callers see PeerUnavailable / SessionAborted. With
    ``strict=False`` such errors are swallowed (best-effort notices).
    """
    failures: list[BaseException] = []
    async with trio.open_nursery() as nursery:

        async def one(peer: int) -> None:
            try:
                await fn(peer)
            except VcpError as exc:
                failures.append(exc)
                if strict:
                    nursery.cancel_scope.cancel()

        for peer in peers:
            nursery.start_soon(one, peer)
    if strict and failures:
        raise failures[0]

