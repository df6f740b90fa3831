"""growsearch's pieces in the user's own Ray Tune Tuner: trainable, searcher, stopper, trial lines."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from growsearch.plan.schedule import Schedule
from growsearch.search.best import load_best
from helpers import REPO

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # a real Ray: run with -m slow (.ci/run does)


def test_the_users_own_tuner_with_growsearch_pieces(setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray
    from ray import tune

    import growsearch.search.tune as gt

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    space, frontier = setup
    storage = f"sqlite:///{tmp_path / 'mine.db'}"
    shared = tmp_path / "shared"  # what a multi-node user points RunConfig(storage_path=...) at

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            gt.trainable_for(space, frontier, cache_dir=shared / "prefix_cache"),
            tune_config=tune.TuneConfig(
                search_alg=gt.Searcher(space, frontier, storage=storage, study_name="mine", cache_dir=shared / "prefix_cache", artifacts=tmp_path / "artifacts"),
                num_samples=3,
            ),
            run_config=tune.RunConfig(name="mine", storage_path=str(shared), stop=gt.CostStopper(), callbacks=[gt.TrialLines(3)], verbose=0),
        )
        grid = tuner.fit()
    finally:
        ray.shutdown()
    assert grid.num_errors == 0
    study = optuna.load_study(study_name="mine", storage=storage)
    assert len(study.trials) == 3 and study.metric_names == ["M_ratio"]
    M_ref = study.user_attrs["M_ref"]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and all(t.value == pytest.approx(t.user_attrs["M"] / M_ref) for t in done)
    assert all(t.user_attrs["constraint"] == [pytest.approx(study.user_attrs["target_acc"] - t.user_attrs["val_acc"])] for t in done)
    best = min((t for t in done if t.user_attrs["feasible"]), key=lambda t: t.value)
    assert load_best(storage, "mine").stages == Schedule.from_dict(best.user_attrs["schedule"]).stages
    assert "network_artifact" in best.user_attrs and study.user_attrs["artifact_store"] == str((tmp_path / "artifacts").resolve())
    # every trial's stage checkpoints landed in the user's storage_path
    assert len(list((shared / "mine").glob("*/checkpoint_*/*.pt"))) >= len(done)


def test_the_cluster_example_runs_and_its_study_exports(setup, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    space, frontier = setup
    root = REPO
    storage = f"sqlite:///{tmp_path / 'mine.db'}"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, str(root / "examples" / "ray_cluster" / "tuner.py"), str(space), "--baseline", str(frontier), "--address", "local",
         "--storage-path", str(tmp_path / "shared"), "--storage", storage, "--trials", "2", "--cpus-per-trial", "2"],
        check=False, capture_output=True, text=True, timeout=1800, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "best schedule:" in proc.stdout
    study = optuna.load_study(study_name="mine", storage=storage)
    assert len(study.trials) == 2
    assert list((tmp_path / "shared" / "mine_prefix_cache").iterdir())  # the prefix cache sits in the shared folder
    assert list((tmp_path / "shared" / "mine").glob("*/checkpoint_*/*.pt"))  # and so do the trial checkpoints
    out = subprocess.run(
        [sys.executable, "-m", "growsearch.cli.commands", "export", "--storage", storage, "--study", "mine", "-o", str(tmp_path / "best")],
        check=False, capture_output=True, text=True, timeout=1200,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "best" / "best_schedule.json").is_file() and (tmp_path / "best" / "network.pt").is_file()
