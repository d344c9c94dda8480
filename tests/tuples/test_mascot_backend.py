"""The MASCOT generator backend through the real job runner and tuple stores.

2 and 3 VCPs in one trio run over the memory hub, each with its own SQLite
file and data directory: generated tuples satisfy their relations and MACs
under α = Σ α_i; the setup runs once, is persisted (0600) and reused across
restarts; a VCP that cheats in a MASCOT step fails the job on every VCP with
the check named and nothing usable, after which the setup is redone; and no
VCP's files or logs ever hold another VCP's α_i.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from tuples_harness import FIELD, MIGRATIONS, Cluster, Vcp, assert_valid

from vcpd.config import TupleSettings
from vcpd.errors import ConfigError
from vcpd.keys import MacKey
from vcpd.math.shares import Shares
from vcpd.protocol.mascot import MascotState
from vcpd.services.generator import MASCOT_STATE_FILE, TupleGenerator
from vcpd.services.generator import control as control_module
from vcpd.services.generator.mascot import load_state, write_state
from vcpd.services.ports import Reservation
from vcpd.services.tuples import TupleStore
from vcpd.store import open_store
from vcpd.testing import open_memory_transports

CHUNK = 96  # tuples per job chunk: jobs below span several chunks
PROTOCOL_BATCH = 64  # triples per MASCOT batch: several batches per chunk


@pytest.fixture(autouse=True)
def quick_relinks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control_module, "LINK_RETRY_INTERVAL", 0.02)


class MascotCluster(Cluster):
    """The harness's cluster with MASCOT generators that persist their setup in
    ``data_dir(i)`` (and count the setup runs they see on the hub)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setups = 0  # base-OT messages seen (n·(n-1) per setup)
        self.tamper: Callable[[int, int, Any], Any] | None = None
        self.hub.tamper(self._route)

    def _route(self, src: int, dst: int, message: Any) -> Any:
        if message[0] == "m" and message[2] == "mascot.setup.baseot":
            self.setups += 1
        return self.tamper(src, dst, message) if self.tamper is not None else message

    def data_dir(self, party: int) -> Path:
        return self.tmp_path / f"vcp{party}"

    def state_path(self, party: int) -> Path:
        return self.data_dir(party) / MASCOT_STATE_FILE

    async def _run(self, party: int, task_status: trio.TaskStatus[Vcp] = trio.TASK_STATUS_IGNORED) -> None:
        done = trio.Event()
        self.crashed.discard(party)
        self.data_dir(party).mkdir(exist_ok=True)
        try:
            with trio.CancelScope() as scope:
                async with open_store(self.path(party), MIGRATIONS) as store:
                    transport = self.transport_of(party)
                    tuples = TupleStore(store, transport, FIELD, party, self.n, mac_share=self.alpha_shares[party])
                    generator = TupleGenerator(
                        store, tuples, transport, FIELD, MacKey(self.alpha_shares[party]), party, self.n,
                        self.settings, offline="mascot", batch=self.batch, data_dir=self.data_dir(party),
                        threads=True, mascot_batch=PROTOCOL_BATCH,
                    )  # fmt: skip
                    async with trio.open_nursery() as nursery:
                        await nursery.start(tuples.serve)
                        await nursery.start(generator.serve)
                        self.vcps[party] = vcp = Vcp(party, store, tuples, generator, scope, done)
                        task_status.started(vcp)
        except Exception:
            if party not in self.crashed:  # a crashed VCP's tasks trip over its closed store
                raise
        finally:
            done.set()


@asynccontextmanager
async def open_mascot_cluster(tmp_path: Path, n: int) -> AsyncIterator[MascotCluster]:
    async with open_memory_transports(n) as hub, trio.open_nursery() as nursery:
        cluster = MascotCluster(hub, tmp_path, nursery, TupleSettings(), CHUNK, "mascot")
        for party in range(n):
            await cluster.start(party)
        yield cluster
        nursery.cancel_scope.cancel()


async def take_everything(c: Cluster, request_id: str, counts: dict[str, int]) -> dict[int, dict[str, list[Shares]]]:
    reservations: dict[int, Reservation] = {}

    async def one(i: int) -> None:
        reservations[i] = await c[i].tuples.reserve(request_id, counts)

    async with trio.open_nursery() as nursery:
        for i in c.vcps:
            nursery.start_soon(one, i)
    return {i: await c[i].tuples.take(reservations[i]) for i in c.vcps}


async def run_jobs(c: MascotCluster, counts: dict[str, int]) -> dict[str, str]:
    ids = {kind: await c[0].generator.generate(kind, count) for kind, count in counts.items()}
    for i in c.vcps:
        for kind, job_id in ids.items():
            job = await c[i].generator.wait_job(job_id)
            assert (job.state, job.backend, job.error, job.progress) == ("completed", "mascot", None, counts[kind]), job
    return ids


def setup_ids(c: MascotCluster) -> list[bytes]:
    states = [load_state(c.state_path(i)) for i in range(c.n)]
    assert all(s is not None and not s.failed for s in states)
    return [s.setup_id for s in states if s is not None]


def alpha_encodings(alpha: int) -> list[bytes]:
    """α_i as it could appear in a file or a log: 16-byte LE Montgomery, LE and
    BE plain, decimal (and the hex of the binary forms, for text)."""
    binary = [FIELD.from_ints([alpha]).to_bytes(), alpha.to_bytes(16, "little"), alpha.to_bytes(16, "big")]
    return binary + [str(alpha).encode()] + [b.hex().encode() for b in binary]


def assert_no_foreign_alpha(c: MascotCluster, records: list[logging.LogRecord]) -> None:
    for j in range(c.n):
        files = [c.state_path(j), *(c.tmp_path.glob(f"vcp{j}.sqlite3*"))]
        blobs = [path.read_bytes() for path in files if path.exists()]
        assert len(blobs) >= 2
        for i in range(c.n):
            found = [enc for enc in alpha_encodings(c.alpha_shares[i]) if any(enc in blob for blob in blobs)]
            if i == j:  # the check can see α_i: the own state file holds it (LE plain)
                assert c.alpha_shares[i].to_bytes(16, "little") in blobs[0]
            else:
                assert not found, f"VCP {j}'s files hold VCP {i}'s α_i"
    text = "\n".join(f"{r.getMessage()} {getattr(r, 'ctx', '')} {r.exc_text or ''}" for r in records).encode()
    assert records  # the generator did log
    for i in range(c.n):
        assert not any(enc in text for enc in alpha_encodings(c.alpha_shares[i])), f"a log shows VCP {i}'s α_i"


@pytest.mark.parametrize("n", [2, 3])
async def test_mascot_jobs_make_valid_tuples_and_keep_the_setup(
    tmp_path: Path, n: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="vcpd")
    counts = (
        {"triple": 250, "mask": 200, "bit": 70, "square": 40, "inverse": 40, "bounded": 6}
        if n == 2
        else {"triple": 200, "mask": 100, "bounded": 3}
    )
    with trio.fail_after(60):
        async with open_mascot_cluster(tmp_path, n) as c:
            await run_jobs(c, counts)
            assert c.setups == n * (n - 1)  # one setup for all the jobs
            for i in range(n):
                assert stat.S_IMODE(os.stat(c.state_path(i)).st_mode) == 0o600
                assert dict(c[i].tuples.available()) == {k: counts.get(k, 0) for k in c[i].tuples.available()}
            before = setup_ids(c)
            taken = await take_everything(c, "all", counts)
            for kind in counts:
                assert_valid(kind, [taken[i][kind] for i in range(n)], c.alpha_shares)

            # Restart a follower (clean stop) and the leader (crash: its links drop as
            # when the process dies): both reload the setup, nothing is redone.
            await c.kill(n - 1)
            await c.start(n - 1)
            await c.crash(0)
            await c.start(0)
            await c[0].generator.wait_linked(10)
            await run_jobs(c, {"triple": 100})
            assert c.setups == n * (n - 1) and setup_ids(c) == before
            taken = await take_everything(c, "again", {"triple": 100})
            assert_valid("triple", [taken[i]["triple"] for i in range(n)], c.alpha_shares)

            if n == 2:  # a VCP that lost its state file: the next job redoes the setup everywhere
                await c.kill(1)
                c.state_path(1).unlink()
                await c.start(1)
                await c[0].generator.wait_linked(10)
                await run_jobs(c, {"mask": 50})
                assert c.setups == 2 * n * (n - 1)
                assert all(a != b for a, b in zip(setup_ids(c), before, strict=True))
                assert any("running the MASCOT setup" in r.getMessage() and "no setup yet" in str(r.ctx) for r in caplog.records)
            assert_no_foreign_alpha(c, caplog.records)


def flip_low_bits(data: bytes, start: int, stop: int, stride: int = 16) -> bytes:
    out = bytearray(data)
    for i in range(start, stop, stride):
        out[i] ^= 1
    return bytes(out)


def flip_column_starts(data: bytes) -> bytes:
    """One choice bit flipped in each of the 128 IKNP columns (inconsistent r)."""
    width = (len(data) - 32 - 16) // 128
    out = bytearray(data)
    for b in range(128):
        out[b * width] ^= 1
    return bytes(out)


CHEATS: dict[str, tuple[str, Callable[[Any], Any], str]] = {
    "kos": (".mul.iknp", flip_column_starts, "KOS correlation check failed with VCP 1"),
    "sacrifice": (".mul.d", lambda p: [flip_low_bits(p[0], 0, len(p[0])), p[1]], "sacrifice check failed"),
    "mac-generation": (".auth.cope", lambda p: [flip_low_bits(p[0], 0, len(p[0]) - 48), p[1]], "MAC-generation check failed"),
}


@pytest.mark.parametrize(("n", "cheat"), [(2, "kos"), (2, "sacrifice"), (3, "mac-generation"), (3, "sacrifice")])
async def test_cheating_vcp_fails_the_job_everywhere_and_the_setup_is_redone(
    tmp_path: Path, n: int, cheat: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="vcpd")
    suffix, tamper, phrase = CHEATS[cheat]
    hits = {"count": 0}

    def cheat_in_chunk_1(src: int, dst: int, message: Any) -> Any:
        # VCP 1 deviates toward VCP 0 in the second chunk: the first is stored by then.
        if message[0] == "m" and src == 1 and dst == 0 and message[2].startswith("mascot.c1.") and message[2].endswith(suffix):
            hits["count"] += 1
            return (*message[:3], tamper(message[3]))
        return message

    with trio.fail_after(60):
        async with open_mascot_cluster(tmp_path, n) as c:
            await run_jobs(c, {"mask": 30})  # the setup, before anyone cheats
            first_setup = setup_ids(c)
            c.tamper = cheat_in_chunk_1
            job_id = await c[0].generator.generate("triple", 3 * CHUNK)
            for i in range(n):
                job = await c[i].generator.wait_job(job_id)
                assert job.state == "failed" and phrase in (job.error or ""), (i, job)
            c.tamper = None
            assert hits["count"] >= 1
            for i in range(n):  # nothing of the job is stored or usable anywhere
                chunks = await c[i].store.read(
                    lambda conn: conn.execute("SELECT COUNT(*) FROM tuples_chunk WHERE job_id = ?", (job_id,)).fetchone()[0]
                )
                assert chunks == 0 and c[i].tuples.available()["triple"] == 0
                state = load_state(c.state_path(i))
                assert state is not None and state.failed  # persisted as failed
            # The VC still works: the next job redoes the setup (new base OTs) and completes.
            before = c.setups
            await run_jobs(c, {"triple": 120})
            assert c.setups == before + n * (n - 1)
            assert all(a != b for a, b in zip(setup_ids(c), first_setup, strict=True))
            taken = await take_everything(c, "after", {"triple": 120, "mask": 30})
            assert_valid("triple", [taken[i]["triple"] for i in range(n)], c.alpha_shares)
            assert_valid("mask", [taken[i]["mask"] for i in range(n)], c.alpha_shares)
            messages = [r.getMessage() for r in caplog.records]
            assert any("a MASCOT check failed" in m for m in messages)
            assert any("running the MASCOT setup" in m and "check failed" in str(r.ctx) for r, m in zip(caplog.records, messages))
            assert_no_foreign_alpha(c, caplog.records)


async def test_state_file_with_loose_mode_is_refused_and_corrupt_one_ignored(tmp_path: Path) -> None:
    path = tmp_path / MASCOT_STATE_FILE
    path.write_bytes(b"junk")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_state(path)
    path.chmod(0o600)
    assert load_state(path) is None  # corrupt: ignored, the next job redoes the setup
    state = MascotState(prime=FIELD.p, party=0, n_parties=1, alpha=5, hash_name="blake2b", setup_id=b"\0" * 16)
    write_state(path, state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and load_state(path) == state
