"""The executor service: correctness on random programs, cheating, failures,
limits, allow-lists, records and the API around it."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio
from exec_harness import FIELD, ExecVC, P, new_key, open_exec_vc

from vcpd.config import ExecutorSettings
from vcpd.errors import ProgramError, RequestError
from vcpd.math import Shares
from vcpd.services.executor import source_digest
from vcpd.services.executor.channel import ThreadChannel
from vcpd.services.executor.runner import provenance_tags
from vcpd.services.ports import Reservation

PROLOGUE = "listen(10000)\ns = regint()\nacceptclientconnection(s, 10000)\n"


# ---------------------------------------------------------------- random programs


def random_program(rng: random.Random, n_inputs: int, n_statements: int) -> tuple[str, Any]:
    """A straight-line program of + - * over inputs and constants, and a plain-Python twin."""
    lines = [f"v = sint.read_from_socket(s, {n_inputs})"] if n_inputs > 1 else ["v = [sint.read_from_socket(s, 1)]"]
    names = [f"v[{i}]" for i in range(n_inputs)]
    plain: list[str] = []
    for k in range(n_statements):
        a, b = rng.choice(names), rng.choice(names)
        op = rng.choice(["+", "-", "*", "*", "const+", "const*", "neg", "rsub"])
        c = rng.randint(-1000, 1000)
        expr = {
            "+": f"{a} + {b}",
            "-": f"{a} - {b}",
            "*": f"{a} * {b}",
            "const+": f"{a} + {c}",
            "const*": f"{a} * {c}",
            "neg": f"-{a}",
            "rsub": f"{c} - {a}",
        }[op]
        lines.append(f"t{k} = {expr}")
        plain.append(f"t{k} = ({expr}) % P")
        names.append(f"t{k}")
    outputs = rng.sample(names[n_inputs:], min(3, n_statements))
    lines.append(f"sint.write_to_socket(s, [{', '.join(outputs)}])")
    plain.append(f"result = [{', '.join(outputs)}]")

    def evaluate(values: list[int]) -> list[int]:
        scope: dict[str, Any] = {"v": values, "P": P}
        exec("\n".join(plain), scope)  # noqa: S102 - the test's own generated code
        return [x - P if x > P // 2 else x for x in scope["result"]]

    return PROLOGUE + "\n".join(lines) + "\n", evaluate


@pytest.mark.parametrize("n", [2, 3, 5])
async def test_random_arithmetic_programs_match_plain_python(tmp_path: Path, n: int) -> None:
    rng = random.Random(1000 + n)  # test data only; protocol randomness is the CSPRNG
    async with open_exec_vc(tmp_path, n) as vc:
        key = new_key()
        client = vc.client(key)
        for trial in range(4):
            n_inputs = rng.randint(1, 4)
            values = [rng.randint(-(2**40), 2**40) for _ in range(n_inputs)]
            source, evaluate = random_program(rng, n_inputs, rng.randint(3, 25))
            inputs = [vc.secret([v], key) for v in values]
            expected = evaluate(values)
            if trial % 2:
                result = await client.run_program(source, inputs=inputs, output="reveal")
                assert list(result.values[0]) == expected
            else:
                result = await client.run_program(source, inputs=inputs)
                assert vc.registry.value(result.secrets[0]) == expected


# ---------------------------------------------------------------- cheating and failures


def _add_error_to_opening(party: int, step: str) -> Any:
    """A hub tamper function: ``party`` adds 1 to its first share in opening ``step``."""

    def tamper(src: int, dst: int, message: Any) -> Any:
        if message[0] == "m" and src == party and message[1].startswith("executor/") and message[2] == step:
            payload = message[3]
            first = FIELD.from_bytes(payload[:16]) + 1
            return (message[0], message[1], message[2], first.to_bytes() + payload[16:])
        return message

    return tamper


MUL_PROGRAM = (
    PROLOGUE
    + """
x, y = sint.read_from_socket(s, 2)
z = x * y
print_ln("done")
sint.write_to_socket(s, [z])
"""
)


@pytest.mark.parametrize("output", ["secrets", "reveal"])
async def test_an_error_added_to_a_multiplication_share_fails_the_mac_check(tmp_path: Path, output: str) -> None:
    async with open_exec_vc(tmp_path, 3) as vc:
        key = new_key()
        inputs = [vc.secret([6, 7], key)]
        vc.hub.tamper(_add_error_to_opening(1, "open.0"))  # the Beaver opening of x·y
        with pytest.raises(RequestError) as info:
            await vc.client(key).run_program(MUL_PROGRAM, inputs=inputs, output=output)
        assert info.value.code == "mac-check-failed"
        assert vc.registry.results == {}
        assert all(not source.calls for source in vc.sources)
        for executor in vc.executors:
            page, _ = await executor.list(key)
            assert page[0].state == "failed" and page[0].error_code == "mac-check-failed"
            assert page[0].outputs == () and page[0].log == ()


async def test_a_tampered_reveal_never_reaches_the_log(tmp_path: Path) -> None:
    source = PROLOGUE + "x = sint.read_from_socket(s, 1)\nprint_ln('%s', x.reveal())\n"
    async with open_exec_vc(tmp_path, 2) as vc:
        key = new_key()
        vc.hub.tamper(_add_error_to_opening(0, "open.0"))
        with pytest.raises(RequestError) as info:
            await vc.client(key).run_program(source, inputs=[vc.secret([5], key)], output="reveal")
        assert info.value.code == "mac-check-failed"
        record = await vc.executors[1].list(key)
        assert record[0][0].log == ()


async def test_a_peer_lost_mid_execution_aborts_everywhere_and_stores_nothing(tmp_path: Path) -> None:
    source = (
        PROLOGUE
        + """
x, y = sint.read_from_socket(s, 2)
if (x * y).reveal() > 0:
    z = x * y * x
sint.write_to_socket(s, [z])
"""
    )
    async with open_exec_vc(tmp_path, 3) as vc:
        key = new_key()

        def lose_vcp_2(src: int, dst: int, message: Any) -> Any:
            if message[0] == "m" and src == 2 and message[2] == "open.1":  # the reveal, after a flush
                vc.hub.isolate(2)
            return message

        vc.hub.tamper(lose_vcp_2)
        with pytest.raises(RequestError) as info:
            await vc.client(key).run_program(source, inputs=[vc.secret([3, 4], key)])
        assert info.value.code in ("unavailable", "aborted")
        assert vc.registry.results == {}
        for party, executor in enumerate(vc.executors):
            page, _ = await executor.list(key)
            assert page[0].state == "failed", party
            assert page[0].error_code in ("unavailable", "aborted")
            assert vc.dealer.open_reservations(party) == []  # taken (burnt) or discarded, none left open


async def test_a_reservation_whose_take_fails_is_discarded() -> None:
    events: list[str] = []

    class Tuples:
        async def reserve(self, request_id: str, counts: Any) -> Reservation:
            events.append(f"reserve {request_id}")
            return Reservation(request_id, ())

        async def take(self, reservation: Reservation) -> dict[str, list[Shares]]:
            raise RequestError("aborted", "the tuple store failed")

        async def discard(self, reservation: Reservation) -> None:
            events.append(f"discard {reservation.request_id}")

    channel = ThreadChannel(None, Tuples(), "executor/x")  # type: ignore[arg-type]
    with pytest.raises(RequestError):
        await trio.to_thread.run_sync(channel.reserve, {"triple": 5})
    assert events == ["reserve executor/x.1", "discard executor/x.1"]
    assert channel.tuples_used == {}


async def test_missing_tuples_fail_the_execution(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        key = new_key()
        vc.dealer.exhausted = "triple"
        with pytest.raises(RequestError) as info:
            await vc.client(key).run_program(MUL_PROGRAM, inputs=[vc.secret([2, 3], key)])
        assert info.value.code == "tuples-exhausted"
        assert vc.registry.results == {}


# ---------------------------------------------------------------- limits


async def test_timeout_and_budget_fail_only_their_own_execution(tmp_path: Path) -> None:
    spin = "while True:\n    pass\n"
    steps = "t = sint(0)\nfor i in range(100000):\n    t = t + 1\n"
    good = MUL_PROGRAM
    async with open_exec_vc(tmp_path, 3) as vc:
        key = new_key()
        client = vc.client(key)
        inputs = [vc.secret([6, 7], key)]
        outcomes: dict[str, Any] = {}

        async def attempt(name: str, source: str, **kwargs: Any) -> None:
            try:
                outcomes[name] = await client.run_program(source, **kwargs)
            except RequestError as exc:
                outcomes[name] = exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: attempt("spin", spin, timeout=0.5))
            nursery.start_soon(lambda: attempt("steps", steps, max_steps=20_000))
            nursery.start_soon(lambda: attempt("good", good, inputs=inputs))
        assert isinstance(outcomes["spin"], RequestError) and outcomes["spin"].code == "program-error"
        assert "timeout" in outcomes["spin"].message
        assert (
            isinstance(outcomes["steps"], RequestError)
            and "budget of 20000 steps exhausted" in outcomes["steps"].message
        )
        assert vc.registry.value(outcomes["good"].secrets[0]) == [42]


async def test_the_smallest_limit_of_any_vcp_applies(tmp_path: Path) -> None:
    settings = {0: ExecutorSettings(op_budget=1_000_000), 1: ExecutorSettings(op_budget=5_000)}
    async with open_exec_vc(tmp_path, 2, party_settings=settings) as vc:
        with pytest.raises(RequestError) as info:
            await vc.client().run_program("for i in range(10000):\n    pass\n")
        assert "budget of 5000 steps" in info.value.message
        for executor in vc.executors:  # both VCPs failed the same way at the same step
            page, _ = await executor.list("", is_admin=True)
            assert page[0].error_code == "program-error"


async def test_an_allow_list_refuses_other_programs_everywhere(tmp_path: Path) -> None:
    allowed = MUL_PROGRAM
    other = MUL_PROGRAM + "print_ln('changed')\n"
    settings = {1: ExecutorSettings(allowed_programs=(source_digest(allowed),))}
    async with open_exec_vc(tmp_path, 3, party_settings=settings) as vc:
        key = new_key()
        client = vc.client(key)
        inputs = [vc.secret([2, 5], key)]
        with pytest.raises(RequestError) as info:
            await client.run_program(other, inputs=inputs)
        assert info.value.code == "forbidden"
        assert source_digest(other) in info.value.message and "VCP 1" in info.value.message
        assert vc.dealer.counts == {}  # nothing ran
        for executor in vc.executors:
            page, _ = await executor.list(key)
            assert page[0].state == "failed" and page[0].error_code == "forbidden"
        result = await client.run_program(allowed, inputs=inputs)
        assert vc.registry.value(result.secrets[0]) == [10]


async def test_inputs_need_the_use_right(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        owner, other = new_key(), new_key()
        secret = vc.secret([1, 2], owner)
        with pytest.raises(RequestError) as info:
            await vc.client(other).run_program(MUL_PROGRAM, inputs=[secret])
        assert info.value.code == "not-found"
        vc.registry.secrets[secret].readers.add(other)
        with pytest.raises(RequestError) as info:
            await vc.client(other).run_program(MUL_PROGRAM, inputs=[secret])
        assert info.value.code == "forbidden"
        vc.registry.secrets[secret].users.add(other)
        result = await vc.client(other).run_program(MUL_PROGRAM, inputs=[secret])
        assert vc.registry.result_owner[result.secrets[0]] == other


# ---------------------------------------------------------------- outputs and records


async def test_outputs_are_owned_by_the_caller_and_tagged_with_provenance(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        key = new_key()
        a, b = vc.secret([3], key), vc.secret([4], key)
        source = (
            PROLOGUE
            + "x, y = sint.read_from_socket(s, 2)\nsint.write_to_socket(s, [x * y])\nsint.write_to_socket(s, [x, y])\n"
        )
        result = await vc.client(key).run_program(source, inputs=[a, b])
        assert len(result.secrets) == 2
        assert [vc.registry.value(i) for i in result.secrets] == [[12], [3, 4]]
        tags = vc.registry.result_tags[result.secrets[0]]
        assert tags["derived-from"] == f"{a},{b}"
        assert tags["program"] == source_digest(source) == result.digest
        assert tags["execution"] == result.id


def test_long_input_lists_continue_in_more_derived_from_tags() -> None:
    ids = [str(uuid.UUID(int=i)) for i in range(20)]
    tags = provenance_tags("e", "d", ids)
    joined = ",".join(str(tags[k]) for k in ["derived-from", *(f"derived-from.{i}" for i in range(2, 5))] if k in tags)
    assert joined == ",".join(ids)
    assert all(len(str(v)) <= 256 for v in tags.values())
    assert str(provenance_tags("e", "d", ids * 30)["derived-from"]).startswith("sha256:")


async def test_executions_are_recorded_listed_and_private(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        alice, bob = new_key(), new_key()
        source = (
            PROLOGUE + "x = sint.read_from_socket(s, 1)\nprint_ln('%s', x.reveal())\nsint.write_to_socket(s, [x * x])\n"
        )
        first = await vc.client(alice).run_program(source, inputs=[vc.secret([9], alice)])
        with pytest.raises(RequestError):
            await vc.client(alice).run_program("crash()\n")
        await vc.client(bob).run_program("print_ln('bob')\n", output="reveal")

        listed = await vc.client(alice).list_executions()
        assert [info.state for info in listed] == ["failed", "completed"]
        assert listed[1].id == first.id and listed[1].outputs == first.secrets
        assert listed[0].errors[0]["code"] == "program-error"
        info = await vc.client(alice).get_execution(first.id)
        assert info.states == ("completed", "completed") and info.log == ("9",)
        assert info.stats["multiplications"] == 1 and info.stats["tuples"] == {"triple": 1}
        assert [i.state for i in await vc.client(alice).list_executions(state="completed")] == ["completed"]

        with pytest.raises(RequestError) as exc:
            await vc.client(bob).get_execution(first.id)
        assert exc.value.code == "not-found"
        everyone = await vc.client(vc.admin_key).list_executions()
        assert len(everyone) == 3


async def test_an_execution_id_runs_once(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        client = vc.client()
        eid = str(uuid.uuid4())
        await client.run_program("print_ln('once')\n", execution_id=eid, output="reveal")
        with pytest.raises(RequestError) as info:
            await client.run_program("print_ln('twice')\n", execution_id=eid, output="reveal")
        assert info.value.code == "conflict"
        record = await client.get_execution(eid)
        assert record.state == "completed" and record.log == ("once",)


async def test_bad_requests(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        client = vc.client()
        for args in (
            {"id": "not-a-uuid", "source": ""},
            {"id": str(uuid.uuid4()), "source": "", "output": "plaintext"},
            {"id": str(uuid.uuid4()), "source": "", "max_steps": 0},
            {"id": str(uuid.uuid4()), "source": "", "surprise": 1},
        ):
            with pytest.raises(RequestError) as info:
                await client.call_all("executions.run", args)
            assert info.value.code == "bad-request"
        with pytest.raises(RequestError) as info:
            await client.call_all("executions.list", {"state": "sleeping"})
        assert info.value.code == "bad-request"


async def test_interrupted_executions_are_marked_failed_on_recovery(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        from vcpd.services.executor import records

        record = records.ExecutionRecord(
            id=str(uuid.uuid4()), owner="k", digest="d", output_mode="secrets", inputs=(), state="running", created_ms=1
        )
        await vc.stores[0].write(records.insert_record, record)
        assert await vc.executors[0].recover() == 1
        stored = await vc.executors[0].get("k", record.id)
        assert stored.state == "failed" and stored.error_code == "aborted"


async def test_program_errors_name_the_line(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        with pytest.raises(RequestError) as info:
            await vc.client().run_program("x = 1\ny = [1, 2][x + 5]\n")
        assert info.value.code == "program-error" and info.value.message.startswith("line 2: IndexError")
        assert isinstance(ProgramError("x"), Exception)


async def test_statistics_for_status(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2, settings=ExecutorSettings(op_budget=123)) as vc:
        stats = vc.executors[0].statistics()
        assert stats["running"] == 0 and stats["op_budget"] == 123
        assert isinstance(vc, ExecVC)


async def test_vcps_computing_locally_stop_as_soon_as_a_peer_is_lost(tmp_path: Path) -> None:
    source = (
        PROLOGUE
        + """
x, y = sint.read_from_socket(s, 2)
print_ln("%s", (x * y).reveal())
while True:
    pass
"""
    )
    async with open_exec_vc(tmp_path, 3) as vc:
        key = new_key()
        client = vc.client(key)
        outcome: list[BaseException] = []

        async def attempt() -> None:
            try:
                await client.run_program(source, inputs=[vc.secret([3, 4], key)], timeout=60)
            except RequestError as exc:
                outcome.append(exc)

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(attempt)
            while any(not taken for taken in vc.dealer.taken):
                await trio.sleep(0.01)
            await trio.sleep(0.2)  # every VCP is spinning in the loop now
            vc.hub.isolate(2)
        assert trio.current_time() - start < 10  # not the 60 s timeout
        assert isinstance(outcome[0], RequestError) and outcome[0].code in ("unavailable", "aborted")
        for executor in vc.executors:
            page, _ = await executor.list(key)
            assert page[0].state == "failed" and page[0].error_code in ("unavailable", "aborted")


async def test_a_busy_vcp_refuses_more_executions_and_programs_are_cached(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        executor = vc.executors[1]
        executor._max_concurrent = 0  # noqa: SLF001 - simulate a full VCP
        with pytest.raises(RequestError) as info:
            await vc.client().run_program("print_ln('x')\n")
        assert info.value.code == "conflict" and "VCP 1 already runs 0 executions" in info.value.message
        executor._max_concurrent = 4  # noqa: SLF001
        for _ in range(2):
            await vc.client().run_program("print_ln('x')\n", output="reveal")
        assert executor.statistics()["cached_programs"] == 1 and executor.statistics()["running"] == 0
