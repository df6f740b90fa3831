"""The from-scratch frontier: its arithmetic on hand-made points, and the commands that build and read it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from growsearch.cli.commands import main
from growsearch.train.frontier import (
    Frontier,
    FrontierError,
    FrontierPoint,
    Reference,
    budget_ladder,
    check_budgets,
    load_frontier,
)


def _ref(name: str, pts: list[tuple[int, int, float]]) -> Reference:
    return Reference(
        name, name, None, [FrontierPoint(epochs=e, M=m, val_acc=a, test_acc=a, wall_s=1.0, lr=0.05) for e, m, a in pts]
    )


def _frontier(*refs: Reference) -> Frontier:
    return Frontier("digits", 10, list(range(10)), 0.1, 0, "x", {}, list(refs))


A = _ref("vgg19", [(2, 100, 0.60), (4, 200, 0.80), (8, 400, 0.90), (16, 800, 0.92)])


def test_m_scratch_interpolates_linearly_in_log_M() -> None:
    f = _frontier(A)
    # a = 0.85 lies halfway between (200, 0.80) and (400, 0.90): log M halfway → √(200·400)
    assert f.m_scratch(0.85)["M"] == pytest.approx(math.sqrt(200 * 400))
    # a quarter of the way from 0.60 to 0.80
    assert f.m_scratch(0.65)["M"] == pytest.approx(math.exp(math.log(100) + 0.25 * (math.log(200) - math.log(100))))
    assert f.m_scratch(0.90) == {"M": 400.0, "reference": "vgg19", "beyond": False, "below": False}  # on a budget
    iso = f.iso(100.0, 0.85)
    assert iso["iso_M_ratio"] == pytest.approx(100 / math.sqrt(200 * 400)) and iso["bound"] is None
    assert iso["M_ratio_longest"] == pytest.approx(100 / 800)  # the old ratio, against the longest budget
    assert iso["frontier"] == f.to_dict()


def test_beyond_and_below_the_frontier_are_labelled_bounds() -> None:
    f = _frontier(A)
    beyond = f.iso(500.0, 0.95)  # more accurate than every budget
    assert beyond["beyond_frontier"] and beyond["bound"] == "upper"
    assert beyond["M_scratch"] == 800 and beyond["iso_M_ratio"] == pytest.approx(
        500 / 800
    )  # against the most accurate budget
    below = f.iso(50.0, 0.40)  # less accurate than the cheapest budget
    assert below["below_frontier"] and below["bound"] == "lower" and not below["beyond_frontier"]
    assert below["M_scratch"] == 100


def test_several_references_take_the_least_M() -> None:
    B = _ref("vgg19 pruned", [(2, 50, 0.70), (4, 100, 0.86), (8, 200, 0.88)])
    f = _frontier(A, B)
    got = f.m_scratch(0.85)
    assert got["reference"] == "vgg19 pruned"
    assert got["M"] == pytest.approx(math.exp(math.log(50) + (0.15 / 0.16) * (math.log(100) - math.log(50))))
    assert f.m_scratch(0.91)["reference"] == "vgg19"  # only A reaches it
    assert f.best_val_acc == 0.92 and f.cheapest_reaching(0.85).M == 100 and f.longest.M == 800


def test_a_non_monotone_reference_uses_its_first_crossing() -> None:
    f = _frontier(_ref("r", [(1, 100, 0.5), (2, 200, 0.9), (4, 400, 0.8), (8, 800, 0.95)]))
    assert f.m_scratch(0.85)["M"] < 200


def test_budgets_must_be_positive_and_strictly_increasing() -> None:
    assert check_budgets([2, 4, 8]) == [2, 4, 8]
    for bad in ([], [4, 2], [2, 2], [0, 2], [-1, 2], [1.5, 3]):
        with pytest.raises(FrontierError, match="--budgets"):
            check_budgets(bad)
    assert budget_ladder(30) == [4, 8, 15, 30] and budget_ladder(15) == [2, 4, 8, 15] and budget_ladder(2) == [1, 2]


def test_frontier_files_round_trip(tmp_path: Path) -> None:
    f = _frontier(A)
    f.save(tmp_path)
    assert load_frontier(tmp_path) == f
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "frontier.json").write_text("{}")
    with pytest.raises(FrontierError, match="not a growsearch frontier"):
        load_frontier(tmp_path / "junk")
    with pytest.raises(FrontierError, match="no frontier.json"):
        load_frontier(tmp_path / "missing")


# --- the commands --------------------------------------------------------------------------


def _schedule(path: Path, data: str, stages: list[dict]) -> Path:
    path.write_text(json.dumps({"dataset": data, "seed": 0, "stages": stages}))
    return path


TWO = [{"classes": 2, "arch": "vgg11@0.125", "epochs": 1}, {"classes": 4, "arch": "vgg13@0.125", "epochs": 1}]


@pytest.fixture
def frontier_dir(npz_data: str, tmp_path: Path) -> Path:
    out = tmp_path / "front"
    args = [
        "baseline",
        "--data",
        npz_data,
        "--arch",
        "vgg13@0.125",
        "--budgets",
        "1,2",
        "--seeds",
        "0,1",
        "--lrs",
        "0.02,0.1",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    return out


def test_baseline_budgets_write_a_frontier(frontier_dir: Path) -> None:
    f = load_frontier(frontier_dir)
    (ref,) = f.references
    assert [p.epochs for p in ref.points] == [1, 2] and f.seeds == [0, 1]
    assert (frontier_dir / "frontier.png").stat().st_size > 1000
    for p in ref.points:
        assert p.val_acc == pytest.approx(sum(s["val_acc"] for s in p.seeds) / 2)  # mean over seeds
        best = max(p.lr_sweep, key=lambda r: r["val_acc"])
        assert p.lr == best["lr"] and p.val_acc == pytest.approx(best["val_acc"])  # LR chosen on validation
        # each budget is its own run, decayed to zero at its end: the last epoch's LR is ~0
        run = json.loads((frontier_dir / "runs" / f"ref0-e{p.epochs}-lr{p.lr:g}-s0" / "result.json").read_text())
        assert run["stages"][0]["epochs"] == p.epochs and run["M"] == p.M
        assert run["stages"][0]["history"][-1]["lr"] < 1e-3 * p.lr or p.epochs == 1
    assert f.spent_M == sum(p.M for p in ref.points) * 2 * 2  # 2 seeds × 2 LRs per budget


def test_run_against_the_frontier_stores_the_iso_ratio(
    npz_data: str, frontier_dir: Path, tmp_path: Path, capsys
) -> None:
    capsys.readouterr()
    sched = _schedule(tmp_path / "s.json", npz_data, TWO)
    assert main(["run", str(sched), "--out", str(tmp_path / "r"), "--baseline", str(frontier_dir), "--quiet"]) == 0
    out = capsys.readouterr().out
    d = json.loads((tmp_path / "r" / "result.json").read_text())
    expect = load_frontier(frontier_dir).iso(d["M"], d["val_acc"])
    assert (
        d["iso_M_ratio"] == pytest.approx(expect["iso_M_ratio"]) and d["beyond_frontier"] == expect["beyond_frontier"]
    )
    assert d["iso"]["frontier"] == load_frontier(frontier_dir).to_dict()  # the frontier it used travels with it
    assert "M ratio at iso-accuracy" in out and "M_scratch" in out
    assert (tmp_path / "r" / "curve.png").stat().st_size > 1000


def test_one_epochs_baseline_is_a_one_point_frontier(npz_data: str, tmp_path: Path) -> None:
    assert (
        main(
            [
                "baseline",
                "--data",
                npz_data,
                "--arch",
                "vgg11@0.125",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "b"),
                "--quiet",
            ]
        )
        == 0
    )
    f = load_frontier(tmp_path / "b")
    assert len(f.references[0].points) == 1
    assert (tmp_path / "b" / "result.json").is_file() and (
        tmp_path / "b" / "stage1.pt"
    ).is_file()  # a plain baseline too


def test_spec_from_trains_the_runs_exact_final_network(npz_data: str, tmp_path: Path) -> None:
    pruned = [
        {"classes": 2, "arch": "vgg11@0.125", "epochs": 1},
        {"classes": 4, "arch": "vgg13@0.125", "epochs": 1, "prune_ratio": 0.5},
    ]
    assert (
        main(["run", str(_schedule(tmp_path / "p.json", npz_data, pruned)), "--out", str(tmp_path / "run"), "--quiet"])
        == 0
    )
    args = [
        "baseline",
        "--data",
        npz_data,
        "--arch",
        "vgg13@0.125",
        "--spec-from",
        str(tmp_path / "run"),
        "--budgets",
        "1",
        "--out",
        str(tmp_path / "f"),
        "--quiet",
    ]
    assert main(args) == 0
    f = load_frontier(tmp_path / "f")
    final = json.loads((tmp_path / "run" / "result.json").read_text())["stages"][-1]
    (full, exact) = f.references
    assert exact.spec["widths"] == final["spec"]["widths"] and full.spec is None
    trained = json.loads((tmp_path / "f" / "runs" / "ref1-e1-lr0.05-s0" / "result.json").read_text())["stages"][0]
    assert trained["params"] == final["params"] and trained["spec"]["widths"] == final["spec"]["widths"]
    assert (
        trained["macs_per_sample"]
        < json.loads((tmp_path / "f" / "runs" / "ref0-e1-lr0.05-s0" / "result.json").read_text())["stages"][0][
            "macs_per_sample"
        ]
    )


def test_resume_keeps_finished_budgets(npz_data: str, tmp_path: Path) -> None:
    out = tmp_path / "f"
    base = ["baseline", "--data", npz_data, "--arch", "vgg11@0.125", "--out", str(out), "--quiet", "--lr", "0.05"]
    assert main([*base, "--budgets", "1,2"]) == 0
    first = (out / "runs" / "ref0-e1-lr0.05-s0" / "result.json").read_bytes()
    before = load_frontier(out)
    assert main([*base, "--budgets", "1,2,3"]) == 2  # an existing frontier is kept without --resume
    assert main([*base, "--budgets", "1,2,3", "--resume"]) == 0
    assert (out / "runs" / "ref0-e1-lr0.05-s0" / "result.json").read_bytes() == first  # not retrained
    after = load_frontier(out)
    assert [p.epochs for p in after.references[0].points] == [1, 2, 3]
    # its cost still counts the reused budgets: M exactly, wall time as each run recorded it
    third = after.references[0].points[2]
    assert after.spent_M == before.spent_M + third.M
    assert after.wall_s == pytest.approx(before.wall_s + third.wall_s)


def test_progressive_resizing_references_join_the_frontier_and_resume(npz_data: str, tmp_path: Path, capsys) -> None:
    from growsearch.data.dataset import create_dataset
    from growsearch.plan.planner import plan_schedule, planned_M
    from growsearch.train.baseline import baseline_schedule

    out = tmp_path / "f"
    base = [
        "baseline",
        "--data",
        npz_data,
        "--arch",
        "vgg11@0.125",
        "--out",
        str(out),
        "--quiet",
        "--resolutions",
        "16,32",
        "--switch-at",
        "0.5",
    ]
    assert main([*base, "--budgets", "1,2"]) == 0
    assert "vgg11@0.125 16→32px@.5" in capsys.readouterr().out  # the table names every reference
    front = load_frontier(out)
    plain, resized = front.references
    assert (plain.resolutions, resized.resolutions, resized.switch_at) == (None, [16, 32], [0.5])
    # at 2 epochs: one at 16 px, one at 32 px; M as planned, below the plain run's
    sched = baseline_schedule(npz_data, "vgg11@0.125", 4, epochs=2, resolutions=[16, 32], switch_at=[0.5], native=32)
    assert [(st.epochs, st.resolution) for st in sched.stages] == [(1, 16), (1, None)]
    assert resized.points[1].M == planned_M(plan_schedule(sched, dataset=create_dataset(npz_data))) < plain.points[1].M
    # at 1 epoch the switch rounds to no epoch: the budget trains at native size only
    assert resized.points[0].M == plain.points[0].M
    assert front.m_scratch(front.best_val_acc)["M"] <= min(p.M for p in plain.points if p.val_acc >= front.best_val_acc)
    first = (out / "runs" / "ref1-e2-lr0.05-s0" / "result.json").read_bytes()
    assert main([*base, "--budgets", "1,2,3", "--resume"]) == 0
    assert (out / "runs" / "ref1-e2-lr0.05-s0" / "result.json").read_bytes() == first  # not retrained


def _bad(tmp_path: Path, npz_data: str) -> list[tuple[list[str], str]]:
    b = ["baseline", "--data", npz_data, "--arch", "vgg11@0.125", "--out", str(tmp_path / "new"), "--quiet"]
    return [
        ([*b, "--budgets", "4,2"], "strictly increasing"),
        ([*b, "--budgets", "2,2"], "strictly increasing"),
        ([*b, "--budgets", "0,2"], "whole numbers of epochs from 1 to 100000"),
        ([*b, "--budgets", "2,x"], "comma-separated whole numbers"),
        ([*b, "--val-fraction", "0.6"], "val_fraction must be"),
        ([*b, "--val-fraction", "-0.1"], "val_fraction must be"),
        ([*b, "--lrs", "0,0.1"], "--lrs"),
        ([*b, "--seeds", "0,0"], "seeds must be distinct"),
        ([*b, "--budgets", "2,4", "--epochs", "3"], "not both"),
        ([*b, "--patience", "3"], "no fixed budget"),
        (["baseline", "--data", npz_data, "--out", str(tmp_path / "new"), "--budgets", "1"], "needs a reference"),
        ([*b, "--val-fraction", "0.02"], "leaves it no validation sample"),
        ([*b, "--budgets", "2", "--resolutions", "16,64", "--switch-at", "0.5"], "from 8 to the data's 32 px"),
        ([*b, "--budgets", "2", "--resolutions", "24,16", "--switch-at", "0.5"], "strictly increasing image sides"),
        ([*b, "--budgets", "2", "--resolutions", "16,32"], "--switch-at must give 1 fraction"),
        ([*b, "--budgets", "2", "--resolutions", "16,32", "--switch-at", "1"], "--switch-at must give 1 fraction"),
        ([*b, "--budgets", "2", "--switch-at", "0.5"], "--switch-at needs --resolutions"),
    ]


def test_bad_frontier_inputs_are_one_line_and_write_nothing(npz_data: str, tmp_path: Path, capsys) -> None:
    for args, msg in _bad(tmp_path, npz_data):
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1 and "Traceback" not in err, (args, err)
        assert not (tmp_path / "new" / "frontier.json").exists()


def test_a_frontier_of_other_data_or_another_split_is_refused(
    npz_data: str, frontier_dir: Path, tmp_path: Path, capsys
) -> None:
    cases = [
        (
            _schedule(tmp_path / "d.json", "digits", [{"classes": 10, "arch": "vgg11@0.125", "epochs": 1}]),
            [],
            "same dataset",
        ),
        (_schedule(tmp_path / "v.json", npz_data, TWO), ["--val-fraction", "0.25"], "another validation split"),
    ]
    for sched, extra, msg in cases:
        capsys.readouterr()
        assert (
            main(["run", str(sched), "--out", str(tmp_path / "r"), "--baseline", str(frontier_dir), "--quiet", *extra])
            == 2
        )
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1
        assert not (tmp_path / "r").exists()  # refused before anything was written


# --- the family yardstick: envelope, two ratios, intervals, the verdict ------------------------


def _seeded_ref(name: str, per_epoch_M: int, accs: list[tuple[int, list[float]]]) -> Reference:
    pts = [
        FrontierPoint(
            epochs=e,
            M=per_epoch_M * e,
            val_acc=sum(a) / len(a),
            test_acc=0.0,
            wall_s=1.0,
            lr=0.05,
            seeds=[{"seed": i, "val_acc": v, "test_acc": 0.0, "wall_s": 1.0} for i, v in enumerate(a)],
        )
        for e, a in accs
    ]
    return Reference(name, name, None, pts)


def _family(spread: float = 0.0) -> Frontier:
    """A small net cheap but capped at 0.76, a big one dear but reaching 0.82: seeds ± ``spread``."""
    s = [-spread, 0.0, spread]
    small = _seeded_ref(
        "vgg11@0.25", 100, [(2, [0.60 + d for d in s]), (4, [0.70 + d for d in s]), (8, [0.76 + d for d in s])]
    )
    big = _seeded_ref(
        "vgg19@0.25", 300, [(2, [0.62 + d for d in s]), (4, [0.74 + d for d in s]), (8, [0.82 + d for d in s])]
    )
    return Frontier("d", 10, list(range(10)), 0.1, 0, "x", {}, [small, big], seeds=[0, 1, 2])


@pytest.mark.parametrize("acc", [0.61, 0.65, 0.70, 0.73, 0.76, 0.78, 0.80])
def test_the_envelope_takes_the_cheapest_arch_and_is_never_above_a_member(acc: float) -> None:
    f = _family()
    ms = f.m_scratch(acc)
    members = [f.only(a) for a in ("vgg11@0.25", "vgg19@0.25")]
    reach = [m.m_scratch(acc) for m in members]
    assert ms["M"] == min(r["M"] for r in reach if not r["beyond"])
    assert ms["reference"] == ("vgg11@0.25" if acc <= 0.76 else "vgg19@0.25")
    iso = f.iso(1000.0, acc, final_arch="vgg19@0.25")
    assert (
        iso["iso_M_ratio"] >= iso["iso_M_ratio_same"] - 1e-12
    )  # against the family, never cheaper than against one member


def test_the_interval_collapses_without_spread_and_widens_with_the_frontiers_seeds() -> None:
    M = 1000.0
    point = _family().iso(M, 0.73)["iso_M_ratio"]
    assert _family(0.0).ratio_interval([(M, 0.73)] * 3) == pytest.approx([point, point])
    narrow, wide = (_family(d).ratio_interval([(M, 0.73)] * 3) for d in (0.005, 0.02))
    assert narrow[0] <= point <= narrow[1] and wide[1] - wide[0] > narrow[1] - narrow[0] > 0


def test_the_verdict_reads_the_interval() -> None:
    from growsearch.cli.summaries import reading

    assert reading(0.8, [0.7, 0.9]).startswith("a saving")
    assert reading(0.8, [0.7, 1.05]).startswith("no measurable difference")  # the interval crosses 1: no saving claimed
    assert reading(1.3, [1.1, 1.5]).startswith("a loss")
    assert reading(0.8, None).startswith("a saving")  # no spread recorded: the point is its own interval


def test_the_verdict_says_train_the_smaller_network_instead_only_when_it_is_cheaper() -> None:
    from growsearch.cli.summaries import iso_line

    f = _family()
    cheap_small = f.iso(f.m_scratch(0.70)["M"] * 1.5, 0.70, final_arch="vgg19@0.25")  # vgg11 reaches 0.70 for less
    assert cheap_small["reference"] == "vgg11@0.25"
    assert "vgg11@0.25 from scratch reaches it for 0.67x this schedule's M: train it instead" in iso_line(
        cheap_small, 0.70, "vgg19@0.25"
    )
    only_big = f.iso(f.m_scratch(0.80)["M"] * 1.5, 0.80, final_arch="vgg19@0.25")  # only vgg19 reaches 0.80
    assert only_big["reference"] == "vgg19@0.25" and "instead" not in iso_line(only_big, 0.80, "vgg19@0.25")
    saving = f.iso(f.m_scratch(0.70)["M"] * 0.5, 0.70, final_arch="vgg19@0.25")
    assert "instead" not in iso_line(saving, 0.70, "vgg19@0.25")


def test_a_judged_trial_carries_both_ratios_and_the_interval() -> None:
    from types import SimpleNamespace

    from growsearch.search.judge import STAGE_FIELDS, Judge
    from growsearch.search.study import user_attrs

    judge = Judge(_family(0.01), tolerance=0.04)  # target 0.78: only vgg19 reaches it, so the two ratios agree
    stage = SimpleNamespace(
        arch="vgg19@0.25",
        **{k: 0 for k in STAGE_FIELDS if k != "arch"},  # every field a trial records of a stage
    )
    run = SimpleNamespace(
        M=1500,
        val_acc=0.79,
        test_acc=0.0,
        wall_s=1.0,
        spent_M=1500,
        reused_stages=0,
        M_nonzero=1500,
        stages=[stage],
        versions={},
    )
    attrs = user_attrs(judge.metrics(run), judge.metric)
    assert attrs["M_ratio_same"] == pytest.approx(attrs["M_ratio"])
    lo, hi = attrs["M_ratio_ci"]
    assert lo < attrs["M_ratio"] < hi


def test_merged_frontiers_are_one_family_and_refuse_another_split() -> None:
    from dataclasses import replace

    from growsearch.train.frontier import merge_frontiers

    f = _family()
    small, big = (replace(f, references=[r]) for r in f.references)
    merged = merge_frontiers([small, big])
    assert [r.name for r in merged.references] == ["vgg11@0.25", "vgg19@0.25"] and merged.m_scratch(0.7) == f.m_scratch(
        0.7
    )
    with pytest.raises(FrontierError, match="validation split"):
        merge_frontiers([small, replace(big, val_id="other")])
    with pytest.raises(FrontierError, match="named 'vgg11@0.25'"):
        merge_frontiers([small, small])


def test_a_point_from_its_finished_seeds_keeps_each_and_an_uneven_frontier_still_has_an_interval() -> None:
    """A frontier assembled while its seeds still train (hours per run on a CPU): a point of one
    seed beside a point of three. Each point is the mean of the seeds it has, every seed kept,
    and the interval resamples each point's own seeds (one seed: no spread from it)."""
    from types import SimpleNamespace

    from growsearch.train.frontier import Frontier, FrontierPoint, Reference

    def run(seed: int, acc: float, M: int) -> SimpleNamespace:
        return SimpleNamespace(M=M, val_acc=acc, test_acc=acc - 0.01, wall_s=10.0 + seed, schedule={"seed": seed})

    three = FrontierPoint.of_runs(64, [run(0, 0.24, 200), run(1, 0.22, 200), run(2, 0.26, 200)], 0.05)
    one = FrontierPoint.of_runs(32, [run(0, 0.20, 100)], 0.05)
    assert three.val_acc == pytest.approx(0.24) and three.test_acc == pytest.approx(0.23) and three.wall_s == 11.0
    assert [s["seed"] for s in three.seeds] == [0, 1, 2] and three.M == 200 and three.lr_sweep == []
    f = Frontier("d", 10, list(range(10)), 0.1, 0, "x", {}, [Reference("vgg16", "vgg16", None, [one, three])])
    lo, hi = f.ratio_interval([(150, 0.22)] * 3)
    point = f.iso(150, 0.22)["iso_M_ratio"]
    assert lo < point < hi  # the three-seed point's spread reaches the ratio
    steady = Frontier("d", 10, list(range(10)), 0.1, 0, "x", {}, [Reference("vgg16", "vgg16", None, [one])])
    assert steady.ratio_interval([(150, 0.20)] * 3) == pytest.approx([1.5, 1.5])  # one seed, equal runs: the point
