"""Test harness for the executor: an in-process VC with fake ports and real stores.

* :class:`Dealer` -- a trusted dealer behind one fake :class:`TupleSource`
  per party: the same request id gives every party consistent shares of the
  same fresh triples (and masks, for the real secret store); it records what
  each party reserved, took and discarded, so tests can check that no
  reservation is left open.
* :class:`Registry` / :class:`FakeSecrets` -- a fake :class:`SecretSource`
  per party over one registry of dealt secrets with owners and ``use``
  grants; results stored by executions land in ``registry.results``.
* :func:`open_exec_vc` -- N VCPs over ``open_memory_transports``, each with
  its own SQLite store file, an :class:`Executor` and a dispatcher with the
  ``executions.*`` operations; :meth:`ExecVC.client` gives the real
  :class:`ExecutionsMixin` over a ``call_all`` that dispatches to every VCP
  (arguments and answers go through msgpack, as on the wire).

Not a test module: imported by the ``test_*`` files of this folder.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import trio
from nacl.signing import SigningKey

from vcpd.api.dispatch import Dispatcher
from vcpd.api.executions import register_execution_ops
from vcpd.client.executions import ExecutionsMixin
from vcpd.client.fanout import FanOutMixin
from vcpd.config import ExecutorSettings
from vcpd.errors import RequestError, TuplesExhausted
from vcpd.math import PrimeField, Shares, check_macs, reconstruct, share_vector
from vcpd.protocol.online import OnlineParty
from vcpd.services.executor import MIGRATIONS, Executor
from vcpd.services.ports import Reservation, SecretEncoding, TupleRange
from vcpd.store import Store, open_store
from vcpd.services.generator.dealing import bounded_values
from vcpd.testing import MemoryHub, open_memory_transports

FIELD = PrimeField()
P = FIELD.p


def new_key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


def signed(values: list[int]) -> list[int]:
    return [v - P if v > P // 2 else v for v in values]


class Dealer:
    """Deals consistent tuples per request id; tracks reservations per party."""

    def __init__(self, n_parties: int) -> None:
        self.n = n_parties
        self.alpha_shares = [int(x) for x in FIELD.random(n_parties).to_ints()]
        self.alpha = sum(self.alpha_shares) % P
        self._made: dict[str, tuple[dict[str, int], dict[str, list[list[Shares]]]]] = {}
        self.reserved: list[list[str]] = [[] for _ in range(n_parties)]
        self.taken: list[list[str]] = [[] for _ in range(n_parties)]
        self.discarded: list[list[str]] = [[] for _ in range(n_parties)]
        self.counts: dict[str, dict[str, int]] = {}
        self.exhausted: str | None = None  # a kind to report as exhausted
        self.take_delay = 0.0  # seconds each take waits (to widen race windows)

    def make(self, request_id: str, counts: Mapping[str, int]) -> None:
        counts = {k: v for k, v in counts.items() if v}
        if request_id in self._made:
            assert self._made[request_id][0] == counts, "parties asked for different tuples under one request id"
            return
        per_kind: dict[str, list[list[Shares]]] = {}
        for kind, count in sorted(counts.items()):
            if kind == "triple":
                a, b = FIELD.random(count), FIELD.random(count)
                comps = [a, b, a * b]
            elif kind == "mask":
                comps = [FIELD.random(count)]
            elif kind == "bounded":  # the high part of statistical masks
                comps = [bounded_values(FIELD, count)]
            elif kind == "bit":  # the non-linear operations' bounded randomness
                comps = [FIELD.from_ints(np.frombuffer(os.urandom(count), np.uint8) & 1)]
            elif kind == "square":
                a = FIELD.random(count)
                comps = [a, a * a]
            else:
                raise AssertionError(f"unexpected tuple kind {kind}")
            shared = [share_vector(FIELD, c, self.alpha, self.n) for c in comps]
            per_kind[kind] = [[shared[j][party] for j in range(len(comps))] for party in range(self.n)]
        self._made[request_id] = (counts, per_kind)
        self.counts[request_id] = counts

    def open_reservations(self, party: int) -> list[str]:
        done = set(self.taken[party]) | set(self.discarded[party])
        return [r for r in self.reserved[party] if r not in done]

    def source(self, party: int) -> DealerSource:
        return DealerSource(self, party)


@dataclass
class DealerSource:
    dealer: Dealer
    party: int

    async def reserve(self, request_id: str, counts: Mapping[str, int]) -> Reservation:
        await trio.lowlevel.checkpoint()
        dealer = self.dealer
        if dealer.exhausted is not None:
            raise TuplesExhausted(dealer.exhausted, counts.get(dealer.exhausted, 0), 0)
        assert request_id not in dealer.reserved[self.party], f"request id {request_id} reused"
        dealer.make(request_id, counts)
        dealer.reserved[self.party].append(request_id)
        ranges = tuple(TupleRange(kind, "dealer", 0, count) for kind, count in sorted(counts.items()) if count)
        return Reservation(request_id, ranges)

    async def take(self, reservation: Reservation) -> dict[str, list[Shares]]:
        if self.dealer.take_delay:
            await trio.sleep(self.dealer.take_delay)
        await trio.lowlevel.checkpoint()
        assert reservation.request_id not in self.dealer.taken[self.party], "tuples taken twice"
        self.dealer.taken[self.party].append(reservation.request_id)
        _, per_kind = self.dealer._made[reservation.request_id]
        return {kind: list(parts[self.party]) for kind, parts in per_kind.items()}

    async def discard(self, reservation: Reservation) -> None:
        await trio.lowlevel.checkpoint()
        self.dealer.discarded[self.party].append(reservation.request_id)


@dataclass
class StoredSecret:
    owner: str
    shares: list[Shares]
    encoding: SecretEncoding = field(default_factory=SecretEncoding)
    users: set[str] = field(default_factory=set)
    readers: set[str] = field(default_factory=set)


class Registry:
    """The secrets every fake secret source serves, and the results they stored."""

    def __init__(self, dealer: Dealer) -> None:
        self.dealer = dealer
        self.secrets: dict[str, StoredSecret] = {}
        self.results: dict[str, dict[int, Shares]] = {}
        self.result_tags: dict[str, dict[str, str | int]] = {}
        self.result_owner: dict[str, str] = {}
        self.result_encoding: dict[str, SecretEncoding] = {}
        self._next = 0

    def add(self, values: Sequence[int], owner: str, *, encoding: str = "int64", fraction_bits: int = 0) -> str:
        self._next += 1
        secret_id = f"00000000-0000-4000-8000-{self._next:012d}"
        shares = share_vector(FIELD, FIELD.from_ints(values), self.dealer.alpha, self.dealer.n)
        self.secrets[secret_id] = StoredSecret(owner, shares, SecretEncoding(encoding, fraction_bits))
        return secret_id

    def value(self, secret_id: str) -> list[int]:
        """A stored result, reconstructed (MACs checked), as signed ints."""
        parts = self.results[secret_id]
        shares = [parts[p] for p in range(self.dealer.n)]
        assert check_macs(shares, self.dealer.alpha_shares), "a result's MACs do not check"
        return signed(reconstruct(shares).to_ints())


@dataclass
class FakeSecrets:
    registry: Registry
    party: int
    calls: list[str] = field(default_factory=list)

    async def load_for_use(self, secret_ids: Sequence[str], caller_key: str) -> list[tuple[Shares, SecretEncoding]]:
        await trio.lowlevel.checkpoint()
        out = []
        for secret_id in secret_ids:
            secret = self.registry.secrets.get(secret_id)
            if secret is None or (caller_key != secret.owner and caller_key not in secret.users | secret.readers):
                raise RequestError("not-found", f"no secret {secret_id}")
            if caller_key != secret.owner and caller_key not in secret.users:
                raise RequestError("forbidden", f"you may not use secret {secret_id}")
            out.append((secret.shares[self.party], secret.encoding))
        return out

    async def store_result(
        self,
        owner_key: str,
        shares: Shares,
        encoding: SecretEncoding,
        tags: Mapping[str, str | int],
        *,
        secret_id: str | None = None,
    ) -> str:
        await trio.lowlevel.checkpoint()
        assert secret_id is not None
        self.calls.append(secret_id)
        self.registry.results.setdefault(secret_id, {})[self.party] = shares
        self.registry.result_tags[secret_id] = dict(tags)
        self.registry.result_owner[secret_id] = owner_key
        self.registry.result_encoding[secret_id] = encoding
        return secret_id


def _wire(value: Any) -> Any:
    return msgpack.unpackb(msgpack.packb(value, use_bin_type=True), raw=False)


@dataclass
class ExecVC:
    hub: MemoryHub
    dealer: Dealer
    registry: Registry
    stores: list[Store]
    executors: list[Executor]
    dispatchers: list[Dispatcher]
    sources: list[FakeSecrets]
    admin_key: str

    @property
    def n(self) -> int:
        return len(self.executors)

    def client(self, key: str | None = None) -> FakeExecClient:
        return FakeExecClient(self, key or new_key())

    def secret(self, values: Sequence[int], owner: str, **kwargs: Any) -> str:
        return self.registry.add(values, owner, **kwargs)


class FakeExecClient(FanOutMixin, ExecutionsMixin):
    """The real client mixin over an in-process ``call_all``."""

    def __init__(self, vc: ExecVC, key: str) -> None:
        self.vc = vc
        self.key = key
        self.field = FIELD

    @property
    def n_parties(self) -> int:
        return self.vc.n

    async def call(
        self, party: int, op: str, args: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        dispatcher = self.vc.dispatchers[party]
        return _wire(await dispatcher.dispatch(dispatcher.caller(self.key), op, _wire(dict(args or {}))))


@asynccontextmanager
async def open_exec_vc(
    tmp_path: Path,
    n: int = 3,
    *,
    settings: ExecutorSettings | None = None,
    party_settings: Mapping[int, ExecutorSettings] | None = None,
    online: Mapping[int, Callable[..., OnlineParty]] | None = None,
    start_timeout: float = 10.0,
) -> AsyncIterator[ExecVC]:
    """An in-process VC of ``n`` executors with real SQLite stores under ``tmp_path``."""
    admin = new_key()
    async with open_memory_transports(n) as hub, AsyncExitStack() as stack:
        dealer = Dealer(n)
        registry = Registry(dealer)
        stores, executors, dispatchers, sources = [], [], [], []
        for i in range(n):
            store = await stack.enter_async_context(open_store(tmp_path / f"vcp{i}.db", MIGRATIONS, readers=2))
            source = FakeSecrets(registry, i)
            executor = Executor(
                store,
                hub.transports[i],
                dealer.source(i),
                source,
                FIELD,
                dealer.alpha_shares[i],
                (party_settings or {}).get(i, settings or ExecutorSettings()),
                online=(online or {}).get(i),
                start_timeout=start_timeout,
            )
            dispatcher = Dispatcher(admin_keys=frozenset({admin}))
            register_execution_ops(dispatcher, executor)
            stores.append(store)
            executors.append(executor)
            dispatchers.append(dispatcher)
            sources.append(source)
        yield ExecVC(hub, dealer, registry, stores, executors, dispatchers, sources, admin)
