"""The programs in examples/ and the reference system's acceptance programs.

The Ephemeral README program also runs against the real secret store: two
secrets uploaded with the verified protocol, the program run by every VCP,
and the new secret downloaded with the verified protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from exec_harness import FIELD, Dealer, ExecVC, FakeExecClient, new_key, open_exec_vc

from vcpd.api.dispatch import Dispatcher
from vcpd.api.executions import register_execution_ops
from vcpd.api.secrets import register_secret_ops
from vcpd.client.secrets import SecretsMixin
from vcpd.config import ExecutorSettings
from vcpd.errors import RequestError
from vcpd.services.executor import MIGRATIONS as EXECUTOR_MIGRATIONS
from vcpd.services.executor import Executor
from vcpd.services.secrets import MIGRATIONS as SECRETS_MIGRATIONS
from vcpd.services.secrets import SecretStore
from vcpd.store import open_store
from vcpd.testing import open_memory_transports

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MILLIONAIRES = """# Prologue to read in the inputs
listen(10000)
socket_id = regint()
acceptclientconnection(socket_id, 10000)
v = sint.read_from_socket(socket_id, 2)

# The logic
first_billionaires_net_worth = v[0]
second_billionaires_net_worth= v[1]
result = first_billionaires_net_worth < second_billionaires_net_worth

# Epilogue to return the outputs
resp = Array(1, sint)
resp[0] = result
sint.write_to_socket(socket_id, resp)"""


def example(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


async def run(vc: ExecVC, source: str, inputs: list[list[int]], output: str = "secrets") -> Any:
    key = new_key()
    ids = [vc.secret(values, key) for values in inputs]
    return await vc.client(key).run_program(source, inputs=ids, output=output)


def test_every_example_is_listed_in_the_readme() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for path in EXAMPLES.glob("*.mpc"):
        assert f"`{path.name}`" in readme


async def test_the_ephemeral_readme_program_adds_two_secrets(tmp_path: Path) -> None:
    source = example("add_two_secrets.mpc")
    assert "sint.read_from_socket(client_socket_id, 2)" in source and "sum = a + b" in source
    async with open_exec_vc(tmp_path, 3) as vc:
        result = await run(vc, source, [[1234], [-34]])
        assert vc.registry.value(result.secrets[0]) == [1200]
        result = await run(vc, source, [[5, 7]])  # one input secret of two elements works the same
        assert vc.registry.value(result.secrets[0]) == [12]


async def test_the_ephemeral_reveal_program_prints_and_returns_the_sum(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, example("reveal_sum.mpc"), [[111], [111]], output="reveal")
        assert result.values == ((222,),)
        assert result.log == ("Result is 222",)


async def test_the_millionaires_program_runs_unchanged(tmp_path: Path) -> None:
    async with open_exec_vc(tmp_path, 2) as vc:
        for first, second, richer in ((10, 20, 1), (20, 10, 0), (15, 15, 0), (-(2**63), 2**63 - 1, 1)):
            result = await run(vc, MILLIONAIRES, [[first], [second]])
            assert vc.registry.value(result.secrets[0]) == [richer]  # a secret 0/1


async def test_sum_of_many_secrets(tmp_path: Path) -> None:
    values = [3, -1, 4, 1, -5, 9, 2, -6, 5, 3]
    async with open_exec_vc(tmp_path, 3) as vc:
        result = await run(vc, example("sum_many.mpc"), [[v] for v in values])
        assert vc.registry.value(result.secrets[0]) == [sum(values)]
        assert result.stats[0]["multiplications"] == 0 and result.stats[0]["rounds"] == 0


async def test_mean_and_variance(tmp_path: Path) -> None:
    xs = [2, 4, 4, 4, 5, 5, 7, 9]
    n = len(xs)
    scaled = n * sum(x * x for x in xs) - sum(xs) ** 2
    async with open_exec_vc(tmp_path, 3) as vc:
        result = await run(vc, example("mean_variance.mpc"), [xs], output="reveal")
        assert result.values == ((sum(xs), scaled),)
        assert result.log == (f"mean {sum(xs) // n} variance {scaled // n**2} (rounded down)",)
        assert result.stats[0]["mul_rounds"] == 1  # the squares and sum(x)^2 share one round


async def test_dot_product(tmp_path: Path) -> None:
    a, b = [1, -2, 3, 4], [5, 6, -7, 8]
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, example("dot_product.mpc"), [a, b])
        assert vc.registry.value(result.secrets[0]) == [sum(x * y for x, y in zip(a, b, strict=True))]
        assert result.stats[0]["mul_rounds"] == 1 and result.stats[0]["multiplications"] == 4


@pytest.mark.parametrize(("flag", "prices"), [(1, [100, 60, 250]), (0, [120, 75, 300])])
async def test_secret_and_public_values(tmp_path: Path, flag: int, prices: list[int]) -> None:
    quantities = [2, 1, 3]
    async with open_exec_vc(tmp_path, 2) as vc:
        result = await run(vc, example("secret_and_public.mpc"), [quantities, [flag]], output="reveal")
        assert result.values == ((sum(q * p for q, p in zip(quantities, prices, strict=True)) + 25,),)
        assert result.log[0] == "item 0 costs 120 or 100"
        assert result.stats[0]["multiplications"] == 1  # only the oblivious selection multiplies


# ---------------------------------------------------------------- with the real secret store


class VcClient(FakeExecClient, SecretsMixin):
    """Both client mixins over in-process dispatch."""

    @property
    def public_key(self) -> str:
        return self.key


@asynccontextmanager
async def open_real_vc(tmp_path: Path, n: int) -> AsyncIterator[tuple[ExecVC, Dealer]]:
    async with open_memory_transports(n) as hub, AsyncExitStack() as stack:
        dealer = Dealer(n)
        dispatchers, executors, stores = [], [], []
        for i in range(n):
            store = await stack.enter_async_context(
                open_store(tmp_path / f"vcp{i}.db", (*SECRETS_MIGRATIONS, *EXECUTOR_MIGRATIONS), readers=2)
            )
            secrets = SecretStore(store, hub.transports[i], dealer.source(i), FIELD, dealer.alpha_shares[i])
            executor = Executor(
                store, hub.transports[i], dealer.source(i), secrets, FIELD, dealer.alpha_shares[i], ExecutorSettings()
            )
            dispatcher = Dispatcher(admin_keys=frozenset())
            register_secret_ops(dispatcher, secrets)
            register_execution_ops(dispatcher, executor)
            dispatchers.append(dispatcher)
            executors.append(executor)
            stores.append(store)
        vc = ExecVC(hub, dealer, None, stores, executors, dispatchers, [], "")  # type: ignore[arg-type]
        yield vc, dealer


async def test_the_readme_program_over_the_real_secret_store(tmp_path: Path) -> None:
    async with open_real_vc(tmp_path, 3) as (vc, _):
        client = VcClient(vc, new_key())
        a = await client.create_secret([1000], tags={"name": "a"})
        b = await client.create_secret([-58])
        result = await client.run_program(example("add_two_secrets.mpc"), inputs=[a, b])
        (secret_id,) = result.secrets
        secret = await client.get_secret(secret_id)
        assert secret.values == [942]
        assert secret.tags["derived-from"] == f"{a},{b}"
        assert secret.tags["program"] == result.digest
        assert secret.tags["owner"] == client.public_key

        other = VcClient(vc, new_key())
        with pytest.raises(RequestError) as info:  # no use right on someone else's secret
            await other.run_program(example("add_two_secrets.mpc"), inputs=[a, b])
        assert info.value.code == "not-found"
        await client.grant(a, other.public_key, ["use"])
        await client.grant(b, other.public_key, ["use"])
        result = await other.run_program(example("reveal_sum.mpc"), inputs=[a, b], output="reveal")
        assert result.values == ((942,),)
