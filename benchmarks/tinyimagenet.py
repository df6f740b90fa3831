"""A first CPU look at the paper's own dataset, Tiny-ImageNet: do small networks saturate below
large ones here, where on CIFAR-10 they did not (issue 46)?

Growth can only win against a family frontier at a target the small networks cannot reach at
any budget. On the CPU CIFAR-10 setting VGG11@0.25 kept pace with VGG13-19 up to 24 epochs, so
no such target existed. Tiny-ImageNet has 200 classes: a narrow network's capacity is far more
likely to cap its accuracy. This script trains a few VGGs from scratch at growing budgets
(``growsearch baseline``'s own ``run_frontier``: each budget decayed to zero, the recipe's LR,
one seed: a look, not a measurement) and reports where each one's accuracy flattens.

The data never ships: ``--data tinyimagenet:PATH?size=32&train_per_class=100`` where PATH is the
official tiny-imagenet-200 layout with its 200 classes (the copy the brief names carries two
extra classes: point PATH at a tree without them), given relative to the repository root as the
committed runs name it, ``../tin/tin200`` (a sibling of the checkout, as ``../shared`` is: a
clone resumes and re-judges the runs by that name). Raw runs land in
``results/tinyimagenet/frontier/`` (``--resume`` extends them); the page and plot are
``results/tinyimagenet_look.{md,png}`` from ``tinyimagenet_look.json``.

    python -m benchmarks.tinyimagenet --data 'tinyimagenet:../tin/tin200?size=32&train_per_class=100'
    python -m benchmarks.tinyimagenet --report-only

The family frontier with seeds 0-2 (``results/tinyimagenet/frontiers/family/runs``, the same run
names, trained by ``run_frontier`` over several sessions) is assembled from whatever runs have
finished, and judged with the grown runs by ``benchmarks.family --setting tin``:

    python -m benchmarks.tinyimagenet --assemble
    python -m benchmarks.family --setting tin

More seeds: ``growsearch.run_frontier(DATA, ["vgg11@0.125", "vgg11@0.25", "vgg16@0.25"], [32, 64],
seeds=[0, 1, 2], out_dir="benchmarks/results/tinyimagenet/frontiers/family", resume=True)`` trains
the missing runs (in this order of networks: a run folder's ``ref{i}`` is the i-th), then
``--assemble`` again (``run_frontier`` writes its own frontier.json of the budgets it was given).

The grown rows (``results/tinyimagenet/runs/classes-s{0,1,2}``) are ``growsearch run`` of the
schedule each ``result.json`` records (the paper's class growth, 100 → 200 classes, VGG11@0.25
for 36 epochs then VGG16@0.25 for 28), one per seed.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from benchmarks._common import RESULTS, page_main, pyplot, save_fig, with_reading

ARCHS = ["vgg11@0.125", "vgg11@0.25", "vgg16@0.25"]
BUDGETS = [4, 8, 16]
FOLDER = RESULTS / "tinyimagenet" / "frontier"
OUT = RESULTS / "tinyimagenet_look"


def measure(data: str, archs: list[str], budgets: list[int], seeds: list[int]) -> dict:
    from growsearch.train.baseline import run_frontier

    front = run_frontier(data, archs, budgets, seeds=seeds, out_dir=FOLDER, resume=FOLDER.exists())
    return {
        "dataset": front.dataset.split(":", 1)[0] + ":PATH?" + front.dataset.split("?", 1)[-1],
        "num_classes": front.num_classes,
        "seeds": seeds,
        "lr": front.train["lr"],
        "wall_s": front.wall_s,
        "references": [
            {
                "arch": r.arch,
                "points": [
                    {
                        "epochs": p.epochs,
                        "M": p.M,
                        "val": [s["val_acc"] for s in p.seeds],
                        "test": [s["test_acc"] for s in p.seeds],
                    }
                    for p in r.points
                ],
            }
            for r in front.references
        ],
    }


FAMILY = RESULTS / "tinyimagenet" / "frontiers" / "family"  # benchmarks.family --setting tin reads it


def assemble(folder: Path = FAMILY, look: Path = FOLDER) -> Path:
    """``folder/frontier.json`` from the from-scratch runs under ``folder/runs`` as they stand:
    per (network, budget) every seed that has finished, however many (``run_frontier`` writes a
    frontier only once every seed of every budget has trained; these runs take hours each on
    two cores, so the seeds arrive over several sessions and the frontier says how many each
    point has). The metadata (split, recipe) is the look's, whose runs these extend. The
    arithmetic on it (envelope, intervals) is the product's, in ``benchmarks.family``."""
    from collections import defaultdict

    from growsearch.train.frontier import FrontierPoint, Reference, load_frontier
    from growsearch.train.results import RunResult

    base = load_frontier(look / "frontier.json")
    arch_of = [r.arch for r in base.references]  # a run folder's ref{i} is the look's reference i
    runs: dict[tuple[int, int], list[RunResult]] = defaultdict(list)
    for d in sorted((folder / "runs").glob("ref*-e*-lr*-s*")):
        if (d / "result.json").is_file():
            ref, epochs = d.name.split("-")[:2]
            runs[int(ref[3:]), int(epochs[1:])].append(RunResult.load(d))
    refs = []
    for i, arch in enumerate(arch_of):
        points = []
        for epochs in sorted(e for j, e in runs if j == i):
            rs = sorted(runs[i, epochs], key=lambda r: r.schedule["seed"])
            points.append(FrontierPoint.of_runs(epochs, rs, base.train["lr"]))
        refs.append(Reference(arch, arch, None, points))
    every = [r for rs in runs.values() for r in rs]
    front = replace(
        base,
        references=refs,
        spent_M=sum(r.M for r in every),
        wall_s=sum(r.wall_s for r in every),
        seeds=sorted({r.schedule["seed"] for r in every}),
    )
    front.save(folder)
    return folder / "frontier.json"


def _mean(v: list[float]) -> float:
    return sum(v) / len(v)


def report(data: dict) -> str:
    best = max(_mean(p["val"]) for r in data["references"] for p in r["points"])
    lines = [
        "# Tiny-ImageNet (CPU): do small networks saturate below large ones?",
        "",
        "Generated by `python -m benchmarks.tinyimagenet` from `tinyimagenet_look.json` (nothing hand-typed; the Reading below is prose).",
        f"Data: `{data['dataset']}` ({data['num_classes']} classes; validation split carved from the training images, "
        f"Tiny-ImageNet's val set as the test set). From scratch, each budget decayed to zero, LR {data['lr']:g} (not swept), "
        f"seeds {data['seeds']}: a look, not a measurement. {data['wall_s'] / 60:.0f} min of training on 2 cores.",
        "",
        "| network | epochs | M | val acc % | test acc % | gain over the half budget (pt) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in data["references"]:
        prev = None
        for p in r["points"]:
            v = 100 * _mean(p["val"])
            gain = "—" if prev is None else f"{v - prev:+.1f}"
            lines.append(
                f"| {r['arch']} | {p['epochs']} | {p['M']:.3g} | {v:.1f} | {100 * _mean(p['test']):.1f} | {gain} |"
            )
            prev = v
    lines += [
        "",
        f"Best validation accuracy of any network: {100 * best:.1f} %.",
        "",
        f"![validation accuracy against training cost M]({OUT.name}.png)",
        "",
    ]
    return with_reading(lines, OUT)


def plot(data: dict, path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for r in data["references"]:
        ax.plot(
            [p["M"] for p in r["points"]], [100 * _mean(p["val"]) for p in r["points"]], "o-", ms=4, label=r["arch"]
        )
    ax.set_xscale("log")
    ax.set_xlabel("training cost M (forward MACs, log scale)")
    ax.set_ylabel("validation accuracy %")
    ax.set_title("Tiny-ImageNet from scratch, each budget decayed to zero")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save_fig(fig, path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="tinyimagenet:PATH?size=32&train_per_class=100 (PATH: the 200-class layout)")
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    ap.add_argument("--seeds", default="0")
    ap.add_argument(
        "--assemble",
        action="store_true",
        help="write results/tinyimagenet/frontiers/family/frontier.json from the runs finished there, train nothing",
    )
    if ap.parse_known_args()[0].assemble:
        print(f"wrote {assemble()}")
        return

    def train(args) -> dict:
        if not args.data:
            ap.error("--data tinyimagenet:PATH?size=32&train_per_class=100 is needed to train")
        return measure(
            args.data,
            args.archs.split(","),
            [int(b) for b in args.budgets.split(",")],
            [int(s) for s in args.seeds.split(",")],
        )

    page_main(ap, OUT, train, report, plot)


if __name__ == "__main__":
    main()
