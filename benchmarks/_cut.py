"""CIFAR-10 (benchmarks/cifar10.py): a sweep of cuts on every Table 2 stage 1 network (issue 26).

Issue 26's goal is read at the cut: pruning after SSGD should cost ≤ 1 pt of validation accuracy
where L1 pruning after SGD costs more. Table 2 measures one cut per row (R = 0.5, or threshold
0.5); this sweep takes each stage 1 network those rows trained (``stage1.pt``: the network before
it is pruned and grown) and cuts it at several ratios (torch-pruning's lowest-L1 filters, as
``prune_ratio``) and thresholds (as ``prune_threshold``), reading stage 1's validation accuracy
right after each cut and the share of stage 1's MACs it keeps. No training: one seed's network
per row and seed. The figures are kept in ``cut_sweep.json`` beside the runs (checkpoints are
not committed), keyed by the run and its recorded stage 1, so a later call recomputes only what
is new or retrained. Not part of the package.
"""

from __future__ import annotations

import json
import statistics as stats
from pathlib import Path

import torch
from _common import mean_std, pyplot, save_fig

from growsearch.data.split import stage_data
from growsearch.model.cost import macs_per_sample
from growsearch.model.prune import prune, prune_below
from growsearch.plan.schedule import TrainConfig
from growsearch.train.loop import eval_loader, evaluate
from growsearch.train.results import RunResult, load_checkpoint

RATIOS = (0.05, 0.1, 0.2, 0.3, 0.5)  # prune_ratio: every conv loses this share of its filters
THRESHOLDS = (0.25, 0.4, 0.5, 0.6, 0.75)  # prune_threshold: filters scoring below this share of their layer's mean go
GOAL_PT = 1.0  # issue 26: a cut after SSGD costs at most this much validation accuracy


def _cuts() -> list[tuple[str, float]]:
    return [("ratio", r) for r in RATIOS] + [("threshold", t) for t in THRESHOLDS]


def _fingerprint(r: RunResult) -> dict:
    """What identifies the stage 1 network a run trained: its recipe, seed and recorded accuracy."""
    return {
        "stage1": r.schedule["stages"][0],
        "train": r.schedule["train"],
        "seed": r.schedule.get("seed", 0),
        "val_acc": r.stages[0].val_acc,
    }


def _sweep_one(run_dir: Path, ds, cfg: TrainConfig) -> dict:
    """Stage 1's validation accuracy before and after each cut of the run's ``stage1.pt``, and the
    share of its MACs each cut keeps (torch-pruning traces with autograd on: no ``no_grad`` here)."""
    model, ck = load_checkpoint(run_dir / "stage1.pt")
    res = int(ck["resolution"])
    shape = (model.arch_spec.in_chans, res, res)
    data = stage_data(ds, [int(c) for c in ck["classes"]])
    val = eval_loader(data, cfg, torch.device("cpu"), res, split="val")
    dense_macs = macs_per_sample(model, shape)
    out = {"dense_val": evaluate(model, val), "cuts": []}
    for kind, v in _cuts():
        cut = prune(model, v, input_shape=shape) if kind == "ratio" else prune_below(model, v, input_shape=shape)
        out["cuts"].append(
            {
                "kind": kind,
                "value": v,
                "val_acc": evaluate(cut, val),
                "macs_kept": macs_per_sample(cut, shape) / dense_macs,
            }
        )
    return out


def sweep(rows: dict[str, list[list[Path]]], ds, cfg: TrainConfig, cache: Path) -> dict[str, list[dict]]:
    """label → one sweep per seed: ``rows[label]`` holds, per seed, the run folders that trained
    the same stage 1 (an R = 0.5 row and its threshold row); the first with a checkpoint or a kept
    sweep of that stage 1 is read."""
    kept = json.loads(cache.read_text()) if cache.is_file() else {}
    want = [[k, v] for k, v in _cuts()]
    got: dict[str, list[dict]] = {}
    for label, seeds in rows.items():
        for dirs in seeds:
            for d in (d for d in dirs if (d / "result.json").is_file()):
                fp = _fingerprint(RunResult.load(d))
                entry = kept.get(d.name)
                if (
                    entry is None
                    or entry["fingerprint"] != fp
                    or [[c["kind"], c["value"]] for c in entry["cuts"]] != want
                ):
                    if not (d / "stage1.pt").is_file():
                        continue
                    entry = kept[d.name] = {"fingerprint": fp, **_sweep_one(d, ds, cfg)}
                    print(f"cut sweep {d.name}: dense val {entry['dense_val']:.4f}", flush=True)
                got.setdefault(label, []).append({"run": d.name, **entry})
                break
    cache.write_text(json.dumps(kept, indent=1, sort_keys=True))
    return got


def _drops(entries: list[dict], j: int) -> list[float]:
    return [100 * (e["dense_val"] - e["cuts"][j]["val_acc"]) for e in entries]


def report_lines(got: dict[str, list[dict]], plot: Path) -> list[str]:
    """The sweep as a table (drop in validation accuracy per cut, MACs kept), and ``plot``."""
    if not got:
        return []
    cuts = _cuts()
    head = [f"R = {v:g}" if k == "ratio" else f"T = {v:g}" for k, v in cuts]
    lines = [
        "### A sweep of cuts on each stage 1 network",
        "",
        "Each row's stage 1 networks (one per seed; before they are pruned and grown) cut at ratios R (lowest-L1 filters of every conv, "
        "`prune_ratio`) and thresholds T (`prune_threshold`), with nothing trained: **drop in stage 1's validation accuracy (pt)** right "
        "after the cut (mean ± std over seeds; stage 1's 500 validation images, 0.2 pt each) and, below it, the share of stage 1's MACs "
        f"the cut keeps. Goal (issue 26): after SSGD ≤ {GOAL_PT:g} pt at a cut where SGD's network loses more.",
        "",
        "| stage 1 | seeds | val acc % | " + " | ".join(head) + " |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in cuts) + " |",
    ]
    for label, es in got.items():
        drops = [mean_std(_drops(es, j), 1) for j in range(len(cuts))]
        kept = [f"{100 * stats.mean(e['cuts'][j]['macs_kept'] for e in es):.0f} % MACs" for j in range(len(cuts))]
        lines.append(
            f"| {label} | {len(es)} | {mean_std([100 * e['dense_val'] for e in es])} | " + " | ".join(drops) + " |"
        )
        lines.append("| | | | " + " | ".join(kept) + " |")
    lines += ["", f"![cut sweep]({plot.name})", ""]
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, kind in zip(axes, ("ratio", "threshold")):
        js = [j for j, (k, _) in enumerate(cuts) if k == kind]
        for label, es in got.items():
            xs = [100 * (1 - stats.mean(e["cuts"][j]["macs_kept"] for e in es)) for j in js]
            ax.plot(xs, [stats.mean(_drops(es, j)) for j in js], marker="o", ms=3, label=label)
        ax.axhline(GOAL_PT, color="grey", lw=0.8, ls="--")
        ax.set_xlabel(f"share of stage 1's MACs removed (%), cut by {'ratio R' if kind == 'ratio' else 'threshold T'}")
        ax.set_title(f"cut by {kind}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("drop in stage 1 validation accuracy (pt, mean of seeds)")
    axes[1].legend(fontsize=6)
    save_fig(fig, plot)
    return lines
