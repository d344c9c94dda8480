"""Sessions and mailboxes over the in-memory hub: order independence, failures, aborts."""

from __future__ import annotations

import pytest
import trio

from vcpd.errors import PeerUnavailable, SessionAborted, WireError
from vcpd.testing import open_memory_transports


async def test_exchange_any_order(autojump_clock) -> None:
    async with open_memory_transports(3, shuffle=True, seed=7) as hub:
        results: dict[int, list[dict[int, int]]] = {}

        async def party(p: int) -> None:
            async with hub.transports[p].session("s1") as s:
                rounds = []
                for step in range(5):
                    rounds.append(await s.exchange(f"r{step}", p * 10 + step))
                results[p] = rounds

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                # start parties at different times: early messages must wait
                for p in (2, 0, 1):
                    nursery.start_soon(party, p)
                    await trio.sleep(0.1)
        for p in range(3):
            assert results[p] == [{q: q * 10 + step for q in range(3)} for step in range(5)]


async def test_messages_before_session_opens_are_kept(autojump_clock) -> None:
    async with open_memory_transports(2) as hub:
        async with hub.transports[0].session("early") as s0:
            await s0.send(1, "x", b"hello")
        await trio.sleep(1)
        async with hub.transports[1].session("early") as s1:
            with trio.fail_after(1):
                assert await s1.receive(0, "x") == b"hello"


async def test_peer_going_away_fails_receive_naming_peer(autojump_clock) -> None:
    async with open_memory_transports(3) as hub:
        async with hub.transports[0].session("s") as s:

            async def cut_later() -> None:
                await trio.sleep(1)
                hub.isolate(2)

            with trio.fail_after(5):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(cut_later)
                    with pytest.raises(PeerUnavailable, match="peer VCP 2") as info:
                        await s.receive(2, "never")
            assert info.value.peer == 2
            assert trio.current_time() == pytest.approx(1)
            with pytest.raises(PeerUnavailable):
                await s.send(2, "y", 1)


async def test_abort_reaches_other_parties(autojump_clock) -> None:
    async with open_memory_transports(3) as hub:

        async def failing() -> None:
            with pytest.raises(RuntimeError):
                async with hub.transports[0].session("s") as s:
                    await trio.sleep(1)
                    raise RuntimeError("boom")

        async def waiting(p: int) -> None:
            async with hub.transports[p].session("s") as s:
                with pytest.raises(SessionAborted, match="aborted by VCP 0: internal error"):
                    await s.receive(0, "never")

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(failing)
                nursery.start_soon(waiting, 1)
                nursery.start_soon(waiting, 2)


async def test_duplicate_label_fails_the_session(autojump_clock) -> None:
    async with open_memory_transports(2) as hub:
        async with hub.transports[1].session("d") as s1:
            async with hub.transports[0].session("d") as s0:
                await s0.send(1, "x", 1)
                await s0.send(1, "x", 2)
            assert await s1.receive(0, "x") == 1
            with pytest.raises(ValueError, match="already received"):
                await s1.receive(0, "x")
            with pytest.raises(WireError, match="twice"):
                await s1.receive(0, "other")


async def test_session_ids_are_exclusive_and_late_messages_dropped(autojump_clock) -> None:
    async with open_memory_transports(2) as hub:
        async with hub.transports[0].session("a"):
            with pytest.raises(ValueError, match="already open"):
                async with hub.transports[0].session("a"):
                    pass
        async with hub.transports[1].session("a"):
            pass
        # a message for a session that ended here is dropped, not kept forever
        async with hub.transports[0].session("a") as s0:
            await s0.send(1, "x", b"late")
        assert "a" not in hub.transports[1].mailboxes._early
        # while one for a session not yet opened is kept
        async with hub.transports[0].session("b") as s0:
            await s0.send(1, "x", b"early")
        assert "b" in hub.transports[1].mailboxes._early


async def test_payloads_must_be_serialisable() -> None:
    async with open_memory_transports(2) as hub:
        async with hub.transports[0].session("z") as s0:
            with pytest.raises(TypeError):
                await s0.send(1, "x", object())
