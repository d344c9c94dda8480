"""MP-SPDZ preprocessing files: import (strict header and body checks),
cross-VCP activation, export."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pytest
import trio
from tuples_harness import FIELD, Cluster, assert_valid, open_cluster

from vcpd.errors import FieldError, SessionAborted
from vcpd.math.field import PrimeField
from vcpd.services.generator import deal_batch
from vcpd.services.ports import Reservation
from vcpd.services.tuples import KINDS, build_header, parse_file

OTHER_PRIME = 340282366920938463463374607431768211297  # 2^128 - 159, prime


def mpspdz_files(c: Cluster, kind: str, count: int, *, with_keys: bool = False) -> list[bytes]:
    """Every party's preprocessing file for ``count`` dealt tuples."""
    dealt = deal_batch(FIELD, kind, count, c.alpha, c.n, "shares")
    bodies = [dealt.own] + [dealt.payloads[i] for i in range(1, c.n)]
    return [
        build_header(FIELD, c.alpha_shares[i] if with_keys else None) + body for i, body in enumerate(bodies)
    ]


async def import_everywhere(c: Cluster, job_id: str, kind: str, files: list[bytes]) -> None:
    for i in range(c.n):
        name = f"{c.n}-p-{FIELD.bits}/{KINDS[kind].mpspdz_name}-p-P{i}" if KINDS[kind].mpspdz_name else None
        job = await c[i].tuples.import_mpspdz(job_id, kind, files[i], filename=name)
        count = len(files[i][37:]) // KINDS[kind].tuple_bytes
        assert (job.state, job.stored, job.source) == ("filling", count, "import")


async def activate_everywhere(c: Cluster, job_id: str) -> dict[int, object]:
    out: dict[int, object] = {}

    async def one(i: int) -> None:
        try:
            out[i] = await c[i].tuples.activate_imported(job_id)
        except SessionAborted as exc:
            out[i] = exc

    async with trio.open_nursery() as nursery:
        for i in range(c.n):
            nursery.start_soon(one, i)
    return out


def test_header_layout_matches_mpspdz() -> None:
    header = build_header(FIELD)
    assert len(header) == 37  # what Carbyne's CLI strips
    assert struct.unpack_from("<Q", header)[0] == 29
    assert header[8:16] == b"SPDZ gfp" and header[16] == 0
    assert struct.unpack_from("<I", header, 17)[0] == 16
    assert int.from_bytes(header[21:37], "big") == FIELD.p
    assert len(build_header(FIELD, 5)) == 37 + 16
    assert FIELD.int_from_bytes(build_header(FIELD, 5)[37:]) == 5


@pytest.mark.parametrize("n", [2, 3])
async def test_import_activate_and_use(tmp_path: Path, n: int) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, n) as c:
            for kind, count in (("triple", 1000), ("bit", 40_000), ("mask", 10)):
                job_id = str(uuid.uuid4())
                await import_everywhere(c, job_id, kind, mpspdz_files(c, kind, count, with_keys=(kind == "bit")))
                assert c[0].tuples.available()[kind] == 0  # not usable before every VCP agrees
                results = await activate_everywhere(c, job_id)
                assert all(getattr(r, "state", None) == "active" for r in results.values()), results
            reservations: dict[int, Reservation] = {}

            async def reserve(i: int) -> None:
                reservations[i] = await c[i].tuples.reserve("use", {"triple": 1000, "bit": 40_000, "mask": 10})

            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(reserve, i)
            taken = [await c[i].tuples.take(reservations[i]) for i in range(n)]
            for kind in ("triple", "bit", "mask"):
                assert_valid(kind, [t[kind] for t in taken], c.alpha_shares)


async def test_activation_needs_every_vcp_to_agree(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 3) as c:
            files = mpspdz_files(c, "square", 500)
            short = build_header(FIELD) + files[2][37 : 37 + 400 * 64]
            for i, data in enumerate([files[0], files[1], short]):
                await c[i].tuples.import_mpspdz("sq-job", "square", data)
            results = await activate_everywhere(c, "sq-job")
            assert all(isinstance(r, SessionAborted) for r in results.values())
            assert "VCP 2: 400 square" in str(results[0])
            assert all(c[i].tuples.available()["square"] == 0 for i in range(3))
            missing = await activate_everywhere(c, "never-imported")
            assert "job unknown" in str(missing[1])


def test_parser_refuses_what_does_not_fit() -> None:
    kind = KINDS["triple"]
    body = deal_batch(FIELD, "triple", 10, 1, 1, "shares").own
    good = build_header(FIELD) + body
    assert parse_file(good, FIELD, kind).count == 10

    def refused(data: bytes, match: str, **kwargs: object) -> None:
        with pytest.raises(FieldError, match=match):
            parse_file(data, FIELD, kind, **kwargs)  # type: ignore[arg-type]

    refused(build_header(PrimeField(OTHER_PRIME)) + body, "prime 34028236692093846346337460743176821129")
    refused(good[:-10], "not a whole number of triple tuples")  # truncated body
    refused(good[:30], "truncated MP-SPDZ header")  # truncated header
    refused(good[:5], "shorter than its length prefix")
    refused(build_header(FIELD), "no tuples")
    refused(build_header(FIELD) + body[: 10 * 3 * 24], "not a whole number")  # 12+12-byte shares, say
    refused(struct.pack("<Q", 18) + b"SPDZ gf2n_" + b"\x00" * 8 + body, "GF\\(2\\^n\\)")
    refused(struct.pack("<Q", 29) + b"SPDZ gfq" + good[16:], "does not start with 'SPDZ gfp'")
    refused(struct.pack("<Q", 33) + good[8:] + b"\x00" * 4, "unsupported")  # odd header length
    bad_word = bytearray(good)
    bad_word[37 + 96 * 3 : 37 + 96 * 3 + 16] = b"\xff" * 16
    refused(bytes(bad_word), "not below p")
    with_key = build_header(FIELD, 1234) + body
    assert parse_file(with_key, FIELD, kind, mac_share=1234).has_mac_key
    refused(with_key, "another MAC key share", mac_share=4321)
    refused(good, "holds Bits, not Triples", filename="Player-Data/2-p-128/Bits-p-P0")
    refused(good, "party 1's file", filename="2-p-128/Triples-p-P1", party=0)
    refused(good, "made for 3 parties", filename="3-p-128/Triples-p-P0", party=0, n_parties=2)
    refused(good, "64-bit prime", filename="2-p-64/Triples-p-P0", party=0, n_parties=2)
    refused(good, "not an MP-SPDZ", filename="triples.bin")
    assert parse_file(good, FIELD, kind, filename="/x/2-p-128/Triples-p-P0-T3", party=0, n_parties=2).count == 10


async def test_import_refusals_leave_no_job(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 2) as c:
            files = mpspdz_files(c, "inverse", 50, with_keys=True)
            with pytest.raises(FieldError, match="another MAC key share"):
                await c[1].tuples.import_mpspdz("inv", "inverse", files[0])  # party 0's file on VCP 1
            with pytest.raises(FieldError, match="prime"):
                await c[0].tuples.import_mpspdz("inv", "inverse", build_header(PrimeField(OTHER_PRIME)) + files[0][53:])
            assert await c[0].tuples.job("inv") is None and await c[1].tuples.job("inv") is None
            await c[0].tuples.import_mpspdz("inv", "inverse", files[0])
            with pytest.raises(ValueError, match="already exists"):
                await c[0].tuples.import_mpspdz("inv", "inverse", files[0])


async def test_export_round_trips_and_retires_the_job(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_cluster(tmp_path, 2) as c:
            files = mpspdz_files(c, "square", 300)
            await import_everywhere(c, "sq", "square", files)
            await activate_everywhere(c, "sq")
            exported = await c[1].tuples.export_job("sq")
            parsed = parse_file(exported, FIELD, KINDS["square"], mac_share=c.alpha_shares[1])
            assert parsed.has_mac_key and bytes(parsed.body) == files[1][37:]
            job = await c[1].tuples.job("sq")
            assert job is not None and (job.state, job.discarded) == ("retired", 300)
            assert c[1].tuples.available()["square"] == 0
            with pytest.raises(ValueError, match="cannot be exported"):
                await c[1].tuples.export_job("sq")
            # The leader still offers the job, but VCP 1 no longer has it: refused, nothing reused.
            errors: dict[int, BaseException] = {}

            async def reserve(i: int) -> None:
                try:
                    await c[i].tuples.reserve("after-export", {"square": 1})
                except SessionAborted as exc:
                    errors[i] = exc

            async with trio.open_nursery() as nursery:
                for i in range(2):
                    nursery.start_soon(reserve, i)
            assert set(errors) == {0, 1} and "retired on this VCP" in str(errors[0])


def test_bounded_tuples_cannot_be_imported() -> None:
    body = deal_batch(FIELD, "bit", 10, 1, 1, "shares").own  # bits would pass every check a file allows
    with pytest.raises(FieldError, match="bounded tuples cannot be imported"):
        parse_file(build_header(FIELD) + body, FIELD, KINDS["bounded"])
