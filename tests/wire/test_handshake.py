"""Handshake state machines: success, authentication, parameters, refusals, garbage."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from vcpd.errors import AuthenticationError, HandshakeError, ParameterMismatch, WireError
from vcpd.wire import _crypto as crypto_module
from vcpd.wire import handshake as hs_module
from vcpd.wire.handshake import Handshake, HandshakeResult, fast_ciphers

KEYS = [SigningKey(bytes([i + 1]) * 32) for i in range(4)]
PUB = [bytes(k.verify_key) for k in KEYS]
PARAMS = {
    "prime": "198766463529478683931867765928436695041",
    "offline": "dealer",
    "parties": "3",
    **{f"party.{i}.key": base64.b64encode(PUB[i]).decode() for i in range(3)},
}


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def peer_pair(
    me: int = 1, them: int = 0, *, params: dict[str, str] | None = None, their_params: dict[str, str] | None = None,
    pinned: dict[int, bytes] | None = None, expected_key: bytes | None = None,
) -> tuple[Handshake, Handshake]:  # fmt: skip
    """Party ``me`` dials party ``them``."""
    initiator = Handshake.initiator(
        KEYS[me], role="peer", expected_key=expected_key or PUB[them], params=params or PARAMS,
        party=me, expected_party=them,
    )  # fmt: skip
    peers = pinned if pinned is not None else {i: PUB[i] for i in range(3) if i != them}
    responder = Handshake.responder(KEYS[them], role="peer", params=their_params or PARAMS, party=them, peer_keys=peers)
    return initiator, responder


def drive(
    initiator: Handshake, responder: Handshake, tamper: Callable[[int, bytes], bytes] | None = None
) -> tuple[HandshakeResult, HandshakeResult]:
    """Run a handshake to completion, like the websocket layer would.

    When a side fails, its refusal is delivered to the other side (which must
    then fail too), and the other side's error is attached to the raised one
    as the attribute ``other``, so tests can check what both logs say.
    """
    message: bytes | None = initiator.start()
    sides = [responder, initiator]
    index = 0
    while message is not None:
        if tamper is not None:
            message = tamper(index, message)
        receiver, sender = sides[index % 2], sides[(index + 1) % 2]
        try:
            message = receiver.receive(message)
        except HandshakeError as error:
            error.other = None  # type: ignore[attr-defined]
            if receiver.refusal is not None:
                with pytest.raises(HandshakeError) as other:
                    sender.receive(receiver.refusal)
                error.other = other.value  # type: ignore[attr-defined]
            raise
        index += 1
    return initiator.result, responder.result


def test_peer_handshake_gives_matching_channels_both_ways() -> None:
    a, b = drive(*peer_pair(1, 0))
    assert a.initiator and not b.initiator
    assert a.role == b.role == "peer"
    assert a.peer_key == PUB[0] and b.peer_key == PUB[1]
    assert a.peer_party == 0 and b.peer_party == 1
    assert dict(a.peer_params) == dict(b.peer_params) == PARAMS
    assert a.handshake_hash == b.handshake_hash and len(a.handshake_hash) == 32
    assert b.peer_key_b64 == b64(PUB[1])
    for sender, receiver in ((a, b), (b, a)):
        for payload in (b"", b"x", bytes(range(256)) * 5000):
            frames = sender.channel.encrypt_message(payload)
            received = [receiver.channel.receive_frame(f) for f in frames]
            assert received[-1] == payload and received[:-1] == [None] * (len(frames) - 1)


def test_fresh_ephemerals_give_fresh_keys() -> None:
    first, _ = drive(*peer_pair())
    second, _ = drive(*peer_pair())
    assert first.handshake_hash != second.handshake_hash
    frame = first.channel.encrypt_message(b"x")[0]
    with pytest.raises(WireError):
        second.channel.receive_frame(frame)


def test_deterministic_given_randomness() -> None:
    def run() -> list[bytes]:
        counter = iter(range(1, 100))
        rand = lambda n: bytes([next(counter)]) * n  # noqa: E731
        i = Handshake.initiator(
            KEYS[1], role="peer", expected_key=PUB[0], params=PARAMS, party=1, expected_party=0, random=rand
        )
        r = Handshake.responder(KEYS[0], role="peer", params=PARAMS, party=0, peer_keys={1: PUB[1]}, random=rand)
        m1 = i.start()
        m2 = r.receive(m1)
        assert m2 is not None
        m3 = i.receive(m2)
        assert m3 is not None
        m4 = r.receive(m3)
        assert m4 is not None and i.receive(m4) is None
        return [m1, m2, m3, m4]

    assert run() == run()


def test_client_handshake_accepts_any_client_key_and_shows_vc_params() -> None:
    client_key = SigningKey.generate()
    client = Handshake.initiator(client_key, role="client", expected_key=PUB[2], params=PARAMS, expected_party=2)
    vcp = Handshake.responder(KEYS[2], role="client", params=PARAMS, party=2)
    c, v = drive(client, vcp)
    assert v.peer_key == bytes(client_key.verify_key) and v.peer_party is None
    assert c.peer_party == 2 and dict(c.peer_params) == PARAMS and dict(v.peer_params) == {}
    frame = c.channel.encrypt_message(b"request")[0]
    assert v.channel.receive_frame(frame) == b"request"
    assert c.channel.receive_frame(v.channel.encrypt_message(b"response")[0]) == b"response"


def test_client_without_expected_params_still_learns_them() -> None:
    client = Handshake.initiator(SigningKey.generate(), role="client", expected_key=PUB[0])
    c, _ = drive(client, Handshake.responder(KEYS[0], role="client", params=PARAMS, party=0))
    assert dict(c.peer_params) == PARAMS


def test_unknown_peer_key_is_refused_on_both_sides() -> None:
    initiator, responder = peer_pair(1, 0, pinned={2: PUB[2]})
    with pytest.raises(AuthenticationError) as caught:
        drive(initiator, responder)
    text = str(caught.value)
    assert b64(PUB[1]) in text and "party 1" in text
    other = caught.value.other  # type: ignore[attr-defined]
    assert isinstance(other, AuthenticationError) and str(other).startswith("refused by party 0:")


def test_stolen_party_id_is_refused() -> None:
    # Party 2's key claiming to be party 1: the error names the real owner.
    initiator = Handshake.initiator(KEYS[2], role="peer", expected_key=PUB[0], params=PARAMS, party=1, expected_party=0)
    responder = Handshake.responder(KEYS[0], role="peer", params=PARAMS, party=0, peer_keys={1: PUB[1], 2: PUB[2]})
    with pytest.raises(AuthenticationError, match="pinned for party 2"):
        drive(initiator, responder)


def test_peer_dialling_the_wrong_party_is_refused() -> None:
    # Party 1 thinks party 2 listens there, and pinned party 0's key for it.
    initiator = Handshake.initiator(KEYS[1], role="peer", expected_key=PUB[0], params=PARAMS, party=1, expected_party=2)
    responder = Handshake.responder(KEYS[0], role="peer", params=PARAMS, party=0, peer_keys={1: PUB[1]})
    with pytest.raises(AuthenticationError, match="says it is party 0, not 2"):
        drive(initiator, responder)


def test_client_expecting_another_vcp_key_is_refused() -> None:
    client = Handshake.initiator(SigningKey.generate(), role="client", expected_key=PUB[1])
    vcp = Handshake.responder(KEYS[0], role="client", params=PARAMS, party=0)
    with pytest.raises(AuthenticationError) as caught:
        drive(client, vcp)
    assert b64(PUB[0]) in str(caught.value) and b64(PUB[1]) in str(caught.value)
    assert isinstance(caught.value.other, AuthenticationError)  # type: ignore[attr-defined]


@pytest.mark.parametrize("who", ["responder", "initiator"])
def test_bad_signature_is_refused(monkeypatch: pytest.MonkeyPatch, who: str) -> None:
    real_sign = hs_module._sign
    victim = KEYS[0] if who == "responder" else KEYS[1]

    def broken_sign(identity: SigningKey, data: bytes) -> bytes:
        signature = real_sign(identity, data)
        return bytes([signature[0] ^ 1]) + signature[1:] if identity is victim else signature

    monkeypatch.setattr(hs_module, "_sign", broken_sign)
    with pytest.raises(AuthenticationError, match="bad handshake signature") as caught:
        drive(*peer_pair(1, 0))
    assert isinstance(caught.value.other, AuthenticationError)  # type: ignore[attr-defined]


@pytest.mark.parametrize("index", [0, 1, 2, 3])
@pytest.mark.parametrize("where", [0, 1, 2, 5, 20, 34, 40, -17, -1])
def test_flipped_byte_in_any_handshake_message_fails(index: int, where: int) -> None:
    def tamper(i: int, message: bytes) -> bytes:
        if i != index:
            return message
        at = where % len(message)
        return message[:at] + bytes([message[at] ^ 0x40]) + message[at + 1 :]

    with pytest.raises(HandshakeError):
        drive(*peer_pair(1, 0), tamper=tamper)


def test_parameter_mismatch_names_each_difference_on_both_sides() -> None:
    theirs = dict(PARAMS, prime="170141183460469231731687303715884105727", offline="mascot")
    del theirs["parties"]
    theirs["extra"] = "1"
    initiator, responder = peer_pair(1, 0, their_params=theirs)
    with pytest.raises(ParameterMismatch) as caught:
        drive(initiator, responder)
    mine = caught.value
    assert mine.differences == (
        "extra missing on our side (theirs 1)",
        "offline differs: ours dealer, theirs mascot",
        "parties missing on their side (ours 3)",
        "prime differs: ours 19876646…695041, theirs 17014118…105727",
    )
    assert str(mine).startswith("VC parameters differ from party 0: extra missing")
    other = mine.other  # type: ignore[attr-defined]
    assert isinstance(other, ParameterMismatch)
    assert str(other).startswith("refused by the connecting peer (claiming party 1, unverified): VC parameters differ")
    assert "offline differs: ours mascot, theirs dealer" in other.differences
    assert "prime differs: ours 17014118…105727, theirs 19876646…695041" in other.differences


def test_responder_also_checks_parameters() -> None:
    class Careless(Handshake):
        def _check_params(self, theirs: object) -> None:
            pass

    initiator = Careless.initiator(
        KEYS[1], role="peer", expected_key=PUB[0], params=dict(PARAMS, offline="mascot"), party=1, expected_party=0
    )
    responder = Handshake.responder(KEYS[0], role="peer", params=PARAMS, party=0, peer_keys={1: PUB[1]})
    with pytest.raises(ParameterMismatch, match="from party 1: offline differs: ours dealer, theirs mascot") as caught:
        drive(initiator, responder)
    other = caught.value.other  # type: ignore[attr-defined]
    assert isinstance(other, ParameterMismatch)
    assert other.differences == ("offline differs: ours mascot, theirs dealer",)


def test_client_checks_vc_parameters() -> None:
    client = Handshake.initiator(
        SigningKey.generate(), role="client", expected_key=PUB[0], params=dict(PARAMS, parties="4")
    )
    vcp = Handshake.responder(KEYS[0], role="client", params=PARAMS, party=0)
    with pytest.raises(ParameterMismatch, match="parties differs: ours 4, theirs 3") as caught:
        drive(client, vcp)
    assert isinstance(caught.value.other, ParameterMismatch)  # type: ignore[attr-defined]


def test_long_values_that_abbreviate_alike_are_shown_in_full() -> None:
    a, b = "1" * 20 + "x" + "2" * 20, "1" * 20 + "y" + "2" * 20
    with pytest.raises(ParameterMismatch) as caught:
        drive(*peer_pair(their_params=dict(PARAMS, prime=b), params=dict(PARAMS, prime=a)))
    assert caught.value.differences == (f"prime differs: ours {a}, theirs {b}",)


def test_version_and_role_mismatch_get_clear_refusals() -> None:
    initiator, responder = peer_pair()
    hello = initiator.start()
    with pytest.raises(HandshakeError, match="version 9"):
        responder.receive(hello[:1] + b"\x09" + hello[2:])
    assert responder.refusal is not None
    with pytest.raises(
        HandshakeError, match=r"refused by party 0 \(unauthenticated\): unsupported handshake version 9"
    ):
        initiator.receive(responder.refusal)

    client = Handshake.initiator(SigningKey.generate(), role="client", expected_key=PUB[0])
    with pytest.raises(HandshakeError, match="role code 2 to a peer endpoint") as caught:
        drive(client, peer_pair()[1])
    assert "accepts peer connections only" in str(caught.value.other)  # type: ignore[attr-defined]


def test_explicit_refusal_reaches_the_other_side() -> None:
    initiator, responder = peer_pair()
    message = responder.receive(initiator.start())
    assert message is not None
    refusal = responder.refuse("already connected to party 1")
    with pytest.raises(HandshakeError, match="refused by party 0: already connected to party 1"):
        initiator.receive(message)
        initiator.receive(refusal)
    with pytest.raises(HandshakeError, match="already failed"):
        responder.receive(b"anything")


def test_refusal_text_is_sanitised() -> None:
    initiator, responder = peer_pair()
    message = responder.receive(initiator.start())
    assert message is not None
    initiator.receive(message)
    with pytest.raises(HandshakeError) as caught:
        initiator.receive(responder.refuse("evil\nline\x1b[31m" + "x" * 2000))
    text = str(caught.value)
    assert "\n" not in text and "\x1b" not in text and len(text) < 600


def test_misuse_of_state_machines() -> None:
    initiator, responder = peer_pair()
    with pytest.raises(HandshakeError):
        initiator.receive(b"early")
    with pytest.raises(HandshakeError):
        responder.start()
    with pytest.raises(HandshakeError):
        _ = responder.result
    a, _ = drive(initiator, responder)
    with pytest.raises(HandshakeError, match="already done"):
        initiator.receive(b"late")
    assert a.channel is initiator.result.channel
    with pytest.raises(ValueError):
        Handshake.initiator(KEYS[0], role="peer", expected_key=PUB[1], params=PARAMS)
    with pytest.raises(ValueError):
        Handshake.initiator(KEYS[0], role="client", expected_key=b"short")
    huge = {f"k{i}": "v" * 1000 for i in range(100)}
    with pytest.raises(ValueError, match="too large"):
        Handshake.responder(KEYS[0], role="client", params=huge)
    with pytest.raises(ValueError):
        Handshake.responder(KEYS[0], role="client", params={"k": 5})  # type: ignore[dict-item]


def test_error_messages_contain_no_secret_material() -> None:
    secrets = {b64(bytes(k)) for k in KEYS} | {bytes(k).hex() for k in KEYS}
    initiator, responder = peer_pair(1, 0, pinned={2: PUB[2]})
    with pytest.raises(AuthenticationError) as caught:
        drive(initiator, responder)
    for text in (str(caught.value), str(caught.value.other)):  # type: ignore[attr-defined]
        assert not any(secret in text for secret in secrets)


def _states() -> dict[str, Callable[[], Handshake]]:
    def response() -> Handshake:
        i, _ = peer_pair()
        i.start()
        return i

    def identify() -> Handshake:
        i, r = peer_pair()
        r.receive(i.start())
        return r

    def accept() -> Handshake:
        i, r = peer_pair()
        m = r.receive(i.start())
        assert m is not None
        i.receive(m)
        return i

    return {"hello": lambda: peer_pair()[1], "response": response, "identify": identify, "accept": accept}


STATES = _states()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    state=st.sampled_from(sorted(STATES)),
    garbage=st.binary(max_size=400),
    first=st.sampled_from([None, 1, 2, 3, 4, 15]),
)
def test_garbage_only_raises_wire_errors(state: str, garbage: bytes, first: int | None) -> None:
    machine = STATES[state]()
    if first is not None:
        garbage = bytes([first]) + garbage
    try:
        machine.receive(garbage)
    except WireError:
        assert not machine.done
        with pytest.raises(HandshakeError):
            machine.receive(garbage)


# ------------------------------------------------------------ traffic AEAD

BOTH = ("aegis256", "chacha20poly1305")


def cipher_pair(initiator_ciphers: tuple[str, ...], responder_ciphers: tuple[str, ...]) -> tuple[Handshake, Handshake]:
    """Party 1 dials party 0, each side supporting the given traffic AEADs."""
    initiator = Handshake.initiator(
        KEYS[1], role="peer", expected_key=PUB[0], params=PARAMS, party=1, expected_party=0, ciphers=initiator_ciphers
    )
    responder = Handshake.responder(
        KEYS[0], role="peer", params=PARAMS, party=0, peer_keys={1: PUB[1]}, ciphers=responder_ciphers
    )
    return initiator, responder


def assert_channels_work(a: HandshakeResult, b: HandshakeResult) -> None:
    for sender, receiver in ((a, b), (b, a)):
        message = os.urandom(3 * (1 << 20) + 7)  # several frames
        frames = sender.channel.encrypt_message(message)
        assert len(frames) == 4
        assert [receiver.channel.receive_frame(f) for f in frames] == [None, None, None, message]


@pytest.mark.parametrize(
    ("initiator_ciphers", "responder_ciphers", "expected"),
    [
        (BOTH, BOTH, "aegis256"),
        (("chacha20poly1305",), BOTH, "chacha20poly1305"),  # the initiator lacks hardware AES
        (BOTH, ("chacha20poly1305",), "chacha20poly1305"),  # the responder lacks it
        (("chacha20poly1305",), ("chacha20poly1305",), "chacha20poly1305"),
        (BOTH, ("chacha20poly1305", "aegis256"), "chacha20poly1305"),  # the responder's preference rules
        (("chacha20poly1305", "aegis256"), BOTH, "aegis256"),
    ],
)
def test_traffic_cipher_is_negotiated(
    initiator_ciphers: tuple[str, ...], responder_ciphers: tuple[str, ...], expected: str
) -> None:
    a, b = drive(*cipher_pair(initiator_ciphers, responder_ciphers))
    assert a.cipher == b.cipher == expected
    assert_channels_work(a, b)


def test_default_ciphers_are_the_fast_ones() -> None:
    offered = fast_ciphers()
    assert offered[-1] == "chacha20poly1305"  # always there, so every pair can talk
    a, b = drive(*peer_pair())
    assert a.cipher == b.cipher == offered[0]


def test_without_hardware_aes_only_chacha_is_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    """libsodium's software AEGIS-256 is far slower than ChaCha20-Poly1305: never pick it by default."""

    class NoHardwareAes:
        @staticmethod
        def crypto_aead_aes256gcm_is_available() -> int:
            return 0

    monkeypatch.setattr(crypto_module, "_lib", NoHardwareAes)
    assert fast_ciphers() == ("chacha20poly1305",)
    a, b = drive(*peer_pair())
    assert a.cipher == b.cipher == "chacha20poly1305"
    initiator = Handshake.initiator(KEYS[1], role="peer", expected_key=PUB[0], params=PARAMS, party=1, expected_party=0)
    a, b = drive(initiator, cipher_pair(BOTH, BOTH)[1])  # only the initiator lacks it
    assert a.cipher == b.cipher == "chacha20poly1305"


def test_a_tampered_frame_fails_with_either_cipher() -> None:
    for cipher in BOTH:
        a, b = drive(*cipher_pair((cipher,), BOTH))
        frame = bytearray(a.channel.encrypt_message(b"pay 100 to mallory")[0])
        frame[30] ^= 1
        with pytest.raises(WireError, match="failed authentication"):
            b.channel.receive_frame(bytes(frame))


def test_no_cipher_in_common_is_refused_clearly_on_both_sides() -> None:
    with pytest.raises(HandshakeError) as caught:
        drive(*cipher_pair(("chacha20poly1305",), ("aegis256",)))
    assert str(caught.value) == (
        "no traffic cipher in common with party 0: it offers aegis256, we support chacha20poly1305"
    )
    other = caught.value.other  # type: ignore[attr-defined]
    assert isinstance(other, HandshakeError) and str(other).startswith("refused by the connecting peer")
    assert "no traffic cipher in common: you offer aegis256, this side supports chacha20poly1305" in str(other)


def test_a_cipher_that_was_not_offered_is_refused() -> None:
    class Pushy(Handshake):
        def _choose_cipher(self, offered: tuple[str, ...]) -> str:
            return "aegis256"

    initiator = Pushy.initiator(
        KEYS[1], role="peer", expected_key=PUB[0], params=PARAMS, party=1, expected_party=0, ciphers=BOTH
    )
    responder = Handshake.responder(
        KEYS[0], role="peer", params=PARAMS, party=0, peer_keys={1: PUB[1]}, ciphers=("chacha20poly1305",)
    )
    with pytest.raises(HandshakeError) as caught:
        drive(initiator, responder)
    assert str(caught.value) == (
        "party 1 chose traffic cipher aegis256, which we did not offer (we offered chacha20poly1305)"
    )
    other = caught.value.other  # type: ignore[attr-defined]
    assert str(other) == "refused by party 0: traffic cipher aegis256 was not offered: this VCP offers chacha20poly1305"
    assert not initiator.done and not responder.done


def _rewrite_block(block: bytes, change: Callable[[list[object]], None]) -> bytes:
    fields = msgpack.unpackb(block, raw=False)
    change(fields)
    packed: bytes = msgpack.packb(fields, use_bin_type=True)
    return packed


@pytest.mark.parametrize("victim", ["offer", "choice"])
def test_a_downgrade_on_the_path_breaks_the_signature(monkeypatch: pytest.MonkeyPatch, victim: str) -> None:
    """An attacker who could even rewrite the encrypted identity blocks cannot steer the cipher:
    the offer and the choice are signed (and in the transcript)."""
    real = hs_module.encode_signed

    def downgrade(fields: list[object]) -> None:
        if victim == "offer" and len(fields) == 4:  # the responder's block
            fields[3] = ["chacha20poly1305"]
        if victim == "choice" and len(fields) == 5:  # the initiator's block
            fields[4] = "chacha20poly1305"

    def tampered(block: bytes, signature: bytes) -> bytes:
        return real(_rewrite_block(block, downgrade), signature)  # after signing: as on the wire

    monkeypatch.setattr(hs_module, "encode_signed", tampered)
    with pytest.raises(AuthenticationError, match="bad handshake signature") as caught:
        drive(*cipher_pair(BOTH, BOTH))
    assert isinstance(caught.value.other, AuthenticationError)  # type: ignore[attr-defined]


def test_names_the_initiator_does_not_know_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A future responder may offer a cipher we have never heard of first: we take the next one."""
    real = hs_module.encode_responder_block

    def offer_more(key: bytes, party: int | None, params: dict[str, str], offered: tuple[str, ...]) -> bytes:
        return real(key, party, params, ("aegis512-future", *offered))

    monkeypatch.setattr(hs_module, "encode_responder_block", offer_more)
    a, b = drive(*cipher_pair(BOTH, ("chacha20poly1305",)))
    assert a.cipher == b.cipher == "chacha20poly1305"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda f: f.pop(), "identity block has no traffic cipher field (a version 1 block)"),
        (lambda f: f.__setitem__(3, []), "offered traffic ciphers are not a list of 1 to 8 names"),
        (lambda f: f.__setitem__(3, ["aegis256", 5]), "an offered traffic cipher is not a cipher name"),
        (lambda f: f.__setitem__(3, ["AEGIS\n256"]), "an offered traffic cipher is not a cipher name"),
        (lambda f: f.__setitem__(3, ["aegis256"] * 2), "offered traffic ciphers repeat a name"),
        (lambda f: f.__setitem__(3, "aegis256"), "offered traffic ciphers are not a list"),
    ],
)
def test_malformed_offers_and_old_blocks_are_clear_errors(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[list[object]], None], reason: str
) -> None:
    real = hs_module.encode_responder_block

    def malformed(*args: object) -> bytes:
        return _rewrite_block(real(*args), change)  # type: ignore[arg-type]

    monkeypatch.setattr(hs_module, "encode_responder_block", malformed)
    with pytest.raises(HandshakeError, match=re.escape(f"malformed identity from party 0: {reason}")) as caught:
        drive(*cipher_pair(BOTH, BOTH))
    assert reason in str(caught.value.other)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "change",
    [lambda f: f.pop(), lambda f: f.__setitem__(4, 7), lambda f: f.__setitem__(4, "x" * 40)],
    ids=["version-1", "not-a-name", "too-long"],
)
def test_malformed_choices_are_clear_errors(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[list[object]], None]
) -> None:
    real = hs_module.encode_initiator_block

    def malformed(*args: object) -> bytes:
        return _rewrite_block(real(*args), change)  # type: ignore[arg-type]

    monkeypatch.setattr(hs_module, "encode_initiator_block", malformed)
    with pytest.raises(HandshakeError, match="malformed identity from the connecting peer: .*(cipher|version 1)"):
        drive(*cipher_pair(BOTH, BOTH))


@pytest.mark.parametrize(
    "ciphers", [(), "aegis256", ("aes256gcm",), ("chacha20poly1305", "chacha20poly1305")], ids=repr
)
def test_bad_cipher_lists_are_programming_errors(ciphers: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="cipher"):
        Handshake.responder(KEYS[0], role="client", params=PARAMS, ciphers=ciphers)
    with pytest.raises(ValueError, match="cipher"):
        Handshake.initiator(KEYS[0], role="client", expected_key=PUB[1], ciphers=ciphers)


def test_version_1_hello_gets_a_clear_refusal() -> None:
    initiator, responder = peer_pair()
    hello = initiator.start()
    with pytest.raises(HandshakeError, match="speaks handshake version 1, we speak 2"):
        responder.receive(hello[:1] + b"\x01" + hello[2:])
    assert responder.refusal is not None
    with pytest.raises(HandshakeError, match="unsupported handshake version 1: this VCP speaks version 2"):
        initiator.receive(responder.refusal)
