"""The ``growsearch`` command.

User mistakes (a bad schedule, a missing dataset, an existing output directory) end with one
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EXIT_USAGE = 2

_EPILOG_RUN = """example schedule (JSON or YAML):
  {"dataset": "digits", "seed": 0,
   "stages": [{"classes": 5,  "arch": "vgg11@0.25", "epochs": 15},
              {"classes": 10, "arch": "vgg19@0.25", "epochs": 15}]}
writes DIR/result.json, DIR/stage{i}.pt (weights + arch spec) and DIR/curve.png"""


class _UsageError(Exception):
    """A command-line mistake argparse found; ``main`` prints it as one line and returns 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line naming --help instead of a usage block."""

    def error(self, message: str):  # type: ignore[override]
        raise _UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _add_common(
    p: argparse.ArgumentParser, overwrite: str = "replace the run in --out (the old one stays whole until the new one has finished, then nothing of it remains)"
) -> None:
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _parser() -> argparse.ArgumentParser:
    from growsearch import __version__

    parser = _Parser(
        prog="growsearch",
        description="Cumulative Net2Net training: grow a CNN with its data and count the training cost M.",
    )
    parser.add_argument("--version", action="version", version=f"growsearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "run", help="train a cumulative schedule", description="Train a cumulative Net2Net schedule stage by stage.",
        epilog=_EPILOG_RUN, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("schedule", metavar="SCHEDULE", help="schedule file (.json, .yaml or .yml)")
    p.add_argument("--out", metavar="DIR", help="output directory (required unless --dry-run)")
    p.add_argument(
        "--dry-run", action="store_true",
        help="print the plan (per stage: classes, arch, resolution, epochs, samples, MACs, M and the growth ops) and the total M, without training or writing anything",
    )
    p.add_argument(
        "--baseline", metavar="FRONTIER_DIR",
        help="the --out of `growsearch baseline`: print and store the iso-accuracy M ratio against its frontier, and draw the run over it in curve.png",
    )
    p.add_argument("--val-fraction", type=float, default=None, metavar="F", help="validation share of each class's training images (default: the schedule's train.val_fraction, 0.1)")
    p.add_argument("--resume", action="store_true", help="continue a killed run in --out after its last finished stage (same schedule file)")
    p.add_argument(
        "--all-cores", action="store_true",
        help="ignore the schedule's threads (a search's best schedule records its trials' count, so a re-run reproduces them) and use torch's default",
    )
    _add_common(p)

    p = sub.add_parser(
        "baseline", help="train from scratch at several budgets: the frontier every saving is measured against",
        description="Train each reference from scratch on all classes, once per budget (epochs), each with its learning "
        "rate warmed up and decayed to zero at the end of that budget; select on the validation split. Writes "
        "DIR/frontier.json, DIR/frontier.png and every budget's run under DIR/runs/ (a single --epochs run: DIR/result.json "
        "and DIR/stage1.pt, a one-point frontier).",
        epilog="example: growsearch baseline --data digits --arch vgg19@0.25 --budgets 2,4,8,16 --seeds 0,1,2 --out runs/frontier",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, metavar="NAME", help="dataset: digits, cifar10[:ROOT], cifar100[:ROOT], imagefolder:PATH (folder or .tar.gz), tinyimagenet:PATH, npz:PATH; append ?train_per_class=N for a stratified subset")
    p.add_argument("--arch", action="append", default=[], metavar="ARCH", help="a reference architecture, e.g. vgg19@0.25 (repeat for several)")
    p.add_argument("--spec-from", action="append", default=[], metavar="RUN_DIR", help="also train this run's exact final network (pruned widths and all) from scratch (repeatable)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--budgets", type=_ints, default=None, metavar="E,E,...", help="epochs per budget, strictly increasing, e.g. 2,4,8,16")
    p.add_argument("--epochs", type=int, default=None, help="a single budget (a one-point frontier); default 30 when --budgets is not given")
    p.add_argument("--patience", type=int, default=None, help=argparse.SUPPRESS)  # gone: a plateau run is no budget
    p.add_argument("--seed", type=int, default=None, help="one training seed (default 0)")
    p.add_argument("--seeds", type=_ints, default=None, metavar="S,S,...", help="several seeds: each point is their mean (± std)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default 0.05)")
    p.add_argument("--lrs", type=_floats, default=None, metavar="LR,LR,...", help="sweep the peak LR; per budget keep the best by validation accuracy")
    p.add_argument("--batch-size", type=int, default=None, help="default 128")
    p.add_argument("--val-fraction", type=float, default=None, metavar="F", help="validation share of each class's training images (default 0.1; 0: select on the test set)")
    p.add_argument("--resume", action="store_true", help="keep the budget runs already finished in DIR with the same settings, train the rest")
    _add_common(p, overwrite="replace a frontier already in --out")

    p = sub.add_parser(
        "search", help="search for the cheapest schedule at iso-accuracy (Optuna + Ray Tune)",
        description="Train the space's from-scratch frontier (its budgets, each decayed to zero), then let Optuna propose "
        "schedules that Ray Tune trains; minimise M / M_scratch(target) subject to validation accuracy ≥ target, where "
        "target = the frontier's best validation accuracy − tolerance (--baseline: use a frontier trained before). Writes DIR/frontier/, DIR/best_schedule.json, "
        "DIR/trials.csv, DIR/pareto.png, the best trained network as Optuna artifacts (DIR/artifacts/; `growsearch export -o FOLDER` fetches it) and the Optuna study (DIR/study.db unless --storage).",
    )
    p.add_argument("space", metavar="SPACE", help="a space name (" + ", ".join(_spaces()) + ") or a YAML file")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--trials", type=int, default=None, help="trial budget (default: the space's)")
    p.add_argument("--storage", metavar="URL", default=None, help="Optuna storage URL (default sqlite:///DIR/study.db)")
    p.add_argument("--study", metavar="NAME", default=None, help="study name (default: the space's name)")
    p.add_argument("--address", metavar="ADDR", default=None, help="an existing Ray cluster, e.g. 10.0.0.5:6379 (default: start Ray locally)")
    p.add_argument("--resume", action="store_true", help="continue a study whose driver was stopped (its original --trials budget carries over)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial, fractions allowed (default 0)")
    p.add_argument("--max-failures", type=int, default=2, help="retries of a failed trial from its last stage (default 2)")
    p.add_argument("--val-fraction", type=float, default=None, metavar="F", help="validation share of each class's training images (default: the space's train.val_fraction, 0.1)")
    p.add_argument(
        "--baseline", metavar="FRONTIER_DIR", default=None,
        help="compare with this frontier (the --out of `growsearch baseline` on the space's dataset and split) instead of training the space's budgets",
    )
    p.add_argument(
        "--storage-path", metavar="PATH_OR_URI", default=None,
        help="Ray Tune's RunConfig(storage_path): a folder every node sees (multi-node Ray needs one; it also holds the prefix cache) or an s3://-style URI (default DIR/tune)",
    )
    p.add_argument("--verbose", action="store_true", help="also show Ray's and Tune's own console output (default: growsearch's lines only)")
    p.add_argument("--fgsm-eps", type=float, default=None, metavar="EPS", help="measure each trial's FGSM accuracy with mutual inference at EPS (pixel units, e.g. 0.02); stored as its fgsm_mi_acc")
    p.add_argument("--fgsm-objective", action="store_true", help="maximise fgsm_mi_acc as a second objective (Pareto front; turns the M-based early stop off)")
    p.add_argument("--min-fgsm-acc", type=float, default=None, metavar="ACC", help="constraint: feasible trials also need fgsm_mi_acc ≥ ACC")

    p = sub.add_parser(
        "robustness", help="noise, ablation, FGSM with mutual inference, adversarial detection",
        description="Evaluate a run's final network, its mutual inference over every stage network, and (with "
        "--baseline) the from-scratch baseline: accuracy under Gaussian input noise and random unit ablation, FGSM "
        "(Foolbox) accuracy, and no-decision detection of FGSM inputs (TNR vs FNR). Writes RUN_DIR/robustness.json "
        "and noise.png, ablation.png, fgsm.png, tnr_fnr.png.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the --out of `growsearch run` (needs its stage{i}.pt)")
    p.add_argument("--baseline", metavar="DIR", default=None, help="the --out of `growsearch baseline` on the same dataset")
    p.add_argument("--eps", type=_floats, default=None, metavar="E,E,...", help="FGSM epsilons, pixel units of [0,1] images (default 0,0.005,0.01,0.02,0.05,0.1)")
    p.add_argument("--noise", type=_floats, default=None, metavar="S,S,...", help="Gaussian noise std levels, pixel units (default 0,0.05,0.1,0.2,0.3,0.4,0.5)")
    p.add_argument("--ablation", type=_floats, default=None, metavar="F,F,...", help="fractions of conv units zeroed (default 0,0.1,...,1)")
    p.add_argument("--draws", type=int, default=3, help="random draws per noise/ablation level (default 3)")
    p.add_argument("--weights", default="acc", metavar="acc|uniform|W,W,...", help="MI vote weights: each stage's accuracy (default), uniform, or one per stage")
    p.add_argument("--rule", default="known", choices=["known", "plain"], help="MI vote: count a class's vote share among the stages that know it (default), or plain weighted majority")
    p.add_argument("--detect-eps", type=float, default=0.02, help="FGSM epsilon of the detection (TNR/FNR) inputs (default 0.02)")
    p.add_argument("--samples", type=int, default=None, help="evaluate a seeded random subset of this many test images (default all)")
    p.add_argument("--seed", type=int, default=0, help="seeds the noise and ablation draws and --samples (default 0)")
    _add_common(p, overwrite="replace an existing RUN_DIR/robustness.json")

    p = sub.add_parser("export", help="write a study's best schedule (and its trained network) for re-use",
                       description="Write the cheapest feasible schedule of an Optuna study, in the format `growsearch run` takes.")
    p.add_argument("--storage", required=True, metavar="URL", help="e.g. sqlite:///runs/search/study.db")
    p.add_argument("--study", required=True, metavar="NAME")
    p.add_argument(
        "-o", "--output", required=True, metavar="FILE_OR_DIR",
        help="a .json/.yaml file (the schedule), or a folder: best_schedule.json plus the trained network.pt and result.json the study stored as artifacts",
    )

    p = sub.add_parser(
        "demo", help="the embedded default: a short search on digits",
        description="A short search on scikit-learn's digits with the default space (digits_vgg): a from-scratch "
        "frontier of VGG19@0.25 at 2, 4, 8 and 15 epochs (3 seeds), then TRIALS cumulative schedules; prints the best schedule, "
        "its iso-accuracy M ratio against the frontier and the optuna-dashboard command.",
    )
    p.add_argument("--out", metavar="DIR", default=None, help="output directory (default: runs/demo-<time>)")
    p.add_argument("--trials", type=int, default=6, help="trials (default 6: a few minutes on a laptop CPU)")
    return parser


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, e.g. 2,4,8,16; got {text!r}") from None


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, e.g. 0,0.01,0.02; got {text!r}") from None


def _spaces() -> list[str]:
    from growsearch.space import list_spaces

    return list_spaces()


def _train_cfg(args: argparse.Namespace):
    from growsearch.schedule import TrainConfig

    cfg = TrainConfig()
    if getattr(args, "lr", None) is not None:
        cfg.lr = args.lr
    if getattr(args, "batch_size", None) is not None:
        cfg.batch_size = args.batch_size
    if getattr(args, "val_fraction", None) is not None:
        cfg.val_fraction = args.val_fraction
    return cfg


def _iso_line(iso: dict, acc: float) -> str:
    """One line stating a run's iso-accuracy M ratio against the frontier, with its bound."""
    from growsearch.frontier import bound_word

    bound = bound_word(iso)
    why = {
        "upper": " (more accurate than every budget: the ratio against the most accurate one is an upper bound)",
        "lower": " (less accurate than the cheapest budget: a shorter from-scratch run might match it, so this is a lower bound)",
    }.get(iso["bound"], "")
    verdict = "; costs more than training from scratch" if iso["iso_M_ratio"] > 1 and iso["bound"] != "upper" else ""
    return (
        f"M ratio at iso-accuracy: {bound}{iso['iso_M_ratio']:.3f}x of M_scratch = {iso['M_scratch']:.4g} "
        f"(from scratch {iso['reference']} reaching validation accuracy {acc:.4f}){why}{verdict}"
    )


def _summary(result) -> str:
    from growsearch.data import TEST_SELECTION_NOTE

    lines = [f"{'stage':>5}  {'arch':<20} {'classes':>7} {'px':>4} {'epochs':>6} {'M':>12} {'val_acc':>8} {'test_acc':>8} {'wall_s':>7}"]
    for i, st in enumerate(result.stages, 1):
        lines.append(
            f"{i:>5}  {st.arch:<20} {st.classes:>7} {st.resolution:>4} {st.epochs:>6} {st.M:>12.4g} {st.val_acc:>8.4f} {st.test_acc:>8.4f} {st.wall_s:>7.1f}"
        )
    lines.append(f"{'total':>5}  {'':<20} {'':>7} {'':>4} {'':>6} {result.M:>12.4g} {result.val_acc:>8.4f} {result.test_acc:>8.4f} {result.wall_s:>7.1f}")
    if result.iso is not None:
        lines.append(_iso_line(result.iso, result.val_acc))
        lines.append(f"(against the frontier's longest budget alone: {result.iso['M_ratio_longest']:.3f}x)")
    if result.selection == "test":
        lines.append(TEST_SELECTION_NOTE)
    return "\n".join(lines)


def _cmd_run(args: argparse.Namespace) -> int:
    from growsearch.frontier import load_frontier
    from growsearch.schedule import load_schedule
    from growsearch.train import run_schedule

    sched = load_schedule(args.schedule)
    if args.val_fraction is not None:
        sched.train.val_fraction = args.val_fraction
    if args.all_cores:
        sched.threads = None
    if args.dry_run:
        from growsearch.plan import plan_schedule, plan_table

        print(plan_table(plan_schedule(sched)))
        return 0
    if args.out is None:
        from growsearch.errors import GrowsearchError

        raise GrowsearchError("--out DIR is required to train (or pass --dry-run to print the plan only)")
    out = Path(args.out)
    frontier = load_frontier(args.baseline) if args.baseline else None
    result = run_schedule(
        sched, out_dir=out, overwrite=args.overwrite, device=args.device, progress=not args.quiet, frontier=frontier, resume=args.resume,
    )
    print(_summary(result))
    print(f"wrote {out / 'result.json'}, {out / 'curve.png'} and {len(result.stages)} stage checkpoint(s)")
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    from growsearch.data import TEST_SELECTION_NOTE
    from growsearch.frontier import FrontierError, run_frontier

    if args.patience is not None:
        raise FrontierError("--patience trains to a plateau, which is no fixed budget: give --budgets (e.g. 2,4,8,16), each decayed to zero")
    if args.budgets is not None and args.epochs is not None:
        raise FrontierError("give either --budgets (several) or --epochs (one), not both")
    if args.seeds is not None and args.seed is not None:
        raise FrontierError("give either --seeds (several) or --seed (one), not both")
    if args.lrs is not None and args.lr is not None:
        raise FrontierError("give either --lrs (a sweep) or --lr (one), not both")
    budgets = args.budgets if args.budgets is not None else [30 if args.epochs is None else args.epochs]
    seeds = args.seeds if args.seeds is not None else [0 if args.seed is None else args.seed]
    front = run_frontier(
        args.data, args.arch, budgets, specs_from=args.spec_from, seeds=seeds, lrs=args.lrs, train=_train_cfg(args),
        out_dir=args.out, overwrite=args.overwrite, resume=args.resume, device=args.device, progress=not args.quiet,
    )
    print(front.table())
    if front.val_fraction == 0:
        print(TEST_SELECTION_NOTE)
    print(f"frontier cost: {front.spent_M:.4g} MACs of training in {front.wall_s:.0f} s (every budget, seed and LR)")
    print(f"wrote {Path(args.out) / 'frontier.json'} and frontier.png")
    return 0


def _search_report(res) -> str:
    from growsearch.data import TEST_SELECTION_NOTE

    front, ref = res.frontier, res.ref
    on_target = front.cheapest_reaching(res.target_acc)
    spent = res.spent_M + front.spent_M
    lines = [
        f"frontier: best validation accuracy {front.best_val_acc:.4f} ({len(front.references[0].points)} budgets); "
        f"target {res.target_acc:.4f}; M_scratch(target) {res.M_ref:.4g} ({ref['reference']})"
        + (" — below the cheapest budget: ratios are lower bounds, add a shorter budget" if ref["below"] else ""),
        f"{res.trials} trials; search cost (trials with prefix reuse + frontier) {spent / on_target.M:.2f}x the frontier's cheapest "
        f"on-target budget ({on_target.epochs} epochs), {spent / front.longest.M:.2f}x its longest ({front.longest.epochs} epochs); "
        f"trials alone without prefix reuse: {res.charged_M / on_target.M:.2f}x",
    ]
    if res.best_schedule is None:
        lines.append("no schedule reached the target validation accuracy: raise the epoch range or the trial budget, or loosen tolerance")
    else:
        b = res.best
        fgsm = f", FGSM-MI accuracy {b['fgsm_mi_acc']:.4f} at eps {b['fgsm_eps']:g}" if "fgsm_mi_acc" in b else ""
        worse = "; it costs more than training from scratch" if b["M_ratio"] > 1 else ""
        lines.append(
            f"best feasible: M ratio at iso-accuracy {b['M_ratio']:.3f}x (M / M_scratch(target)) at validation accuracy "
            f"{b['val_acc']:.4f}, test accuracy {b['test_acc']:.4f}{fgsm}{worse}"
        )
        for i, st in enumerate(res.best_schedule.stages, 1):
            extra = "".join(
                [f", prune {st.prune_ratio:g}" if st.prune_ratio else "", ", zero mask" if st.zero_mask else "", f", lr {st.lr:.3g}" if st.lr else ""]
            )
            lines.append(f"  stage {i}: {st.classes} classes, {st.arch}, {st.epochs} epochs{extra}")
        frontier_dir = res.out_dir / "frontier"
        lines.append(
            f"wrote {res.out_dir / 'best_schedule.json'} (re-run it against the same frontier: growsearch run "
            f"{res.out_dir / 'best_schedule.json'} --out DIR --baseline {frontier_dir}; it trains with the trials' "
            f"{res.best_schedule.threads} torch thread(s), which reproduces their numbers; --all-cores is faster but drifts slightly)"
        )
    if res.pareto:
        lines.append("Pareto front (M ratio vs FGSM-MI accuracy on validation), feasible trials:")
        lines += [
            f"  trial {p['number']}: M ratio {p['M_ratio']:.3f}x, FGSM-MI {p['fgsm_mi_acc']:.4f}, validation accuracy {p['val_acc']:.4f}"
            for p in res.pareto
        ]
    if front.val_fraction == 0:
        lines.append(TEST_SELECTION_NOTE)
    lines.append(f"trials: {res.out_dir / 'trials.csv'}, plot: {res.out_dir / 'pareto.png'}")
    lines.append(f"dashboard: optuna-dashboard {res.storage} --artifact-dir {res.out_dir / 'artifacts'}")
    return "\n".join(lines)


def _cmd_search(args: argparse.Namespace) -> int:
    from growsearch.search import run_search

    res = run_search(
        args.space, out_dir=args.out, trials=args.trials, storage=args.storage, study_name=args.study, address=args.address,
        resume=args.resume, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, max_failures=args.max_failures,
        fgsm_eps=args.fgsm_eps, fgsm_objective=args.fgsm_objective, min_fgsm_acc=args.min_fgsm_acc,
        val_fraction=args.val_fraction, frontier=args.baseline, storage_path=args.storage_path, verbose=args.verbose,
    )
    print(_search_report(res))
    return 0 if res.best_schedule is not None else 1


def _robustness_table(r: dict) -> str:
    cols = [k for k in ("baseline", "final", "final_mi") if k in r["fgsm"]]
    names = {"baseline": "baseline", "final": "final", "final_mi": "final+MI"}
    lines = ["FGSM accuracy (Foolbox LinfFastGradientAttack)", f"{'eps':>7}  " + "  ".join(f"{names[c]:>9}" for c in cols)]
    for i, e in enumerate(r["fgsm"]["eps"]):
        lines.append(f"{e:>7g}  " + "  ".join(f"{r['fgsm'][c][i]:>9.4f}" for c in cols))
    det = r["detection"]
    lines.append(f"no-decision detection at eps {det['eps']:g}: TNR at FNR 5% / 10%")
    for c in cols:
        f5, f10 = det[c]["tnr_at_fnr_5"], det[c]["tnr_at_fnr_10"]
        lines.append(f"  {names[c]:<9} {'n/a' if f5 is None else f'{f5:.4f}'} / {'n/a' if f10 is None else f'{f10:.4f}'}")
    for sec, label in (("noise", "noise"), ("ablation", "ablation")):
        area = r[sec]["area"]
        lines.append(f"mean accuracy over the {label} levels: " + ", ".join(f"{names[k]} {v:.4f}" for k, v in area.items()))
    return "\n".join(lines)


def _cmd_robustness(args: argparse.Namespace) -> int:
    from growsearch.robustness import DEFAULT_ABLATION, DEFAULT_EPS, DEFAULT_NOISE, robustness_report

    weights = args.weights if args.weights in ("acc", "uniform") else _floats(args.weights)
    r = robustness_report(
        args.run_dir, args.baseline, eps=DEFAULT_EPS if args.eps is None else args.eps,
        noise=DEFAULT_NOISE if args.noise is None else args.noise, ablation=DEFAULT_ABLATION if args.ablation is None else args.ablation,
        draws=args.draws, weights=weights, rule=args.rule, detect_eps=args.detect_eps, samples=args.samples, seed=args.seed,
        device=args.device, overwrite=args.overwrite, progress=not args.quiet,
    )
    print(_robustness_table(r))
    if r.get("note"):
        print(r["note"])
    print(f"wrote {Path(args.run_dir) / 'robustness.json'} and noise.png, ablation.png, fgsm.png, tnr_fnr.png ({r['wall_s']:.0f} s)")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from growsearch.search import _export

    sched, where, network = _export(args.storage, args.study, args.output)
    print(f"wrote {where} ({len(sched.stages)} stages, final {sched.stages[-1].arch})")
    if network is not None:
        print(f"wrote {network} (the best trial's trained final network; growsearch.load_checkpoint reads it) and {network.with_name('result.json')}")
    elif where != Path(args.output):  # a folder was asked for, and the study holds no network
        print("the study stores no trained network (made before artifacts, or its store is elsewhere): the schedule only")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from growsearch.search import run_search
    from growsearch.space import load_space

    out = Path(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    space = load_space("digits_vgg")
    # A short search: fewer epochs per stage and a shorter frontier (no LR sweep) keep it to minutes
    # on a laptop; the frontier keeps the space's 3 seeds, whose mean gives a target that is not
    # one seed's lucky best.
    space.epochs, space.budgets, space.baseline_lrs = (2, 10), [2, 4, 8, 15], None
    print(f"demo: {args.trials} trials of the digits_vgg space in {out}/")
    res = run_search(space, out_dir=out, trials=args.trials)
    print(_search_report(res))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as e:
        print(e, file=sys.stderr)
        return EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from growsearch.errors import GrowsearchError

    handlers = {
        "run": _cmd_run, "baseline": _cmd_baseline, "search": _cmd_search, "export": _cmd_export, "demo": _cmd_demo,
        "robustness": _cmd_robustness,
    }
    try:
        return handlers[args.command](args)
    except (GrowsearchError, FileNotFoundError) as e:
        print(f"growsearch {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"growsearch {args.command}: interrupted; completed stage checkpoints are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
