"""Small cryptographic helpers shared by the handshake and the channel.

Everything here is a thin, typed wrapper around libsodium (through pynacl) and
:mod:`hashlib`'s BLAKE2b, so that the choice of primitives lives in one place and
the rest of :mod:`vcpd.wire` never touches raw bindings.

This module must not import trio, sockets, or any vcpd module other than
:mod:`vcpd.errors`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from nacl._sodium import ffi as _ffi
from nacl._sodium import lib as _lib
from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
    crypto_scalarmult,
    crypto_scalarmult_base,
)
from nacl.exceptions import CryptoError

KEY_BYTES: Final = 32
"""Length of every symmetric key, X25519 key and Ed25519 public key."""

HASH_BYTES: Final = 32
"""Length of the transcript hash (BLAKE2b-256)."""

TAG_BYTES: Final = 16
"""Poly1305 authentication tag of the handshake AEAD (ChaCha20-Poly1305)."""

SIGNATURE_BYTES: Final = 64
"""Length of an Ed25519 signature."""

NONCE_BYTES: Final = 12
"""ChaCha20-Poly1305 (IETF) nonce length (the handshake AEAD)."""

_NONCE_PREFIX: Final = bytes(4)


class AuthFailure(Exception):
    """Internal: an AEAD ciphertext did not authenticate.

    Callers translate it into the right :class:`vcpd.errors.WireError`
    subclass with a message that fits their context.
    """


def counter_nonce(counter: int) -> bytes:
    """Return the 12-byte IETF nonce for a 64-bit handshake message counter.

    A counter nonce (never a random one) is what makes replay and reordering
    detectable: the receiver only ever tries the next expected value.
    """
    return _NONCE_PREFIX + counter.to_bytes(8, "little")


def seal(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` (ChaCha20-Poly1305 IETF)."""
    return crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    """Decrypt ``ciphertext``; raise :class:`AuthFailure` if it is not authentic."""
    if len(ciphertext) < TAG_BYTES:
        raise AuthFailure("ciphertext shorter than its tag")
    try:
        return crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key)
    except CryptoError:
        raise AuthFailure("authentication tag mismatch") from None


# Frame buffers are filled completely by the header and libsodium: no need to zero them.
_new_buffer = _ffi.new_allocator(should_clear_after_alloc=False)


class FrameCipher:
    """A traffic AEAD: how a channel seals and opens its frames.

    libsodium's ChaCha20-Poly1305 (IETF) and AEGIS-256 share one calling
    convention and differ only in nonce and tag lengths, so one class holds
    the zero-copy framing for both and an instance per primitive names it.
    Nonces are ``zero prefix ‖ u64 LE counter`` filling the cipher's nonce
    length, so that the receiver only ever tries the next counter value.

    Attributes:
        name: the name on the wire (handshake identity blocks).
        nonce_bytes: the primitive's nonce length.
        tag_bytes: the authentication tag appended to every frame.
    """

    __slots__ = ("_decrypt", "_encrypt", "_nonce_prefix", "name", "nonce_bytes", "tag_bytes")

    def __init__(
        self, name: str, *, nonce_bytes: int, tag_bytes: int, encrypt: Callable[..., int], decrypt: Callable[..., int]
    ) -> None:
        self.name = name
        self.nonce_bytes = nonce_bytes
        self.tag_bytes = tag_bytes
        self._encrypt = encrypt
        self._decrypt = decrypt
        self._nonce_prefix = bytes(nonce_bytes - 8)

    def __repr__(self) -> str:
        return f"<FrameCipher {self.name}>"

    def nonce(self, counter: int) -> bytes:
        """The nonce of frame number ``counter`` (a counter, never random: see the class)."""
        return self._nonce_prefix + counter.to_bytes(8, "little")

    def seal_frame(self, key: bytes, nonce: bytes, header: bytes, plaintext: bytes | memoryview) -> bytes:
        """``header ‖ AEAD(key, nonce, plaintext, ad=header) ‖ tag`` built in one buffer.

        ``plaintext`` (any contiguous buffer, e.g. a slice of a large message)
        is encrypted where it lies and the result is copied once.
        """
        if len(key) != KEY_BYTES or len(nonce) != self.nonce_bytes:
            raise ValueError("bad key or nonce length")
        source = _ffi.from_buffer(plaintext)
        size = len(source)
        head = len(header)
        out = _new_buffer("unsigned char[]", head + size + self.tag_bytes)
        _ffi.memmove(out, header, head)
        written = _ffi.new("unsigned long long *")
        rc = self._encrypt(out + head, written, source, size, header, head, _ffi.NULL, nonce, key)
        if rc != 0 or written[0] != size + self.tag_bytes:
            raise RuntimeError("libsodium failed to encrypt a frame")
        return _ffi.buffer(out)[:]

    def open_frame_into(self, key: bytes, nonce: bytes, frame: bytes, head: int, out: bytearray | memoryview) -> None:
        """Authenticate ``frame`` (``header ‖ ciphertext ‖ tag``, the header of ``head``
        bytes as associated data) and decrypt its body straight into ``out``.

        ``out`` must be writable and exactly as long as the plaintext. Nothing
        but zeros is written to it unless the frame is authentic.

        Raises:
            AuthFailure: the frame is not authentic (or too short).
        """
        if len(key) != KEY_BYTES or len(nonce) != self.nonce_bytes:
            raise ValueError("bad key or nonce length")
        sealed = len(frame) - head
        if sealed < self.tag_bytes:
            raise AuthFailure("ciphertext shorter than its tag")
        target = _ffi.from_buffer(out, require_writable=True)
        if len(target) != sealed - self.tag_bytes:
            raise ValueError("output buffer does not fit the plaintext")
        source = _ffi.from_buffer(frame)
        written = _ffi.new("unsigned long long *")
        rc = self._decrypt(target, written, _ffi.NULL, source + head, sealed, source, head, nonce, key)
        if rc != 0:
            raise AuthFailure("authentication tag mismatch")

    def open_frame(self, key: bytes, nonce: bytes, frame: bytes, head: int) -> bytes:
        """:meth:`open_frame_into` returning a new ``bytes`` (one copy, no slicing of ``frame``)."""
        sealed = len(frame) - head
        if sealed < self.tag_bytes:
            raise AuthFailure("ciphertext shorter than its tag")
        out = _new_buffer("unsigned char[]", max(sealed - self.tag_bytes, 1))
        view = _ffi.buffer(out, sealed - self.tag_bytes)
        self.open_frame_into(key, nonce, frame, head, view)
        return view[:]


CHACHA20POLY1305: Final = FrameCipher(
    "chacha20poly1305", nonce_bytes=NONCE_BYTES, tag_bytes=TAG_BYTES,
    encrypt=_lib.crypto_aead_chacha20poly1305_ietf_encrypt, decrypt=_lib.crypto_aead_chacha20poly1305_ietf_decrypt,
)  # fmt: skip
"""ChaCha20-Poly1305 (IETF): fast everywhere, so every vcpd supports it."""

AEGIS256: Final = FrameCipher(
    "aegis256", nonce_bytes=32, tag_bytes=32,
    encrypt=_lib.crypto_aead_aegis256_encrypt, decrypt=_lib.crypto_aead_aegis256_decrypt,
)  # fmt: skip
"""AEGIS-256 (32-byte nonce and tag): several times faster than ChaCha20-Poly1305
with hardware AES, far slower without it (see :func:`fast_ciphers`)."""

TRAFFIC_CIPHERS: Final[Mapping[str, FrameCipher]] = MappingProxyType({c.name: c for c in (AEGIS256, CHACHA20POLY1305)})
"""Every traffic AEAD this implementation can run, by wire name."""

MAX_TAG_BYTES: Final = max(c.tag_bytes for c in TRAFFIC_CIPHERS.values())
"""The longest tag of any traffic AEAD (bounds the size of a frame on the wire)."""


def fast_ciphers() -> tuple[str, ...]:
    """The traffic AEADs this process runs fast, fastest first.

    libsodium runs AEGIS-256 with hardware AES when the CPU has AES-NI and
    AVX (x86) or the ARMv8 crypto extensions, and in software otherwise, some
    fifty times slower than ChaCha20-Poly1305: so AEGIS-256 is offered only
    with hardware AES. ``crypto_aead_aes256gcm_is_available()`` reports
    AES-NI, PCLMUL and AVX (x86; libsodium >= 1.0.19, as is every libsodium
    with AEGIS) or the ARMv8 crypto extensions, which implies AEGIS-256's
    hardware path. libsodium reads the CPU features in ``sodium_init()``,
    which importing :mod:`nacl.bindings` (above) has run.
    """
    if _lib.crypto_aead_aes256gcm_is_available() == 1:
        return (AEGIS256.name, CHACHA20POLY1305.name)
    return (CHACHA20POLY1305.name,)


def transcript_start(protocol_name: bytes) -> bytes:
    """The initial transcript hash: a digest of the protocol name and version."""
    return hashlib.blake2b(protocol_name, digest_size=HASH_BYTES).digest()


def mix(transcript: bytes, data: bytes) -> bytes:
    """Absorb ``data`` into the running transcript hash (Noise's MixHash).

    ``transcript`` has a fixed length, so ``transcript || data`` is unambiguous.
    """
    return hashlib.blake2b(transcript + data, digest_size=HASH_BYTES).digest()


def derive_key(secret: bytes, transcript: bytes, label: bytes) -> bytes:
    """Derive a 32-byte key from a DH ``secret`` bound to a ``transcript`` hash.

    Keyed BLAKE2b with a distinct ``label`` per purpose and direction, so that
    no two keys of a connection coincide even though they share the secret.
    """
    return hashlib.blake2b(label + transcript, key=secret, digest_size=KEY_BYTES).digest()


def x25519_keypair(secret: bytes) -> tuple[bytes, bytes]:
    """Return ``(secret, public)`` for an X25519 secret scalar (clamped by libsodium)."""
    return secret, crypto_scalarmult_base(secret)


def x25519(secret: bytes, public: bytes) -> bytes | None:
    """X25519 Diffie-Hellman; ``None`` when ``public`` is a low-order point.

    libsodium refuses an all-zero shared secret (the result for small-subgroup
    points); pynacl reports that as a RuntimeError, which we must not leak.
    """
    try:
        shared = crypto_scalarmult(secret, public)
    except Exception:  # pynacl raises RuntimeError for the all-zero result
        return None
    if hmac.compare_digest(shared, bytes(KEY_BYTES)):
        return None
    return shared


def b64(key: bytes) -> str:
    """Standard base64 of a *public* key, the form used in configs and messages."""
    return base64.b64encode(key).decode("ascii")


class Transcript:
    """Noise-style symmetric state of one handshake side.

    Holds the running transcript hash, the ephemeral-ephemeral DH secret and
    the handshake keys derived from it, so that the handshake state machine
    only says *what* to absorb, seal or open, never *how*.

    Args:
        protocol_name: absorbed first, so different protocols never agree.
        initiator: which direction is "send" for this side.
    """

    _REFUSAL_NONCE: Final = b"\xff" * NONCE_BYTES  # never a counter value in the handshake

    def __init__(self, protocol_name: bytes, *, initiator: bool) -> None:
        self.hash = transcript_start(protocol_name)
        self._initiator = initiator
        self._keyed_hash: bytes | None = None  # the hash when handshake keys were derived
        self._secret = self._send = self._receive = b""

    @property
    def has_keys(self) -> bool:
        """Handshake keys exist: refusals can be encrypted."""
        return self._keyed_hash is not None

    def mix(self, data: bytes) -> None:
        """Absorb ``data`` into the transcript hash."""
        self.hash = mix(self.hash, data)

    def derive(self, shared: bytes) -> None:
        """Derive the handshake keys from the DH ``shared`` secret and the hash so far."""
        self._keyed_hash, self._secret = self.hash, shared
        i2r = derive_key(shared, self.hash, b"vcpd/1 handshake i2r")
        r2i = derive_key(shared, self.hash, b"vcpd/1 handshake r2i")
        self._send, self._receive = (i2r, r2i) if self._initiator else (r2i, i2r)

    def seal(self, counter: int, plaintext: bytes) -> bytes:
        """Encrypt a handshake payload bound to the current hash."""
        return seal(self._send, counter_nonce(counter), plaintext, self.hash)

    def open(self, counter: int, ciphertext: bytes) -> bytes:
        """Decrypt a handshake payload bound to the current hash (or raise AuthFailure)."""
        return open_sealed(self._receive, counter_nonce(counter), ciphertext, self.hash)

    def seal_refusal(self, body: bytes) -> bytes:
        """Encrypt a refusal; bound to the hash both sides share once keys exist."""
        assert self._keyed_hash is not None
        return seal(self._send, self._REFUSAL_NONCE, body, self._keyed_hash)

    def open_refusal(self, ciphertext: bytes) -> bytes:
        """Decrypt the other side's refusal (or raise AuthFailure)."""
        if self._keyed_hash is None:
            raise AuthFailure("no handshake keys yet")
        return open_sealed(self._receive, self._REFUSAL_NONCE, ciphertext, self._keyed_hash)

    def traffic_keys(self) -> tuple[bytes, bytes]:
        """``(send, receive)`` channel keys from the secret and the *final* hash."""
        i2r = derive_key(self._secret, self.hash, b"vcpd/1 traffic i2r")
        r2i = derive_key(self._secret, self.hash, b"vcpd/1 traffic r2i")
        return (i2r, r2i) if self._initiator else (r2i, i2r)

    def wipe(self) -> None:
        """Drop secrets as soon as the channel holds its own keys (best effort in Python)."""
        self._secret = self._send = self._receive = b""
