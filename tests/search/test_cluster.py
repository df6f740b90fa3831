"""A real two-node Ray cluster on loopback, used through --address."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from helpers import console_script, descendants, kill_tree, tiny_space

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # a real Ray: run with -m slow (.ci/run does)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive_nodes(address: str, env: dict) -> int:
    code = (
        "import ray; ray.init(address=%r, log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))" % address
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0


def test_search_runs_on_a_two_node_loopback_cluster(tmp_path: Path) -> None:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    port = _port()
    ray, address = console_script("ray"), f"127.0.0.1:{port}"
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats", "--block"]
    # --block keeps each node's processes under a `ray start` process this test owns, so the test
    # stops exactly them (by PID) and never another Ray on the machine
    nodes = [
        subprocess.Popen(
            [ray, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    ]
    try:
        deadline = time.time() + 600
        while _alive_nodes(address, env) < 1 and time.time() < deadline:
            time.sleep(1)
        nodes.append(
            subprocess.Popen(
                [ray, "start", f"--address={address}", *common],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        )
        while _alive_nodes(address, env) < 2 and time.time() < deadline:
            time.sleep(1)
        assert _alive_nodes(address, env) == 2, "the loopback cluster did not come up"
        space = tiny_space(tmp_path, epochs="[2, 4]")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "growsearch.cli.commands",
                "search",
                str(space),
                "--out",
                str(tmp_path / "out"),
                "--trials",
                "4",
                "--confirm",
                "0",
                "--address",
                address,
                "--storage-path",
                str(tmp_path / "shared"),  # the folder every node of a real cluster would mount
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=1800,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        study = optuna.load_study(study_name="space", storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}")
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(done) >= 2
        # one CPU per node and one per trial: trials ran on both nodes
        assert len({t.user_attrs["node_id"] for t in done}) == 2
        # Tune's experiment, every trial's stage checkpoints and the prefix cache live on the shared storage
        assert (tmp_path / "shared" / "space").is_dir() and not (tmp_path / "out" / "tune").exists()
        assert len(list((tmp_path / "shared" / "space").glob("*/checkpoint_*/*.pt"))) >= len(done)
        assert list((tmp_path / "shared" / "prefix_cache").glob("*.pt"))
    finally:
        for node in reversed(nodes):
            owned = descendants(node.pid)
            node.terminate()  # `ray start --block` shuts its node down on SIGTERM
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            kill_tree(node.pid, owned)  # whatever of this node is still there


def test_a_local_search_guards_its_ports_with_a_token_it_writes_nowhere(tmp_path: Path) -> None:
    code = (
        "import os, ray\n"
        "from growsearch.search.cluster import init_ray\n"
        "init_ray(None, 1, 0)\n"
        "print('task', ray.get(ray.remote(lambda: 42).remote()), os.environ.get('RAY_AUTH_MODE'))\n"
        "ray.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    env["HOME"] = str(tmp_path)  # Ray's default would write HOME/.ray/auth_token, mode 0644
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "task 42 token" in proc.stdout  # token authentication on, with our token
    assert not (tmp_path / ".ray" / "auth_token").exists()
