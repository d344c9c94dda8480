"""Mutually authenticated key exchange for peer and client connections (sans-IO).

Pattern: Noise XX with SIGMA-style signatures instead of static DH, plus a
verdict message (docs/protocol.md, "Connections and handshake")::

    1  I -> R  HELLO     version, role, e_I                                (clear)
    2  R -> I  RESPONSE  e_R, AEAD[ key_R, party_R, params_R, ciphers_R, sig_R ]
    3  I -> R  IDENTIFY  AEAD[ key_I, party_I, expected, params_I, cipher_I, sig_I ]
    4  R -> I  ACCEPT    AEAD[ empty ] over the whole transcript
    *  either  REFUSE    {kind, message, diffs}, encrypted once keys exist

Both sides contribute a fresh X25519 ephemeral; every message is absorbed into
a BLAKE2b transcript hash that starts from the protocol name. Identities are
long-term Ed25519 signing keys, sent only encrypted under the ephemeral-
ephemeral key; each side signs the transcript so far together with its own
identity block, so the signature binds both ephemerals and the signer's key.
Session keys come from the DH secret and the final transcript hash.

The handshake's own AEAD is always ChaCha20-Poly1305; the channel's (traffic)
AEAD is negotiated: the responder offers the ones it runs fast, in its order
of preference, and the initiator picks the first it supports. Both are in
signed blocks and in the transcript, so nobody on the path can downgrade it.

The state machines only turn bytes into bytes; the websocket layer moves
them. This module must not import trio, sockets, or any vcpd module other
than :mod:`vcpd.errors`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, NoReturn

import nacl.utils
from nacl.signing import SigningKey, VerifyKey

from vcpd.errors import AuthenticationError, HandshakeError, WireError

from . import _crypto as c
from ._crypto import fast_ciphers
from ._identity import (
    Identity,
    MalformedIdentity,
    decode_signed,
    encode_initiator_block,
    encode_responder_block,
    encode_signed,
)
from ._refusal import KIND_AUTH, KIND_PARAMS, KIND_PROTOCOL, KIND_REFUSED, encode_refusal, refusal_error
from .channel import Channel
from .limits import ChannelLimits
from .params import Difference, compare_params, mismatch_error, validate_params

__all__ = [
    "MAX_HANDSHAKE_MESSAGE",
    "PROTOCOL_NAME",
    "VERSION",
    "Handshake",
    "HandshakeResult",
    "Role",
    "fast_ciphers",
]

Role = Literal["peer", "client"]

PROTOCOL_NAME: Final = b"vcpd/2 XX-sig X25519 Ed25519 ChaCha20-Poly1305 BLAKE2b"
"""Absorbed first into the transcript: both sides must speak exactly this.
(ChaCha20-Poly1305 is the handshake's AEAD; the traffic AEAD is negotiated.)"""

VERSION: Final = 2
"""Handshake version, in clear in HELLO so that a mismatch gets a clear refusal.
Version 2 added the traffic AEAD negotiation to the identity blocks."""

MAX_HANDSHAKE_MESSAGE: Final = 64 * 1024
"""Largest handshake message sent or accepted (bounds the parameters mapping)."""

_HELLO, _RESPONSE, _IDENTIFY, _ACCEPT, _REFUSE = 1, 2, 3, 4, 15
_ROLE_CODES: Final[dict[str, int]] = {"peer": 1, "client": 2}
_SIG_RESPONDER: Final = b"vcpd/1 responder signature\x00"
_SIG_INITIATOR: Final = b"vcpd/1 initiator signature\x00"
_MAX_BLOCK: Final = MAX_HANDSHAKE_MESSAGE - 256  # room for type, e_R, signature, framing and tag


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    """What a completed handshake established.

    Attributes:
        role: "peer" (VCP to VCP) or "client" (client to VCP).
        initiator: whether this side opened the connection.
        peer_key: the other side's verified Ed25519 identity public key.
        peer_party: the other side's party id (``None`` for a client).
        peer_params: the VC parameters the other side sent (empty for a client).
        handshake_hash: final transcript hash, equal on both sides; upper
            layers may use it as a channel binding.
        channel: the encrypted channel, ready in both directions, with the
            negotiated traffic AEAD.
    """

    role: Role
    initiator: bool
    peer_key: bytes
    peer_party: int | None
    peer_params: Mapping[str, str]
    handshake_hash: bytes
    channel: Channel

    @property
    def cipher(self) -> str:
        """The negotiated traffic AEAD's name ("aegis256", "chacha20poly1305"), for logs."""
        return self.channel.cipher.name

    @property
    def peer_key_b64(self) -> str:
        """The peer's identity key in the base64 form used in configs."""
        return c.b64(self.peer_key)


class Handshake:
    """One side of one handshake. Build it with :meth:`initiator` or :meth:`responder`.

    Drive it with the messages of the connection: the initiator sends
    :meth:`start`, then each side passes every received message to
    :meth:`receive` and sends what it returns, until :attr:`done`. If
    :meth:`receive` raises, send :attr:`refusal` (when not ``None``) so the
    other side learns why, then close the connection.
    """

    def __init__(
        self,
        *,
        initiator: bool,
        identity: SigningKey,
        role: Role,
        params: Mapping[str, str] | None,
        party: int | None,
        expected_key: bytes | None = None,
        expected_party: int | None = None,
        peer_keys: Mapping[int, bytes] | None = None,
        limits: ChannelLimits | None = None,
        ciphers: Sequence[str] | None = None,
        random: Callable[[int], bytes] = nacl.utils.random,
    ) -> None:
        if role not in _ROLE_CODES:
            raise ValueError(f"role must be 'peer' or 'client', not {role!r}")
        for key in [expected_key, *(peer_keys or {}).values()]:
            if key is not None and (not isinstance(key, bytes) or len(key) != c.KEY_BYTES):
                raise ValueError("an Ed25519 public key is 32 bytes")
        self._initiator = initiator
        self._identity = identity
        self._key = bytes(identity.verify_key)
        self._role: Role = role
        self._params = None if params is None else validate_params(params, what="our VC parameters")
        self._ciphers = _check_ciphers(fast_ciphers() if ciphers is None else ciphers)
        if len(encode_responder_block(self._key, party, self._params or {}, self._ciphers)) > _MAX_BLOCK:
            raise ValueError("our VC parameters are too large for a handshake message")
        self._party = party
        self._expected_key = expected_key
        self._expected_party = expected_party
        self._peer_keys = dict(peer_keys or {})
        self._limits = limits
        self._random = random
        self._state = "start" if initiator else "hello"
        self._t = c.Transcript(PROTOCOL_NAME, initiator=initiator)
        self._e_secret = b""
        if initiator:
            self._who = "the VCP" if expected_party is None else f"party {expected_party}"
        else:
            self._who = f"the connecting {role}"
        self._peer: Identity | None = None
        self._cipher: str | None = None  # the traffic AEAD, once the initiator chose it
        self._result: HandshakeResult | None = None
        self.refusal: bytes | None = None
        """After :meth:`receive` raised: the message to send the other side, if any."""

    @classmethod
    def initiator(
        cls,
        identity: SigningKey,
        *,
        role: Role,
        expected_key: bytes,
        params: Mapping[str, str] | None = None,
        party: int | None = None,
        expected_party: int | None = None,
        limits: ChannelLimits | None = None,
        ciphers: Sequence[str] | None = None,
        random: Callable[[int], bytes] = nacl.utils.random,
    ) -> Handshake:
        """The side that opens the connection.

        Args:
            identity: our long-term Ed25519 key.
            role: "peer" when we are a VCP dialling another VCP, "client" when
                we are a client dialling a VCP.
            expected_key: the pinned identity key of the VCP we dial.
            params: role "peer": our VC parameters, sent and compared (required).
                Role "client": the parameters we expect the VC to have,
                compared if given, never sent.
            party: our party id (required for "peer", absent for "client").
            expected_party: the party id of the VCP we dial (required for "peer").
            limits: limits of the resulting channel.
            ciphers: the traffic AEADs we accept ("aegis256",
                "chacha20poly1305"); default: :func:`fast_ciphers`. We take
                the first one of the responder's offer that is in here.
            random: CSPRNG for the ephemeral key; override only in tests.
        """
        if role == "peer" and (params is None or party is None or expected_party is None):
            raise ValueError("a peer initiator needs params, party and expected_party")
        if role == "client" and party is not None:
            raise ValueError("a client has no party id")
        return cls(
            initiator=True, identity=identity, role=role, params=params, party=party, expected_key=expected_key,
            expected_party=expected_party, limits=limits, ciphers=ciphers, random=random,
        )  # fmt: skip

    @classmethod
    def responder(
        cls,
        identity: SigningKey,
        *,
        role: Role,
        params: Mapping[str, str],
        party: int | None = None,
        peer_keys: Mapping[int, bytes] | None = None,
        limits: ChannelLimits | None = None,
        ciphers: Sequence[str] | None = None,
        random: Callable[[int], bytes] = nacl.utils.random,
    ) -> Handshake:
        """The side that accepted the connection (always a VCP).

        Args:
            identity: our long-term Ed25519 key.
            role: the kind of connection this endpoint serves.
            params: our VC parameters, sent in both roles and compared for "peer".
            party: our party id (required for "peer").
            peer_keys: party id -> pinned Ed25519 key of every other VCP (role
                "peer"). Clients are accepted with any key: what a client may
                do is decided above this layer.
            limits: limits of the resulting channel.
            ciphers: the traffic AEADs we offer, in our order of preference
                ("aegis256", "chacha20poly1305"); default: :func:`fast_ciphers`,
                AEGIS-256 first when this process has hardware AES.
            random: CSPRNG for the ephemeral key; override only in tests.
        """
        if role == "peer" and (party is None or not peer_keys):
            raise ValueError("a peer responder needs party and peer_keys")
        return cls(
            initiator=False, identity=identity, role=role, params=params, party=party, peer_keys=peer_keys,
            limits=limits, ciphers=ciphers, random=random,
        )  # fmt: skip

    # ------------------------------------------------------------------ surface

    @property
    def done(self) -> bool:
        """The handshake completed: :attr:`result` is available."""
        return self._result is not None

    @property
    def result(self) -> HandshakeResult:
        """The outcome; raises :class:`HandshakeError` before :attr:`done`."""
        if self._result is None:
            raise HandshakeError("handshake not complete")
        return self._result

    def start(self) -> bytes:
        """Initiator only: the first message (HELLO)."""
        if self._state != "start":
            raise HandshakeError("start() is for a fresh initiator only")
        self._e_secret, e_public = c.x25519_keypair(self._random(c.KEY_BYTES))
        hello = bytes((_HELLO, VERSION, _ROLE_CODES[self._role])) + e_public
        self._t.mix(hello)
        self._state = "response"
        return hello

    def receive(self, message: bytes) -> bytes | None:
        """Process one message from the other side.

        Returns:
            The message to send in reply, or ``None`` when there is none.

        Raises:
            AuthenticationError: unknown or unexpected key, bad signature,
                or a message that failed authentication.
            ParameterMismatch: the other side runs a different VC.
            HandshakeError: anything else, including a refusal by the other side.
        """
        state = self._state
        if state in ("done", "failed"):
            raise HandshakeError(f"handshake already {state}")
        if state == "start":
            raise HandshakeError("start() the initiator before receiving")
        if not isinstance(message, bytes | bytearray | memoryview):
            self._protocol_error("handshake message is not bytes", "malformed message")
        message = bytes(message)
        if len(message) > MAX_HANDSHAKE_MESSAGE:
            self._protocol_error(f"oversized handshake message from {self._who}", "oversized message")
        if message[:1] == bytes((_REFUSE,)) and state != "hello":
            self._on_refusal(message)
        if state == "hello":
            return self._on_hello(message)
        if state == "response":
            return self._on_response(message)
        if state == "identify":
            return self._on_identify(message)
        self._on_accept(message)
        return None

    def refuse(self, reason: str) -> bytes:
        """Abandon the handshake for a reason of our own; return the refusal to send.

        ``reason`` is shown to the other side: no secrets in it.
        """
        if self._state in ("done", "failed"):
            raise HandshakeError(f"handshake already {self._state}")
        self._state = "failed"
        self.refusal = self._make_refusal(KIND_REFUSED, reason)
        return self.refusal

    # ------------------------------------------------------------ the messages

    def _on_hello(self, message: bytes) -> bytes:
        if len(message) != 3 + c.KEY_BYTES or message[0] != _HELLO:
            self._protocol_error(f"malformed hello from {self._who}", "malformed hello")
        if message[1] != VERSION:
            self._protocol_error(
                f"{self._who} speaks handshake version {message[1]}, we speak {VERSION}",
                f"unsupported handshake version {message[1]}: this VCP speaks version {VERSION}",
            )
        if message[2] != _ROLE_CODES[self._role]:
            self._protocol_error(
                f"{self._who} sent role code {message[2]} to a {self._role} endpoint",
                f"this endpoint accepts {self._role} connections only",
            )
        self._t.mix(message)
        self._e_secret, e_public = c.x25519_keypair(self._random(c.KEY_BYTES))
        self._derive_handshake_keys(e_public, message[3:])
        block = encode_responder_block(self._key, self._party, self._params or {}, self._ciphers)
        self._state = "identify"
        return bytes((_RESPONSE,)) + e_public + self._seal_signed(block, _SIG_RESPONDER)

    def _on_response(self, message: bytes) -> bytes:
        if len(message) < 1 + c.KEY_BYTES + c.TAG_BYTES or message[0] != _RESPONSE:
            self._protocol_error(f"malformed handshake response from {self._who}", "malformed response")
        e_public, ciphertext = message[1 : 1 + c.KEY_BYTES], message[1 + c.KEY_BYTES :]
        self._derive_handshake_keys(e_public, e_public)
        peer = self._open_signed(ciphertext, _SIG_RESPONDER)
        assert self._expected_key is not None
        if not hmac.compare_digest(peer.key, self._expected_key):
            self._auth_error(
                f"{self._who} presented identity key {c.b64(peer.key)}, "
                f"but the key pinned for it is {c.b64(self._expected_key)}",
                f"expected identity key {c.b64(self._expected_key)}, got {c.b64(peer.key)}",
            )
        if self._expected_party is not None and peer.party != self._expected_party:
            self._auth_error(
                f"the VCP with key {c.b64(peer.key)} says it is party {peer.party}, not {self._expected_party}",
                f"expected party {self._expected_party}, you say you are party {peer.party}",
            )
        if self._params is not None and peer.params is not None:
            self._check_params(peer.params)
        self._cipher = self._choose_cipher(peer.offered)
        self._peer = peer
        self._t.mix(ciphertext)
        sent = self._params if self._role == "peer" else None
        block = encode_initiator_block(self._key, self._party, self._expected_party, sent, self._cipher)
        self._state = "accept"
        return bytes((_IDENTIFY,)) + self._seal_signed(block, _SIG_INITIATOR)

    def _on_identify(self, message: bytes) -> bytes:
        if len(message) < 1 + c.TAG_BYTES or message[0] != _IDENTIFY:
            self._protocol_error(f"malformed identification from {self._who}", "malformed identification")
        peer = self._open_signed(message[1:], _SIG_INITIATOR)
        if self._role == "peer":
            self._check_peer_identity(peer)
            if peer.params is None:
                self._protocol_error(f"{self._who} sent no VC parameters", "no VC parameters sent")
            self._check_params(peer.params)
        elif peer.party is not None or peer.expected_party not in (None, self._party):
            self._auth_error(
                f"{self._who} claims party {peer.party} and expects party {peer.expected_party}",
                "a client must not claim a party id and must expect this VCP's party id",
            )
        if peer.chosen not in self._ciphers:
            offered = ", ".join(self._ciphers)
            self._protocol_error(
                f"{self._who} chose traffic cipher {peer.chosen}, which we did not offer (we offered {offered})",
                f"traffic cipher {peer.chosen} was not offered: this VCP offers {offered}",
            )
        self._cipher = peer.chosen
        self._peer = peer
        self._t.mix(message[1:])
        verdict = bytes((_ACCEPT,)) + self._t.seal(1, b"")
        self._finish()
        return verdict

    def _on_accept(self, message: bytes) -> None:
        if len(message) != 1 + c.TAG_BYTES or message[0] != _ACCEPT:
            self._protocol_error(f"malformed verdict from {self._who}", "malformed verdict")
        try:
            self._t.open(1, message[1:])
        except c.AuthFailure:
            self._auth_error(f"the verdict of {self._who} failed authentication", "verdict failed authentication")
        self._finish()

    def _on_refusal(self, message: bytes) -> NoReturn:
        self._state = "failed"
        self.refusal = None  # never answer a refusal
        if len(message) < 2 or message[1] not in (0, 1):
            raise HandshakeError(f"refused by {self._who} (unreadable reason)")
        body = message[2:]
        if message[1] == 1:
            try:
                body = self._t.open_refusal(body)
            except c.AuthFailure:
                raise HandshakeError(f"{self._who} refused the handshake; its reason failed authentication") from None
        identified = self._initiator or self._peer is not None
        raise refusal_error(body, who=self._who, authenticated=message[1] == 1, identified=identified)

    # ------------------------------------------------------------------ helpers

    def _derive_handshake_keys(self, e_responder: bytes, their_public: bytes) -> None:
        self._t.mix(e_responder)
        shared = c.x25519(self._e_secret, their_public)
        self._e_secret = b""
        if shared is None:  # no usable keys: the refusal goes in clear
            self._protocol_error(f"{self._who} sent an invalid ephemeral key", "invalid ephemeral key")
        self._t.derive(shared)

    def _seal_signed(self, block: bytes, label: bytes) -> bytes:
        payload = encode_signed(block, _sign(self._identity, label + self._t.hash + block))
        ciphertext = self._t.seal(0, payload)
        self._t.mix(ciphertext)
        return ciphertext

    def _open_signed(self, ciphertext: bytes, label: bytes) -> Identity:
        """Decrypt, decode and verify the other side's signed identity block."""
        try:
            payload = self._t.open(0, ciphertext)
        except c.AuthFailure:
            self._auth_error(
                f"handshake message from {self._who} failed authentication (tampered with, or not vcpd)",
                "your handshake message failed authentication",
            )
        try:
            block, signature, peer = decode_signed(payload, initiator=label == _SIG_INITIATOR)
        except MalformedIdentity as exc:
            self._protocol_error(f"malformed identity from {self._who}: {exc}", f"malformed identity: {exc}")
        if not self._initiator:
            self._who = f"party {peer.party}" if self._role == "peer" else f"client {c.b64(peer.key)}"
        try:  # the signer signed exactly the transcript we hold now
            VerifyKey(peer.key).verify(label + self._t.hash + block, signature)
        except Exception:  # BadSignatureError, or a key that is not a curve point
            self._auth_error(
                f"bad handshake signature from {self._who} (key {c.b64(peer.key)})",
                "your handshake signature does not verify",
            )
        return peer

    def _check_peer_identity(self, peer: Identity) -> None:
        key, party = peer.key, peer.party
        pinned = self._peer_keys.get(party) if party is not None else None
        if pinned is None or not hmac.compare_digest(pinned, key):
            owner = next((p for p, k in self._peer_keys.items() if hmac.compare_digest(k, key)), None)
            detail = f"; that key is pinned for party {owner}" if owner is not None else ""
            if pinned is None:
                local = f"unknown peer: identity key {c.b64(key)} claims party {party}, which has no pinned key"
            else:
                local = f"identity key {c.b64(key)} claims party {party}, whose pinned key is {c.b64(pinned)}"
            self._auth_error(local + detail, f"party {self._party} does not know key {c.b64(key)} as party {party}")
        if peer.expected_party != self._party:
            self._auth_error(
                f"{self._who} dialled party {peer.expected_party}, but this is party {self._party}",
                f"this is party {self._party}, not party {peer.expected_party}",
            )

    def _choose_cipher(self, offered: tuple[str, ...]) -> str:
        """The first traffic AEAD of the responder's offer that we support (its preference rules)."""
        chosen = next((name for name in offered if name in self._ciphers), None)
        if chosen is None:
            theirs, ours = ", ".join(offered), ", ".join(self._ciphers)
            self._protocol_error(
                f"no traffic cipher in common with {self._who}: it offers {theirs}, we support {ours}",
                f"no traffic cipher in common: you offer {theirs}, this side supports {ours}",
            )
        return chosen

    def _check_params(self, theirs: Mapping[str, str]) -> None:
        assert self._params is not None
        diffs = compare_params(self._params, theirs)
        if diffs:
            error = mismatch_error(diffs, prefix=f"VC parameters differ from {self._who}")
            self._fail(error, KIND_PARAMS, "VC parameters differ", diffs)

    def _finish(self) -> None:
        send, receive = self._t.traffic_keys()
        assert self._peer is not None and self._cipher is not None
        peer = self._peer
        channel = Channel(send, receive, cipher=c.TRAFFIC_CIPHERS[self._cipher], limits=self._limits)
        self._result = HandshakeResult(
            role=self._role, initiator=self._initiator, peer_key=peer.key, peer_party=peer.party,
            peer_params=MappingProxyType(dict(peer.params or {})), handshake_hash=self._t.hash, channel=channel,
        )  # fmt: skip
        self._state = "done"
        self._t.wipe()

    def _make_refusal(self, kind: str, message: str, diffs: tuple[Difference, ...] = ()) -> bytes:
        body = encode_refusal(kind, message, diffs, sender=self._party)
        if not self._t.has_keys:
            return bytes((_REFUSE, 0)) + body
        return bytes((_REFUSE, 1)) + self._t.seal_refusal(body)

    def _fail(self, error: WireError, kind: str, message: str, diffs: tuple[Difference, ...] = ()) -> NoReturn:
        """Mark the handshake failed, prepare the refusal for the other side, raise ``error``.

        ``error`` is for our log; ``message`` is the same cause in words meant
        for the other side.
        """
        self._state = "failed"
        self.refusal = self._make_refusal(kind, message, diffs)
        raise error

    def _protocol_error(self, local: str, remote: str) -> NoReturn:
        self._fail(HandshakeError(local), KIND_PROTOCOL, remote)

    def _auth_error(self, local: str, remote: str) -> NoReturn:
        self._fail(AuthenticationError(local), KIND_AUTH, remote)


def _check_ciphers(names: Sequence[str]) -> tuple[str, ...]:
    """Our traffic AEADs as given by the caller: known, distinct, at least one."""
    if isinstance(names, str) or not names:
        raise ValueError("ciphers must be a non-empty sequence of cipher names")
    chosen = tuple(names)
    unknown = [name for name in chosen if name not in c.TRAFFIC_CIPHERS]
    if unknown:
        raise ValueError(f"unknown traffic cipher {unknown[0]!r}: known are {', '.join(c.TRAFFIC_CIPHERS)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError("ciphers repeat a name")
    return chosen


def _sign(identity: SigningKey, data: bytes) -> bytes:
    """Ed25519 signature over ``data`` (a module function so tests can fault it)."""
    return identity.sign(data).signature
