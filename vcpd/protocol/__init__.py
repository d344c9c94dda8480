"""L3 protocol layer: the SPDZ online phase over labelled sessions.

Re-exports the public names of :mod:`.transport` (the Session/Transport
contract), :mod:`.online` (:class:`OnlineParty`: openings, MAC checks, Beaver
products, squares, bits), :mod:`.beaver` (tuple operations split around their
opening), :mod:`.maccheck`, :mod:`.commit`, :mod:`.rounds` and :mod:`.tonelli`.
:mod:`.split_open` (large openings summed range by range) is used by
:class:`OnlineParty` and not re-exported.

This package may import from vcpd only errors, config, keys, logs, math and
wire — never net, testing, services, api, node or daemon.
"""

from __future__ import annotations

from .beaver import Prepared as Prepared
from .beaver import SquarePair as SquarePair
from .beaver import Triple as Triple
from .beaver import bits_prepare as bits_prepare
from .beaver import mul_prepare as mul_prepare
from .beaver import square_prepare as square_prepare
from .commit import FAILURE_MARKER as FAILURE_MARKER
from .commit import coin_toss as coin_toss
from .commit import commit as commit
from .commit import commit_and_open as commit_and_open
from .commit import open_commitment as open_commitment
from .maccheck import MAC_FAILURE_MESSAGE as MAC_FAILURE_MESSAGE
from .maccheck import OpeningLog as OpeningLog
from .maccheck import batch_mac_check as batch_mac_check
from .online import DEFAULT_ROUND_TIMEOUT as DEFAULT_ROUND_TIMEOUT
from .online import OnlineParty as OnlineParty
from .online import OnlineStatistics as OnlineStatistics
from .rounds import exchange_all as exchange_all
from .rounds import exchange_each as exchange_each
from .tonelli import sqrt as sqrt
from .transport import Session as Session
from .transport import Transport as Transport

__all__ = [
    "DEFAULT_ROUND_TIMEOUT",
    "FAILURE_MARKER",
    "MAC_FAILURE_MESSAGE",
    "OnlineParty",
    "OnlineStatistics",
    "OpeningLog",
    "Prepared",
    "Session",
    "SquarePair",
    "Transport",
    "Triple",
    "batch_mac_check",
    "bits_prepare",
    "coin_toss",
    "commit",
    "commit_and_open",
    "exchange_all",
    "exchange_each",
    "mul_prepare",
    "open_commitment",
    "sqrt",
    "square_prepare",
]
