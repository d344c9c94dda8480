"""Create a complete local Virtual Cloud: keys, one config per VCP, one client config.

Used by ``vcpctl vc init`` and ``scripts/run_local_vc.sh``. The layout is::

    DIR/vcp0.toml ... vcpN-1.toml   daemon configs
    DIR/client.toml                 client config (export VCPCTL_VC=DIR/client.toml)
    DIR/keys/vcpI.key, client.key   Ed25519 identity keys (0600)
    DIR/keys/vcpI.mac               MAC key shares (dealer mode only, 0600)
    DIR/data/vcpI/                  each daemon's store

In ``dealer`` mode the MAC key shares are drawn here and the dealer (VCP 0)
also learns the whole key, which is what makes dealer mode insecure. In
``mascot`` mode no MAC key is written: each daemon samples its own share on
first start and never lets it leave.

L0: imports only the standard library and vcpd.config/keys/errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from vcpd.config import DEFAULT_PRIME, OFFLINE_MODES
from vcpd.errors import ConfigError
from vcpd.keys import (
    MacKey,
    encode_public_key,
    generate_identity,
    random_field_element,
    write_identity,
    write_mac_key,
)

__all__ = ["DEFAULT_BASE_PORT", "LocalVc", "init_local_vc"]

DEFAULT_BASE_PORT: Final = 7100

_DEALER_WARNING: Final = """\
# WARNING: offline = "dealer" is INSECURE by construction. VCP 0 deals every
# tuple and knows the whole MAC key, so it can read and forge every secret.
# Use it for development and benchmarks only; use "mascot" for real data.
"""


@dataclass(frozen=True, slots=True)
class LocalVc:
    """Where :func:`init_local_vc` put things."""

    directory: Path
    vcp_configs: tuple[Path, ...]
    client_config: Path
    client_public_key: str


def _party_table(index: int, public_key: str, host: str, base_port: int) -> str:
    return (
        "[[vc.parties]]\n"
        f"id = {index}\n"
        f'public_key = "{public_key}"\n'
        f'peer_address = "{host}:{base_port + 2 * index}"\n'
        f'api_address = "{host}:{base_port + 2 * index + 1}"\n'
    )


def init_local_vc(
    directory: Path,
    *,
    parties: int = 3,
    base_port: int = DEFAULT_BASE_PORT,
    offline: str = "dealer",
    prime: int = DEFAULT_PRIME,
    host: str = "127.0.0.1",
) -> LocalVc:
    """Write a fresh local VC into ``directory`` (which must not hold one yet)."""
    if parties < 2:
        raise ConfigError(f"a VC needs at least 2 parties, got {parties}")
    if offline not in OFFLINE_MODES:
        raise ConfigError(f"offline mode must be one of {', '.join(OFFLINE_MODES)}, got {offline!r}")
    if not 1024 <= base_port <= 65535 - 2 * parties:
        raise ConfigError(f"base port {base_port} leaves no room for {parties} parties")
    directory = directory.resolve()
    if (directory / "client.toml").exists() or (directory / "vcp0.toml").exists():
        raise ConfigError("a VC already exists here; remove it or choose another --dir", path=str(directory))
    keys = directory / "keys"
    keys.mkdir(parents=True, exist_ok=True)

    identities = [generate_identity() for _ in range(parties)]
    for index, key in enumerate(identities):
        write_identity(keys / f"vcp{index}.key", key)
    client_key = generate_identity()
    write_identity(keys / "client.key", client_key)
    client_public = encode_public_key(client_key.verify_key)
    publics = [encode_public_key(key.verify_key) for key in identities]

    if offline == "dealer":
        shares = [random_field_element(prime) for _ in range(parties)]
        alpha = sum(shares) % prime
        for index, share in enumerate(shares):
            write_mac_key(
                keys / f"vcp{index}.mac", MacKey(share=share, dealer_alpha=alpha if index == 0 else None)
            )

    vc_section = (
        (_DEALER_WARNING if offline == "dealer" else "")
        + f'[vc]\nprime = "{prime}"\noffline = "{offline}"\n\n'
        + "\n".join(_party_table(i, publics[i], host, base_port) for i in range(parties))
    )
    configs = []
    for index in range(parties):
        mac_line = f'mac_key = "keys/vcp{index}.mac"\n' if offline == "dealer" else ""
        text = (
            f"# vcpd configuration of VCP {index} in a local {parties}-party VC\n"
            "[vcp]\n"
            f"party = {index}\n"
            f'identity_key = "keys/vcp{index}.key"\n'
            f'data_dir = "data/vcp{index}"\n'
            f'peer_listen = "{host}:{base_port + 2 * index}"\n'
            f'api_listen = "{host}:{base_port + 2 * index + 1}"\n'
            f'admin_keys = ["{client_public}"]\n'
            f"{mac_line}\n"
            f"{vc_section}"
        )
        path = directory / f"vcp{index}.toml"
        path.write_text(text)
        configs.append(path)
    client_path = directory / "client.toml"
    client_path.write_text(
        f"# vcpctl / client library configuration for the local {parties}-party VC\n"
        "[client]\n"
        'identity_key = "keys/client.key"\n\n'
        f"{vc_section}"
    )
    return LocalVc(
        directory=directory,
        vcp_configs=tuple(configs),
        client_config=client_path,
        client_public_key=client_public,
    )
