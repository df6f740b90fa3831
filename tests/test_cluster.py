"""A real two-node Ray cluster on loopback, used through --address."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from test_search import _bin, _tiny

pytestmark = pytest.mark.ray


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_search_runs_on_a_two_node_loopback_cluster(tmp_path: Path) -> None:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    port = _port()
    ray = _bin("ray")
    head = subprocess.run(
        [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    try:
        assert head.returncode == 0, head.stderr
        worker = subprocess.run(
            [ray, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"],
            capture_output=True, text=True, env=env, timeout=120,
        )
        assert worker.returncode == 0, worker.stderr
        space = _tiny(tmp_path, epochs="[2, 4]")
        proc = subprocess.run(
            [sys.executable, "-m", "growsearch.cli", "search", str(space), "--out", str(tmp_path / "out"), "--trials", "4", "--address", f"127.0.0.1:{port}"],
            capture_output=True, text=True, env=env, timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        study = optuna.load_study(study_name="space", storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}")
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(done) >= 2
        # one CPU per node and one per trial: trials ran on both nodes
        assert len({t.user_attrs["node_id"] for t in done}) == 2
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=env, timeout=120)
