"""Dealer generation: tuple relations and MACs, job records on every VCP, and
failures (a peer cut or a VCP killed mid-job) leaving nothing usable anywhere."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from tuples_harness import FIELD, Cluster, assert_valid, open_cluster

from vcpd.config import TupleSettings
from vcpd.errors import RequestError
from vcpd.math.shares import Shares
from vcpd.services.generator import JOB_SESSION_PREFIX, deal_batch, expand_seed
from vcpd.services.generator import control as control_module
from vcpd.services.generator import jobs as jobs_module
from vcpd.services.ports import TUPLE_KINDS, Reservation
from vcpd.services.tuples import KINDS
from vcpd.services.tuples.kinds import unpack_tuples
from vcpd.testing import open_local_mesh


@pytest.fixture(autouse=True)
def quick_relinks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control links come back within a test's patience after a cut or restart."""
    monkeypatch.setattr(control_module, "LINK_RETRY_INTERVAL", 0.02)


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(TUPLE_KINDS),
    n=st.integers(1, 1500),
    parties=st.integers(1, 5),
    encoding=st.sampled_from(["seed", "shares"]),
)
def test_dealt_tuples_satisfy_their_relations_and_macs(kind: str, n: int, parties: int, encoding: Any) -> None:
    alpha = 98765432123456789 * n % FIELD.p
    dealt = deal_batch(FIELD, kind, n, alpha, parties, encoding)
    raw = [dealt.own] + [
        expand_seed(FIELD, kind, n, dealt.payloads[i]) if encoding == "seed" else dealt.payloads[i]
        for i in range(1, parties)
    ]
    per_party = [unpack_tuples(FIELD, KINDS[kind], data) for data in raw]
    alpha_shares = [alpha] + [0] * (parties - 1)
    assert_valid(kind, per_party, alpha_shares)
    if parties > 1 and n > 8:  # a follower's shares alone look uniform, not like the tuple
        assert not per_party[1][0].values.equals(per_party[0][0].values)


def test_bits_are_balanced_and_masks_uncorrelated() -> None:
    bits = deal_batch(FIELD, "bit", 20_000, 7, 1, "shares")
    ones = sum(unpack_tuples(FIELD, KINDS["bit"], bits.own)[0].values.to_ints())
    assert 9_000 < ones < 11_000
    masks = unpack_tuples(FIELD, KINDS["mask"], deal_batch(FIELD, "mask", 4_000, 7, 1, "shares").own)[0]
    values = masks.values.to_ints()
    assert len(set(values)) == len(values)
    high = sum(v > FIELD.p // 2 for v in values)
    assert 1_700 < high < 2_300  # uniform over F_p, not small or structured
    pairs = sum((a > FIELD.p // 2) == (b > FIELD.p // 2) for a, b in zip(values, values[1:]))
    assert 1_700 < pairs < 2_300  # neighbours independent


async def take_everything(c: Cluster, request_id: str, counts: dict[str, int]) -> dict[int, dict[str, list[Shares]]]:
    reservations: dict[int, Reservation] = {}

    async def one(i: int) -> None:
        reservations[i] = await c[i].tuples.reserve(request_id, counts)

    async with trio.open_nursery() as nursery:
        for i in c.vcps:
            nursery.start_soon(one, i)
    assert len(set(reservations.values())) == 1
    return {i: await c[i].tuples.take(reservations[i]) for i in c.vcps}


@pytest.mark.parametrize("n", [2, 3, 5])
async def test_generated_tuples_are_valid_on_every_vcp(tmp_path: Path, n: int) -> None:
    counts = {"triple": 3000, "square": 1500, "bit": 1500, "inverse": 1000, "mask": 2000, "bounded": 1200}
    with trio.fail_after(45):
        async with open_cluster(tmp_path, n, batch=1024) as c:
            ids = {kind: await c[0].generator.generate(kind, count) for kind, count in counts.items()}
            for i in range(n):
                for kind, job_id in ids.items():
                    job = await c[i].generator.wait_job(job_id)
                    assert (job.state, job.kind, job.count, job.backend, job.error) == (
                        "completed", kind, counts[kind], "dealer", None
                    )
                    assert job.progress == counts[kind] and job.finished is not None
            for i in range(n):
                assert dict(c[i].tuples.available()) == counts
            taken = await take_everything(c, "all", counts)
            for kind in TUPLE_KINDS:
                assert_valid(kind, [taken[i][kind] for i in range(n)], c.alpha_shares)
            listed = [[j.job_id for j in await c[i].generator.jobs()] for i in range(n)]
            assert all(sorted(ids_i) == sorted(ids.values()) for ids_i in listed)


async def test_shares_encoding_sends_full_shares(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3, batch=700, encoding="shares") as c:
            before = c.hub.sent_bytes
            job_id = await c[0].generator.generate("triple", 2000)
            assert (await c[0].generator.wait_job(job_id)).state == "completed"
            assert c.hub.sent_bytes - before > 2 * 2000 * 96  # every follower got its shares in full
            taken = await take_everything(c, "t", {"triple": 2000})
            assert_valid("triple", [taken[i]["triple"] for i in range(3)], c.alpha_shares)


async def test_peer_cut_mid_job_leaves_nothing_usable(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3, batch=512) as c:

            def cut(src: int, dst: int, message: Any) -> Any:
                if message[0] == "m" and message[1].startswith(JOB_SESSION_PREFIX) and message[2] == "batch.3":
                    c.hub.isolate(2)
                return message

            c.hub.tamper(cut)
            job_id = await c[0].generator.generate("triple", 5000)
            for i in range(3):
                job = await c[i].generator.wait_job(job_id)
                assert job.state == "failed" and job.error
            c.hub.tamper(None)
            await assert_nothing_usable(c, job_id)
            for other in (0, 1):
                c.hub.restore(2, other)
            again = await c[0].generator.generate("bit", 600)  # the links come back
            assert (await c[2].generator.wait_job(again)).state == "completed"


async def assert_nothing_usable(c: Cluster, job_id: str) -> None:
    for i in c.vcps:
        stored = await c[i].tuples.job(job_id)
        assert stored is None or stored.state == "failed"
        chunks = await c[i].store.read(
            lambda conn: conn.execute("SELECT COUNT(*) FROM tuples_chunk WHERE job_id = ?", (job_id,)).fetchone()[0]
        )
        assert chunks == 0
        assert sum(c[i].tuples.available().values()) == 0


@pytest.mark.parametrize("victim", [0, 1])
async def test_vcp_crashing_mid_job_fails_it_everywhere(tmp_path: Path, victim: int) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3, batch=256) as c:
            midway = trio.Event()

            def spy(src: int, dst: int, message: Any) -> Any:
                if message[0] == "m" and message[2] == "ack.2":
                    midway.set()
                return message

            c.hub.tamper(spy)
            job_id = await c[0].generator.generate("square", 40 * 256)
            await midway.wait()
            await c.crash(victim)
            c.hub.tamper(None)
            survivors = [i for i in range(3) if i != victim]
            for i in survivors:
                assert (await c[i].generator.wait_job(job_id)).state == "failed"
            with closing(sqlite3.connect(c.path(victim))) as db:  # the crash left the job running on disk
                state = db.execute("SELECT state FROM generator_job WHERE job_id = ?", (job_id,)).fetchone()
            assert state == ("running",)
            await c.start(victim)
            job = await c[victim].generator.job(job_id)
            assert job is not None and job.state == "failed" and "restarted" in (job.error or "")
            await assert_nothing_usable(c, job_id)
            again = await c[0].generator.generate("square", 300)
            for i in range(3):
                assert (await c[i].generator.wait_job(again)).state == "completed"
            taken = await take_everything(c, "after", {"square": 300})
            assert_valid("square", [taken[i]["square"] for i in range(3)], c.alpha_shares)


async def test_refused_activation_makes_followers_drop_the_job(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3, batch=500) as c:

            def refuse(src: int, dst: int, message: Any) -> Any:
                if message[0] == "m" and message[2] == "activated" and src == 2:
                    return ("m", message[1], "activated", {"ok": False, "reason": "disk full (test)"})
                return message

            c.hub.tamper(refuse)
            job_id = await c[0].generator.generate("mask", 1000)
            leader_job = await c[0].generator.wait_job(job_id)
            assert leader_job.state == "failed" and "disk full (test)" in (leader_job.error or "")
            for i in (1, 2):  # they had completed and activated; the leader's notice undoes it
                assert (await c[i].generator.wait_job(job_id, ("failed",))).state == "failed"
            c.hub.tamper(None)
            await assert_nothing_usable(c, job_id)


async def test_follower_reconciles_jobs_the_leader_failed_while_it_was_away(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 2, batch=500) as c:
            job_id = await c[0].generator.generate("bit", 800)
            assert (await c[1].generator.wait_job(job_id)).state == "completed"
            await c.kill(1)
            # While VCP 1 is away the leader learns the job is bad (say, an operator's repair).
            await c[0].store.write(jobs_module.finish, job_id, "failed", "failed while VCP 1 was away")
            await c[0].tuples.delete_job(job_id)
            await c.start(1)
            assert (await c[1].generator.wait_job(job_id, ("failed",))).state == "failed"
            await assert_nothing_usable(c, job_id)


async def test_generate_is_refused_where_it_cannot_run(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 2) as c:
            with pytest.raises(RequestError, match="only the leader"):
                await c[1].generator.generate("triple", 10)
            with pytest.raises(RequestError, match="unknown tuple kind"):
                await c[0].generator.generate("pair", 10)
            with pytest.raises(RequestError, match="count"):
                await c[0].generator.generate("triple", 0)
            with pytest.raises(RequestError, match="only the leader"):
                await c[1].generator.serve_scheduler()
            await c[0].generator.wait_linked(10)
            await c[1].generator.wait_linked(10)
            assert c[1].generator.statistics().linked == (0,)
            stats = c[0].generator.statistics()
            assert stats.insecure and stats.leader and stats.backend == "dealer" and stats.linked == (1,)
    with trio.fail_after(30):
        async with open_cluster(tmp_path / "mascot", 2, offline="mascot") as c:
            with pytest.raises(RequestError, match="only the leader"):
                await c[1].generator.generate("triple", 10)
            stats = c[0].generator.statistics()  # mascot jobs themselves: test_mascot_backend.py
            assert not stats.insecure and stats.backend == "mascot"


async def test_follower_waits_for_a_leader_that_starts_late(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3, start=False) as c:
            await c.start(2)
            await c.start(1)
            await c.start(0)
            job_id = await c[0].generator.generate("inverse", 100)
            for i in range(3):
                assert (await c[i].generator.wait_job(job_id)).state == "completed"


async def test_generation_over_real_peer_links(tmp_path: Path) -> None:
    """The same job protocol over the real peer mesh (127.0.0.1, handshake,
    encrypted channel): a follower that shuts down mid-job fails the job
    everywhere, and once it is back the next job completes."""
    with trio.fail_after(45):
        async with open_local_mesh(3) as local, trio.open_nursery() as nursery:
            await local.wait_linked(10)
            c = Cluster(None, tmp_path, nursery, TupleSettings(), 2048, "dealer", n=3, transport_of=lambda i: local[i])
            for i in range(3):
                await c.start(i)
            await c[0].generator.wait_linked(10)
            first = await c[0].generator.generate("triple", 20_000)
            for i in range(3):
                assert (await c[i].generator.wait_job(first)).state == "completed"

            job_id = await c[0].generator.generate("bit", 200 * 2048)
            while (job := await c[0].generator.job(job_id)) is not None and job.progress < 4 * 2048:
                await trio.sleep(0.01)  # waits for progress; the outcome does not depend on when
            await c.kill(2)
            await local.stop(2)
            for i in (0, 1):
                failed = await c[i].generator.wait_job(job_id)
                assert failed.state == "failed" and failed.progress < failed.count, failed
            assert "VCP 2" in (failed.error or "") or "aborted by VCP 0" in (failed.error or ""), failed.error
            await local.start(2)
            await local.wait_linked(10)
            await c.start(2)
            await c[0].generator.wait_linked(10)
            await assert_nothing_usable_of(c, job_id)
            again = await c[0].generator.generate("triple", 5_000)
            for i in range(3):
                assert (await c[i].generator.wait_job(again)).state == "completed"
            taken = await take_everything(c, "mesh", {"triple": 25_000})
            assert_valid("triple", [taken[i]["triple"] for i in range(3)], c.alpha_shares)
            nursery.cancel_scope.cancel()


async def assert_nothing_usable_of(c: Cluster, job_id: str) -> None:
    for i in c.vcps:
        stored = await c[i].tuples.job(job_id)
        assert stored is None or stored.state == "failed"
        assert c[i].tuples.available()["bit"] == 0


def test_one_width_of_bounded_tuples_everywhere() -> None:
    # The tuple store, the dealer and the protocols must agree, or masks would be too narrow.
    from vcpd.protocol.nonlinear.cost import BOUNDED_BITS as protocol_bits
    from vcpd.services.ports import BOUNDED_BITS as store_bits

    assert store_bits == protocol_bits == 40
