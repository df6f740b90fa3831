"""What a user registers in the driver reaches the Ray workers a search starts, and keys the prefix cache."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from growsearch import _extensions
from growsearch.data.dataset import from_arrays, register_source
from growsearch.model.arch import get_family, register_family
from growsearch.model.ops import register_op, transition_ops, unregister_op
from growsearch.plan.schedule import Schedule, Stage
from growsearch.train.prefix import prefix_key
from helpers import DoubleLastBlock, restored_registries


def _dots(arg: str | None):
    """Four classes of 16x16 images whose brightness is the class, with noise."""
    rng = np.random.default_rng(int(arg or 0))
    y = np.arange(80) % 4
    x = np.clip((y[:, None, None, None] + 0.5) * 50 + rng.normal(0, 20, (80, 16, 16, 3)), 0, 255).astype(np.uint8)
    return from_arrays("dots", x[:64], y[:64], x[64:], y[64:])


def test_registrations_from_outside_the_package_are_recorded_and_placed() -> None:
    with restored_registries():
        register_family(replace(get_family("vgg"), name="tinyvgg", depths={"tinyvgg5": (1, 1, 1, 1, 1)}))
        register_source("dots")(_dots)
        register_op(DoubleLastBlock(), after="widen")
        assert _extensions.made()[-3:] == [
            "register_family tinyvgg",
            "_add_source dots",
            "register_op double last block",
        ]
        assert [op.name for op in transition_ops()].index("double last block") == [
            op.name for op in transition_ops()
        ].index("widen") + 1
        assert _extensions.worker_setup_hook() is not None
        unregister_op("double last block")
        assert "register_op double last block" not in _extensions.made()
    assert "register_family tinyvgg" not in _extensions.made()  # restored


def test_the_prefix_key_changes_with_the_ops_and_the_family_definition() -> None:
    sched = Schedule("digits", [Stage(5, "vgg11@0.125", 1), Stage(10, "vgg13@0.125", 1)])
    before = prefix_key(sched, 1, list(range(10)))
    with restored_registries():
        register_op(DoubleLastBlock())
        assert prefix_key(sched, 1, list(range(10))) != before  # another transition: another network
    assert prefix_key(sched, 1, list(range(10))) == before
    with restored_registries():
        register_family(
            replace(get_family("vgg"), base_widths=(32, 64, 128, 256, 256))
        )  # "vgg" changed under its own name
        assert prefix_key(sched, 1, list(range(10))) != before


def test_the_prefix_key_is_the_same_in_every_process() -> None:
    """A key that drifts between processes (a memory address hashed in) would make every
    resume and every cached prefix miss: a run killed by the CLI could not be resumed."""
    import subprocess
    import sys

    from growsearch.plan.schedule import Schedule, Stage
    from growsearch.train.prefix import prefix_key

    code = (
        "from growsearch.plan.schedule import Schedule, Stage; from growsearch.train.prefix import prefix_key; "
        "print(prefix_key(Schedule('digits', [Stage(4, 'vgg11@0.125', 1), Stage(10, 'vgg13@0.125', 1)]), 2, list(range(10))))"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    here = prefix_key(Schedule("digits", [Stage(4, "vgg11@0.125", 1), Stage(10, "vgg13@0.125", 1)]), 2, list(range(10)))
    assert there == here


@pytest.mark.ray
@pytest.mark.slow
def test_a_family_source_and_op_registered_in_the_driver_train_in_a_search(tmp_path: Path) -> None:
    import ray

    from growsearch.search.driver import run_search

    space = tmp_path / "space.yaml"
    space.write_text(
        "dataset: dots\nfinal_arch: tinyvgg5@0.25\narchs: [tinyvgg5@0.125]\nstages: [2, 2]\nsplit: [0.5, 0.5]\nepochs: [1, 1]\n"
        "tolerance: 0.5\nbudgets: [1]\nseed: 0\n"
    )
    with restored_registries():
        register_family(replace(get_family("vgg"), name="tinyvgg", depths={"tinyvgg5": (1, 1, 1, 1, 1)}, min_input=16))
        register_source("dots")(_dots)
        register_op(DoubleLastBlock(), after="widen")
        try:
            res = run_search(space, out_dir=tmp_path / "out", trials=2)
        finally:
            ray.shutdown()
    assert res.trials == 2 and res.frontier.references[0].arch == "tinyvgg5@0.25"
    results = [json.loads(p.read_text()) for p in (tmp_path / "out" / "prefix_cache").glob("*.result.json")]
    assert results, "no trial finished in a Ray worker"
    for r in results:  # trained in a worker, with the driver's op: the last block doubled at stage 2
        first, last = r["stages"][0]["spec"]["widths"], r["stages"][-1]["spec"]["widths"]
        assert last[-1] == [2 * 2 * w for w in first[-1]]  # @0.125 → @0.25, then doubled by the op


def test_tune_pieces_refuses_registrations_ray_workers_would_not_know(tmp_path) -> None:
    """A user who registers a family and lets Tuner.fit start Ray (or starts it without
    growsearch.runtime_env()) got every trial failing in its worker with "unknown arch": now
    tune_pieces says so up front, naming the fix (issue 44)."""
    import pytest
    import ray

    from growsearch.search.judge import SearchError
    from growsearch.search.tune import tune_pieces

    assert not ray.is_initialized()
    with restored_registries():
        register_family(replace(get_family("vgg"), name="tinyvgg", depths={"tinyvgg5": (1, 1, 1, 1, 1)}))
        with pytest.raises(SearchError, match=r"ray.init\(runtime_env=growsearch.runtime_env\(\)\)"):
            tune_pieces(
                "digits_vgg", tmp_path / "none", storage=f"sqlite:///{tmp_path / 'x.db'}", cache_dir=tmp_path, trials=1
            )
    assert not (tmp_path / "x.db").exists() and not ray.is_initialized()


@pytest.mark.ray
@pytest.mark.slow
def test_a_cost_registered_with_a_lambda_runs_a_tune_search_to_the_end(setup, tmp_path: Path) -> None:
    """register_cost's own docstring example (a lambda) under Tune: Tuner.fit pickles the
    searcher that holds the judge, and every trial's worker judges by that cost. It raised
    PicklingError (issue 44); now the cost travels by name, and Ray started with
    growsearch.runtime_env() gives the workers the registration."""
    import optuna
    import ray
    from ray import tune

    from growsearch import runtime_env, tune_pieces
    from growsearch.search import judge

    space, frontier = setup
    storage = f"sqlite:///{tmp_path / 'lambda.db'}"
    with restored_registries():
        judge.register_cost(judge.Cost("lambda_M", "lambda_ratio", lambda r: float(r.M), frontier_key="M"))
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env())
        try:
            p = tune_pieces(
                space,
                frontier,
                storage=storage,
                study_name="lam",
                cache_dir=tmp_path / "cache",
                trials=2,
                cost="lambda_M",
            )
            grid = tune.Tuner(
                p.trainable,
                tune_config=tune.TuneConfig(search_alg=p.search_alg, num_samples=2),
                run_config=tune.RunConfig(name="lam", storage_path=str(tmp_path / "tune"), stop=p.stop, verbose=0),
            ).fit()
        finally:
            ray.shutdown()
    assert grid.num_errors == 0 and len(grid) == 2
    study = optuna.load_study(study_name="lam", storage=storage)
    assert study.metric_names == ["lambda_ratio"]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert study.user_attrs["cost"] == "lambda_M"
    assert done and all(t.value == pytest.approx(t.user_attrs["M"] / study.user_attrs["ref_cost"]) for t in done)
