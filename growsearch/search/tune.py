"""growsearch in your own Ray Tune ``Tuner``: trainable, searcher, stopper and trial lines.

``growsearch search`` is built from exactly these pieces; with them you bring your own
``RunConfig`` (``storage_path`` on shared storage for multi-node Ray), sampler, scheduler and
callbacks. Classes live at module level (Tune pickles them with its experiment state).

Example:
    >>> from ray import tune
    >>> import growsearch.search.tune as gt
    >>> space, frontier = "digits_vgg", "runs/frontier"
    >>> tuner = tune.Tuner(
    ...     gt.trainable_for(space, frontier, cache_dir="/shared/cache"),
    ...     tune_config=tune.TuneConfig(search_alg=gt.Searcher(space, frontier, storage="sqlite:///study.db"), num_samples=8),
    ...     run_config=tune.RunConfig(storage_path="/shared/tune", stop=gt.CostStopper(), callbacks=[gt.TrialLines(8)]),
    ... )  # doctest: +SKIP
    >>> tuner.fit()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import optuna
from ray import tune
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search import Searcher as _TuneSearcher
from ray.tune.search.optuna import OptunaSearch

from growsearch.train.frontier import Frontier
from growsearch.plan.schedule import Schedule
from growsearch.search.space import load_space, SearchSpace, suggest_schedule
from growsearch.search.study import (
    best_trial, cannot_win, FGSM_METRIC, FIXED_SCHEDULE, given_frontier, measure_fgsm, METRIC, name_metrics, record_setup, run_metrics, search_target, set_constraints, split_data, StopTrial, store_network, user_attrs,
)

__all__ = ["CostStopper", "GrowSearch", "InOrderBatches", "Searcher", "Suggest", "TrialLines", "trainable", "trainable_for"]


class GrowSearch(OptunaSearch):
    """OptunaSearch that writes each trial's metrics into Optuna user attributes before ``tell``
    (so ``constraints_func`` and optuna-dashboard see them), and tells Optuna PRUNED for trials
    stopped before their last stage."""

    def _told(self, trial_id: str) -> bool:
        """Already finished in Optuna's storage: told before the driver was stopped, while Tune's
        last saved experiment state still had the trial running. Its results are not told again."""
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None:
            return False
        return self._ot_study._storage.get_trial(ot_trial._trial_id).state.is_finished()

    deterministic = False  # set by Searcher(deterministic=True): reuse only what existed when a trial was proposed
    cache_dir: str | None = None  # the trainable's prefix cache (for that reuse limit)
    num_classes = 0

    def suggest(self, trial_id: str) -> dict | None:
        """The proposed schedule, plus what the trial is judged by as of now: its Optuna number
        (trial lines print in that order) and the best feasible M ratio told so far (``bound``:
        a trial that reaches it can no longer win and stops itself). In a deterministic search
        both are fixed when the trial is proposed, as is how much of the prefix cache it may
        reuse (``reuse_upto``), so nothing about a trial depends on which concurrent trial
        finished first."""
        config = super().suggest(trial_id)
        if config is None or config == _TuneSearcher.FINISHED:
            return config
        best = best_trial(self._ot_study)
        config["trial"] = self._ot_trials[trial_id].number
        config["bound"] = None if best is None else float(best.user_attrs[METRIC])
        if self.deterministic and self.cache_dir is not None:
            from growsearch.train.prefix import find_prefix

            sched = Schedule.from_dict(config["schedule"])
            config["reuse_upto"] = find_prefix(sched, sched.resolved_class_order(self.num_classes), Path(self.cache_dir))[0]
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self._told(trial_id) or result.get("planned"):  # the plan is no training step: Optuna sees stages only
            return None
        # Optuna's step = the stage (Tune's iteration counts the plan report too)
        return super().on_trial_result(trial_id, {**result, TRAINING_ITERATION: result.get("stage", result.get(TRAINING_ITERATION))})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None and trial_id not in self._completed_trials and self._told(trial_id):
            self._completed_trials.add(trial_id)
            return None
        if ot_trial is None or trial_id in self._completed_trials:
            return super().on_trial_complete(trial_id, result, error)
        for key, value in user_attrs(result or {}).items():
            ot_trial.set_user_attr(key, value)
        if result and "constraint" in result:
            set_constraints(ot_trial, result)
        if error or (result and not result.get("final")):
            # errored for good (retries spent): FAIL, not COMPLETE with a partial run's value;
            # stopped before its last stage: PRUNED
            state = optuna.trial.TrialState.FAIL if error else optuna.trial.TrialState.PRUNED
            self._ot_study.tell(ot_trial, state=state)
            self._completed_trials.add(trial_id)
            return None
        self._store_if_best(ot_trial, result)
        return super().on_trial_complete(trial_id, result, error)

    def _store_if_best(self, ot_trial: optuna.Trial, result: dict) -> None:
        """A feasible trial better than every earlier one: its final network and result.json
        become artifacts of the study (read from the prefix cache, where the trial left them)."""
        cache, base = getattr(self, "artifact_cache", None), getattr(self, "artifact_base", None)
        if cache is None or not result.get("feasible") or not result.get("key"):
            return
        best = best_trial(self._ot_study)
        if best is not None and best.user_attrs[METRIC] <= float(result[METRIC]):
            return
        ckpt, res = Path(cache) / f"{result['key']}.pt", Path(cache) / f"{result['key']}.result.json"
        if ckpt.is_file() and res.is_file():  # a prefix cache on one node's disk may not be this one's
            store_network(self._ot_study, ot_trial, ckpt, json.loads(res.read_text()), base=Path(base))


class InOrderBatches(_TuneSearcher):
    """Proposals in fixed batches, each batch's results told in trial order once all of it has
    finished: the study a search makes is then the same whatever order its trials finish in,
    and whatever the cluster's concurrency (``TuneConfig(max_concurrent_trials=1)`` gives the
    same study as running a whole batch at once).

    Ray's ``ConcurrencyLimiter(batch=True)`` tells a batch in the order its trials finished,
    tells a batch that is not yet full as soon as its trials in flight have finished, and ties
    the batch to the concurrency; all three depend on timing or resources, so this searcher
    (written here because nothing in Ray or Optuna does this) fixes them.

    Args:
        searcher: the searcher to feed (a :class:`GrowSearch`).
        batch: trials per batch, each proposed without the others' results.
        total: the search's trial budget (the last batch may be smaller).
    """

    def __init__(self, searcher: Any, batch: int, total: int) -> None:
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher, self.batch, self.total = searcher, batch, total
        self.asked = 0
        self.members: dict[str, int] = {}  # this batch's trials, by the order they were proposed in
        self.finished: dict[str, tuple[dict | None, bool]] = {}  # ... that have finished: (result, error)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict | None:
        if len(self.members) >= self.batch or self.asked >= self.total:
            return None  # wait for the batch to finish (or the budget is spent)
        config = self.searcher.suggest(trial_id)
        if config not in (None, _TuneSearcher.FINISHED):
            self.members[trial_id] = self.asked
            self.asked += 1
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.members:
            return
        self.finished[trial_id] = (result, error)
        full = len(self.members) == self.batch or self.asked >= self.total
        if not full or len(self.finished) < len(self.members):
            return
        for tid in sorted(self.finished, key=self.members.__getitem__):
            res, err = self.finished[tid]
            self.searcher.on_trial_complete(tid, result=res, error=err)
        self.members, self.finished = {}, {}

    def get_state(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "searcher"}

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)


class CostStopper(tune.Stopper):
    """Stops a trial once its cumulative M ratio reaches the best feasible one so far, and
    before any training when its planned M ratio (fixed-epoch schedules) already does.

    M only grows with every stage, so such a trial can no longer win: unlike a rung-based
    rule (ASHA), this never discards a schedule that could have been the answer.
    """

    def __init__(self) -> None:
        self.best = float("inf")

    def __call__(self, trial_id: str, result: dict) -> bool:
        if result.get("final"):
            if result.get("feasible"):
                self.best = min(self.best, float(result[METRIC]))
            return False
        return cannot_win(float(result["planned_ratio"] if result.get("planned") else result[METRIC]), self.best)

    def stop_all(self) -> bool:
        return False


class TrialLines(tune.Callback):
    """One line per finished trial on the driver's stdout, in trial order (a trial's line waits
    for the lines of the earlier trials still running), so the same study prints the same lines."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.live: dict[int, None] = {}  # trial numbers started and not finished
        self.lines: dict[int, str] = {}  # finished, waiting for an earlier trial's line

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if "trial" in trial.config:
            self.live[trial.config["trial"]] = None

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        label = f"  ({trial.config['reference']})" if "reference" in trial.config else ""
        self._finished(trial, self._line(trial.last_result or {}) + label)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finished(trial, f"failed (retries spent; its error is under {trial.path})")

    def _finished(self, trial: Any, what: str) -> None:
        number = trial.config.get("trial", len(self.lines))
        self.live.pop(number, None)
        self.lines[number] = f"trial {number + 1}/{self.total}: {what}"
        for n in sorted(self.lines):
            if self.live and n > min(self.live):
                break
            print(self.lines.pop(n), flush=True)

    @staticmethod
    def _line(r: dict) -> str:
        if r.get("final"):
            sched = json.loads(r["schedule"]) if isinstance(r.get("schedule"), str) else {}
            shape = " → ".join(f"{s['classes']}:{s['arch']}" for s in sched.get("stages", []))
            return (
                f"M ratio {r[METRIC]:.3f}, val acc {r['val_acc']:.4f} (test {r['test_acc']:.4f}) "
                f"{'feasible' if r.get('feasible') else 'infeasible'}  [{shape}]"
            )
        if r.get("planned"):
            return f"pruned before training: its planned M ratio {r['planned_ratio']:.3f} already reached the best"
        return f"stopped after stage {r.get('stage', '?')}: its M ratio {r.get(METRIC, float('nan')):.3f} already reached the best"


class Suggest:
    """Define-by-run space for OptunaSearch: returns the schedule as a plain dict."""

    def __init__(self, space: SearchSpace, num_classes: int):
        self.space, self.num_classes = space, num_classes

    def __call__(self, trial: Any) -> dict:
        attrs = trial.user_attrs
        label = {"reference": attrs["reference"]} if "reference" in attrs else {}  # enqueued (growsearch.search.study.enqueue)
        if FIXED_SCHEDULE in attrs:
            return {"schedule": attrs[FIXED_SCHEDULE], **label}
        return {"schedule": suggest_schedule(trial, self.space, self.num_classes).to_dict(), **label}


def trainable(config: dict, ctx: dict) -> None:
    """One Ray Tune trial: run the proposed schedule, report (with a checkpoint) after every stage.

    The stage checkpoint is the prefix-cache entry itself, so a retried or resumed trial copies
    it back into the cache and ``run_schedule`` continues after the last finished stage.
    """
    import torch
    from ray import tune

    from growsearch.plan.planner import plan_schedule, planned_M
    from growsearch.train.prefix import prefix_key
    from growsearch.train.run import run_schedule

    torch.set_num_threads(max(1, int(ctx["threads"])))
    sched = Schedule.from_dict(config["schedule"])
    ds = split_data(sched)  # once, for training and FGSM
    order = sched.resolved_class_order(ds.num_classes)
    cache = Path(ctx["cache"])
    cache.mkdir(parents=True, exist_ok=True)
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            for f in Path(d).glob("*.pt"):
                shutil.copy(f, cache / f.name)
    ref_M, target, n = float(ctx["ref_M"]), float(ctx["target_acc"]), len(sched.stages)
    bound = config.get("bound")  # the best feasible M ratio when this trial was proposed
    sched_json = json.dumps(sched.to_dict())
    # Tune checks every report for all the searcher's metrics; FGSM is measured at the end only
    pending = {FGSM_METRIC: float("nan")} if ctx.get("fgsm_eps") is not None else {}

    def report(i: int, metrics: dict) -> None:
        key = prefix_key(sched, i, order)
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(cache / f"{key}.pt", Path(d) / f"{key}.pt")
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    def on_stage(res: Any, model: Any) -> None:
        i = next(j for j, st in enumerate(sched.stages, 1) if st.classes == res.classes)
        if i < n:  # the last stage is reported below, with the whole run's metrics
            cum = res.history[-1]["cum_M"]
            report(i, {"stage": i, "cum_M": cum, METRIC: cum / ref_M, "stage_acc": res.val_acc, "final": False, "schedule": sched_json, **pending})
            if cannot_win(cum / ref_M, bound):
                raise StopTrial(i)

    # The plan first: a fixed-epoch schedule's whole M is known before training, so the stopper
    # can end a trial that can no longer win before it trains anything (nothing trained yet:
    # cumulative M ratio 0; the searcher does not forward this report to Optuna).
    planned = planned_M(plan_schedule(sched, dataset=ds))
    if planned is not None:
        tune.report({"stage": 0, "cum_M": 0, METRIC: 0.0, "planned": True, "planned_M": planned, "planned_ratio": planned / ref_M,
                     "final": False, "schedule": sched_json, **pending})
        if cannot_win(planned / ref_M, bound):
            return
    # what this trial may reuse from the cache: fixed when it was proposed (deterministic
    # search), but always its own stages restored from a Tune checkpoint above
    reuse = config.get("reuse_upto")
    if reuse is not None and ckpt is not None:
        from growsearch.train.prefix import find_prefix

        reuse = max(reuse, find_prefix(sched, order, cache)[0])
    try:
        result = run_schedule(sched, dataset=ds, progress=False, prefix_cache=cache, on_stage=on_stage, reuse_upto=reuse)
    except StopTrial:
        return
    key = prefix_key(sched, n, order)
    (cache / f"{key}.result.json").write_text(json.dumps(result.to_dict()))  # the searcher stores the best one as an artifact
    metrics = run_metrics(result, ref_M, target)
    measure_fgsm(metrics, sched, order, cache, ds, ctx.get("fgsm_eps"), ctx.get("min_fgsm_acc"))
    report(n, {
        **metrics, "stage": n, "cum_M": result.M, "stage_acc": result.val_acc, "schedule": sched_json,
        "stages": json.dumps(metrics["stages"]), "versions": json.dumps(metrics["versions"]), "node_id": _node_id(), "key": key,
    })


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


# --- the public constructors -------------------------------------------------------------


def _space_and_data(space: str | Path | SearchSpace, dataset: Any = None) -> tuple[SearchSpace, Any]:
    sp = space if isinstance(space, SearchSpace) else load_space(space)
    return sp, dataset if dataset is not None else split_data(sp)


def trainable_for(
    space: str | Path | SearchSpace,
    frontier: str | Path | Frontier,
    *,
    cache_dir: str | Path,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    fgsm_eps: float | None = None,
    min_fgsm_acc: float | None = None,
    dataset: Any = None,
) -> Any:
    """The Tune trainable for ``space`` judged on ``frontier``, with its resources attached.

    Args:
        cache_dir: the stage-prefix cache shared by the trials (on shared storage for a
            multi-node cluster, like ``RunConfig(storage_path=...)``).
        cpus_per_trial: also the torch thread count of every trial (recorded on the study).
        fgsm_eps, min_fgsm_acc: measure each trial's FGSM accuracy with mutual inference
            (and make a floor on it a constraint).
        dataset: the space's data already split (default: loaded from the space's name).
    """
    sp, ds = _space_and_data(space, dataset)
    front = given_frontier(frontier, ds)
    target, ref = search_target(front, sp.tolerance)
    ctx = {
        "ref_M": ref["M"], "target_acc": target, "cache": str(Path(cache_dir).resolve()), "threads": max(1, int(cpus_per_trial)),
        "fgsm_eps": fgsm_eps, "min_fgsm_acc": min_fgsm_acc,
    }
    return tune.with_resources(tune.with_parameters(trainable, ctx=ctx), {"cpu": cpus_per_trial, "gpu": gpus_per_trial})


def Searcher(  # noqa: N802 - a factory that reads like the class it returns
    space: str | Path | SearchSpace,
    frontier: str | Path | Frontier,
    *,
    storage: str | optuna.storages.BaseStorage,
    study_name: str | None = None,
    sampler: optuna.samplers.BaseSampler | None = None,
    fgsm_objective: bool = False,
    threads: int = 1,
    device: str = "cpu",
    robust: dict | None = None,
    seed: int | None = None,
    dataset: Any = None,
    cache_dir: str | Path | None = None,
    artifacts: str | Path | None = None,
    deterministic: bool = False,
) -> GrowSearch:
    """The constrained OptunaSearch for ``space``: it proposes schedules define-by-run, writes each
    trial's metrics, user attributes and constraint into the Optuna study before ``tell``, and
    stores the frontier, target and M_scratch(target) on the study (what ``load_best`` reads).

    Args:
        storage: an Optuna storage URL or object (the study is created there, or continued).
        sampler: default TPE seeded by the space, with a few random start-up trials.
        fgsm_objective: a second objective, ``fgsm_mi_acc`` (maximised; trials must measure it).
        threads, device: what trials train with, recorded on the study for re-runs.
        dataset: the space's data already split (default: loaded from the space's name).
        cache_dir, artifacts: the trainable's ``cache_dir`` and a folder for a file-system
            artifact store: each new best feasible trial's final network and ``result.json``
            are then stored as Optuna artifacts of the study (what ``growsearch export`` fetches).
        deterministic: fix at proposal time how much of ``cache_dir`` a trial may reuse (wrap the
            searcher in :class:`InOrderBatches` too, so the sampler sees results in trial order).
    """
    sp, ds = _space_and_data(space, dataset)
    front = given_frontier(frontier, ds)
    target, ref = search_target(front, sp.tolerance)
    name = study_name or sp.name or "growsearch"
    url = storage if isinstance(storage, str) else None
    store = optuna.storages.RDBStorage(url) if url else storage
    if sampler is None:
        legacy = not hasattr(optuna.trial.Trial, "set_constraint")
        from growsearch.search.study import constraints

        sampler = optuna.samplers.TPESampler(
            seed=sp.seed if seed is None else seed, constraints_func=constraints if legacy else None, n_startup_trials=max(2, min(10, sp.trials // 3)),
        )
    searcher = GrowSearch(
        space=Suggest(sp, ds.num_classes), metric=[METRIC, FGSM_METRIC] if fgsm_objective else METRIC,
        mode=["min", "max"] if fgsm_objective else "min", sampler=sampler, study_name=name, storage=store,
    )
    searcher.artifact_cache = str(Path(cache_dir).resolve()) if cache_dir is not None and artifacts is not None else None
    searcher.cache_dir = str(Path(cache_dir).resolve()) if cache_dir is not None else None
    searcher.deterministic, searcher.num_classes = deterministic, ds.num_classes
    searcher.artifact_base = str(Path(artifacts).resolve()) if artifacts is not None else None
    study = searcher._ot_study
    if "frontier" not in study.user_attrs:
        study.set_user_attr("frontier", front.to_dict())
    record_setup(study, sp, target, ref["M"], threads=threads, device=device, robust=robust)
    name_metrics(study, [METRIC, FGSM_METRIC] if fgsm_objective else [METRIC])
    return searcher
