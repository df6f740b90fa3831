"""Every committed CIFAR-10 (and Tiny-ImageNet) run re-judged against the family frontier (issue 46).

The grown rows of ``cifar10.md`` were judged against the from-scratch runs of the network they
grow into (and VGG16). This script judges the same runs, read from their committed
``result.json`` files (nothing is trained), against the frontier over every network the
committed from-scratch folders hold: VGG11/13/16/19 at width 0.25, the narrower VGG11/16 at
0.125, and VGG19 with progressive resizing. Every ratio comes with its 95 % interval over the
frontier's seeds and the row's (``Frontier.ratio_interval``, paired by seed), against the family
and against the row's final architecture alone; the frontier's LR sweep is stated per
reference, and the effort table says what each arm got.

    python -m benchmarks.family                   # writes results/cifar10_family.{json,md,png}
    python -m benchmarks.family --setting gpu     # the H100 rows: results/cifar10_gpu_family.*
    python -m benchmarks.family --setting tin     # Tiny-ImageNet (CPU): results/tinyimagenet_family.*
    python -m benchmarks.family --report-only     # the same from the committed JSON alone

The JSON keeps every number the page prints (per row, per seed), so the page regenerates from
it; ``cifar10_family_reading.md`` is the hand-written Reading the page includes.
"""

from __future__ import annotations

import argparse
import statistics as stats
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from benchmarks._common import RESULTS, mean_std, page_main, ratio_cell, ratio_plot, with_reading

# per setting: its results folder, and the from-scratch folders of that setting (one split,
# seeds 0-2), each contributing its references; a later folder's reference of the same name
# replaces an earlier one (family_vgg11: VGG11@0.25 again, with its LR swept)
SETTINGS = {
    "cpu": (
        "cifar10",
        ["subnets", "vgg16", "vgg19", "vgg19_resized", "family_vgg11", "family_vgg13"],
        "CPU, 1,000 training images per class, VGG at width 0.25",
    ),
    "tin": (
        "tinyimagenet",
        ["family"],
        "CPU, Tiny-ImageNet's 200 classes at 32 px, 100 training images per class, VGG at width 0.25 and 0.125",
    ),
    "gpu": (
        "cifar10_gpu",
        ["subnets-vgg11@0.5", "subnets-vgg11@1", "subnets-vgg16@0.5", "vgg16", "vgg19", "vgg19_resized"],
        "one H100, all 50,000 images, VGG at width 1 (VGG11@0.5/1 and VGG16@0.5 from scratch at batch 512, the rest at 128)",
    ),
}
CIFAR = RESULTS / "cifar10"  # the setting's folder; main() sets it


def family_frontier(cifar: Path, folders: list[str] | None = None):
    """The merged family frontier from the committed folders of a setting, and the folders it read."""
    from growsearch.train.frontier import load_frontier, merge_frontiers

    fronts, used = {}, []
    for name in folders or SETTINGS[SETTING][1]:
        path = cifar / "frontiers" / name / "frontier.json"
        if not path.is_file():
            continue
        used.append(name)
        f = load_frontier(path)
        for ref in f.references:
            fronts[ref.name] = replace(f, references=[ref])
    return merge_frontiers(list(fronts.values())), used


def collect() -> dict:
    """Every committed CPU run, judged: the raw numbers the page prints."""
    from growsearch.train.results import RunResult

    front, used = family_frontier(CIFAR)
    rows: dict[str, list] = defaultdict(list)
    for d in sorted((CIFAR / "runs").iterdir()):
        if (d / "result.json").is_file():
            rows[d.name.rsplit("-s", 1)[0]].append(RunResult.load(d))
    out = []
    for name, runs in rows.items():
        runs.sort(key=lambda r: r.schedule["seed"])
        final = runs[0].stages[-1].arch
        pairs = [(r.M, r.val_acc) for r in runs]
        M, acc = stats.mean(r.M for r in runs), stats.mean(r.val_acc for r in runs)
        fam = front.iso(M, acc, final_arch=final, runs=pairs)
        same = front.only(final)
        same_iso = same.iso(M, acc, runs=pairs) if same is not None else None
        out.append(
            {
                "row": name,
                "stages": [f"{s.classes}:{s.arch}x{s.epochs}" for s in runs[0].stages],
                "final_arch": final,
                "seeds": [
                    {"seed": r.schedule["seed"], "M": r.M, "val_acc": r.val_acc, "test_acc": r.test_acc} for r in runs
                ],
                "family": {k: fam[k] for k in ("iso_M_ratio", "iso_M_ratio_ci", "reference", "bound", "M_scratch")},
                "same": None
                if same_iso is None
                else {k: same_iso[k] for k in ("iso_M_ratio", "iso_M_ratio_ci", "reference", "bound")},
            }
        )
    refs = [
        {
            "name": r.name,
            "arch": r.arch,
            "points": [
                {
                    "epochs": p.epochs,
                    "M": p.M,
                    "lr": p.lr,
                    "lrs": [s["lr"] for s in p.lr_sweep] or [p.lr],
                    "val": [s["val_acc"] for s in p.seeds],
                    "test": [s["test_acc"] for s in p.seeds],
                }
                for p in r.points
            ],
        }
        for r in front.references
    ]
    return {
        "setting": SETTINGS[SETTING][2],
        "folders": used,
        "dataset": front.dataset,
        "seeds": front.seeds,
        "references": refs,
        "rows": out,
    }


def report(data: dict) -> str:
    from growsearch.cli.summaries import reading

    runs_frontier = sum(len(p["lrs"]) * len(p["val"]) for r in data["references"] for p in r["points"])
    # a frontier whose seeds arrive over sessions says per budget how many it has
    seeds = _span(len(p["val"]) for r in data["references"] for p in r["points"])
    if "-" in seeds:
        seeds += " (per budget: the table's n)"
    lines = [
        f"# {DATASET[SETTING]} ({data['setting'].split(',')[0]}): every committed run against the family frontier",
        "",
        f"Generated by `python -m benchmarks.family --setting {SETTING}` from `{OUT.name}.json` (nothing hand-typed; the Reading below is prose).",
        f"Setting: {data['setting']}; one validation split, seeds {data['seeds']}; frontier folders: {', '.join(data['folders'])}.",
        "",
        "## The frontier (every network from scratch, each budget decayed to zero)",
        "",
        "| reference | epochs | M | LRs tried | LR chosen (val) | n | val acc % | test acc % |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in data["references"]:
        for p in r["points"]:
            lines.append(
                f"| {r['name']} | {p['epochs']} | {p['M']:.3g} | {', '.join(f'{v:g}' for v in p['lrs'])} | {p['lr']:g} "
                f"| {len(p['val'])} "
                f"| {mean_std([100 * v for v in p['val']], 1)} | {mean_std([100 * v for v in p['test']], 1)} |"
            )
    grown = [r for r in data["rows"] if len(r["stages"]) > 1]
    lines += [
        "",
        "## Effort",
        "",
        "| arm | configurations | runs |",
        "| --- | --- | ---: |",
        f"| from scratch | {len(data['references'])} references × their budgets × the LRs tried × {seeds} seeds | {runs_frontier} |",
        f"| growth | {len(data['rows'])} rows ({len(grown)} grown) × {_span(len(r['seeds']) for r in data['rows'])} seeds, {GROWN_FROM[SETTING]} | "
        f"{sum(len(r['seeds']) for r in data['rows'])} |",
        "",
        "## Every row, two yardsticks",
        "",
        "Ratio = mean M of the row's seeds over M_scratch at their mean validation accuracy; [95 % interval] over the frontier's "
        "seeds and the row's, paired by seed. 'at most' / 'at least': beyond the most accurate / below the cheapest budget.",
        "",
        "| row | stages | val acc % | M ratio vs family | cheapest from scratch | M ratio vs final arch | reading |",
        "| --- | --- | ---: | ---: | --- | ---: | --- |",
    ]
    for r in sorted(data["rows"], key=lambda r: r["family"]["iso_M_ratio"]):
        f = r["family"]
        words = reading(f["iso_M_ratio"], f["iso_M_ratio_ci"], f["bound"], f["reference"], r["final_arch"]).split(";")[
            0
        ]
        lines.append(
            f"| {r['row']} | {' → '.join(r['stages'])} | {mean_std([100 * s['val_acc'] for s in r['seeds']], 1)} | {ratio_cell(f)} "
            f"| {f['reference']} | {ratio_cell(r['same'])} | {words} |"
        )
    saving = [
        r["row"] for r in data["rows"] if r["family"]["iso_M_ratio_ci"][1] < 1 and r["family"]["bound"] != "lower"
    ]
    lines += [
        "",
        f"Rows whose interval against the family lies below 1: {', '.join(saving) if saving else 'none'}.",
        "",
        f"![every row against the family and against its final architecture]({OUT.name}.png)",
        "",
    ]
    return with_reading(lines, OUT)


def _span(counts) -> str:
    """How many seeds: "3", or "1-3" where they differ."""
    c = sorted(set(counts))
    return str(c[0]) if len(c) == 1 else f"{c[0]}-{c[-1]}"


def plot(data: dict, path: Path) -> None:
    rows = sorted(data["rows"], key=lambda r: r["family"]["iso_M_ratio"])
    ratio_plot(
        [(r["row"], r["family"], r["same"]) for r in rows],
        path,
        fontsize=6,
        xlabel="M ratio at iso-accuracy (< 1: cheaper than from scratch), 95 % interval",
    )


SETTING = "cpu"
OUT = RESULTS / "cifar10_family"
DATASET = {"cpu": "CIFAR-10", "gpu": "CIFAR-10", "tin": "Tiny-ImageNet"}
GROWN_FROM = {  # where each setting's grown rows came from
    "cpu": "from 11 lever variants, Table 1/2 settings and two 16-trial searches",
    "gpu": "from 11 lever variants, Table 1/2 settings and two 16-trial searches",
    "tin": "the paper's class-growth schedule alone (100 → 200 classes, VGG11 → VGG16 at width 0.25)",
}


def main() -> None:
    global SETTING, CIFAR, OUT
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="cpu")
    SETTING = ap.parse_known_args()[0].setting
    CIFAR = RESULTS / SETTINGS[SETTING][0]
    OUT = RESULTS / f"{SETTINGS[SETTING][0]}_family"
    page_main(ap, OUT, lambda args: collect(), report, plot)


if __name__ == "__main__":
    main()
