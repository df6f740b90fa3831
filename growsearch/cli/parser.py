"""The ``growsearch`` command line: every subcommand's arguments and ``--help`` text.

argparse does the parsing; :class:`UsageError` turns its errors into one line naming
``--help``, which ``growsearch.cli.commands.main`` prints with exit code 2.

Example:
    >>> args = build_parser().parse_args(["run", "s.json", "--dry-run"])
    >>> args.command, args.dry_run
    ('run', True)
"""

from __future__ import annotations

import argparse

__all__ = ["UsageError", "build_parser", "floats"]


_EPILOG_RUN = """example schedule (JSON or YAML):
  {"dataset": "digits", "seed": 0,
   "stages": [{"classes": 5,  "arch": "vgg11@0.25", "epochs": 15},
              {"classes": 10, "arch": "vgg19@0.25", "epochs": 15}]}
growth inside one run (README, "Growth inside one run: the levers"): "train": {"lr_schedule": "global",
  "carry_optimizer": true, "new_param_lr": 2}, "deepen_init": "copy", "data_growth": "samples" with
  stages[].fraction, "budget_epochs": 16 with "grow_at": [0.25, 0.5] instead of epochs per stage
sparsity before pruning (README, "SSGD"): "train": {"optimizer": "ssgd", "ssgd_strength": 1}, or
  per stage: {"optimizer": "ssgd", "ssgd_strength": 0.5, "weight_decay": 0.005}
writes DIR/result.json, DIR/stage{i}.pt (weights + arch spec) and DIR/curve.png"""


class UsageError(Exception):
    """A command-line mistake argparse found; ``main`` prints it as one line and returns 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line naming --help instead of a usage block."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _add_common(
    p: argparse.ArgumentParser,
    overwrite: str = "replace the run in --out (the old one stays whole until the new one has finished, then nothing of it remains)",
) -> None:
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--overwrite", action="store_true", help=overwrite)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    from growsearch._version import __version__

    parser = _Parser(
        prog="growsearch",
        description="Cumulative Net2Net training: grow a CNN with its data and count the training cost M.",
    )
    parser.add_argument("--version", action="version", version=f"growsearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="train a cumulative schedule",
        description="Train a cumulative Net2Net schedule stage by stage.",
        epilog=_EPILOG_RUN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("schedule", metavar="SCHEDULE", help="schedule file (.json, .yaml or .yml)")
    p.add_argument("--out", metavar="DIR", help="output directory (required unless --dry-run)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (per stage: classes, arch, resolution, epochs, samples, MACs, M and the growth ops) and the total M, without training or writing anything",
    )
    p.add_argument(
        "--baseline",
        metavar="FRONTIER_DIR",
        help="the --out of `growsearch baseline`: print and store the iso-accuracy M ratio against its frontier, and draw the run over it in curve.png",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        metavar="F",
        help="validation share of each class's training images (default: the schedule's train.val_fraction, 0.1)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed run in --out after its last finished stage (same schedule file)",
    )
    p.add_argument(
        "--all-cores",
        action="store_true",
        help="ignore the schedule's threads (a search's best schedule records its trials' count, so a re-run reproduces them) and use torch's default",
    )
    _add_common(p)

    p = sub.add_parser(
        "baseline",
        help="train from scratch at several budgets: the frontier every saving is measured against",
        description="Train each reference from scratch on all classes, once per budget (epochs), each with its learning "
        "rate warmed up and decayed to zero at the end of that budget; select on the validation split. Writes "
        "DIR/frontier.json, DIR/frontier.png and every budget's run under DIR/runs/ (a single --epochs run: DIR/result.json "
        "and DIR/stage1.pt, a one-point frontier).",
        epilog="example: growsearch baseline --data digits --arch vgg19@0.25 --budgets 2,4,8,16 --seeds 0,1,2 --out runs/frontier",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="NAME",
        help="dataset: digits, cifar10[:ROOT], cifar100[:ROOT], imagefolder:PATH (folder or .tar.gz), tinyimagenet:PATH, npz:PATH; append ?train_per_class=N for a stratified subset",
    )
    p.add_argument(
        "--arch",
        action="append",
        default=[],
        metavar="ARCH",
        help="reference architectures, e.g. vgg19@0.25, or a family: vgg11@0.25,vgg13@0.25,vgg16@0.25,vgg19@0.25 (or repeat --arch)",
    )
    p.add_argument(
        "--spec-from",
        action="append",
        default=[],
        metavar="RUN_DIR",
        help="also train this run's exact final network (pruned widths and all) from scratch (repeatable)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument(
        "--budgets",
        type=_ints,
        default=None,
        metavar="E,E,...",
        help="epochs per budget, strictly increasing, e.g. 2,4,8,16",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="a single budget (a one-point frontier); default 30 when --budgets is not given",
    )
    p.add_argument("--patience", type=int, default=None, help=argparse.SUPPRESS)  # gone: a plateau run is no budget
    p.add_argument("--seed", type=int, default=None, help="one training seed (default 0)")
    p.add_argument(
        "--seeds", type=_ints, default=None, metavar="S,S,...", help="several seeds: each point is their mean (± std)"
    )
    p.add_argument("--lr", type=float, default=None, help="one peak learning rate, no sweep (default 0.05)")
    p.add_argument(
        "--lrs",
        type=floats,
        default=None,
        metavar="LR,LR,...",
        help="the peak LRs swept per (arch, budget), the best by validation accuracy kept; default with --budgets: half, once and twice --lr",
    )
    p.add_argument("--batch-size", type=int, default=None, help="default 128")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        metavar="F",
        help="validation share of each class's training images (default 0.1; 0: select on the test set)",
    )
    p.add_argument(
        "--optimizer",
        choices=("sgd", "ssgd"),
        default=None,
        help="sgd (default) or ssgd, sparsity-promoting SGD (README, SSGD): the same recipe a schedule's train.optimizer sets",
    )
    p.add_argument(
        "--ssgd-strength",
        type=float,
        default=None,
        metavar="S",
        help="with --optimizer ssgd: the reweighting strength in (0, 1] (default 1)",
    )
    p.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        metavar="D",
        help="weight decay on conv/linear weights in [0, 1] (default 5e-4; SSGD zeroes what it shrinks)",
    )
    p.add_argument(
        "--resolutions",
        type=_ints,
        default=(),
        metavar="R,R,...",
        help="also train each reference with progressive resizing at these image sides, e.g. 16,24,32 (one LR schedule and optimizer state across the switches): "
        "the from-scratch recipe a schedule that grows its resolution must beat",
    )
    p.add_argument(
        "--switch-at",
        type=floats,
        default=(),
        metavar="F,F,...",
        help="with --resolutions: the fractions of each budget at which the next size starts, e.g. 0.5,0.75",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the budget runs already finished in DIR with the same settings, train the rest",
    )
    _add_common(p, overwrite="replace a frontier already in --out")

    p = sub.add_parser(
        "search",
        help="search for the cheapest schedule at iso-accuracy (Optuna + Ray Tune)",
        description="Train the space's from-scratch frontier (its budgets, each decayed to zero), then let Optuna propose "
        "schedules that Ray Tune trains; minimise M / M_scratch(target) subject to validation accuracy ≥ target, where "
        "target = the frontier's best validation accuracy − tolerance (--baseline: use a frontier trained before). Writes DIR/frontier/, DIR/best_schedule.json, "
        "DIR/trials.csv, DIR/pareto.png, the best trained network as Optuna artifacts (DIR/artifacts/; `growsearch export -o FOLDER` fetches it) and the Optuna study (DIR/study.db unless --storage).",
    )
    p.add_argument("space", metavar="SPACE", help="a space name (" + ", ".join(_spaces()) + ") or a YAML file")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--trials", type=int, default=None, help="trial budget (default: the space's)")
    p.add_argument(
        "--cost",
        default="M",
        metavar="NAME",
        help="what the ratio divides: M (training MACs, default), wall_s (wall-clock seconds), family (a space with a shrink block: "
        "M over the sum of every subnet's from-scratch M at its own target; feasible when every subnet reaches it), or a cost "
        "registered with growsearch.search.judge.register_cost",
    )
    p.add_argument("--storage", metavar="URL", default=None, help="Optuna storage URL (default sqlite:///DIR/study.db)")
    p.add_argument("--study", metavar="NAME", default=None, help="study name (default: the space's name)")
    p.add_argument(
        "--backend",
        choices=["optuna", "ray"],
        default=None,
        help="optuna: trials in local worker processes driven by Optuna, no Ray and no listening socket; "
        "ray: Ray Tune trials on a local Ray or the cluster at --address/$RAY_ADDRESS, whose servers listen on "
        "every interface (default: ray when --address or $RAY_ADDRESS is set, else optuna)",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        default=None,
        help="an existing Ray cluster, e.g. 10.0.0.5:6379 (implies --backend ray; default: $RAY_ADDRESS)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue a study whose driver was stopped (its original --trials budget carries over)",
    )
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial, fractions allowed (default 0)")
    p.add_argument(
        "--max-failures", type=int, default=2, help="retries of a failed trial from its last stage (default 2)"
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        metavar="F",
        help="validation share of each class's training images (default: the space's train.val_fraction, 0.1)",
    )
    p.add_argument(
        "--baseline",
        metavar="FRONTIER_DIR",
        default=None,
        help="compare with this frontier (the --out of `growsearch baseline` on the space's dataset and split) instead of training the space's budgets",
    )
    p.add_argument(
        "--storage-path",
        metavar="PATH_OR_URI",
        default=None,
        help="Ray Tune's RunConfig(storage_path): a folder every node sees (multi-node Ray needs one; it also holds the prefix cache) or an s3://-style URI (default DIR/tune)",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="also show Ray's and Tune's own console output (default: growsearch's lines only)",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="the same study on every run on the same machine: trials proposed in fixed batches, each batch's results told in trial order "
        "once it has finished; trials stop and reuse cached stages only by what was known when they were proposed",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        metavar="N",
        help="trials per deterministic batch (default: as many as run at once)",
    )
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        metavar="N",
        help="run at most N trials at once (default: as many as the resources allow)",
    )
    p.add_argument(
        "--references",
        action="store_true",
        help="start the study with the from-scratch schedule at the frontier's most accurate budget (feasible by construction) and the "
        "paper's two-stage schedule, before the sampler takes over",
    )
    p.add_argument(
        "--confirm",
        type=int,
        default=None,
        metavar="K",
        help="before naming a best, re-run the K cheapest feasible trials on more seeds and choose on their mean validation "
        "accuracy (default 3, or the trial budget if smaller; 0 with --fgsm-eps or --cost family; 0 turns it off)",
    )
    p.add_argument(
        "--confirm-seeds",
        type=int,
        default=2,
        metavar="S",
        help="seeds each confirmed trial trains on beyond its own (default 2: three seeds per candidate)",
    )
    p.add_argument(
        "--fgsm-eps",
        type=float,
        default=None,
        metavar="EPS",
        help="measure each trial's FGSM accuracy with mutual inference at EPS (pixel units, e.g. 0.02); stored as its fgsm_mi_acc",
    )
    p.add_argument(
        "--fgsm-objective",
        action="store_true",
        help="maximise fgsm_mi_acc as a second objective (Pareto front; turns the M-based early stop off)",
    )
    p.add_argument(
        "--min-fgsm-acc",
        type=float,
        default=None,
        metavar="ACC",
        help="constraint: feasible trials also need fgsm_mi_acc ≥ ACC",
    )

    p = sub.add_parser(
        "robustness",
        help="noise, ablation, FGSM with mutual inference, adversarial detection",
        description="Evaluate a run's final network, its mutual inference over every stage network, and (with "
        "--baseline) the from-scratch baseline: accuracy under Gaussian input noise and random unit ablation, FGSM "
        "(Foolbox) accuracy, and no-decision detection of FGSM inputs (TNR vs FNR). Writes RUN_DIR/robustness.json "
        "and noise.png, ablation.png, fgsm.png, tnr_fnr.png.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the --out of `growsearch run` (needs its stage{i}.pt)")
    p.add_argument(
        "--baseline", metavar="DIR", default=None, help="the --out of `growsearch baseline` on the same dataset"
    )
    p.add_argument(
        "--eps",
        type=floats,
        default=None,
        metavar="E,E,...",
        help="FGSM epsilons, pixel units of [0,1] images (default 0,0.005,0.01,0.02,0.05,0.1)",
    )
    p.add_argument(
        "--noise",
        type=floats,
        default=None,
        metavar="S,S,...",
        help="Gaussian noise std levels, pixel units (default 0,0.05,0.1,0.2,0.3,0.4,0.5)",
    )
    p.add_argument(
        "--ablation",
        type=floats,
        default=None,
        metavar="F,F,...",
        help="fractions of conv units zeroed (default 0,0.1,...,1)",
    )
    p.add_argument("--draws", type=int, default=3, help="random draws per noise/ablation level (default 3)")
    p.add_argument(
        "--weights",
        default="acc",
        metavar="acc|uniform|W,W,...",
        help="MI vote weights: each stage's accuracy (default), uniform, or one per stage",
    )
    p.add_argument(
        "--members",
        default="stages",
        choices=["stages", "subnets", "all_subnets"],
        help="mutual inference's members: every stage network (default), or a shrink run's subnets (its validation Pareto front, or all), the full network last",
    )
    p.add_argument(
        "--rule",
        default="known",
        choices=["known", "plain"],
        help="MI vote: count a class's vote share among the stages that know it (default), or plain weighted majority",
    )
    p.add_argument(
        "--detect-eps", type=float, default=0.02, help="FGSM epsilon of the detection (TNR/FNR) inputs (default 0.02)"
    )
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help="evaluate a seeded random subset of this many test images (default all)",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the noise and ablation draws and --samples (default 0)")
    _add_common(p, overwrite="replace an existing RUN_DIR/robustness.json")

    p = sub.add_parser(
        "export",
        help="write a study's best schedule (and its trained network) for re-use",
        description="Write the cheapest feasible schedule of an Optuna study, in the format `growsearch run` takes.",
    )
    p.add_argument(
        "--storage",
        required=True,
        metavar="URL",
        help="e.g. sqlite:///runs/search/study.db, or an Optuna journal file; opened read-only",
    )
    p.add_argument("--study", required=True, metavar="NAME")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE_OR_DIR",
        help="a .json/.yaml file (the schedule), or a folder: best_schedule.json plus the trained network.pt and result.json the study stored as artifacts",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export (only files growsearch wrote; a file of yours is never replaced)",
    )

    p = sub.add_parser(
        "subnets",
        help="a shrink run's family: its table, the family M ratio, and one subnet cut out",
        description="Print the subnets of a run whose schedule has a shrink block (each with its BatchNorm recalibrated; * marks the "
        "validation Pareto front). With --baseline, price each subnet on a from-scratch frontier of its own architecture and print the "
        "family ratio (the run's M over the sum of the chosen subnets' M_scratch). With --spec or --max-macs, cut that subnet into -o DIR "
        "as a standalone network (subnet.pt, result.json) and score it again. -o DIR also gets family.json and family.png.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the --out of `growsearch run` with a shrink block")
    pick = p.add_mutually_exclusive_group()
    pick.add_argument(
        "--spec", metavar="DEPTH:WIDTH", help="the subnet to cut, e.g. vgg13:0.5 (full:1 is the whole network)"
    )
    pick.add_argument(
        "--max-macs",
        type=float,
        metavar="X",
        help="cut the most accurate subnet (on validation) needing at most X MACs per image",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="FRONTIER_DIR",
        help="a `growsearch baseline` --out with references of the subnets' archs (repeatable)",
    )
    p.add_argument(
        "--chosen",
        choices=["pareto", "all"],
        default="pareto",
        help="the subnets the family ratio pays for: the validation Pareto front (default) or all",
    )
    p.add_argument(
        "-o",
        "--out",
        metavar="DIR",
        default=None,
        help="write family.json and family.png here, and the cut subnet with --spec/--max-macs",
    )
    _add_common(p, overwrite="replace the subnet and family files in -o DIR")

    p = sub.add_parser(
        "demo",
        help="the embedded default: a short, deterministic search on digits",
        description="A short search on scikit-learn's digits with the default space (digits_vgg), deterministic (the same "
        "numbers on every run on the same machine): a from-scratch frontier of VGG19@0.25 and VGG11@0.25 at 3 and 6 epochs (2 seeds), "
        "then TRIALS schedules, the first two the from-scratch schedule at the frontier's most accurate budget (feasible by "
        "construction) and the paper's 5→10 schedule. Prints the best schedule, its iso-accuracy M ratio against the frontier "
        "(below 1 a saving, above 1 a loss), whether any grown schedule beat training from scratch, and the export and "
        "optuna-dashboard commands.",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="output directory (default: runs/demo; an earlier demo there is replaced)",
    )
    p.add_argument("--trials", type=int, default=6, help="trials (default 6: about 2.5 minutes in all on a 2-core CPU)")
    return parser


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers, e.g. 2,4,8,16; got {text!r}"
        ) from None


def floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, e.g. 0,0.01,0.02; got {text!r}") from None


def _spaces() -> list[str]:
    from growsearch.search.space import list_spaces

    return list_spaces()
