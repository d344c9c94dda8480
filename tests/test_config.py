"""Config and key files: parsed once, strict, errors that name file and key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vcpd.config import DEFAULT_PRIME, load_client_config, load_vcp_config
from vcpd.errors import ConfigError
from vcpd.keys import (
    MacKey,
    generate_identity,
    load_identity,
    load_mac_key,
    write_identity,
    write_mac_key,
)
from vcpd.vcinit import init_local_vc


@pytest.fixture
def local_vc(tmp_path: Path):
    return init_local_vc(tmp_path / "vc", parties=3, base_port=7400)


def test_init_writes_loadable_configs(local_vc) -> None:
    configs = [load_vcp_config(p) for p in local_vc.vcp_configs]
    client = load_client_config(local_vc.client_config)
    assert [c.party for c in configs] == [0, 1, 2]
    assert all(c.vc == client.vc for c in configs)
    assert client.vc.prime == DEFAULT_PRIME
    assert client.vc.offline == "dealer"
    assert configs[1].peer_listen == ("127.0.0.1", 7402)
    assert configs[1].api_listen == ("127.0.0.1", 7403)
    assert configs[0].is_leader and not configs[2].is_leader
    # every VCP's identity key matches its pinned public key
    for config in configs:
        key = load_identity(config.identity_key)
        assert bytes(key.verify_key) == config.vc.party(config.party).public_key_bytes
    # the client key is an admin key of every VCP
    assert all(local_vc.client_public_key in c.admin_keys for c in configs)


def test_dealer_mac_keys_sum_to_the_dealer_alpha(local_vc) -> None:
    configs = [load_vcp_config(p) for p in local_vc.vcp_configs]
    keys = [load_mac_key(c.mac_key, c.vc.prime) for c in configs]
    assert keys[0].dealer_alpha == sum(k.share for k in keys) % DEFAULT_PRIME
    assert keys[1].dealer_alpha is None and keys[2].dealer_alpha is None
    assert "hidden" in repr(keys[0]) and str(keys[0].share) not in repr(keys[0])


def test_key_files_are_private(local_vc) -> None:
    for path in (local_vc.directory / "keys").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_mascot_init_writes_no_mac_keys(tmp_path: Path) -> None:
    local = init_local_vc(tmp_path / "m", parties=2, offline="mascot")
    assert not list((local.directory / "keys").glob("*.mac"))
    config = load_vcp_config(local.vcp_configs[0])
    assert config.vc.offline == "mascot" and config.mac_key is None


def test_init_refuses_existing_vc(local_vc) -> None:
    with pytest.raises(ConfigError, match="already exists"):
        init_local_vc(local_vc.directory)


def test_handshake_fields_differ_when_vc_differs(tmp_path: Path) -> None:
    a = load_client_config(init_local_vc(tmp_path / "a", parties=2).client_config).vc
    b = load_client_config(init_local_vc(tmp_path / "b", parties=2).client_config).vc
    assert a.handshake_fields()["prime"] == b.handshake_fields()["prime"]
    assert a.handshake_fields()["party.0.key"] != b.handshake_fields()["party.0.key"]
    assert a.digest() != b.digest()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("party = 1", "party = 1\ncolour = 3", r"unknown key\(s\) in \[vcp\]: colour"),
        ("party = 1", 'party = "one"', r"vcp\.party: expected int, got str"),
        ("party = 1", "party = 7", r"vcp\.party: party 7 is not in the VC's party list"),
        ('\noffline = "dealer"', '\noffline = "fake"', r"vc\.offline: must be one of dealer, mascot"),
        ('prime = "', 'prime = "12', r"vc\.prime: prime must be an odd prime"),
        ("[vcp]", "[vcp\n", r"not valid TOML"),
        ('api_listen = "127.0.0.1:7403"', 'api_listen = "nowhere"', r"vcp\.api_listen: expected HOST:PORT"),
        ("id = 2", "id = 5", r"vc\.parties\[2\]\.id: parties must be listed in order"),
        ('public_key = "', 'public_key = "!', r"vc\.parties\[0\]\.public_key: not a base64"),
        ('mac_key = "keys/vcp1.mac"\n', "", r"vcp\.mac_key: dealer mode needs"),
    ],
)
def test_bad_vcp_config_names_file_and_key(local_vc, old: str, new: str, message: str) -> None:
    path = local_vc.vcp_configs[1]
    _edit(path, old, new)
    with pytest.raises(ConfigError, match=message) as info:
        load_vcp_config(path)
    assert str(path) in str(info.value)


def test_executor_and_tuple_sections(local_vc) -> None:
    path = local_vc.vcp_configs[0]
    path.write_text(
        path.read_text()
        + "\n[executor]\nop_budget = 1000\ntimeout = 2.5\n"
        + "\n[tuples]\nbatch_size = 5000\nconcurrency = 2\n[tuples.thresholds]\ntriple = 10000\n"
        + "[tuples.priorities]\ntriple = 5\n"
    )
    config = load_vcp_config(path)
    assert config.executor.op_budget == 1000 and config.executor.timeout == 2.5
    assert config.tuples.thresholds == {"triple": 10000}
    assert config.tuples.priorities == {"triple": 5}
    assert config.tuples.batch_size == 5000 and config.tuples.concurrency == 2


def test_unknown_tuple_kind_is_named(local_vc) -> None:
    path = local_vc.vcp_configs[0]
    path.write_text(path.read_text() + "\n[tuples.thresholds]\ntripel = 5\n")
    with pytest.raises(ConfigError, match="unknown tuple type.*tripel"):
        load_vcp_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_vcp_config(tmp_path / "nope.toml")


def test_identity_round_trip_and_refusals(tmp_path: Path) -> None:
    key = generate_identity()
    path = tmp_path / "id.key"
    write_identity(path, key)
    assert bytes(load_identity(path)) == bytes(key)
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        write_identity(path, generate_identity())
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_identity(path)
    os.chmod(path, 0o600)
    path.write_text("hello\n")
    with pytest.raises(ConfigError, match="not an identity key file"):
        load_identity(path)
    with pytest.raises(ConfigError, match="key file not found"):
        load_identity(tmp_path / "missing.key")


def test_mac_key_file_checks_range(tmp_path: Path) -> None:
    path = tmp_path / "k.mac"
    write_mac_key(path, MacKey(share=5))
    assert load_mac_key(path, DEFAULT_PRIME).share == 5
    path.unlink()
    write_mac_key(path, MacKey(share=DEFAULT_PRIME + 1))
    with pytest.raises(ConfigError, match="share: value is not an element"):
        load_mac_key(path, DEFAULT_PRIME)


@pytest.mark.parametrize("name", ["vcp0.example.toml", "vcp1.mascot.example.toml"])
def test_example_vcp_configs_parse(name: str) -> None:
    config = load_vcp_config(Path(__file__).parent.parent / "configs" / name)
    assert config.vc.prime == DEFAULT_PRIME


def test_example_client_config_parses() -> None:
    config = load_client_config(Path(__file__).parent.parent / "configs" / "client.example.toml")
    assert config.vc.n_parties == 3
