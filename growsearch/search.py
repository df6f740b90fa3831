"""Optuna + Ray Tune search for the cheapest cumulative schedule at iso-accuracy.

Ray Tune runs one cumulative schedule per trial; Optuna (through Ray's ``OptunaSearch``,
define-by-run) proposes it. A study first trains its from-scratch frontier (the space's
``budgets``, each fully decayed; :mod:`growsearch.frontier`) and stores it on the study. The
target is the frontier's best validation accuracy − tolerance; the objective is
``M_trial / M_scratch(target)`` (the iso-accuracy M ratio), minimised subject to
``val_acc ≥ target``. Nothing here reads test accuracy to choose: trials report it, the
summary prints it next to validation accuracy. The constraint reaches Optuna for real:
Ray's searcher does not copy reported metrics into Optuna, so ours sets the user attributes
and the trial's constraint (``Trial.set_constraint``; ``constraints_func`` before Optuna 5)
before ``tell``, where TPE reads them.

Example:
    >>> from growsearch.search import run_search  # doctest: +SKIP
    >>> result = run_search("digits_vgg", out_dir="runs/search", trials=8)  # doctest: +SKIP
    >>> result.best_schedule.to_dict()  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growsearch.errors import GrowsearchError
from growsearch.frontier import Frontier
from growsearch.schedule import Schedule
from growsearch.space import SearchSpace, load_space, suggest_schedule

__all__ = ["SearchError", "SearchResult", "run_search", "load_best", "export_best"]

METRIC = "M_ratio"
FGSM_METRIC = "fgsm_mi_acc"  # FGSM accuracy of the run's mutual inference (attacker knows the final net)


class SearchError(GrowsearchError, ValueError):
    """A search that cannot start or continue as asked; the message names the fix."""


@dataclass
class SearchResult:
    study_name: str
    storage: str
    frontier: Frontier  # the from-scratch budgets the study compares with
    target_acc: float  # the frontier's best validation accuracy − tolerance
    M_ref: float  # M_scratch(target): the objective's denominator
    ref: dict  # how M_ref was read off the frontier (reference, below/beyond flags)
    best_schedule: Schedule | None  # cheapest feasible schedule, None if no trial was feasible
    best: dict | None  # its user attributes (M, M_ratio, val_acc, test_acc, ...)
    trials: int  # finished trials in the study
    spent_M: int  # M the search actually trained (prefix reuse counted once), frontier excluded
    charged_M: int  # Σ trial M: what the same trials would cost without prefix reuse
    out_dir: Path
    robust: dict | None = None  # the FGSM settings: eps, objective, min_acc (None: not measured)
    pareto: list[dict] | None = None  # with the FGSM objective: feasible trials no other beats on both M and FGSM-MI accuracy


# --- pieces Ray pickles: module level, no closures ---------------------------------------


class _Suggest:
    """Define-by-run space for OptunaSearch: returns the schedule as a plain dict."""

    def __init__(self, space: SearchSpace, num_classes: int):
        self.space, self.num_classes = space, num_classes

    def __call__(self, trial: Any) -> dict:
        return {"schedule": suggest_schedule(trial, self.space, self.num_classes).to_dict()}


def _constraints(frozen_trial: Any) -> list[float]:
    """Optuna < 5's constraints_func: ≤ 0 is feasible (accuracy reached the target)."""
    return list(frozen_trial.user_attrs.get("constraint", [1.0]))


def _user_attrs(result: dict) -> dict:
    if result.get("planned"):  # stopped on its plan: nothing trained, no M ratio of its own
        return {"planned_M": result["planned_M"], "planned_M_ratio": result["planned_ratio"], "final": False}
    out = {}
    for key in (
        "M", "M_ratio", "val_acc", "test_acc", "wall_s", "spent_M", "reused_stages", "feasible", "final", "M_nonzero", "node_id",
        FGSM_METRIC, "fgsm_acc", "fgsm_eps",
    ):
        if key in result and result[key] is not None and not (isinstance(result[key], float) and math.isnan(result[key])):
            out[key] = result[key]
    for key in ("schedule", "stages", "versions"):
        if isinstance(result.get(key), str):
            out[key] = json.loads(result[key])
    if "constraint" in result:
        out["constraint"] = [float(result["constraint"])] + ([float(result["fgsm_constraint"])] if "fgsm_constraint" in result else [])
    return out


def _fgsm_of_run(sched: Schedule, order: list[int], cache: Path, ds: Any, eps: float) -> dict:
    """FGSM accuracy at ``eps`` of a finished run's final network and of its mutual inference,
    from the stage networks in the prefix cache (each stage's entry holds that stage's network).
    Measured on ``ds``'s validation split: the search may choose by it."""
    from growsearch.robustness import fgsm_accuracy, member_from_checkpoint
    from growsearch.train import prefix_key

    members = [member_from_checkpoint(cache / f"{prefix_key(sched, i, order)}.pt", i) for i in range(1, len(sched.stages) + 1)]
    acc = fgsm_accuracy(members, ds.x_val, ds.y_val, [eps], mean=ds.mean, std=ds.std, num_classes=ds.num_classes)
    return {FGSM_METRIC: acc["final_mi"][0], "fgsm_acc": acc["final"][0], "fgsm_eps": eps}


def _trainable(config: dict, ctx: dict) -> None:
    """One Ray Tune trial: run the proposed schedule, report (with a checkpoint) after every stage.

    The stage checkpoint is the prefix-cache entry itself, so a retried or resumed trial copies
    it back into the cache and ``run_schedule`` continues after the last finished stage.
    """
    import torch
    from ray import tune

    from growsearch.data import create_dataset, with_validation
    from growsearch.plan import plan_schedule, planned_M
    from growsearch.train import prefix_key, run_schedule

    torch.set_num_threads(max(1, int(ctx["threads"])))
    sched = Schedule.from_dict(config["schedule"])
    ds = with_validation(create_dataset(sched.dataset), sched.train.val_fraction, sched.train.val_seed)  # once, for training and FGSM
    order = sched.resolved_class_order(ds.num_classes)
    cache = Path(ctx["cache"])
    cache.mkdir(parents=True, exist_ok=True)
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            for f in Path(d).glob("*.pt"):
                shutil.copy(f, cache / f.name)
    ref_M, target, n = float(ctx["ref_M"]), float(ctx["target_acc"]), len(sched.stages)
    sched_json = json.dumps(sched.to_dict())

    def report(i: int, metrics: dict) -> None:
        key = prefix_key(sched, i, order)
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(cache / f"{key}.pt", Path(d) / f"{key}.pt")
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    def on_stage(res: Any, model: Any) -> None:
        i = next(j for j, st in enumerate(sched.stages, 1) if st.classes == res.classes)
        if i < n:  # the last stage is reported below, with the whole run's metrics
            cum = res.history[-1]["cum_M"]
            # Tune checks every report for all the searcher's metrics; FGSM is measured at the end only
            pending = {FGSM_METRIC: float("nan")} if ctx.get("fgsm_eps") is not None else {}
            report(i, {"stage": i, "cum_M": cum, METRIC: cum / ref_M, "stage_acc": res.val_acc, "final": False, "schedule": sched_json, **pending})

    # The plan first: a fixed-epoch schedule's whole M is known before training, so the stopper
    # can end a trial that can no longer win before it trains anything (nothing trained yet:
    # cumulative M ratio 0; the searcher does not forward this report to Optuna).
    planned = planned_M(plan_schedule(sched, dataset=ds))
    if planned is not None:
        pending = {FGSM_METRIC: float("nan")} if ctx.get("fgsm_eps") is not None else {}
        tune.report({"stage": 0, "cum_M": 0, METRIC: 0.0, "planned": True, "planned_M": planned, "planned_ratio": planned / ref_M,
                     "final": False, "schedule": sched_json, **pending})
    result = run_schedule(sched, dataset=ds, progress=False, prefix_cache=cache, on_stage=on_stage)
    acc = result.val_acc  # feasibility reads validation accuracy; test accuracy is only reported
    per_stage = ("classes", "arch", "resolution", "epochs", "samples", "macs_per_sample", "M", "val_acc", "test_acc", "wall_s", "params")
    robust: dict = {}
    if ctx.get("fgsm_eps") is not None:
        robust = _fgsm_of_run(sched, order, cache, ds, float(ctx["fgsm_eps"]))
        if ctx.get("min_fgsm_acc") is not None:
            robust["fgsm_constraint"] = float(ctx["min_fgsm_acc"]) - robust[FGSM_METRIC]
    feasible = acc >= target and robust.get("fgsm_constraint", 0.0) <= 0
    report(n, {
        **robust,
        "stage": n, "cum_M": result.M, METRIC: result.M / ref_M, "stage_acc": acc, "final": True,
        "M": result.M, "val_acc": acc, "test_acc": result.test_acc, "feasible": feasible, "constraint": target - acc,
        "wall_s": result.wall_s, "spent_M": result.spent_M, "reused_stages": result.reused_stages,
        "M_nonzero": result.M_nonzero, "schedule": sched_json,
        "stages": json.dumps([{k: getattr(s, k) for k in per_stage} for s in result.stages]),
        "versions": json.dumps(result.versions), "node_id": _node_id(),
    })


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


# --- driver -------------------------------------------------------------------------------


def _storage_url(storage: str | None, out_dir: Path) -> str:
    return storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, not minutes, when nothing listens at a ``HOST:PORT`` cluster address."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", "ray://..." and the like: let Ray judge them
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise SearchError(f"cannot reach the Ray cluster at {address} ({e.strerror or e}): is `ray start --head --port {port}` running there?") from None


def _init_ray(address: str | None, cpus_per_trial: float, gpus_per_trial: float, *, quiet: bool = True) -> None:
    import logging

    import ray

    level = logging.ERROR if quiet else logging.INFO

    if not ray.is_initialized():
        if address:
            _reachable(address)
            try:
                ray.init(address=address, log_to_driver=False, logging_level=level)
            except (ConnectionError, RuntimeError) as e:
                raise SearchError(f"cannot connect to the Ray cluster at {address}: {str(e).splitlines()[0]} (is `ray start --head` running there?)") from None
        else:
            # A laptop run: a local Ray with this machine's CPUs and no dashboard.
            # address="local": always a fresh instance of our own, never a cluster some earlier run
            # left recorded in /tmp/ray (ray.init() would try to join that and refuse num_cpus)
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level=level)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    max_cpu = max((n["Resources"].get("CPU", 0) for n in nodes), default=0)
    max_gpu = max((n["Resources"].get("GPU", 0) for n in nodes), default=0)
    if cpus_per_trial > max_cpu:
        raise SearchError(f"--cpus-per-trial {cpus_per_trial:g} exceeds the largest node's {max_cpu:g} CPUs: no trial could ever start")
    if gpus_per_trial > max_gpu:
        raise SearchError(f"--gpus-per-trial {gpus_per_trial:g} but the largest node has {max_gpu:g} GPUs: no trial could ever start")


def _ensure_frontier(study: Any, space: SearchSpace, out_dir: Path, dataset: Any, given: Frontier | None = None) -> Frontier:
    """The study's from-scratch frontier: the one it stored, else ``given``, else trained now
    (the final architecture at the space's budgets)."""
    from growsearch.frontier import run_frontier

    if "frontier" in study.user_attrs:
        front = Frontier.from_dict(study.user_attrs["frontier"])
        print(f"frontier: reusing the study's (best validation accuracy {front.best_val_acc:.4f})", flush=True)
        return front
    if given is not None:
        study.set_user_attr("frontier", given.to_dict())
        print(f"frontier: the given one (best validation accuracy {given.best_val_acc:.4f}; the space's budgets are not trained)", flush=True)
        return given
    budgets = space.frontier_budgets()
    print(f"frontier: {space.final_arch} from scratch on all of {space.dataset} at {budgets} epochs", flush=True)
    front = run_frontier(
        space.dataset, [space.final_arch], budgets, lrs=space.baseline_lrs, seeds=space.baseline_seeds or [space.seed], train=space.train,
        dataset=dataset, out_dir=out_dir / "frontier", overwrite=True, progress=False,
    )
    study.set_user_attr("frontier", front.to_dict())
    print(front.table(), flush=True)
    return front


def _given_frontier(frontier: str | Path | Frontier | None, ds: Any) -> Frontier | None:
    """``frontier`` loaded (from a folder) and checked against the search's split data."""
    from growsearch.frontier import load_frontier

    if frontier is None:
        return None
    front = frontier if isinstance(frontier, Frontier) else load_frontier(frontier)
    front.check_compatible(ds)
    return front


def search_target(front: Frontier, tolerance: float) -> tuple[float, dict]:
    """The study's target validation accuracy (the frontier's best − tolerance) and
    M_scratch(target) as :meth:`Frontier.m_scratch` reads it: the objective's denominator."""
    target = front.best_val_acc - tolerance
    return target, front.m_scratch(target)


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
    verbose: bool = False,
) -> SearchResult:
    """Search ``space`` for the cheapest schedule whose validation accuracy reaches the
    frontier's best − tolerance; the objective is M / M_scratch(target).

    Args:
        space: a space name (``"digits_vgg"``), a YAML path, or a ``SearchSpace``.
        out_dir: where the study database (default storage), Tune's experiment, the prefix
            cache, ``best_schedule.json``, ``trials.csv`` and ``pareto.png`` go.
        trials: trial budget (default: the space's ``trials``). With ``resume`` Tune restores the
            original budget and this is ignored.
        storage: an SQLAlchemy URL for Optuna (default ``sqlite:///OUT/study.db``).
        study_name: default: the space's name.
        address: an existing Ray cluster (``ray start --head``'s address); default: a local Ray.
        resume: continue a study whose driver was stopped; without it an existing study is an error.
        cpus_per_trial, gpus_per_trial: Ray resources of one trial (fractions allowed).
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
        frontier: compare with this frontier (a ``growsearch baseline --out`` folder or a
            :class:`~growsearch.frontier.Frontier`) instead of training the space's budgets; it
            must have read the space's dataset, classes and validation split. Its training cost
            is then not part of the search's ``spent_M``.
        verbose: also show Ray's and Tune's own console output (off: growsearch's lines only).
    """
    import optuna
    from ray import tune

    from growsearch._tune import CostStopper, GrowSearch, TrialLines
    from growsearch.data import create_dataset, with_validation

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
    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise SearchError("--cpus-per-trial must be > 0 and --gpus-per-trial ≥ 0")
    robust = _robust_settings(fgsm_eps, fgsm_objective, min_fgsm_acc)
    from growsearch.train import _check_out_dir

    _check_out_dir(out, overwrite=True)  # a file, or a folder that cannot be written
    ds = with_validation(create_dataset(sp.dataset), sp.train.val_fraction, sp.train.val_seed)
    given = _given_frontier(frontier, ds)
    if sp.resolutions and max(sp.resolutions) > ds.image_size:
        raise SearchError(f"resolutions: {max(sp.resolutions)} px is above {sp.dataset}'s native {ds.image_size} px: use at most {ds.image_size}")
    if not verbose:
        # Tune's newer console engine ignores RunConfig(verbose=0) (its setup box, TensorBoard
        # hint, result paths); the classic reporter honours it. Ray's own INFO/WARNING lines at
        # start-up are muted through its log level.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    _init_ray(address, cpus_per_trial, gpus_per_trial, quiet=not verbose)
    default_db = storage is None and not (out / "study.db").exists()  # nothing in it yet: do not create it to look
    try:
        existing = [] if default_db else optuna.study.get_all_study_names(url)
    except Exception as e:  # noqa: BLE001 - a bad URL surfaces as one line
        raise SearchError(f"cannot open Optuna storage {url}: {str(e).splitlines()[0]}") from None
    tune_dir = out / "tune" / name
    if name in existing and not resume:
        raise SearchError(f"study {name!r} already exists in {url}: pass --resume to continue it, or --study NEW_NAME")
    if resume and name not in existing:
        raise SearchError(f"nothing to resume: no study {name!r} in {url}")
    if resume and not tune.Tuner.can_restore(str(tune_dir)):
        raise SearchError(f"nothing to resume: no Tune experiment at {tune_dir}")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Optuna ≥ 5 reads constraints that GrowSearch sets on the trial before `tell`; older
    # versions need constraints_func, which reads the same number from the user attributes.
    legacy = not hasattr(optuna.trial.Trial, "set_constraint")
    sampler = optuna.samplers.TPESampler(
        seed=sp.seed, constraints_func=_constraints if legacy else None, n_startup_trials=max(2, min(10, budget // 3))
    )
    directions = ["minimize", "maximize"] if fgsm_objective else ["minimize"]
    if resume and (was := optuna.load_study(study_name=name, storage=url).user_attrs.get("robust")) != robust:
        raise SearchError(
            f"study {name!r} was started with FGSM settings {was}, not {robust}: "
            "resume it with the same --fgsm-eps/--fgsm-objective/--min-fgsm-acc, or start a new --study"
        )
    if resume and given is not None and optuna.load_study(study_name=name, storage=url).user_attrs.get("frontier") not in (None, given.to_dict()):
        raise SearchError(f"study {name!r} already compares with another frontier: resume it without --baseline, or start a new --study")
    out.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=url, study_name=name, directions=directions, sampler=sampler, load_if_exists=resume)
    study.set_user_attr("space", sp.to_dict())
    study.set_user_attr("robust", robust)
    front = _ensure_frontier(study, sp, out, ds, given)
    target, ref = search_target(front, sp.tolerance)
    study.set_user_attr("target_acc", target)
    threads = max(1, int(cpus_per_trial))
    study.set_user_attr("threads", threads)  # every trial's torch thread count: re-runs match only at the same count
    study.set_user_attr("device", "cuda" if gpus_per_trial > 0 else "cpu")
    study.set_user_attr("M_ref", ref["M"])

    # Tune saves its experiment state every 10 s or more by default; ours is small, and a
    # state closer to Optuna's storage means less to reconcile after a killed driver.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    ctx = {
        "ref_M": ref["M"], "target_acc": target, "cache": str(out / "prefix_cache"), "threads": threads,
        "fgsm_eps": fgsm_eps, "min_fgsm_acc": min_fgsm_acc,
    }
    trainable = tune.with_resources(tune.with_parameters(_trainable, ctx=ctx), {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    print(
        f"search: {budget} trials of {name}, target validation accuracy {target:.4f}, M_scratch(target) {ref['M']:.4g}; "
        f"watch with: optuna-dashboard {url}", flush=True,
    )
    if resume:
        tuner = tune.Tuner.restore(str(tune_dir), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        searcher = GrowSearch(
            space=_Suggest(sp, ds.num_classes), metric=[METRIC, FGSM_METRIC] if fgsm_objective else METRIC,
            mode=["min", "max"] if fgsm_objective else "min", sampler=sampler,
            study_name=name, storage=optuna.storages.RDBStorage(url),
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=budget),
            run_config=tune.RunConfig(
                name=name, storage_path=str(out / "tune"), stop=None if fgsm_objective else CostStopper(), verbose=1 if verbose else 0,
                failure_config=tune.FailureConfig(max_failures=max_failures), callbacks=[TrialLines(budget)],
            ),
        )
    t0 = time.perf_counter()
    grid = tuner.fit()
    if len(grid) and grid.num_errors == len(grid):
        first = str(grid.errors[0]).strip().splitlines()[-1] if grid.errors else "unknown"
        raise SearchError(f"all {len(grid)} trials failed; the last line of the first error: {first} (logs under {tune_dir})")
    study = optuna.load_study(study_name=name, storage=url)
    if resume:
        _fail_orphans(study)
    result = _summarise(study, front, target, ref, url, out, robust)
    print(f"search: {result.trials} trials in {time.perf_counter() - t0:.0f} s", flush=True)
    return result


def _robust_settings(eps: float | None, objective: bool, min_acc: float | None) -> dict | None:
    if eps is None:
        if objective or min_acc is not None:
            raise SearchError("--fgsm-objective and --min-fgsm-acc need --fgsm-eps (the FGSM ε to measure at, e.g. 0.02)")
        return None
    if not 0 < eps <= 1:
        raise SearchError(f"--fgsm-eps must be in (0, 1] (pixel units of [0, 1] images), got {eps:g}")
    if min_acc is not None and not 0 <= min_acc <= 1:
        raise SearchError(f"--min-fgsm-acc is an accuracy in [0, 1], got {min_acc:g}")
    return {"eps": float(eps), "objective": bool(objective), "min_acc": min_acc}


def _fail_orphans(study: Any) -> None:
    """Trials Optuna handed out just before the driver was killed, which Tune's saved state
    never knew: nothing will ever finish them, so mark them failed (with the reason)."""
    import optuna

    for t in study.trials:
        if t.state == optuna.trial.TrialState.RUNNING:
            study._storage.set_trial_user_attr(t._trial_id, "failed_because", "asked before the driver was stopped; never started")
            study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)


def _finished(study: Any) -> list:
    import optuna

    return [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]


def _best_trial(study: Any) -> Any | None:
    return min(_feasible(study.trials), key=lambda t: t.user_attrs["M_ratio"], default=None)


def _feasible(trials: list) -> list:
    import optuna

    return [
        t for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("feasible") and t.user_attrs.get("final") and "M_ratio" in t.user_attrs
    ]


def _pareto(trials: list) -> list[dict]:
    """Feasible trials that no other feasible trial beats on both M ratio (lower) and FGSM-MI accuracy (higher)."""
    pts = [(t.user_attrs["M_ratio"], t.user_attrs.get(FGSM_METRIC, 0.0), t) for t in _feasible(trials)]
    front = [
        p for p in pts
        if not any(q[0] <= p[0] and q[1] >= p[1] and (q[0] < p[0] or q[1] > p[1]) for q in pts)
    ]
    return [
        {"number": t.number, "M_ratio": m, FGSM_METRIC: a, "val_acc": t.user_attrs.get("val_acc"), "test_acc": t.user_attrs.get("test_acc")}
        for m, a, t in sorted(front, key=lambda p: p[0])
    ]


def _summarise(study: Any, front: Frontier, target: float, ref: dict, url: str, out: Path, robust: dict | None = None) -> SearchResult:
    done = _finished(study)
    best = _best_trial(study)
    best_sched = Schedule.from_dict(best.user_attrs["schedule"]) if best else None
    if best_sched is not None:
        best_sched.threads = study.user_attrs.get("threads")  # what its trial trained with: a re-run reproduces it
    if best_sched is not None:
        best_sched.save(out / "best_schedule.json")
    _write_trials_csv(done, out / "trials.csv")
    from growsearch.plots import plot_pareto

    plot_pareto(done, target, front, ref["M"], out / "pareto.png")
    return SearchResult(
        study_name=study.study_name, storage=url, frontier=front, target_acc=target, M_ref=ref["M"], ref=ref, best_schedule=best_sched,
        best=dict(best.user_attrs) if best else None, trials=len(done),
        spent_M=sum(int(t.user_attrs.get("spent_M", 0)) for t in done),
        charged_M=sum(int(t.user_attrs.get("M", 0)) for t in done), out_dir=out, robust=robust,
        pareto=_pareto(done) if robust and robust["objective"] else None,
    )


def _write_trials_csv(trials: list, path: Path) -> None:
    cols = ["number", "state", "M_ratio", "M", "val_acc", "test_acc", FGSM_METRIC, "feasible", "spent_M", "reused_stages", "wall_s", "schedule"]
    from growsearch._io import atomic_path

    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for t in trials:
            a = t.user_attrs
            shape = " ".join(f"{s['classes']}:{s['arch']}x{s['epochs']}" for s in a.get("schedule", {}).get("stages", []))
            w.writerow([t.number, t.state.name, *(a.get(c) for c in cols[2:-1]), shape])


def load_best(storage: str, study: str) -> Schedule:
    """The cheapest feasible schedule of a finished (or running) study, ready for ``run_schedule``.

    Example:
        >>> sched = load_best("sqlite:///runs/search/study.db", "digits_vgg")  # doctest: +SKIP
    """
    import optuna

    try:
        st = optuna.load_study(study_name=study, storage=storage)
    except KeyError:
        raise SearchError(f"no study {study!r} in {storage}") from None
    except Exception as e:  # noqa: BLE001 - a malformed URL or unreachable database is one line
        raise SearchError(f"cannot open Optuna storage {storage!r}: {str(e).splitlines()[0]} (e.g. sqlite:///runs/search/study.db)") from None
    best = _best_trial(st)
    if best is None:
        raise SearchError(f"study {study!r} has no feasible trial yet (none reached the target accuracy)")
    sched = Schedule.from_dict(best.user_attrs["schedule"])
    sched.threads = st.user_attrs.get("threads")  # reproduce the trial's numbers by default
    return sched


def export_best(storage: str, study: str, path: str | Path) -> Schedule:
    sched = load_best(storage, study)
    sched.save(path)
    return sched
