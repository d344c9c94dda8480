"""Test helpers for the secret store: an in-process VC with a dealer and fake clients.

* :class:`Dealer` -- a trusted dealer behind a fake :class:`TupleSource` per
  party: the same request id gives every party consistent shares of the same
  fresh tuples; it refuses to hand out a request's tuples twice to a party,
  and counts what each party consumed.
* :func:`open_vc` -- N VCPs over ``open_memory_transports``, each with its own
  SQLite store file, a :class:`SecretStore` and a :class:`Dispatcher` with the
  ``secrets.*`` operations registered.
* :class:`FakeClient` -- the real :class:`SecretsMixin` over a ``call_all``
  that dispatches to every VCP's dispatcher with the client's key (arguments
  and answers go through msgpack, as on the wire), so the API layer is
  exercised too. ``answer_tamper`` lets a test alter one VCP's answers.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import trio
from nacl.signing import SigningKey

from vcpd.api.dispatch import Dispatcher
from vcpd.api.secrets import register_secret_ops
from vcpd.client.fanout import FanOutMixin
from vcpd.client.secrets import SecretsMixin
from vcpd.errors import RequestError
from vcpd.math import PrimeField, Shares, share_vector
from vcpd.protocol.online import OnlineParty
from vcpd.services.ports import Reservation, TupleRange
from vcpd.services.secrets import MIGRATIONS, SecretStore
from vcpd.store import Store, open_store
from vcpd.testing import MemoryHub, open_memory_transports

FIELD = PrimeField()



def new_key() -> str:
    """A fresh client public key (base64), as a VCP sees its caller."""
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


class Dealer:
    """Makes tuples for every party; consistent per request id."""

    def __init__(self, field_: PrimeField, n_parties: int, alpha_shares: Sequence[int] | None = None) -> None:
        self.field = field_
        self.n = n_parties
        self.alpha_shares = list(alpha_shares) if alpha_shares else [int(x) for x in field_.random(n_parties).to_ints()]
        self.alpha = sum(self.alpha_shares) % field_.p
        self._made: dict[str, tuple[dict[str, int], dict[str, list[list[Shares]]]]] = {}
        self._offsets = dict.fromkeys(("triple", "square", "bit", "inverse", "mask"), 0)
        self.taken: list[list[str]] = [[] for _ in range(n_parties)]
        self.discarded: list[list[str]] = [[] for _ in range(n_parties)]
        self.consumed: list[dict[str, int]] = [{} for _ in range(n_parties)]
        self.ranges: dict[str, tuple[TupleRange, ...]] = {}
        self.fail_reserve: str | None = None  # kind to report as exhausted

    def source(self, party: int) -> DealerSource:
        return DealerSource(self, party)

    def _make(self, request_id: str, counts: Mapping[str, int]) -> tuple[TupleRange, ...]:
        counts = {k: v for k, v in counts.items() if v}
        if request_id in self._made:
            made_counts, _ = self._made[request_id]
            assert made_counts == counts, "parties asked for different counts under one request id"
            return self.ranges[request_id]
        per_kind: dict[str, list[list[Shares]]] = {}
        ranges = []
        for kind, count in sorted(counts.items()):
            if kind == "mask":
                comps = [self.field.random(count)]
            elif kind == "triple":
                a, b = self.field.random(count), self.field.random(count)
                comps = [a, b, a * b]
            else:
                raise AssertionError(f"the secret store should not ask for {kind}")
            shared = [share_vector(self.field, c, self.alpha, self.n) for c in comps]
            per_kind[kind] = [[shared[j][party] for j in range(len(comps))] for party in range(self.n)]
            ranges.append(TupleRange(kind, "dealer", self._offsets[kind], count))
            self._offsets[kind] += count
        self._made[request_id] = (counts, per_kind)
        self.ranges[request_id] = tuple(ranges)
        return self.ranges[request_id]

    def reconstruct_triples(self, request_id: str) -> tuple[list[int], list[int], list[int]]:
        """The plain (a, b, c) of a request's triples (an oracle no VCP has)."""
        _, per_kind = self._made[request_id]
        comps = []
        for j in range(3):
            total = per_kind["triple"][0][j].values
            for party in range(1, self.n):
                total = total + per_kind["triple"][party][j].values
            comps.append(total.to_ints())
        return comps[0], comps[1], comps[2]

    @property
    def requests(self) -> list[str]:
        return list(self._made)


@dataclass
class DealerSource:
    """One party's TupleSource backed by the dealer."""

    dealer: Dealer
    party: int

    async def reserve(self, request_id: str, counts: Mapping[str, int]) -> Reservation:
        await trio.lowlevel.checkpoint()
        if self.dealer.fail_reserve is not None:
            from vcpd.errors import TuplesExhausted

            raise TuplesExhausted(self.dealer.fail_reserve, counts.get(self.dealer.fail_reserve, 0), 0)
        assert request_id not in self.dealer.taken[self.party], f"request id {request_id} reused"
        return Reservation(request_id, self.dealer._make(request_id, counts))

    async def take(self, reservation: Reservation) -> dict[str, list[Shares]]:
        await trio.lowlevel.checkpoint()
        taken = self.dealer.taken[self.party]
        assert reservation.request_id not in taken, "tuples taken twice"
        taken.append(reservation.request_id)
        _, per_kind = self.dealer._made[reservation.request_id]
        for kind, count in reservation.counts.items():
            self.dealer.consumed[self.party][kind] = self.dealer.consumed[self.party].get(kind, 0) + count
        return {kind: list(parts[self.party]) for kind, parts in per_kind.items()}

    async def discard(self, reservation: Reservation) -> None:
        await trio.lowlevel.checkpoint()
        self.dealer.discarded[self.party].append(reservation.request_id)


OnlineFactory = Callable[[Any, PrimeField, int], Any]


@dataclass
class VC:
    hub: MemoryHub
    stores: list[Store]
    dealer: Dealer
    services: list[SecretStore]
    dispatchers: list[Dispatcher]
    paths: list[Path]
    field: PrimeField = FIELD
    admin_key: str = ""
    answer_tamper: Callable[[int, str, Any], Any] | None = None

    @property
    def n(self) -> int:
        return len(self.services)

    def client(self, key: str | None = None) -> FakeClient:
        return FakeClient(self, key or new_key())


@asynccontextmanager
async def open_vc(
    tmp_path: Path,
    n: int = 2,
    *,
    online: Mapping[int, OnlineFactory] | None = None,
    session_timeout: float = 30.0,
    commit_timeout: float = 300.0,
    alpha_shares: Sequence[int] | None = None,
) -> AsyncIterator[VC]:
    """An in-process VC of ``n`` VCPs with real SQLite stores under ``tmp_path``."""
    admin = new_key()
    async with open_memory_transports(n) as hub, AsyncExitStack() as stack:
        paths = [tmp_path / f"vcp{i}.db" for i in range(n)]
        stores = [await stack.enter_async_context(open_store(p, MIGRATIONS, readers=2)) for p in paths]
        dealer = Dealer(FIELD, n, alpha_shares)
        services, dispatchers = [], []
        for i in range(n):
            service = SecretStore(
                stores[i],
                hub.transports[i],
                dealer.source(i),
                FIELD,
                dealer.alpha_shares[i],
                online=(online or {}).get(i, OnlineParty),
                session_timeout=session_timeout,
                commit_timeout=commit_timeout,
            )
            dispatcher = Dispatcher(admin_keys=frozenset({admin}))
            register_secret_ops(dispatcher, service)
            services.append(service)
            dispatchers.append(dispatcher)
        yield VC(hub, stores, dealer, services, dispatchers, paths, admin_key=admin)


def _wire(value: Any) -> Any:
    return msgpack.unpackb(msgpack.packb(value, use_bin_type=True), raw=False)


class FakeClient(FanOutMixin, SecretsMixin):
    """The real client mixin over in-process dispatch to every VCP."""

    def __init__(self, vc: VC, key: str) -> None:
        self.vc = vc
        self.public_key = key
        self.field = vc.field
        self.calls: list[tuple[int, str, dict[str, Any]]] = []

    @property
    def n_parties(self) -> int:  # type: ignore[override]
        return self.vc.n

    async def call(
        self, party: int, op: str, args: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        dispatcher = self.vc.dispatchers[party]
        sent = _wire(dict(args or {}))
        self.calls.append((party, op, sent))
        result = _wire(await dispatcher.dispatch(dispatcher.caller(self.public_key), op, sent))
        if self.vc.answer_tamper is not None:
            result = self.vc.answer_tamper(party, op, result)
        return result


def count_rows(path: Path, table: str) -> int:
    """Rows of a table, read with a plain sqlite3 connection (no service involved)."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def tamper_share(path: Path, secret_id: str, element: int, delta: int, *, mac: bool = False) -> None:
    """Add ``delta`` to one stored value (or MAC) share of a secret, behind the service's back."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        (blob,) = conn.execute("SELECT shares FROM secrets_secret WHERE id = ?", (secret_id,)).fetchone()
        shares = Shares.from_bytes(FIELD, blob)
        values, macs = shares.values, shares.macs
        bump = FIELD.zeros(len(shares)).to_ints()
        bump[element] = delta
        change = FIELD.from_ints(bump)
        shares = Shares(values, macs + change) if mac else Shares(values + change, macs)
        conn.execute("UPDATE secrets_secret SET shares = ? WHERE id = ?", (shares.to_bytes(), secret_id))


def delete_behind_the_back(path: Path, secret_id: str) -> None:
    """Delete a secret (tags and grants cascade) from one VCP's file only: a diverged store."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("DELETE FROM secrets_secret WHERE id = ?", (secret_id,))


async def call_each(client: FakeClient, op: str, args: Mapping[str, Any]) -> list[Any]:
    """Send one request to every VCP; return each answer or the RequestError it raised."""
    results: list[Any] = [None] * client.n_parties

    async def one(party: int) -> None:
        try:
            results[party] = await client.call(party, op, args)
        except RequestError as exc:
            results[party] = exc

    async with trio.open_nursery() as nursery:
        for party in range(client.n_parties):
            nursery.start_soon(one, party)
    return results
