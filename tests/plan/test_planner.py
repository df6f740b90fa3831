"""The planning layer: a schedule's networks, ops and M known before training, equal to what trains."""

from __future__ import annotations

import subprocess

import pytest

from growsearch.data.dataset import create_dataset
from growsearch.model.arch import ArchSpec
from growsearch.plan.planner import plan_schedule, plan_table, planned_M
from growsearch.plan.schedule import Schedule, ScheduleError, Stage, TrainConfig
from growsearch.train.run import run_schedule
from helpers import growsearch_argv

# every family and every op: prune, deepen, widen, add classes, stem rescale, resolution change
CASES = {
    "vgg: deepen + add classes": [Stage(2, "vgg11@0.125", 1), Stage(4, "vgg13@0.125", 1)],
    "vgg: prune + deepen + widen + zero mask": [
        Stage(2, "vgg11@0.125", 2),
        Stage(4, "vgg13@0.25", 1, prune_ratio=0.5, zero_mask=True),
    ],
    "vgg: resolution 16 → 32, three stages": [
        Stage(2, "vgg11@0.125", 1, resolution=16),
        Stage(3, "vgg11@0.25", 1, resolution=16),
        Stage(4, "vgg13@0.25", 1),
    ],
    "resnet: deepen + widen": [Stage(2, "resnet10@0.125", 1), Stage(4, "resnet18@0.25", 1)],
    "resnet_stem7: stem rescaled 16 → 32 px": [
        Stage(2, "resnet10_stem7@0.125", 1, resolution=16),
        Stage(4, "resnet18_stem7@0.125", 1),
    ],
}


@pytest.mark.parametrize("name", list(CASES))
def test_planned_M_equals_trained_M(npz_data: str, name: str) -> None:
    sched = Schedule(npz_data, CASES[name], seed=1)
    ds = create_dataset(npz_data)
    plans = plan_schedule(sched, dataset=ds)
    result = run_schedule(sched, dataset=ds, progress=False)
    assert [p.M for p in plans] == [s.M for s in result.stages]
    assert planned_M(plans) == result.M
    assert [p.spec for p in plans] == [ArchSpec.from_dict(s.spec) for s in result.stages]
    assert [p.params for p in plans] == [s.params for s in result.stages]
    assert [p.resolution for p in plans] == [s.resolution for s in result.stages]


# every run-level lever and data-growth mode: what the planner bills is what training spends
LEVERS = {
    "global LR, re-warm, optimizer carried, new-param LR": dict(
        stages=[Stage(2, "vgg11@0.125", 1), Stage(4, "vgg13@0.25", 2, prune_ratio=0.5)],
        train=TrainConfig(
            batch_size=16,
            lr_schedule="global",
            rewarm_epochs=1,
            rewarm_peak=1.5,
            carry_optimizer=True,
            new_param_lr=2.0,
        ),
    ),
    "data by samples": dict(
        stages=[
            Stage(4, "vgg11@0.125", 2, fraction=0.3),
            Stage(4, "vgg13@0.125", 1, fraction=0.6),
            Stage(4, "vgg13@0.125", 1, fraction=1.0),
        ],
        data_growth="samples",
    ),
    "no data growth, deepen by copy": dict(
        stages=[Stage(4, "vgg13@0.125", 1), Stage(4, "vgg16@0.125", 1)], data_growth="none", deepen_init="copy"
    ),
    "per-stage LR with the optimizer carried": dict(
        stages=[Stage(2, "resnet10@0.125", 1), Stage(4, "resnet18@0.125", 1)], train=TrainConfig(carry_optimizer=True)
    ),
}


@pytest.mark.parametrize("name", list(LEVERS))
def test_planned_M_equals_trained_M_with_every_lever(npz_data: str, name: str) -> None:
    sched = Schedule(npz_data, seed=1, **LEVERS[name])
    ds = create_dataset(npz_data)
    plans = plan_schedule(sched, dataset=ds)
    result = run_schedule(sched, dataset=ds, progress=False)
    assert [p.M for p in plans] == [s.M for s in result.stages]
    assert [p.samples_per_epoch * p.epochs for p in plans] == [s.samples for s in result.stages]
    assert planned_M(plans) == result.M


def test_copy_deepening_says_it_is_not_function_preserving_in_the_plan(npz_data: str) -> None:
    plans = plan_schedule(Schedule(npz_data, **LEVERS["no data growth, deepen by copy"]))
    assert plans[1].ops == ("deepen by copy (3 of 3 new layers copied from trained ones; not function-preserving)",)


def test_ops_name_each_transition_in_order(npz_data: str) -> None:
    plans = plan_schedule(Schedule(npz_data, CASES["vgg: prune + deepen + widen + zero mask"]))
    assert plans[0].ops == ("build",) and plans[0].spec_before is None
    assert plans[1].ops == ("prune R=0.5", "deepen", "widen", "add classes 2→4", "zero mask")
    assert plans[1].spec_before == plans[0].spec
    stem = plan_schedule(Schedule(npz_data, CASES["resnet_stem7: stem rescaled 16 → 32 px"]))
    assert stem[0].ops == ("build with a 5x5 stem kernel",) and stem[0].spec.stem_kernel == 5
    assert stem[1].ops == ("deepen", "add classes 2→4", "rescale stem to 7x7", "resolution 16→32 px")


def test_a_plateau_stage_has_no_planned_M(npz_data: str) -> None:
    plans = plan_schedule(Schedule(npz_data, [Stage(2, "vgg11@0.125", 5, patience=1), Stage(4, "vgg13@0.125", 1)]))
    assert plans[0].M is None and plans[0].M_max == 5 * plans[0].samples_per_epoch * plans[0].macs_per_sample
    assert planned_M(plans) is None
    assert "≤" in plan_table(plans).splitlines()[-1]


def test_samples_follow_the_classes_and_the_validation_split(npz_data: str) -> None:
    # 48 train images, 12 per class; val_fraction 0.1 holds out 1 per class
    plans = plan_schedule(Schedule(npz_data, [Stage(2, "vgg11@0.125", 3), Stage(4, "vgg13@0.125", 1)]))
    assert [p.samples_per_epoch for p in plans] == [22, 44]


def test_an_impossible_schedule_is_a_planning_error_with_the_run_message(npz_data: str) -> None:
    bad = Schedule(npz_data, [Stage(2, "vgg13@0.125", 1), Stage(4, "vgg11@0.125", 1)])
    with pytest.raises(ScheduleError) as planned:
        plan_schedule(bad)
    with pytest.raises(ScheduleError) as ran:
        run_schedule(bad, progress=False)
    assert str(planned.value) == str(ran.value) and "must not shrink" in str(planned.value)


def test_dry_run_prints_the_plan_and_writes_nothing(npz_data: str, tmp_path) -> None:
    sched = Schedule(npz_data, CASES["vgg: deepen + add classes"])
    path = tmp_path / "s.json"
    sched.save(path)
    out = tmp_path / "out"
    proc = subprocess.run(
        growsearch_argv("run", str(path), "--out", str(out), "--dry-run"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    total = planned_M(plan_schedule(sched))
    assert f"total M {total:.4e}" in proc.stdout and "deepen, add classes 2→4" in proc.stdout
    assert not out.exists()


def test_results_match_the_fixture_made_before_the_planning_layer(tmp_path) -> None:
    """The same schedule, seed, data and thread count give the same run as the code before the
    planning layer (tests/fixtures/before_plan.json, made at commit 972bffd).

    What the code decides (M, MACs, parameters, every spec, samples, epochs, resolutions) must be
    equal. What training computes in floating point differs in its last digits between library
    versions and CPUs (the final weights' sum was 5199.824 where the fixture was made, 5203.468
    on a fresh install elsewhere), so those are compared within a tolerance: 1% on the weights'
    sum, and one validation or test image on each accuracy (the splits hold 3 to 6 images).
    M_nonzero counts the weights that are exactly zero after pruning by trained filter norms, so it
    moves with the floating point too: the input normalisation is now computed from exact integer
    sums rather than float32 ones, which moved it by 4e-5; it is compared within 1e-3."""
    import json
    from pathlib import Path

    import numpy as np
    import torch

    from helpers import images

    want = json.loads((Path(__file__).parent / "fixtures" / "before_plan.json").read_text())
    xtr, ytr = images(48, 4, 32, 3, 0)
    xte, yte = images(24, 4, 32, 3, 1)
    np.savez(tmp_path / "tiny.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    stages = [
        Stage(2, "vgg11@0.125", 3, resolution=16),
        Stage(3, "vgg13@0.25", 3, prune_ratio=0.5, zero_mask=True),
        Stage(4, "vgg16@0.25", 4),
    ]
    r = run_schedule(
        Schedule(f"npz:{tmp_path / 'tiny.npz'}", stages, seed=3, threads=1), progress=False, out_dir=tmp_path / "run"
    )
    sd = torch.load(tmp_path / "run" / "stage3.pt", weights_only=True)["state_dict"]
    got = {
        "M": r.M,
        "val_acc": r.val_acc,
        "test_acc": r.test_acc,
        "M_nonzero": r.M_nonzero,
        "params": r.params,
        "stages": [
            {
                k: getattr(s, k)
                for k in (
                    "classes",
                    "epochs",
                    "samples",
                    "macs_per_sample",
                    "M",
                    "val_acc",
                    "test_acc",
                    "params",
                    "spec",
                    "resolution",
                    "M_nonzero",
                )
            }
            | {"history_val_acc": [h["val_acc"] for h in s.history]}
            for s in r.stages
        ],
        "final_weights_sum": sum(float(v.double().abs().sum()) for v in sd.values() if v.is_floating_point()),
    }
    want.pop("made_with")
    floats = ("val_acc", "test_acc", "history_val_acc", "M_nonzero")
    assert {k: v for k, v in got.items() if k not in (*floats, "stages", "final_weights_sum")} == {
        k: v for k, v in want.items() if k not in (*floats, "stages", "final_weights_sum")
    }
    assert got["M_nonzero"] == pytest.approx(want["M_nonzero"], rel=1e-3)
    for g, w in zip(got["stages"], want["stages"], strict=True):
        assert {k: v for k, v in g.items() if k not in floats} == {k: v for k, v in w.items() if k not in floats}
        assert g["M_nonzero"] == pytest.approx(w["M_nonzero"], rel=1e-3)
        one_image = 1 / 3 + 1e-9  # the smallest split here holds 3 images
        assert abs(g["val_acc"] - w["val_acc"]) <= one_image and abs(g["test_acc"] - w["test_acc"]) <= one_image
        assert len(g["history_val_acc"]) == len(w["history_val_acc"])
    assert got["final_weights_sum"] == pytest.approx(want["final_weights_sum"], rel=0.01)


def test_a_stage_whose_classes_have_no_test_images_is_refused_before_training() -> None:
    """Its test accuracy would read 0.0 (0 of 0) in result.json (issue 43): refused by the plan."""
    import numpy as np

    from growsearch.data.dataset import from_arrays

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (60, 8, 8, 3), dtype=np.uint8)
    y = np.arange(60) % 3
    ds = from_arrays("gap", x[:48], y[:48], x[48:], np.where(y[48:] == 2, 0, y[48:]))  # no class-2 test image
    sched = Schedule("gap", [Stage(1, "vgg11@0.125", 1), Stage(3, "vgg11@0.125", 1)], class_order=[2, 0, 1])
    with pytest.raises(ScheduleError, match=r"stage 1: its 1 class\(es\) \(2\) have no test images"):
        plan_schedule(sched, dataset=ds)
    plan_schedule(Schedule("gap", sched.stages, class_order=[0, 2, 1]), dataset=ds)  # a stage that has some is fine
