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


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
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
        "demo", help="the embedded default: a cumulative schedule and its baseline on digits",
        description="Train 5→10 classes (VGG11→VGG19 at width 0.25) on scikit-learn's digits, then VGG19 from "
        "scratch, and print the M ratio. About two minutes on a laptop CPU.",
    )
    p.add_argument("--out", metavar="DIR", default=None, help="output directory (default: runs/demo-<time>)")
    p.add_argument("--epochs", type=int, default=15, help="epochs per stage and for the baseline (default 15)")
    _add_common(p)
    return parser


def _train_cfg(args: argparse.Namespace):
    from growsearch.schedule import TrainConfig

    cfg = TrainConfig()
    if getattr(args, "lr", None) is not None:
        cfg.lr = args.lr
    if getattr(args, "batch_size", None) is not None:
        cfg.batch_size = args.batch_size
    return cfg


def _summary(result, baseline=None) -> str:
    lines = [f"{'stage':>5}  {'arch':<14} {'classes':>7} {'epochs':>6} {'M':>12} {'test_acc':>8} {'wall_s':>7}"]
    for i, st in enumerate(result.stages, 1):
        lines.append(f"{i:>5}  {st.arch:<14} {st.classes:>7} {st.epochs:>6} {st.M:>12.4g} {st.test_acc:>8.4f} {st.wall_s:>7.1f}")
    lines.append(f"{'total':>5}  {'':<14} {'':>7} {'':>6} {result.M:>12.4g} {result.test_acc:>8.4f} {result.wall_s:>7.1f}")
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
    from growsearch.train import RunResult, _check_out_dir, run_schedule

    sched = load_schedule(args.schedule)
    sched.validate()
    out = Path(args.out)
    _check_out_dir(out, args.overwrite)
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


def _cmd_demo(args: argparse.Namespace) -> int:
    from growsearch.data import create_dataset
    from growsearch.plots import plot_curve
    from growsearch.schedule import Schedule, Stage
    from growsearch.train import _check_out_dir, run_baseline, run_schedule

    out = Path(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    _check_out_dir(out / "cumulative", args.overwrite)
    _check_out_dir(out / "baseline", args.overwrite)
    ds = create_dataset("digits")
    sched = Schedule("digits", [Stage(5, "vgg11@0.25", args.epochs), Stage(10, "vgg19@0.25", args.epochs)])
    print(f"[1/2] cumulative schedule 5 → 10 classes, vgg11@0.25 → vgg19@0.25, {args.epochs} epochs per stage")
    result = run_schedule(sched, dataset=ds, out_dir=out / "cumulative", overwrite=args.overwrite, device=args.device, progress=not args.quiet)
    print(f"[2/2] baseline: vgg19@0.25 from scratch on all 10 classes, {args.epochs} epochs")
    baseline = run_baseline("digits", "vgg19@0.25", epochs=args.epochs, dataset=ds, out_dir=out / "baseline", overwrite=args.overwrite, device=args.device, progress=not args.quiet)
    plot_curve(result, out / "cumulative" / "curve.png", baseline=baseline)
    print(_summary(result, baseline))
    print(f"results in {out}/ (curve: {out / 'cumulative' / 'curve.png'})")
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

    handlers = {"run": _cmd_run, "baseline": _cmd_baseline, "demo": _cmd_demo}
    try:
        return handlers[args.command](args)
    except (ScheduleError, ArchError, DataError, OutputExistsError, FileNotFoundError) as e:
        print(f"growsearch {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"growsearch {args.command}: interrupted; completed stage checkpoints are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
