"""Allocator tuning of the executor (vcpd.services.executor.memory)."""

from __future__ import annotations

import numpy as np

from vcpd.services.executor import memory


def test_keep_and_release_are_idempotent_and_harmless() -> None:
    first = memory.keep_freed_blocks()
    assert memory.keep_freed_blocks() == first  # configured once per process
    blocks = [np.ones(1 << 20) for _ in range(4)]
    del blocks
    memory.release_freed_blocks()
    again = np.arange(1 << 20, dtype=np.uint64)  # the heap still serves fresh, correct arrays
    assert int(again[-1]) == (1 << 20) - 1
