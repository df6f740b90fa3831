"""Searching a shrink block: the space proposes it, and the family objective judges every subnet on its own frontier."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import FixedTrial

from growsearch.search.judge import Judge
from growsearch.search.optuna import Objective
from growsearch.search.space import SpaceError, load_space, schedule_params, suggest_schedule
from growsearch.train.family import matches

SHRINK_SPACE = """dataset: npz:{data}
final_arch: vgg13@0.125
archs: [vgg11@0.125]
stages: [1, 2]
split: [0.5, 0.5]
epochs: [1, 2]
budgets: [1]
tolerance: 0.5
seed: 0
train: {{batch_size: 8}}
shrink: {{depths: [vgg11], widths: [0.5], start: [0.0, 1.0], ramp_epochs: [0, 1], subnets_per_step: [0, 1], temperature: 2, recal_images: 16}}
"""


@pytest.fixture
def shrink_space(setup, tmp_path: Path) -> Path:
    space, _ = setup
    path = tmp_path / "shrink.yaml"
    path.write_text(SHRINK_SPACE.format(data=space.parent / "tiny.npz"))
    return path


def test_the_space_proposes_a_shrink_block_inside_its_ranges_and_maps_it_back(shrink_space: Path) -> None:
    sp = load_space(shrink_space)
    params = {
        "n_stages": 2,
        "classes_1": 2,
        "arch_1": 0,
        "epochs_1": 1,
        "epochs_2": 2,
        "shrink_start": 0.25,
        "shrink_ramp_epochs": 0.5,
        "shrink_subnets_per_step": 1,
    }
    sched = suggest_schedule(FixedTrial(params), sp, 4)
    assert sched.shrink is not None and (
        sched.shrink.start,
        sched.shrink.ramp_epochs,
        sched.shrink.subnets_per_step,
    ) == (0.25, 0.5, 1)
    assert (sched.shrink.depths, sched.shrink.widths, sched.shrink.temperature, sched.shrink.recal_images) == (
        ["vgg11"],
        [0.5],
        2,
        16,
    )
    assert schedule_params(sched, sp, 4) == params


@pytest.mark.parametrize(
    "shrink,msg",
    [
        ("{widths: [2]}", "shrink.widths: every width must be a fraction in (0, 1]"),
        ("{widths: [0.5], start: [0.5, 2]}", "shrink.start must be"),
        ("{depths: [vgg16]}", "deeper than the network"),
        ("{widths: [0.5], bogus: 1}", "unknown key(s) bogus"),
        ("{widths: [0.5], start: [0.8, 0.2]}", "min 0.8 is above max 0.2"),
    ],
)
def test_a_shrink_block_the_space_cannot_propose_is_refused_on_load(
    setup, tmp_path: Path, shrink: str, msg: str
) -> None:
    space, _ = setup
    path = tmp_path / "bad.yaml"
    path.write_text(SHRINK_SPACE.format(data=space.parent / "tiny.npz").rsplit("shrink:", 1)[0] + f"shrink: {shrink}\n")
    with pytest.raises(
        SpaceError, match=msg.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    ):
        load_space(path)


def test_the_family_objective_judges_every_subnet_on_its_own_frontier(shrink_space: Path, tmp_path: Path) -> None:
    from growsearch.cli.commands import main
    from growsearch.train.results import RunResult

    storage = f"sqlite:///{tmp_path / 'fam.db'}"
    study = optuna.create_study(storage=storage, study_name="fam", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(Objective(shrink_space, out_dir=tmp_path / "out", cost="family"), n_trials=2)
    judge = Judge.from_study(study)
    assert study.metric_names == ["family_ratio"] and judge.cost == "family"
    refs = judge.frontier.references
    assert [r.name for r in refs] == [
        "vgg11@0.0625",
        "vgg11@0.125",
        "vgg13@0.0625",
        "vgg13@0.125",
    ]  # every subnet, the smallest first
    assert judge.ref_cost == pytest.approx(sum(m[2]["M"] for m in judge.members))
    assert [m[1] for m in judge.members] == [pytest.approx(max(p.val_acc for p in r.points) - 0.5) for r in refs]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done
    for t in done:
        a = t.user_attrs
        assert t.value == pytest.approx(a["M"] / judge.ref_cost)
        subs = a["subnets"]
        assert len(subs) == 4 and all(s["target"] is not None for s in subs)
        assert a["feasible"] == all(s["val_acc"] >= s["target"] for s in subs)
        assert "start" in a["schedule"]["shrink"]
    # the best trial's network is a family: exported, growsearch subnets cuts from it
    assert main(["export", "--storage", storage, "--study", "fam", "-o", str(tmp_path / "best")]) == 0
    row = RunResult.load(tmp_path / "best").subnets[0]
    assert main(["subnets", str(tmp_path / "best"), "--spec", row["subnet"], "-o", str(tmp_path / "cut")]) == 0
    assert RunResult.load(tmp_path / "cut").val_acc == row["val_acc"]


def test_the_family_cost_needs_a_shrink_block(setup) -> None:
    space, frontier = setup
    from growsearch.search.judge import SearchError

    with pytest.raises(SearchError, match="shrink block"):
        Objective(space, frontier=frontier, cost="family")


def test_a_subnet_without_its_frontier_makes_the_trial_infeasible(shrink_space: Path) -> None:
    from growsearch.train.frontier import Frontier, FrontierPoint, Reference
    from growsearch.train.results import RunResult, StageResult

    pts = [FrontierPoint(epochs=1, M=100, val_acc=0.5, test_acc=0.5, wall_s=1.0, lr=0.05)]
    spec = {"family": "vgg", "widths": [[8], [16], [32, 32], [64, 64], [64, 64]], "num_classes": 4, "in_chans": 3}
    front = Frontier("x", 4, [0, 1, 2, 3], 0.1, 0, "id", {}, [Reference("vgg11@0.125", "vgg11@0.125", None, pts)])
    assert matches(front.references[0], spec, 4)
    judge = Judge(front, 0.0, cost="family")
    row = {"subnet": "vgg11:1", "arch": "vgg11@0.125", "spec": spec, "val_acc": 0.6, "test_acc": 0.6}
    other = {**row, "subnet": "vgg13:1", "spec": {**spec, "widths": [[8, 8], [16, 16], [32, 32], [64, 64], [64, 64]]}}
    result = RunResult(
        M=50,
        test_acc=0.6,
        wall_s=1.0,
        macs_per_sample=1,
        stages=[StageResult(4, "vgg13@0.125", 1, 1, 1, 50, 0.6, 1.0)],
        val_acc=0.6,
    )
    assert judge.metrics(RunResult(**{**result.__dict__, "subnets": [row]}))["feasible"]
    assert not judge.metrics(RunResult(**{**result.__dict__, "subnets": [row, other]}))["feasible"]
    assert not judge.metrics(result)["feasible"]  # no family at all
