"""The shape of the paper's Table 2 on digits: pruning before growth, and the zero mask.

5→10 classes, VGG11→VGG19 at width 0.25, against VGG19 from scratch: without pruning, with
50% of VGG11's filters pruned (L1) before it is grown, and with that plus the zero mask on
the identity kernels Net2Net inserts. Same saturation recipe as table1.py.

    python benchmarks/table2.py [--seeds 3] [--width 0.25] [--ratio 0.5]

Prints and saves benchmarks/results/table2.md.
"""

from __future__ import annotations

import argparse
import statistics as stats
import time
from pathlib import Path

from _common import mean_std, saturating_schedule, save_report
from growsearch.data import create_dataset
from growsearch.train import run_schedule


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--max-epochs", type=int, default=80)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--grown-lr", type=float, default=0.02)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "table2.md"))
    args = ap.parse_args()
    ds = create_dataset("digits")
    opts = dict(width=args.width, patience=args.patience, cap=args.max_epochs, lr=args.lr, grown_lr=args.grown_lr)
    R = args.ratio
    plan = {
        "baseline VGG19": [(10, "vgg19")],
        "5→10, R = 0": [(5, "vgg11"), (10, "vgg19")],
        f"5→10, R = {R:g} for VGG11": [(5, "vgg11"), (10, "vgg19", {"prune_ratio": R})],
        f"5→10, R = {R:g} + zero mask": [(5, "vgg11"), (10, "vgg19", {"prune_ratio": R, "zero_mask": True})],
    }
    rows: dict[str, list] = {}
    t_all = time.perf_counter()
    for seed in range(args.seeds):
        for name, stages in plan.items():
            r = run_schedule(saturating_schedule(stages, seed=seed, **opts), dataset=ds, progress=False)
            rows.setdefault(name, []).append(r)
            print(f"seed {seed} {name:<28} acc {r.test_acc:.4f} epochs {[s.epochs for s in r.stages]} params {r.params} "
                  f"M {r.M:.3e} M_nz {r.M_nonzero:.3e} macs {r.macs_per_sample} nz {r.nonzero_macs_per_sample}", flush=True)
    base = rows["baseline VGG19"]
    base_acc = 100 * stats.mean(r.test_acc for r in base)

    def ratio(rs, attr) -> str:
        return f"{stats.mean(getattr(r, attr) / getattr(b, attr) for r, b in zip(rs, base)):.3f}"

    lines = [
        "# Table 2 analogue: pruning before growth and the zero mask, on digits",
        "",
        f"VGG at width {args.width:g} on scikit-learn digits, CPU, {args.seeds} seeds; every stage trained to saturation "
        f"(patience {args.patience}, cap {args.max_epochs}); peak LR {args.lr:g} for VGG11 and the baseline, {args.grown_lr:g} "
        f"for grown stages. R prunes that fraction of every VGG11 conv's filters (lowest L1 norm, torch-pruning) before "
        "growth. 'non-zero' counts skip zero weights (a zero-skipping accelerator). Ratios are per seed against that "
        f"seed's baseline, then averaged. Total benchmark time {time.perf_counter() - t_all:.0f} s.",
        "",
        "| schedule | params | params ratio | accuracy % | Δ (pt) | M (dense) | M ratio | M non-zero ratio | inference MACs ratio | inference non-zero MACs ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, rs in rows.items():
        accs = [100 * r.test_acc for r in rs]
        lines.append(
            f"| {name} | {rs[0].params} | {ratio(rs, 'params')} | {mean_std(accs)} | {stats.mean(accs) - base_acc:+.2f} "
            f"| {stats.mean(r.M for r in rs):.3e} | {ratio(rs, 'M')} | "
            f"{stats.mean(r.M_nonzero / b.M for r, b in zip(rs, base)):.3f} | {ratio(rs, 'macs_per_sample')} | "
            f"{stats.mean(r.nonzero_macs_per_sample / b.macs_per_sample for r, b in zip(rs, base)):.3f} |"
        )
    lines += [
        "",
        "Non-zero ratios are against the baseline's dense count (the baseline has no zero weights).",
        "Target: a row within 0.5 pt of baseline accuracy with params ≤ 0.5×, inference non-zero MACs ≤ 0.4× and M ≤ 0.45×.",
        "",
        f"Command: `python benchmarks/table2.py --seeds {args.seeds} --width {args.width:g} --ratio {R:g} "
        f"--patience {args.patience} --max-epochs {args.max_epochs} --lr {args.lr:g} --grown-lr {args.grown_lr:g}`",
    ]
    text = "\n".join(lines) + "\n"
    save_report(text, args.out)


if __name__ == "__main__":
    main()
