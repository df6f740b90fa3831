"""The search on digits: baseline + a 24-trial search, best schedule re-run over 3 seeds.

    python benchmarks/search.py [--trials 24] [--seeds 3] [--out runs/bench_search]

Prints and saves benchmarks/results/search.md (and copies the study's pareto.png next to it).
"""

from __future__ import annotations

import argparse
import shutil
import statistics as stats
import time
from dataclasses import replace
from pathlib import Path

from _common import save_report
from growsearch.data import create_dataset
from growsearch.schedule import Stage
from growsearch.search import run_search
from growsearch.space import load_space
from growsearch.train import run_schedule


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="digits_vgg")
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=3, help="re-runs of the best schedule and the baseline")
    ap.add_argument("--out", default="runs/bench_search")
    ap.add_argument("--results", default=str(Path(__file__).parent / "results" / "search.md"))
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    space = load_space(args.space)
    t0 = time.perf_counter()
    res = run_search(space, out_dir=out, trials=args.trials)
    search_s = time.perf_counter() - t0
    base = res.baseline
    lines = [
        "# Search on digits: cheapest schedule at iso-accuracy",
        "",
        f"Space `{args.space}` (final {space.final_arch}, tolerance {space.tolerance:g}), {args.trials} trials on a local Ray "
        f"(2 CPUs, 1 per trial), CPU. Search wall time {search_s:.0f} s.",
        "",
        f"Baseline {base['arch']}: accuracy {base['test_acc']:.4f}, M {base['M']:.3e}, {base['wall_s']:.0f} s "
        f"({base['epochs']} epochs); target accuracy {res.target_acc:.4f}.",
        "",
        f"Compute the search spent training trials: {res.spent_M / base['M']:.2f}× one baseline's M with prefix reuse, "
        f"{res.charged_M / base['M']:.2f}× without (the same trials, every stage trained). Including the baseline itself: "
        f"{1 + res.spent_M / base['M']:.2f}×.",
        "",
    ]
    if res.best_schedule is None:
        lines.append("No trial reached the target accuracy.")
    else:
        best = res.best_schedule
        lines += [
            f"Best feasible trial: M ratio {res.best['M_ratio']:.3f}, accuracy {res.best['test_acc']:.4f}.",
            "",
            "| stage | classes | arch | epochs | prune | zero mask | lr |",
            "| ---: | ---: | --- | ---: | ---: | --- | ---: |",
            *[f"| {i} | {s.classes} | {s.arch} | {s.epochs} | {s.prune_ratio:g} | {s.zero_mask} | {s.lr or space.train.lr:.3g} |" for i, s in enumerate(best.stages, 1)],
            "",
            f"Re-run over {args.seeds} seeds (seed changes class order, init and batch order; the baseline is re-trained with each seed):",
            "",
            "| seed | baseline acc | schedule acc | Δ (pt) | M ratio | wall ratio |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        ds = create_dataset(space.dataset)
        deltas, ratios, walls = [], [], []
        for seed in range(args.seeds):
            b = run_schedule(
                replace(best, stages=[Stage(ds.num_classes, space.final_arch, space.baseline_epochs, patience=space.baseline_patience)], seed=seed),
                dataset=ds, progress=False,
            )
            r = run_schedule(replace(best, seed=seed), dataset=ds, progress=False)
            deltas.append(100 * (r.test_acc - b.test_acc))
            ratios.append(r.M / b.M)
            walls.append(r.wall_s / b.wall_s)
            lines.append(f"| {seed} | {b.test_acc:.4f} | {r.test_acc:.4f} | {deltas[-1]:+.2f} | {ratios[-1]:.3f} | {walls[-1]:.2f} |")
            print(lines[-1], flush=True)
        lines += [
            f"| mean | | | {stats.mean(deltas):+.2f} | {stats.mean(ratios):.3f} | {stats.mean(walls):.2f} |",
        ]
    lines += [
        "",
        "Targets: best feasible M ≤ 0.40× at iso-accuracy; whole search ≤ 6× one baseline's M.",
        "",
        f"Command: `python benchmarks/search.py --space {args.space} --trials {args.trials} --seeds {args.seeds}`",
        "",
        "![pareto](search_pareto.png)",
    ]
    text = "\n".join(lines) + "\n"
    save_report(text, args.results)
    shutil.copy(out / "pareto.png", Path(args.results).with_name("search_pareto.png"))


if __name__ == "__main__":
    main()
