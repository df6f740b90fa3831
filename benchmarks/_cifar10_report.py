"""CIFAR-10 (benchmarks/cifar10.py): its report page and plot, from the runs on disk. Not part
of the package.
"""

from __future__ import annotations

import statistics as stats
from dataclasses import replace
from pathlib import Path

import _cifar10_sections as sections
import _cut
from _cifar10_rows import PAPER_T1, PAPER_T2, THRESHOLD, load_json
from _common import (
    RESULTS,
    frontier_table,
    iso_cells,
    iso_test_delta,
    mean_std,
    pyplot,
    save_frontier_axes,
)

from growsearch.train.frontier import Frontier, budget_run_dir
from growsearch.train.results import RunResult


def page(args, ds, f19, f16, t1, t2, fprs, search, robust, cuts) -> str:
    """The page's Markdown (its Reading, written by a person, is appended by the caller)."""
    return "\n".join(_report_lines(args, ds, f19, f16, t1, t2, fprs, search, robust, cuts)) + "\n"


def _report_lines(args, ds, f19, f16, t1, t2, fprs, search, robust, cuts) -> list[str]:
    n_train = len(ds.y_train)
    gpu = load_json(args.dir / "device.json")
    where = (
        f"one {gpu['name']} (bf16 autocast, channels_last, torch {gpu['torch']})"
        if gpu
        else "2-core CPU, torch threads 2"
    )
    subset = (
        f"**{args.per_class} training images per class** (`?train_per_class={args.per_class}`, stratified, seeded; "
        if args.per_class
        else "**all 50,000 training images** ("
    )
    lines = [
        f"# CIFAR-10 on {'a GPU' if gpu else 'CPU'}: the paper's rows against the from-scratch frontier",
        "",
        f"**Setting.** CIFAR-10 from `../shared/data/cifar10-jpeg.tar.gz`, {subset}{n_train} images, of which 10% per class are "
        f"the validation split every choice reads), all {len(ds.y_test)} test images read once per run for the report. **VGG at width "
        f"{args.width:g}** (timm's VGG family as growsearch builds it), 32×32, batch 128, SGD Nesterov, peak LR {args.lr:g} "
        "for every stage and every budget, 1 warm-up epoch, cosine to zero at the end of each stage/budget, flip + crop "
        f"augmentation; {where}. {args.seeds} seeds (seed = class order, init, batch order); the "
        "validation split is the same for all. M = Σ training samples × forward MACs.",
        "",
        "**iso M ratio** = M / M_scratch(validation accuracy), M_scratch read off the frontier (least M reaching that "
        "validation accuracy, linear in log M between budgets; '≤' = more accurate than every budget, an upper bound); "
        "per seed, then mean ± std. **Δ test** = run test accuracy − the frontier's test accuracy at M_scratch: the "
        "iso-accuracy check on test (±0.5 pt).",
        "",
    ]
    if not gpu:
        full = RESULTS / "cifar10_gpu.md"
        lines += [
            "**Full width (VGG19@1.0, all 50,000 images) on a GPU:** "
            + (
                "see [cifar10_gpu.md](cifar10_gpu.md)."
                if full.is_file()
                else "pending — no GPU machine was lent to any session so far."
            ),
            "",
        ]
    if f19 is None:
        return lines + ["No frontier yet: run `python benchmarks/cifar10.py --phases frontier`."]
    both = merged(f19, f16)
    lines += [
        f"## 1. Frontier: VGG19 from scratch at {'/'.join(map(str, args.budgets))} epochs"
        + ("" if f16 is None else f", VGG16 at {'/'.join(str(p.epochs) for p in f16.references[0].points)}")
        + ", each budget fully decayed",
        "",
        *frontier_table(both),
        "",
        f"![frontier and runs]({args.name}.png)",
        "",
    ]
    if t1:
        lines += [
            "## 2. Table 1 analogue: cumulative schedules at fixed stage budgets",
            "",
            f"Against {'the VGG19 and VGG16 frontiers (the cheaper of the two at each accuracy)' if f16 is not None else 'the VGG19 frontier (a VGG16 frontier is pending: the VGG11→16 row may look better than it is)'}. "
            "'chosen' = the level with the lower mean iso ratio (a validation-side choice). Wall ratio = run wall time / "
            "the frontier's wall time at M_scratch (interpolated like M).",
            "",
            "| schedule | epochs per stage | val acc % | test acc % | M | iso M ratio | Δ test (pt) | iso M ratio vs VGG19 alone | wall ratio | paper |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for name, levels in t1.items():
            chosen = min(levels, key=lambda lv: stats.mean(both.iso(r.M, r.val_acc)["iso_M_ratio"] for r in levels[lv]))
            for level, rs in levels.items():
                iso, bounds = iso_cells(rs, both)
                ep = "+".join(str(s.epochs) for s in rs[0].stages)
                mark = " (chosen)" if level == chosen else ""
                lines.append(
                    f"| {name}{mark} | {ep} | {mean_std([100 * r.val_acc for r in rs])} | {mean_std([100 * r.test_acc for r in rs])} "
                    f"| {stats.mean(r.M for r in rs):.3e} | **{iso}** ({bounds}) | {iso_test_delta(rs, both)} | {iso_cells(rs, f19)[0]} | {_wall_ratio(rs, both)} "
                    f"| {PAPER_T1[name] if level == chosen else ''} |"
                )
        lines.append("")
    if t2:
        ref = RunResult.load(budget_run_dir(args.dir / "frontiers" / "vgg19", args.budgets[0], args.lr, 0))
        lines += [
            "## 3. Table 2 analogue: pruning VGG11 before growth (5→10, VGG11→19, long level), ± zero mask",
            "",
            f"R = fraction of every VGG11 conv's filters pruned (lowest L1 norm, torch-pruning) before growth. Ratios of params "
            f"and inference MACs against VGG19{'@' + format(args.width, 'g')} ({ref.params} params, {ref.macs_per_sample} MACs). "
            "'non-zero' MACs skip zero weights. Reference (a): VGG19 from scratch; (b): the pruned final network from scratch"
            + ("" if fprs else " (pending)")
            + " (seed 0's"
            + (
                f"; the threshold rows' widths differ by seed). The threshold rows prune the filters whose score is below {THRESHOLD:g} of the layer's mean (`prune_threshold`, one value, not tuned)."
                if any(label.startswith("threshold") for label in t2)
                else ")."
            ),
            "",
            "| schedule | params ratio | val acc % | test acc % | M | iso M ratio vs (a) | Δ test vs (a) | iso M ratio vs (b) | Δ test vs (b) | inference MACs ratio | non-zero MACs ratio |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for label, rs in t2.items():
            a, ab = iso_cells(rs, f19)
            # (b) is the pruned network from scratch: no reference for the unpruned row
            fb = fprs.get(label)
            b, bb = iso_cells(rs, fb) if fb is not None else ("–", "")
            lines.append(
                f"| {label} | {stats.mean(r.params for r in rs) / ref.params:.3f} | {mean_std([100 * r.val_acc for r in rs])} | {mean_std([100 * r.test_acc for r in rs])} "
                f"| {stats.mean(r.M for r in rs):.3e} | **{a}** ({ab}) | {iso_test_delta(rs, f19)} | **{b}** {('(' + bb + ')') if bb else ''} "
                f"| {iso_test_delta(rs, fb) if fb is not None else '–'} | {stats.mean(r.macs_per_sample for r in rs) / ref.macs_per_sample:.3f} "
                f"| {stats.mean(r.nonzero_macs_per_sample for r in rs) / ref.macs_per_sample:.3f} |"
            )
        cut = {label: rs for label, rs in t2.items() if rs[0].stages[1].prune}
        if cut:
            lines += [
                "",
                "At the cut (stage 1's network on stage 1's validation data, before and right after pruning, before growth):",
                "",
                "| schedule | val acc % before | val acc % right after pruning | drop (pt) |",
                "| --- | ---: | ---: | ---: |",
            ]
            for label, rs in cut.items():
                before, after = (
                    [100 * r.stages[0].val_acc for r in rs],
                    [100 * r.stages[1].prune["val_acc_after_prune"] for r in rs],
                )
                lines.append(
                    f"| {label} | {mean_std(before)} | {mean_std(after)} | {mean_std([b - a for b, a in zip(before, after)])} |"
                )
        lines += [""] + _cut.report_lines(cuts, RESULTS / f"{args.name}_cut.png")
        lines += ["", f"Paper (Table 2): {PAPER_T2}.", ""]
        for f in {id(f): f for f in fprs.values()}.values():
            lines += [f"Reference (b), {f.references[0].name}:", "", *frontier_table(f), ""]
    lines += sections.search_lines(args, search, both)
    lines += sections.robust_lines(robust, args.name)
    lines += sections.throughput_lines(args.dir, gpu, f19, f16, t1)
    return lines


def merged(f19: Frontier, f16: Frontier | None) -> Frontier:
    """One frontier whose M_scratch is the cheaper of the VGG19 and VGG16 references."""
    if f16 is None:
        return f19
    return replace(f19, references=f19.references + f16.references, spent_M=f19.spent_M + f16.spent_M)


def _wall_ratio(runs: list[RunResult], front: Frontier) -> str:
    """Run wall time / the wall time of the reference that sets M_scratch, at M_scratch."""
    out = []
    for r in runs:
        ms = front.m_scratch(r.val_acc)  # M_scratch and its reference only: iso() would also bootstrap an interval
        ref = next(x for x in front.references if x.name == ms["reference"])
        out.append(r.wall_s / ref.at(ms["M"], "wall_s"))
    return mean_std(out)


def plot(f19: Frontier, f16: Frontier | None, t1: dict, t2: dict, path: Path, setting: str) -> None:
    from growsearch.train.plots import draw_frontier

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    draw_frontier(ax, merged(f19, f16))
    i = 0
    for name, levels in t1.items():
        for level, rs in levels.items():
            ax.scatter(
                [r.M for r in rs],
                [r.val_acc for r in rs],
                label=f"{name} ({level})",
                color=f"C{i + 2}",
                s=28,
                zorder=3,
                marker="o" if level == "long" else "^",
            )
        i += 1
    for label, rs in t2.items():
        if label != "R = 0":
            ax.scatter(
                [r.M for r in rs],
                [r.val_acc for r in rs],
                label=f"5→10 VGG11→19 {label}",
                color=f"C{i + 2}",
                s=28,
                marker="s",
                zorder=3,
            )
            i += 1
    save_frontier_axes(fig, ax, f"CIFAR-10 ({setting}): cumulative schedules over the from-scratch frontier", path)
