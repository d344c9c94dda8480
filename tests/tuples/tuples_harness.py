"""Test harness for the tuple store and generator: N VCPs in one trio run.

Each VCP has its own SQLite file, a :class:`TupleStore` and a
:class:`TupleGenerator`, connected through :func:`vcpd.testing.open_memory_transports`.
A VCP can be killed (its tasks cancelled, its store closed) or crashed (its
store closed first, so no clean-up reaches the disk) and started again on the
same file. Not a test module: imported by the ``test_*`` files of this folder.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from vcpd.config import TupleSettings
from vcpd.keys import MacKey
from vcpd.math.field import PrimeField
from vcpd.math.shares import Shares, check_macs, reconstruct
from vcpd.protocol.transport import Transport
from vcpd.services.generator import TupleGenerator, deal_batch
from vcpd.services.ports import BOUNDED_BITS
from vcpd.services.tuples import KINDS, TupleStore
from vcpd.store import Store, open_store
from vcpd.testing import MemoryHub, MemoryTransport, open_memory_transports

FIELD = PrimeField()
MIGRATIONS = (*TupleStore.MIGRATIONS, *TupleGenerator.MIGRATIONS)


@dataclass
class Vcp:
    party: int
    store: Store
    tuples: TupleStore
    generator: TupleGenerator
    scope: trio.CancelScope
    done: trio.Event = field(default_factory=trio.Event)


class Cluster:
    """N VCPs over a memory hub (or, with ``transport_of``, any transports, such
    as real peer meshes); ``cluster[i]`` is VCP i while it runs."""

    def __init__(
        self,
        hub: MemoryHub | None,
        tmp_path: Path,
        nursery: trio.Nursery,
        settings: TupleSettings,
        batch: int,
        offline: str,
        encoding: str = "seed",
        *,
        n: int | None = None,
        transport_of: Callable[[int], Transport] | None = None,
    ) -> None:
        self._hub = hub
        self.transport_of = transport_of or (lambda party: self.hub.transports[party])
        self.n = hub.n_parties if hub is not None else int(n or 0)
        self.tmp_path = tmp_path
        self.nursery = nursery
        self.settings = settings
        self.batch = batch
        self.offline = offline
        self.encoding = encoding
        self.alpha = secrets.randbelow(FIELD.p)
        shares = [secrets.randbelow(FIELD.p) for _ in range(self.n - 1)]
        self.alpha_shares = [*shares, (self.alpha - sum(shares)) % FIELD.p]
        self.vcps: dict[int, Vcp] = {}
        self.crashed: set[int] = set()
        self.stopped: set[int] = set()

    def __getitem__(self, party: int) -> Vcp:
        return self.vcps[party]

    @property
    def hub(self) -> MemoryHub:
        assert self._hub is not None, "this cluster runs over other transports"
        return self._hub

    def path(self, party: int) -> Path:
        return self.tmp_path / f"vcp{party}.sqlite3"

    async def start(self, party: int) -> Vcp:
        """Start VCP ``party`` on its store file (recovery runs first).

        A VCP that ran before comes back as a new process would: with fresh
        mailboxes and its links up again.
        """
        if party in self.stopped and self._hub is not None:
            self.stopped.discard(party)
            self.hub.transports[party] = MemoryTransport(self.hub, party)
            for other in range(self.n):
                if other != party:
                    self.hub.restore(party, other)
        return await self.nursery.start(self._run, party)

    async def _run(self, party: int, task_status: trio.TaskStatus[Vcp] = trio.TASK_STATUS_IGNORED) -> None:
        done = trio.Event()
        self.crashed.discard(party)
        try:
            with trio.CancelScope() as scope:
                async with open_store(self.path(party), MIGRATIONS) as store:
                    transport = self.transport_of(party)
                    tuples = TupleStore(store, transport, FIELD, party, self.n, mac_share=self.alpha_shares[party])
                    key = MacKey(self.alpha_shares[party], self.alpha if party == 0 else None)
                    generator = TupleGenerator(
                        store, tuples, transport, FIELD, key, party, self.n, self.settings,
                        offline=self.offline, batch=self.batch, encoding=self.encoding,  # type: ignore[arg-type]
                    )  # fmt: skip
                    async with trio.open_nursery() as nursery:
                        await nursery.start(tuples.serve)
                        await nursery.start(generator.serve)
                        vcp = Vcp(party, store, tuples, generator, scope, done)
                        self.vcps[party] = vcp
                        task_status.started(vcp)
        except Exception:
            # A crashed VCP's tasks may trip over its closed store on the way out.
            if party not in self.crashed:
                raise
        finally:
            done.set()

    async def kill(self, party: int) -> None:
        """Shut VCP ``party`` down: its tasks are cancelled (their clean-up runs,
        abort notices go out) and its store is closed."""
        vcp = self.vcps.pop(party)
        self.stopped.add(party)
        vcp.scope.cancel()
        await vcp.done.wait()

    async def crash(self, party: int) -> None:
        """Crash VCP ``party``: its store closes first, so no clean-up reaches
        the disk, and its links drop (peers see PeerUnavailable), as when the
        process dies."""
        vcp = self.vcps.pop(party)
        self.crashed.add(party)
        self.stopped.add(party)
        await vcp.store.aclose()
        if self._hub is not None:
            self.hub.isolate(party, "VCP crashed")
        vcp.scope.cancel()
        await vcp.done.wait()

    async def fill(
        self, kind: str, count: int, *, job_id: str | None = None, parties: Sequence[int] | None = None
    ) -> str:
        """Deal ``count`` tuples of ``kind`` straight into the stores (no network)."""
        job_id = job_id or str(uuid.uuid4())
        targets = list(self.vcps) if parties is None else list(parties)
        for party in targets:
            await self.vcps[party].tuples.create_job(job_id, kind, count, source="test")
        for offset in range(0, count, 1 << 15):
            n = min(1 << 15, count - offset)
            dealt = deal_batch(FIELD, kind, n, self.alpha, self.n, "shares")
            for party in targets:
                data = dealt.own if party == 0 else dealt.payloads[party]
                await self.vcps[party].tuples.store_chunk(job_id, offset, n, data)
        for party in targets:
            await self.vcps[party].tuples.activate_job(job_id)
        return job_id

    def check(self, kind: str, per_party: Sequence[list[Shares]]) -> None:
        """Assert the parties' shares reconstruct to valid, MAC-consistent tuples."""
        assert_valid(kind, per_party, self.alpha_shares)


def assert_valid(kind: str, per_party: Sequence[list[Shares]], alpha_shares: Sequence[int]) -> None:
    """Every tuple satisfies its relation and every MAC is consistent with α."""
    arity = KINDS[kind].arity
    assert all(len(parts) == arity for parts in per_party)
    comps = [[parts[j] for parts in per_party] for j in range(arity)]
    for shares in comps:
        assert check_macs(shares, list(alpha_shares))
    values = [reconstruct(shares) for shares in comps]
    n = len(values[0])
    if kind == "triple":
        assert (values[0] * values[1]).equals(values[2])
    elif kind == "square":
        assert (values[0] * values[0]).equals(values[1])
    elif kind == "bit":
        assert set(values[0].to_ints()) <= {0, 1}
    elif kind == "inverse":
        assert (values[0] * values[1]).equals(FIELD.constant(1, n))
    elif kind == "mask":
        ints = values[0].to_ints()
        assert n < 2 or len(set(ints)) == n  # 128-bit uniform values never collide in practice
    elif kind == "bounded":
        ints = values[0].to_ints()
        assert all(0 <= v < 1 << BOUNDED_BITS for v in ints)
        if n >= 1000:  # uniform on [0, 2^40): every bit is set about half the time, the top one included
            for bit in (0, 20, BOUNDED_BITS - 1):
                ones = sum(v >> bit & 1 for v in ints)
                assert 0.4 * n < ones < 0.6 * n


@asynccontextmanager
async def open_cluster(
    tmp_path: Path,
    n: int,
    *,
    settings: TupleSettings | None = None,
    batch: int = 1 << 12,
    offline: str = "dealer",
    encoding: str = "seed",
    start: bool = True,
) -> AsyncIterator[Cluster]:
    """A running cluster of ``n`` VCPs (all started unless ``start=False``)."""
    async with open_memory_transports(n) as hub, trio.open_nursery() as nursery:
        cluster = Cluster(hub, tmp_path, nursery, settings or TupleSettings(), batch, offline, encoding)
        if start:
            for party in range(n):
                await cluster.start(party)
        yield cluster
        nursery.cancel_scope.cancel()
