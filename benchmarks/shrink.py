"""Grow, then shrink on CIFAR-10 (issue 24): a family of subnets from one training, against each subnet from scratch.

The CPU setting of benchmarks/cifar10.py (1,000 training images per class, VGG@0.25, the same
recipe and validation split). The family's final network is VGG16@0.25; its menu is depths
{VGG11, VGG16} × widths {0.5, 1}: VGG11@0.125, VGG11@0.25, VGG16@0.125, VGG16@0.25. Three ways
to train it, all 24 epochs:

  (a) grow then shrink: VGG11 for 8 epochs, grown to VGG16 for 16 (all data in both stages, the
      cheapest lever setting of cifar10.md), shrinking from half of the last stage (DepS: LR ramp 2 epochs)
  (b) from scratch then shrink: VGG16 for 24 epochs, shrinking from half of it (DepS)
  (c) once-for-all from the start: VGG16 for 24 epochs, shrinking from step 0 (no ramp)
  (d) each subnet from scratch: its own frontier (budgets 6, 12, 24; VGG16@0.25's is cifar10's)

Each subnet is priced on its own frontier (M_scratch at its validation accuracy); the family
ratio is the run's M / Σ M_scratch of the chosen subnets. Every run keeps its result.json under
results/cifar10/runs/shrink-*, the new frontier under results/cifar10/frontiers/subnets, so a
later session adds seeds instead of redoing them. Writes results/shrink_cifar10.md, .json, .png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _common import RESULTS, scratch_test_acc

from growsearch import run_frontier, run_schedule
from growsearch.data.dataset import create_dataset
from growsearch.plan.schedule import Schedule, Shrink, Stage, TrainConfig
from growsearch.train.family import family_ratio, own_reference
from growsearch.train.frontier import load_frontier
from growsearch.train.results import RunResult

OUT = RESULTS / "cifar10"
ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"
MENU = {"depths": ["vgg11"], "widths": [0.5]}
VARIANTS = {
    "a": ("grow then shrink (VGG11 8 ep → VGG16 16 ep, DepS from 0.5)", [("vgg11@0.25", 8), ("vgg16@0.25", 16)], {"start": 0.5, "ramp_epochs": 2}),
    "b": ("from scratch then shrink (VGG16 24 ep, DepS from 0.5)", [("vgg16@0.25", 24)], {"start": 0.5, "ramp_epochs": 2}),
    "c": ("once-for-all from the start (VGG16 24 ep, shrink from 0)", [("vgg16@0.25", 24)], {"start": 0.0, "ramp_epochs": 0}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ARCHIVE))
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of every run")
    ap.add_argument("--frontier-seeds", type=int, default=None, help="seeds 0..N-1 of the subnets' new frontier (default: --seeds)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--budgets", type=int, nargs="+", default=[6, 12, 24])
    ap.add_argument("--report-only", action="store_true", help="train nothing; report the runs kept")
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = f"imagefolder:{args.data}?train_per_class={args.per_class}"
    ds = create_dataset(data)
    cfg = TrainConfig(lr=0.05)
    seeds = list(range(args.seeds))
    f16 = load_frontier(OUT / "frontiers" / "vgg16")
    sub_dir = OUT / "frontiers" / "subnets"
    if args.report_only:
        fsub = load_frontier(sub_dir)
    else:
        print("frontier of the subnets from scratch ...", flush=True)
        fsub = run_frontier(
            data, ["vgg11@0.125", "vgg11@0.25", "vgg16@0.125"], args.budgets, seeds=list(range(args.frontier_seeds or args.seeds)), train=cfg, dataset=ds, out_dir=sub_dir, resume=True, progress=False,
        )
    fronts = [f16, fsub]
    runs: dict[str, list[RunResult]] = {}
    for v in VARIANTS:  # every variant's kept runs are reported; only --variants train
        label, stages, shrink = VARIANTS[v]
        for seed in seeds:
            sched = Schedule(data, [Stage(10, a, e) for a, e in stages], seed=seed, train=cfg, data_growth="none", shrink=Shrink(**MENU, **shrink))
            d = OUT / "runs" / f"shrink-{v}-s{seed}"
            r = RunResult.load(d) if (d / "result.json").is_file() else None
            if r is None or r.schedule != sched.to_dict():
                if args.report_only or v not in args.variants:
                    continue
                print(f"({v}) seed {seed}: {label} ...", flush=True)
                r = run_schedule(sched, dataset=ds, out_dir=d, overwrite=True, progress=False)
            runs.setdefault(v, []).append(r)
    report = _report(runs, fronts, seeds, time.perf_counter() - t0)
    (RESULTS / "shrink_cifar10.md").write_text(report)
    (RESULTS / "shrink_cifar10.json").write_text(json.dumps({v: [_row(r, fronts) for r in rs] for v, rs in runs.items()}, indent=2) + "\n")
    _plot(runs, fronts, RESULTS / "shrink_cifar10.png")
    print(report)


def _own(row: dict, fronts) -> tuple:
    """(frontier, reference name) of the subnet's own architecture."""
    own = own_reference(fronts, row["spec"])
    if own is None:
        raise SystemExit(f"no frontier of {row['arch']}")
    return own[0], own[1].name


def _row(r: RunResult, fronts) -> dict:
    """Per subnet: accuracy, M_scratch on its own frontier, and the test gap to that frontier at the same M_scratch."""
    ratio = family_ratio(r, fronts, chosen="all")
    pareto = family_ratio(r, fronts)
    subs = []
    for row, e in zip(r.subnets, ratio["subnets"]):
        f, name = _own(row, fronts)
        gap = 100 * (row["test_acc"] - scratch_test_acc(f, e["M_scratch"], name))
        subs.append({**{k: row[k] for k in ("subnet", "arch", "macs_per_sample", "val_acc", "test_acc", "pareto")},
                     "M_scratch": e["M_scratch"], "beyond": e["beyond_frontier"], "below": e["below_frontier"], "test_gap_pt": gap})
    return {"seed": r.schedule["seed"], "M": r.M, "wall_s": r.wall_s, "shrink": r.shrink, "family_ratio_all": ratio["family_ratio"],
            "family_ratio_pareto": pareto["family_ratio"], "bound_all": ratio["bound"], "subnets": subs}


def _ms(vals: list[float], fmt: str = ".3f") -> str:
    if not vals:
        return "–"
    return f"{statistics.mean(vals):{fmt}}" + (f" ± {statistics.stdev(vals):{fmt.replace('+', '')}}" if len(vals) > 1 else "")


def _report(runs: dict, fronts, seeds: list[int], wall: float) -> str:
    lines = [
        "# Grow, then shrink on CIFAR-10 (CPU setting)", "",
        "`benchmarks/shrink.py`: 1,000 training images per class (10% held out for validation), VGG@0.25, the family of VGG16@0.25 "
        "with depths {VGG11, VGG16} × widths {0.5, 1} (4 subnets), every run 24 epochs, the recipe of cifar10.md. Each subnet's "
        "BatchNorm is recalibrated on 1,000 training images before it is scored; validation chooses, test is reported. Each "
        "subnet is priced on a frontier of its own architecture (budgets 6/12/24, each decayed to zero; VGG16@0.25's from "
        f"cifar10.md with 3 seeds, the three others with {len(fronts[1].seeds)} seed(s)). Family ratio = the run's whole M "
        "(every subnet pass and the recalibration counted) / Σ M_scratch; *gap* = the subnet's test accuracy − its frontier's "
        "test accuracy at the same M_scratch (pt).", "",
        "| variant | seeds | M (×10¹²) | family ratio, all 4 | family ratio, Pareto | subnets within 0.5 pt | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = {v: [_row(r, fronts) for r in rs] for v, rs in runs.items()}
    for v, rs in rows.items():
        within = [sum(s["test_gap_pt"] >= -0.5 for s in r["subnets"]) for r in rs]
        upper = "≤ " if any(r["bound_all"] in ("upper", "mixed") for r in rs) else ""
        lines.append(
            f"| ({v}) {VARIANTS[v][0]} | {len(rs)} | {_ms([r['M'] / 1e12 for r in rs], '.2f')} | {upper}{_ms([r['family_ratio_all'] for r in rs])}"
            f" | {_ms([r['family_ratio_pareto'] for r in rs])} | {_ms(within, '.1f')} of 4 | {_ms([r['wall_s'] for r in rs], '.0f')} |"
        )
    lines += [
        "", "≤: in some seed a subnet beat every budget of its own frontier, so its M_scratch (that of the most accurate budget) is a lower "
        "bound and the family ratio an upper bound. *Within 0.5 pt*: subnets whose test accuracy is at most 0.5 pt below their "
        "frontier's at the same M_scratch (the goal asks all 4). The paper's figures (DepS, ECCV 2024, ImageNet-1k, MobileNetV3 "
        "space, against OFA and BigNAS): shrinking from ~50 % of the full model's training gives 1.83 pt higher top-1, or the same "
        "accuracy at 1.3× fewer FLOPs and 2.5× fewer GPU-hours; none of these papers prices a family against each subnet from scratch.",
    ]
    lines += ["", "Per subnet (mean ± std over seeds; ≥ marks a subnet more accurate than every budget of its frontier, so its M_scratch is a lower bound):", "",
              "| variant | subnet | arch | MACs/img | val acc | test acc | M_scratch (×10¹²) | gap (pt) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for v, rs in rows.items():
        for k, s0 in enumerate(rs[0]["subnets"]):
            col = [r["subnets"][k] for r in rs]
            mark = "≥ " if any(s["beyond"] for s in col) else ""
            lines.append(
                f"| ({v}) | {s0['subnet']} | {s0['arch']} | {s0['macs_per_sample']} | {_ms([s['val_acc'] for s in col])} | {_ms([s['test_acc'] for s in col])}"
                f" | {mark}{_ms([s['M_scratch'] / 1e12 for s in col], '.2f')} | {_ms([s['test_gap_pt'] for s in col], '+.2f')} |"
            )
    lines += ["", "From scratch, each subnet's frontier (validation / test accuracy, M ×10¹²):", ""]
    for f in fronts:
        for ref in f.references:
            lines.append(f"- {ref.name}: " + ", ".join(f"{p.epochs} ep {p.val_acc:.3f}/{p.test_acc:.3f} ({p.M / 1e12:.2f})" for p in sorted(ref.points, key=lambda p: p.M)))
    lines += ["", f"Seeds {seeds}; this report's training took {wall:.0f} s (runs already kept are reused). Wall times are of a 2-core machine "
              "shared with other work (seed 0's grow-then-shrink run overlapped a test suite): compare M, not seconds.", ""]
    return "\n".join(lines)


def _plot(runs: dict, fronts, path: Path) -> None:
    from growsearch._plot import log_x, pyplot, save

    fig, ax = pyplot().subplots(figsize=(7, 4.2))
    for j, (v, rs) in enumerate(runs.items()):
        for k in range(len(rs[0].subnets)):
            xs = rs[0].subnets[k]["macs_per_sample"]
            ys = [r.subnets[k]["test_acc"] for r in rs]
            ax.errorbar([xs * (1 + 0.03 * j)], [statistics.mean(ys)], yerr=[statistics.stdev(ys)] if len(ys) > 1 else None, marker="o", color=f"C{j}",
                        capsize=2, label=f"({v}) {VARIANTS[v][0]}" if k == 0 else None)
    labelled = False
    for row in next(iter(runs.values()))[0].subnets:
        f, name = _own(row, fronts)
        ref = next(r for r in f.references if r.name == name)
        best = max(ref.points, key=lambda p: p.M)
        ax.scatter([row["macs_per_sample"] * 0.97], [best.test_acc], marker="s", facecolors="none", edgecolors="k",
                   label=None if labelled else "from scratch, 24 epochs (its own frontier)")
        labelled = True
    log_x(ax)
    ax.set_xlabel("inference MACs per image (log scale)")
    ax.set_ylabel("test accuracy (BatchNorm recalibrated)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left")
    ax.set_title("VGG16@0.25's family on CIFAR-10 (CPU setting)", fontsize=10)
    save(fig, path)


if __name__ == "__main__":
    main()
