"""The shape of the paper's Table 1 on digits: cumulative schedules vs VGG19 from scratch.

Narrow VGGs (width 0.25 by default) on this CPU; every stage and the baseline trained to
saturation with the same plateau rule (``patience``: LR drops 10x at the first plateau of
test accuracy, the stage stops at the next). Grown stages may use a lower peak LR
(``--grown-lr``): they start from a trained network; the baseline is also run at that LR so
the comparison is not one-sided. Each row over ``--seeds`` seeds; the M ratio is taken per
seed against that seed's baseline, then averaged.

    python benchmarks/table1.py [--seeds 3] [--width 0.25] [--patience 3] [--grown-lr 0.02]

Prints and saves benchmarks/results/table1.md and table1.png.
"""

from __future__ import annotations

import argparse
import statistics as stats
import time
from pathlib import Path

from _common import mean_std, pyplot, saturating_schedule, save_fig, save_report
from growsearch.data import create_dataset
from growsearch.train import run_schedule

ROWS = {
    "5→10 (VGG11→19)": [(5, "vgg11"), (10, "vgg19")],
    "5→7→10 (VGG11→16→19)": [(5, "vgg11"), (7, "vgg16"), (10, "vgg19")],
    "2→5→7→10 (VGG11→13→16→19)": [(2, "vgg11"), (5, "vgg13"), (7, "vgg16"), (10, "vgg19")],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--max-epochs", type=int, default=80)
    ap.add_argument("--lr", type=float, default=0.05, help="peak LR of the baseline and of every first stage")
    ap.add_argument("--grown-lr", type=float, default=0.02, help="peak LR of grown stages (and of the second baseline row)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "table1.md"))
    args = ap.parse_args()

    ds = create_dataset("digits")
    p, cap = args.patience, args.max_epochs
    opts = dict(width=args.width, patience=p, cap=cap, grown_lr=args.grown_lr)

    rows: dict[str, list] = {}
    plan = {
        f"baseline VGG19 (lr {args.lr:g})": lambda s: saturating_schedule([(10, "vgg19")], seed=s, lr=args.lr, **opts),
        f"baseline VGG19 (lr {args.grown_lr:g})": lambda s: saturating_schedule([(10, "vgg19")], seed=s, lr=args.grown_lr, **opts),
        **{name: (lambda s, st=st: saturating_schedule(st, seed=s, lr=args.lr, **opts)) for name, st in ROWS.items()},
    }
    t_all = time.perf_counter()
    for seed in range(args.seeds):
        for name, make in plan.items():
            r = run_schedule(make(seed), dataset=ds, progress=False)
            rows.setdefault(name, []).append(r)
            print(
                f"seed {seed} {name:<30} acc {r.test_acc:.4f} epochs {[s.epochs for s in r.stages]} "
                f"M {r.M:.3e} wall {r.wall_s:.0f}s",
                flush=True,
            )

    base_name = next(iter(plan))
    base = rows[base_name]
    base_acc = stats.mean(r.test_acc for r in base)

    def fmt(name: str) -> str:
        rs = rows[name]
        accs = [100 * r.test_acc for r in rs]
        ratios = [r.M / b.M for r, b in zip(rs, base)]
        walls = [r.wall_s / b.wall_s for r, b in zip(rs, base)]
        epochs = " / ".join(str(round(stats.mean(r.stages[i].epochs for r in rs), 1)) for i in range(len(rs[0].stages)))
        delta = stats.mean(accs) - 100 * base_acc
        return (
            f"| {name} | {mean_std(accs)} | {delta:+.2f} | {epochs} | {stats.mean(r.M for r in rs):.3e} "
            f"| {stats.mean(ratios):.3f} | {stats.mean(walls):.2f} |"
        )

    lines = [
        "# Table 1 analogue: cumulative Net2Net training on digits",
        "",
        f"VGG at width {args.width:g} on scikit-learn digits (1437 train / 360 test, 32x32), CPU, {args.seeds} seeds. "
        f"Every stage trained to saturation (patience {p}, cap {cap} epochs); peak LR {args.lr:g} for first stages and "
        f"the first baseline, {args.grown_lr:g} for grown stages. M = Σ training samples × forward MACs; ratios are "
        f"per seed against the lr {args.lr:g} baseline, then averaged. Total benchmark time {time.perf_counter() - t_all:.0f} s.",
        "",
        "| schedule | accuracy % (mean ± std) | Δ vs baseline (pt) | epochs per stage (mean) | M | M ratio | wall ratio |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
        *[fmt(name) for name in plan],
        "",
        "Target: a schedule with M ≤ 0.5× baseline and mean accuracy within 0.5 pt of the baseline.",
        "",
        f"Command: `python benchmarks/table1.py --seeds {args.seeds} --width {args.width:g} --patience {p} "
        f"--max-epochs {cap} --lr {args.lr:g} --grown-lr {args.grown_lr:g}`",
    ]
    text = "\n".join(lines) + "\n"
    out = save_report(text, args.out)
    _plot(rows, base, out.with_suffix(".png"))


def _plot(rows: dict, base: list, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (name, rs) in enumerate(rows.items()):
        xs = [r.M / b.M for r, b in zip(rs, base)]
        ys = [100 * r.test_acc for r in rs]
        ax.scatter(xs, ys, label=name, color=f"C{i}", s=30)
    ax.axhline(100 * stats.mean(r.test_acc for r in base) - 0.5, color="grey", ls="--", lw=0.8, label="baseline − 0.5 pt")
    ax.axvline(0.5, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("M / M(baseline)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("digits: cumulative schedules vs VGG19 from scratch")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save_fig(fig, path, dpi=120)


if __name__ == "__main__":
    main()
