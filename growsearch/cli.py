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


def _add_common(p: argparse.ArgumentParser, overwrite: str = "replace results already in --out") -> None:
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _parser() -> argparse.ArgumentParser:
    from growsearch import __version__

    parser = argparse.ArgumentParser(
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
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--baseline", metavar="DIR", help="a baseline's --out: overlay it on curve.png and print the M ratio")
    _add_common(p)

    p = sub.add_parser(
        "baseline", help="train the final architecture from scratch",
        description="Train ARCH from scratch on all classes with the same recipe as a schedule (the M ratio's denominator).",
    )
    p.add_argument("--data", required=True, metavar="NAME", help="dataset: digits, cifar10[:ROOT], cifar100[:ROOT], imagefolder:PATH, tinyimagenet:PATH, npz:PATH")
    p.add_argument("--arch", required=True, metavar="ARCH", help="e.g. vgg19@0.25, resnet18")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--epochs", type=int, default=30, help="epochs, or the most epochs with --patience (default 30)")
    p.add_argument("--patience", type=int, default=None, help="train to saturation: LR drops after this many epochs without a new best")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default 0.05)")
    p.add_argument("--batch-size", type=int, default=None, help="default 128")
    _add_common(p)

    p = sub.add_parser(
        "search", help="search for the cheapest schedule at iso-accuracy (Optuna + Ray Tune)",
        description="Train the space's baseline, then let Optuna propose schedules that Ray Tune trains; minimise M "
        "subject to accuracy ≥ baseline − tolerance. Writes DIR/best_schedule.json, DIR/trials.csv, DIR/pareto.png "
        "and the Optuna study (DIR/study.db unless --storage).",
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

    p = sub.add_parser("export", help="write a study's best schedule as a schedule file",
                       description="Write the cheapest feasible schedule of an Optuna study, in the format `growsearch run` takes.")
    p.add_argument("--storage", required=True, metavar="URL", help="e.g. sqlite:///runs/search/study.db")
    p.add_argument("--study", required=True, metavar="NAME")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="a .json or .yaml file")

    p = sub.add_parser(
        "demo", help="the embedded default: a short search on digits",
        description="A short search on scikit-learn's digits with the default space (digits_vgg): baseline VGG19@0.25, "
        "then TRIALS cumulative schedules; prints the best schedule, its M ratio and the optuna-dashboard command.",
    )
    p.add_argument("--out", metavar="DIR", default=None, help="output directory (default: runs/demo-<time>)")
    p.add_argument("--trials", type=int, default=6, help="trials (default 6: a few minutes on a laptop CPU)")
    return parser


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
    return cfg


def _summary(result, baseline=None) -> str:
    lines = [f"{'stage':>5}  {'arch':<20} {'classes':>7} {'px':>4} {'epochs':>6} {'M':>12} {'test_acc':>8} {'wall_s':>7}"]
    for i, st in enumerate(result.stages, 1):
        lines.append(f"{i:>5}  {st.arch:<20} {st.classes:>7} {st.resolution:>4} {st.epochs:>6} {st.M:>12.4g} {st.test_acc:>8.4f} {st.wall_s:>7.1f}")
    lines.append(f"{'total':>5}  {'':<20} {'':>7} {'':>4} {'':>6} {result.M:>12.4g} {result.test_acc:>8.4f} {result.wall_s:>7.1f}")
    if baseline is not None:
        lines.append(
            f"vs baseline {baseline.stages[-1].arch}: M ratio {result.M / baseline.M:.3f}x, "
            f"accuracy {result.test_acc:.4f} vs {baseline.test_acc:.4f} "
            f"({100 * (result.test_acc - baseline.test_acc):+.2f} pt), wall ratio {result.wall_s / baseline.wall_s:.2f}x"
        )
    return "\n".join(lines)


def _cmd_run(args: argparse.Namespace) -> int:
    from growsearch.plots import plot_curve
    from growsearch.schedule import ScheduleError, load_schedule
    from growsearch.train import RunResult, run_schedule

    sched = load_schedule(args.schedule)
    out = Path(args.out)
    baseline = RunResult.load(args.baseline) if args.baseline else None
    if baseline is not None and baseline.schedule.get("dataset") != sched.dataset:
        raise ScheduleError(
            f"--baseline {args.baseline} was trained on {baseline.schedule.get('dataset')!r}, this schedule on "
            f"{sched.dataset!r}: compare runs on the same dataset"
        )
    result = run_schedule(sched, out_dir=out, overwrite=args.overwrite, device=args.device, progress=not args.quiet)
    if baseline is not None:
        plot_curve(result, out / "curve.png", baseline=baseline)
    print(_summary(result, baseline))
    print(f"wrote {out / 'result.json'}, {out / 'curve.png'} and {len(result.stages)} stage checkpoint(s)")
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    from growsearch.train import run_baseline

    result = run_baseline(
        args.data, args.arch, epochs=args.epochs, patience=args.patience, seed=args.seed, train=_train_cfg(args),
        out_dir=args.out, overwrite=args.overwrite, device=args.device, progress=not args.quiet,
    )
    print(_summary(result))
    print(f"wrote {Path(args.out) / 'result.json'}")
    return 0


def _search_report(res) -> str:
    lines = [
        f"baseline {res.baseline['arch']}: accuracy {res.baseline['test_acc']:.4f}; target {res.target_acc:.4f}",
        f"{res.trials} trials; compute spent {res.spent_M / res.baseline['M']:.2f}x one baseline "
        f"(without prefix reuse: {res.charged_M / res.baseline['M']:.2f}x)",
    ]
    if res.best_schedule is None:
        lines.append("no schedule reached the target accuracy: raise the epoch range or the trial budget, or loosen tolerance")
    else:
        b = res.best
        fgsm = f", FGSM-MI accuracy {b['fgsm_mi_acc']:.4f} at eps {b['fgsm_eps']:g}" if "fgsm_mi_acc" in b else ""
        lines.append(f"best feasible: M ratio {b['M_ratio']:.3f}x at accuracy {b['test_acc']:.4f}{fgsm}")
        for i, st in enumerate(res.best_schedule.stages, 1):
            extra = "".join(
                [f", prune {st.prune_ratio:g}" if st.prune_ratio else "", ", zero mask" if st.zero_mask else "", f", lr {st.lr:.3g}" if st.lr else ""]
            )
            lines.append(f"  stage {i}: {st.classes} classes, {st.arch}, {st.epochs} epochs{extra}")
        lines.append(f"wrote {res.out_dir / 'best_schedule.json'} (re-run it: growsearch run {res.out_dir / 'best_schedule.json'} --out DIR)")
    if res.pareto:
        lines.append("Pareto front (M ratio vs FGSM-MI accuracy), feasible trials:")
        lines += [f"  trial {p['number']}: M ratio {p['M_ratio']:.3f}x, FGSM-MI {p['fgsm_mi_acc']:.4f}, accuracy {p['test_acc']:.4f}" for p in res.pareto]
    lines.append(f"trials: {res.out_dir / 'trials.csv'}, plot: {res.out_dir / 'pareto.png'}")
    lines.append(f"dashboard: optuna-dashboard {res.storage}")
    return "\n".join(lines)


def _cmd_search(args: argparse.Namespace) -> int:
    from growsearch.search import run_search

    res = run_search(
        args.space, out_dir=args.out, trials=args.trials, storage=args.storage, study_name=args.study, address=args.address,
        resume=args.resume, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, max_failures=args.max_failures,
        fgsm_eps=args.fgsm_eps, fgsm_objective=args.fgsm_objective, min_fgsm_acc=args.min_fgsm_acc,
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
    print(f"wrote {Path(args.run_dir) / 'robustness.json'} and noise.png, ablation.png, fgsm.png, tnr_fnr.png ({r['wall_s']:.0f} s)")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from growsearch.search import export_best

    sched = export_best(args.storage, args.study, args.output)
    print(f"wrote {args.output} ({len(sched.stages)} stages, final {sched.stages[-1].arch})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from growsearch.search import run_search
    from growsearch.space import load_space

    out = Path(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    space = load_space("digits_vgg")
    # A short search: fewer epochs per stage and a fixed-length baseline keep it to minutes on a laptop.
    space.epochs, space.baseline_epochs, space.baseline_patience = (2, 10), 15, None
    print(f"demo: {args.trials} trials of the digits_vgg space in {out}/")
    res = run_search(space, out_dir=out, trials=args.trials)
    print(_search_report(res))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from growsearch.backbones import ArchError
    from growsearch.data import DataError
    from growsearch.schedule import ScheduleError
    from growsearch.train import OutputExistsError

    from growsearch.space import SpaceError

    from growsearch.robustness import RobustnessError

    handlers = {
        "run": _cmd_run, "baseline": _cmd_baseline, "search": _cmd_search, "export": _cmd_export, "demo": _cmd_demo,
        "robustness": _cmd_robustness,
    }
    try:
        return handlers[args.command](args)
    except (ScheduleError, ArchError, DataError, OutputExistsError, FileNotFoundError, SpaceError, RobustnessError, _search_error()) as e:
        print(f"growsearch {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"growsearch {args.command}: interrupted; completed stage checkpoints are kept", file=sys.stderr)
        return 130


def _search_error() -> type:
    from growsearch.search import SearchError

    return SearchError


if __name__ == "__main__":
    sys.exit(main())
