"""Per-link MASCOT setup: the base OTs, run once per pair of VCPs and kept.

For every ordered pair (R, S) of VCPs, R is the base-OT receiver of 2κ random
OTs with S as sender (:mod:`.baseot`, one round for all links):

* κ with R's random Δ_S as choice bits — the seeds of the IKNP/KOS extension in
  which R is the *sender* (R's Gilboa role with its b, :mod:`.gilboa`);
* κ with the bits of R's MAC key share α_R as choice bits — COPEe's seeds, by
  which S authenticates its values under α_R (:mod:`.cope`).

So each party keeps, per peer: Δ (16 bytes), κ seeds k_b^{Δ_b} and κ seeds
k_l^{α_l} (receiver side), and 2κ seed pairs (sender side). α_i itself never
leaves the party: the base-OT messages hide the choice bits.

The state is as secret as the MAC key share (it contains α_i and seeds that
reveal its bits): persist it with the same care. Format (:meth:`MascotState.to_bytes`)::

    b"VCPD-MASCOT\\x00" ‖ u32le version (=1) ‖ msgpack body ‖ BLAKE2b-256(everything before)

with body = {"prime": bytes16, "party", "n_parties", "alpha": bytes16 (LE int),
"hash": "aes"|"blake2b", "setup_id": bytes16, "failed": bool, "links":
[{"peer", "delta": 16 B, "ext_recv": κ·32 B, "cope_recv": κ·32 B,
"ext_send": κ·64 B, "cope_send": κ·64 B, "link_id": 16 B}, ...]}.

After a failed check the state is marked ``failed`` and refuses further jobs:
a failing job may have leaked a bit of Δ or of α_i (selective failure), so the
base OTs must be redone (and, strictly, α_i rotated) — see docs/offline.md.

This module must not import vcpd.net, vcpd.testing, services, api, node or
daemon; from vcpd it uses only errors, math and vcpd.protocol.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Final

import msgpack
import numpy as np

from vcpd.errors import SessionAborted
from vcpd.math import PrimeField

from ..transport import Session
from . import baseot
from ._common import DEFAULT_TIMEOUT, KAPPA, derive, deviated, pairwise, per_peer
from .otext import HASHES, available_hashes

__all__ = ["FORMAT_VERSION", "Link", "MascotState", "check_link", "mascot_setup"]

MAGIC: Final = b"VCPD-MASCOT\x00"
FORMAT_VERSION: Final = 1
_DIGEST: Final = 32


@dataclass(slots=True)
class Link:
    """This party's secrets for one peer.

    Attributes:
        peer: the peer's party id.
        delta: this party's IKNP Δ toward the peer (16 bytes).
        ext_recv: κ seeds k_b^{Δ_b} (this party was the base-OT receiver).
        cope_recv: κ seeds k_l^{α_l} for this party's α bits.
        ext_send: κ pairs (k_b^0, k_b^1): the peer's Δ side (this party chooses in Gilboa).
        cope_send: κ pairs (k_l^0, k_l^1): the peer's α side (this party authenticates).
        link_id: 16 bytes both ends derive from the link's setup transcript (not
            secret); jobs compare it first, so a VCP that re-ran the setup alone
            gets a clear error instead of a failed check.
    """

    peer: int
    delta: bytes
    ext_recv: list[bytes]
    cope_recv: list[bytes]
    ext_send: list[tuple[bytes, bytes]]
    cope_send: list[tuple[bytes, bytes]]
    link_id: bytes = b""

    def __repr__(self) -> str:
        return f"<Link peer={self.peer}>"  # never the seeds


@dataclass(slots=True)
class MascotState:
    """Everything one party keeps between MASCOT jobs (secret: store like α_i).

    Attributes:
        prime: the field modulus.
        party: this party's id.
        n_parties: number of parties.
        alpha: this party's MAC key share α_i.
        hash_name: the row hash all parties agreed on ("aes" or "blake2b").
        setup_id: random id of this setup (for logs and bookkeeping; not secret).
        links: per peer.
        failed: a check failed since the setup; jobs are refused.
    """

    prime: int
    party: int
    n_parties: int
    alpha: int
    hash_name: str
    setup_id: bytes
    links: dict[int, Link] = dataclass_field(default_factory=dict)
    failed: bool = False

    def __repr__(self) -> str:
        return f"<MascotState party={self.party}/{self.n_parties} hash={self.hash_name} failed={self.failed}>"

    def alpha_bits(self) -> np.ndarray:
        """The κ bits of α_i (little-endian), as 0/1 uint8."""
        return np.unpackbits(np.frombuffer(self.alpha.to_bytes(16, "little"), np.uint8), bitorder="little")

    def check_usable(self, session_id: str, field: PrimeField, party: int, n_parties: int) -> None:
        """Raise SessionAborted if this state cannot serve a job of this session."""
        if self.failed:
            raise SessionAborted(
                session_id,
                "the MASCOT setup is unusable after a failed check (a bit of Δ or α may have leaked); "
                "run the setup again",
            )
        if field.p != self.prime or party != self.party or n_parties != self.n_parties:
            raise SessionAborted(session_id, "the MASCOT setup belongs to another VC (prime, party or party count differ)")

    # ------------------------------------------------------------ persistence

    def to_bytes(self) -> bytes:
        """Serialise (see the module docstring for the format)."""
        body = {
            "prime": self.prime.to_bytes(16, "little"),
            "party": self.party,
            "n_parties": self.n_parties,
            "alpha": self.alpha.to_bytes(16, "little"),
            "hash": self.hash_name,
            "setup_id": self.setup_id,
            "failed": self.failed,
            "links": [
                {
                    "peer": link.peer,
                    "delta": link.delta,
                    "ext_recv": b"".join(link.ext_recv),
                    "cope_recv": b"".join(link.cope_recv),
                    "ext_send": b"".join(a + b for a, b in link.ext_send),
                    "cope_send": b"".join(a + b for a, b in link.cope_send),
                    "link_id": link.link_id,
                }
                for link in sorted(self.links.values(), key=lambda item: item.peer)
            ],
        }
        head = MAGIC + FORMAT_VERSION.to_bytes(4, "little") + msgpack.packb(body, use_bin_type=True)
        return head + hashlib.blake2b(head, digest_size=_DIGEST).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> MascotState:
        """Load a state written by :meth:`to_bytes`.

        Raises:
            ValueError: not a MASCOT state, a newer format, or corrupted.
        """
        if len(data) < len(MAGIC) + 4 + _DIGEST or not data.startswith(MAGIC):
            raise ValueError("not a vcpd MASCOT setup state")
        head, digest = data[:-_DIGEST], data[-_DIGEST:]
        if not hmac.compare_digest(hashlib.blake2b(head, digest_size=_DIGEST).digest(), digest):
            raise ValueError("the MASCOT setup state is corrupted (checksum mismatch)")
        version = int.from_bytes(head[len(MAGIC) : len(MAGIC) + 4], "little")
        if version != FORMAT_VERSION:
            raise ValueError(f"MASCOT setup state format {version} is not supported (expected {FORMAT_VERSION})")
        try:
            body: Any = msgpack.unpackb(head[len(MAGIC) + 4 :], raw=False)
            links = {}
            for item in body["links"]:
                links[int(item["peer"])] = Link(
                    peer=int(item["peer"]),
                    delta=bytes(item["delta"]),
                    ext_recv=_chunks(item["ext_recv"], 32),
                    cope_recv=_chunks(item["cope_recv"], 32),
                    ext_send=_pairs(item["ext_send"]),
                    cope_send=_pairs(item["cope_send"]),
                    link_id=bytes(item["link_id"]),
                )
            state = cls(
                prime=int.from_bytes(body["prime"], "little"),
                party=int(body["party"]),
                n_parties=int(body["n_parties"]),
                alpha=int.from_bytes(body["alpha"], "little"),
                hash_name=str(body["hash"]),
                setup_id=bytes(body["setup_id"]),
                links=links,
                failed=bool(body["failed"]),
            )
        except (KeyError, TypeError, ValueError, msgpack.UnpackException) as exc:
            raise ValueError(f"malformed MASCOT setup state ({type(exc).__name__})") from None
        if sorted(links) != [k for k in range(state.n_parties) if k != state.party]:
            raise ValueError("malformed MASCOT setup state (links do not match the parties)")
        return state


def check_link(session_id: str, link: Link, received: object) -> None:
    """Raise SessionAborted unless the peer's job message carries this link's id."""
    if not isinstance(received, bytes) or not hmac.compare_digest(received, link.link_id):
        raise SessionAborted(
            session_id,
            f"VCP {link.peer} uses a different MASCOT setup for this link; run the setup again on every VCP",
        )


def _chunks(data: bytes, size: int) -> list[bytes]:
    if len(data) != KAPPA * size:
        raise ValueError("bad seed block length")
    return [bytes(data[i : i + size]) for i in range(0, len(data), size)]


def _pairs(data: bytes) -> list[tuple[bytes, bytes]]:
    flat = _chunks(data, 64)
    return [(item[:32], item[32:]) for item in flat]


async def mascot_setup(
    session: Session,
    field: PrimeField,
    alpha_share: int,
    party: int,
    n_parties: int,
    *,
    threads: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    hashes: list[str] | None = None,
) -> MascotState:
    """Run the base OTs with every peer (one round) and return this party's state.

    All parties call it in the same session. α_i is only used as the choice
    bits of the COPE base OTs; it is never sent. The row hash is the fastest
    one every party offers (fixed-key AES if all have ``cryptography``).

    Args:
        hashes: row hashes this party offers (default: all it can run).
        threads: compute each link's base OTs in a worker thread.
        timeout: seconds to wait for the peers' messages.

    Raises:
        SessionAborted: a peer sent an invalid base-OT message, or offers no
            common row hash; PeerUnavailable if a peer is gone.
    """
    if session.party != party or session.n_parties != n_parties:
        raise ValueError("party/n_parties do not match the session")
    alpha = alpha_share % field.p
    peers = [k for k in range(n_parties) if k != party]
    offered = list(hashes) if hashes is not None else available_hashes()
    alpha_bits = np.unpackbits(np.frombuffer(alpha.to_bytes(16, "little"), np.uint8), bitorder="little").tolist()
    deltas = {peer: os.urandom(16) for peer in peers}
    senders: dict[int, baseot.SenderSecret] = {}
    receivers: dict[int, baseot.ReceiverSecret] = {}

    def prepare(peer: int) -> list[Any]:
        senders[peer] = baseot.sender_message()
        delta_bits = np.unpackbits(np.frombuffer(deltas[peer], np.uint8), bitorder="little").tolist()
        receivers[peer] = baseot.receiver_message(baseot.BaseOtContext(session.id, peer, party), delta_bits + alpha_bits)
        return [senders[peer].public, receivers[peer].message, offered]

    out = await per_peer(peers, prepare, threads=threads)
    got = await pairwise(session, "mascot.setup.baseot", out, timeout=timeout)

    def offers(peer: int) -> list[str]:
        message = got[peer]
        if isinstance(message, list) and len(message) == 3 and isinstance(message[2], list):
            return [name for name in message[2] if isinstance(name, str)]
        return []

    common = [name for name in HASHES if name in offered and all(name in offers(p) for p in peers)]
    if not common:
        raise SessionAborted(session.id, "no row hash offered by every VCP (install the same vcpd everywhere)")

    def finish(peer: int) -> Link:
        message = got[peer]
        if not isinstance(message, list) or len(message) != 3:
            raise deviated(session.id, peer, "malformed base-OT message")
        sent = baseot.sender_keys(baseot.BaseOtContext(session.id, party, peer), senders[peer], message[1], 2 * KAPPA)
        received = baseot.receiver_keys(baseot.BaseOtContext(session.id, peer, party), receivers[peer], message[0])
        if sent is None or received is None or not isinstance(message[0], bytes) or not isinstance(message[1], bytes):
            raise deviated(session.id, peer, "invalid base-OT message (not a valid curve point)")
        transcripts = {party: out[peer][0] + out[peer][1], peer: message[0] + message[1]}
        return Link(
            peer=peer,
            delta=deltas[peer],
            ext_recv=received[:KAPPA],
            cope_recv=received[KAPPA:],
            ext_send=sent[:KAPPA],
            cope_send=sent[KAPPA:],
            link_id=derive(b"link", session.id, *(transcripts[k] for k in sorted(transcripts)), size=16),
        )

    links = await per_peer(peers, finish, threads=threads)
    return MascotState(
        prime=field.p,
        party=party,
        n_parties=n_parties,
        alpha=alpha,
        hash_name=common[0],
        setup_id=os.urandom(16),
        links=links,
    )
