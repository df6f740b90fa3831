"""growsearch inside your own Optuna study: an objective, a cost pruner and the constraints.

No Ray needed: every trial trains one cumulative schedule in this process. The study records
exactly what growsearch's own search records (what the trials are judged by, their user
attributes and constraints), so ``growsearch.load_best`` and ``growsearch export`` read either.

Example:
    >>> import optuna
    >>> from growsearch.search.optuna import CostPruner, Objective, default_sampler
    >>> study = optuna.create_study(sampler=default_sampler(seed=0, trials=8), pruner=CostPruner())  # doctest: +SKIP
    >>> study.optimize(Objective("digits_vgg", frontier="runs/frontier"), n_trials=8)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import tempfile
import threading
from pathlib import Path
from typing import Any

import optuna

from growsearch.search.judge import Judge, SearchError, best_trial, cannot_win, get_cost
from growsearch.search.space import SearchSpace, load_space, suggest_schedule
from growsearch.search.study import (
    ensure_frontier,
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

_SETUP = threading.Lock()  # a study's frontier and records are set up once, whichever trial thread asks first

__all__ = ["CostPruner", "Objective", "constraints", "default_sampler"]

SECOND = ("val_acc", "fgsm_mi_acc")


def constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
    """``constraints_func`` for Optuna < 5, whose samplers take one (≤ 0 is feasible: validation
    accuracy reached the study's target, and FGSM-MI accuracy its floor if set). Optuna ≥ 5 reads
    the constraints growsearch sets on each trial (``Trial.set_constraint``) and needs none."""
    return list(trial.user_attrs.get("constraint", [1.0]))


def default_sampler(seed: int, trials: int) -> optuna.samplers.BaseSampler:
    """TPE seeded by ``seed``, with a third of the budget (2 to 10) as random start-up trials, and
    on Optuna < 5 the ``constraints_func`` its constraint handling needs."""
    legacy = not hasattr(optuna.trial.Trial, "set_constraint")
    return optuna.samplers.TPESampler(
        seed=seed, constraints_func=constraints if legacy else None, n_startup_trials=max(2, min(10, trials // 3))
    )


class CostPruner(optuna.pruners.BasePruner):
    """Prunes a trial once its cumulative ratio reaches the best feasible trial's
    (:func:`growsearch.search.judge.cannot_win`): the ratio only grows stage by stage, so such a
    trial can no longer win; unlike a rung rule (successive halving), this never prunes a
    schedule that could have been the answer. The same rule as ``growsearch search``'s stopper."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        metric = study.user_attrs.get("metric", "M_ratio")  # what the study's Objective recorded
        best = best_trial(study, metric)
        return best is not None and cannot_win(trial.intermediate_values[step], best.user_attrs[metric])


class Objective:
    """One cumulative schedule per trial, proposed define-by-run from ``space``.

    Args:
        space: a space name (``"digits_vgg"``), a YAML path or a ``SearchSpace``.
        frontier: the from-scratch frontier (a ``growsearch baseline --out`` folder or a
            ``Frontier``); when omitted the first trial trains the space's frontier (into
            ``out_dir/frontier`` if given) and stores it on the study, as ``growsearch search`` does.
        out_dir: a folder for the stage-prefix cache (trials sharing a prefix load it instead of
            training it again) and the frontier; default: no cache.
        second: also return ``"val_acc"`` (maximised) or ``"fgsm_mi_acc"`` (needs ``fgsm_eps``):
            create the study with ``directions=["minimize", "maximize"]``.
        fgsm_eps: measure every trial's FGSM accuracy with mutual inference at this ε (needs ``out_dir``).
        min_fgsm_acc: a floor on that accuracy (needs ``fgsm_eps``): a second constraint, so a
            trial is feasible only when it reaches the target accuracy *and* this robustness.
        device: ``"cuda"``/``"cpu"`` (default CUDA when available).
        artifact_store: where each new best feasible trial's final network and ``result.json``
            go as Optuna artifacts (any Optuna store); default a file-system store in
            ``out_dir/artifacts`` when ``out_dir`` is given, else none.
        cost: what the ratio divides (a registered cost, :mod:`growsearch.search.judge`: ``"M"``,
            training MACs; ``"wall_s"``, wall-clock seconds).

    Each stage reports the cumulative ratio (``trial.report``; single objective only), and a
    fixed-epoch schedule whose *planned* ratio already reaches the best feasible trial's is
    pruned before it trains (single objective only: with two objectives a costlier schedule
    can still be Pareto-optimal).
    """

    def __init__(
        self,
        space: str | Path | SearchSpace,
        *,
        frontier: str | Path | Frontier | None = None,
        out_dir: str | Path | None = None,
        second: str | None = None,
        fgsm_eps: float | None = None,
        min_fgsm_acc: float | None = None,
        device: str | None = None,
        artifact_store: Any = None,
        cost: str = "M",
    ) -> None:
        self.space = space if isinstance(space, SearchSpace) else load_space(space)
        if second is not None and second not in SECOND:
            raise SearchError(f"second must be one of {', '.join(SECOND)}, got {second!r}")
        if second == "fgsm_mi_acc" and fgsm_eps is None:
            raise SearchError("second='fgsm_mi_acc' needs fgsm_eps (e.g. 0.02)")
        if min_fgsm_acc is not None and fgsm_eps is None:
            raise SearchError("min_fgsm_acc needs fgsm_eps (the ε the floor is measured at, e.g. 0.02)")
        if fgsm_eps is not None and out_dir is None:
            raise SearchError("fgsm_eps reads the stage networks from the prefix cache: give out_dir")
        if (
            get_cost(cost).family and self.space.shrink is None
        ):  # an unknown cost is an error now, not in the first trial
            raise SearchError(f"cost {cost!r} prices a shrink run's subnets: give a space with a shrink block")
        self.frontier, self.out_dir, self.second, self.fgsm_eps, self.device = (
            frontier,
            out_dir,
            second,
            fgsm_eps,
            device,
        )
        self.artifact_store, self.min_fgsm_acc, self.cost = artifact_store, min_fgsm_acc, cost
        self._ds = None
        self._judges: dict[str, Judge] = {}  # per study name, once set up

    def _data(self) -> Any:
        if self._ds is None:
            self._ds = split_data(self.space)
        return self._ds

    def _judge(self, study: optuna.Study) -> Judge:
        """The study's judge: its frontier (stored on it, given, or trained now) and the
        tolerance, cost and FGSM floor, stored on it once."""
        with _SETUP:  # Optuna's n_jobs runs trials in threads: one of them sets the study up, once
            if study.study_name not in self._judges:
                self._judges[study.study_name] = self._set_up(study)
            return self._judges[study.study_name]

    def _set_up(self, study: optuna.Study) -> Judge:
        import torch

        ds = self._data()
        given = given_frontier(self.frontier, ds)
        if given is not None and study.user_attrs.get("frontier") not in (None, given.to_dict()):
            raise SearchError(f"study {study.study_name!r} already compares with another frontier: use a new study")
        out = Path(self.out_dir) if self.out_dir is not None else None
        family = get_cost(self.cost).family
        front = (
            ensure_frontier(study, self.space, out or Path("."), ds, given, family=family)
            if given is not None or out is not None
            else None
        )
        if front is None:
            if "frontier" not in study.user_attrs:
                raise SearchError(
                    "Objective needs a frontier: pass frontier=FRONTIER_DIR, or out_dir=DIR to train the space's"
                )
            front = Frontier.from_dict(study.user_attrs["frontier"])
        judge = Judge(front, self.space.tolerance, cost=self.cost, min_fgsm_acc=self.min_fgsm_acc)
        if "target_acc" not in study.user_attrs:
            names = [judge.metric] + ([self.second] if self.second else [])
            if len(study.directions) != len(names):
                raise SearchError(
                    f"the study has {len(study.directions)} direction(s) but the objective returns {len(names)} ({', '.join(names)}): "
                    + (
                        "create it with directions=['minimize', 'maximize']"
                        if self.second
                        else "create it with direction='minimize'"
                    )
                )
            # the FGSM settings in growsearch search's shape (its resume check compares them)
            robust = (
                None
                if self.fgsm_eps is None
                else {
                    "eps": float(self.fgsm_eps),
                    "objective": self.second == "fgsm_mi_acc",
                    "min_acc": self.min_fgsm_acc,
                }
            )
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            record_setup(study, judge, self.space, threads=torch.get_num_threads(), device=device, robust=robust)
            name_metrics(study, names)
        return judge

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        from growsearch.plan.planner import plan_schedule, planned_M
        from growsearch.train.loop import DivergedError
        from growsearch.train.run import run_schedule

        study = trial.study
        judge = self._judge(study)
        ds = self._data()
        sched = suggest_schedule(trial, self.space, ds.num_classes)
        trial.set_user_attr("schedule", sched.to_dict())
        single = len(study.directions) == 1
        plan_M = planned_M(plan_schedule(sched, dataset=ds))
        planned = judge.planned_ratio(plan_M)
        if plan_M is not None:
            trial.set_user_attr("planned_M", plan_M)
        best = judge.best_ratio(study)
        if single and planned is not None and judge.cannot_win(planned, best):
            trial.set_user_attr(f"planned_{judge.metric}", planned)
            raise optuna.TrialPruned(f"planned {judge.metric} {planned:.3f} already reaches the best {best:.3f}")
        n = len(sched.stages)

        def on_stage(res: Any, model: Any) -> None:
            i = res.stage
            cum = judge.cumulative_ratio(res)
            if single and i < n and cum == cum:  # NaN: this cost is not known mid-run
                trial.report(cum, i)
                if trial.should_prune():
                    raise optuna.TrialPruned(
                        f"{judge.metric} after stage {i} already reaches the best feasible trial's"
                    )

        cache = Path(self.out_dir) / "prefix_cache" if self.out_dir is not None else None
        keep = self.artifact_store is not None or self.out_dir is not None
        with tempfile.TemporaryDirectory() as run_dir:
            try:
                result = run_schedule(
                    sched,
                    dataset=ds,
                    progress=False,
                    prefix_cache=cache,
                    on_stage=on_stage,
                    device=self.device,
                    out_dir=Path(run_dir) / "run" if keep else None,
                )
            except DivergedError as e:  # a failed trial (Optuna fails a NaN value), never a result; the study goes on
                trial.set_user_attr("failed_because", str(e))
                return math.nan if self.second is None else (math.nan, math.nan)
            metrics = measure_fgsm(
                judge,
                judge.metrics(result),
                sched,
                sched.resolved_class_order(ds.num_classes),
                cache,
                ds,
                self.fgsm_eps,
            )
            ratio = metrics[judge.metric]
            if keep and metrics["feasible"] and not judge.cannot_win(ratio, judge.best_ratio(study)):
                base = Path(self.out_dir) / "artifacts" if self.out_dir is not None else None
                store_network(
                    study,
                    trial,
                    Path(run_dir) / "run" / f"stage{n}.pt",
                    result.to_dict(),
                    artifact_store=self.artifact_store,
                    base=base,
                )
        if single:
            trial.report(ratio, n)
        for key, value in user_attrs(metrics, judge.metric).items():
            trial.set_user_attr(key, value)
        set_constraints(trial, metrics)
        if self.second is None:
            return ratio
        return ratio, float(metrics[self.second])
