"""Optuna + Ray Tune search for the cheapest cumulative schedule at iso-accuracy.

Each trial runs one cumulative schedule, in a local worker process (``--backend optuna``,
:mod:`growsearch.search.local`) or as a Ray Tune trial (``--backend ray``); Optuna (asked and
told by :class:`growsearch.search.tune.Searcher`, define-by-run) proposes it. A study first trains its from-scratch frontier (the space's
``budgets``, each fully decayed; :mod:`growsearch.train.frontier`) and stores it on the study. The
target is the frontier's best validation accuracy − tolerance; the objective is
``M_trial / M_scratch(target)`` (the iso-accuracy M ratio), minimised subject to
``val_acc ≥ target``. Nothing here reads test accuracy to choose: trials report it, the
summary prints it next to validation accuracy. The constraint reaches Optuna for real:
Ray's searcher does not copy reported metrics into Optuna, so ours sets the user attributes
and the trial's constraint (``Trial.set_constraint``; ``constraints_func`` before Optuna 5)
before ``tell``, where TPE reads them.

Example:
    >>> from growsearch.search.driver import run_search  # doctest: +SKIP
    >>> result = run_search("digits_vgg", out_dir="runs/search", trials=8)  # doctest: +SKIP
    >>> result.best_schedule.to_dict()  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import os
import time
from contextlib import ExitStack
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from growsearch._io import held, shown, shown_url
from growsearch.plan.schedule import Schedule
from growsearch.search.cluster import init_ray, ray_runner
from growsearch.search.confirm import CONFIRMED, DEFAULT_CONFIRM, DEFAULT_CONFIRM_SEEDS, check_confirm, numbers
from growsearch.search.confirm import confirm as run_confirmation
from growsearch.search.judge import FGSM_METRIC, Judge, SearchError, SearchInterrupted, get_cost
from growsearch.search.optuna import default_sampler
from growsearch.search.plots import plot_pareto
from growsearch.search.space import SearchSpace, load_space
from growsearch.search.study import (
    enqueue,
    ensure_frontier,
    given_frontier,
    note_best,
    reference_schedules,
    split_data,
    study_names,
)
from growsearch.train.frontier import Frontier

__all__ = ["SearchResult", "run_search"]


@dataclass
class SearchResult:
    study_name: str
    storage: str
    judge: Judge  # what every trial was judged by: the frontier, tolerance, target, cost
    best_schedule: Schedule | None  # cheapest feasible schedule, None if no trial was feasible
    best: dict | None  # its user attributes (M, the ratio, val_acc, test_acc, ...)
    trials: int  # finished trials in the study
    spent_M: int  # M the search actually trained (prefix reuse counted once), frontier excluded
    charged_M: int  # Σ trial M: what the same trials would cost without prefix reuse
    out_dir: Path
    robust: dict | None = None  # the FGSM settings: eps, objective, min_acc (None: not measured)
    pareto: list[dict] | None = (
        None  # with the FGSM objective: feasible trials no other beats on both M and FGSM-MI accuracy
    )
    best_number: int | None = None  # the best feasible trial's number (0-based, as Optuna counts)
    best_grown: dict | None = (
        None  # the cheapest feasible schedule of more than one stage: number, ratio, val_acc, test_acc
    )
    deterministic: bool = False  # proposed in fixed batches, told in trial order (see run_search)
    confirmed: dict | None = None  # the confirmation's record (growsearch.search.confirm), None: not confirmed
    val_size: int = 0  # validation images every choice read

    @property
    def frontier(self) -> Frontier:
        return self.judge.frontier

    @property
    def target_acc(self) -> float:
        return self.judge.target

    @property
    def metric(self) -> str:
        return self.judge.metric


def _storage_url(storage: str | None, out_dir: Path) -> str:
    return storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"


def run_search(
    space: str | Path | SearchSpace,
    *,
    out_dir: str | Path,
    trials: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    address: str | None = None,
    resume: bool = False,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    max_failures: int = 2,
    fgsm_eps: float | None = None,
    fgsm_objective: bool = False,
    min_fgsm_acc: float | None = None,
    val_fraction: float | None = None,
    frontier: str | Path | Frontier | None = None,
    cost: str = "M",
    storage_path: str | None = None,
    verbose: bool = False,
    deterministic: bool = False,
    batch: int | None = None,
    max_concurrent: int | None = None,
    references: bool = False,
    confirm: int | None = 0,
    confirm_seeds: int = DEFAULT_CONFIRM_SEEDS,
    backend: str | None = None,
) -> SearchResult:
    """Search ``space`` for the cheapest schedule whose validation accuracy reaches the
    frontier's best − tolerance; the objective is M / M_scratch(target).

    Args:
        space: a space name (``"digits_vgg"``), a YAML path, or a ``SearchSpace``.
        out_dir: where the study database (default storage), Tune's experiment, the prefix
            cache, ``best_schedule.json``, ``trials.csv`` and ``pareto.png`` go.
        trials: trial budget (default: the space's ``trials``). With ``resume`` the study's
            original budget carries over and this is ignored.
        storage: an SQLAlchemy URL for Optuna (default ``sqlite:///OUT/study.db``).
        study_name: default: the space's name.
        address: an existing Ray cluster (``ray start --head``'s address); default: a local Ray.
        resume: continue a study whose driver was stopped; without it an existing study is an error.
            A resume reads the Optuna study, never Tune's saved experiment state (pickles, which
            run code when read): the trials the stop interrupted are proposed again, and their
            finished stages load from the prefix cache.
        cpus_per_trial: Ray CPUs of one trial (fractions allowed).
        gpus_per_trial: Ray GPUs of one trial (fractions allowed).
        max_failures: retries of a failed trial (from its last stage checkpoint).
        fgsm_eps: measure every trial's FGSM accuracy at this ε (pixel units) with mutual
            inference over its stage networks (the attacker knows only the final network); stored
            as the trial's ``fgsm_mi_acc`` user attribute (and ``fgsm_acc``: the final net alone).
        fgsm_objective: make ``fgsm_mi_acc`` a second objective (maximised) next to the M ratio.
            Optuna then searches a Pareto front, so the M-based early stop is off (a costlier
            schedule may still be Pareto-optimal).
        min_fgsm_acc: a constraint: feasible trials also need ``fgsm_mi_acc ≥ min_fgsm_acc``.
        val_fraction: override the space's ``train.val_fraction`` (the validation split every
            choice reads; 0 selects on the test set).
        cost: what the ratio divides: a registered cost (``"M"``, training MACs, the default;
            ``"wall_s"``, wall-clock seconds; :func:`growsearch.search.judge.register_cost`).
        frontier: compare with this frontier (a ``growsearch baseline --out`` folder or a
            :class:`~growsearch.train.frontier.Frontier`) instead of training the space's budgets; it
            must have read the space's dataset, classes and validation split. Its training cost
            is then not part of the search's ``spent_M``.
        storage_path: Tune's ``RunConfig(storage_path=...)``: a folder every node sees (multi-node
            Ray needs shared storage) or an object-store URI (``s3://...``). Default ``OUT/tune``.
            A folder also holds the stage-prefix cache, so every node reuses every prefix.
        verbose: also show Ray's and Tune's own console output (off: growsearch's lines only).
        deterministic: the same study on every run of the same command on the same machine: the
            sampler proposes trials in fixed batches (``batch``) and sees each batch's results in
            trial order once all of it has finished (:class:`growsearch.search.tune.InOrderBatches`);
            a trial stops by the best result known when it was proposed and reuses only the
            prefix-cache entries that existed then. Costs some idle time at the end of a batch.
        batch: trials per deterministic batch (default: as many as the cluster runs at once;
            recorded on the study). A larger batch keeps more workers busy, a smaller one lets
            the sampler learn sooner.
        max_concurrent: run at most this many trials at once (Tune's ``max_concurrent_trials``;
            default: as many as the resources allow). With ``deterministic`` it changes only the
            time a search takes, not its study.
        references: start the study with the from-scratch schedule at the frontier's most
            accurate budget (feasible by construction), the frontier's cheapest network, the
            paper's two-stage schedule and its best lever presets
            (:func:`growsearch.search.study.reference_schedules`), in that order and as many as
            leave the sampler one trial, enqueued before the sampler takes over, so the study
            always has a feasible trial and says whether growth beat them.
        confirm: before naming a best, re-run the ``confirm`` cheapest feasible trials on
            ``confirm_seeds`` more seeds each; the best is then the cheapest whose mean validation
            accuracy still reaches the target (:mod:`growsearch.search.confirm`). None: the
            command's default (the top 3, or as many trials as there are; 0 with FGSM or a family cost).
        confirm_seeds: seeds each confirmed trial trains on beyond its own.
        backend: ``"optuna"``: the trials run in local worker processes driven by Optuna
            directly (:mod:`growsearch.search.local`): no Ray, no listening socket. ``"ray"``: Ray
            Tune trials on a local Ray or the cluster at ``address``. Default: ``"ray"`` when
            ``address`` or ``$RAY_ADDRESS`` names a cluster, else ``"optuna"``. The same study either way.
    """
    import optuna

    from growsearch.search.tune import trial_context, tune_pieces

    sp = space if isinstance(space, SearchSpace) else load_space(space)
    if val_fraction is not None:
        from dataclasses import replace

        sp = replace(sp, train=replace(sp.train, val_fraction=val_fraction))
        sp.validate()
    # Every check that needs no training runs before anything is written: the arguments, the
    # output folder, the dataset, the Ray cluster and its resources, then the storage.
    out = Path(out_dir).resolve()
    name = study_name or sp.name or "growsearch"
    url = _storage_url(storage, out)
    budget = sp.trials if trials is None else trials  # not `trials or ...`: --trials 0 is an error, not the default
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise SearchError(f"--trials must be a whole number ≥ 1, got {budget!r}")
    if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 0:
        raise SearchError(
            f"--max-failures must be a whole number ≥ 0 (retries of a failed trial), got {max_failures!r}"
        )
    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise SearchError("--cpus-per-trial must be > 0 and --gpus-per-trial ≥ 0")
    for flag, v in (("--batch", batch), ("--max-concurrent", max_concurrent)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise SearchError(f"{flag} must be a whole number ≥ 1, got {v!r}")
    if batch is not None and not deterministic:
        raise SearchError(
            "--batch sets the size of a deterministic search's batches: add --deterministic, or drop --batch"
        )
    backend = _backend(backend, address, storage_path)
    robust = _robust_settings(fgsm_eps, fgsm_objective, min_fgsm_acc)
    family = get_cost(cost).family  # an unknown cost is one line now, not in every trial
    check_confirm(confirm, confirm_seeds, budget, fgsm=robust is not None, family=family)
    if confirm is None:
        confirm = 0 if robust is not None or family else min(DEFAULT_CONFIRM, budget)
    if family and sp.shrink is None:
        raise SearchError(
            f"--cost {cost} prices a shrink run's subnets, and space {sp.name} has no shrink block: add one (shrink: {{depths: [...], widths: [...]}}) or use --cost M"
        )
    from growsearch.train.results import check_out_dir

    check_out_dir(
        out, overwrite=True, replaces=False
    )  # a file, a user's file under an output name, a folder that cannot be written
    ds = split_data(sp)
    given = given_frontier(frontier, ds)
    if (sp.resolutions or sp.baseline_resolutions) and ds.image_size is None:
        h, w = ds.image_shape
        raise SearchError(
            f"resolutions: {sp.dataset}'s images are {w}x{h}, and resolution stages train at a square side: drop resolutions, or decode square with ?size=N"
        )
    if sp.resolutions and max(sp.resolutions) > ds.image_size:
        raise SearchError(
            f"resolutions: {max(sp.resolutions)} px is above {sp.dataset}'s native {ds.image_size} px: use at most {ds.image_size}"
        )
    if sp.baseline_resolutions and max(sp.baseline_resolutions) > ds.image_size:
        raise SearchError(
            f"baseline_resolutions: {max(sp.baseline_resolutions)} px is above {sp.dataset}'s native {ds.image_size} px: use at most {ds.image_size}"
        )
    if not verbose:
        # Tune's newer console engine ignores RunConfig(verbose=0) (its setup box, TensorBoard
        # hint, result paths); the classic reporter honours it. Ray's own INFO/WARNING lines at
        # start-up are muted through its log level.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    sqlite_file = Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None
    if resume and sqlite_file is not None and not sqlite_file.is_file():  # opening it to look would create it
        raise SearchError(f"nothing to resume: no database at {sqlite_file} (is --storage or --out mistyped?)")
    if sqlite_file is not None and not sqlite_file.parent.is_dir() and sqlite_file.parent.resolve() != out:
        raise SearchError(
            f"--storage {url}: the folder {sqlite_file.parent} does not exist: create it, or fix the path"
        )
    uri = storage_path is not None and "://" in storage_path
    tune_root = storage_path if uri else str(Path(storage_path).resolve() if storage_path else out / "tune")
    cache_dir = out / "prefix_cache" if storage_path is None or uri else Path(tune_root) / "prefix_cache"

    def check_out() -> None:  # before anything starts, and again inside DIR's lock
        check_out_dir(
            out, overwrite=True, replaces=False
        )  # a file, a user's file under an output name, a folder that cannot be written
        existing = study_names(url)
        if name in existing and not resume:
            raise SearchError(
                f"study {name!r} already exists in {url}: pass --resume to continue it, or --study NEW_NAME"
            )
        if resume and name not in existing:
            raise SearchError(f"nothing to resume: no study {name!r} in {url}")

    check_out()
    if resume:
        _check_same_space(optuna.load_study(study_name=name, storage=url), sp)
    if backend == "ray":
        slots = init_ray(address, cpus_per_trial, gpus_per_trial, quiet=not verbose)
    else:
        from growsearch.search.local import LocalPools, local_slots, pool_runner

        slots = local_slots(cpus_per_trial, gpus_per_trial)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["minimize", "maximize"] if fgsm_objective else ["minimize"]
    if resume and (was := optuna.load_study(study_name=name, storage=url).user_attrs.get("robust")) != robust:
        raise SearchError(
            f"study {name!r} was started with FGSM settings {was}, not {robust}: "
            "resume it with the same --fgsm-eps/--fgsm-objective/--min-fgsm-acc, or start a new --study"
        )
    if (
        resume
        and given is not None
        and optuna.load_study(study_name=name, storage=url).user_attrs.get("frontier") not in (None, given.to_dict())
    ):
        raise SearchError(
            f"study {name!r} already compares with another frontier: resume it without --baseline, or start a new --study"
        )
    # every check has passed: from here on the search writes, holding DIR against any other command
    with held(out, SearchError, check=check_out), ExitStack() as stack:
        out.mkdir(parents=True, exist_ok=True)
        study = optuna.create_study(storage=url, study_name=name, directions=directions, load_if_exists=resume)
        study.set_user_attr("space", sp.to_dict())
        study.set_user_attr("robust", robust)
        study.set_user_attr(CONFIRMED, None)  # a confirmation holds for the trials it saw: done again at the end
        threads = max(1, int(cpus_per_trial))
        workers = min(slots, max_concurrent or slots)
        if backend == "ray":
            runner, where = (
                ray_runner(cpus_per_trial, gpus_per_trial),
                f"{workers} Ray worker(s) of {threads} thread(s)",
            )
        else:
            pools = stack.enter_context(LocalPools(workers))
            runner, where = pool_runner(pools), f"{workers} local worker process(es) of {threads} thread(s), no Ray"
        front = ensure_frontier(
            study,
            sp,
            out,
            ds,
            given,
            threads=threads,
            prefix_cache=cache_dir,
            runner=runner,
            workers=where,
            family=family,
        )
        judge = Judge(front, sp.tolerance, cost=cost, min_fgsm_acc=min_fgsm_acc)
        if references and not resume and family:
            print(
                "search: --references enqueues from-scratch and paper schedules, which train no family: none enqueued",
                flush=True,
            )
        elif references and not resume:
            refs = reference_schedules(sp, front, judge.target, ds.num_classes, ds.image_size)
            # in their order of importance, as many as leave the sampler one trial (no trial left waiting)
            enqueue(study, refs[: max(1, budget - 1)], sp, ds.num_classes)
        if deterministic:
            batch = batch or (study.user_attrs.get("batch") if resume else None) or workers
            study.set_user_attr("batch", batch)

        # Tune saves its experiment state every 10 s or more by default; ours is small, and a
        # state closer to Optuna's storage means less to reconcile after a killed driver.
        os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
        print(
            f"search: {budget} trials of {name}, target validation accuracy {judge.target:.4f}, {judge.denominator} {judge.ref_cost:.4g}; "
            f"watch with: optuna-dashboard {shown_url(url)} --artifact-dir {shown(out / 'artifacts')}",
            flush=True,
        )
        run_name = name
        if resume:
            # Tune's saved experiment state is pickles that run code when read: a resume never reads
            # it. The Optuna study is what was done; the trials the driver's death interrupted are
            # proposed again (their finished stages load from the prefix cache), by a fresh Tuner.
            budget, run_name = _resume(study, name)
        else:
            study.set_user_attr("trials", budget)  # the budget a resume carries over
        remaining = budget - len(_finished(study))
        pieces = tune_pieces(
            sp,
            front,
            storage=url,
            cache_dir=cache_dir,
            trials=budget,
            study_name=name,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            fgsm_eps=fgsm_eps,
            min_fgsm_acc=min_fgsm_acc,
            fgsm_objective=fgsm_objective,
            deterministic=deterministic,
            batch=batch,
            artifacts=out / "artifacts",
            sampler=default_sampler(sp.seed, budget),
            cost=cost,
            dataset=ds,
            remaining=remaining,
            local=backend == "optuna",
        )
        tune_dir = f"{tune_root.rstrip('/')}/{run_name}" if uri else Path(tune_root) / run_name
        t0 = time.perf_counter()
        if backend == "optuna":
            ran, failed = _run_local(
                pools,
                pieces,
                trial_context(pieces.judge, cache_dir, cpus_per_trial, fgsm_eps),
                max(remaining, 0),
                workers,
                max_failures,
            )
            first = "see the trial lines above"
        else:
            grid = _run_tune(pieces, remaining, max_concurrent, run_name, tune_root, verbose, max_failures)
            ran, failed = len(grid), grid.num_errors if len(grid) else 0
            first = str(grid.errors[0]).strip().splitlines()[-1] + f" (logs under {tune_dir})" if failed else ""
        if ran and failed == ran:
            raise SearchError(f"all {ran} trials failed; the last line of the first error: {first}")
        study = optuna.load_study(study_name=name, storage=url)
        running = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
        if remaining > 0 and (running or ran < remaining):  # Ctrl-C or SIGTERM: Tune ends fit() early, without a word
            done = len(_finished(study))
            raise SearchInterrupted(
                f"stopped after {done} of {budget} trials ({len(running)} cut short): nothing is chosen from an unfinished search; "
                f"continue it with: growsearch search {sp.name or 'SPACE'} --out {shown(out)} --resume"
                + (f" --storage {shown_url(url)}" if storage else "")
                + (f" --study {name}" if study_name else "")
            )
        if confirm:
            run_confirmation(
                study,
                judge,
                confirm,
                confirm_seeds,
                prefix_cache=cache_dir,
                threads=threads,
                runner=runner,
                artifacts=out / "artifacts",
            )
            study = optuna.load_study(study_name=name, storage=url)
        result = _summarise(study, judge, url, out, robust)
        result.val_size = len(ds.y_val)
        note_best(study, _dashboard_note(result))
        print(f"search: {result.trials} trials in {time.perf_counter() - t0:.0f} s", flush=True)
        return result


def _backend(backend: str | None, address: str | None, storage_path: str | None) -> str:
    """The backend a search runs on (``run_search``'s ``backend``), or ``SearchError`` naming the fix."""
    cluster = address or os.environ.get("RAY_ADDRESS")
    if backend is None:
        return "ray" if cluster else "optuna"
    if backend not in ("ray", "optuna"):
        raise SearchError(f"--backend must be ray or optuna, got {backend!r}")
    if backend == "optuna" and address:
        raise SearchError("--address names a Ray cluster, and --backend optuna runs without Ray: drop one of them")
    if backend == "optuna" and storage_path and "://" in storage_path:
        raise SearchError(
            f"--storage-path {storage_path}: an object store is Ray Tune's; --backend optuna needs a folder"
        )
    return backend


def _run_tune(
    pieces: Any,
    remaining: int,
    max_concurrent: int | None,
    run_name: str,
    tune_root: str,
    verbose: bool,
    max_failures: int,
) -> Any:
    """The Ray backend: the trials as a Ray Tune experiment. Its ResultGrid ([] when none is left)."""
    from ray import tune

    if remaining <= 0:
        return []
    tuner = tune.Tuner(
        pieces.trainable,
        tune_config=tune.TuneConfig(
            search_alg=pieces.search_alg, num_samples=remaining, max_concurrent_trials=max_concurrent
        ),
        run_config=tune.RunConfig(
            name=run_name,
            storage_path=tune_root,
            stop=pieces.stop,
            verbose=1 if verbose else 0,
            failure_config=tune.FailureConfig(max_failures=max_failures),
            callbacks=pieces.callbacks,
        ),
    )
    try:
        return tuner.fit()
    except KeyboardInterrupt:  # SIGTERM (Ctrl-C, Tune ends fit() itself): the caller says how far it got
        return []


def _run_local(pools: Any, pieces: Any, ctx: dict, remaining: int, workers: int, max_failures: int) -> tuple[int, int]:
    """The Optuna backend: the trials in worker processes from ``pools``. (finished, failed); on
    Ctrl-C the trials in flight are cut short (still RUNNING in the study, for --resume; the
    search's ExitStack shuts the pools down)."""
    from growsearch.search.local import run_local_trials

    try:
        return run_local_trials(
            pools,
            pieces.search_alg,
            ctx,
            remaining,
            workers=workers,
            max_failures=max_failures,
            lines=pieces.callbacks[0],
        )
    except KeyboardInterrupt:
        return 0, 0


def _dashboard_note(res: SearchResult) -> list[str]:
    """The study's note in optuna-dashboard: the best growsearch chose, how, and why the
    dashboard's own "best trial" card may disagree."""
    m, judge = res.metric, res.judge
    head = f"target validation accuracy {judge.target:.4f} (the frontier's best − {judge.tolerance:g}); {m} = {judge.cost} / {judge.ref_cost:.4g} ({judge.ref['reference']} from scratch)"
    if res.best is None:
        body = "no feasible trial" + (": no candidate held up on more seeds" if res.confirmed else "")
    else:
        n = numbers(res.confirmed, res.best_number, res.best, m)
        seeds = f"mean of {n['seeds']} seeds" if n["seeds"] > 1 else "one seed"
        interval = f" [{n['ci'][0]:.3f}, {n['ci'][1]:.3f}]" if n["ci"] else ""
        body = f"**best feasible: trial number {res.best_number}** ({seeds}, validation {n['val_acc']:.4f}): {m} {n['ratio']:.3f}x{interval}"
    return [
        f"# growsearch: {body}",
        head,
        "The dashboard's best-trial card reads objective values without constraints and can show an "
        "infeasible trial; each trial's constraints (≤ 0: feasible) and this note are what growsearch chose by.",
    ]


def _check_same_space(study: Any, sp: SearchSpace) -> None:
    """A resumed study continues the space it started with (its ``space`` user attribute), or
    ``SearchError`` names what changed: a changed tolerance or range would re-judge the trials."""
    import json

    was = study.user_attrs.get("space")
    if was is None:
        return
    now = json.loads(json.dumps(sp.to_dict()))  # as the study stored it (tuples as lists)
    # a key the study predates reads as its default (a space key added later changes nothing)
    blank = {f.name: f.default for f in fields(SearchSpace) if f.default is not MISSING}
    was = {**json.loads(json.dumps({k: v for k, v in blank.items() if k in now})), **was}
    changed = sorted(k for k in {*was, *now} - {"trials", "name"} if was.get(k) != now.get(k))
    if changed:
        raise SearchError(
            f"study {study.study_name!r} was started with another space ({', '.join(changed[:4])}{', ...' if len(changed) > 4 else ''} "
            "changed): resume it with the space it started with, or start a new --study"
        )


def _robust_settings(eps: float | None, objective: bool, min_acc: float | None) -> dict | None:
    if eps is None:
        if objective or min_acc is not None:
            raise SearchError(
                "--fgsm-objective and --min-fgsm-acc need --fgsm-eps (the FGSM ε to measure at, e.g. 0.02)"
            )
        return None
    if not 0 < eps <= 1:
        raise SearchError(f"--fgsm-eps must be in (0, 1] (pixel units of [0, 1] images), got {eps:g}")
    if min_acc is not None and not 0 <= min_acc <= 1:
        raise SearchError(f"--min-fgsm-acc is an accuracy in [0, 1], got {min_acc:g}")
    return {"eps": float(eps), "objective": bool(objective), "min_acc": min_acc}


def _resume(study: Any, name: str) -> tuple[int, str]:
    """Make ``study`` ready to continue: its trials still running when the driver was stopped are
    marked failed (with the reason) and proposed again, the same parameters or schedule, as the
    study's next trials. Returns the original trial budget and a fresh name for this resume's
    Tune experiment (``NAME-resume-K``)."""
    import optuna

    from growsearch.search.study import FIXED_SCHEDULE

    interrupted = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    # why they failed, on the study (no public Optuna call sets a user attribute on a trial
    # another process asked): the trial numbers each resume found interrupted
    if interrupted:
        was = dict(study.user_attrs.get("interrupted_trials", {}))
        study.set_user_attr(
            "interrupted_trials",
            {**was, str(int(study.user_attrs.get("resumes", 0)) + 1): [t.number for t in interrupted]},
        )
    for t in interrupted:
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        keep = {k: t.user_attrs[k] for k in ("reference", FIXED_SCHEDULE) if k in t.user_attrs}
        study.enqueue_trial(t.params, user_attrs=keep)
    resumes = int(study.user_attrs.get("resumes", 0)) + 1
    study.set_user_attr("resumes", resumes)
    budget = int(study.user_attrs.get("trials", len(study.trials)))
    print(
        f"search: resuming {name}: {len(interrupted)} interrupted trial(s) proposed again, {budget} trials in all",
        flush=True,
    )
    return budget, f"{name}-resume-{resumes}"


def _finished(study: Any) -> list:
    import optuna

    return [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]


def _pareto(trials: list, judge: Judge) -> list[dict]:
    """Feasible trials that no other feasible trial beats on both ratio (lower) and FGSM-MI accuracy (higher)."""
    pts = [(t.user_attrs[judge.metric], t.user_attrs.get(FGSM_METRIC, 0.0), t) for t in judge.feasible(trials)]
    front = [p for p in pts if not any(q[0] <= p[0] and q[1] >= p[1] and (q[0] < p[0] or q[1] > p[1]) for q in pts)]
    return [
        {
            "number": t.number,
            judge.metric: m,
            FGSM_METRIC: a,
            "val_acc": t.user_attrs.get("val_acc"),
            "test_acc": t.user_attrs.get("test_acc"),
        }
        for m, a, t in sorted(front, key=lambda p: p[0])
    ]


def _summarise(study: Any, judge: Judge, url: str, out: Path, robust: dict | None = None) -> SearchResult:
    done = _finished(study)
    best = judge.best(study)
    best_sched = Schedule.from_dict(best.user_attrs["schedule"]) if best else None
    if best_sched is not None:
        best_sched.threads = study.user_attrs.get("threads")  # what its trial trained with: a re-run reproduces it
        best_sched.save(out / "best_schedule.json")
    _write_trials_csv(done, out / "trials.csv", judge.metric)
    plot_pareto(done, judge, out / "pareto.png")
    grown = [t for t in judge.feasible(done) if len(t.user_attrs["schedule"]["stages"]) > 1]
    top = min(grown, key=lambda t: t.user_attrs[judge.metric], default=None)
    best_grown = (
        None
        if top is None
        else {
            "number": top.number,
            **{k: top.user_attrs[k] for k in (judge.metric, "val_acc", "test_acc")},
            "ci": top.user_attrs.get(f"{judge.metric}_ci"),
            "seeds": 1,
        }
    )
    # a confirmed search reads growth on the mean of its seeds: the cheapest grown schedule that
    # held up (a grown trial that did not is no evidence of a saving)
    conf = study.user_attrs.get(CONFIRMED) or {}
    stages = {t.number: len(t.user_attrs["schedule"]["stages"]) for t in done if "schedule" in t.user_attrs}
    held_up = [r for r in conf.get("rows", []) if r["feasible"] and stages.get(r["number"], 1) > 1]
    if held_up:
        r = min(held_up, key=lambda r: r["ratio"])
        n = numbers(conf, r["number"], {}, judge.metric)
        best_grown = {"number": r["number"], judge.metric: n.pop("ratio"), **n}
    return SearchResult(
        study_name=study.study_name,
        storage=url,
        judge=judge,
        best_schedule=best_sched,
        best=dict(best.user_attrs) if best else None,
        trials=len(done),
        best_number=best.number if best else None,
        best_grown=best_grown,
        deterministic="batch" in study.user_attrs,
        confirmed=study.user_attrs.get(CONFIRMED),
        spent_M=sum(int(t.user_attrs.get("spent_M", 0)) for t in done),
        charged_M=sum(int(t.user_attrs.get("M", 0)) for t in done),
        out_dir=out,
        robust=robust,
        pareto=_pareto(done, judge) if robust and robust["objective"] else None,
    )


def _write_trials_csv(trials: list, path: Path, metric: str) -> None:
    cols = [
        "number",
        "state",
        metric,
        f"{metric}_ci",
        f"{metric}_same",
        "M",
        "val_acc",
        "test_acc",
        FGSM_METRIC,
        "feasible",
        "spent_M",
        "reused_stages",
        "wall_s",
        "schedule",
    ]
    from growsearch._io import atomic_path

    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for t in trials:
            a = t.user_attrs
            shape = " ".join(
                f"{s['classes']}:{s['arch']}x{s['epochs']}" for s in a.get("schedule", {}).get("stages", [])
            )
            w.writerow([t.number, t.state.name, *(a.get(c) for c in cols[2:-1]), shape])
