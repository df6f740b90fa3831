"""growsearch inside the user's own Optuna study: Objective, CostPruner, constraints (no Ray)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from growsearch._io import held
from growsearch.errors import GrowsearchError
from growsearch.plan.schedule import Schedule, load_schedule
from growsearch.search.best import load_best
from growsearch.search.optuna import CostPruner, Objective, constraints
from helpers import constraints_of


def test_the_users_own_study_records_what_growsearch_search_records(setup, tmp_path: Path) -> None:
    space, frontier = setup
    storage = f"sqlite:///{tmp_path / 'mine.db'}"
    study = optuna.create_study(
        study_name="mine",
        storage=storage,
        pruner=CostPruner(),
        # Optuna ≥ 5 reads the constraint the objective sets on the trial; older ones need constraints_func
        sampler=optuna.samplers.TPESampler(
            seed=0,
            n_startup_trials=2,
            constraints_func=None if hasattr(optuna.trial.Trial, "set_constraint") else constraints,
        ),
    )
    study.optimize(Objective(space, frontier=frontier), n_trials=4)
    assert study.metric_names == ["M_ratio"]
    M_ref = study.user_attrs["M_ref"]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done
    for t in done:
        a = t.user_attrs
        assert t.value == pytest.approx(a["M"] / M_ref) == pytest.approx(a["M_ratio"])
        assert constraints_of(t) == [pytest.approx(study.user_attrs["target_acc"] - a["val_acc"])]
        assert a["feasible"] == (a["val_acc"] >= study.user_attrs["target_acc"])
        n = len(a["schedule"]["stages"])
        assert sorted(t.intermediate_values) == list(range(1, n + 1))  # one report per stage
        assert t.intermediate_values[n] == pytest.approx(t.value)  # the last is the whole run's M ratio
        assert a["planned_M"] == a["M"]  # fixed epochs: planned before training, equal after
    best = min((t for t in done if t.user_attrs["feasible"]), key=lambda t: t.value)
    loaded = load_best(storage, "mine")
    assert (
        loaded.stages == Schedule.from_dict(best.user_attrs["schedule"]).stages
        and loaded.threads == study.user_attrs["threads"]
    )
    out = tmp_path / "best.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "growsearch.cli.commands",
            "export",
            "--storage",
            storage,
            "--study",
            "mine",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr
    assert load_schedule(out).stages == Schedule.from_dict(best.user_attrs["schedule"]).stages


def test_two_objectives_with_nsga2(setup) -> None:
    space, frontier = setup
    study = optuna.create_study(
        directions=["minimize", "maximize"],
        sampler=optuna.samplers.NSGAIISampler(
            seed=0, constraints_func=None if hasattr(optuna.trial.Trial, "set_constraint") else constraints
        ),
    )
    study.optimize(Objective(space, frontier=frontier, second="val_acc"), n_trials=3)
    assert study.metric_names == ["M_ratio", "val_acc"]
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE  # nothing is pruned with two objectives
        assert t.values == [pytest.approx(t.user_attrs["M_ratio"]), pytest.approx(t.user_attrs["val_acc"])]


def test_a_study_of_the_wrong_shape_is_a_clear_error(setup) -> None:
    space, frontier = setup
    study = optuna.create_study()
    with pytest.raises(GrowsearchError, match="directions=\\['minimize', 'maximize'\\]"):
        Objective(space, frontier=frontier, second="val_acc")(study.ask())
    with pytest.raises(GrowsearchError, match="fgsm_eps"):
        Objective(space, frontier=frontier, second="fgsm_mi_acc")
    with pytest.raises(GrowsearchError, match="needs a frontier"):
        Objective(space)(optuna.create_study().ask())


def test_the_cost_pruner_prunes_once_the_best_feasible_ratio_is_reached() -> None:
    study = optuna.create_study(pruner=CostPruner())
    trial = study.ask()
    trial.report(5.0, 1)
    assert not trial.should_prune()  # no feasible trial yet
    attrs = {"M_ratio": 0.5, "feasible": True, "final": True, "schedule": {}}
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs=attrs))
    study.add_trial(
        optuna.trial.create_trial(value=0.1, user_attrs={**attrs, "M_ratio": 0.1, "feasible": False})
    )  # infeasible: no bar
    trial.report(0.49, 2)
    assert not trial.should_prune()
    trial.report(0.5, 3)
    assert trial.should_prune()


def test_the_best_network_is_an_artifact_that_export_fetches_and_that_reproduces_its_accuracy(
    setup, tmp_path: Path
) -> None:
    import json

    import torch

    from growsearch.data.dataset import create_dataset
    from growsearch.data.split import with_validation
    from growsearch.train.results import load_checkpoint

    space, frontier = setup
    storage = f"sqlite:///{tmp_path / 'a.db'}"
    study = optuna.create_study(
        study_name="a", storage=storage, pruner=CostPruner(), sampler=optuna.samplers.TPESampler(seed=1)
    )
    study.optimize(Objective(space, frontier=frontier, out_dir=tmp_path / "out"), n_trials=3)
    best = min((t for t in study.trials if t.user_attrs.get("feasible")), key=lambda t: t.value)
    metas = optuna.artifacts.get_all_artifact_meta(best, storage=study._storage)
    assert {m.artifact_id for m in metas} == {best.user_attrs["network_artifact"], best.user_attrs["result_artifact"]}
    # named and typed as the dashboard lists them (the cache's hash name and a PowerPoint type before)
    assert {(m.filename, m.mimetype) for m in metas} == {
        ("network.pt", "application/octet-stream"),
        ("result.json", "application/json"),
    }

    out = tmp_path / "export"
    with held(out, OSError):
        (out / "network.pt").write_bytes(b"stale")  # an earlier export's file is replaced, never kept
        (out / "best_schedule.json").write_text("{}")
    cmd = [
        sys.executable,
        "-m",
        "growsearch.cli.commands",
        "export",
        "--storage",
        storage,
        "--study",
        "a",
        "-o",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "pass --overwrite" in proc.stderr and (out / "network.pt").read_bytes() == b"stale"
    proc = subprocess.run([*cmd, "--overwrite"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "trained final network" in proc.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["M"] == best.user_attrs["M"] and result["val_acc"] == best.user_attrs["val_acc"]
    assert load_schedule(out / "best_schedule.json").stages == Schedule.from_dict(best.user_attrs["schedule"]).stages

    # the downloaded network scores the trial's recorded validation accuracy
    model, ckpt = load_checkpoint(out / "network.pt")
    ds = with_validation(create_dataset(result["schedule"]["dataset"]), 0.1, 0)
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) * 255 for v in (ds.mean, ds.std))
    with torch.no_grad():
        pred = model.eval()((ds.x_val.float() - mean) / std).argmax(1)
    acc = (torch.tensor(ckpt["classes"])[pred] == ds.y_val).float().mean().item()
    assert acc == pytest.approx(best.user_attrs["val_acc"], abs=1e-6)


def test_a_floor_on_fgsm_accuracy_is_a_second_constraint(setup, tmp_path: Path) -> None:
    space, frontier = setup
    with pytest.raises(GrowsearchError, match="min_fgsm_acc needs fgsm_eps"):
        Objective(space, frontier=frontier, min_fgsm_acc=0.5)
    runs = {}
    for floor in (0.0, 1.01):  # always met / never met (accuracy ≤ 1)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(
            Objective(space, frontier=frontier, out_dir=tmp_path / f"f{floor}", fgsm_eps=0.02, min_fgsm_acc=floor),
            n_trials=2,
        )
        runs[floor] = done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert done and study.user_attrs["robust"]["min_acc"] == floor
        for t in done:
            a = t.user_attrs
            assert constraints_of(t) == [
                pytest.approx(study.user_attrs["target_acc"] - a["val_acc"]),
                pytest.approx(floor - a["fgsm_mi_acc"]),
            ]
            assert a["feasible"] == (a["val_acc"] >= study.user_attrs["target_acc"] and a["fgsm_mi_acc"] >= floor)
    assert any(
        t.user_attrs["feasible"] for t in runs[0.0]
    )  # the same schedules (same sampler seed) reach the target...
    assert not any(t.user_attrs["feasible"] for t in runs[1.01])  # ...but not the floor
    assert not any("network_artifact" in t.user_attrs for t in runs[1.01])  # no infeasible trial is stored as the best


def test_a_wall_clock_objective_is_one_registered_cost(setup, tmp_path: Path) -> None:
    """``cost="wall_s"``: the same study records, pruning and best trial, judged on wall-clock
    seconds against the frontier's wall time at the target."""
    from growsearch.search.best import load_best
    from growsearch.search.judge import Judge
    from growsearch.search.optuna import default_sampler

    space, frontier = setup
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'wall.db'}",
        study_name="wall",
        sampler=default_sampler(0, 3),
        pruner=CostPruner(),
    )
    study.optimize(Objective(space, frontier=frontier, cost="wall_s"), n_trials=3)
    judge = Judge.from_study(study)
    assert study.metric_names == ["wall_ratio"] and judge.cost == "wall_s" and judge.metric == "wall_ratio"
    assert judge.ref_cost == pytest.approx(judge.frontier.scratch(judge.target, "wall_s")["wall_s"])
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and all(
        t.value == pytest.approx(sum(s["wall_s"] for s in t.user_attrs["stages"]) / judge.ref_cost) for t in done
    )
    assert all("M_ratio" not in t.user_attrs for t in done)
    if judge.best(study) is not None:
        assert load_best(study).stages == Schedule.from_dict(judge.best(study).user_attrs["schedule"]).stages


def test_a_new_objective_is_one_register_cost_call(setup) -> None:
    from growsearch.search.judge import Cost, register_cost
    from helpers import restored_registries

    space, frontier = setup
    with restored_registries():
        register_cost(
            Cost(
                "M_nonzero",
                "nonzero_ratio",
                lambda r: r.M_nonzero,
                frontier_key="M",
                what="MACs with zero weights skipped",
            )
        )
        study = optuna.create_study()
        study.optimize(Objective(space, frontier=frontier, cost="M_nonzero"), n_trials=2)
    assert study.metric_names == ["nonzero_ratio"]
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.value == pytest.approx(t.user_attrs["M_nonzero"] / study.user_attrs["ref_cost"])


def test_an_unknown_cost_is_refused_before_any_trial(setup) -> None:
    from growsearch.search.judge import SearchError

    with pytest.raises(SearchError, match="unknown cost 'joules'; known: M, family, wall_s"):
        Objective(setup[0], frontier=setup[1], cost="joules")


def test_a_diverging_trial_fails_with_its_reason_and_the_study_goes_on(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.nn.functional as F

    from growsearch.train import loop

    real = F.cross_entropy
    monkeypatch.setattr(loop.F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    study = optuna.create_study()
    study.optimize(Objective(setup[0], frontier=setup[1]), n_trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2
    assert all("diverged" in t.user_attrs["failed_because"] for t in study.trials)
    assert all("M_ratio" not in t.user_attrs for t in study.trials)  # nothing reported as a result


def test_a_judge_of_a_lambda_cost_pickles_by_name() -> None:
    import pickle

    from growsearch.search.judge import Cost, Judge, register_cost
    from growsearch.train.frontier import Frontier, FrontierPoint, Reference

    register_cost(Cost("lambda_M", "lambda_ratio", lambda r: float(r.M), frontier_key="M"))
    pts = [
        FrontierPoint(epochs=e, M=m, val_acc=a, test_acc=a, wall_s=1.0, lr=0.05)
        for e, m, a in ((2, 100, 0.8), (4, 200, 0.9))
    ]
    judge = Judge(
        Frontier("d", 10, list(range(10)), 0.1, 0, "x", {}, [Reference("r", "r", None, pts)]),
        tolerance=0.0,
        cost="lambda_M",
    )
    back = pickle.loads(pickle.dumps(judge))  # what Tune does to the searcher that holds it
    assert back.metric == "lambda_ratio" and back.ratio(100.0) == judge.ratio(100.0)


def test_studies_in_an_optuna_journal_file_are_read(tmp_path: Path) -> None:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from growsearch.search.best import _open

    path = tmp_path / "journal.log"
    optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(path))))
    assert _open(str(path), "s").study_name == "s"
    with pytest.raises(GrowsearchError, match="no Optuna journal file"):
        _open(str(tmp_path / "missing.log"), "s")
    assert not (tmp_path / "missing.log").exists()


def test_two_trial_threads_set_the_study_up_once(setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Optuna's n_jobs=2 runs two trials in threads at once: the frontier the study trains (and
    its line) must come once, not once per thread (issue 44)."""
    space, _ = setup
    small = tmp_path / "space.yaml"  # a one-run frontier: its training is what must happen once
    small.write_text(space.read_text() + "budgets: [1]\nbaseline_lrs: [0.05]\nfrontier_archs: [vgg13@0.125]\n")
    study = optuna.create_study(study_name="two", storage=f"sqlite:///{tmp_path / 'two.db'}")
    study.optimize(Objective(small, out_dir=tmp_path / "out"), n_trials=2, n_jobs=2)
    out = capsys.readouterr().out
    assert out.count("frontier: training") == 1, out
    assert len([t for t in study.trials if t.state.is_finished()]) == 2
