"""The secret store over the real tuple store (reservation protocol, durable consumption)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from secret_vc import FIELD, VC, Dealer, FakeClient, new_key
from vcpd.api.dispatch import Dispatcher
from vcpd.api.secrets import register_secret_ops
from vcpd.errors import RequestError
from vcpd.math import share_vector
from vcpd.protocol.online import OnlineParty
from vcpd.services import secrets as secrets_service
from vcpd.services import tuples as tuples_service
from vcpd.services.tuples.kinds import pack_tuples
from vcpd.store import open_store
from vcpd.testing import open_memory_transports

STOCK = {"mask": 60, "triple": 40}


@asynccontextmanager
async def real_vc(
    tmp_path: Path, n: int, *, online: Any = OnlineParty
) -> AsyncIterator[tuple[VC, list[tuples_service.TupleStore]]]:
    dealer = Dealer(FIELD, n)
    async with open_memory_transports(n) as hub, AsyncExitStack() as stack:
        paths = [tmp_path / f"vcp{i}.db" for i in range(n)]
        migrations = (*secrets_service.MIGRATIONS, *tuples_service.MIGRATIONS)
        stores = [await stack.enter_async_context(open_store(p, migrations, readers=2)) for p in paths]
        tuple_stores = []
        for i in range(n):
            ts = tuples_service.TupleStore(stores[i], hub.transports[i], FIELD, i, n, mac_share=dealer.alpha_shares[i])
            await ts.recover()
            tuple_stores.append(ts)
        for kind, count in STOCK.items():
            arity = 3 if kind == "triple" else 1
            if kind == "triple":
                a, b = FIELD.random(count), FIELD.random(count)
                comps = [a, b, a * b]
            else:
                comps = [FIELD.random(count)]
            shared = [share_vector(FIELD, c, dealer.alpha, n) for c in comps]
            for i, ts in enumerate(tuple_stores):
                await ts.create_job(f"job-{kind}", kind, count, source="test")
                await ts.store_chunk(f"job-{kind}", 0, count, pack_tuples([shared[j][i] for j in range(arity)]))
                await ts.activate_job(f"job-{kind}")
        services, dispatchers = [], []
        for i in range(n):
            service = secrets_service.SecretStore(
                stores[i], hub.transports[i], tuple_stores[i], FIELD, dealer.alpha_shares[i], online=online
            )
            dispatcher = Dispatcher(admin_keys=frozenset())
            register_secret_ops(dispatcher, service)
            services.append(service)
            dispatchers.append(dispatcher)
        yield VC(hub, stores, dealer, services, dispatchers, paths), tuple_stores


async def test_upload_download_and_abandoned_masks_with_the_tuple_store(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with real_vc(tmp_path, 2) as (vc, tuple_stores):
            client = FakeClient(vc, new_key())
            sid = await client.create_secret([11, -12, 13])
            assert (await client.get_secret(sid)).values == [11, -12, 13]
            for ts in tuple_stores:  # 1 triple per uploaded element; 2 triples per downloaded one
                assert ts.available() == {**ts.available(), "mask": 60, "triple": 40 - 9}
            # A client that begins and never commits still spends its triples, once.
            begin = {"id": str(uuid.uuid4()), "count": 2, "request_id": str(uuid.uuid4())}
            await client.call_all("secrets.upload.begin", begin)
            for ts in tuple_stores:
                assert ts.available()["triple"] == 40 - 9 - 2
            # A reused request id is refused at once: tuples are never handed out twice.
            rid = str(uuid.uuid4())
            await client.call_all("secrets.get", {"id": sid, "request_id": rid})
            with pytest.raises(RequestError, match="request id was used before") as info:
                await client.call_all("secrets.get", {"id": sid, "request_id": rid})
            assert info.value.code == "conflict"
            for ts in tuple_stores:
                assert ts.available()["triple"] == 40 - 9 - 2 - 6
