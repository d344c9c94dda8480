"""Configuration: TOML files parsed once, at the edge, into frozen dataclasses.

Two files exist:

* a **VCP config** (one per daemon): who this VCP is, where it listens, where
  its data and keys live, and the **VC parameters** every VCP must share (prime,
  party list with public keys and addresses, offline mode);
* a **client config** (for vcpctl and the client library): the VC parameters
  and this client's identity key.

Unknown keys and wrong types are errors that name the file and the key: a typo
in a party's configuration must stop it, not silently change its behaviour.
Relative paths are taken relative to the config file's directory.

This module is L0: it imports only the standard library and vcpd.errors/keys.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, cast

from vcpd.errors import ConfigError
from vcpd.keys import decode_public_key

__all__ = [
    "DEFAULT_PRIME",
    "OFFLINE_MODES",
    "ClientConfig",
    "ExecutorSettings",
    "PartyInfo",
    "TupleSettings",
    "VcParams",
    "VcpConfig",
    "load_client_config",
    "load_vcp_config",
    "parse_address",
]

DEFAULT_PRIME: Final = 198766463529478683931867765928436695041
OFFLINE_MODES: Final = ("dealer", "mascot")
OfflineMode = Literal["dealer", "mascot"]
TUPLE_KINDS: Final = ("triple", "square", "bit", "inverse", "mask", "bounded")

T = TypeVar("T")


def parse_address(text: str, *, path: str | None = None, key: str | None = None) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` allowed) and check the port range."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"expected HOST:PORT, got {text!r}", path=path, key=key)
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"port is not a number in {text!r}", path=path, key=key) from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} out of range 0..65535", path=path, key=key)
    return host, port


@dataclass(frozen=True, slots=True, kw_only=True)
class PartyInfo:
    """One VCP as every other VCP and every client knows it."""

    id: int
    public_key: str  # base64 Ed25519
    peer_address: str  # host:port of its peer endpoint
    api_address: str  # host:port of its client API endpoint

    @property
    def public_key_bytes(self) -> bytes:
        return bytes(decode_public_key(self.public_key))


@dataclass(frozen=True, slots=True, kw_only=True)
class VcParams:
    """Parameters every VCP of a VC must agree on; the handshake compares them."""

    prime: int
    parties: tuple[PartyInfo, ...]
    offline: OfflineMode

    @property
    def n_parties(self) -> int:
        return len(self.parties)

    def party(self, party_id: int) -> PartyInfo:
        return self.parties[party_id]

    def handshake_fields(self) -> dict[str, str]:
        """The opaque key/value view compared field by field in handshakes.

        Addresses are left out on purpose: how one party reaches another may
        differ by viewpoint (NAT, proxies) without changing the VC.
        """
        fields = {
            "prime": str(self.prime),
            "offline": self.offline,
            "parties": str(len(self.parties)),
        }
        for party in self.parties:
            fields[f"party.{party.id}.key"] = party.public_key
        return fields

    def digest(self) -> str:
        """A short hex digest of :meth:`handshake_fields`, for status displays."""
        text = "\n".join(f"{k}={v}" for k, v in sorted(self.handshake_fields().items()))
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorSettings:
    """Limits for client programs (see README for the defaults and why)."""

    op_budget: int = 50_000_000  # secret element-operations per execution
    timeout: float = 600.0  # seconds of wall-clock time per execution
    allowed_programs: tuple[str, ...] = ()  # hex digests; empty = any program


@dataclass(frozen=True, slots=True, kw_only=True)
class TupleSettings:
    """Stock keeping for the tuple generator's scheduler (Klyshko-style)."""

    thresholds: Mapping[str, int] = field(default_factory=dict)  # kind -> minimum stock
    priorities: Mapping[str, int] = field(default_factory=dict)  # kind -> lottery weight
    batch_size: int = 100_000
    concurrency: int = 1
    scheduler_interval: float = 10.0  # seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class VcpConfig:
    """Everything one daemon needs, resolved to absolute paths."""

    path: Path
    party: int
    identity_key: Path
    data_dir: Path
    peer_listen: tuple[str, int]
    api_listen: tuple[str, int]
    admin_keys: tuple[str, ...]
    mac_key: Path | None
    vc: VcParams
    executor: ExecutorSettings
    tuples: TupleSettings

    @property
    def is_leader(self) -> bool:
        """Party 0 leads reservations and (in dealer mode) deals tuples."""
        return self.party == 0

    @property
    def store_path(self) -> Path:
        return self.data_dir / "vcpd.sqlite3"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """What a client needs: the VC and its own identity key."""

    path: Path
    identity_key: Path
    vc: VcParams


# --------------------------------------------------------------------------- parsing


class _Table:
    """A TOML table being consumed key by key; leftovers are reported as unknown."""

    def __init__(self, data: Mapping[str, Any], path: str, where: str) -> None:
        self.data = dict(data)
        self.path = path
        self.where = where

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def take(self, name: str, kind: type[T] | tuple[type, ...], *, default: Any = ...) -> Any:
        if name not in self.data:
            if default is ...:
                raise ConfigError("missing required key", path=self.path, key=self.key(name))
            return default
        value = self.data.pop(name)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; never accept it where a number is meant.
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds)
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(
                f"expected {names}, got {type(value).__name__}", path=self.path, key=self.key(name)
            )
        return value

    def table(self, name: str, *, required: bool = True) -> _Table:
        value = self.take(name, dict, default=... if required else {})
        return _Table(value, self.path, self.key(name))

    def finish(self) -> None:
        if self.data:
            names = ", ".join(sorted(self.data))
            where = f"[{self.where}]" if self.where else "top level"
            raise ConfigError(f"unknown key(s) in {where}: {names}", path=self.path)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("config file not found", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file ({exc.strerror})", path=str(path)) from None


def _resolve(base: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (base / candidate)


def _parse_prime(table: _Table) -> int:
    raw = table.take("prime", (str, int), default=str(DEFAULT_PRIME))
    try:
        prime = int(raw)
    except ValueError:
        raise ConfigError("prime must be a decimal integer", path=table.path, key=table.key("prime")) from None
    # The full primality test lives with the field arithmetic (L1); here we only
    # keep obviously wrong values from going further.
    if prime < 2**64 or prime >= 2**128 or prime % 2 == 0 or pow(2, prime - 1, prime) != 1:
        raise ConfigError(
            "prime must be an odd prime between 2^64 and 2^128 "
            f"(the default is {DEFAULT_PRIME})",
            path=table.path,
            key=table.key("prime"),
        )
    return prime


def _parse_vc(root: _Table, *, need_peer: bool) -> VcParams:
    vc = root.table("vc")
    prime = _parse_prime(vc)
    offline = vc.take("offline", str)
    if offline not in OFFLINE_MODES:
        raise ConfigError(
            f"must be one of {', '.join(OFFLINE_MODES)}, got {offline!r}", path=vc.path, key=vc.key("offline")
        )
    raw_parties = vc.take("parties", list)
    parties: list[PartyInfo] = []
    for index, raw in enumerate(raw_parties):
        if not isinstance(raw, dict):
            raise ConfigError("each party must be a table", path=vc.path, key=f"vc.parties[{index}]")
        entry = _Table(raw, vc.path, f"vc.parties[{index}]")
        party_id = entry.take("id", int)
        if party_id != index:
            raise ConfigError(
                f"parties must be listed in order 0..N-1; found id {party_id} at position {index}",
                path=vc.path,
                key=entry.key("id"),
            )
        public_key = entry.take("public_key", str)
        decode_public_key(public_key, path=vc.path, key=entry.key("public_key"))
        peer_address = entry.take("peer_address", str, default="" if not need_peer else ...)
        if peer_address:
            parse_address(peer_address, path=vc.path, key=entry.key("peer_address"))
        api_address = entry.take("api_address", str)
        parse_address(api_address, path=vc.path, key=entry.key("api_address"))
        entry.finish()
        parties.append(
            PartyInfo(id=party_id, public_key=public_key, peer_address=peer_address, api_address=api_address)
        )
    if len(parties) < 2:
        raise ConfigError("a VC needs at least 2 parties", path=vc.path, key="vc.parties")
    keys = [p.public_key for p in parties]
    if len(set(keys)) != len(keys):
        raise ConfigError("two parties share a public key", path=vc.path, key="vc.parties")
    vc.finish()
    return VcParams(prime=prime, parties=tuple(parties), offline=cast(OfflineMode, offline))


def _parse_executor(root: _Table) -> ExecutorSettings:
    table = root.table("executor", required=False)
    defaults = ExecutorSettings()
    op_budget = table.take("op_budget", int, default=defaults.op_budget)
    timeout = float(table.take("timeout", (int, float), default=defaults.timeout))
    allowed = table.take("allowed_programs", list, default=[])
    for index, digest in enumerate(allowed):
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(
                "expected a 64-character lowercase hex program digest",
                path=table.path,
                key=f"executor.allowed_programs[{index}]",
            )
    if op_budget <= 0 or timeout <= 0:
        raise ConfigError("op_budget and timeout must be positive", path=table.path, key="executor")
    table.finish()
    return ExecutorSettings(op_budget=op_budget, timeout=timeout, allowed_programs=tuple(allowed))


def _kind_map(table: _Table, name: str, check: Callable[[int], bool], what: str) -> dict[str, int]:
    sub = table.table(name, required=False)
    result: dict[str, int] = {}
    for kind in TUPLE_KINDS:
        if kind in sub.data:
            value = sub.take(kind, int)
            if not check(value):
                raise ConfigError(f"must be {what}", path=sub.path, key=sub.key(kind))
            result[kind] = value
    if sub.data:
        raise ConfigError(
            f"unknown tuple type(s) {', '.join(sorted(sub.data))}; known: {', '.join(TUPLE_KINDS)}",
            path=sub.path,
            key=sub.where,
        )
    return result


def _parse_tuples(root: _Table) -> TupleSettings:
    table = root.table("tuples", required=False)
    defaults = TupleSettings()
    thresholds = _kind_map(table, "thresholds", lambda v: v >= 0, "zero or more")
    priorities = _kind_map(table, "priorities", lambda v: v > 0, "positive")
    batch_size = table.take("batch_size", int, default=defaults.batch_size)
    concurrency = table.take("concurrency", int, default=defaults.concurrency)
    interval = float(table.take("scheduler_interval", (int, float), default=defaults.scheduler_interval))
    if batch_size <= 0 or concurrency <= 0 or interval <= 0:
        raise ConfigError("batch_size, concurrency and scheduler_interval must be positive", path=table.path, key="tuples")
    table.finish()
    return TupleSettings(
        thresholds=thresholds,
        priorities=priorities,
        batch_size=batch_size,
        concurrency=concurrency,
        scheduler_interval=interval,
    )


def load_vcp_config(path: Path | str) -> VcpConfig:
    """Parse and check a VCP config file; every problem is a :class:`ConfigError`."""
    path = Path(path)
    root = _Table(_read_toml(path), str(path), "")
    base = path.parent.resolve()
    vcp = root.table("vcp")
    party = vcp.take("party", int)
    identity_key = _resolve(base, vcp.take("identity_key", str))
    data_dir = _resolve(base, vcp.take("data_dir", str))
    peer_listen = parse_address(vcp.take("peer_listen", str), path=str(path), key="vcp.peer_listen")
    api_listen = parse_address(vcp.take("api_listen", str), path=str(path), key="vcp.api_listen")
    admin_keys = vcp.take("admin_keys", list, default=[])
    for index, key in enumerate(admin_keys):
        if not isinstance(key, str):
            raise ConfigError("expected a base64 public key", path=str(path), key=f"vcp.admin_keys[{index}]")
        decode_public_key(key, path=str(path), key=f"vcp.admin_keys[{index}]")
    mac_key_text = vcp.take("mac_key", str, default="")
    vcp.finish()
    vc = _parse_vc(root, need_peer=True)
    if not 0 <= party < vc.n_parties:
        raise ConfigError(
            f"party {party} is not in the VC's party list (0..{vc.n_parties - 1})", path=str(path), key="vcp.party"
        )
    mac_key = _resolve(base, mac_key_text) if mac_key_text else None
    if vc.offline == "dealer" and mac_key is None:
        raise ConfigError(
            "dealer mode needs the MAC key share file written by 'vcpctl vc init'", path=str(path), key="vcp.mac_key"
        )
    executor = _parse_executor(root)
    tuples = _parse_tuples(root)
    root.finish()
    return VcpConfig(
        path=path,
        party=party,
        identity_key=identity_key,
        data_dir=data_dir,
        peer_listen=peer_listen,
        api_listen=api_listen,
        admin_keys=tuple(admin_keys),
        mac_key=mac_key,
        vc=vc,
        executor=executor,
        tuples=tuples,
    )


def load_client_config(path: Path | str) -> ClientConfig:
    """Parse and check a client config file (the one vcpctl finds via --vc / VCPCTL_VC)."""
    path = Path(path)
    root = _Table(_read_toml(path), str(path), "")
    client = root.table("client")
    identity_key = _resolve(path.parent.resolve(), client.take("identity_key", str))
    client.finish()
    vc = _parse_vc(root, need_peer=False)
    root.finish()
    return ClientConfig(path=path, identity_key=identity_key, vc=vc)
