"""The demo a newcomer runs first: the same answer every time, and always a feasible one."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import optuna
import pytest

from growsearch.cli.commands import main
from helpers import growsearch_argv

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture
def local_ray():
    import ray

    yield
    ray.shutdown()


def test_a_second_demo_replaces_the_first_and_never_a_users_folder(
    tmp_path: Path, local_ray, capsys: pytest.CaptureFixture
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (mine / "trials.csv").write_text("my own table")  # a file of the user's under one of the demo's output names
    assert main(["demo", "--out", str(mine)]) == 2
    assert "did not write (trials.csv)" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "trials.csv"]
    assert (mine / "trials.csv").read_text() == "my own table"


def test_the_demo_command_prints_a_feasible_best_and_what_to_do_next(tmp_path: Path) -> None:
    """The real command, as a newcomer runs it (the full demo: under 3 minutes on 2 cores)."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        growsearch_argv("demo"),
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NaN or Inf" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    out = proc.stdout
    assert re.search(r"^vgg19@0\.25\s+6\s", out, re.M) and re.search(r"^vgg11@0\.25\s+6\s", out, re.M), (
        "the frontier table"
    )
    assert len(re.findall(r"^trial \d/6: (M ratio|pruned before training)", out, re.M)) == 6
    assert re.search(r"^best feasible: trial \d", out, re.M) and "verdict: " in out
    assert "export: growsearch export --storage sqlite:///runs/demo/study.db --study digits_vgg -o best/" in out
    assert "dashboard: optuna-dashboard sqlite:///runs/demo/study.db --artifact-dir runs/demo/artifacts" in out
    assert (tmp_path / "runs" / "demo" / "best_schedule.json").is_file()
    # the references come first, and the from-scratch one is feasible and free. That the demo's
    # search (deterministic, batches of 3, references) is the same study on every run is
    # tests/search/test_driver.py's deterministic search, which runs it twice at a test's size.
    study = optuna.load_study(study_name="digits_vgg", storage=f"sqlite:///{tmp_path / 'runs' / 'demo' / 'study.db'}")
    trials = study.trials
    assert study.user_attrs["batch"] == 3  # recorded only by a deterministic search
    assert [t.user_attrs.get("reference") for t in trials[:4]] == [
        "from scratch",
        "paper 5→10",
        "paper 5→10, no data growth",  # the presets the CIFAR-10 ablation found best
        "paper 5→10, data by samples",
    ]
    assert all("reference" not in t.user_attrs for t in trials[4:])
    scratch = trials[0].user_attrs
    assert scratch["feasible"] and scratch["val_acc"] >= study.user_attrs["target_acc"]
    assert (
        len(scratch["schedule"]["stages"]) == 1 and scratch["M_ratio"] >= 1
    )  # from scratch never beats its own frontier
    assert scratch["spent_M"] == 0  # the frontier's own run, loaded from the prefix cache
    paper = trials[1].user_attrs["schedule"]["stages"]
    assert [s["classes"] for s in paper] == [5, 10] and trials[1].params  # enqueued as the sampler's own parameters
