"""CIFAR-10 (benchmarks/cifar10.py): the report's search, robustness and GPU throughput
sections. Not part of the package.
"""

from __future__ import annotations

import statistics as stats
from pathlib import Path

from _common import iso_cells, iso_test_delta, mean_std, scratch_test_acc

from growsearch.train.frontier import Frontier, budget_run_dir
from growsearch.train.results import RunResult


def search_lines(args, search: dict | None, front: Frontier) -> list[str]:
    if not search:
        return []
    lines = [
        "## 4. Search",
        "",
        f"{search['trials']} trials of a CPU-sized VGG space (2-3 stages ending in VGG19{'@' + format(args.width, 'g')}, earlier "
        "stages VGG11/13/16, 2-12 epochs per stage, grown-stage LR 0.005-0.05, prune ratio 0-0.5, zero mask, earlier stages at "
        "16/24/32 px) on a local Ray (2 CPUs, 1 per trial), against the VGG19 frontier above cut at its "
        f"{search['cap']}-epoch budget (target = that budget's mean validation accuracy − {100 * search['space']['tolerance']:g} pt "
        f"= {search['target_acc']:.4f}; the longest budget is out of reach of a short CPU search). The re-runs are judged "
        "on the whole frontier (VGG19 and VGG16; above VGG16's most accurate budget only VGG19 is measured, which favours "
        f"the schedule). Search wall time {search['wall_s']:.0f} s.",
        "",
    ]
    if search.get("on_target_M"):
        lines.append(
            f"**Whole search cost** (trials with prefix reuse; the frontier is the benchmark's, trained once): {search['spent_M']:.3e} "
            f"= **{search['spent_M'] / search['on_target_M']:.2f}×** the cheapest on-target budget ({search['on_target_epochs']} epochs); "
            f"{(search['spent_M'] + front.spent_M) / search['on_target_M']:.2f}× with the frontier."
        )
    if not search.get("best_schedule"):
        return lines + ["", "No trial reached the target validation accuracy.", ""]
    runs = [RunResult.load(args.dir / "runs" / n) for n in search["reruns"]]
    st = search["best_schedule"]["stages"]
    lines += [
        "",
        f"Best feasible trial: M / M_scratch(target) = {search['best']['M_ratio']:.3f}, val {search['best']['val_acc']:.4f}; "
        "stages "
        + ", ".join(
            f"{s['classes']} cl {s['arch']} {s['epochs']} ep (R {s['prune_ratio']:.3g}, lr {s.get('lr') or args.lr:.3g}{', ' + str(s['resolution']) + ' px' if s.get('resolution') else ''})"
            for s in st
        )
        + ".",
        "",
        "| seed | val acc | test acc | M | iso M ratio | frontier test acc at M_scratch | Δ test (pt) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for seed, r in enumerate(runs):
        iso = front.iso(r.M, r.val_acc)
        ref_test = scratch_test_acc(front, iso["M_scratch"], iso["reference"])
        mark = {"upper": "≤ ", "lower": "≥ "}.get(iso["bound"], "")
        lines.append(
            f"| {seed} | {r.val_acc:.4f} | {r.test_acc:.4f} | {r.M:.3e} | {mark}{iso['iso_M_ratio']:.3f} | {ref_test:.4f} | {100 * (r.test_acc - ref_test):+.2f} |"
        )
    iso, bounds = iso_cells(runs, front)
    lines += [
        f"| mean ± std | {mean_std([r.val_acc for r in runs], 4)} | {mean_std([r.test_acc for r in runs], 4)} | "
        f"{stats.mean(r.M for r in runs):.3e} | **{iso}** ({bounds}) | | {iso_test_delta(runs, front)} |",
        "",
        f"![search pareto]({args.name}_search_pareto.png)",
        "",
    ]
    return lines


def robust_lines(robust: dict | None, name: str) -> list[str]:
    if not robust or not robust.get("reports"):
        return []
    reps = robust["reports"]
    cols = {"baseline": "VGG19 from scratch, equal test acc", "final": "final net", "final_mi": "final + MI"}
    # the paper's CIFAR figure we have at hand is ε = 0.02 (baseline 34.7 %, final 36.8 %, final + MI 40.6 %)
    paper = {0.02: "34.7 / 36.8 / 40.6"}
    eps = reps[0]["fgsm"]["eps"]
    lines = [
        "## 5. Robustness: Table 3, Fig. 4 and Fig. 6 analogues (3→6→10 VGG11→16→19, long level)",
        "",
        f"Each seed's cumulative run against the VGG19 from-scratch run of the same seed whose test accuracy is closest "
        f"(budgets {', '.join(str(r['base_epochs']) for r in reps)} epochs; test accuracy run "
        f"{mean_std([100 * r['run_test_acc'] for r in reps])} vs from scratch {mean_std([100 * r['base_test_acc'] for r in reps])} %). "
        f'{reps[0].get("test_samples") or "All"} test images (a seeded subset). MI = growsearch\'s default vote (rule "known", '
        "weights = each stage's validation accuracy); the attack (Foolbox FGSM, L∞, ε in [0, 1] pixel units) sees only "
        "the final network. Mean ± std over seeds, %.",
        "",
        "| ε | " + " | ".join(cols.values()) + " | paper (baseline / final / final + MI) |",
        "| ---: | " + " | ".join("---:" for _ in cols) + " | --- |",
        *[
            f"| {e:g} | "
            + " | ".join(mean_std([100 * r["fgsm"][k][i] for r in reps]) for k in cols)
            + f" | {paper.get(e, '–')} |"
            for i, e in enumerate(eps)
        ],
        "",
        f"Detection (no-decision threshold δ picked on clean validation inputs; FGSM ε = {reps[0]['detection']['eps']:g}):",
        "",
        "| model | TNR at FNR ≤ 5% | TNR at FNR ≤ 10% |",
        "| --- | ---: | ---: |",
        *[
            f"| {cols[k]} | {_ms([r['detection'][k]['tnr_at_fnr_5'] for r in reps])} | {_ms([r['detection'][k]['tnr_at_fnr_10'] for r in reps])} |"
            for k in cols
        ],
        "",
        "| curve (mean accuracy over the levels) | " + " | ".join(cols.values()) + " |",
        "| --- | " + " | ".join("---:" for _ in cols) + " |",
    ]
    for sec in ("noise", "ablation"):
        lines.append(f"| {sec} | " + " | ".join(_ms([r[sec]["area"].get(k) for r in reps]) for k in cols) + " |")
    return lines + ["", f"![robustness]({name}_robustness.png)", ""]


def _ms(vals) -> str:
    got = [100 * v for v in vals if v is not None]
    if not got:
        return "n/a"
    return mean_std(got) + (f" ({len(vals) - len(got)} seed(s) never reach it)" if len(got) < len(vals) else "")


def _training_rate(r: RunResult) -> tuple[float, float]:
    """(training images/s, training FLOP/s) of one run's optimizer steps (per-epoch evaluation excluded).

    FLOPs = 6 × samples × forward MACs: forward 2 FLOPs per MAC, backward twice the forward.
    """
    secs = sum(row["train_s"] for st in r.stages for row in st.history)
    return sum(st.samples for st in r.stages) / secs, sum(6 * st.samples * st.macs_per_sample for st in r.stages) / secs


def throughput_lines(out: Path, gpu: dict | None, f19: Frontier | None, f16: Frontier | None, t1: dict) -> list[str]:
    if not gpu or f19 is None:
        return []
    groups: dict[str, list[RunResult]] = {}
    for f in (f19, f16):
        for ref in f.references if f is not None else []:
            for p in ref.points:
                d = out / "frontiers" / ref.name.split("@")[0]
                runs = [budget_run_dir(d, p.epochs, p.lr, s["seed"]) for s in p.seeds]
                groups[f"{ref.name} from scratch, {p.epochs} ep"] = [
                    RunResult.load(r if r.is_dir() else d) for r in runs
                ]
    for name, levels in t1.items():
        for level, rs in levels.items():
            groups[f"{name} ({level})"] = rs
    peak = gpu.get("bf16_peak")
    lines = [
        f"## Training throughput on the {gpu['name']}",
        "",
        "Optimizer steps only (per-epoch validation excluded), mean over seeds; FLOPs = 6 × samples × forward MACs. "
        + (
            f"Fraction of the data sheet's dense BF16 peak ({peak / 1e12:.0f} TFLOP/s)."
            if peak
            else "No BF16 peak known for this GPU."
        ),
        "",
        "| runs | images/s | TFLOP/s | fraction of BF16 peak |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, rs in groups.items():
        rates = [_training_rate(r) for r in rs]
        ips, fl = stats.mean(a for a, _ in rates), stats.mean(b for _, b in rates)
        lines.append(
            f"| {label} | {ips:,.0f} | {fl / 1e12:.1f} | {fl / peak:.3f} |"
            if peak
            else f"| {label} | {ips:,.0f} | {fl / 1e12:.1f} | – |"
        )
    return lines + [""]
