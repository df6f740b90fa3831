"""The shape of the paper's Table 1 on digits, measured against the from-scratch frontier.

Narrow VGGs (width 0.25) on this CPU. Each schedule trains every stage to saturation with the
plateau rule (``patience``, read on the validation split); grown stages at ``--grown-lr``. The
honest denominator is the frontier (benchmarks/frontier.py): VGG19@0.25 from scratch at 2-32
epochs, each budget fully decayed, LR chosen on validation, 3 seeds. ``iso M ratio`` =
M / M_scratch(val acc) per seed; the old ratio against one saturation-trained baseline (the
previous version of this table) is kept beside it.

    python benchmarks/table1.py [--seeds 3] [--width 0.25] [--patience 3] [--grown-lr 0.02]

Prints and saves benchmarks/results/table1.md and table1.png.
"""

from __future__ import annotations

import argparse
import statistics as stats
import time
from pathlib import Path

from _common import (
    frontier,
    iso_cells,
    iso_test_delta,
    mean_std,
    pyplot,
    saturating_schedule,
    save_frontier_axes,
    save_report,
)

from growsearch.data.dataset import create_dataset
from growsearch.train.run import run_schedule

ROWS = {
    "5→10 (VGG11→19)": [(5, "vgg11"), (10, "vgg19")],
    "5→7→10 (VGG11→16→19)": [(5, "vgg11"), (7, "vgg16"), (10, "vgg19")],
    "2→5→7→10 (VGG11→13→16→19)": [(2, "vgg11"), (5, "vgg13"), (7, "vgg16"), (10, "vgg19")],
}
PAPER = "0.47×–0.77× (CIFAR-100/TinyImageNet, VGG, vs one from-scratch run, iso-accuracy ±0.5 pt)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--max-epochs", type=int, default=80)
    ap.add_argument(
        "--lr", type=float, default=0.05, help="peak LR of the saturation baseline and of every first stage"
    )
    ap.add_argument("--grown-lr", type=float, default=0.02, help="peak LR of grown stages")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "table1.md"))
    args = ap.parse_args()

    t_all = time.perf_counter()
    front = frontier("digits_vgg19", [f"vgg19@{args.width:g}"])
    ds = create_dataset("digits")
    opts = dict(width=args.width, patience=args.patience, cap=args.max_epochs, grown_lr=args.grown_lr)
    base_name = f"VGG19 from scratch to saturation (lr {args.lr:g}; the old denominator)"
    plan = {
        base_name: lambda s: saturating_schedule([(10, "vgg19")], seed=s, lr=args.lr, **opts),
        **{name: (lambda s, st=st: saturating_schedule(st, seed=s, lr=args.lr, **opts)) for name, st in ROWS.items()},
    }
    rows: dict[str, list] = {}
    for seed in range(args.seeds):
        for name, make in plan.items():
            r = run_schedule(make(seed), dataset=ds, progress=False)
            rows.setdefault(name, []).append(r)
            print(
                f"seed {seed} {name[:30]:<30} val {r.val_acc:.4f} test {r.test_acc:.4f} epochs {[s.epochs for s in r.stages]} "
                f"M {r.M:.3e} iso {front.iso(r.M, r.val_acc)['iso_M_ratio']:.3f} wall {r.wall_s:.0f}s",
                flush=True,
            )
    base = rows[base_name]

    def fmt(name: str) -> str:
        rs = rows[name]
        old = [r.M / b.M for r, b in zip(rs, base)]
        walls = [r.wall_s / b.wall_s for r, b in zip(rs, base)]
        epochs = " / ".join(str(round(stats.mean(r.stages[i].epochs for r in rs), 1)) for i in range(len(rs[0].stages)))
        iso, bounds = iso_cells(rs, front)
        return (
            f"| {name} | {mean_std([100 * r.val_acc for r in rs])} | {mean_std([100 * r.test_acc for r in rs])} | {epochs} "
            f"| {stats.mean(r.M for r in rs):.3e} | **{iso}** ({bounds}) | {iso_test_delta(rs, front)} | {stats.mean(old):.3f} | {stats.mean(walls):.2f} |"
        )

    lines = [
        "# Table 1 analogue on digits: cumulative schedules against the from-scratch frontier",
        "",
        f"VGG at width {args.width:g} on scikit-learn digits (1295 train / 142 validation / 360 test, 32×32), CPU, {args.seeds} seeds. "
        f"Every stage trained to saturation (plateau rule on validation accuracy, patience {args.patience}, cap {args.max_epochs} epochs); "
        f"peak LR {args.lr:g} for first stages, {args.grown_lr:g} for grown stages. M = Σ training samples × forward MACs. "
        "**iso M ratio** = M / M_scratch(validation accuracy) on the frontier of `frontier.md` (VGG19@0.25 from scratch at "
        "2/4/8/16/32 epochs, each decayed to zero, LR chosen on validation, mean of 3 seeds), per seed, then mean ± std; "
        "'≤' marks a run more accurate than every budget (the ratio against the most accurate budget is an upper bound), "
        "'≥' one below the cheapest budget. **Δ test** = the run's test accuracy − the frontier's test accuracy at M_scratch "
        "(the iso-accuracy check on test, ±0.5 pt). The old ratio is against one saturation-trained run of the same seed. "
        f"Total benchmark time {time.perf_counter() - t_all:.0f} s (frontier runs reused where already on disk).",
        "",
        "| schedule | val acc % | test acc % | epochs per stage (mean) | M | iso M ratio vs frontier | Δ test vs frontier (pt) | old M ratio vs saturation run | wall ratio vs saturation run |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        *[fmt(name) for name in plan],
        "",
        f"Paper (Feng & Panda, Table 1): {PAPER}. Target here: iso M ratio ≤ 0.5× within ±0.5 pt on test.",
        "",
        f"Command: `python benchmarks/table1.py --seeds {args.seeds} --width {args.width:g} --patience {args.patience} "
        f"--max-epochs {args.max_epochs} --lr {args.lr:g} --grown-lr {args.grown_lr:g}` (after `python benchmarks/frontier.py`)",
    ]
    out = save_report("\n".join(lines) + "\n", args.out)
    _plot(rows, front, out.with_suffix(".png"))


def _plot(rows: dict, front, path: Path) -> None:
    from growsearch.train.plots import draw_frontier

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    draw_frontier(ax, front)
    for i, (name, rs) in enumerate(rows.items()):
        ax.scatter([r.M for r in rs], [r.val_acc for r in rs], label=name, color=f"C{i}", s=30, zorder=3)
    save_frontier_axes(fig, ax, "digits: cumulative schedules over the from-scratch frontier", path)


if __name__ == "__main__":
    main()
