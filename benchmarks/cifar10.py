"""The paper's CIFAR-10 rows measured against the from-scratch frontier, sized for a 2-core CPU.

Data: the shared archive of all 60,000 CIFAR-10 JPEGs (``../shared/data/cifar10-jpeg.tar.gz``,
never committed), ``train_per_class`` images per class for training (10% of them held out for
validation, every choice read there), all 10,000 test images for the report. Narrow VGGs
(``--width``) from timm's family as growsearch builds them. Every stage and every frontier budget
has a fixed number of epochs with its LR warmed up and decayed to zero at its end.

Phases (each run keeps its ``result.json`` under ``benchmarks/results/cifar10/``; a later call
loads what is there and trains only what is missing, so the benchmark can be extended across
sessions):

1. ``frontier``: VGG19 from scratch at ``--budgets`` (3 seeds); ``frontier16`` adds VGG16.
2. ``table1``: 5→10 VGG11→16, 5→10 VGG11→19 and 3→6→10 VGG11→16→19 at fixed stage budgets,
   3 seeds; 5→10 VGG11→19 at two levels (4+3 and 8+6 epochs, as in the issue's first reading),
   the row's reported level being the one with the lower mean iso ratio (read on validation).
3. ``table2``: 5→10 VGG11→19 with R = 0.5 of VGG11's filters pruned before growth, with and
   without the zero mask; reference (b) = the pruned final network from scratch.
4. ``search``: a growsearch search on the benchmark's frontier, its best schedule re-run on 3
   seeds, and the search's cost in units of the cheapest on-target budget.
5. ``robustness``: noise, ablation, FGSM at the paper's ε and detection for the 3→6→10 runs,
   each against the from-scratch VGG19 run (same seed) of the closest test accuracy.
6. ``resized`` and ``levers`` (not in the default phases): the progressive-resizing VGG19
   reference at ``--resized-budgets`` (``resized``), and the 5→10 VGG11→16 long row with each
   lever of growth inside one run switched on alone, then together, at ``--lever-seeds``
   (default all), seed by seed (``levers``), against the whole frontier plus that reference
   (``benchmarks/_levers.py``). Separate phases so that on a GPU several processes can train
   them side by side (each lever seed in its own process).
7. ``search_levers`` (not default): ``--lever-trials`` trials over ``search_spaces/cifar10_vgg.yaml``,
   its best re-run on 3 seeds.
8. ``ssgd`` (not default): Table 2's R = 0.5 row with stage 1 trained by SSGD
   (``optimizer: ssgd``, filters), the ``prune_threshold`` rows after SGD and SSGD, and the same
   with stage 1 at 10× the weight decay (``stages[].weight_decay``) and, at R = 0.5, for 32
   epochs: reported in Table 2 with the accuracy at the cut, and a sweep of cuts on every
   stage 1 network (``benchmarks/_cut.py``).

    python benchmarks/cifar10.py [--phases frontier table1 table2 search robustness] [--per-class 1000] [--width 0.25]

Prints and saves benchmarks/results/NAME.md (and NAME.png, NAME_robustness.png) from whatever
runs exist. On a GPU, the full-width rows (all images, width 1, the GPU named and its training
throughput reported) go under another name, e.g.

    python benchmarks/cifar10.py --name cifar10_gpu --per-class 0 --width 1 --budgets 4 8 16 --vgg16-budgets 4 8 --levels short long longer
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import _cifar10_report as pages
import _cifar10_rows as rows
import _cut
import _levers
from _common import (
    CIFAR_ARCHIVE,
    RESULTS,
    save_report,
)

from growsearch.data.dataset import create_dataset
from growsearch.plan.schedule import Schedule, Stage, TrainConfig, load_split
from growsearch.train.baseline import run_frontier
from growsearch.train.frontier import Frontier, load_frontier
from growsearch.train.results import RunResult
from growsearch.train.run import run_schedule

OUT = RESULTS / "cifar10"
# report: train nothing, write the report; resized / levers / search_levers: section 6 (benchmarks/_levers.py)
PHASES = (
    "frontier",
    "table1",
    "table2",
    "search",
    "robustness",
    "frontier16",
    "report",
    "resized",
    "levers",
    "search_levers",
    "ssgd",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=CIFAR_ARCHIVE, help="an ImageFolder folder or archive of CIFAR-10")
    ap.add_argument(
        "--per-class", type=int, default=1000, help="training images per class (stratified, seeded); 0: all 5,000"
    )
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument(
        "--name",
        default="cifar10",
        help="results folder and report name under benchmarks/results/ (cifar10_gpu for the full-width GPU rows)",
    )
    ap.add_argument(
        "--device", default=None, help="cpu or cuda; default CUDA when available (bf16 autocast, channels_last)"
    )
    ap.add_argument(
        "--levels",
        nargs="+",
        default=["short", "long"],
        help="Table 1 budget levels to train and report ('longer': 2× the long level, VGG11→16 only)",
    )
    ap.add_argument(
        "--epoch-scale", type=int, default=1, help="multiplies every Table 1 stage budget (2 on a GPU with all images)"
    )
    ap.add_argument("--budgets", type=int, nargs="+", default=[3, 6, 12, 24])
    ap.add_argument(
        "--pruned-budgets",
        type=int,
        nargs="+",
        default=[3, 6, 12, 24],
        help="budgets of reference (b), the pruned final network from scratch",
    )
    ap.add_argument(
        "--vgg16-budgets",
        type=int,
        nargs="+",
        default=[6, 12, 24],
        help="budgets of the VGG16 frontier (the VGG11→16 row's own final network from scratch)",
    )
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.05, help="peak LR of every stage and every frontier budget")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument(
        "--tolerance", type=float, default=0.005, help="the search's iso-accuracy band below its target budget"
    )
    ap.add_argument(
        "--search-cap",
        type=int,
        default=12,
        help="the search targets the frontier restricted to budgets ≤ this (a short CPU search cannot reach the longest budget's accuracy); its best is judged on the whole frontier",
    )
    ap.add_argument("--robust-samples", type=int, default=2000, help="test images of the robustness sweeps")
    ap.add_argument(
        "--resized-budgets",
        type=int,
        nargs="+",
        default=[3, 6, 12],
        help="budgets of the frontier's progressive-resizing VGG19 reference (levers)",
    )
    ap.add_argument(
        "--lever-seeds",
        type=int,
        nargs="+",
        default=None,
        help="seeds of the lever rows the levers phase trains (default: 0..--seeds-1)",
    )
    ap.add_argument("--lever-trials", type=int, default=16, help="trials of the lever search (search_levers)")
    ap.add_argument("--phases", nargs="+", default=list(PHASES[:5]), choices=PHASES)
    ap.add_argument("--out", default=None, help="the report (default benchmarks/results/NAME.md)")
    args = ap.parse_args()
    args.dir = OUT = RESULTS / args.name
    args.out = args.out or str(RESULTS / f"{args.name}.md")

    data = f"imagefolder:{args.data}" + (f"?train_per_class={args.per_class}" if args.per_class else "")
    ds = create_dataset(data)
    _record_device(args.device, OUT)
    cfg = TrainConfig(lr=args.lr)
    w = f"@{args.width:g}"
    seeds = list(range(args.seeds))

    def front_of(name: str, archs: list[str], specs_from=(), run: bool = True, budgets=None) -> Frontier | None:
        d = OUT / "frontiers" / name
        if not run:  # loaded as it is on disk: no lock on its folder, so phases can run side by side
            return load_frontier(d / "frontier.json") if (d / "frontier.json").is_file() else None
        return run_frontier(
            data,
            archs,
            budgets or args.budgets,
            specs_from=specs_from,
            seeds=seeds,
            train=cfg,
            dataset=ds,
            out_dir=d,
            resume=True,
            progress=False,
        )

    def sched(stages, epochs, seed, **extra) -> Schedule:
        out = [
            Stage(k, a + w, e, **(extra if i == len(stages) - 1 else {}))
            for i, ((k, a), e) in enumerate(zip(stages, epochs))
        ]
        return Schedule(data, out, seed=seed, train=cfg)

    def run(name: str, schedule: Schedule, train: bool = True) -> RunResult | None:
        d = OUT / "runs" / name
        if (d / "result.json").is_file():
            r = RunResult.load(d)
            if r.schedule == schedule.to_dict():
                return r
        if not train:
            return None
        r = run_schedule(schedule, dataset=ds, out_dir=d, overwrite=True, device=args.device, progress=False)
        print(f"{name}: val {r.val_acc:.4f} test {r.test_acc:.4f} M {r.M:.3g} ({r.wall_s:.0f} s)", flush=True)
        return r

    ph = set(args.phases)
    f19 = front_of("vgg19", ["vgg19" + w], run=bool(ph & {"frontier", "table1", "table2", "search", "robustness"}))
    f16 = front_of("vgg16", ["vgg16" + w], run="frontier16" in ph, budgets=args.vgg16_budgets)
    t1: dict[str, dict[str, list[RunResult]]] = {}
    for name, stages, levels in rows.TABLE1:
        for level, epochs in levels.items():
            if level not in args.levels:
                continue
            epochs = tuple(args.epoch_scale * e for e in epochs)
            rs = [
                run(f"t1-{rows.slug(name)}-{level}-s{s}", sched(stages, epochs, s), train="table1" in ph) for s in seeds
            ]
            if all(rs):
                t1.setdefault(name, {})[level] = rs
    t2, fprs, stage1 = rows.table2(args, sched, run, front_of, seeds, ph)
    search = rows.search(args, data, f19, run) if "search" in ph else rows.load_json(OUT / "search.json")
    robust = rows.robustness(args, t1, f19, ds) if "robustness" in ph else rows.load_json(OUT / "robustness.json")

    resized = _levers.resized_frontier(
        args, data, ds, OUT, cfg, args.resized_budgets, train=bool(ph & {"resized", "search_levers"})
    )
    if "levers" in ph:
        _levers.train_ablation(args, data, cfg, run, args.lever_seeds if args.lever_seeds is not None else seeds)
    levers = _levers.ablation(args, data, cfg, run)
    whole = pages.merged(f19, f16) if f19 is not None else None
    if whole is not None and resized is not None:
        whole = replace(
            whole, references=whole.references + resized.references, spent_M=whole.spent_M + resized.spent_M
        )
    lever_search = None
    if "search_levers" in ph and whole is not None:
        lever_search = _levers.lever_search(args, data, ds, whole, run, OUT)
    elif (OUT / "search_levers.json").is_file():
        lever_search = rows.load_json(OUT / "search_levers.json")

    cuts = _cut.sweep(
        {label: [[OUT / "runs" / f"t2-{tag}-s{s}" for tag in tags] for s in seeds] for label, tags in stage1.items()},
        load_split(data, cfg, dataset=ds),
        cfg,
        OUT / "cut_sweep.json",
    )
    report = pages.page(args, ds, f19, f16, t1, t2, fprs, search, robust, cuts)
    if levers and whole is not None:
        load = lambda n: RunResult.load(OUT / "runs" / n) if (OUT / "runs" / n / "result.json").is_file() else None  # noqa: E731
        report += (
            "\n".join(_levers.report_lines(args, levers, whole, pages.merged(f19, f16), lever_search, load)) + "\n"
        )
        _levers.plot(levers, whole, RESULTS / f"{args.name}_levers.png")
    # the Reading is written by a person after looking at the numbers; kept beside the script's
    # output so that a re-run regenerates the tables without losing it (update it when they change)
    reading = Path(args.out).with_name(Path(args.out).stem + "_reading.md")
    if reading.is_file():
        report += "\n" + reading.read_text()
    save_report(report, args.out)
    if f19 is not None:
        pages.plot(
            f19, f16, t1, t2, Path(args.out).with_suffix(".png"), "full, GPU" if args.per_class == 0 else "CPU-sized"
        )


# dense BF16 tensor-core peak from NVIDIA's data sheets (SXM parts), FLOP/s
BF16_PEAK = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}


def _record_device(device: str | None, out: Path) -> None:
    """On CUDA, name the GPU the runs trained on (read by the report; the runs record only 'cuda')."""
    import torch

    if not torch.cuda.is_available() or (device or "cuda").startswith("cpu"):
        return
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in BF16_PEAK.items() if k in name), None)
    out.mkdir(parents=True, exist_ok=True)
    (out / "device.json").write_text(
        json.dumps({"name": name, "torch": torch.__version__, "bf16_peak": peak}, indent=1)
    )


if __name__ == "__main__":
    main()
