"""The daemon's online engine (early seed commitments, bundled flights, worker
threads), the one-step reservation of the real tuple store, and the client's
vectorised and threaded paths: same results, same checks."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from secret_vc import FIELD, call_each, open_vc
from test_secret_real_tuples import real_vc

from secret_vc import FakeClient, new_key
from vcpd.client.secrets import decode_values, encode_values
from vcpd.errors import FieldError, IntegrityError, RequestError
from vcpd.services.secrets.service import default_online

VALUES = [5, -6, 2**63 - 1, -(2**63), 0]


def daemon_online(n: int) -> dict[int, Any]:
    return dict.fromkeys(range(n), default_online)


@pytest.mark.parametrize("n_parties", [2, 3])
async def test_round_trip_with_the_daemons_online_engine(tmp_path: Path, n_parties: int) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, n_parties, online=daemon_online(n_parties)) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES, tags={"k": "v"})
            got = await client.get_secret(sid)
            assert got.values == VALUES and got.tags["k"] == "v"


async def test_shifted_opening_in_a_bundled_flight_is_caught(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 3, online=daemon_online(3)) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES)

            def shift(src: int, dst: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
                in_get = message[0] == "m" and message[1].startswith("secrets.get/")
                if in_get and src == 2 and message[2].startswith("open."):
                    payloads = message[3]
                    bumped = (FIELD.from_bytes(payloads[0]) + 1).to_bytes()
                    return (*message[:3], [bumped, *payloads[1:]])
                return message

            vc.hub.tamper(shift)
            answers = await call_each(client, "secrets.get", {"id": sid, "request_id": str(uuid.uuid4())})
            codes = {a.code for a in answers if isinstance(a, RequestError)}
            assert len(codes) and "mac-check-failed" in codes and codes <= {"mac-check-failed", "aborted"}


async def test_real_tuple_store_with_the_daemons_engine_and_a_refused_begin(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with real_vc(tmp_path, 3, online=default_online) as (vc, tuple_stores):
            client = FakeClient(vc, new_key())
            sid = await client.create_secret([1, -2, 3])
            assert (await client.get_secret(sid)).values == [1, -2, 3]
            # Upload: 1 triple per element; download: 2 triples.
            kinds = [ts.statistics().kinds for ts in tuple_stores]
            consumed = [(k["mask"].consumed, k["triple"].consumed) for k in kinds]
            assert consumed == [(0, 9)] * 3
            # An upload refused by every VCP (the id exists) fails promptly everywhere.
            with pytest.raises(RequestError, match="already exists") as info:
                await client.create_secret([4], secret_id=sid)
            assert info.value.code == "conflict"
            # Its tuples may have been taken meanwhile, on some VCPs (the agreement
            # runs alongside the reservation, which the refusal then cancels): if
            # so they are burnt -- nothing is left reserved, and the next upload
            # gets fresh tuples on every VCP.
            after = [ts.statistics().kinds["triple"] for ts in tuple_stores]
            assert all(k.reserved == 0 and k.consumed in (9, 10) for k in after)
            assert (await client.get_secret(await client.create_secret([7]))).values == [7]


async def test_big_secret_uses_the_vectorised_and_threaded_client_paths(tmp_path: Path) -> None:
    n = 70_000  # above the client's threshold for checking a delivery in two threads
    values = list(range(-n // 2, n - n // 2))
    with trio.fail_after(60):
        async with open_vc(tmp_path, 2, online=daemon_online(2)) as vc:
            client = vc.client()
            sid = await client.create_secret(values)
            assert (await client.get_secret(sid)).values == values

            def lie(party: int, op: str, answer: Any) -> Any:
                if party == 1 and op == "secrets.get":
                    w = FIELD.from_bytes(answer["w"])
                    answer["w"] = (w + FIELD.from_ints([0] * (n - 1) + [1])).to_bytes()  # the last element
                return answer

            vc.answer_tamper = lie
            with pytest.raises(IntegrityError, match="output-delivery check"):
                await client.get_secret(sid)

            def lie_on_upload(party: int, op: str, answer: Any) -> Any:
                if party == 0 and op == "secrets.upload.begin":
                    c = FIELD.from_bytes(answer["c"])
                    answer["c"] = (c + FIELD.from_ints([1] + [0] * (n - 1))).to_bytes()  # the first element
                return answer

            vc.answer_tamper = lie_on_upload
            with pytest.raises(IntegrityError, match="input-mask check"):
                await client.create_secret(values)
            assert not [c for c in client.calls if c[1] == "secrets.upload.commit" and c[2]["id"] != sid]


def test_vectorised_encoding_keeps_the_checks() -> None:
    n = 1000
    ok = list(range(n))
    assert decode_values(encode_values(FIELD, ok, "int64", 0), "int64", 0) == ok
    with pytest.raises(FieldError, match="value 999 is not an integer"):
        encode_values(FIELD, [*ok[:-1], 1.5], "int64", 0)
    with pytest.raises(FieldError, match="value 0 is not an integer"):
        encode_values(FIELD, [True, *ok[1:]], "int64", 0)
    with pytest.raises(FieldError, match="value 998 is outside"):
        encode_values(FIELD, [*ok[:-2], 2**63, 0], "int64", 0)
    reals = [i / 8 - 50.0 for i in range(n)]
    assert decode_values(encode_values(FIELD, reals, "fixed", 16), "fixed", 16) == reals
