"""growsearch's pieces in the user's own Ray Tune Tuner: trainable, searcher, stopper, trial lines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest

from growsearch.plan.schedule import Schedule
from growsearch.search.best import load_best
from growsearch.search.cluster import runtime_env
from helpers import REPO, constraints_of


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for this module's Tuner tests (a start costs seconds on two cores)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env())
    yield
    ray.shutdown()


@pytest.mark.ray
@pytest.mark.slow
def test_the_users_own_tuner_with_growsearch_pieces(setup, local_ray, tmp_path: Path) -> None:
    from ray import tune

    from growsearch.search.tune import tune_pieces

    space, frontier = setup
    storage = f"sqlite:///{tmp_path / 'mine.db'}"
    shared = tmp_path / "shared"  # what a multi-node user points RunConfig(storage_path=...) at

    p = tune_pieces(
        space,
        frontier,
        storage=storage,
        study_name="mine",
        cache_dir=shared / "prefix_cache",
        trials=3,
        artifacts=tmp_path / "artifacts",
    )
    tuner = tune.Tuner(
        p.trainable,
        tune_config=tune.TuneConfig(search_alg=p.search_alg, num_samples=3),
        run_config=tune.RunConfig(name="mine", storage_path=str(shared), stop=p.stop, callbacks=p.callbacks, verbose=0),
    )
    grid = tuner.fit()
    assert grid.num_errors == 0
    study = optuna.load_study(study_name="mine", storage=storage)
    assert len(study.trials) == 3 and study.metric_names == ["M_ratio"]
    M_ref = study.user_attrs["M_ref"]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and all(t.value == pytest.approx(t.user_attrs["M"] / M_ref) for t in done)
    # the constraint stored once: the Optuna-5 way where there is one (not also as a user
    # attribute), else the user attribute constraints_func reads (Optuna 4, the floor)
    assert all(
        constraints_of(t) == [pytest.approx(study.user_attrs["target_acc"] - t.user_attrs["val_acc"])] for t in done
    )
    if hasattr(optuna.trial.Trial, "set_constraint"):
        # the Tune route writes the list form, which Optuna's samplers and optuna-dashboard both read
        assert all(set(t.constraints) == {"0"} and "constraint" not in t.user_attrs for t in done)
    best = min((t for t in done if t.user_attrs["feasible"]), key=lambda t: t.value)
    assert load_best(storage, "mine").stages == Schedule.from_dict(best.user_attrs["schedule"]).stages
    assert load_best(study).stages == load_best(storage, "mine").stages  # a Study object does too
    assert "network_artifact" in best.user_attrs and study.user_attrs["artifact_store"] == str(
        (tmp_path / "artifacts").resolve()
    )
    # every trial's stage checkpoints landed in the user's storage_path
    assert len(list((shared / "mine").glob("*/checkpoint_*/*.pt"))) >= len(done)
    # Tune's own tools read growsearch's reports right: the best result is the best feasible trial
    got = grid.get_best_result("M_ratio_feasible", "min")
    assert got.metrics["M_ratio"] == pytest.approx(best.value) and got.metrics["feasible"]
    assert all(set(r.metrics) >= {"M_ratio", "M_ratio_feasible", "stage_acc", "val_acc"} for r in grid)
    # what Tune's default loggers (CSV, JSON, TensorBoard) were given holds no inf: tensorboardX
    # warns "NaN or Inf found in input tensor" for each one (Tune's TensorBoard logger skips NaN)
    reports = _tune_reports(shared / "mine")
    assert len(reports) >= 3 and list((shared / "mine").glob("*/events.out.tfevents.*"))
    assert not [(k, v) for r in reports for k, v in r.items() if isinstance(v, float) and math.isinf(v)]


@pytest.mark.ray
@pytest.mark.slow
def test_a_rung_scheduler_runs_on_growsearch_reports(setup, local_ray, tmp_path: Path) -> None:
    """ASHA on the stage accuracy sees that key in every report, the plan's included (as 0:
    nothing trained yet), and its cut-offs never meet an all-NaN rung (numpy's warning)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from growsearch.search.tune import tune_pieces

    space, frontier = setup
    p = tune_pieces(
        space, frontier, storage=f"sqlite:///{tmp_path / 'asha.db'}", cache_dir=tmp_path / "cache", trials=3
    )
    grid = tune.Tuner(
        p.trainable,
        tune_config=tune.TuneConfig(
            search_alg=p.search_alg,
            num_samples=3,
            scheduler=ASHAScheduler(metric="stage_acc", mode="max", max_t=3, grace_period=1),
        ),
        run_config=tune.RunConfig(name="asha", storage_path=str(tmp_path / "tune"), callbacks=p.callbacks, verbose=0),
    ).fit()
    assert grid.num_errors == 0 and len(grid) == 3
    # every report ASHA ranked has a real stage accuracy, the plans' included (a rung of NaN plans
    # made numpy warn "All-NaN slice encountered" and gave a NaN cut-off)
    reports = _tune_reports(tmp_path / "tune" / "asha")
    assert any(r.get("planned") for r in reports)
    assert all(not math.isnan(r["stage_acc"]) for r in reports)


def _tune_reports(experiment: Path) -> list[dict]:
    """Every report of every trial, as Tune's JSON logger wrote it (each trial's result.json)."""
    return [json.loads(line) for f in experiment.glob("*/result.json") for line in f.read_text().splitlines()]


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["median", "hyperband"])
def test_a_scheduler_that_pauses_trials_keeps_the_winner(setup, local_ray, tmp_path: Path, scheduler: str) -> None:
    """MedianStoppingRule and HyperBand pause trials (after their final report too) and resume
    them from their checkpoints. A resumed trial sends no report twice (a replayed report was
    judged again and paused again, for ever: the search never ended), and the cost stopper never
    stops a trial by its own result (issue 44: the winner was recorded PRUNED and nothing could be
    exported). Each trial's reports reach Tune once: its iterations are its reports, in order."""
    import json

    from ray import tune
    from ray.tune.schedulers import HyperBandScheduler, MedianStoppingRule

    from growsearch.search.tune import tune_pieces

    space, frontier = setup
    storage = f"sqlite:///{tmp_path / 'paused.db'}"
    pausing = {
        "median": lambda: MedianStoppingRule(metric="stage_acc", mode="max", grace_period=0, min_samples_required=1),
        "hyperband": lambda: HyperBandScheduler(metric="stage_acc", mode="max", max_t=3),
    }[scheduler]()
    p = tune_pieces(space, frontier, storage=storage, study_name="paused", cache_dir=tmp_path / "cache", trials=3)
    grid = tune.Tuner(
        p.trainable,
        tune_config=tune.TuneConfig(search_alg=p.search_alg, num_samples=3, max_concurrent_trials=2, scheduler=pausing),
        run_config=tune.RunConfig(
            name="paused", storage_path=str(tmp_path / "tune"), stop=p.stop, callbacks=p.callbacks, verbose=0
        ),
    ).fit()
    study = optuna.load_study(study_name="paused", storage=storage)
    feasible = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("feasible")]
    assert feasible, [(t.number, t.state.name, t.user_attrs.get("feasible")) for t in study.trials]
    best = min(feasible, key=lambda t: t.value)
    assert grid.get_best_result("M_ratio_feasible", "min").metrics["M_ratio"] == pytest.approx(best.value)
    assert load_best(storage, "paused").stages == Schedule.from_dict(best.user_attrs["schedule"]).stages
    for r in grid:  # every report once: the stages climb, never repeat
        rows = [json.loads(line) for line in (Path(r.path) / "result.json").read_text().splitlines()]
        stages = [row["stage"] for row in rows]
        assert stages == sorted(set(stages)), stages


@pytest.mark.ray
@pytest.mark.slow
def test_the_cluster_example_runs_and_its_study_exports(setup, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    space, frontier = setup
    root = REPO
    storage = f"sqlite:///{tmp_path / 'mine.db'}"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run(
        [
            sys.executable,
            str(root / "examples" / "ray_cluster" / "tuner.py"),
            str(space),
            "--baseline",
            str(frontier),
            "--address",
            "local",
            "--storage-path",
            str(tmp_path / "shared"),
            "--storage",
            storage,
            "--trials",
            "2",
            "--cpus-per-trial",
            "2",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "best schedule:" in proc.stdout
    study = optuna.load_study(study_name="mine", storage=storage)
    assert len(study.trials) == 2
    assert list((tmp_path / "shared" / "mine_prefix_cache").iterdir())  # the prefix cache sits in the shared folder
    assert list((tmp_path / "shared" / "mine").glob("*/checkpoint_*/*.pt"))  # and so do the trial checkpoints
    from growsearch.cli.commands import main

    assert main(["export", "--storage", storage, "--study", "mine", "-o", str(tmp_path / "best")]) == 0
    assert (tmp_path / "best" / "best_schedule.json").is_file() and (tmp_path / "best" / "network.pt").is_file()


def test_the_cost_stopper_prunes_on_the_plan() -> None:
    from growsearch.search.tune import CostStopper

    nan = float("nan")
    stop = CostStopper()
    assert not stop("a", {"planned": True, "planned_ratio": 5.0, "M_ratio": nan})  # no feasible trial yet
    assert not stop("a", {"final": True, "feasible": True, "M_ratio": 0.5})
    assert stop("b", {"planned": True, "planned_ratio": 0.5, "M_ratio": nan})  # cannot beat 0.5
    assert not stop("c", {"planned": True, "planned_ratio": 0.49, "M_ratio": nan})
    assert stop("c", {"stage": 1, "cum_ratio": 0.5, "M_ratio": nan})  # the cumulative rule
    assert not stop("d", {"stage": 1, "cum_ratio": nan, "M_ratio": nan})  # a cost unknown mid-run stops nothing


def test_a_finished_trial_a_scheduler_pauses_and_resumes_is_not_stopped_by_its_own_result() -> None:
    """MedianStoppingRule, HyperBand and PBT pause a trial after its final report and resume it
    from its checkpoint: it replays its plan report, whose ratio equals its own best. Stopping it
    then turned the study's winner PRUNED (issue 44)."""
    from growsearch.search.tune import CostStopper

    nan = float("nan")
    stop = CostStopper()
    assert not stop("a", {"planned": True, "planned_ratio": 0.5, "M_ratio": nan})
    assert not stop("a", {"final": True, "feasible": True, "M_ratio": 0.5})
    assert not stop("a", {"planned": True, "planned_ratio": 0.5, "M_ratio": nan})  # resumed: the replay
    assert not stop("a", {"final": True, "feasible": True, "M_ratio": 0.5})
    assert stop("b", {"planned": True, "planned_ratio": 0.5, "M_ratio": nan})  # another trial is still stopped
    assert not stop("c", {"final": True, "feasible": False, "M_ratio": 0.1})  # infeasible: no bound
    assert stop.best == 0.5


def test_the_searcher_restored_from_its_checkpoint_tells_the_trials_it_asked(setup, tmp_path: Path) -> None:
    """Tuner.restore gives a fresh searcher Tune's saved searcher state: the Tune trials running
    when the driver stopped must finish into the Optuna trials they were asked as, and new
    proposals continue the study's numbering (the searcher is built on Optuna's ask-and-tell)."""
    from growsearch.search.tune import Searcher

    space, frontier = setup
    storage = f"sqlite:///{tmp_path / 'restore.db'}"
    first = Searcher(space, frontier, storage=storage, study_name="r")
    proposed = [first.suggest(tid) for tid in ("t1", "t2")]
    assert [c["trial"] for c in proposed] == [0, 1] and all("schedule" in c for c in proposed)
    assert first.suggest("t1") == {**proposed[0], "bound": proposed[0]["bound"]}  # asked once per Tune trial
    first.on_trial_complete("t1", {"final": False, "stage": 1})  # stopped before its last stage
    first.save(str(tmp_path / "searcher.pkl"))

    again = Searcher(space, frontier, storage=storage, study_name="r")
    again.restore(str(tmp_path / "searcher.pkl"))
    again.on_trial_complete("t1", {"final": False, "stage": 1})  # already told: nothing twice
    again.on_trial_complete("t2", error=True)
    assert again.suggest("t3")["trial"] == 2
    states = [t.state for t in optuna.load_study(study_name="r", storage=storage).trials]
    assert states == [optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING]


def test_a_trial_that_reports_another_trials_schedule_stops_the_search(setup, tmp_path: Path) -> None:
    """PopulationBasedTraining's exploit copies one trial's config and checkpoint into another,
    which would then report the other's schedule as its own Optuna trial's: refused in one line."""
    from growsearch.search.judge import SearchError
    from growsearch.search.tune import Searcher

    space, frontier = setup
    s = Searcher(space, frontier, storage=f"sqlite:///{tmp_path / 'pbt.db'}", study_name="pbt")
    a, b = s.suggest("a"), s.suggest("b")
    s.on_trial_result("a", {"stage": 1, "cum_ratio": 0.3, "config/trial": a["trial"]})  # its own: fine
    with pytest.raises(SearchError, match=r"PopulationBasedTraining.*use FIFO, ASHA") as e:
        s.on_trial_result("b", {"stage": 1, "cum_ratio": 0.3, "config/trial": a["trial"]})
    assert "\n" not in str(e.value) and f"({b['trial']})" in str(e.value)
    with pytest.raises(SearchError, match="PopulationBasedTraining"):
        s.on_trial_complete("b", {"final": True, "stage": 2, "config": {"trial": a["trial"]}})
