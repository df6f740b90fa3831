"""The demo a newcomer runs first: the same answer every time, and always a feasible one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from growsearch.cli.commands import main, run_demo
from growsearch.cli.summaries import search_report

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# The demo's own code path at a size a test affords: narrow VGG11s, two short budgets, two seeds.
SMALL = {
    "final_arch": "vgg11@0.125", "archs": ["vgg11@0.125"], "epochs": (1, 2), "budgets": [1, 2], "baseline_lrs": None,
    "baseline_seeds": [0],  # the full demo below averages 3 seeds; one keeps this test's two runs short
}


@pytest.fixture
def local_ray():
    import ray

    yield
    ray.shutdown()


def _lines(text: str) -> list[str]:
    """What must repeat: the frontier table, the trial lines and the best schedule (not wall times or paths)."""
    keep = re.compile(r"^(vgg|trial \d|best feasible|  stage|verdict)")
    return [re.sub(r"\s+\d+\.\d$", "", line) for line in text.splitlines() if keep.match(line)]


def test_two_demo_runs_print_the_same_trials_and_best_schedule_and_start_from_the_references(
    tmp_path: Path, local_ray, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture,
) -> None:
    printed, results = [], []
    for out in (tmp_path / "a", tmp_path / "b"):
        res = run_demo(out, trials=3, settings=SMALL)
        printed.append(capsys.readouterr().out + search_report(res))
        results.append(res)
    assert _lines(printed[0]) == _lines(printed[1])
    # tensorboardX warns about the NaN ratio that unfinished trials report: noise a newcomer must not see
    assert not [r for r in caplog.records if "NaN or Inf" in r.getMessage()]
    assert len([line for line in _lines(printed[0]) if line.startswith("trial ")]) == 3
    assert (tmp_path / "a" / "best_schedule.json").read_text() == (tmp_path / "b" / "best_schedule.json").read_text()
    # the references come first, and the from-scratch one is feasible and free
    res = results[0]
    trials = optuna.load_study(study_name=res.study_name, storage=res.storage).trials
    assert [t.user_attrs.get("reference") for t in trials[:2]] == ["from scratch", "paper 5→10"]
    assert all("reference" not in t.user_attrs for t in trials[2:])
    scratch = trials[0].user_attrs
    assert scratch["feasible"] and scratch["val_acc"] >= res.target_acc
    assert len(scratch["schedule"]["stages"]) == 1 and scratch["M_ratio"] >= 1  # from scratch never beats its own frontier
    assert scratch["spent_M"] == 0  # the frontier's own run, loaded from the prefix cache
    paper = trials[1].user_attrs["schedule"]["stages"]
    assert [s["classes"] for s in paper] == [5, 10] and trials[1].params  # enqueued as the sampler's own parameters
    assert res.best_schedule is not None


def test_a_second_demo_replaces_the_first_and_never_a_users_folder(tmp_path: Path, local_ray, capsys: pytest.CaptureFixture) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["demo", "--out", str(mine)]) == 2
    assert "not an earlier demo's" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_the_demo_command_prints_a_feasible_best_and_what_to_do_next(tmp_path: Path) -> None:
    """The real command, as a newcomer runs it (the full demo: about 3 minutes on 2 cores)."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "growsearch.cli.commands", "demo"], capture_output=True, text=True, timeout=1800, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NaN or Inf" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    out = proc.stdout
    assert re.search(r"^vgg19@0\.25\s+12\s", out, re.M), "the frontier table"
    assert len(re.findall(r"^trial \d/6: M ratio", out, re.M)) == 6
    assert re.search(r"^best feasible: trial \d", out, re.M) and "verdict: " in out
    assert "export: growsearch export --storage sqlite:///runs/demo/study.db --study digits_vgg -o best/" in out
    assert "dashboard: optuna-dashboard sqlite:///runs/demo/study.db --artifact-dir runs/demo/artifacts" in out
    assert (tmp_path / "runs" / "demo" / "best_schedule.json").is_file()
