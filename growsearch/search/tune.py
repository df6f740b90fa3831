"""growsearch in your own Ray Tune ``Tuner``: trainable, searcher, stopper and trial lines.

``growsearch search`` is built from exactly these pieces (:func:`tune_pieces` makes them all from
one set of settings); with them you bring your own ``RunConfig`` (``storage_path`` on shared
storage for multi-node Ray), sampler, scheduler and callbacks. Every report a trial makes
carries the same keys (Tune's strict metric check, its schedulers and ``get_best_result`` see
them all): the judge's ratio (``M_ratio``, NaN until the trial has finished), the ratio where
feasible (``M_ratio_feasible``, NaN until then and for an infeasible trial: what
``ResultGrid.get_best_result("M_ratio_feasible", "min")`` should read, which skips NaN),
``stage_acc`` (the last trained stage's validation accuracy, 0 in the plan report: nothing is
trained yet, and a rung scheduler's cut-off over plan reports alone is then 0, not NaN) and
``val_acc`` (NaN until the end). A fixed-epoch schedule first reports its plan under ``planned_*`` keys (stage 0).

Example:
    >>> from ray import tune
    >>> from growsearch.search.tune import tune_pieces
    >>> p = tune_pieces("digits_vgg", "runs/frontier", storage="sqlite:///study.db", cache_dir="/shared/cache", trials=8)  # doctest: +SKIP
    >>> tuner = tune.Tuner(
    ...     p.trainable, tune_config=tune.TuneConfig(search_alg=p.search_alg, num_samples=8),
    ...     run_config=tune.RunConfig(storage_path="/shared/tune", stop=p.stop, callbacks=p.callbacks),
    ... )  # doctest: +SKIP
    >>> tuner.fit()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from ray import tune
from ray.tune.search import Searcher as _TuneSearcher

from growsearch.plan.schedule import Schedule
from growsearch.search.judge import FGSM_METRIC, Judge, SearchError, StopTrial, cannot_win
from growsearch.search.optuna import default_sampler
from growsearch.search.space import SearchSpace, load_space, suggest_schedule
from growsearch.search.study import (
    FIXED_SCHEDULE,
    given_frontier,
    measure_fgsm,
    name_metrics,
    record_setup,
    set_constraints,
    split_data,
    store_network,
    user_attrs,
)
from growsearch.train.frontier import Frontier

__all__ = [
    "CostStopper",
    "InOrderBatches",
    "Searcher",
    "Suggest",
    "TrialLines",
    "TunePieces",
    "run_trial",
    "trainable",
    "trainable_for",
    "trial_context",
    "tune_pieces",
]


class Searcher(_TuneSearcher):
    """A Ray Tune ``Searcher`` for a growsearch space, built on Optuna's ask-and-tell API: it
    asks the study for a trial and proposes its schedule define-by-run, writes each trial's
    metrics, user attributes and constraints into the study before ``tell`` (so the sampler and
    optuna-dashboard see them), tells PRUNED for a trial stopped before its last stage and FAIL
    for one whose retries are spent, and stores what the trials are judged by on the study (what
    ``load_best`` reads).

    Written here rather than subclassing Ray's ``OptunaSearch``, whose study and trial map are
    private attributes: this class touches Ray and Optuna through their public APIs only.

    Args:
        space: a space name (``"digits_vgg"``), a YAML path or a ``SearchSpace``.
        frontier: the from-scratch frontier (a ``growsearch baseline --out`` folder or a ``Frontier``).
        storage: an Optuna storage URL or object (the study is created there, or continued).
        study_name: default: the space's name.
        sampler: default TPE seeded by the space, with a few random start-up trials.
        fgsm_objective: a second objective, ``fgsm_mi_acc`` (maximised; trials must measure it).
        threads, device: what trials train with, recorded on the study for re-runs.
        robust: the FGSM settings (``eps``, ``objective``, ``min_acc``), recorded on the study.
        dataset: the space's data already split (default: loaded from the space's name).
        cache_dir, artifacts: the trainable's ``cache_dir`` and a folder for a file-system
            artifact store: each new best feasible trial's final network and ``result.json``
            are then stored as Optuna artifacts of the study (what ``growsearch export`` fetches).
        deterministic: fix at proposal time how much of ``cache_dir`` a trial may reuse (and wrap
            the searcher in :class:`InOrderBatches`, so the sampler sees results in trial order).
        cost: what the ratio divides (a registered cost: ``"M"``, ``"wall_s"``).
    """

    def __init__(
        self,
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
        dataset: Any = None,
        cache_dir: str | Path | None = None,
        artifacts: str | Path | None = None,
        deterministic: bool = False,
        cost: str = "M",
    ) -> None:
        sp, ds = _space_and_data(space, dataset)
        # our own handle on the study's storage: the dashboard's form of the constraints is written through it
        self.storage = optuna.storages.RDBStorage(storage) if isinstance(storage, str) else storage
        self.judge = Judge(
            given_frontier(frontier, ds), sp.tolerance, cost=cost, min_fgsm_acc=(robust or {}).get("min_acc")
        )
        metrics = [self.judge.metric, FGSM_METRIC] if fgsm_objective else [self.judge.metric]
        super().__init__(
            metric=metrics if fgsm_objective else metrics[0], mode=["min", "max"] if fgsm_objective else "min"
        )
        self.study = optuna.create_study(
            storage=self.storage,
            sampler=sampler or default_sampler(sp.seed, sp.trials),
            pruner=optuna.pruners.NopPruner(),  # trials are stopped by Tune (stopper, scheduler), never by Optuna
            study_name=study_name or sp.name or "growsearch",
            directions=["minimize", "maximize"] if fgsm_objective else ["minimize"],
            load_if_exists=True,
        )
        self.space = Suggest(sp, ds.num_classes)
        self.cache_dir = str(Path(cache_dir).resolve()) if cache_dir is not None else None
        self.artifacts = str(Path(artifacts).resolve()) if artifacts is not None and cache_dir is not None else None
        self.deterministic, self.num_classes = deterministic, ds.num_classes
        self.asked: dict[str, optuna.Trial] = {}  # per Tune trial id: the Optuna trial it runs
        self.told: set[str] = set()  # Tune trials whose Optuna trial is finished
        self.reported: dict[str, set[int]] = {}  # per Tune trial: the stages told to Optuna already
        record_setup(self.study, self.judge, sp, threads=threads, device=device, robust=robust)
        name_metrics(self.study, metrics)

    def _told(self, trial_id: str) -> bool:
        """Already finished in Optuna's storage: told before the driver was stopped, while Tune's
        last saved experiment state still had the trial running. Its results are not told again."""
        ot = self.asked.get(trial_id)
        if ot is None:
            return False
        return any(t.number == ot.number and t.state.is_finished() for t in self.study.get_trials(deepcopy=False))

    def suggest(self, trial_id: str) -> dict | None:
        """The proposed schedule, plus what the trial is judged by as of now: its Optuna number
        (trial lines print in that order) and the best feasible ratio told so far (``bound``:
        a trial that reaches it can no longer win and stops itself). In a deterministic search
        both are fixed when the trial is proposed, as is how much of the prefix cache it may
        reuse (``reuse_upto``), so nothing about a trial depends on which concurrent trial
        finished first. The sampled parameters ride along under their Optuna names (as Tune's
        own ``OptunaSearch`` puts them in the config), for ``ResultGrid``'s ``config/`` columns."""
        if trial_id not in self.asked:
            self.asked[trial_id] = self.study.ask()
        ot = self.asked[trial_id]
        proposal = self.space(ot)
        config = {**ot.params, **proposal, "trial": ot.number}
        # with two objectives a costlier schedule may still be on the Pareto front: no bound
        config["bound"] = None if isinstance(self.metric, list) else self.judge.best_ratio(self.study)
        if self.deterministic and self.cache_dir is not None:
            from growsearch.train.prefix import find_prefix

            sched = Schedule.from_dict(config["schedule"])
            config["reuse_upto"] = find_prefix(
                sched, sched.resolved_class_order(self.num_classes), Path(self.cache_dir)
            )[0]
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """The cumulative ratio after each stage, as Optuna's intermediate value at step = stage
        (the plan is no training step, so Optuna sees stages only)."""
        ot = self.asked.get(trial_id)
        if ot is not None:
            _check_own(trial_id, ot, result)
        if ot is None or trial_id in self.told or isinstance(self.metric, list) or result.get("planned"):
            return
        if self._told(trial_id):
            return
        step = int(result.get("stage", 0))
        if not math.isnan(result.get("cum_ratio", math.nan)) and step not in self.reported.setdefault(trial_id, set()):
            # once per stage: the final report also reaches on_trial_complete, which passes it here
            self.reported[trial_id].add(step)
            ot.report(float(result["cum_ratio"]), step)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        ot = self.asked.get(trial_id)
        if ot is None or trial_id in self.told:
            return
        _check_own(trial_id, ot, result or {})
        if result and result.get("final") and not error:
            # the final report ends the trial (Tune's ``done``), so Tune hands it here, not to
            # on_trial_result: its stage is Optuna's last step, as on the local backend
            self.on_trial_result(trial_id, result)
        self.told.add(trial_id)
        if self._told(trial_id):
            return
        for key, value in user_attrs(result or {}, self.judge.metric).items():
            ot.set_user_attr(key, value)
        if result and result.get("final"):
            set_constraints(ot, result, self.storage)
        if result and result.get("diverged"):  # failed, with the reason; never a result
            ot.set_user_attr("failed_because", result["diverged"])
            error = True
        if error or not result or not result.get("final"):
            # errored for good (retries spent): FAIL, not COMPLETE with a partial run's value;
            # stopped before its last stage: PRUNED
            self.study.tell(ot, state=optuna.trial.TrialState.FAIL if error else optuna.trial.TrialState.PRUNED)
            return
        self._store_if_best(ot, result)
        values = [result[m] for m in self.metric] if isinstance(self.metric, list) else result[self.metric]
        self.study.tell(ot, values)

    def get_state(self) -> dict:
        return {"asked": self.asked, "told": self.told, "reported": self.reported}

    def set_state(self, state: dict) -> None:
        self.asked, self.told, self.reported = state["asked"], state["told"], state["reported"]

    def save(self, checkpoint_path: str) -> None:
        """Tune's searcher checkpoint: which Optuna trial each Tune trial runs (the study itself
        lives in its storage). A pickle, as every Tune searcher's is: ``Tuner.restore`` reads it."""
        import pickle

        Path(checkpoint_path).write_bytes(pickle.dumps(self.get_state()))

    def restore(self, checkpoint_path: str) -> None:
        import pickle

        self.set_state(pickle.loads(Path(checkpoint_path).read_bytes()))

    def _store_if_best(self, ot: optuna.Trial, result: dict) -> None:
        """A feasible trial better than every earlier one: its final network and result.json
        become artifacts of the study (read from the prefix cache, where the trial left them)."""
        if self.artifacts is None or not result.get("feasible") or not result.get("key"):
            return
        if cannot_win(float(result[self.judge.metric]), self.judge.best_ratio(self.study)):
            return
        ckpt, res = Path(self.cache_dir) / f"{result['key']}.pt", Path(self.cache_dir) / f"{result['key']}.result.json"
        if ckpt.is_file() and res.is_file():  # a prefix cache on one node's disk may not be this one's
            store_network(self.study, ot, ckpt, json.loads(res.read_text()), base=Path(self.artifacts))


def _check_own(trial_id: str, ot: optuna.Trial, result: dict) -> None:
    """A Tune trial reports the schedule it was proposed, or the search stops with one line.

    PopulationBasedTraining's exploit copies one trial's config and checkpoint into another: the
    copy would then report the other trial's schedule as its own Optuna trial's, a silent
    duplicate. A stage checkpoint belongs to its schedule, so PBT does not apply (Tune hands the
    searcher its results flattened, ``config/trial``, or whole)."""
    config = result.get("config") if isinstance(result.get("config"), dict) else {}
    number = result.get("config/trial", config.get("trial"))
    if number is not None and number != ot.number:
        raise SearchError(
            f"Tune trial {trial_id} reports Optuna trial {number}'s schedule, not its own ({ot.number}): a scheduler "
            "copied another trial's config and checkpoint into it (PopulationBasedTraining's exploit), which a "
            "growsearch trial cannot take; use FIFO, ASHA, HyperBand or MedianStoppingRule"
        )


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
        searcher: the searcher to feed (a :class:`Searcher`).
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
    """Stops a trial once its cumulative ratio reaches the best feasible one so far, and before
    any training when its planned ratio (fixed-epoch schedules) already does
    (:func:`growsearch.search.judge.cannot_win`). Both only grow with every stage, so such a trial
    can no longer win: unlike a rung-based rule (ASHA), this never discards a schedule that
    could have been the answer. It acts on results as they arrive: a deterministic search
    stops trials by the bound fixed when each was proposed instead (in :func:`trainable`)."""

    def __init__(self, metric: str = "M_ratio") -> None:
        self.metric = metric
        self.finals: dict[str, float] = {}  # per trial that reported its final result: its ratio (inf: infeasible)

    @property
    def best(self) -> float:
        return min(self.finals.values(), default=math.inf)

    def __call__(self, trial_id: str, result: dict) -> bool:
        if result.get("final"):
            self.finals[trial_id] = float(result[self.metric]) if result.get("feasible") else math.inf
            return False
        if trial_id in self.finals:  # a trial is never stopped by its own result
            return False
        ratio = result.get("planned_ratio") if result.get("planned") else result.get("cum_ratio")
        return ratio is not None and not math.isnan(ratio) and cannot_win(float(ratio), self.best)

    def stop_all(self) -> bool:
        return False


class TrialLines(tune.Callback):
    """One line per finished trial on the driver's stdout, in trial order (a trial's line waits
    for the lines of the earlier trials still running), so the same study prints the same lines."""

    def __init__(self, total: int, metric: str = "M_ratio") -> None:
        self.total, self.metric = total, metric
        self.live: dict[int, None] = {}  # trial numbers started and not finished
        self.lines: dict[int, str] = {}  # finished, waiting for an earlier trial's line

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if "trial" in trial.config:
            self.live[trial.config["trial"]] = None

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        label = f"  ({trial.config['reference']})" if "reference" in trial.config else ""
        self._finished(trial, self._line(trial.last_result or {}) + label)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = getattr(
            trial, "error", None
        )  # a local worker's (--backend optuna); Tune's trials keep theirs in a folder
        self._finished(
            trial,
            f"failed (retries spent): {error}" if error else f"failed (retries spent; its error is under {trial.path})",
        )

    def _finished(self, trial: Any, what: str) -> None:
        number = trial.config.get("trial", len(self.lines))
        self.live.pop(number, None)
        self.lines[number] = f"trial {number + 1}/{self.total}: {what}"
        for n in sorted(self.lines):
            if self.live and n > min(self.live):
                break
            print(self.lines.pop(n), flush=True)

    def _line(self, r: dict) -> str:
        name = self.metric.replace("_", " ")
        if r.get("final"):
            sched = json.loads(r["schedule"]) if isinstance(r.get("schedule"), str) else {}
            shape = " → ".join(f"{s['classes']}:{s['arch']}" for s in sched.get("stages", []))
            return (
                f"{name} {r[self.metric]:.3f}, val acc {r['val_acc']:.4f} (test {r['test_acc']:.4f}) "
                f"{'feasible' if r.get('feasible') else 'infeasible'}  [{shape}]"
            )
        if r.get("diverged"):
            return f"failed: {r['diverged']}"
        if r.get("planned"):
            return f"pruned before training: its planned {name} {r['planned_ratio']:.3f} already reached the best"
        return f"stopped after stage {r.get('stage', '?')}: its {name} {r.get('cum_ratio', math.nan):.3f} already reached the best"


class Suggest:
    """The define-by-run space: proposes a schedule on an Optuna trial, returned as a plain dict."""

    def __init__(self, space: SearchSpace, num_classes: int):
        self.space, self.num_classes = space, num_classes

    def __call__(self, trial: Any) -> dict:
        attrs = trial.user_attrs
        label = (
            {"reference": attrs["reference"]} if "reference" in attrs else {}
        )  # enqueued (growsearch.search.study.enqueue)
        if FIXED_SCHEDULE in attrs:
            return {"schedule": attrs[FIXED_SCHEDULE], **label}
        return {"schedule": suggest_schedule(trial, self.space, self.num_classes).to_dict(), **label}


def trainable(config: dict, ctx: dict) -> None:
    """One Ray Tune trial: run the proposed schedule, report (with a checkpoint) after every stage.

    The stage checkpoint is the prefix-cache entry itself, so a retried or resumed trial copies
    it back into the cache and ``run_schedule`` continues after the last finished stage. A trial
    whose planned or cumulative ratio reaches ``config["bound"]`` (the best feasible ratio when it
    was proposed) can no longer win and ends itself.
    """
    from ray import tune

    # Tune starts each trial in its own folder; a relative dataset path (``npz:data.npz``) means
    # the driver's working directory, as it does for the frontier's tasks and for `growsearch run`.
    # Tune records that directory (Trainable.setup) before it changes it.
    os.chdir(os.environ.get("TUNE_ORIG_WORKING_DIR", os.getcwd()))
    cache = Path(ctx["cache"])
    cache.mkdir(parents=True, exist_ok=True)
    ckpt, reported = tune.get_checkpoint(), None
    if ckpt is not None:
        with ckpt.as_directory() as d:
            for f in Path(d).glob("*.pt"):
                shutil.copy(f, cache / f.name)
            if (Path(d) / REPORTED).is_file():
                reported = int(json.loads((Path(d) / REPORTED).read_text())["stage"])

    def report(metrics: dict, key: str | None) -> None:
        # Every report carries a checkpoint saying which report it was (and, after a stage, that
        # stage's network): a trial a scheduler paused (MedianStoppingRule, HyperBand) resumes
        # from it without sending Tune a report twice, which the scheduler would judge again.
        with tempfile.TemporaryDirectory() as d:
            if key is not None:
                shutil.copy(cache / f"{key}.pt", Path(d) / f"{key}.pt")
            (Path(d) / REPORTED).write_text(json.dumps({"stage": metrics["stage"]}))
            # the final report ends the trial (Tune's ``done``): no scheduler may pause a trial
            # that has nothing left to run (HyperBand would keep it paused for ever)
            done = {"done": True} if metrics.get("final") else {}
            tune.report({**metrics, **done}, checkpoint=tune.Checkpoint.from_directory(d))

    run_trial(config, ctx, report, restored=ckpt is not None, reported=reported, node_id=_node_id)


REPORTED = "reported.json"  # in a trial's checkpoint: the stage of the report it came with (0: the plan)


def run_trial(
    config: dict, ctx: dict, report: Any, *, restored: bool = False, reported: int | None = None, node_id: Any = None
) -> None:
    """Run one trial's schedule (what :func:`trainable` does inside Tune, and a local worker of
    ``growsearch search --backend optuna`` outside it), calling ``report(metrics, key)`` for
    the plan (``key`` None), after every stage and at the end (``key``: the stage's
    prefix-cache entry, a checkpoint); ``metrics["stage"]`` is 0 for the plan, then the stage.
    ``restored``: a retry of this trial, which may reuse its own finished stages whatever
    ``config["reuse_upto"]`` says; ``reported``: the last stage whose report was already sent
    (a resumed trial): those reports are not sent again. ``node_id``: names the machine."""
    if reported is not None:
        send = report

        def report(metrics: dict, key: str | None) -> None:
            if metrics["stage"] > reported:
                send(metrics, key)

    import torch

    from growsearch.plan.planner import plan_schedule, planned_M
    from growsearch.train.loop import DivergedError
    from growsearch.train.prefix import find_prefix, prefix_key
    from growsearch.train.run import run_schedule

    judge: Judge = ctx["judge"]
    torch.set_num_threads(max(1, int(ctx["threads"])))
    sched = Schedule.from_dict(config["schedule"])
    ds = split_data(sched)  # once, for training and FGSM
    order = sched.resolved_class_order(ds.num_classes)
    cache = Path(ctx["cache"])
    cache.mkdir(parents=True, exist_ok=True)
    n, bound = len(sched.stages), config.get("bound")
    if reported is not None and reported >= n:
        return  # retried after its final report (its worker died before it returned): Tune has every result
    sched_json = json.dumps(sched.to_dict())
    pending = judge.pending(
        fgsm=ctx.get("fgsm_eps") is not None
    )  # every key Tune may look for, before the trial has earned it

    def on_stage(res: Any, model: Any) -> None:
        i = res.stage
        if i < n:  # the last stage is reported below, with the whole run's metrics
            cum = judge.cumulative_ratio(res)
            report(
                {
                    **pending,
                    "stage": i,
                    "cum_M": res.history[-1]["cum_M"],
                    "cum_ratio": cum,
                    "stage_acc": res.val_acc,
                    "final": False,
                    "schedule": sched_json,
                },
                prefix_key(sched, i, order),
            )
            if not math.isnan(cum) and cannot_win(cum, bound):
                raise StopTrial(i)

    # The plan first: a fixed-epoch schedule's whole M is known before training, so a trial that
    # can no longer win stops before it trains anything (the searcher does not tell Optuna this
    # report: Optuna's steps are stages).
    plan_M = planned_M(plan_schedule(sched, dataset=ds))
    planned = judge.planned_ratio(plan_M)
    if planned is not None:
        report(
            {
                **pending,
                "stage": 0,
                "planned": True,
                "planned_M": plan_M,
                "planned_ratio": planned,
                "stage_acc": 0.0,  # nothing trained yet (NaN would make ASHA's cut-off over plans NaN, and warn)
                "cum_ratio": math.nan,
                "final": False,
                "schedule": sched_json,
            },
            None,
        )
        if cannot_win(planned, bound):
            return
    # what this trial may reuse from the cache: fixed when it was proposed (deterministic
    # search), but always its own stages restored from a Tune checkpoint above
    reuse = config.get("reuse_upto")
    if reuse is not None and restored:
        reuse = max(reuse, find_prefix(sched, order, cache)[0])
    try:
        result = run_schedule(
            sched, dataset=ds, progress=False, prefix_cache=cache, on_stage=on_stage, reuse_upto=reuse
        )
    except StopTrial:
        return
    except DivergedError as e:  # a failed trial, never a result; no retry would do better
        report(
            {
                **pending,
                "stage": n,
                "final": False,
                "diverged": str(e),
                "schedule": sched_json,
                "stage_acc": math.nan,
                "cum_ratio": math.nan,
            },
            None,
        )
        return
    key = prefix_key(sched, n, order)
    (cache / f"{key}.result.json").write_text(
        json.dumps(result.to_dict())
    )  # the searcher stores the best one as an artifact
    metrics = measure_fgsm(judge, judge.metrics(result), sched, order, cache, ds, ctx.get("fgsm_eps"))
    report(
        {
            **pending,
            **metrics,
            "stage": n,
            "cum_M": result.M,
            "cum_ratio": metrics[judge.metric],
            "stage_acc": result.val_acc,
            "schedule": sched_json,
            "stages": json.dumps(metrics["stages"]),
            "versions": json.dumps(metrics["versions"]),
            "node_id": node_id() if node_id else _local_node(),
            "key": key,
            **({"subnets": json.dumps(metrics["subnets"])} if "subnets" in metrics else {}),
        },
        key,
    )


def trial_context(judge: Judge, cache_dir: str | Path, cpus_per_trial: float, fgsm_eps: float | None) -> dict:
    """What every trial of a search runs with (:func:`run_trial`'s ``ctx``): the judge, the
    prefix cache, its torch threads and the FGSM ε."""
    return {
        "judge": judge,
        "cache": str(Path(cache_dir).resolve()),
        "threads": max(1, int(cpus_per_trial)),
        "fgsm_eps": fgsm_eps,
    }


def _local_node() -> str:
    import socket

    return socket.gethostname()


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
    cost: str = "M",
) -> Any:
    """The Tune trainable for ``space`` judged on ``frontier``, with its resources attached.

    Args:
        cache_dir: the stage-prefix cache shared by the trials (on shared storage for a
            multi-node cluster, like ``RunConfig(storage_path=...)``).
        cpus_per_trial: also the torch thread count of every trial (recorded on the study).
        fgsm_eps, min_fgsm_acc: measure each trial's FGSM accuracy with mutual inference
            (and make a floor on it a constraint).
        dataset: the space's data already split (default: loaded from the space's name).
        cost: what the ratio divides (a registered cost: ``"M"``, ``"wall_s"``).
    """
    sp, ds = _space_and_data(space, dataset)
    judge = Judge(given_frontier(frontier, ds), sp.tolerance, cost=cost, min_fgsm_acc=min_fgsm_acc)
    ctx = trial_context(judge, cache_dir, cpus_per_trial, fgsm_eps)
    return tune.with_resources(tune.with_parameters(trainable, ctx=ctx), {"cpu": cpus_per_trial, "gpu": gpus_per_trial})


@dataclass
class TunePieces:
    """What a Tuner needs to run a growsearch study (see :func:`tune_pieces`)."""

    trainable: Any  # for tune.Tuner(trainable, ...)
    search_alg: Any  # TuneConfig(search_alg=...)
    stop: Any  # RunConfig(stop=...): a CostStopper, or None
    callbacks: list = field(default_factory=list)  # RunConfig(callbacks=...)
    judge: Judge | None = None  # what the trials are judged by


def _quiet_placeholders() -> None:
    """Mute the two warnings the documented NaN placeholders of unfinished reports raise in Tune's
    own code, once per report: TensorBoard's logger ("NaN or Inf found in input tensor") and a
    rung scheduler's median over a rung where no trial has a stage accuracy yet ("All-NaN slice
    encountered"). Only those two messages; everything else Tune and numpy say still shows."""
    import logging
    import warnings

    logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)


def _check_workers_registered() -> None:
    """``SearchError`` naming the fix when this process registered families, ops, sources or
    costs that Ray's workers will not know: Ray not started yet (``Tuner.fit`` would start it
    without them) or started without :func:`growsearch.search.cluster.runtime_env`. Every trial
    would otherwise fail inside its worker ("unknown arch ...")."""
    import ray

    from growsearch._extensions import made

    if not made():
        return
    hooked = ray.is_initialized() and "worker_process_setup_hook" in (ray.get_runtime_context().runtime_env or {})
    if not hooked:
        raise SearchError(
            f"Ray's workers would not know what this process registered ({', '.join(made())}): "
            "start Ray yourself before tune_pieces, after your register_* calls, with "
            "ray.init(runtime_env=growsearch.runtime_env())"
        )


def tune_pieces(
    space: str | Path | SearchSpace,
    frontier: str | Path | Frontier,
    *,
    storage: str | optuna.storages.BaseStorage,
    cache_dir: str | Path,
    trials: int,
    study_name: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    fgsm_eps: float | None = None,
    min_fgsm_acc: float | None = None,
    fgsm_objective: bool = False,
    deterministic: bool = False,
    batch: int | None = None,
    artifacts: str | Path | None = None,
    sampler: optuna.samplers.BaseSampler | None = None,
    cost: str = "M",
    dataset: Any = None,
    remaining: int | None = None,
    local: bool = False,
) -> TunePieces:
    """The trainable, search algorithm, stopper and trial lines of one growsearch study, made
    from one set of settings (what ``growsearch search`` builds its Tuner from).

    Args:
        trials: the trial budget (the trial lines count to it).
        remaining: the trials this Tuner runs (``TuneConfig(num_samples=...)``) when a resumed
            study already holds some (default: ``trials``).
        deterministic: propose in fixed batches told in trial order (:class:`InOrderBatches`),
            stop by proposal-time bounds only (no live stopper).
        batch: with ``deterministic``, the batch size (default 1).
        local: the pieces drive local worker processes (:mod:`growsearch.search.local`), not
            Ray's: Ray's workers need not know this process's registrations.

    The other arguments are :class:`Searcher`'s and :func:`trainable_for`'s.
    """
    if not local:
        _check_workers_registered()
    _quiet_placeholders()
    sp, ds = _space_and_data(space, dataset)
    robust = (
        None
        if fgsm_eps is None
        else {"eps": float(fgsm_eps), "objective": bool(fgsm_objective), "min_acc": min_fgsm_acc}
    )
    searcher = Searcher(
        sp,
        frontier,
        storage=storage,
        study_name=study_name,
        sampler=sampler,
        fgsm_objective=fgsm_objective,
        threads=max(1, int(cpus_per_trial)),
        device="cuda" if gpus_per_trial > 0 else "cpu",
        robust=robust,
        dataset=ds,
        cache_dir=cache_dir,
        artifacts=artifacts,
        deterministic=deterministic,
        cost=cost,
    )
    judge = searcher.judge
    trainable_ = trainable_for(
        sp,
        judge.frontier,
        cache_dir=cache_dir,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        fgsm_eps=fgsm_eps,
        min_fgsm_acc=min_fgsm_acc,
        dataset=ds,
        cost=cost,
    )
    # the stopper acts on results as they arrive, which depends on timing: a deterministic search
    # stops trials only by the bound fixed when each was proposed (in the trainable); with two
    # objectives a costlier schedule may still be on the Pareto front
    live_stop = not (fgsm_objective or deterministic)
    last = trials
    if (
        remaining is not None
    ):  # a resumed study numbers its new trials after every trial it holds, the interrupted ones too
        held_trials = searcher.study.trials
        last = len([t for t in held_trials if t.state != optuna.trial.TrialState.WAITING]) + remaining
    return TunePieces(
        trainable=trainable_,
        search_alg=InOrderBatches(searcher, batch or 1, trials if remaining is None else remaining)
        if deterministic
        else searcher,
        stop=CostStopper(judge.metric) if live_stop else None,
        callbacks=[TrialLines(last, judge.metric)],
        judge=judge,
    )
