"""The dealer backend (``offline = "dealer"``): the leader makes every tuple.

INSECURE BY CONSTRUCTION: the leader knows the whole MAC key α and every
tuple it deals, so it can forge MACs and read any input masked with its
tuples. For development and benchmarks only (DESIGN §2).

Protocol, in the job's session (steps numbered per batch ``i``):

* ``batch.<i>`` leader -> follower: ``{"job", "kind", "index", "offset",
  "count"}`` plus either ``"seed"`` (32 bytes; the follower expands its
  shares, see :mod:`.dealing`) or ``"data"`` (its packed shares);
* ``ack.<i>`` follower -> leader: ``{"stored": n}`` once the chunk is stored
  durably. The leader keeps at most :data:`WINDOW` batches unacknowledged, so a
  job of millions of tuples streams with bounded memory on every VCP.

Every follower checks what arrives (job id, kind, index, offset, count, byte
size, every word below p) before storing it. Dealing and seed expansion run
in worker threads, overlapped with storing and sending.

This module must not import another service, vcpd.net, api, node or daemon.
"""

from __future__ import annotations

import math
from typing import Any, Final

import trio

from vcpd.errors import RequestError, SessionAborted
from vcpd.math.field import PrimeField
from vcpd.protocol.transport import Session
from vcpd.services.ports import KIND_ARITY, TupleSink

from .backend import JobSpec, Progress
from .dealing import SEED_BYTES, DealtBatch, Encoding, deal_batch, expand_seed
from .util import for_all

__all__ = ["ACK_TIMEOUT", "BATCH_TIMEOUT", "WINDOW", "DealerBackend"]

WINDOW: Final = 2
"""Batches the leader may have sent but not yet seen acknowledged by everyone."""

ACK_TIMEOUT: Final = 60.0
"""Seconds the leader waits for a follower to acknowledge a stored batch."""

BATCH_TIMEOUT: Final = 60.0
"""Seconds a follower waits for the leader's next batch."""


class DealerBackend:
    """Trusted-dealer generation; see the module docstring.

    Args:
        field: the VC's field.
        alpha: the whole MAC key α (``MacKey.dealer_alpha``); needed on the
            leader only, None elsewhere.
        n_parties: number of VCPs.
        encoding: how followers get their shares (``seed`` or ``shares``; see
            :mod:`.dealing` for why ``seed`` is the default).
    """

    name = "dealer"

    def __init__(self, field: PrimeField, alpha: int | None, n_parties: int, *, encoding: Encoding = "seed") -> None:
        if encoding not in ("seed", "shares"):
            raise ValueError(f"unknown dealer encoding {encoding!r}")
        self._field = field
        self._alpha = alpha
        self._n_parties = n_parties
        self._encoding: Encoding = encoding

    def check_leader(self) -> None:
        if self._alpha is None:
            raise RequestError(
                "conflict",
                "this VCP cannot deal tuples: its MAC key file has no 'dealer_alpha' "
                "(only party 0 of a dealer-mode VC deals)",
            )

    async def lead(self, job: JobSpec, session: Session, sink: TupleSink, progress: Progress) -> None:
        self.check_leader()
        assert self._alpha is not None
        alpha = self._alpha
        peers = list(range(1, self._n_parties))
        batches = [(i, off, min(job.batch, job.count - off)) for i, off in enumerate(range(0, job.count, job.batch))]
        send, receive = trio.open_memory_channel[tuple[int, int, int, DealtBatch]](1)

        async def produce() -> None:
            async with send:
                for i, offset, n in batches:
                    dealt = await trio.to_thread.run_sync(
                        deal_batch, self._field, job.kind, n, alpha, self._n_parties, self._encoding
                    )
                    await send.send((i, offset, n, dealt))

        async def acked(i: int) -> None:
            _, offset, n = batches[i]
            await self._wait_acks(session, peers, i, offset + n)
            await progress(offset + n)

        key = "seed" if self._encoding == "seed" else "data"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            async with receive:
                async for i, offset, n, dealt in receive:
                    if i >= WINDOW:
                        await acked(i - WINDOW)
                    header = {"job": job.job_id, "kind": job.kind, "index": i, "offset": offset, "count": n}

                    async def deliver(peer: int, dealt: DealtBatch = dealt, header: dict[str, Any] = header) -> None:
                        if peer == session.party:
                            await sink.store_chunk(job.job_id, header["offset"], header["count"], dealt.own)
                        else:
                            await session.send(peer, f"batch.{header['index']}", {**header, key: dealt.payloads[peer]})

                    await for_all([session.party, *peers], deliver)
            for i in range(max(0, len(batches) - WINDOW), len(batches)):
                await acked(i)

    async def _wait_acks(self, session: Session, peers: list[int], index: int, expected: int) -> None:
        async def one(peer: int) -> None:
            try:
                with trio.fail_after(ACK_TIMEOUT):
                    ack = await session.receive(peer, f"ack.{index}")
            except trio.TooSlowError:
                raise SessionAborted(session.id, f"VCP {peer} did not confirm batch {index} in time") from None
            if not (isinstance(ack, dict) and ack.get("stored") == expected):
                raise SessionAborted(session.id, f"VCP {peer} stored a different number of tuples in batch {index}")

        await for_all(peers, one)

    async def follow(self, job: JobSpec, session: Session, sink: TupleSink, progress: Progress) -> None:
        stored = 0
        size = 32 * KIND_ARITY[job.kind]
        for i in range(math.ceil(job.count / job.batch)):
            try:
                with trio.fail_after(BATCH_TIMEOUT):
                    message = await session.receive(0, f"batch.{i}")
            except trio.TooSlowError:
                raise SessionAborted(session.id, f"the dealer sent no batch {i} in time") from None
            n = min(job.batch, job.count - stored)
            expected = {"job": job.job_id, "kind": job.kind, "index": i, "offset": stored, "count": n}
            if not isinstance(message, dict) or any(message.get(k) != v for k, v in expected.items()):
                raise SessionAborted(session.id, f"batch {i} does not match the job (id, kind, index, offset or count)")
            seed, sent = message.get("seed"), message.get("data")
            if isinstance(seed, bytes) and len(seed) == SEED_BYTES and sent is None:
                data = await trio.to_thread.run_sync(expand_seed, self._field, job.kind, n, seed)
            elif isinstance(sent, bytes) and len(sent) == n * size and seed is None:
                data = sent
            else:
                raise SessionAborted(session.id, f"batch {i} has the wrong size for {n} {job.kind} tuples")
            stored = await sink.store_chunk(job.job_id, stored, n, data)
            await session.send(0, f"ack.{i}", {"stored": stored})
            await progress(stored)
