"""The SPDZ online phase of one VCP in one session: openings, MAC checks, Beaver.

:class:`OnlineParty` is what the secret store (verified upload and download)
and the executor's engine compute with. It holds this VCP's MAC key share α_i
and a labelled session; every secret is a :class:`~vcpd.math.Shares` vector.

Invariants:

* **Opened values are MAC-checked before anything derived from them leaves the
  VC.** :meth:`OnlineParty.open` is a *partial* opening: it reveals a value to
  the VCPs and records it; only :meth:`OnlineParty.mac_check` (or
  :meth:`OnlineParty.reveal`, which runs it) establishes that nobody lied.
  Callers release results only after a successful check.
* **MAC shares never leave this VCP**: openings send value shares only.
* **All VCPs agree on every message label without coordinating**: labels come
  from per-object counters and the operation ("open.17", "mac.3.sigma.commit"),
  and every VCP performs the same sequence of operations, so arrival order never
  matters. Two objects sharing a session need distinct ``label_prefix`` values.
* **One failure ends the object**: after any failed round (MAC check, peer
  gone, timeout, cancellation) every further call raises, since the VCPs may no
  longer agree on where in the protocol they are.
* **One operation at a time**: await each call before starting the next
  (concurrent rounds are refused); merge independent work with
  :meth:`OnlineParty.open_many` / :meth:`OnlineParty.complete` instead, or
  send independent openings in one flight with
  :meth:`OnlineParty.open_concurrently` / :meth:`OnlineParty.open_with_next`
  (each keeps its own label and is checked like any other).
* One bytes payload per peer per opening (one message per peer per flight
  with ``bundle_flights``), and a handful of vector operations per element (a
  Beaver product costs four field products per element and party). Large
  flights between three or more VCPs are opened split, each VCP summing one
  range, in two rounds with a third fewer bytes and (n−1)/n instead of n−1
  additions per element (:mod:`.split_open`).

This module must not import vcpd.net, vcpd.testing, services, api, node or
daemon; from vcpd it uses only errors, math and this package. No shares, MACs
or keys appear in its logs or exceptions.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import math
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

import trio

from vcpd.errors import FieldError, MacCheckFailure, SessionAborted, VcpError
from vcpd.math import FieldArray, PrimeField, Shares

from . import split_open
from .beaver import Prepared, SquarePair, Triple, bits_prepare, mul_prepare, square_prepare
from .maccheck import EarlySeed, OpeningLog, batch_mac_check, early_seed_commitment
from .rounds import exchange_each, payload_size
from .transport import Session

__all__ = [
    "DEFAULT_ROUND_TIMEOUT",
    "DeferredOpening",
    "OnlineParty",
    "OnlineStatistics",
    "Prepared",
    "SquarePair",
    "Triple",
]

DEFAULT_ROUND_TIMEOUT: Final = 300.0
"""Seconds a round waits for its peers before aborting the session.

Generous: a round of a million-element product takes well under a second on a
LAN. It exists so that a peer that stays connected but stops following the
protocol (say, withholds a commitment) fails the session instead of hanging it.
"""

THREAD_BYTES: Final = 1 << 20
"""With ``worker_threads=True``, openings at least this large (bytes per peer)
are summed and finished in worker threads: numpy releases the GIL, so the
work overlaps and the event loop stays responsive."""

BUNDLE_BYTES: Final = 1 << 16
"""With ``bundle_flights=True``, flights carrying at most this many payload
bytes go to each peer as one message; bigger ones (where the per-message cost
no longer matters) go as one message per payload, each on the codec's
zero-repacking path for bulk bytes."""

THREAD_SQRT_ELEMENTS: Final = 4096
"""With ``worker_threads=True``, square-root batches at least this large run in
a worker thread."""

_PERSON_AGREE: Final = b"vcpd.agree"

P = ParamSpec("P")
R = TypeVar("R")


class DeferredOpening:
    """The value of an opening queued with :meth:`OnlineParty.open_with_next`."""

    __slots__ = ("_length", "_value")

    def __init__(self, length: int) -> None:
        self._length = length
        self._value: FieldArray | None = None

    def __repr__(self) -> str:
        return f"<DeferredOpening n={self._length} {'opened' if self._value is not None else 'queued'}>"

    @property
    def value(self) -> FieldArray:
        """The opened values (not yet MAC-checked, as after :meth:`OnlineParty.open`).

        Raises:
            RuntimeError: the flight that carries the opening has not completed.
        """
        if self._value is None:
            raise RuntimeError("this opening has not been sent yet: it travels with the next opening round")
        return self._value


@dataclass(frozen=True, slots=True)
class OnlineStatistics:
    """Counters of one :class:`OnlineParty` (this VCP's view).

    Attributes:
        rounds: network rounds (every exchange, MAC-check rounds included; a
            split opening flight counts its two rounds).
        open_rounds: openings (labelled ``open.k``), each counted once
            whatever the number of network rounds it took (two when split), so
            that it matches the round counts of the cost models
            (:mod:`vcpd.protocol.nonlinear.cost`). Openings sent in one
            flight count one each.
        openings: field elements opened.
        mac_checks: MAC checks that ran (and passed).
        checked: opened elements covered by those checks.
        pending: opened elements not yet checked.
        bytes_sent: payload bytes sent, summed over peers.
        messages_sent: payloads sent, summed over peers.
    """

    rounds: int = 0
    open_rounds: int = 0
    openings: int = 0
    mac_checks: int = 0
    checked: int = 0
    pending: int = 0
    bytes_sent: int = 0
    messages_sent: int = 0


def _guarded(
    method: Callable[Concatenate[OnlineParty, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[OnlineParty, P], Coroutine[Any, Any, R]]:
    """Refuse calls on a failed object, and mark it failed if this call fails."""

    @functools.wraps(method)
    async def wrapper(self: OnlineParty, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self._ensure_usable()
        try:
            return await method(self, *args, **kwargs)
        except BaseException as exc:
            self._mark_failed(exc)
            raise

    return wrapper


class OnlineParty:
    """This VCP's side of the SPDZ online phase in one session.

    Args:
        session: the labelled session shared with every other VCP.
        field: the VC's prime field.
        alpha_share: this VCP's share α_i of the MAC key (never sent anywhere).
        label_prefix: prepended to every step label; distinct objects in one
            session need distinct prefixes.
        round_timeout: seconds to wait for peers in one round before aborting
            (None: wait for ever, relying on link failure detection alone).
        worker_threads: run the arithmetic of large rounds (≥ 1 MiB per peer)
            and large square-root batches in trio worker threads, so the event
            loop keeps serving the peer links during long computations. Off by
            default: under trio's ``autojump_clock`` a wait on a thread looks
            idle, so virtual time would jump and round timeouts would fire.
        precommit_seed: send this party's seed commitment for the next MAC
            check in the same flight as the first opening after the last
            check (step ``mac.<k>.seed.early``), so that :meth:`mac_check`
            takes three rounds instead of four (see
            :class:`~vcpd.protocol.maccheck.EarlySeed`: the coin toss is as
            sound). Every party of a session must use the same setting.
        bundle_flights: when one flight carries several labelled payloads
            (openings sent together, an early seed commitment), send them to
            each peer as **one** message labelled ``"<step>+<step>+..."``
            holding the payloads in order, instead of one message each: the
            per-message cost dominates small rounds (up to
            :data:`BUNDLE_BYTES`). Each payload is checked under its own
            label as before. Every party of a session must use the
            same setting.
    """

    def __init__(
        self,
        session: Session,
        field: PrimeField,
        alpha_share: int,
        *,
        label_prefix: str = "",
        round_timeout: float | None = DEFAULT_ROUND_TIMEOUT,
        worker_threads: bool = False,
        precommit_seed: bool = False,
        bundle_flights: bool = False,
    ) -> None:
        self._session = session
        self._field = field
        self._alpha = alpha_share % field.p
        self._party = session.party
        self._n = session.n_parties
        self._peers = [k for k in range(self._n) if k != self._party]
        self._prefix = label_prefix
        self._timeout = math.inf if round_timeout is None else round_timeout
        self._threads = worker_threads
        self._precommit = precommit_seed
        self._bundle = bundle_flights
        self._early: EarlySeed | None = None  # the next check's coin toss, committed ahead
        self._queued: list[tuple[str, Shares, DeferredOpening]] = []  # open_with_next, not yet sent
        self._log = OpeningLog()
        self._opens = 0
        self._checks = 0
        self._agreements = 0
        self._stats = OnlineStatistics()
        self._failure: BaseException | None = None
        self._in_round = False

    def __repr__(self) -> str:
        return f"<OnlineParty session={self._session.id} party={self._party}/{self._n}>"

    # ------------------------------------------------------------ properties

    @property
    def party(self) -> int:
        """This VCP's party id."""
        return self._party

    @property
    def n_parties(self) -> int:
        """Number of VCPs in the session."""
        return self._n

    @property
    def field(self) -> PrimeField:
        """The prime field of every share."""
        return self._field

    @property
    def session_id(self) -> str:
        """The id of the underlying session."""
        return self._session.id

    @property
    def pending_checks(self) -> int:
        """Opened elements that no MAC check has covered yet."""
        return self._log.pending

    def statistics(self) -> OnlineStatistics:
        """A snapshot of this object's counters."""
        return dataclasses.replace(self._stats, pending=self._log.pending)

    # ------------------------------------------------------------ failure state

    def _ensure_usable(self) -> None:
        failure = self._failure
        if failure is None:
            return
        if isinstance(failure, MacCheckFailure):
            raise MacCheckFailure(self.session_id, failure.reason)
        if isinstance(failure, SessionAborted):
            cause = failure.reason
        elif isinstance(failure, VcpError):
            cause = str(failure)
        else:
            cause = f"interrupted ({type(failure).__name__})"
        raise SessionAborted(self.session_id, f"an earlier step of this online phase failed: {cause}")

    def _mark_failed(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc

    # ------------------------------------------------------------ rounds

    async def _exchange(self, step: str, payload: Any) -> dict[int, Any]:
        """One round: ``payload`` to every peer, every party's payload back; counted.

        Any failure (including cancellation) ends the object.
        """
        return (await self._exchange_flight([(step, payload)]))[0]

    async def _exchange_flight(self, items: Sequence[tuple[str, Any]]) -> list[dict[int, Any]]:
        """Several labelled payloads to every peer in **one** flight (one round of
        latency), counted as one round; every party's payloads come back per item.

        The payloads must not depend on each other's answers. Any failure
        (including cancellation) ends the object, as in :meth:`_exchange`.
        """
        answers = await self._exchange_each(
            {peer: list(items) for peer in self._peers},
            {peer: [(step, payload_size(payload)) for step, payload in items] for peer in self._peers},
        )
        return [
            {self._party: payload, **{peer: answers[peer][index] for peer in self._peers}}
            for index, (_, payload) in enumerate(items)
        ]

    async def _exchange_each(
        self, sends: dict[int, list[tuple[str, Any]]], receives: dict[int, list[tuple[str, int]]]
    ) -> dict[int, list[Any]]:
        """One round through :func:`~vcpd.protocol.rounds.exchange_each`: ``sends[peer]``
        (labelled payloads) to each peer, ``receives[peer]`` (labels and expected
        sizes) from each; counted as one round.

        With ``bundle_flights``, the payloads of a link go as one message when
        there are several of at most :data:`BUNDLE_BYTES` together (labelled
        ``"<step>+<step>+..."``, the payloads in order); the receiving end
        decides alike from the expected sizes. Any failure (including
        cancellation) ends the object.
        """
        self._ensure_usable()
        if self._in_round:
            # Labels come from counters, so two concurrent rounds could get
            # their labels in different orders on different VCPs.
            raise RuntimeError("OnlineParty runs one operation at a time; await each before starting the next")

        def bundled(sizes: list[int]) -> bool:
            return self._bundle and len(sizes) > 1 and sum(sizes) <= BUNDLE_BYTES

        wire_sends: dict[int, list[tuple[str, Any]]] = {}
        for peer, items in sends.items():
            if bundled([payload_size(payload) for _, payload in items]):
                wire_sends[peer] = [("+".join(step for step, _ in items), [payload for _, payload in items])]
            else:
                wire_sends[peer] = items
        wire_receives: dict[int, list[str]] = {}
        for peer, expected in receives.items():
            steps = [step for step, _ in expected]
            wire_receives[peer] = ["+".join(steps)] if bundled([size for _, size in expected]) else steps
        self._in_round = True
        try:
            answers = await exchange_each(self._session, wire_sends, wire_receives, timeout=self._timeout)
        except BaseException as exc:
            self._mark_failed(exc)
            raise
        finally:
            self._in_round = False
        self._stats = dataclasses.replace(
            self._stats,
            rounds=self._stats.rounds + 1,
            bytes_sent=self._stats.bytes_sent + sum(payload_size(p) for items in sends.values() for _, p in items),
            messages_sent=self._stats.messages_sent + sum(len(items) for items in wire_sends.values()),
        )
        for peer, items in receives.items():
            if len(wire_receives[peer]) == 1 and len(items) > 1:
                payloads = answers[peer][0]
                if not isinstance(payloads, list) or len(payloads) != len(items):
                    raise self._deviated(peer, f"malformed bundle at step {wire_receives[peer][0]!r}")
                answers[peer] = payloads
        return answers

    async def _compute(self, fn: Callable[[], R], size: int) -> R:
        """``fn()``; in a worker thread with ``worker_threads`` when ``size`` (bytes
        per peer) reaches :data:`THREAD_BYTES`, so the event loop keeps serving
        the links (numpy drops the GIL for most of the work)."""
        if self._threads and size >= THREAD_BYTES:
            return await trio.to_thread.run_sync(fn)
        return fn()

    def _deviated(self, peer: int, what: str) -> SessionAborted:
        self._mark_failed(SessionAborted(self.session_id, f"VCP {peer} deviated from the protocol: {what}"))
        return SessionAborted(self.session_id, f"VCP {peer} deviated from the protocol: {what}")

    def _label(self, kind: str, counter: int) -> str:
        return f"{self._prefix}{kind}.{counter}"

    # ------------------------------------------------------------ opening

    @_guarded
    async def open(self, shares: Shares) -> FieldArray:
        """Partially open ``shares``: every VCP learns Σ x_i; MACs stay here.

        The result is **not yet trusted**: it is recorded for the next
        :meth:`mac_check`, and nothing derived from it may leave the VC before
        that check passes. One message per peer, whatever the length (one per
        peer in each of two rounds for a large opening between three or more
        VCPs, which is opened split: :mod:`.split_open`).

        Raises:
            SessionAborted: a peer sent a malformed opening, aborted, or timed out.
            PeerUnavailable: a peer went away.
        """
        return (await self.open_many([shares]))[0]

    @_guarded
    async def open_many(self, parts: Sequence[Shares]) -> list[FieldArray]:
        """Open several vectors in **one** network round (concatenate, exchange, split).

        This is how the executor merges independent openings of one round.
        """
        return (await self._open_groups([parts]))[0]

    def open_with_next(self, shares: Shares) -> DeferredOpening:
        """Queue an opening of ``shares`` to travel in the flight of the next opening.

        The opening takes its step label now (``open.k``, before the labels of
        later openings) and is recorded for the MAC check like any other; its
        value is available from the returned object once that flight has
        completed. It saves a round when an opening and the next one do not
        depend on each other -- a download's re-randomising mask and its
        Beaver round, say. Nothing may depend on the value before the flight.
        """
        self._ensure_usable()
        if shares.field != self._field:
            raise FieldError("shares belong to another field than this online phase")
        deferred = DeferredOpening(len(shares))
        if len(shares) == 0:
            deferred._value = self._field.zeros(0)
            return deferred
        step = self._label("open", self._opens)
        self._opens += 1
        self._queued.append((step, shares, deferred))
        return deferred

    @_guarded
    async def open_concurrently(self, groups: Sequence[Sequence[Shares]]) -> list[list[FieldArray]]:
        """Several :meth:`open_many` openings sent in **one** flight.

        Exactly what awaiting ``open_many(group)`` for each group in turn
        would do -- the same step labels (``open.k``, ``open.k+1``, ...), the
        same recorded openings and checks -- but with one round of latency
        instead of one per group. Only for groups that do not depend on each
        other's opened values.
        """
        return await self._open_groups(groups)

    async def _open_groups(self, groups: Sequence[Sequence[Shares]]) -> list[list[FieldArray]]:
        """Send the queued openings and one opening per non-empty group in one
        flight: one round, or two when the flight is opened split
        (:func:`.split_open.use_split`: n ≥ 3 and at least 64 KiB per peer)."""
        queued, self._queued = self._queued, []
        openings: list[tuple[str, Shares]] = [(step, shares) for step, shares, _ in queued]
        plan: list[tuple[int, list[int]] | None] = []  # per group: its opening's index, the parts' lengths
        for parts in groups:
            lengths = [len(part) for part in parts]
            if sum(lengths) == 0:
                plan.append(None)
                continue
            joined = parts[0] if len(parts) == 1 else Shares.concat([part for part in parts if len(part)])
            if joined.field != self._field:
                raise FieldError("shares belong to another field than this online phase")
            plan.append((len(openings), lengths))
            openings.append((self._label("open", self._opens), joined))
            self._opens += 1
        if not openings:
            return [[self._field.zeros(0) for _ in parts] for parts in groups]
        extras: list[tuple[str, Any]] = []
        early: tuple[str, bytes] | None = None
        if self._precommit and self._early is None:
            # The seed commitment of the next check rides along with its first opening.
            label = self._label("mac", self._checks)
            commitment, opening = early_seed_commitment(self._party, self.session_id, label)
            early = (label, opening)
            extras.append((f"{label}.seed.early", commitment))
        if split_open.use_split(self._n, [len(shares) for _, shares in openings]):
            opened, extra_answers = await split_open.open_split(
                self._exchange_each,
                self._compute,
                session_id=self.session_id,
                party=self._party,
                n_parties=self._n,
                field=self._field,
                openings=[(step, shares.values) for step, shares in openings],
                extras=extras,
            )
        else:
            items = [(step, shares.values.to_bytes()) for step, shares in openings]
            answers = await self._exchange_flight(items + extras)
            opened = [await self._combine(step, shares.values, answers[k]) for k, (step, shares) in enumerate(openings)]
            extra_answers = answers[len(openings) :]
        if early is not None:
            self._early = EarlySeed(early[0], early[1], extra_answers[-1])
        for (_, shares), values in zip(openings, opened, strict=True):
            self._log.record(values, shares.macs)
        self._stats = dataclasses.replace(
            self._stats,
            open_rounds=self._stats.open_rounds + len(openings),
            openings=self._stats.openings + sum(len(shares) for _, shares in openings),
        )
        for (_, _, deferred), values in zip(queued, opened, strict=False):
            deferred._value = values
        results: list[list[FieldArray]] = []
        for parts, entry in zip(groups, plan, strict=True):
            if entry is None:
                results.append([self._field.zeros(0) for _ in parts])
                continue
            index, lengths = entry
            if len(parts) == 1:
                results.append([opened[index]])
                continue
            split, start = [], 0
            for n in lengths:
                split.append(opened[index][start : start + n])
                start += n
            results.append(split)
        return results

    async def _combine(self, step: str, own: FieldArray, payloads: dict[int, Any]) -> FieldArray:
        """Σ of every party's value shares (each peer's payload checked for
        length and range)."""
        expected = 16 * len(own)
        shares = {
            peer: split_open.checked(self.session_id, peer, payloads[peer], expected, "opening", step)
            for peer in self._peers
        }
        return await self._compute(
            lambda: split_open.add_shares(self.session_id, self._field, own, shares, "opening", step), expected
        )

    @_guarded
    async def mac_check(self) -> None:
        """Check every opening since the last check (mpc-notes §1.6); four rounds.

        Does nothing (and sends nothing) when nothing is pending — all VCPs
        hold the same pending count, so they agree on that. Values opened
        before a successful return may be released.

        Raises:
            MacCheckFailure: some VCP deviated ("MAC check failed: ...",
                "invalid commitment from VCP k", "broadcast mismatch"); the
                object is unusable afterwards, and nothing opened since the
                last good check may be used.
            SessionAborted, PeerUnavailable: the session failed otherwise.
        """
        if self._queued:
            await self._open_groups([])  # queued openings go out before they are checked
        if self._log.pending == 0:
            return
        label = self._label("mac", self._checks)
        self._checks += 1
        early, self._early = self._early, None
        checked = await batch_mac_check(
            self._exchange,
            session_id=self.session_id,
            party=self._party,
            field=self._field,
            alpha_share=self._alpha,
            log=self._log,
            label=label,
            worker_threads=self._threads,
            early=early,
        )
        self._stats = dataclasses.replace(
            self._stats, mac_checks=self._stats.mac_checks + 1, checked=self._stats.checked + checked
        )

    @_guarded
    async def reveal(self, shares: Shares) -> FieldArray:
        """Open and MAC-check: the result may leave the VC."""
        opened = await self.open(shares)
        await self.mac_check()
        return opened

    @_guarded
    async def reveal_many(self, parts: Sequence[Shares]) -> list[FieldArray]:
        """Open several vectors in one round, then MAC-check (five rounds in all)."""
        opened = await self.open_many(parts)
        await self.mac_check()
        return opened

    @_guarded
    async def confirm_same(self, data: bytes, what: str) -> None:
        """Make sure every VCP holds the same ``data`` (e.g. a client's masked input).

        Exchanges BLAKE2b digests (one round) and compares them in constant time.

        Raises:
            SessionAborted: some VCP holds different data ("VCPs received
                different <what>").
        """
        step = self._label("agree", self._agreements)
        self._agreements += 1
        digest = hashlib.blake2b(data, digest_size=32, person=_PERSON_AGREE).digest()
        digests = await self._exchange(step, digest)
        for peer in self._peers:
            theirs = digests[peer]
            if not isinstance(theirs, bytes) or not hmac.compare_digest(theirs, digest):
                raise SessionAborted(self.session_id, f"VCPs received different {what} (VCP {peer} disagrees)")

    # ------------------------------------------------------------ public constants

    def constant(self, c: FieldArray | int, length: int | None = None) -> Shares:
        """Shares of a public vector: party 0 holds c, every party c·α_i as MAC.

        ``c`` may be an int together with ``length``.
        """
        if not isinstance(c, FieldArray):
            if length is None:
                raise ValueError("constant(int) needs a length")
            c = self._field.constant(c, length)
        values = c if self._party == 0 else self._field.zeros(len(c))
        return Shares(values, c * self._alpha)

    def add_public(self, x: Shares, c: FieldArray | int) -> Shares:
        """⟨x⟩ + c for public c (party 0 adds to its value share; MACs get c·α_i)."""
        return x.add_public(c, self._party, self._alpha)

    # ------------------------------------------------------------ multiplication

    def mul_prepare(self, x: Shares, y: Shares, triple: Triple | Sequence[Shares]) -> Prepared:
        """A Beaver product split around its opening (see :func:`.beaver.mul_prepare`)."""
        return mul_prepare(x, y, triple)

    def square_prepare(self, x: Shares, pair: SquarePair | Sequence[Shares]) -> Prepared:
        """A squaring split around its opening (see :func:`.beaver.square_prepare`)."""
        return square_prepare(x, pair)

    def bits_prepare(self, pair: SquarePair | Sequence[Shares]) -> Prepared:
        """Random bits from square pairs, split around the opening of s = a²
        (see :func:`.beaver.bits_prepare`; the result may be shorter if some s = 0)."""
        return bits_prepare(pair, party=self._party, alpha_share=self._alpha, session_id=self.session_id)

    @_guarded
    async def complete(self, prepared: Sequence[Prepared]) -> list[Shares]:
        """Run several prepared operations with **one** merged opening round."""
        opened = await self.open_many([item.to_open for item in prepared])

        def finish_all() -> list[Shares]:
            return [item.finish(values) for item, values in zip(prepared, opened, strict=True)]

        if self._threads and 16 * sum(len(values) for values in opened) >= THREAD_BYTES:
            return await trio.to_thread.run_sync(finish_all)
        return finish_all()

    @_guarded
    async def mul(self, x: Shares, y: Shares, triple: Triple | Sequence[Shares]) -> Shares:
        """⟨x·y⟩ element-wise with one Beaver triple per element; one round."""
        return (await self.complete([self.mul_prepare(x, y, triple)]))[0]

    @_guarded
    async def square(self, x: Shares, pair: SquarePair | Sequence[Shares]) -> Shares:
        """⟨x²⟩ element-wise with one square pair per element; one round."""
        return (await self.complete([self.square_prepare(x, pair)]))[0]

    @_guarded
    async def bits_from_squares(self, pair: SquarePair | Sequence[Shares]) -> Shares:
        """Random shared bits, one per square pair (see :meth:`bits_prepare`); one round.

        With ``worker_threads``, large batches take their square roots in a
        worker thread. Costs about 150 field products per bit (the square root).
        """
        prepared = self.bits_prepare(pair)
        (s,) = await self.open_many([prepared.to_open])
        if self._threads and len(s) >= THREAD_SQRT_ELEMENTS:
            return await trio.to_thread.run_sync(prepared.finish, s)
        return prepared.finish(s)

    @_guarded
    async def inverse(self, x: Shares, r: Shares, triple: Triple | Sequence[Shares]) -> Shares:
        """⟨x⁻¹⟩ with a random non-zero ⟨r⟩ and a triple: open c = x·r, return c⁻¹·⟨r⟩.

        Two rounds. ``r`` must be uniformly random, non-zero and used once
        (e.g. the first half of an inverse pair).

        Raises:
            FieldError: some x is zero (after a MAC check has confirmed the
                opening that shows it).
        """
        product = await self.mul(x, r, triple)
        c = await self.open(product)
        try:
            c_inv = c.inverse()
        except FieldError:
            await self.mac_check()  # the zero becomes visible outside: check it first
            raise FieldError("inverse of a secret zero") from None
        return r * c_inv
