"""CIFAR-10 (benchmarks/cifar10.py): the levers of growth inside one run, one at a time.

Every row is the paper's 5→10 VGG11→16 schedule at its long level (8+6 epochs) with one lever
switched on (then all together), up to 3 seeds, judged against the whole from-scratch frontier: VGG19
and VGG16 at every budget and VGG19 with progressive resizing 16→24→32 px (so a resolution
saving is not credited to growth). A lever search over ``search_spaces/cifar10_vgg.yaml`` follows,
its best schedule re-run on 3 seeds. Not part of the package.
"""

from __future__ import annotations

import json
import shutil
import statistics as stats
import time
from dataclasses import replace
from pathlib import Path

from _cifar10_rows import rerun_best
from _common import frontier_table, iso_cells, iso_test_delta, mean_std, pyplot, save_fig

from growsearch.plan.schedule import Schedule, Stage, TrainConfig
from growsearch.train.baseline import run_frontier
from growsearch.train.frontier import Frontier, load_frontier

RESIZING = ([16, 24, 32], [0.5, 0.75])  # the frontier's progressive-resizing reference
NEW_PARAM_LR = 2.0  # one value, not tuned: the search below tunes it
# row label → (run tag, how the row differs from the paper's schedule)
ROWS = {
    "paper recipe (per-stage LR, classes, identity init)": ("base", {}),
    "+ one global LR schedule": ("global", {"train": {"lr_schedule": "global"}}),
    "+ optimizer state carried": ("carry", {"train": {"carry_optimizer": True}}),
    "+ global LR + optimizer carried (one training state)": (
        "state",
        {"train": {"lr_schedule": "global", "carry_optimizer": True}},
    ),
    "+ copy init (deepened layers copy a trained one)": ("copy", {"deepen_init": "copy"}),
    f"+ new-parameter LR × {NEW_PARAM_LR:g}": ("newlr", {"train": {"new_param_lr": NEW_PARAM_LR}}),
    "data by samples (stage 1: half of every class)": ("samples", {"data_growth": "samples"}),
    "no data growth (stage 1: all data)": ("none", {"data_growth": "none"}),
    "stage 1 at 16 px (resolution growth)": ("res16", {"resolution": 16}),
    "all levers (one state, copy, new-param LR), classes": (
        "all",
        {
            "train": {"lr_schedule": "global", "carry_optimizer": True, "new_param_lr": NEW_PARAM_LR},
            "deepen_init": "copy",
        },
    ),
    "all levers, data by samples": (
        "all-samples",
        {
            "train": {"lr_schedule": "global", "carry_optimizer": True, "new_param_lr": NEW_PARAM_LR},
            "deepen_init": "copy",
            "data_growth": "samples",
        },
    ),
}


def lever_schedule(
    data: str, width: float, cfg: TrainConfig, seed: int, change: dict, epochs: tuple[int, int] = (8, 6)
) -> Schedule:
    """The paper's 5→10 VGG11→16 schedule with ``change`` applied."""
    w = f"@{width:g}"
    growth = change.get("data_growth", "classes")
    first = {"classes": 5, "samples": 10, "none": 10}[growth]
    fr = (0.5, 1.0) if growth == "samples" else (None, None)
    stages = [
        Stage(first, "vgg11" + w, epochs[0], fraction=fr[0], resolution=change.get("resolution")),
        Stage(10, "vgg16" + w, epochs[1], fraction=fr[1]),
    ]
    train = replace(cfg, **change.get("train", {}))
    return Schedule(
        data, stages, seed=seed, train=train, data_growth=growth, deepen_init=change.get("deepen_init", "identity")
    )


def resized_frontier(
    args, data: str, ds, out: Path, cfg: TrainConfig, budgets: list[int], train: bool
) -> Frontier | None:
    """VGG19 from scratch with progressive resizing (the plain VGG19 runs are the benchmark's own):
    trained at --seeds when ``train``, else the one on disk as it is (None when there is none)."""
    d = out / "frontiers" / "vgg19_resized"
    if not train:
        return load_frontier(d / "frontier.json") if (d / "frontier.json").is_file() else None
    return run_frontier(
        data,
        ["vgg19" + f"@{args.width:g}"],
        budgets,
        seeds=list(range(args.seeds)),
        train=cfg,
        dataset=ds,
        out_dir=d,
        resume=True,
        progress=False,
        resolutions=RESIZING[0],
        switch_at=RESIZING[1],
        plain=False,
    )


def _run_name(tag: str, seed: int) -> str:
    return (
        "t1-5-10-vgg11-16-long-s%d" % seed if tag == "base" else f"lv-{tag}-s{seed}"
    )  # the base row is Table 1's own runs


# the order the rows are trained in: the rows that came closest to the goal on CPU first, so a run cut
# short (a GPU lease) has measured the rows most likely to answer "can growth win?" before the others
TRAIN_ORDER = ("none", "samples", "newlr", "all-samples", "state", "all", "copy", "global", "carry", "res16", "base")
assert sorted(TRAIN_ORDER) == sorted(tag for tag, _ in ROWS.values()), "every lever row is trained, once"


def train_ablation(args, data: str, cfg: TrainConfig, run, seeds: list[int]) -> None:
    """Train every row at ``seeds``, seed by seed (runs already on disk are kept)."""
    by_tag = {tag: change for tag, change in ROWS.values()}
    for s in seeds:
        for tag in TRAIN_ORDER:
            run(_run_name(tag, s), lever_schedule(data, args.width, cfg, s, by_tag[tag]))


def ablation(args, data: str, cfg: TrainConfig, run) -> dict[str, list]:
    """Every row's runs on disk, at the seeds 0..k-1 it has (a row with fewer than --seeds is
    reported with its seed count)."""
    rows = {}
    for label, (tag, change) in ROWS.items():
        rs = []
        for s in range(args.seeds):
            r = run(_run_name(tag, s), lever_schedule(data, args.width, cfg, s, change), train=False)
            if r is None:
                break
            rs.append(r)
        if rs:
            rows[label] = rs
    return rows


def lever_search(args, data: str, ds, front: Frontier, run, out: Path) -> dict:
    """A search over the shipped cifar10_vgg space (every lever open, one-stage schedules too) on
    the benchmark's frontier cut at --search-cap; its best schedule re-run on 3 seeds."""
    from growsearch.search.driver import run_search
    from growsearch.search.space import load_space

    space = replace(
        load_space("cifar10_vgg"),
        dataset=data,
        trials=args.lever_trials,
        budgets=[b for b in args.budgets if b <= args.search_cap],
    )
    capped = replace(
        front,
        references=[
            replace(ref, points=[p for p in ref.points if p.epochs <= args.search_cap]) for ref in front.references
        ],
    )
    d = out / "search_levers"
    if d.exists():
        shutil.rmtree(d)
    t0 = time.perf_counter()
    res = run_search(space, out_dir=d, trials=args.lever_trials, frontier=capped, references=True)
    got = {
        "trials": args.lever_trials,
        "cap": args.search_cap,
        "wall_s": time.perf_counter() - t0,
        "target_acc": res.target_acc,
        "spent_M": res.spent_M,
        "best": res.best,
        **rerun_best(res.best_schedule, run, args.seeds, "search-levers-best"),
    }
    (out / "search_levers.json").write_text(json.dumps(got, indent=1))
    return got


def report_lines(args, rows: dict[str, list], whole: Frontier, plain: Frontier, search: dict | None, load) -> list[str]:
    """Section 5 of the report: the ablation table, its plot, and the lever search."""
    if not rows:
        return []
    lines = [
        "## 6. Growth that can win: the levers, one at a time",
        "",
        "5→10 VGG11→16 at 8+6 epochs (Table 1's long row) with one lever changed per row, then all together; the seeds column says how many seeds each row has (mean ± std over them; ± 0 for one seed). "
        "**iso M ratio** against the whole frontier: VGG19 and VGG16 from scratch and VGG19 with progressive resizing "
        f"{'→'.join(map(str, RESIZING[0]))} px at {', '.join(f'{f:g}' for f in RESIZING[1])} of each budget (one LR schedule "
        "and optimizer state across the switches); the next column leaves the resizing reference out, to show what a "
        "resolution saving would look like if it were credited to growth. Goal: ≤ 0.7 at iso-accuracy on test (±0.5 pt). "
        "Samples rows train stage 1 on half of every class (as many images as 5 classes); no-growth rows on all of them. "
        f"New-parameter LR × {NEW_PARAM_LR:g} is one untuned value.",
        "",
        "| schedule | seeds | val acc % | test acc % | M | iso M ratio | Δ test (pt) | iso M ratio without the resizing reference |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, rs in rows.items():
        iso, bounds = iso_cells(rs, whole)
        lines.append(
            f"| {label} | {len(rs)} | {mean_std([100 * r.val_acc for r in rs])} | {mean_std([100 * r.test_acc for r in rs])} | {stats.mean(r.M for r in rs):.3e} "
            f"| **{iso}** ({bounds}) | {iso_test_delta(rs, whole)} | {iso_cells(rs, plain)[0]} |"
        )
    resized = [r for r in whole.references if r.resolutions]
    if resized:
        lines += [
            "",
            "The progressive-resizing reference (VGG19 from scratch):",
            "",
            *frontier_table(replace(whole, references=resized)),
        ]
    lines += ["", f"![levers]({args.name}_levers.png)", ""]
    if search:
        best = search.get("best") or {}
        lines += [
            f"**Lever search.** {search['trials']} trials of `search_spaces/cifar10_vgg.yaml` (every lever open, one-stage schedules "
            f"included, the from-scratch and paper schedules enqueued first) against this frontier cut at {search['cap']} epochs "
            f"(target {search['target_acc']:.4f} validation accuracy); {search['wall_s']:.0f} s.",
            "",
        ]
        reruns = [load(n) for n in search.get("reruns", [])]
        if search.get("best_schedule") and all(reruns):
            sch = Schedule.from_dict(search["best_schedule"])
            desc = ", ".join(
                f"{st.classes} cl {st.arch} {st.epochs} ep"
                + (f" {st.fraction:g} of the data" if st.fraction else "")
                + (f" {st.resolution} px" if st.resolution else "")
                for st in sch.stages
            )
            t = sch.train
            lines += [
                f"Best feasible trial: ratio {best.get('M_ratio', float('nan')):.3f} on its one seed; schedule: {desc}; data_growth {sch.data_growth}, "
                f"lr_schedule {t.lr_schedule}{f' (re-warm {t.rewarm_epochs:.2g} ep to ×{t.rewarm_peak:.2g})' if t.rewarm_epochs else ''}, "
                f"carry_optimizer {str(t.carry_optimizer).lower()}, new_param_lr {t.new_param_lr:.3g}, deepen_init {sch.deepen_init}.",
                "",
                "| re-run on 3 seeds | val acc % | test acc % | M | iso M ratio | Δ test (pt) |",
                "| --- | ---: | ---: | ---: | ---: | ---: |",
                f"| searched schedule | {mean_std([100 * r.val_acc for r in reruns])} | {mean_std([100 * r.test_acc for r in reruns])} "
                f"| {stats.mean(r.M for r in reruns):.3e} | **{iso_cells(reruns, whole)[0]}** ({iso_cells(reruns, whole)[1]}) | {iso_test_delta(reruns, whole)} |",
                "",
            ]
        elif not search.get("best_schedule"):
            lines += ["The search found no feasible schedule.", ""]
    return lines


def plot(rows: dict[str, list], whole: Frontier, path: Path) -> None:
    """One bar per row: mean iso M ratio with its per-seed spread, the 0.7 goal and 1 marked."""
    plt = pyplot()
    labels = list(rows)
    vals = [[whole.iso(r.M, r.val_acc)["iso_M_ratio"] for r in rows[k]] for k in labels]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.2))
    y = range(len(labels))
    ax.barh(
        list(y),
        [stats.mean(v) for v in vals],
        xerr=[stats.stdev(v) if len(v) > 1 else 0 for v in vals],
        color="C0",
        alpha=0.7,
    )
    for i, v in enumerate(vals):
        ax.scatter(v, [i] * len(v), color="k", s=10, zorder=3)
    ax.axvline(1.0, color="k", lw=1)
    ax.axvline(0.7, color="C3", lw=1, ls="--", label="goal 0.7")
    ax.set_yticks(list(y), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("iso M ratio against the whole from-scratch frontier (mean ± std, dots: seeds)")
    ax.legend(fontsize=7)
    save_fig(fig, path)
