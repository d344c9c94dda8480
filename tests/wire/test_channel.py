"""Encrypted channel: integrity, ordering, close, chunking and limits, with each traffic AEAD."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nacl.bindings import crypto_aead_aegis256_encrypt, crypto_aead_chacha20poly1305_ietf_encrypt

from vcpd.errors import ChannelError
from vcpd.wire._crypto import AEGIS256, CHACHA20POLY1305, AuthFailure, FrameCipher
from vcpd.wire.channel import MAX_FRAME, MAX_WIRE_FRAME, Channel, ChannelLimits

KEY_A, KEY_B = bytes(range(32)), bytes(range(32, 64))

both_ciphers = pytest.mark.parametrize("cipher", [CHACHA20POLY1305, AEGIS256], ids=lambda c: c.name)
"""Run a test with each traffic AEAD (the others use ChaCha20-Poly1305, what every pair can speak)."""


def pair(
    sender_limits: ChannelLimits | None = None,
    receiver_limits: ChannelLimits | None = None,
    *,
    cipher: FrameCipher = CHACHA20POLY1305,
) -> tuple[Channel, Channel]:
    return (
        Channel(KEY_A, KEY_B, cipher=cipher, limits=sender_limits),
        Channel(KEY_B, KEY_A, cipher=cipher, limits=receiver_limits),
    )


def deliver(receiver: Channel, frames: list[bytes]) -> list[bytes]:
    return [m for f in frames if (m := receiver.receive_frame(f)) is not None]


def flip(frame: bytes, at: int) -> bytes:
    at %= len(frame)
    return frame[:at] + bytes([frame[at] ^ 0x01]) + frame[at + 1 :]


def assert_dead(channel: Channel) -> None:
    assert channel.failure is not None
    for call in (
        lambda: channel.receive_frame(b"\x00" * 64),
        lambda: channel.queue(b"x"),
        channel.next_frame,
        channel.close_frame,
        channel.end_of_stream,
    ):
        with pytest.raises(ChannelError, match="unusable after an earlier error"):
            call()


@both_ciphers
def test_round_trip_both_directions(cipher: FrameCipher) -> None:
    a, b = pair(cipher=cipher)
    for message in (b"", b"hello", bytearray(b"mutable"), memoryview(b"view")[1:]):
        assert deliver(b, a.encrypt_message(message)) == [bytes(message)]
        assert deliver(a, b.encrypt_message(message)) == [bytes(message)]
    assert a.next_frame() is None and a.pending_bytes == 0


# Positions: header (kind, flags, reserved, stream, seq, total), ciphertext, tag.
POSITIONS = ["kind", "flags", "reserved", "stream", "seq", "total", "body", "body-end", "tag", "tag-end"]


def position(where: str, tag_bytes: int) -> int:
    return {"kind": 0, "flags": 1, "reserved": 2, "stream": 4, "seq": 8, "total": 16, "body": 24,
            "body-end": -tag_bytes - 1, "tag": -tag_bytes, "tag-end": -1}[where]  # fmt: skip


@both_ciphers
@pytest.mark.parametrize("where", POSITIONS)
def test_tampered_frame_kills_the_channel(cipher: FrameCipher, where: str) -> None:
    a, b = pair(cipher=cipher)
    frame = a.encrypt_message(b"attack at dawn")[0]
    with pytest.raises(ChannelError):
        b.receive_frame(flip(frame, position(where, cipher.tag_bytes)))
    assert_dead(b)
    with pytest.raises(ChannelError):
        b.receive_frame(frame)  # even the genuine frame is refused now


@both_ciphers
@pytest.mark.parametrize("where", [0, 8, 24, 60, -1], ids=str)
def test_tampered_chunk_of_large_message(cipher: FrameCipher, where: int) -> None:
    a, b = pair(ChannelLimits(frame_size=100), cipher=cipher)
    frames = a.encrypt_message(os.urandom(1000))
    b.receive_frame(frames[0])
    with pytest.raises(ChannelError):
        b.receive_frame(flip(frames[1], where))


def test_replayed_frame() -> None:
    a, b = pair()
    frame = a.encrypt_message(b"pay 100")[0]
    assert b.receive_frame(frame) == b"pay 100"
    with pytest.raises(ChannelError, match="expected #1, got #0"):
        b.receive_frame(frame)
    assert_dead(b)


def test_reordered_frames() -> None:
    a, b = pair()
    _first, second = a.encrypt_message(b"one")[0], a.encrypt_message(b"two")[0]
    with pytest.raises(ChannelError, match="out of sequence"):
        b.receive_frame(second)
    assert_dead(b)


def test_dropped_frame_with_forged_counter() -> None:
    a, b = pair()
    a.encrypt_message(b"dropped")
    frame = bytearray(a.encrypt_message(b"next")[0])
    frame[8] = 0  # pretend it is frame #0: the header is authenticated
    with pytest.raises(ChannelError, match="failed authentication"):
        b.receive_frame(bytes(frame))


@both_ciphers
@pytest.mark.parametrize("keep", ["0", "1", "23", "24", "overhead-1", "overhead", "-1"])
def test_truncated_frame(cipher: FrameCipher, keep: str) -> None:
    a, b = pair(cipher=cipher)
    frame = a.encrypt_message(b"a message long enough to cut")[0]
    overhead = a.frame_overhead
    cut = {"overhead-1": overhead - 1, "overhead": overhead}[keep] if keep.startswith("overhead") else int(keep)
    with pytest.raises(ChannelError):
        b.receive_frame(frame[:cut])
    assert_dead(b)


def test_reflected_frame_fails() -> None:
    a, _ = pair()
    with pytest.raises(ChannelError):
        a.receive_frame(a.encrypt_message(b"echo")[0])
    with pytest.raises(ValueError):
        Channel(KEY_A, KEY_A, cipher=CHACHA20POLY1305)


def test_a_frame_of_the_other_cipher_fails() -> None:
    chacha, _ = pair()
    _, aegis = pair(cipher=AEGIS256)
    with pytest.raises(ChannelError, match="failed authentication"):
        aegis.receive_frame(chacha.encrypt_message(b"x" * 100)[0])


def test_clean_close_is_told_apart_from_a_cut() -> None:
    a, b = pair()
    frames = a.encrypt_message(b"last words") + [a.close_frame("shutting down")]
    assert deliver(b, frames) == [b"last words"]
    assert b.peer_closed and b.close_reason == "shutting down"
    assert b.end_of_stream() == "shutting down"
    assert a.local_closed
    with pytest.raises(ChannelError):
        a.queue(b"more")

    c, d = pair()
    deliver(d, c.encrypt_message(b"half"))
    with pytest.raises(ChannelError, match="without a close frame"):
        d.end_of_stream()
    assert_dead(d)


def test_frame_after_close_kills_the_channel() -> None:
    a, b = pair()
    close = a.close_frame()
    # A frame the sender could not have produced after closing: forge order by
    # building it from a second sender with the same keys and counter 1.
    ghost = Channel(KEY_A, KEY_B, cipher=CHACHA20POLY1305)
    ghost.encrypt_message(b"")
    late = ghost.encrypt_message(b"late")[0]
    assert b.receive_frame(close) is None and b.peer_closed
    with pytest.raises(ChannelError, match="after the peer's close"):
        b.receive_frame(late)
    assert_dead(b)


def test_close_drops_pending_and_bounds_reason() -> None:
    a, b = pair(ChannelLimits(frame_size=10))
    a.queue(b"x" * 100)
    first = a.next_frame()
    assert first is not None
    close = a.close_frame("é" * 300)
    assert a.pending_bytes == 0 and a.next_frame() is None
    assert b.receive_frame(first) is None and b.buffered_bytes == 10
    assert b.receive_frame(close) is None
    assert b.peer_closed and b.buffered_bytes == 0
    assert b.end_of_stream() == "é" * 128  # 256 UTF-8 bytes, cut on a character boundary
    with pytest.raises(ChannelError, match="already sent"):
        a.close_frame()


@both_ciphers
def test_sixteen_megabyte_message(cipher: FrameCipher) -> None:
    a, b = pair(cipher=cipher)
    message = os.urandom(16 * 10**6)  # 10^6 field elements of 16 bytes
    frames = a.encrypt_message(message)
    assert len(frames) == -(-len(message) // MAX_FRAME)
    assert all(len(f) <= MAX_WIRE_FRAME for f in frames)
    assert a.frame_overhead == 24 + cipher.tag_bytes
    assert sum(len(f) for f in frames) == len(message) + len(frames) * a.frame_overhead
    assert deliver(b, frames) == [message]
    assert b.buffered_bytes == 0


def test_large_messages_interleave_and_small_ones_overtake() -> None:
    a, b = pair(ChannelLimits(frame_size=1000))
    big1, big2, small = os.urandom(10_000), os.urandom(7_500), b"ping"
    a.queue(big1)
    a.queue(big2)
    a.queue(small)
    assert a.pending_bytes == len(big1) + len(big2) + len(small)
    frames = a.drain()
    received = [(i, m) for i, f in enumerate(frames) if (m := b.receive_frame(f)) is not None]
    assert [m for _, m in received] == [small, big2, big1]
    assert received[0][0] == 2  # after one chunk of each big message
    assert b.buffered_bytes == 0


def test_many_streams_in_flight() -> None:
    a, b = pair(ChannelLimits(frame_size=16))
    messages = [os.urandom(16 * 5 + i) for i in range(50)]
    for m in messages:
        a.queue(m)
    assert sorted(deliver(b, a.drain())) == sorted(messages)


def test_reassembly_cap() -> None:
    limits = ChannelLimits(frame_size=1000)
    a, b = pair(limits, ChannelLimits(max_buffered=5000))
    one = os.urandom(4000)
    assert deliver(b, a.encrypt_message(one) + a.encrypt_message(one)) == [one, one]  # one at a time fits
    a.queue(one)
    a.queue(one)  # interleaved: 8000 bytes buffered at once
    with pytest.raises(ChannelError, match="reassembly buffers exceed 5000 bytes"):
        deliver(b, a.drain())
    assert_dead(b)


def test_stream_cap() -> None:
    a, b = pair(ChannelLimits(frame_size=10), ChannelLimits(max_streams=3))
    for _ in range(4):
        a.queue(b"y" * 25)
    with pytest.raises(ChannelError, match="more than 3 messages"):
        deliver(b, a.drain())


def test_message_limits() -> None:
    a, b = pair(ChannelLimits(max_message=100), ChannelLimits(max_message=50))
    with pytest.raises(ChannelError, match="exceeds the limit of 100"):
        a.queue(b"z" * 101)
    assert a.failure is None  # nothing was sent: still usable
    with pytest.raises(ChannelError, match="announced a message of 60 bytes"):
        deliver(b, a.encrypt_message(b"z" * 60))
    with pytest.raises(ValueError):
        ChannelLimits(frame_size=MAX_FRAME + 1)


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=200))
def test_garbage_frames_only_raise_channel_error(garbage: bytes) -> None:
    _, b = pair()
    with pytest.raises(ChannelError):
        b.receive_frame(garbage)


@both_ciphers
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_frames_only_raise_channel_error(cipher: FrameCipher, data: st.DataObject) -> None:
    a, b = pair(ChannelLimits(frame_size=8), cipher=cipher)
    frames = a.encrypt_message(data.draw(st.binary(max_size=40)))
    index = data.draw(st.integers(0, len(frames) - 1))
    frame = frames[index]
    mutated = data.draw(
        st.one_of(
            st.integers(0, len(frame) - 1).map(lambda i: flip(frame, i)),
            st.integers(0, len(frame) - 1).map(lambda i: frame[:i]),
            st.binary(min_size=1, max_size=8).map(lambda extra: frame + extra),
        )
    )
    deliver(b, frames[:index])
    with pytest.raises(ChannelError):
        b.receive_frame(mutated)


# docs/protocol.md: each traffic AEAD through pynacl's plain bindings, and its nonce length.
DOCUMENTED_AEAD = {"chacha20poly1305": (crypto_aead_chacha20poly1305_ietf_encrypt, 12),
                   "aegis256": (crypto_aead_aegis256_encrypt, 32)}  # fmt: skip


@both_ciphers
def test_frames_are_the_documented_aead_of_the_chunk(cipher: FrameCipher) -> None:
    """The zero-copy framing is byte for byte header ‖ AEAD(chunk, ad=header, nonce=zeros ‖ u64 LE seq)."""
    encrypt, nonce_bytes = DOCUMENTED_AEAD[cipher.name]
    message = os.urandom(2500)
    a, b = pair(ChannelLimits(frame_size=1000), cipher=cipher)
    frames = a.encrypt_message(message)
    for seq, frame in enumerate(frames):
        header = frame[:24]
        chunk = message[1000 * seq : 1000 * (seq + 1)]
        nonce = bytes(nonce_bytes - 8) + seq.to_bytes(8, "little")
        assert cipher.nonce(seq) == nonce
        assert frame == header + encrypt(chunk, header, nonce, KEY_A)
        assert cipher.seal_frame(KEY_A, nonce, header, memoryview(message)[1000 * seq : 1000 * (seq + 1)]) == frame
        assert cipher.open_frame(KEY_A, nonce, frame, 24) == chunk
        out = bytearray(len(chunk))
        cipher.open_frame_into(KEY_A, nonce, frame, 24, out)
        assert out == chunk
    with pytest.raises(AuthFailure):
        cipher.open_frame(KEY_A, cipher.nonce(1), frames[0], 24)
    assert deliver(b, frames) == [message]


def test_reassembly_capacity_counts_announced_lengths() -> None:
    a, b = pair(ChannelLimits(frame_size=100), ChannelLimits(max_buffered=1500))
    a.queue(os.urandom(1000))
    a.queue(os.urandom(600))  # interleaved with the first: 1600 bytes announced at once
    frames = a.drain()
    assert b.receive_frame(frames[0]) is None and b.buffered_bytes == 100  # received bytes
    with pytest.raises(ChannelError, match="reassembly buffers exceed 1500 bytes"):
        b.receive_frame(frames[1])


@pytest.mark.parametrize("sizes", [(3, 10), (30, 300), (120, 1000), (0, 500), (250, 0)])
def test_queued_prefix_is_sent_as_part_of_the_message(sizes: tuple[int, int]) -> None:
    a, b = pair(ChannelLimits(frame_size=100))
    prefix, body = os.urandom(sizes[0]), os.urandom(sizes[1])
    a.queue(body, prefix=prefix)
    assert a.pending_bytes == len(prefix) + len(body)
    assert deliver(b, a.drain()) == [prefix + body]


@both_ciphers
def test_big_messages_reassemble_exactly_and_a_forged_chunk_returns_nothing(cipher: FrameCipher) -> None:
    """Reassembly buffers of big messages are not zeroed first: every byte must come from a frame."""
    sender, receiver = pair(cipher=cipher)
    message = os.urandom(3 * MAX_FRAME + 12345)
    frames = sender.encrypt_message(message)
    assert len(frames) > 3
    got = deliver(receiver, frames)
    assert got == [message] and type(got[0]) is bytearray
    sender, receiver = pair(cipher=cipher)
    frames = sender.encrypt_message(message)
    frames[2] = flip(frames[2], sender.frame_overhead)
    with pytest.raises(ChannelError, match="failed authentication"):
        deliver(receiver, frames)
    assert_dead(receiver)
