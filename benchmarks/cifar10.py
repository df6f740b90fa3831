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
import math
import statistics as stats
import time
from dataclasses import replace
from pathlib import Path

import _cut
import _levers
from _common import (
    CIFAR_ARCHIVE,
    RESULTS,
    frontier_table,
    iso_cells,
    iso_test_delta,
    mean_std,
    pyplot,
    save_frontier_axes,
    save_report,
    scratch_test_acc,
)

from growsearch.data.dataset import create_dataset
from growsearch.plan.schedule import Schedule, Stage, TrainConfig, load_split
from growsearch.train.baseline import run_frontier
from growsearch.train.frontier import Frontier, budget_run_dir, load_frontier
from growsearch.train.results import RunResult
from growsearch.train.run import run_schedule

OUT = RESULTS / "cifar10"
THRESHOLD = 0.5  # Table 2's prune_threshold row (issue 26): one value, not tuned
DECAY = 5e-3  # stage 1's own weight decay in the SSGD rows that test its regime (10x the recipe's: where SSGD won on digits)
LONG_STAGE1 = 32  # stage 1's epochs in the rows that give SSGD its steps (about 1,100, as on digits at 100 epochs)
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
# (name, [(classes, arch)], {level: epochs per stage}); the paper's Table 1 rows that fit CIFAR-10
# (the short level only where the first hand-made reading measured it: the CPU budget)
TABLE1 = [
    ("5→10 VGG11→16", [(5, "vgg11"), (10, "vgg16")], {"long": (8, 6), "longer": (16, 12)}),
    ("5→10 VGG11→19", [(5, "vgg11"), (10, "vgg19")], {"short": (4, 3), "long": (8, 6)}),
    ("3→6→10 VGG11→16→19", [(3, "vgg11"), (6, "vgg16"), (10, "vgg19")], {"long": (6, 5, 5)}),
]
PAPER_T1 = {
    "5→10 VGG11→16": "87.4→90.7 %, M 0.77× of 532.1T (vs one VGG16 run)",
    "5→10 VGG11→19": "–",
    "3→6→10 VGG11→16→19": "–",
}
PAPER_T2 = (
    "CIFAR-100 VGG19: M 0.36× with pruning + zero mask at iso-accuracy; params and non-zero MACs well below VGG19"
)
PAPER_EPS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)


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
    global OUT
    OUT = RESULTS / args.name
    args.out = args.out or str(RESULTS / f"{args.name}.md")

    t0 = time.perf_counter()
    data = f"imagefolder:{args.data}" + (f"?train_per_class={args.per_class}" if args.per_class else "")
    ds = create_dataset(data)
    _record_device(args.device)
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
    for name, stages, levels in TABLE1:
        for level, epochs in levels.items():
            if level not in args.levels:
                continue
            epochs = tuple(args.epoch_scale * e for e in epochs)
            rs = [run(f"t1-{_slug(name)}-{level}-s{s}", sched(stages, epochs, s), train="table1" in ph) for s in seeds]
            if all(rs):
                t1.setdefault(name, {})[level] = rs
    R = 0.5
    t2_rows = {
        "R = 0": dict(),
        f"R = {R:g}": dict(prune_ratio=R),
        f"R = {R:g} + zero mask": dict(prune_ratio=R, zero_mask=True),
    }
    t2_epochs = tuple(args.epoch_scale * e for e in TABLE1[1][2]["long"])
    t2: dict[str, list[RunResult]] = {}
    for label, extra in t2_rows.items():
        tag = (
            "t1-" + _slug(TABLE1[1][0]) + "-long"
            if not extra
            else f"t2-R{R:g}{'-zm' if extra.get('zero_mask') else ''}"
        )
        rs = [run(f"{tag}-s{s}", sched(TABLE1[1][1], t2_epochs, s, **extra), train="table2" in ph) for s in seeds]
        if all(rs):
            t2[label] = rs
    # (b) of each pruned row: its final network from scratch (seed 0's; a ratio's widths are the same in every seed)
    fprs: dict[str, Frontier] = {}
    recipe = "SGD (the recipe)"  # stage 1 as the paper's rows train it
    stage1: dict[str, list[str]] = {recipe: [f"R{R:g}"]}  # stage 1's recipe → the rows that train it (the cut sweep)
    if f"R = {R:g}" in t2:  # the same row with its pruned stage trained by SSGD, then by a threshold on it (issue 26)

        def pruned(seed: int, own: dict, epochs: int | None, **prune) -> Schedule:
            """Table 2's schedule pruned by ``prune``; stage 1 trained with its ``own`` keys (optimizer,
            weight decay) for ``epochs`` (None: the row's)."""
            s = sched(TABLE1[1][1], (epochs or t2_epochs[0], *t2_epochs[1:]), seed, **prune)
            s.stages[0] = replace(s.stages[0], **own)
            return s

        fpr = front_of(
            f"vgg19_pruned_R{R:g}",
            [],
            specs_from=[OUT / "runs" / f"t2-R{R:g}-s0"],
            run="table2" in ph,
            budgets=args.pruned_budgets,
        )
        if fpr is not None:
            fprs.update({label: fpr for label in t2 if label.startswith(f"R = {R:g}")})
        # one lever at a time: the optimizer, the gentler cut, stage 1's decay (what SSGD's zeroing
        # runs on), and a stage 1 long enough for it (the regime where SSGD won on digits); the
        # threshold rows need a reference (b) each (their widths are their own), R = 0.5's share one
        for cut, name, label, own, epochs in (
            ("ratio", "-ssgd", "stage 1 by SSGD", {"optimizer": "ssgd"}, None),
            ("threshold", "", "", {}, None),
            ("threshold", "-ssgd", "stage 1 by SSGD", {"optimizer": "ssgd"}, None),
            ("ratio", f"-wd{DECAY:g}", f"stage 1 at decay {DECAY:g}", {"weight_decay": DECAY}, None),
            (
                "ratio",
                f"-ssgd-wd{DECAY:g}",
                f"stage 1 by SSGD at decay {DECAY:g}",
                {"optimizer": "ssgd", "weight_decay": DECAY},
                None,
            ),
            ("threshold", f"-wd{DECAY:g}", f"stage 1 at decay {DECAY:g}", {"weight_decay": DECAY}, None),
            (
                "threshold",
                f"-ssgd-wd{DECAY:g}",
                f"stage 1 by SSGD at decay {DECAY:g}",
                {"optimizer": "ssgd", "weight_decay": DECAY},
                None,
            ),
            (
                "ratio",
                f"-wd{DECAY:g}-e{LONG_STAGE1}",
                f"stage 1 at decay {DECAY:g} for {LONG_STAGE1} epochs",
                {"weight_decay": DECAY},
                LONG_STAGE1,
            ),
            (
                "ratio",
                f"-ssgd-wd{DECAY:g}-e{LONG_STAGE1}",
                f"stage 1 by SSGD at decay {DECAY:g} for {LONG_STAGE1} epochs",
                {"optimizer": "ssgd", "weight_decay": DECAY},
                LONG_STAGE1,
            ),
        ):
            tag = f"R{R:g}{name}" if cut == "ratio" else f"thr{THRESHOLD:g}{name}"
            stage1.setdefault(label or recipe, []).append(tag)  # an R row and its threshold row train the same stage 1
            row = (f"R = {R:g}" if cut == "ratio" else f"threshold {THRESHOLD:g}") + (f", {label}" if label else "")
            prune = dict(prune_ratio=R) if cut == "ratio" else dict(prune_threshold=THRESHOLD)
            rs = [run(f"t2-{tag}-s{s}", pruned(s, own, epochs, **prune), train="ssgd" in ph) for s in seeds]
            if not all(rs):
                continue
            t2[row] = rs
            fb = (
                fpr
                if cut == "ratio"
                else front_of(
                    f"vgg19_pruned_{tag}",
                    [],
                    specs_from=[OUT / "runs" / f"t2-{tag}-s0"],
                    run="ssgd" in ph,
                    budgets=args.pruned_budgets,
                )
            )
            if fb is not None:
                fprs[row] = fb
    search = _search(args, data, ds, f19, run) if "search" in ph else _load_json(OUT / "search.json")
    robust = _robustness(args, t1, f19, ds) if "robustness" in ph else _load_json(OUT / "robustness.json")

    resized = _levers.resized_frontier(
        args, data, ds, OUT, cfg, args.resized_budgets, train=bool(ph & {"resized", "search_levers"})
    )
    if "levers" in ph:
        _levers.train_ablation(args, data, cfg, run, args.lever_seeds if args.lever_seeds is not None else seeds)
    levers = _levers.ablation(args, data, cfg, run)
    whole = _merged(f19, f16) if f19 is not None else None
    if whole is not None and resized is not None:
        whole = replace(
            whole, references=whole.references + resized.references, spent_M=whole.spent_M + resized.spent_M
        )
    lever_search = None
    if "search_levers" in ph and whole is not None:
        lever_search = _levers.lever_search(args, data, ds, whole, run, OUT)
    elif (OUT / "search_levers.json").is_file():
        lever_search = _load_json(OUT / "search_levers.json")

    cuts = _cut.sweep(
        {label: [[OUT / "runs" / f"t2-{tag}-s{s}" for tag in tags] for s in seeds] for label, tags in stage1.items()},
        load_split(data, cfg, dataset=ds),
        cfg,
        OUT / "cut_sweep.json",
    )
    report = _report(args, data, ds, f19, f16, t1, t2, fprs, search, robust, time.perf_counter() - t0, cuts)
    if levers and whole is not None:
        load = lambda n: RunResult.load(OUT / "runs" / n) if (OUT / "runs" / n / "result.json").is_file() else None  # noqa: E731
        report += "\n".join(_levers.report_lines(args, levers, whole, _merged(f19, f16), lever_search, load)) + "\n"
        _levers.plot(levers, whole, RESULTS / f"{args.name}_levers.png")
    # the Reading is written by a person after looking at the numbers; kept beside the script's
    # output so that a re-run regenerates the tables without losing it (update it when they change)
    reading = Path(args.out).with_name(Path(args.out).stem + "_reading.md")
    if reading.is_file():
        report += "\n" + reading.read_text()
    save_report(report, args.out)
    if f19 is not None:
        _plot(f19, f16, t1, t2, Path(args.out).with_suffix(".png"), "full, GPU" if args.per_class == 0 else "CPU-sized")


def _slug(name: str) -> str:
    """A row's folder name: "5→10 VGG11→16" → "5-10-vgg11-16"."""
    return name.replace("→", "-").replace(" ", "-").lower()


def _load_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _search(args, data: str, ds, front: Frontier, run) -> dict:
    """A search over the CPU-sized space on the benchmark's own frontier; its best re-run on 3 seeds."""
    import shutil

    from growsearch.search.driver import run_search
    from growsearch.search.space import SearchSpace

    w = f"@{args.width:g}"
    space = SearchSpace(
        dataset=data,
        final_arch="vgg19" + w,
        archs=[a + w for a in ("vgg11", "vgg13", "vgg16")],
        stages=(2, 3),
        split=(0.2, 0.8),
        epochs=(2, 12),
        grown_lr=(0.005, 0.05),
        prune_ratio=(0.0, 0.5),
        zero_mask=True,
        resolutions=[16, 24, 32],
        tolerance=args.tolerance,
        trials=args.trials,
        budgets=[b for b in args.budgets if b <= args.search_cap],
        seed=0,
        train=TrainConfig(lr=args.lr),
        name="cifar10_cpu",
    )
    # the search's target: the frontier cut at --search-cap (the same runs, fewer budgets)
    capped = replace(
        front,
        references=[
            replace(ref, points=[p for p in ref.points if p.epochs <= args.search_cap]) for ref in front.references
        ],
    )
    out = OUT / "search"
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    res = run_search(space, out_dir=out, trials=args.trials, frontier=capped)
    search_s = time.perf_counter() - t0
    on_target = front.cheapest_reaching(res.target_acc)
    got = {
        "trials": args.trials,
        "cap": args.search_cap,
        "space": space.to_dict(),
        "wall_s": search_s,
        "target_acc": res.target_acc,
        "M_ref": res.M_ref,
        "spent_M": res.spent_M,
        "charged_M": res.charged_M,
        "on_target_epochs": on_target.epochs if on_target else None,
        "on_target_M": on_target.M if on_target else None,
        "best": res.best,
        "best_schedule": None,
        "reruns": [],
    }
    if res.best_schedule is not None:
        got["best_schedule"] = res.best_schedule.to_dict()
        for seed in range(args.seeds):
            run(
                f"search-best-s{seed}", replace(res.best_schedule, seed=seed, threads=None)
            )  # its result.json is read by the report
            got["reruns"].append(f"search-best-s{seed}")
    shutil.copy(out / "pareto.png", RESULTS / f"{args.name}_search_pareto.png")
    (OUT / "search.json").write_text(json.dumps(got, indent=1))
    return got


def _robustness(args, t1: dict, front: Frontier, ds) -> dict | None:
    """Per seed: the 3→6→10 long run against the from-scratch VGG19 run of the closest test accuracy."""
    from growsearch.robust.robustness import robustness_report

    name = TABLE1[2][0]
    if name not in t1 or "long" not in t1[name]:
        return None
    reports = []
    for seed, r in enumerate(t1[name]["long"]):
        run_dir = OUT / "runs" / f"t1-{_slug(name)}-long-s{seed}"
        base = min(
            (p for p in front.references[0].points),
            key=lambda p: abs(next(s["test_acc"] for s in p.seeds if s["seed"] == seed) - r.test_acc),
        )
        base_dir = budget_run_dir(OUT / "frontiers" / "vgg19", base.epochs, base.lr, seed)
        kept = run_dir / "robustness.json"
        if kept.is_file() and json.loads(kept.read_text()).get("baseline_dir") == str(base_dir):
            rep = json.loads(kept.read_text())
        else:
            rep = (
                robustness_report(
                    run_dir,
                    base_dir,
                    eps=PAPER_EPS,
                    draws=2,
                    samples=args.robust_samples,
                    seed=seed,
                    dataset=ds,
                    overwrite=True,
                    progress=False,
                ).to_dict()
            )  # it wrote robustness.json (baseline_dir included) into the run folder; extended below in memory only
        rep["base_test_acc"] = RunResult.load(base_dir).test_acc
        rep["run_test_acc"] = r.test_acc
        rep["base_epochs"] = base.epochs
        reports.append(rep)
        print(
            f"robustness seed {seed}: run test {r.test_acc:.4f} vs {base.epochs}-epoch VGG19 {rep['base_test_acc']:.4f}",
            flush=True,
        )
    got = {"reports": reports}
    (OUT / "robustness.json").write_text(json.dumps(got, indent=1))
    from robustness import _plot as plot_robustness  # benchmarks/robustness.py: FGSM, noise and ablation panels

    plot_robustness(reports, RESULTS / f"{args.name}_robustness.png")
    return got


def _report(args, data, ds, f19, f16, t1, t2, fprs, search, robust, wall, cuts) -> str:
    return "\n".join(_report_lines(args, data, ds, f19, f16, t1, t2, fprs, search, robust, wall, cuts)) + "\n"


def _report_lines(args, data, ds, f19, f16, t1, t2, fprs, search, robust, wall, cuts) -> list[str]:
    n_train = len(ds.y_train)
    gpu = _load_json(OUT / "device.json")
    where = (
        f"one {gpu['name']} (bf16 autocast, channels_last, torch {gpu['torch']})"
        if gpu
        else "2-core CPU, torch threads 2"
    )
    subset = (
        f"**{args.per_class} training images per class** (`?train_per_class={args.per_class}`, stratified, seeded; "
        if args.per_class
        else "**all 50,000 training images** ("
    )
    lines = [
        f"# CIFAR-10 on {'a GPU' if gpu else 'CPU'}: the paper's rows against the from-scratch frontier",
        "",
        f"**Setting.** CIFAR-10 from `../shared/data/cifar10-jpeg.tar.gz`, {subset}{n_train} images, of which 10% per class are "
        f"the validation split every choice reads), all {len(ds.y_test)} test images read once per run for the report. **VGG at width "
        f"{args.width:g}** (timm's VGG family as growsearch builds it), 32×32, batch 128, SGD Nesterov, peak LR {args.lr:g} "
        "for every stage and every budget, 1 warm-up epoch, cosine to zero at the end of each stage/budget, flip + crop "
        f"augmentation; {where}. {args.seeds} seeds (seed = class order, init, batch order); the "
        "validation split is the same for all. M = Σ training samples × forward MACs. Benchmark time this call "
        f"{wall:.0f} s (runs already on disk are loaded, not retrained).",
        "",
        "**iso M ratio** = M / M_scratch(validation accuracy), M_scratch read off the frontier (least M reaching that "
        "validation accuracy, linear in log M between budgets; '≤' = more accurate than every budget, an upper bound); "
        "per seed, then mean ± std. **Δ test** = run test accuracy − the frontier's test accuracy at M_scratch: the "
        "iso-accuracy check on test (±0.5 pt).",
        "",
    ]
    if not gpu:
        full = RESULTS / "cifar10_gpu.md"
        lines += [
            "**Full width (VGG19@1.0, all 50,000 images) on a GPU:** "
            + (
                "see [cifar10_gpu.md](cifar10_gpu.md)."
                if full.is_file()
                else "pending — no GPU machine was lent to any session so far."
            ),
            "",
        ]
    if f19 is None:
        return lines + ["No frontier yet: run `python benchmarks/cifar10.py --phases frontier`."]
    both = _merged(f19, f16)
    lines += [
        f"## 1. Frontier: VGG19 from scratch at {'/'.join(map(str, args.budgets))} epochs"
        + ("" if f16 is None else f", VGG16 at {'/'.join(str(p.epochs) for p in f16.references[0].points)}")
        + ", each budget fully decayed",
        "",
        *frontier_table(both),
        "",
        f"![frontier and runs]({args.name}.png)",
        "",
    ]
    if t1:
        lines += [
            "## 2. Table 1 analogue: cumulative schedules at fixed stage budgets",
            "",
            f"Against {'the VGG19 and VGG16 frontiers (the cheaper of the two at each accuracy)' if f16 is not None else 'the VGG19 frontier (a VGG16 frontier is pending: the VGG11→16 row may look better than it is)'}. "
            "'chosen' = the level with the lower mean iso ratio (a validation-side choice). Wall ratio = run wall time / "
            "the frontier's wall time at M_scratch (interpolated like M).",
            "",
            "| schedule | epochs per stage | val acc % | test acc % | M | iso M ratio | Δ test (pt) | iso M ratio vs VGG19 alone | wall ratio | paper |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for name, levels in t1.items():
            chosen = min(levels, key=lambda lv: stats.mean(both.iso(r.M, r.val_acc)["iso_M_ratio"] for r in levels[lv]))
            for level, rs in levels.items():
                iso, bounds = iso_cells(rs, both)
                ep = "+".join(str(s.epochs) for s in rs[0].stages)
                mark = " (chosen)" if level == chosen else ""
                lines.append(
                    f"| {name}{mark} | {ep} | {mean_std([100 * r.val_acc for r in rs])} | {mean_std([100 * r.test_acc for r in rs])} "
                    f"| {stats.mean(r.M for r in rs):.3e} | **{iso}** ({bounds}) | {iso_test_delta(rs, both)} | {iso_cells(rs, f19)[0]} | {_wall_ratio(rs, both)} "
                    f"| {PAPER_T1[name] if level == chosen else ''} |"
                )
        lines.append("")
    if t2:
        ref = RunResult.load(budget_run_dir(OUT / "frontiers" / "vgg19", args.budgets[0], args.lr, 0))
        lines += [
            "## 3. Table 2 analogue: pruning VGG11 before growth (5→10, VGG11→19, long level), ± zero mask",
            "",
            f"R = fraction of every VGG11 conv's filters pruned (lowest L1 norm, torch-pruning) before growth. Ratios of params "
            f"and inference MACs against VGG19{'@' + format(args.width, 'g')} ({ref.params} params, {ref.macs_per_sample} MACs). "
            "'non-zero' MACs skip zero weights. Reference (a): VGG19 from scratch; (b): the pruned final network from scratch"
            + ("" if fprs else " (pending)")
            + " (seed 0's"
            + (
                f"; the threshold rows' widths differ by seed). The threshold rows prune the filters whose score is below {THRESHOLD:g} of the layer's mean (`prune_threshold`, one value, not tuned)."
                if any(label.startswith("threshold") for label in t2)
                else ")."
            ),
            "",
            "| schedule | params ratio | val acc % | test acc % | M | iso M ratio vs (a) | Δ test vs (a) | iso M ratio vs (b) | Δ test vs (b) | inference MACs ratio | non-zero MACs ratio |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for label, rs in t2.items():
            a, ab = iso_cells(rs, f19)
            # (b) is the pruned network from scratch: no reference for the unpruned row
            fb = fprs.get(label)
            b, bb = iso_cells(rs, fb) if fb is not None else ("–", "")
            lines.append(
                f"| {label} | {stats.mean(r.params for r in rs) / ref.params:.3f} | {mean_std([100 * r.val_acc for r in rs])} | {mean_std([100 * r.test_acc for r in rs])} "
                f"| {stats.mean(r.M for r in rs):.3e} | **{a}** ({ab}) | {iso_test_delta(rs, f19)} | **{b}** {('(' + bb + ')') if bb else ''} "
                f"| {iso_test_delta(rs, fb) if fb is not None else '–'} | {stats.mean(r.macs_per_sample for r in rs) / ref.macs_per_sample:.3f} "
                f"| {stats.mean(r.nonzero_macs_per_sample for r in rs) / ref.macs_per_sample:.3f} |"
            )
        cut = {label: rs for label, rs in t2.items() if rs[0].stages[1].prune}
        if cut:
            lines += [
                "",
                "At the cut (stage 1's network on stage 1's validation data, before and right after pruning, before growth):",
                "",
                "| schedule | val acc % before | val acc % right after pruning | drop (pt) |",
                "| --- | ---: | ---: | ---: |",
            ]
            for label, rs in cut.items():
                before, after = (
                    [100 * r.stages[0].val_acc for r in rs],
                    [100 * r.stages[1].prune["val_acc_after_prune"] for r in rs],
                )
                lines.append(
                    f"| {label} | {mean_std(before)} | {mean_std(after)} | {mean_std([b - a for b, a in zip(before, after)])} |"
                )
        lines += [""] + _cut.report_lines(cuts, RESULTS / f"{args.name}_cut.png")
        lines += ["", f"Paper (Table 2): {PAPER_T2}.", ""]
        for f in {id(f): f for f in fprs.values()}.values():
            lines += [f"Reference (b), {f.references[0].name}:", "", *frontier_table(f), ""]
    lines += _search_lines(args, search, both)
    lines += _robust_lines(robust, args.name)
    lines += _throughput_lines(gpu, f19, f16, t1)
    return lines


def _search_lines(args, search: dict | None, front: Frontier) -> list[str]:
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
    runs = [RunResult.load(OUT / "runs" / n) for n in search["reruns"]]
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


def _robust_lines(robust: dict | None, name: str) -> list[str]:
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


# dense BF16 tensor-core peak from NVIDIA's data sheets (SXM parts), FLOP/s
BF16_PEAK = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}


def _record_device(device: str | None) -> None:
    """On CUDA, name the GPU the runs trained on (read by the report; the runs record only 'cuda')."""
    import torch

    if not torch.cuda.is_available() or (device or "cuda").startswith("cpu"):
        return
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in BF16_PEAK.items() if k in name), None)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "device.json").write_text(
        json.dumps({"name": name, "torch": torch.__version__, "bf16_peak": peak}, indent=1)
    )


def _training_rate(r: RunResult) -> tuple[float, float]:
    """(training images/s, training FLOP/s) of one run's optimizer steps (per-epoch evaluation excluded).

    FLOPs = 6 × samples × forward MACs: forward 2 FLOPs per MAC, backward twice the forward.
    """
    secs = sum(row["train_s"] for st in r.stages for row in st.history)
    return sum(st.samples for st in r.stages) / secs, sum(6 * st.samples * st.macs_per_sample for st in r.stages) / secs


def _throughput_lines(gpu: dict | None, f19: Frontier | None, f16: Frontier | None, t1: dict) -> list[str]:
    if not gpu or f19 is None:
        return []
    groups: dict[str, list[RunResult]] = {}
    for f in (f19, f16):
        for ref in f.references if f is not None else []:
            for p in ref.points:
                d = OUT / "frontiers" / ref.name.split("@")[0]
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


def _merged(f19: Frontier, f16: Frontier | None) -> Frontier:
    """One frontier whose M_scratch is the cheaper of the VGG19 and VGG16 references."""
    if f16 is None:
        return f19
    return replace(f19, references=f19.references + f16.references, spent_M=f19.spent_M + f16.spent_M)


def _wall_ratio(runs: list[RunResult], front: Frontier) -> str:
    out = []
    for r in runs:
        iso = front.iso(r.M, r.val_acc)
        pts = sorted((p.M, p.wall_s) for ref in front.references if ref.name == iso["reference"] for p in ref.points)
        m = iso["M_scratch"]
        wall = pts[-1][1]
        for (m0, w0), (m1, w1) in zip(pts, pts[1:]):
            if m <= m1:
                wall = w0 + (math.log(m) - math.log(m0)) / (math.log(m1) - math.log(m0)) * (w1 - w0) if m > m0 else w0
                break
        out.append(r.wall_s / wall)
    return mean_std(out)


def _plot(f19: Frontier, f16: Frontier | None, t1: dict, t2: dict, path: Path, setting: str) -> None:
    from growsearch.train.plots import draw_frontier

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    draw_frontier(ax, _merged(f19, f16))
    i = 0
    for name, levels in t1.items():
        for level, rs in levels.items():
            ax.scatter(
                [r.M for r in rs],
                [r.val_acc for r in rs],
                label=f"{name} ({level})",
                color=f"C{i + 2}",
                s=28,
                zorder=3,
                marker="o" if level == "long" else "^",
            )
        i += 1
    for label, rs in t2.items():
        if label != "R = 0":
            ax.scatter(
                [r.M for r in rs],
                [r.val_acc for r in rs],
                label=f"5→10 VGG11→19 {label}",
                color=f"C{i + 2}",
                s=28,
                marker="s",
                zorder=3,
            )
            i += 1
    save_frontier_axes(fig, ax, f"CIFAR-10 ({setting}): cumulative schedules over the from-scratch frontier", path)


if __name__ == "__main__":
    main()
