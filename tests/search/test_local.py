"""The local backend's worker pool: a worker that dies, busy or idle, costs no trial and no call."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from growsearch.search.local import LocalPools


def _gone(pid: int, timeout: float = 30) -> None:
    # the pool reaps its dead worker once it has noticed the death (and marked itself broken)
    deadline = time.time() + timeout
    while Path(f"/proc/{pid}").exists() and time.time() < deadline:
        time.sleep(0.05)


@pytest.mark.slow  # two spawned workers, each importing torch: 15 s on 2 cores
def test_a_worker_that_dies_while_idle_costs_the_next_call_nothing() -> None:
    with LocalPools(1) as pools:
        first = pools.submit(os.getpid).result(timeout=120)
        os.kill(first, signal.SIGKILL)  # out of memory, say, between two trials
        _gone(first)
        # a plain ProcessPoolExecutor refuses every later call: BrokenProcessPool
        with pytest.raises(BrokenProcessPool):
            pools.pool.submit(os.getpid)
        second = pools.submit(os.getpid).result(timeout=120)
    assert second != first
