"""Verified download: cheating VCPs are caught and no wrong value is ever returned."""

from __future__ import annotations

import sqlite3

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from secret_vc import FIELD, VC, call_each, delete_behind_the_back, open_vc, tamper_share
from vcpd.errors import IntegrityError, RequestError
from vcpd.math import FieldArray, PrimeField, Shares
from vcpd.protocol.online import OnlineParty
from vcpd.services.secrets import storage

VALUES = [3, -4, 2**62]


class NoMacCheck(OnlineParty):
    """What Amphora does: Beaver openings never MAC-checked (to show the attack is real)."""

    async def mac_check(self) -> None:
        return None


class ShiftingParty(OnlineParty):
    """A VCP that opens y − a + δ in the ODO (value share only: it cannot fix the MAC).

    Its own y' = a + ε then carries the shift too, and so does every VCP's w:
    the client sees y + δ with w = (y + δ)·ρ, a consistent answer.
    """

    delta = 1000

    async def open_many(self, parts: Sequence[Shares]) -> list[FieldArray]:
        if not self.session_id.startswith("secrets.get/"):
            return await super().open_many(parts)
        first = parts[0]
        bump = [0] * len(first)
        bump[0] = self.delta
        shifted = Shares(first.values + self.field.from_ints(bump), first.macs)
        return await super().open_many([shifted, *parts[1:]])


def codes(answers: list[Any]) -> set[str]:
    return {a.code for a in answers if isinstance(a, RequestError)}


async def get_each(vc: VC, client: Any, secret_id: str) -> list[Any]:
    return await call_each(client, "secrets.get", {"id": secret_id, "request_id": str(uuid.uuid4())})


@pytest.mark.parametrize("n_parties", [2, 3])
async def test_tampered_stored_value_share_is_caught_by_the_mac_check(tmp_path: Path, n_parties: int) -> None:
    """The consistent shift of mpc-notes §2.6 via the store: y_i + δ goes through the
    whole ODO consistently, so only the servers' MAC check can see it."""
    with trio.fail_after(30):
        async with open_vc(tmp_path, n_parties) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES)
            tamper_share(vc.paths[n_parties - 1], sid, 0, 1)
            with pytest.raises(RequestError, match="MAC check failed|deviated") as info:
                await client.get_secret(sid)
            assert info.value.code == "mac-check-failed"
            assert codes(await get_each(vc, client, sid)) <= {"mac-check-failed", "aborted"}
            assert all(s.statistics()["mac_check_failures"] >= 1 for s in vc.services)


async def test_the_client_check_alone_would_accept_that_shift(tmp_path: Path) -> None:
    """Control for the test above: without the MAC check the wrong value gets through."""
    with trio.fail_after(30):
        async with open_vc(tmp_path, 2, online={0: NoMacCheck, 1: NoMacCheck}) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES)
            tamper_share(vc.paths[1], sid, 0, 1)
            wrong = await client.get_secret(sid)  # no IntegrityError: w = (y+1)·ρ holds
            assert wrong.values[0] == VALUES[0] + 1


async def test_tampered_stored_mac_share_is_caught(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 2) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES)
            tamper_share(vc.paths[0], sid, 2, 5, mac=True)
            with pytest.raises(RequestError) as info:
                await client.get_secret(sid)
            assert info.value.code == "mac-check-failed"


async def test_consistent_shift_of_y_and_the_beaver_opening_is_caught(tmp_path: Path) -> None:
    """mpc-notes §2.6: VCP 0 shifts its opening of y − a, so y' and w shift together."""

    class ShiftNoCheck(ShiftingParty, NoMacCheck):
        pass

    with trio.fail_after(30):
        # Without the MAC check the client would accept y + δ ...
        async with open_vc(tmp_path / "a", 2, online={0: ShiftNoCheck, 1: NoMacCheck}) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES)
            assert (await client.get_secret(sid)).values[0] == VALUES[0] + ShiftingParty.delta
        # ... with it, the VCPs abort and nothing is released.
        async with open_vc(tmp_path / "b", 2, online={0: ShiftingParty}) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES)
            released: list[str] = []

            def record(party: int, op: str, answer: Any) -> Any:
                released.append(op)
                return answer

            vc.answer_tamper = record
            with pytest.raises(RequestError) as info:
                await client.get_secret(sid)
            assert info.value.code == "mac-check-failed"
            assert "secrets.get" not in released  # no VCP answered with shares


@pytest.mark.parametrize("field_name", ["y", "rho", "v", "w", "u"])
async def test_tampered_download_answer_is_an_integrity_error(tmp_path: Path, field_name: str) -> None:
    with trio.fail_after(30):
        async with open_vc(tmp_path, 3) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES)

            def tamper(party: int, op: str, answer: Any) -> Any:
                if party == 1 and op == "secrets.get":
                    answer[field_name] = (FIELD.from_bytes(answer[field_name]) + 1).to_bytes()
                return answer

            vc.answer_tamper = tamper
            with pytest.raises(IntegrityError, match="VCP answers failed the output-delivery check"):
                await client.get_secret(sid)


@pytest.mark.parametrize("part", [0, 1])
async def test_tampered_openings_inside_the_odo_are_caught(tmp_path: Path, part: int) -> None:
    """The one opening (open.0) carries y − a (which also re-randomises y) and b − b' (ρ − b')."""
    with trio.fail_after(30):
        async with open_vc(tmp_path, 3) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES)
            n = len(VALUES)

            def shift(src: int, dst: int, message: tuple[Any, ...]) -> tuple[Any, ...]:
                if message[0] == "m" and src == 2 and message[1].startswith("secrets.get/") and message[2] == "open.0":
                    bump = FIELD.from_ints([1 if k // n == part else 0 for k in range(2 * n)])
                    message = (*message[:3], (FIELD.from_bytes(message[3]) + bump).to_bytes())
                return message

            vc.hub.tamper(shift)
            answers = await get_each(vc, client, sid)
            assert all(isinstance(a, RequestError) for a in answers)
            assert "mac-check-failed" in codes(answers) and codes(answers) <= {"mac-check-failed", "aborted"}


async def test_a_refusal_on_one_vcp_fails_every_vcp_promptly(tmp_path: Path) -> None:
    with trio.fail_after(10):  # far below the 30 s session timeout: nobody waits for a partner
        async with open_vc(tmp_path, 3) as vc:
            owner, reader = vc.client(), vc.client()
            sid = await owner.create_secret(VALUES)
            await owner.grant(sid, reader.public_key, ["read"])
            assert (await reader.get_secret(sid)).values == VALUES
            # Revoked on VCP 0 only (a diverged store): VCP 0 refuses on its own, the others follow.
            with sqlite3.connect(vc.paths[0]) as conn:
                conn.execute("DELETE FROM secrets_grant WHERE secret_id = ? AND grantee = ?", (sid, reader.public_key))
            consumed = [dict(c) for c in vc.dealer.consumed]
            answers = await get_each(vc, reader, sid)
            assert codes(answers) == {"not-found"} and all(isinstance(a, RequestError) for a in answers)
            assert [dict(c) for c in vc.dealer.consumed] == consumed  # no tuples spent on a refusal
            # Gone from VCP 1 only: the same.
            delete_behind_the_back(vc.paths[1], sid)
            with pytest.raises(RequestError) as info:
                await owner.get_secret(sid)
            assert info.value.code == "not-found"


async def test_diverged_stores_abort(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_vc(tmp_path, 2) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES)
            with sqlite3.connect(vc.paths[1]) as conn:
                conn.execute("UPDATE secrets_secret SET length = 1, shares = ? WHERE id = ?", (bytes(32), sid))
            with pytest.raises(RequestError, match="disagree about secret") as info:
                await client.get_secret(sid)
            assert info.value.code == "aborted"


async def test_metadata_disagreement_is_an_integrity_error(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_vc(tmp_path, 2) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES, tags={"a": "1"})
            with sqlite3.connect(vc.paths[1]) as conn:  # a diverged store
                storage.set_tags(conn, sid, [storage.Tag("a", "2")], 10)
            with pytest.raises(IntegrityError, match="disagree about the metadata"):
                await client.get_secret(sid)
            with pytest.raises(IntegrityError, match="disagree about the tags"):
                await client.get_tags(sid)
            with pytest.raises(IntegrityError, match="disagree about the listing"):
                await client.list_secrets()


async def test_unreachable_vcp_fails_fast(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_vc(tmp_path, 3) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES)
            vc.hub.isolate(2)
            answers = await get_each(vc, client, sid)
            assert codes(answers) <= {"unavailable", "aborted"} and len(codes(answers)) >= 1
            assert all(isinstance(a, RequestError) for a in answers)


async def test_downloads_are_rerandomised(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with open_vc(tmp_path, 2) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES)
            first = await get_each(vc, client, sid)
            second = await get_each(vc, client, sid)
            assert first[0]["y"] != second[0]["y"]  # fresh shares every time ...
            stored = [(await s.load_for_use([sid], client.public_key))[0][0] for s in vc.services]
            # ... and not the stored ones
            assert all(a["y"] != st.values.to_bytes() for a, st in zip(first, stored, strict=True))
            total = [PrimeField().from_bytes(a["y"]) for a in second]
            assert FieldArray.concat([total[0] + total[1]]).to_signed(64) == VALUES  # ... of the same value


async def test_a_shift_of_rho_that_fixes_w_is_caught_by_v_and_u(tmp_path: Path) -> None:
    """A VCP that knows y can shift ρ by δ and w by y·δ; u = v·ρ catches it (v = a' is unknown)."""
    with trio.fail_after(10):
        async with open_vc(tmp_path, 2) as vc:
            client = vc.client()
            sid = await client.create_secret(VALUES)
            delta = FIELD.from_ints([7] * len(VALUES))
            y = FIELD.from_signed(VALUES, 64)

            def tamper(party: int, op: str, answer: Any) -> Any:
                if party == 1 and op == "secrets.get":
                    answer["rho"] = (FIELD.from_bytes(answer["rho"]) + delta).to_bytes()
                    answer["w"] = (FIELD.from_bytes(answer["w"]) + y * delta).to_bytes()
                return answer

            vc.answer_tamper = tamper
            with pytest.raises(IntegrityError, match="output-delivery check"):
                await client.get_secret(sid)
