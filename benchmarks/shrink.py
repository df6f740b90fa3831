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

The GPU setting (``--name cifar10_gpu``): all 50,000 images, full width, batch 512 (LR scaled
linearly), 9 epochs a run, every subnet's frontier (the full network's too) at budgets 3/6/9,
all under results/cifar10_gpu. Its parts can run side by side, each in its own process
(``--train``, ``--run-seeds``, ``--no-report``); a last call with ``--report-only`` reports:

    python benchmarks/shrink.py --name cifar10_gpu --per-class 0 --width 1 --batch 512 --total 9 \
        --budgets 3 6 9 --full-frontier frontiers/shrink_vgg16 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _common import CIFAR_ARCHIVE, RESULTS, scratch_test_acc

from growsearch import run_frontier, run_schedule
from growsearch.data.dataset import create_dataset
from growsearch.plan.schedule import Schedule, Shrink, Stage, TrainConfig
from growsearch.train.family import family_ratio, own_reference
from growsearch.train.frontier import load_frontier
from growsearch.train.results import RunResult

MENU = {"depths": ["vgg11"], "widths": [0.5]}
VARIANTS = {"a": "grow then shrink", "b": "from scratch then shrink", "c": "once-for-all from the start"}


def variants(width: float, total: int) -> dict[str, tuple[str, list[tuple[str, int]], dict]]:
    """Label, stages (arch, epochs) and shrink keys of each variant at this width and run length
    (the CPU setting: 24 epochs, VGG11 for a third of them in (a); the DepS ramp is 1/12 of the run)."""
    w, ramp = f"@{width:g}", max(1, total // 12)
    first = total // 3
    return {
        "a": (
            f"grow then shrink (VGG11 {first} ep → VGG16 {total - first} ep, DepS from 0.5)",
            [(f"vgg11{w}", first), (f"vgg16{w}", total - first)],
            {"start": 0.5, "ramp_epochs": ramp},
        ),
        "b": (
            f"from scratch then shrink (VGG16 {total} ep, DepS from 0.5)",
            [(f"vgg16{w}", total)],
            {"start": 0.5, "ramp_epochs": ramp},
        ),
        "c": (
            f"once-for-all from the start (VGG16 {total} ep, shrink from 0)",
            [(f"vgg16{w}", total)],
            {"start": 0.0, "ramp_epochs": 0},
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=CIFAR_ARCHIVE)
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of every run")
    ap.add_argument(
        "--frontier-seeds", type=int, default=None, help="seeds 0..N-1 of the subnets' new frontier (default: --seeds)"
    )
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--budgets", type=int, nargs="+", default=[6, 12, 24])
    ap.add_argument("--report-only", action="store_true", help="train nothing; report the runs kept")
    ap.add_argument(
        "--name",
        default="cifar10",
        help="results folder under benchmarks/results/ (cifar10_gpu: the GPU setting) and report shrink_NAME",
    )
    ap.add_argument("--width", type=float, default=0.25, help="width of the family's full network")
    ap.add_argument("--total", type=int, default=24, help="epochs of every run")
    ap.add_argument(
        "--batch", type=int, default=128, help="batch size (above 128 the LR scales linearly), the frontiers' too"
    )
    ap.add_argument("--device", default=None, help="cpu or cuda; default CUDA when available")
    ap.add_argument(
        "--full-frontier",
        default="frontiers/vgg16",
        help="the full network's frontier under the results folder; trained there at --budgets when it has none",
    )
    ap.add_argument(
        "--train",
        nargs="+",
        default=["frontier", "full-frontier", "runs"],
        choices=["frontier", "full-frontier", "runs"],
        help="what this process trains (parts can run side by side, each in its own process)",
    )
    ap.add_argument(
        "--frontier-archs",
        type=int,
        nargs="+",
        default=None,
        choices=[0, 1, 2],
        help="train only these of the three smaller subnets' frontiers (VGG11 half width, VGG11, VGG16 half width), each in a folder of its own "
        "(frontiers/subnets-ARCH), so processes side by side can each train one; default: all three in frontiers/subnets",
    )
    ap.add_argument(
        "--run-seeds",
        type=int,
        nargs="+",
        default=None,
        help="seeds of the variant runs this process trains (default: all)",
    )
    ap.add_argument("--no-report", action="store_true", help="train only; a later --report-only call reports")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = RESULTS / args.name
    data = f"imagefolder:{args.data}" + (f"?train_per_class={args.per_class}" if args.per_class else "")
    ds = create_dataset(data)
    cfg = TrainConfig(lr=0.05, batch_size=args.batch, lr_scaling="linear" if args.batch != 128 else "none")
    seeds = list(range(args.seeds))
    w = args.width
    full_dir, sub_dir = out / args.full_frontier, out / "frontiers" / "subnets"
    train = set() if args.report_only else set(args.train)
    kw = dict(
        seeds=list(range(args.frontier_seeds or args.seeds)),
        train=cfg,
        dataset=ds,
        resume=True,
        progress=False,
        device=args.device,
    )
    if "full-frontier" in train and not (full_dir / "frontier.json").is_file():
        print(f"frontier of vgg16@{w:g} from scratch ...", flush=True)
        run_frontier(data, [f"vgg16@{w:g}"], args.budgets, out_dir=full_dir, **kw)
    small = [f"vgg11@{w / 2:g}", f"vgg11@{w:g}", f"vgg16@{w / 2:g}"]
    if "frontier" in train:  # all three in one folder, or the ones asked for each in its own
        parts = (
            [(sub_dir, small)]
            if args.frontier_archs is None
            else [(sub_dir.with_name(f"subnets-{small[i]}"), [small[i]]) for i in args.frontier_archs]
        )
        for folder, archs in parts:
            print(f"frontier of {', '.join(archs)} from scratch ...", flush=True)
            run_frontier(data, archs, args.budgets, out_dir=folder, **kw)
    runs: dict[str, list[RunResult]] = {}
    plans = variants(w, args.total)
    for v in VARIANTS:  # every variant's kept runs are reported; only --variants train
        label, stages, shrink = plans[v]
        for seed in seeds:
            sched = Schedule(
                data,
                [Stage(10, a, e) for a, e in stages],
                seed=seed,
                train=cfg,
                data_growth="none",
                shrink=Shrink(**MENU, **shrink),
            )
            d = out / "runs" / f"shrink-{v}-s{seed}"
            r = RunResult.load(d) if (d / "result.json").is_file() else None
            if r is None or r.schedule != sched.to_dict():
                if "runs" not in train or v not in args.variants or seed not in (args.run_seeds or seeds):
                    continue
                print(f"({v}) seed {seed}: {label} ...", flush=True)
                r = run_schedule(sched, dataset=ds, out_dir=d, overwrite=True, device=args.device, progress=False)
            runs.setdefault(v, []).append(r)
    if args.no_report or not runs:
        return print(f"trained in {time.perf_counter() - t0:.0f} s; no report" + (" (no run kept)" if not runs else ""))
    subs = sorted(d for d in sub_dir.parent.glob("subnets*") if (d / "frontier.json").is_file())
    if not (full_dir / "frontier.json").is_file() or not subs:
        return print(
            f"no report: {'the subnets’' if not subs else full_dir.name + '’s'} frontier is missing (train it with --train)"
        )
    fronts = [load_frontier(full_dir), *map(load_frontier, subs)]
    report = _report(runs, fronts, seeds, time.perf_counter() - t0, args, plans)
    stem = RESULTS / f"shrink_{args.name}"
    stem.with_suffix(".md").write_text(report)
    stem.with_suffix(".json").write_text(
        json.dumps({v: [_row(r, fronts) for r in rs] for v, rs in runs.items()}, indent=2) + "\n"
    )
    _plot(runs, fronts, stem.with_suffix(".png"), plans, args)
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
        subs.append(
            {
                **{k: row[k] for k in ("subnet", "arch", "macs_per_sample", "val_acc", "test_acc", "pareto")},
                "M_scratch": e["M_scratch"],
                "beyond": e["beyond_frontier"],
                "below": e["below_frontier"],
                "test_gap_pt": gap,
            }
        )
    return {
        "seed": r.schedule["seed"],
        "M": r.M,
        "wall_s": r.wall_s,
        "shrink": r.shrink,
        "family_ratio_all": ratio["family_ratio"],
        "family_ratio_pareto": pareto["family_ratio"],
        "bound_all": ratio["bound"],
        "subnets": subs,
    }


def _ms(vals: list[float], fmt: str = ".3f") -> str:
    if not vals:
        return "–"
    return f"{statistics.mean(vals):{fmt}}" + (
        f" ± {statistics.stdev(vals):{fmt.replace('+', '')}}" if len(vals) > 1 else ""
    )


def _report(runs: dict, fronts, seeds: list[int], wall: float, args, plans: dict) -> str:
    w = args.width
    gpu = args.per_class == 0
    images = "all 50,000 training images" if gpu else f"{args.per_class:,} training images per class"
    batch = f", batch {args.batch} (the LR of 0.05 scaled linearly)" if args.batch != 128 else ""
    full = "its own" if args.full_frontier != "frontiers/vgg16" else "cifar10.md's"
    lines = [
        f"# Grow, then shrink on CIFAR-10 ({'GPU' if gpu else 'CPU'} setting)",
        "",
        f"`benchmarks/shrink.py --name {args.name}`: {images} (10% held out for validation), VGG@{w:g}{batch}, the family of VGG16@{w:g} "
        f"with depths {{VGG11, VGG16}} × widths {{0.5, 1}} (4 subnets), every run {args.total} epochs, the recipe of {args.name}.md. Each subnet's "
        "BatchNorm is recalibrated on 1,000 training images before it is scored; validation chooses, test is reported. Each "
        f"subnet is priced on a frontier of its own architecture (budgets {'/'.join(map(str, args.budgets))}, each decayed to zero, the same "
        f"recipe; VGG16@{w:g}'s is {full} with {len(fronts[0].seeds)} seed(s), the three others with {'/'.join(str(len(f.seeds)) for f in fronts[1:])} seed(s)). Family ratio = the run's whole M "
        "(every subnet pass and the recalibration counted) / Σ M_scratch; *gap* = the subnet's test accuracy − its frontier's "
        "test accuracy at the same M_scratch (pt).",
        "",
        "| variant | seeds | M (×10¹²) | family ratio, all 4 | family ratio, Pareto | subnets within 0.5 pt | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = {v: [_row(r, fronts) for r in rs] for v, rs in runs.items()}
    for v, rs in rows.items():
        within = [sum(s["test_gap_pt"] >= -0.5 for s in r["subnets"]) for r in rs]
        bounds = {
            b
            for r in rs
            for b in {"upper": ["upper"], "lower": ["lower"], "mixed": ["upper", "lower"]}.get(r["bound_all"], [])
        }
        upper = {frozenset({"upper"}): "≤ ", frozenset({"lower"}): "≥ ", frozenset({"upper", "lower"}): "≶ "}.get(
            frozenset(bounds), ""
        )
        lines.append(
            f"| ({v}) {plans[v][0]} | {len(rs)} | {_ms([r['M'] / 1e12 for r in rs], '.2f')} | {upper}{_ms([r['family_ratio_all'] for r in rs])}"
            f" | {_ms([r['family_ratio_pareto'] for r in rs])} | {_ms(within, '.1f')} of 4 | {_ms([r['wall_s'] for r in rs], '.0f')} |"
        )
    lines += [
        "",
        "≤: in some seed a subnet beat every budget of its own frontier, so its M_scratch (that of the most accurate budget) is a lower "
        "bound and the family ratio an upper bound. ≥: in some seed a subnet fell below every budget of its frontier, so its M_scratch "
        "(that of the cheapest budget) is an upper bound and the family ratio a lower bound. ≶: both, in different subnets or seeds. *Within 0.5 pt*: subnets whose test accuracy is at most 0.5 pt below their "
        "frontier's at the same M_scratch (the goal asks all 4). The paper's figures (DepS, ECCV 2024, ImageNet-1k, MobileNetV3 "
        "space, against OFA and BigNAS): shrinking from ~50 % of the full model's training gives 1.83 pt higher top-1, or the same "
        "accuracy at 1.3× fewer FLOPs and 2.5× fewer GPU-hours; none of these papers prices a family against each subnet from scratch.",
    ]
    lines += [
        "",
        "Per subnet (mean ± std over seeds; ≥ marks a subnet more accurate than every budget of its frontier, so its M_scratch is a lower bound):",
        "",
        "| variant | subnet | arch | MACs/img | val acc | test acc | M_scratch (×10¹²) | gap (pt) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
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
            lines.append(
                f"- {ref.name}: "
                + ", ".join(
                    f"{p.epochs} ep {p.val_acc:.3f}/{p.test_acc:.3f} ({p.M / 1e12:.2f})"
                    for p in sorted(ref.points, key=lambda p: p.M)
                )
            )
    where = (
        f"one {_device(args)} shared by the lease's processes side by side"
        if gpu
        else "a 2-core machine shared with other work (seed 0's grow-then-shrink run overlapped a test suite)"
    )
    lines += [
        "",
        f"Seeds {seeds}; runs already kept are reused (the call that wrote this report trained for {wall:.0f} s). Wall times are of {where}: compare M, not seconds.",
        "",
    ]
    return "\n".join(lines)


def _device(args) -> str:
    """The GPU the runs trained on, as cifar10.py recorded it (results/NAME/device.json)."""
    rec = RESULTS / args.name / "device.json"
    return json.loads(rec.read_text())["name"] if rec.is_file() else "GPU"


def _plot(runs: dict, fronts, path: Path, plans: dict, args) -> None:
    from growsearch._plot import log_x, pyplot, save

    fig, ax = pyplot().subplots(figsize=(7, 4.2))
    for j, (v, rs) in enumerate(runs.items()):
        for k in range(len(rs[0].subnets)):
            xs = rs[0].subnets[k]["macs_per_sample"]
            ys = [r.subnets[k]["test_acc"] for r in rs]
            ax.errorbar(
                [xs * (1 + 0.03 * j)],
                [statistics.mean(ys)],
                yerr=[statistics.stdev(ys)] if len(ys) > 1 else None,
                marker="o",
                color=f"C{j}",
                capsize=2,
                label=f"({v}) {plans[v][0]}" if k == 0 else None,
            )
    labelled = False
    for row in next(iter(runs.values()))[0].subnets:
        f, name = _own(row, fronts)
        ref = next(r for r in f.references if r.name == name)
        best = max(ref.points, key=lambda p: p.M)
        ax.scatter(
            [row["macs_per_sample"] * 0.97],
            [best.test_acc],
            marker="s",
            facecolors="none",
            edgecolors="k",
            label=None if labelled else f"from scratch, {best.epochs} epochs (its own frontier)",
        )
        labelled = True
    log_x(ax)
    ax.set_xlabel("inference MACs per image (log scale)")
    ax.set_ylabel("test accuracy (BatchNorm recalibrated)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left")
    ax.set_title(
        f"VGG16@{args.width:g}'s family on CIFAR-10 ({'GPU' if args.per_class == 0 else 'CPU'} setting)", fontsize=10
    )
    save(fig, path)


if __name__ == "__main__":
    main()
