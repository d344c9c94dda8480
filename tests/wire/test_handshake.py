"""Handshake state machines: success, authentication, parameters, refusals, garbage."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from vcpd.errors import AuthenticationError, HandshakeError, ParameterMismatch, WireError
from vcpd.wire import handshake as hs_module
from vcpd.wire.handshake import Handshake, HandshakeResult

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
