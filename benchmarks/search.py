"""The search on digits, judged against the from-scratch frontier.

A 24-trial search of the ``digits_vgg`` space: the study trains its own frontier (VGG19@0.25 at
4/8/15/30 epochs, each decayed to zero, LR 0.02 or 0.05 chosen on validation, mean of the space's
``baseline_seeds``), sets the target to its best mean validation accuracy − 0.5 pt and minimises M / M_scratch(target) subject to
validation accuracy ≥ target. The best schedule is then re-run over 3 seeds and judged on the
benchmarks' 3-seed frontier (benchmarks/frontier.py), on test as well.

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

from _common import frontier, iso_cells, iso_test_delta, mean_std, save_report, scratch_test_acc

from growsearch.data.dataset import create_dataset
from growsearch.search.driver import run_search
from growsearch.search.space import load_space
from growsearch.train.run import run_schedule


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="digits_vgg")
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=3, help="re-runs of the best schedule")
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
    sf = res.frontier
    on_target = sf.cheapest_reaching(res.target_acc)
    bench = frontier("digits_vgg19", [space.final_arch])
    total = res.spent_M + sf.spent_M
    lines = [
        "# Search on digits: the cheapest schedule at iso-accuracy, against the from-scratch frontier",
        "",
        f"Space `{args.space}` (final {space.final_arch}, tolerance {space.tolerance:g}), {args.trials} trials on a local Ray "
        f"(2 CPUs, 1 per trial), CPU; 10% of each class's training images held out for validation, every choice made on them. "
        f"Search wall time {search_s:.0f} s, its frontier included.",
        "",
        f"The study's frontier ({space.final_arch} from scratch, mean of {len(sf.seeds)} seed(s), LR chosen on validation per budget):",
        "",
        "| epochs | LR | M | val acc | test acc |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *[
            f"| {p.epochs} | {p.lr:g} | {p.M:.3e} | {p.val_acc:.4f} | {p.test_acc:.4f} |"
            for p in sf.references[0].points
        ],
        "",
        f"Target validation accuracy {res.target_acc:.4f} (best budget − {space.tolerance:g}); M_scratch(target) = {res.M_ref:.3e}; "
        f"cheapest on-target budget: {on_target.epochs} epochs (M {on_target.M:.3e}).",
        "",
        f"**Whole search cost** (trials with prefix reuse + the frontier with its LR sweep): {total:.3e} MACs = "
        f"**{total / on_target.M:.2f}×** the cheapest on-target budget, {total / sf.longest.M:.2f}× the longest budget "
        f"({sf.longest.epochs} epochs). Trials alone: {res.spent_M / on_target.M:.2f}× with prefix reuse, "
        f"{res.charged_M / on_target.M:.2f}× without.",
        "",
    ]
    if res.best_schedule is None:
        lines.append("No trial reached the target validation accuracy.")
    else:
        best = res.best_schedule
        lines += [
            f"Best feasible trial (chosen on validation): M / M_scratch(target) = {res.best['M_ratio']:.3f}, validation accuracy "
            f"{res.best['val_acc']:.4f}, test accuracy {res.best['test_acc']:.4f}.",
            "",
            "| stage | classes | arch | epochs | prune | zero mask | lr |",
            "| ---: | ---: | --- | ---: | ---: | --- | ---: |",
            *[
                f"| {i} | {s.classes} | {s.arch} | {s.epochs} | {s.prune_ratio:g} | {s.zero_mask} | {s.lr or space.train.lr:.3g} |"
                for i, s in enumerate(best.stages, 1)
            ],
            "",
            f"Re-run over {args.seeds} seeds (seed changes class order, init and batch order; same validation split), judged on the "
            "benchmarks' 3-seed frontier (`frontier.md`: 2-32 epochs, LR 0.02/0.05 chosen on validation):",
            "",
            "| seed | val acc | test acc | M | iso M ratio | from-scratch test acc at M_scratch | Δ test (pt) | old ratio vs the longest budget |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        ds = create_dataset(space.dataset)
        runs = []
        for seed in range(args.seeds):
            r = run_schedule(replace(best, seed=seed), dataset=ds, progress=False)
            runs.append(r)
            iso = bench.iso(r.M, r.val_acc)
            ref_test = scratch_test_acc(bench, iso["M_scratch"], iso["reference"])
            mark = {"upper": "≤ ", "lower": "≥ "}.get(iso["bound"], "")
            lines.append(
                f"| {seed} | {r.val_acc:.4f} | {r.test_acc:.4f} | {r.M:.3e} | {mark}{iso['iso_M_ratio']:.3f} | {ref_test:.4f} "
                f"| {100 * (r.test_acc - ref_test):+.2f} | {iso['M_ratio_longest']:.3f} |"
            )
            print(lines[-1], flush=True)
        iso, bounds = iso_cells(runs, bench)
        lines += [
            f"| mean ± std | {mean_std([r.val_acc for r in runs], 4)} | {mean_std([r.test_acc for r in runs], 4)} | "
            f"{stats.mean(r.M for r in runs):.3e} | **{iso}** ({bounds}) | | {iso_test_delta(runs, bench)} | |",
        ]
    lines += [
        "",
        "Paper (Feng & Panda): 0.47×–0.77× for hand-made schedules, against one from-scratch run. Targets here: the searched "
        "schedule's iso M ratio ≤ 0.6 against the frontier within ±0.5 pt on test (3 seeds); the whole search ≤ 6× the "
        "cheapest on-target budget.",
        "",
        f"Command: `python benchmarks/search.py --space {args.space} --trials {args.trials} --seeds {args.seeds}` (after `python benchmarks/frontier.py`)",
        "",
        "![pareto](search_pareto.png)",
    ]
    save_report("\n".join(lines) + "\n", args.results)
    shutil.copy(out / "pareto.png", Path(args.results).with_name("search_pareto.png"))


if __name__ == "__main__":
    main()
