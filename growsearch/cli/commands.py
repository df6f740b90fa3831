"""The ``growsearch`` command.

User mistakes (a bad schedule, a missing dataset, an existing output directory) end with one
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from growsearch.cli.parser import UsageError, build_parser, floats
from growsearch.cli.summaries import family_text, robustness_table, run_summary, search_report

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report it
EXIT_TERMINATED = 143  # SIGTERM
EXIT_NOTHING_FEASIBLE = 3  # a search finished, and no trial reached the target (1 stays a bug's)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is so that its ``finally`` blocks run (locks released)."""


_SIGNALS: list[int] = []  # what stopped the command: SIGTERM, where a library caught what it raised


def _terminated(signum: int, frame: object) -> None:
    _SIGNALS.append(signum)
    raise _Terminated()


# the frontier flags that set a recipe key of the same name (None: not given, the recipe's default)
_TRAIN_FLAGS = ("lr", "batch_size", "val_fraction", "optimizer", "ssgd_strength", "weight_decay")


def _train_cfg(args: argparse.Namespace):
    from growsearch.plan.schedule import TrainConfig

    cfg = TrainConfig()
    for key in _TRAIN_FLAGS:
        if getattr(args, key, None) is not None:
            setattr(cfg, key, getattr(args, key))
    return cfg


def _cmd_run(args: argparse.Namespace) -> int:
    from growsearch.plan.schedule import load_schedule
    from growsearch.train.frontier import load_frontier
    from growsearch.train.run import run_schedule

    sched = load_schedule(args.schedule)
    if args.val_fraction is not None:
        sched.train.val_fraction = args.val_fraction
    if args.all_cores:
        sched.threads = None
    if args.dry_run:
        from growsearch.plan.planner import plan_schedule, plan_table

        print(plan_table(plan_schedule(sched), sched))
        return 0
    if args.out is None:
        from growsearch.errors import GrowsearchError

        raise GrowsearchError("--out DIR is required to train (or pass --dry-run to print the plan only)")
    out = Path(args.out)
    frontier = load_frontier(args.baseline) if args.baseline else None
    result = run_schedule(
        sched,
        out_dir=out,
        overwrite=args.overwrite,
        device=args.device,
        progress=not args.quiet,
        frontier=frontier,
        resume=args.resume,
    )
    print(run_summary(result))
    print(f"wrote {out / 'result.json'}, {out / 'curve.png'} and {len(result.stages)} stage checkpoint(s)")
    return 0


def _cmd_baseline(args: argparse.Namespace) -> int:
    from growsearch.data.dataset import TEST_SELECTION_NOTE
    from growsearch.train.baseline import run_frontier
    from growsearch.train.frontier import FrontierError

    if args.patience is not None:
        raise FrontierError(
            "--patience trains to a plateau, which is no fixed budget: give --budgets (e.g. 2,4,8,16), each decayed to zero"
        )
    if args.budgets is not None and args.epochs is not None:
        raise FrontierError("give either --budgets (several) or --epochs (one), not both")
    if args.seeds is not None and args.seed is not None:
        raise FrontierError("give either --seeds (several) or --seed (one), not both")
    if args.lrs is not None and args.lr is not None:
        raise FrontierError("give either --lrs (a sweep) or --lr (one), not both")
    budgets = args.budgets if args.budgets is not None else [30 if args.epochs is None else args.epochs]
    seeds = args.seeds if args.seeds is not None else [0 if args.seed is None else args.seed]
    cfg = _train_cfg(args)
    lrs = args.lrs
    if (
        lrs is None and args.lr is None and args.epochs is None
    ):  # a frontier's LR is tuned as a search's is; --epochs is one run
        from growsearch.search.space import lr_sweep

        lrs = lr_sweep(cfg.lr)
    front = run_frontier(
        args.data,
        [a.strip() for v in args.arch for a in v.split(",") if a.strip()],  # --arch A,B,C or --arch A --arch B
        budgets,
        specs_from=args.spec_from,
        seeds=seeds,
        lrs=lrs,
        train=cfg,
        out_dir=args.out,
        overwrite=args.overwrite,
        resume=args.resume,
        device=args.device,
        progress=not args.quiet,
        resolutions=args.resolutions,
        switch_at=args.switch_at,
    )
    print(front.table())
    if front.val_fraction == 0:
        print(TEST_SELECTION_NOTE)
    print(f"frontier cost: {front.spent_M:.4g} MACs of training in {front.wall_s:.0f} s (every budget, seed and LR)")
    print(f"wrote {Path(args.out) / 'frontier.json'} and frontier.png")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from growsearch.search.driver import run_search

    res = run_search(
        args.space,
        out_dir=args.out,
        trials=args.trials,
        storage=args.storage,
        study_name=args.study,
        address=args.address,
        resume=args.resume,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_failures=args.max_failures,
        fgsm_eps=args.fgsm_eps,
        fgsm_objective=args.fgsm_objective,
        min_fgsm_acc=args.min_fgsm_acc,
        val_fraction=args.val_fraction,
        frontier=args.baseline,
        storage_path=args.storage_path,
        verbose=args.verbose,
        deterministic=args.deterministic,
        batch=args.batch,
        max_concurrent=args.max_concurrent,
        references=args.references,
        cost=args.cost,
        confirm=args.confirm,
        confirm_seeds=args.confirm_seeds,
        backend=args.backend,
    )
    print(search_report(res))
    return 0 if res.best_schedule is not None else EXIT_NOTHING_FEASIBLE


def _cmd_robustness(args: argparse.Namespace) -> int:
    from growsearch.robust.robustness import DEFAULT_ABLATION, DEFAULT_EPS, DEFAULT_NOISE, robustness_report

    weights = args.weights if args.weights in ("acc", "uniform") else floats(args.weights)
    r = robustness_report(
        args.run_dir,
        args.baseline,
        eps=DEFAULT_EPS if args.eps is None else args.eps,
        noise=DEFAULT_NOISE if args.noise is None else args.noise,
        ablation=DEFAULT_ABLATION if args.ablation is None else args.ablation,
        draws=args.draws,
        weights=weights,
        rule=args.rule,
        detect_eps=args.detect_eps,
        samples=args.samples,
        seed=args.seed,
        device=args.device,
        overwrite=args.overwrite,
        progress=not args.quiet,
        members=args.members,
    )
    print(robustness_table(r))
    if r.get("note"):
        print(r["note"])
    print(
        f"wrote {Path(args.run_dir) / 'robustness.json'} and noise.png, ablation.png, fgsm.png, tnr_fnr.png ({r['wall_s']:.0f} s)"
    )
    return 0


def _cmd_subnets(args: argparse.Namespace) -> int:
    from growsearch.errors import GrowsearchError
    from growsearch.train.family import choose_subnet, family_ratio, family_rows, write_subnet
    from growsearch.train.frontier import load_frontier
    from growsearch.train.results import RunResult

    result = RunResult.load(args.run_dir)
    family_rows(result, args.run_dir)
    cutting = args.spec is not None or args.max_macs is not None
    if args.max_macs is not None and not args.max_macs > 0:
        raise GrowsearchError(f"--max-macs must be a positive number of MACs per image, got {args.max_macs:g}")
    if cutting and args.out is None:
        raise GrowsearchError("--spec/--max-macs cut a subnet into a folder: give -o DIR")
    if cutting:
        choose_subnet(
            result, subnet=args.spec, max_macs=args.max_macs, run_dir=args.run_dir
        )  # a subnet the family lacks: before anything is written
    fronts = [load_frontier(d) for d in args.baseline]
    ratio = family_ratio(result, fronts, chosen=args.chosen) if fronts else None
    print(family_text(result, ratio))
    out = Path(args.out) if args.out is not None else None
    if cutting:
        _, row, now = write_subnet(
            args.run_dir, out, subnet=args.spec, max_macs=args.max_macs, device=args.device, overwrite=args.overwrite
        )
        print(
            f"cut {row['subnet']} ({row['arch']}, {row['macs_per_sample']} MACs/image): validation {now['val_acc']:.4f} "
            f"(recorded {row['val_acc']:.4f}), test {now['test_acc']:.4f} (recorded {row['test_acc']:.4f})"
        )
        print(f"wrote {out / 'subnet.pt'} and {out / 'result.json'}")
    if out is not None:
        from growsearch._io import atomic_path, check_owned, held
        from growsearch.train.plots import plot_family

        def check() -> None:  # a file of the user's named family.json; an earlier table only with --overwrite
            check_owned(out, GrowsearchError)
            if (out / "family.json").exists() and not (args.overwrite or cutting):
                raise GrowsearchError(
                    f"{out / 'family.json'} exists: pass --overwrite to replace it, or choose another -o"
                )

        with held(out, GrowsearchError, check=check):
            with atomic_path(out / "family.json") as tmp:
                tmp.write_text(
                    json.dumps(
                        {"run": str(args.run_dir), "shrink": result.shrink, "subnets": result.subnets, "ratio": ratio},
                        indent=2,
                    )
                    + "\n"
                )
            plot_family(result, out / "family.png", ratio=ratio, frontiers=fronts)
        print(f"wrote {out / 'family.json'} and {out / 'family.png'}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from growsearch.search.best import best_text, export

    sched, where, network = export(args.storage, args.study, args.output, overwrite=args.overwrite)
    print(best_text(args.storage, args.study))
    print(f"wrote {where} ({len(sched.stages)} stages, final {sched.stages[-1].arch})")
    if network is not None:
        print(
            f"wrote {network} (the best trial's trained final network; growsearch.load_checkpoint reads it) and {network.with_name('result.json')}"
        )
    elif where != Path(args.output):  # a folder was asked for, and the study holds no network
        print(
            "the study stores no trained network (made before artifacts, or its store is elsewhere): the schedule only"
        )
    return 0


# The demo's settings: the digits_vgg space, cut to finish in under 3 minutes on a slow 2-core CPU
# (the frontier's VGG19@0.25 runs are most of it: at 4 and 8 epochs over 3 seeds it took 3 min 48 s)
DEMO = {
    "epochs": (2, 6),  # per-stage epoch range of the trials
    "budgets": [3, 6],  # the frontier: each budget decayed to zero
    "baseline_seeds": [0, 1],  # two seeds (their mean is the target's basis): a demonstration, not a measurement
    "baseline_lrs": [0.05],  # the recipe's LR only, no sweep: the demo shows the tool, benchmarks/ tune the frontier
    "frontier_archs": ["vgg19@0.25", "vgg11@0.25"],  # the final network and the smallest of the family: both yardsticks
}
DEMO_MARK = "demo.json"  # what marks a folder as an earlier demo's, which a new demo may replace


def _cmd_demo(args: argparse.Namespace) -> int:
    res = run_demo(Path(args.out or "runs/demo"), trials=args.trials)
    print(search_report(res))
    return 0


def run_demo(out: Path, *, trials: int, settings: dict | None = None):
    """The demo's search: the digits_vgg space changed by ``settings`` (default :data:`DEMO`),
    deterministic, starting from the two reference schedules. An earlier demo in ``out`` is
    replaced (only the files it wrote); a file of the user's under one of its output names, or
    another command's output, is refused before anything is written."""
    import json
    from dataclasses import replace

    from growsearch._io import check_owned, held, owned, remove_owned
    from growsearch.errors import GrowsearchError
    from growsearch.search.driver import run_search
    from growsearch.search.space import load_space

    settings = DEMO if settings is None else settings
    if trials < 2:
        raise GrowsearchError(
            f"--trials must be at least 2 (the demo starts from two reference schedules), got {trials}"
        )

    def check() -> None:  # an earlier demo is replaced; a file of the user's is never touched
        check_owned(out, GrowsearchError)
        if any(p.name != DEMO_MARK for p in (out / n for n in owned(out))) and not (out / DEMO_MARK).is_file():
            raise GrowsearchError(
                f"--out {out} holds another growsearch command's output, not an earlier demo's: choose another --out (nothing was changed)"
            )

    check()
    space = replace(load_space("digits_vgg"), **settings)
    space.validate()
    with held(out, GrowsearchError, check=check):  # not while another command (an earlier demo still running) uses it
        if (out / DEMO_MARK).is_file():
            print(f"demo: replacing the earlier demo in {out}/ (only what it wrote)", flush=True)
            remove_owned(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / DEMO_MARK).write_text(json.dumps({"trials": trials, **settings}) + "\n")
        print(
            f"demo: {trials} trials of the digits_vgg space in {out}/, deterministic (same machine, same numbers): "
            f"a from-scratch frontier at {space.frontier_budgets()} epochs, then the from-scratch and paper schedules, then Optuna's proposals",
            flush=True,
        )
        # batches of 3 on 2 workers: the from-scratch reference loads the frontier's run from the
        # prefix cache at once, and its worker goes on with the third trial instead of idling
        return run_search(space, out_dir=out, trials=trials, deterministic=True, batch=3, references=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        print(_one_line(e), file=sys.stderr)
        return EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    import signal

    _SIGNALS.clear()  # this command's own signals (main may run again in one process)
    previous = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM unwinds like Ctrl-C: held folders are released and their manifests written;
        # the caller's own handler comes back when the command ends (main may run inside a program)
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return _dispatch(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; a user's error is one line and exit code 2."""
    from growsearch.errors import GrowsearchError

    handlers = {
        "run": _cmd_run,
        "baseline": _cmd_baseline,
        "search": _cmd_search,
        "export": _cmd_export,
        "demo": _cmd_demo,
        "robustness": _cmd_robustness,
        "subnets": _cmd_subnets,
    }
    # The one error boundary: what a user can fix is one line and exit code 2; a bug is a traceback
    # and a line asking to report it.
    from growsearch.search.judge import SearchInterrupted

    try:
        return handlers[args.command](args)
    except SearchInterrupted as e:
        print(f"growsearch {args.command}: interrupted: {_one_line(e)}", file=sys.stderr)
        return EXIT_TERMINATED if _SIGNALS else EXIT_INTERRUPTED
    except (GrowsearchError, FileNotFoundError) as e:
        print(f"growsearch {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except (
        OSError
    ) as e:  # the paths it was given: permissions, a full disk, a name too long, a file where a folder goes
        from growsearch._io import cut_short

        where = cut_short(f"{e.filename}: ") if e.filename else ""
        print(
            f"growsearch {args.command}: error: {where}{e.strerror or e}: check the path and the disk, or choose another path",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except MemoryError:
        print(
            f"growsearch {args.command}: error: out of memory: lower the batch size, the width, or the data's size (?train_per_class=N)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"growsearch {args.command}: interrupted; completed stage checkpoints are kept", file=sys.stderr)
        return EXIT_TERMINATED if _SIGNALS else EXIT_INTERRUPTED  # _Terminated is raised after SIGTERM is noted
    except Exception:
        import traceback

        traceback.print_exc()
        print(
            f"growsearch {args.command}: this is a bug in growsearch, not in your input: please report it with the command "
            "and the traceback above",
            file=sys.stderr,
        )
        return 1


def _one_line(e: BaseException) -> str:
    from growsearch._io import cut_short

    return cut_short(" ".join(str(e).split("\n")[0].split())) if str(e) else type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
