"""The shrink phase in a run: what it trains and costs, what it records, and cutting a subnet out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from growsearch.cli.commands import main
from growsearch.model.arch import spec_for
from growsearch.plan.planner import plan_schedule, planned_M
from growsearch.plan.schedule import Schedule, ScheduleError, Shrink, Stage, TrainConfig
from growsearch.plan.shrink import plan_shrink
from growsearch.train.family import family_ratio
from growsearch.train.frontier import Frontier, FrontierPoint, Reference
from growsearch.train.prefix import prefix_key
from growsearch.train.results import RunResult, load_checkpoint
from growsearch.train.run import run_schedule


def _sched(data: str, plain: bool = False, **shrink) -> Schedule:
    return Schedule(
        data,
        [Stage(2, "vgg11@0.125", 1), Stage(4, "vgg13@0.125", 3)],
        seed=1,
        train=TrainConfig(batch_size=8),
        shrink=Shrink(**{"depths": ["vgg11"], "widths": [0.5], "start": 0.3, "ramp_epochs": 1, **shrink})
        if not plain
        else None,
    )


@pytest.fixture(scope="module")
def shrunk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Schedule]:
    import numpy as np

    from helpers import images

    root = tmp_path_factory.mktemp("shrink")
    xtr, ytr = images(48, 4, 32, 3, 0)
    xte, yte = images(24, 4, 32, 3, 1)
    np.savez(root / "tiny.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    sched = _sched(f"npz:{root / 'tiny.npz'}", recal_images=20)
    sched.save(root / "s.json")
    assert main(["run", str(root / "s.json"), "--out", str(root / "run"), "--quiet"]) == 0
    return root, sched


def test_planned_m_is_trained_m_with_every_subnet_pass_counted(shrunk) -> None:
    root, sched = shrunk
    r = RunResult.load(root / "run")
    plan = plan_schedule(sched)[-1].shrink
    assert r.M == planned_M(plan_schedule(sched)) == sum(s.M for s in r.stages)
    assert r.shrink["M_train"] == plan.M_train > 0 and r.shrink["M_recal"] == 20 * sum(
        s.macs_per_sample for s in plan.subnets
    )
    assert (
        r.stages[-1].M
        == r.stages[-1].samples * r.stages[-1].macs_per_sample + r.shrink["M_train"] + r.shrink["M_recal"]
    )
    # every step from the start on trains the smallest and one other (the sandwich), each pass charged at its own MACs
    steps = [t for t in range(plan.start_step, plan.total_steps) if plan.factor(t) > 0]
    assert r.shrink["passes"] == 2 * len(steps) and all(plan.sample(t)[0] == 0 for t in steps)
    assert [row["subnet"] for row in r.subnets] == ["vgg11:0.5", "vgg11:1", "full:0.5", "full:1"]
    assert r.subnets[-1]["spec"] == r.stages[-1].spec and r.subnets[-1]["macs_per_sample"] == r.macs_per_sample
    assert any(row["pareto"] for row in r.subnets) and r.subnets[0]["pareto"] == (r.subnets[0]["val_acc"] > 0)


def test_the_subnet_lr_ramps_from_zero_at_start_to_the_schedules_lr() -> None:
    p = plan_shrink(
        Shrink(widths=[0.5], start=0.25, ramp_epochs=2),
        spec_for("vgg11@0.125", 4),
        resolution=32,
        samples_per_epoch=40,
        epochs=8,
        batch_size=10,
        seed=0,
    )
    assert (p.start_step, p.ramp_steps) == (8, 8)
    assert [p.factor(t) for t in (0, 7, 8, 12, 16, 31)] == [0, 0, 0, 0.5, 1, 1]
    assert p.sample(8) == [] and p.sample(9) == [0]  # a zero weight trains nothing, and costs nothing
    assert Shrink(widths=[0.5], ramp_epochs=0).ramp_epochs == 0
    assert (
        plan_shrink(
            Shrink(widths=[0.5], start=0.25, ramp_epochs=0),
            spec_for("vgg11@0.125", 4),
            resolution=32,
            samples_per_epoch=40,
            epochs=8,
            batch_size=10,
            seed=0,
        ).factor(8)
        == 1
    )


def test_the_runs_history_shows_the_ramp(shrunk) -> None:
    root, _ = shrunk
    hist = RunResult.load(root / "run").stages[-1].history
    assert all("subnet_lr" in h for h in hist)
    assert 0 < hist[1]["subnet_lr"] <= hist[1]["lr"]


def test_start_one_trains_no_subnet_and_equals_the_schedule_without_shrink(npz_data: str) -> None:
    torch.manual_seed(0)
    plain = run_schedule(_sched(npz_data, plain=True), progress=False)
    late = run_schedule(_sched(npz_data, start=1.0, recal_images=10), progress=False)
    assert late.shrink["passes"] == 0 and late.shrink["M_train"] == 0
    assert late.M - plain.M == late.shrink["M_recal"]
    strip = lambda st: [
        {k: v for k, v in h.items() if k not in ("train_s", "val_s", "subnet_lr", "cum_M")} for h in st.history
    ]  # noqa: E731
    assert [strip(s) for s in late.stages] == [strip(s) for s in plain.stages]
    assert (late.val_acc, late.test_acc) == (plain.val_acc, plain.test_acc)


def test_a_cut_subnet_reproduces_its_recorded_accuracy_and_feeds_a_frontier(shrunk, tmp_path: Path, capsys) -> None:
    root, _ = shrunk
    out = tmp_path / "cut"
    assert main(["subnets", str(root / "run"), "--spec", "vgg11:0.5", "-o", str(out)]) == 0
    r, row = RunResult.load(out), next(x for x in RunResult.load(root / "run").subnets if x["subnet"] == "vgg11:0.5")
    assert (r.val_acc, r.test_acc) == (row["val_acc"], row["test_acc"])
    net, ck = load_checkpoint(out / "subnet.pt")
    assert net.arch_spec.to_dict() == row["spec"] and ck["subnet"] == "vgg11:0.5"
    assert (out / "family.json").is_file() and (out / "family.png").stat().st_size > 0
    # the cut folder is a --spec-from reference: its exact network trains from scratch
    data = RunResult.load(root / "run").schedule["dataset"]
    assert (
        main(
            [
                "baseline",
                "--data",
                data,
                "--spec-from",
                str(out),
                "--budgets",
                "1",
                "--seeds",
                "0",
                "--out",
                str(tmp_path / "f"),
                "--quiet",
            ]
        )
        == 0
    )
    front = json.loads((tmp_path / "f" / "frontier.json").read_text())
    assert front["references"][0]["spec"] == row["spec"]


def test_max_macs_picks_the_most_accurate_subnet_that_fits(shrunk, tmp_path: Path) -> None:
    root, _ = shrunk
    rows = RunResult.load(root / "run").subnets
    limit = rows[1]["macs_per_sample"]
    best = max((x for x in rows if x["macs_per_sample"] <= limit), key=lambda x: (x["val_acc"], -x["macs_per_sample"]))
    assert main(["subnets", str(root / "run"), "--max-macs", str(limit), "-o", str(tmp_path / "m")]) == 0
    assert RunResult.load(tmp_path / "m").stages[0].spec == best["spec"]


def test_the_family_ratio_divides_the_runs_m_by_each_subnets_own_scratch_cost(shrunk) -> None:
    root, _ = shrunk
    r = RunResult.load(root / "run")

    def front(
        row: dict, m: float
    ) -> Frontier:  # a frontier of the subnet's own architecture: 2 budgets around its accuracy
        pts = [
            FrontierPoint(epochs=e, M=int(m * e), val_acc=a, test_acc=a, wall_s=1.0, lr=0.05)
            for e, a in ((1, -1.0), (2, 2.0))
        ]
        return Frontier("x", 4, [0, 1, 2, 3], 0.1, 0, "id", {}, [Reference(row["arch"], row["arch"], None, pts)])

    fronts = [front(row, 1e9 * (i + 1)) for i, row in enumerate(r.subnets)]
    chosen = [i for i, row in enumerate(r.subnets) if row["pareto"]]
    ratio = family_ratio(r, fronts)
    # M_scratch interpolates in log M between the budgets (accuracy -1 and 2): at accuracy a, M = m * 2**((a + 1) / 3)
    want = sum(1e9 * (i + 1) * 2 ** ((r.subnets[i]["val_acc"] + 1) / 3) for i in chosen)
    assert ratio["family_ratio"] == pytest.approx(r.M / want) and ratio["missing"] == [] and ratio["bound"] is None
    assert family_ratio(r, fronts[:1] + fronts[2:], chosen="all")["missing"] == ["vgg11:1"]
    assert family_ratio(r, fronts[:1] + fronts[2:], chosen="all")["family_ratio"] is None


def test_the_prefix_key_of_the_last_stage_only_holds_the_shrink_block(npz_data: str) -> None:
    a, b = _sched(npz_data), _sched(npz_data, start=0.6)
    order = a.resolved_class_order(4)
    assert prefix_key(a, 1, order) == prefix_key(b, 1, order) == prefix_key(_sched(npz_data, plain=True), 1, order)
    assert prefix_key(a, 2, order) != prefix_key(b, 2, order)


@pytest.mark.parametrize(
    "shrink,msg",
    [
        ({"widths": [1.5]}, "shrink.widths: every width must be a fraction in (0, 1]"),
        ({"depths": ["vgg16"]}, "deeper than the network"),
        ({"depths": ["resnet10"]}, "is not a vgg depth"),
        ({"start": 2}, "shrink.start must be"),
        ({"depths": [], "widths": []}, "no subnets besides the full network"),
        ({"subnets_per_step": -1}, "shrink.subnets_per_step must be"),
    ],
)
def test_a_shrink_block_that_cannot_train_is_refused_before_training(npz_data: str, shrink: dict, msg: str) -> None:
    with pytest.raises(
        ScheduleError, match=msg.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    ):
        plan_schedule(_sched(npz_data, **shrink))


def test_a_shrink_block_reads_and_writes_and_is_omitted_when_absent(npz_data: str) -> None:
    s = _sched(npz_data)
    assert Schedule.from_dict(s.to_dict()) == s
    assert "shrink" not in _sched(npz_data, plain=True).to_dict()
    with pytest.raises(ScheduleError, match="unknown key"):
        Schedule.from_dict({**s.to_dict(), "shrink": {"start": 0.5, "bogus": 1}})


def test_mutual_inference_can_vote_with_the_familys_subnets(shrunk) -> None:
    from growsearch.robust.robustness import robustness_report

    root, _ = shrunk
    r = RunResult.load(root / "run")
    rep = robustness_report(
        root / "run",
        members="all_subnets",
        eps=[0.0, 0.01],
        noise=[0.0],
        ablation=[0.0],
        draws=1,
        out=False,
        progress=False,
    )
    assert [m["arch"] for m in rep.members] == [row["subnet"] for row in r.subnets] and rep.member_kind == "all_subnets"
    assert (
        rep.members[-1]["test_acc"] == r.subnets[-1]["test_acc"]
    )  # the full network, recalibrated as the run scored it, is the final column
    pareto = robustness_report(
        root / "run", members="subnets", eps=[0.0], noise=[0.0], ablation=[0.0], draws=1, out=False, progress=False
    )
    assert [m["arch"] for m in pareto.members] == [
        row["subnet"] for row in r.subnets if row["pareto"] or row is r.subnets[-1]
    ]
