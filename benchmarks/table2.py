"""The shape of the paper's Table 2 on digits: pruning before growth and the zero mask, against
both from-scratch references a reviewer asks for.

5→10 classes, VGG11→VGG19 at width 0.25, every stage to saturation (plateau rule on validation
accuracy): without pruning, with 50% of VGG11's filters pruned (L1) before growth, and with that
plus the zero mask. References: (a) VGG19@0.25 from scratch (benchmarks/frontier.py) and (b) the
same pruned final network trained from scratch (``--spec-from`` a pruned run), each at 2-32
epochs, each budget decayed to zero, LR chosen on validation, 3 seeds.

    python benchmarks/table2.py [--seeds 3] [--width 0.25] [--ratio 0.5]

Prints and saves benchmarks/results/table2.md.
"""

from __future__ import annotations

import argparse
import statistics as stats
import time
from pathlib import Path

from _common import (
    RESULTS,
    frontier,
    frontier_table,
    iso_cells,
    iso_test_delta,
    mean_std,
    saturating_schedule,
    save_report,
)

from growsearch.data.dataset import create_dataset
from growsearch.train.frontier import budget_run_dir
from growsearch.train.results import RunResult
from growsearch.train.run import run_schedule

PAPER = "CIFAR-100 VGG19: 0.36× M with pruning + zero mask at iso-accuracy; fewer parameters and non-zero MACs"


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
    t_all = time.perf_counter()
    ds = create_dataset("digits")
    opts = dict(width=args.width, patience=args.patience, cap=args.max_epochs, lr=args.lr, grown_lr=args.grown_lr)
    R = args.ratio
    plan = {
        "5→10, R = 0": [(5, "vgg11"), (10, "vgg19")],
        f"5→10, R = {R:g} for VGG11": [(5, "vgg11"), (10, "vgg19", {"prune_ratio": R})],
        f"5→10, R = {R:g} + zero mask": [(5, "vgg11"), (10, "vgg19", {"prune_ratio": R, "zero_mask": True})],
    }
    full = frontier("digits_vgg19", [f"vgg19@{args.width:g}"])
    # reference (b): the pruned schedule's exact final network (its widths do not depend on the seed)
    pruned_dir = RESULTS / "runs" / f"table2_pruned_R{R:g}_s0"
    if not (pruned_dir / "result.json").is_file():
        run_schedule(
            saturating_schedule(plan[f"5→10, R = {R:g} for VGG11"], seed=0, **opts),
            dataset=ds,
            out_dir=pruned_dir,
            overwrite=True,
            progress=False,
        )
    pruned = frontier(f"digits_vgg19_pruned_R{R:g}", [], specs_from=[pruned_dir])
    ref_net = RunResult.load(
        budget_run_dir(RESULTS / "frontiers" / "digits_vgg19", 2, 0.02, 0)
    )  # any VGG19@0.25 run: params, MACs

    rows: dict[str, list] = {}
    for seed in range(args.seeds):
        for name, stages in plan.items():
            r = run_schedule(saturating_schedule(stages, seed=seed, **opts), dataset=ds, progress=False)
            rows.setdefault(name, []).append(r)
            print(
                f"seed {seed} {name:<28} val {r.val_acc:.4f} test {r.test_acc:.4f} epochs {[s.epochs for s in r.stages]} "
                f"params {r.params} M {r.M:.3e} nz macs {r.nonzero_macs_per_sample}",
                flush=True,
            )

    lines = [
        "# Table 2 analogue on digits: pruning before growth and the zero mask, against both references",
        "",
        f"VGG at width {args.width:g} on scikit-learn digits (1295 train / 142 validation / 360 test), CPU, {args.seeds} seeds; "
        f"every stage trained to saturation (plateau rule on validation accuracy, patience {args.patience}, cap {args.max_epochs}); "
        f"peak LR {args.lr:g} for VGG11, {args.grown_lr:g} for grown stages. R prunes that fraction of every VGG11 conv's "
        "filters (lowest L1 norm, torch-pruning) before growth. 'non-zero' counts skip zero weights (a zero-skipping "
        "accelerator). iso M ratio = M / M_scratch(validation accuracy) per seed, mean ± std, against (a) VGG19@0.25 from "
        "scratch and (b) the pruned final network from scratch (both frontiers below). Ratios of params and inference MACs "
        f"are against VGG19@0.25 ({ref_net.params} params, {ref_net.macs_per_sample} MACs). Total benchmark time "
        f"{time.perf_counter() - t_all:.0f} s (frontier runs reused where already on disk).",
        "",
        "| schedule | params ratio | val acc % | test acc % | M (dense) | iso M ratio vs (a) VGG19 | Δ test vs (a) (pt) | iso M ratio vs (b) same net | Δ test vs (b) (pt) | M non-zero / M | inference MACs ratio | inference non-zero MACs ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, rs in rows.items():
        a, a_b = iso_cells(rs, full)
        b, b_b = iso_cells(rs, pruned)
        lines.append(
            f"| {name} | {rs[0].params / ref_net.params:.3f} | {mean_std([100 * r.val_acc for r in rs])} | {mean_std([100 * r.test_acc for r in rs])} "
            f"| {stats.mean(r.M for r in rs):.3e} | **{a}** ({a_b}) | {iso_test_delta(rs, full)} | **{b}** ({b_b}) | {iso_test_delta(rs, pruned)} "
            f"| {stats.mean(r.M_nonzero / r.M for r in rs):.3f} | {rs[0].macs_per_sample / ref_net.macs_per_sample:.3f} "
            f"| {stats.mean(r.nonzero_macs_per_sample for r in rs) / ref_net.macs_per_sample:.3f} |"
        )
    lines += [
        "",
        f"Paper (Feng & Panda, Table 2): {PAPER}. Targets here: within 0.5 pt on test, params ≤ 0.5×, inference non-zero "
        "MACs ≤ 0.4×, iso M ratio ≤ 0.45× against both references.",
        "",
        "## Reference (b): the pruned final network from scratch",
        "",
        *frontier_table(pruned),
        "",
        f"Command: `python benchmarks/table2.py --seeds {args.seeds} --width {args.width:g} --ratio {R:g} "
        f"--patience {args.patience} --max-epochs {args.max_epochs} --lr {args.lr:g} --grown-lr {args.grown_lr:g}`",
    ]
    save_report("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
