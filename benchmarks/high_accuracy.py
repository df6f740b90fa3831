"""Where growth may win (issue 46): targets only the large networks reach.

Growth's best chance against a family frontier is a target that the small networks cannot reach
at any budget. This benchmark trains the whole VGG family from scratch up to saturation (every
budget decayed to zero, the LR swept, 3 seeds), sets the target to the best from-scratch
validation accuracy − 0.5 pt, and measures growth schedules ending in VGG16 and VGG19 with the
levers that did best on CIFAR-10 (data by samples, no class growth, stage 1 at 16 px) against
it, with both yardsticks and their intervals.

It is one script in parts, so that a GPU lease can run them side by side and a part that ends
keeps its runs (each run's ``result.json`` under ``results/high_accuracy/NAME/``; a part run again
trains only what is missing):

    python -m benchmarks.high_accuracy --part frontier-vgg11 --device cuda   # one per arch: vgg11 vgg13 vgg16 vgg19
    python -m benchmarks.high_accuracy --part grow-samples16 --device cuda   # one per schedule: see SCHEDULES
    python -m benchmarks.high_accuracy --part report                         # the page, from what is on disk
    python -m benchmarks.high_accuracy --dry-run --part all                  # every part on digits, 1-2 epochs, CPU

Defaults are the full-width setting the issue names (all 50,000 CIFAR-10 images, width 1,
budgets 15/30/60 epochs, batch 512 with CUDA graphs); ``--dry-run`` replaces the data, the width
and the budgets with a CPU-sized check of the whole pipeline, written under
``results/high_accuracy_dry/`` (not committed).
"""

from __future__ import annotations

import argparse

from benchmarks._common import RESULTS, save_report

ARCHS = ["vgg11", "vgg13", "vgg16", "vgg19"]
# name: (stages as (class fraction of all, arch, share of the budget), data growth, stage 1 resolution)
SCHEDULES = {
    "samples16": ([(1.0, "vgg11", 0.55), (1.0, "vgg16", 0.45)], "samples", None),
    "samples19": ([(1.0, "vgg11", 0.55), (1.0, "vgg19", 0.45)], "samples", None),
    "none16": ([(1.0, "vgg11", 0.55), (1.0, "vgg16", 0.45)], "none", None),
    "none19": ([(1.0, "vgg11", 0.55), (1.0, "vgg19", 0.45)], "none", None),
    "res16_16": ([(1.0, "vgg11", 0.55), (1.0, "vgg16", 0.45)], "none", 16),
    "res16_19": ([(1.0, "vgg11", 0.55), (1.0, "vgg19", 0.45)], "none", 16),
}


def settings(args) -> dict:
    if args.dry_run:
        return {
            "data": "digits",
            "width": 0.25,
            "budgets": [1, 2],
            "grow_epochs": 2,
            "seeds": [0],
            "lrs": [0.05],
            "batch": 128,
            "compile": False,
            "out": RESULTS / "high_accuracy_dry",
        }
    return {
        "data": args.data,
        "width": args.width,
        "budgets": args.budgets,
        "grow_epochs": args.grow_epochs,
        "seeds": list(range(args.seeds)),
        "lrs": args.lrs,
        "batch": args.batch,
        "compile": "reduce-overhead" if args.device == "cuda" else False,
        "out": RESULTS / "high_accuracy",
    }


def _recipe(s: dict):
    from growsearch.plan.schedule import TrainConfig

    return TrainConfig(batch_size=s["batch"], compile=s["compile"])


def frontier_part(arch: str, s: dict, device: str | None):
    from growsearch.train.baseline import run_frontier

    return run_frontier(
        s["data"],
        [f"{arch}@{s['width']:g}"],
        s["budgets"],
        seeds=s["seeds"],
        lrs=s["lrs"],
        train=_recipe(s),
        out_dir=s["out"] / f"frontier-{arch}",
        resume=True,
        device=device,
        progress=False,
    )


def schedule_of(name: str, s: dict, seed: int):
    from growsearch.plan.schedule import Schedule, Stage

    stages, growth, res = SCHEDULES[name]
    total = s["grow_epochs"]
    out = []
    for i, (_, arch, share) in enumerate(stages):
        epochs = max(1, round(total * share))
        last = i == len(stages) - 1
        st = Stage(
            10, f"{arch}@{s['width']:g}", epochs, fraction=(1.0 if last else 0.5) if growth == "samples" else None
        )
        if res is not None and i == 0:
            st.resolution = res
        out.append(st)
    return Schedule(s["data"], out, seed=seed, train=_recipe(s), data_growth=growth)


def grow_part(name: str, s: dict, device: str | None) -> list:
    from growsearch.train.results import RESULT_FILE, RunResult
    from growsearch.train.run import run_schedule

    runs = []
    for seed in s["seeds"]:
        out = s["out"] / f"grow-{name}" / f"s{seed}"
        if (out / RESULT_FILE).is_file():
            runs.append(RunResult.load(out))
            continue
        runs.append(run_schedule(schedule_of(name, s, seed), out_dir=out, device=device, progress=False))
    return runs


def report(s: dict) -> str:
    from growsearch.train.frontier import load_frontier, merge_frontiers
    from growsearch.train.results import RunResult

    fronts = [
        load_frontier(s["out"] / f"frontier-{a}")
        for a in ARCHS
        if (s["out"] / f"frontier-{a}" / "frontier.json").is_file()
    ]
    lines = ["# Where growth may win: targets only the large networks reach", ""]
    if not fronts:
        return (
            "\n".join(
                lines
                + ["No from-scratch frontier has been trained yet: run the frontier parts first (see the script)."]
            )
            + "\n"
        )
    front = merge_frontiers(fronts)
    target = front.best_val_acc - 0.005
    reach = front.m_scratch(target)
    lines += [
        f"Data {s['data']}, width {s['width']:g}, budgets {s['budgets']}, LRs {s['lrs']}, seeds {s['seeds']}.",
        f"Best from-scratch validation accuracy {100 * front.best_val_acc:.2f} %; target {100 * target:.2f} %, "
        f"first reached from scratch by {reach['reference']} (M {reach['M']:.3g}).",
        "",
        "| network from scratch | budget (epochs) | LR chosen | val acc % |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in front.references:
        for p in r.points:
            lines.append(f"| {r.name} | {p.epochs} | {p.lr:g} | {100 * p.val_acc:.2f} |")
    lines += [
        "",
        "| schedule | seeds | val acc % | M vs the family [95 %] | M vs its final net alone | feasible |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name in SCHEDULES:
        runs = [
            RunResult.load(d) for d in sorted((s["out"] / f"grow-{name}").glob("s*")) if (d / "result.json").is_file()
        ]
        if not runs:
            lines.append(f"| {name} | 0 | — | not run yet | — | — |")
            continue
        M, acc = sum(r.M for r in runs) / len(runs), sum(r.val_acc for r in runs) / len(runs)
        iso = front.iso(M, acc, final_arch=runs[0].stages[-1].arch, runs=[(r.M, r.val_acc) for r in runs])
        same = iso["iso_M_ratio_same"]
        lo, hi = iso["iso_M_ratio_ci"]
        lines.append(
            f"| {name} | {len(runs)} | {100 * acc:.2f} | {iso['iso_M_ratio']:.2f}× [{lo:.2f}, {hi:.2f}] | "
            f"{'—' if same is None else f'{same:.2f}×'} | {'yes' if acc >= target else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", required=True, help="frontier-ARCH, grow-NAME, report, or all")
    ap.add_argument("--data", default="imagefolder:../shared/data/cifar10-jpeg.tar.gz")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--budgets", type=int, nargs="+", default=[15, 30, 60])
    ap.add_argument(
        "--grow-epochs", type=int, default=60, help="the grown schedules' total epochs, shared by their stages"
    )
    ap.add_argument("--lrs", type=float, nargs="+", default=[0.025, 0.05, 0.1])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--device", default=None)
    ap.add_argument(
        "--dry-run",
        action="store_true",
        help="every part on digits at 1-2 epochs on the CPU (results/high_accuracy_dry/)",
    )
    args = ap.parse_args()
    s = settings(args)
    parts = (
        [f"frontier-{a}" for a in ARCHS] + [f"grow-{n}" for n in SCHEDULES] + ["report"]
        if args.part == "all"
        else [args.part]
    )
    for part in parts:
        kind, _, name = part.partition("-")
        if kind == "frontier" and name in ARCHS:
            front = frontier_part(name, s, args.device)
            print(f"{part}: best val {front.best_val_acc:.4f}", flush=True)
        elif kind == "grow" and name in SCHEDULES:
            runs = grow_part(name, s, args.device)
            print(f"{part}: val {[round(r.val_acc, 4) for r in runs]}", flush=True)
        elif part == "report":
            path = s["out"].with_suffix(".md") if not args.dry_run else s["out"] / "report.md"
            save_report(report(s), path)
        else:
            raise SystemExit(
                f"unknown part {part!r}: frontier-{{{','.join(ARCHS)}}}, grow-{{{','.join(SCHEDULES)}}}, report or all"
            )


if __name__ == "__main__":
    main()
