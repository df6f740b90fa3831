"""The local Ray's reaper: when the search driver dies, even by SIGKILL, the Ray it started dies too.

``ray.init()`` starts the GCS, the raylet and their agents and workers as processes of their own.
When the driver ends normally it stops them; when it is killed (SIGKILL, the OOM killer) nothing
does, and Ray 2.60's RuntimeEnvAgent, DashboardAgent and idle workers were measured alive minutes
later, one still listening. Ray has no option to tie them to the driver (Linux's
``PR_SET_PDEATHSIG`` would, but Ray starts them itself), so :func:`start` launches this file as a
small watcher in a session of its own: while the driver lives it records the processes
``ray.init()`` started and their descendants (read from ``/proc``, with their start times; never
any other process of the driver's); once the driver is gone it SIGKILLs each recorded process
still alive with the same start time (never a reused PID), then exits.

This file imports only the standard library: it runs as ``python reaper.py DRIVER_PID PID:START ...``, without
importing growsearch (and so torch).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["children", "start"]


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent PID, start time) of ``pid`` from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...; starttime is field 22
    return int(fields[1]), int(fields[19])


def _processes() -> dict[int, tuple[int, int]]:
    """Every process now: PID -> (parent PID, start time)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            found[int(entry)] = st
    return found


def _descendants(root: int) -> dict[int, int]:
    """Every process below ``root`` now: PID -> start time."""
    children: dict[int, list[tuple[int, int]]] = {}
    for pid, (parent, started) in _processes().items():
        children.setdefault(parent, []).append((pid, started))
    found, todo = {}, [root]
    while todo:
        for pid, started in children.get(todo.pop(), []):
            found[pid] = started
            todo.append(pid)
    return found


def children() -> dict[int, int]:
    """This process's children now: PID -> start time (empty where there is no /proc)."""
    if not Path("/proc/self/stat").is_file():
        return {}
    me = os.getpid()
    return {pid: started for pid, (parent, started) in _processes().items() if parent == me}


def watch(driver: int, roots: dict[int, int], interval: float = 0.5) -> None:
    """While ``driver`` lives, record ``roots`` (PID -> start time: the processes it started for
    Ray) and their descendants; once it is gone, kill those still alive."""
    born = _stat(driver)
    seen = dict(roots)
    while born is not None and (now := _stat(driver)) is not None and now[1] == born[1]:
        for root, started in roots.items():
            if (st := _stat(root)) is not None and st[1] == started:
                seen.update(_descendants(root))
        time.sleep(interval)
    for pid, started in seen.items():
        st = _stat(pid)
        if st is not None and st[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


_watcher: subprocess.Popen | None = None


def start(roots: dict[int, int]) -> None:
    """Kill ``roots`` (PID -> start time, from :func:`children`: what this process started for Ray)
    and their descendants once this process is gone. Linux only: elsewhere nothing is started."""
    global _watcher
    if not roots or not Path("/proc/self/stat").is_file():
        return
    args = [f"{pid}:{started}" for pid, started in roots.items()]
    _watcher = subprocess.Popen(
        [sys.executable, "-I", str(Path(__file__).resolve()), str(os.getpid()), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a signal to the driver's process group does not reach it
    )


if __name__ == "__main__":
    watch(int(sys.argv[1]), dict(tuple(map(int, a.split(":"))) for a in sys.argv[2:]))
