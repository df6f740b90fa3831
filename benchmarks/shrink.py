"""Grow, then shrink on CIFAR-10 (issue 24): a family of subnets from one training, against each subnet from scratch.

The CPU setting of benchmarks/cifar10.py (1,000 training images per class, VGG@0.25, the same
recipe and validation split). The family's final network is VGG16@0.25; its menu is depths
{VGG11, VGG16} × widths {0.5, 1}: VGG11@0.125, VGG11@0.25, VGG16@0.125, VGG16@0.25. Three ways
to train it, all 24 epochs:

  (a) grow then shrink: VGG11 for 8 epochs, grown to VGG16 for 16 (all data in both stages, the
      cheapest lever setting of cifar10.md), shrinking from half of the last stage (DepS: LR ramp 2 epochs)
  (b) from scratch then shrink: VGG16 for 24 epochs, shrinking from half of it (DepS)
  (c) once-for-all from the start: VGG16 for 24 epochs, shrinking from step 0 (no ramp)
  (d) each subnet from scratch: its own frontier (budgets 6, 12, 24; VGG16@0.25's is cifar10's)

Each subnet is priced on its own frontier (M_scratch at its validation accuracy); the family
ratio is the run's M / Σ M_scratch of the chosen subnets. Every run keeps its result.json under
results/cifar10/runs/shrink-*, the new frontier under results/cifar10/frontiers/subnets, so a
later session adds seeds instead of redoing them. Writes results/shrink_cifar10.md, .json, .png.

The GPU setting (``--name cifar10_gpu``): all 50,000 images, full width, batch 512 (LR scaled
linearly), 9 epochs a run, every subnet's frontier (the full network's too) at budgets 3/6/9,
all under results/cifar10_gpu. Its parts can run side by side, each in its own process
(``--train``, ``--run-seeds``, ``--no-report``); a last call with ``--report-only`` reports:

    python benchmarks/shrink.py --name cifar10_gpu --per-class 0 --width 1 --batch 512 --total 9 \
        --budgets 3 6 9 --full-frontier frontiers/shrink_vgg16 --device cuda
"""

from __future__ import annotations

import argparse
import json
import time

import _shrink_report as pages
from _common import CIFAR_ARCHIVE, RESULTS

from growsearch import run_frontier, run_schedule
from growsearch.data.dataset import create_dataset
from growsearch.plan.schedule import Schedule, Shrink, Stage, TrainConfig
from growsearch.train.frontier import load_frontier
from growsearch.train.results import RunResult

MENU = {"depths": ["vgg11"], "widths": [0.5]}
VARIANTS = {"a": "grow then shrink", "b": "from scratch then shrink", "c": "once-for-all from the start"}


def variants(width: float, total: int) -> dict[str, tuple[str, list[tuple[str, int]], dict]]:
    """Label, stages (arch, epochs) and shrink keys of each variant at this width and run length
    (the CPU setting: 24 epochs, VGG11 for a third of them in (a); the DepS ramp is 1/12 of the run)."""
    w, ramp = f"@{width:g}", max(1, total // 12)
    first = total // 3
    return {
        "a": (
            f"grow then shrink (VGG11 {first} ep → VGG16 {total - first} ep, DepS from 0.5)",
            [(f"vgg11{w}", first), (f"vgg16{w}", total - first)],
            {"start": 0.5, "ramp_epochs": ramp},
        ),
        "b": (
            f"from scratch then shrink (VGG16 {total} ep, DepS from 0.5)",
            [(f"vgg16{w}", total)],
            {"start": 0.5, "ramp_epochs": ramp},
        ),
        "c": (
            f"once-for-all from the start (VGG16 {total} ep, shrink from 0)",
            [(f"vgg16{w}", total)],
            {"start": 0.0, "ramp_epochs": 0},
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=CIFAR_ARCHIVE)
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of every run")
    ap.add_argument(
        "--frontier-seeds", type=int, default=None, help="seeds 0..N-1 of the subnets' new frontier (default: --seeds)"
    )
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--budgets", type=int, nargs="+", default=[6, 12, 24])
    ap.add_argument("--report-only", action="store_true", help="train nothing; report the runs kept")
    ap.add_argument(
        "--name",
        default="cifar10",
        help="results folder under benchmarks/results/ (cifar10_gpu: the GPU setting) and report shrink_NAME",
    )
    ap.add_argument("--width", type=float, default=0.25, help="width of the family's full network")
    ap.add_argument("--total", type=int, default=24, help="epochs of every run")
    ap.add_argument(
        "--batch", type=int, default=128, help="batch size (above 128 the LR scales linearly), the frontiers' too"
    )
    ap.add_argument("--device", default=None, help="cpu or cuda; default CUDA when available")
    ap.add_argument(
        "--full-frontier",
        default="frontiers/vgg16",
        help="the full network's frontier under the results folder; trained there at --budgets when it has none",
    )
    ap.add_argument(
        "--train",
        nargs="+",
        default=["frontier", "full-frontier", "runs"],
        choices=["frontier", "full-frontier", "runs"],
        help="what this process trains (parts can run side by side, each in its own process)",
    )
    ap.add_argument(
        "--frontier-archs",
        type=int,
        nargs="+",
        default=None,
        choices=[0, 1, 2],
        help="train only these of the three smaller subnets' frontiers (VGG11 half width, VGG11, VGG16 half width), each in a folder of its own "
        "(frontiers/subnets-ARCH), so processes side by side can each train one; default: all three in frontiers/subnets",
    )
    ap.add_argument(
        "--run-seeds",
        type=int,
        nargs="+",
        default=None,
        help="seeds of the variant runs this process trains (default: all)",
    )
    ap.add_argument("--no-report", action="store_true", help="train only; a later --report-only call reports")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = RESULTS / args.name
    data = f"imagefolder:{args.data}" + (f"?train_per_class={args.per_class}" if args.per_class else "")
    ds = create_dataset(data)
    cfg = TrainConfig(lr=0.05, batch_size=args.batch, lr_scaling="linear" if args.batch != 128 else "none")
    seeds = list(range(args.seeds))
    w = args.width
    full_dir, sub_dir = out / args.full_frontier, out / "frontiers" / "subnets"
    train = set() if args.report_only else set(args.train)
    kw = dict(
        seeds=list(range(args.frontier_seeds or args.seeds)),
        train=cfg,
        dataset=ds,
        resume=True,
        progress=False,
        device=args.device,
    )
    if "full-frontier" in train and not (full_dir / "frontier.json").is_file():
        print(f"frontier of vgg16@{w:g} from scratch ...", flush=True)
        run_frontier(data, [f"vgg16@{w:g}"], args.budgets, out_dir=full_dir, **kw)
    small = [f"vgg11@{w / 2:g}", f"vgg11@{w:g}", f"vgg16@{w / 2:g}"]
    if "frontier" in train:  # all three in one folder, or the ones asked for each in its own
        parts = (
            [(sub_dir, small)]
            if args.frontier_archs is None
            else [(sub_dir.with_name(f"subnets-{small[i]}"), [small[i]]) for i in args.frontier_archs]
        )
        for folder, archs in parts:
            print(f"frontier of {', '.join(archs)} from scratch ...", flush=True)
            run_frontier(data, archs, args.budgets, out_dir=folder, **kw)
    runs: dict[str, list[RunResult]] = {}
    plans = variants(w, args.total)
    for v in VARIANTS:  # every variant's kept runs are reported; only --variants train
        label, stages, shrink = plans[v]
        for seed in seeds:
            sched = Schedule(
                data,
                [Stage(10, a, e) for a, e in stages],
                seed=seed,
                train=cfg,
                data_growth="none",
                shrink=Shrink(**MENU, **shrink),
            )
            d = out / "runs" / f"shrink-{v}-s{seed}"
            r = RunResult.load(d) if (d / "result.json").is_file() else None
            if r is None or r.schedule != sched.to_dict():
                if "runs" not in train or v not in args.variants or seed not in (args.run_seeds or seeds):
                    continue
                print(f"({v}) seed {seed}: {label} ...", flush=True)
                r = run_schedule(sched, dataset=ds, out_dir=d, overwrite=True, device=args.device, progress=False)
            runs.setdefault(v, []).append(r)
    if args.no_report or not runs:
        return print(f"trained in {time.perf_counter() - t0:.0f} s; no report" + (" (no run kept)" if not runs else ""))
    subs = sorted(d for d in sub_dir.parent.glob("subnets*") if (d / "frontier.json").is_file())
    if not (full_dir / "frontier.json").is_file() or not subs:
        return print(
            f"no report: {'the subnets’' if not subs else full_dir.name + '’s'} frontier is missing (train it with --train)"
        )
    fronts = [load_frontier(full_dir), *map(load_frontier, subs)]
    report = pages.report(runs, fronts, seeds, args, plans)
    stem = RESULTS / f"shrink_{args.name}"
    stem.with_suffix(".md").write_text(report)
    stem.with_suffix(".json").write_text(
        json.dumps({v: [pages.row(r, fronts) for r in rs] for v, rs in runs.items()}, indent=2) + "\n"
    )
    pages.plot(runs, fronts, stem.with_suffix(".png"), plans, args)
    print(report)


if __name__ == "__main__":
    main()
