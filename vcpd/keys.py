"""Identity keys and MAC key shares on disk.

Two kinds of secret live in files next to a VCP's configuration:

* an **Ed25519 identity key** (``ed25519:<base64 seed>``) that authenticates a VCP
  or a client on every connection; its public half is pinned in the others'
  configuration, WireGuard-style;
* a **MAC key share** α_i (dealer mode only: written at VC initialisation), in a
  tiny TOML file. In ``mascot`` mode each VCP samples α_i itself on first start.

Secret files are written with mode 0600 and refused when group or others may
read them, as ssh does: a key anyone on the machine can read is not a secret.

This module is L0: it imports only the standard library, nacl and
:mod:`vcpd.errors`.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from nacl.signing import SigningKey, VerifyKey

from vcpd.errors import ConfigError

__all__ = [
    "IDENTITY_PREFIX",
    "MacKey",
    "decode_public_key",
    "encode_public_key",
    "generate_identity",
    "load_identity",
    "load_mac_key",
    "random_field_element",
    "write_identity",
    "write_mac_key",
    "write_secret_file",
]

IDENTITY_PREFIX: Final = "ed25519:"


def encode_public_key(key: VerifyKey) -> str:
    """The text form of a public key used in configs and on the CLI (base64)."""
    return base64.b64encode(bytes(key)).decode("ascii")


def decode_public_key(text: str, *, path: str | None = None, key: str | None = None) -> VerifyKey:
    """Parse a base64 Ed25519 public key, raising ConfigError naming where it came from."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("not a base64 Ed25519 public key", path=path, key=key) from None
    if len(raw) != 32:
        raise ConfigError(
            f"an Ed25519 public key has 32 bytes, this one has {len(raw)}", path=path, key=key
        )
    return VerifyKey(raw)


def generate_identity() -> SigningKey:
    """A fresh identity key from the OS CSPRNG."""
    return SigningKey.generate()


def write_secret_file(path: Path, text: str, *, overwrite: bool = False) -> None:
    """Create ``path`` with mode 0600 and write ``text``; never widen permissions.

    The file is created with O_EXCL unless ``overwrite`` is set, so a typo cannot
    silently replace an existing key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConfigError("file exists; refusing to overwrite a key", path=str(path)) from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def write_identity(path: Path, key: SigningKey, *, overwrite: bool = False) -> None:
    """Write an identity key file (mode 0600)."""
    seed = base64.b64encode(bytes(key)).decode("ascii")
    write_secret_file(path, f"{IDENTITY_PREFIX}{seed}\n", overwrite=overwrite)


def _read_secret_file(path: Path) -> str:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError("key file not found", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read key file ({exc.strerror})", path=str(path)) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError("key file is not a regular file", path=str(path))
    if st.st_mode & 0o077:
        raise ConfigError(
            f"key file is accessible by group or others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run 'chmod 600 {path}'",
            path=str(path),
        )
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read key file ({exc})", path=str(path)) from None


def load_identity(path: Path) -> SigningKey:
    """Load an identity key file written by :func:`write_identity`."""
    text = _read_secret_file(path).strip()
    if not text.startswith(IDENTITY_PREFIX):
        raise ConfigError(
            f"not an identity key file (expected a line starting with '{IDENTITY_PREFIX}'); "
            "create one with 'vcpctl keygen'",
            path=str(path),
        )
    try:
        seed = base64.b64decode(text[len(IDENTITY_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("identity key is not valid base64", path=str(path)) from None
    if len(seed) != 32:
        raise ConfigError("identity key must hold a 32-byte seed", path=str(path))
    return SigningKey(seed)


@dataclass(frozen=True, slots=True, repr=False)
class MacKey:
    """This VCP's share α_i of the global SPDZ MAC key α (as an int mod p).

    ``dealer_alpha`` is the whole α and is present only on the dealer of a
    ``dealer``-mode VC, which by construction knows it (that is why dealer mode
    is insecure). The repr hides both values so they never reach a log.
    """

    share: int
    dealer_alpha: int | None = None

    def __repr__(self) -> str:
        return "MacKey(<hidden>)"


def write_mac_key(path: Path, key: MacKey, *, overwrite: bool = False) -> None:
    """Write a MAC key share file (mode 0600)."""
    lines = [
        "# vcpd MAC key share: secret, never share or commit this file",
        f'share = "{key.share}"',
    ]
    if key.dealer_alpha is not None:
        lines.append("# dealer mode: this VCP knows the whole MAC key (insecure by construction)")
        lines.append(f'dealer_alpha = "{key.dealer_alpha}"')
    write_secret_file(path, "\n".join(lines) + "\n", overwrite=overwrite)


def load_mac_key(path: Path, prime: int) -> MacKey:
    """Load a MAC key share file and check its values lie in [0, prime)."""
    text = _read_secret_file(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not a MAC key file: {exc}", path=str(path)) from None
    unknown = set(data) - {"share", "dealer_alpha"}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}", path=str(path))

    def number(name: str) -> int | None:
        if name not in data:
            return None
        value = data[name]
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError("expected an integer string", path=str(path), key=name) from None
        if not 0 <= number < prime:
            raise ConfigError("value is not an element of the VC's field", path=str(path), key=name)
        return number

    share = number("share")
    if share is None:
        raise ConfigError("missing key", path=str(path), key="share")
    return MacKey(share=share, dealer_alpha=number("dealer_alpha"))


def random_field_element(prime: int) -> int:
    """A uniform element of [0, prime) from the OS CSPRNG."""
    return secrets.randbelow(prime)
