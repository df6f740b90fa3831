"""Grow, then shrink on CIFAR-10 (benchmarks/shrink.py): its page and plot from the runs kept.
Not part of the package.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from _common import RESULTS, scratch_test_acc

from growsearch.train.family import family_ratio, own_reference
from growsearch.train.results import RunResult


def own(row: dict, fronts) -> tuple:
    """(frontier, reference name) of the subnet's own architecture."""
    own = own_reference(fronts, row["spec"])
    if own is None:
        raise SystemExit(f"no frontier of {row['arch']}")
    return own[0], own[1].name


def row(r: RunResult, fronts) -> dict:
    """Per subnet: accuracy, M_scratch on its own frontier, and the test gap to that frontier at the same M_scratch."""
    ratio = family_ratio(r, fronts, chosen="all")
    pareto = family_ratio(r, fronts)
    subs = []
    for row, e in zip(r.subnets, ratio["subnets"]):
        f, name = own(row, fronts)
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


def ms(vals: list[float], fmt: str = ".3f") -> str:
    if not vals:
        return "–"
    return f"{statistics.mean(vals):{fmt}}" + (
        f" ± {statistics.stdev(vals):{fmt.replace('+', '')}}" if len(vals) > 1 else ""
    )


def report(runs: dict, fronts, seeds: list[int], args, plans: dict) -> str:
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
    rows = {v: [row(r, fronts) for r in rs] for v, rs in runs.items()}
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
            f"| ({v}) {plans[v][0]} | {len(rs)} | {ms([r['M'] / 1e12 for r in rs], '.2f')} | {upper}{ms([r['family_ratio_all'] for r in rs])}"
            f" | {ms([r['family_ratio_pareto'] for r in rs])} | {ms(within, '.1f')} of 4 | {ms([r['wall_s'] for r in rs], '.0f')} |"
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
                f"| ({v}) | {s0['subnet']} | {s0['arch']} | {s0['macs_per_sample']} | {ms([s['val_acc'] for s in col])} | {ms([s['test_acc'] for s in col])}"
                f" | {mark}{ms([s['M_scratch'] / 1e12 for s in col], '.2f')} | {ms([s['test_gap_pt'] for s in col], '+.2f')} |"
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
        f"one {device(args)} shared by the lease's processes side by side"
        if gpu
        else "a 2-core machine shared with other work (seed 0's grow-then-shrink run overlapped a test suite)"
    )
    lines += [
        "",
        f"Seeds {seeds}; runs already kept are reused. Wall times are of {where}: compare M, not seconds.",
        "",
    ]
    return "\n".join(lines)


def device(args) -> str:
    """The GPU the runs trained on, as cifar10.py recorded it (results/NAME/device.json)."""
    rec = RESULTS / args.name / "device.json"
    return json.loads(rec.read_text())["name"] if rec.is_file() else "GPU"


def plot(runs: dict, fronts, path: Path, plans: dict, args) -> None:
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
        f, name = own(row, fronts)
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
