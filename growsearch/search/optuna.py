"""growsearch inside your own Optuna study: an objective, a cost pruner and the constraints.

No Ray needed: every trial trains one cumulative schedule in this process. The study records
exactly what growsearch's own search records (user attributes, constraint, the frontier and
target on the study), so ``growsearch.load_best`` and ``growsearch export`` read either.

Example:
    >>> import optuna
    >>> from growsearch.search.optuna import CostPruner, Objective, constraints
    >>> study = optuna.create_study(
    ...     sampler=optuna.samplers.TPESampler(seed=0, constraints_func=constraints), pruner=CostPruner()
    ... )  # doctest: +SKIP
    >>> study.optimize(Objective("digits_vgg", frontier="runs/frontier"), n_trials=8)  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import optuna

from growsearch.errors import GrowsearchError
from growsearch.train.frontier import Frontier
from growsearch.search.study import (
    best_trial, ensure_frontier, given_frontier, measure_fgsm, METRIC, name_metrics, record_setup, run_metrics, search_target, set_constraints, split_data, store_network, user_attrs,
)
from growsearch.search.study import constraints as _constraints
from growsearch.search.space import load_space, SearchSpace, suggest_schedule

__all__ = ["CostPruner", "Objective", "constraints"]

SECOND = ("val_acc", "fgsm_mi_acc")


def constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
    """``constraints_func`` for samplers that take one (TPE, NSGA-II, GP): ≤ 0 is feasible
    (validation accuracy reached the study's target; and FGSM-MI accuracy its floor, if set)."""
    return _constraints(trial)


class CostPruner(optuna.pruners.BasePruner):
    """Prunes a trial once its cumulative M ratio reaches the best feasible trial's.

    The M ratio only grows stage by stage, so such a trial can no longer win; unlike a rung
    rule (successive halving), this never prunes a schedule that could have been the answer.
    The same rule as ``growsearch search``'s stopper.
    """

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        best = best_trial(study)
        return best is not None and trial.intermediate_values[step] >= best.user_attrs[METRIC]


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

    Each stage reports the cumulative M ratio (``trial.report``; single objective only), and a
    fixed-epoch schedule whose *planned* M ratio already reaches the best feasible trial's is
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
    ) -> None:
        self.space = space if isinstance(space, SearchSpace) else load_space(space)
        if second is not None and second not in SECOND:
            raise GrowsearchError(f"second must be one of {', '.join(SECOND)}, got {second!r}")
        if second == "fgsm_mi_acc" and fgsm_eps is None:
            raise GrowsearchError("second='fgsm_mi_acc' needs fgsm_eps (e.g. 0.02)")
        if min_fgsm_acc is not None and fgsm_eps is None:
            raise GrowsearchError("min_fgsm_acc needs fgsm_eps (the ε the floor is measured at, e.g. 0.02)")
        if fgsm_eps is not None and out_dir is None:
            raise GrowsearchError("fgsm_eps reads the stage networks from the prefix cache: give out_dir")
        self.frontier, self.out_dir, self.second, self.fgsm_eps, self.device = frontier, out_dir, second, fgsm_eps, device
        self.artifact_store, self.min_fgsm_acc = artifact_store, min_fgsm_acc
        self._ds = None
        self._study: tuple[str, float, float] | None = None  # (study name, target, M_ref) once set up

    def _data(self) -> Any:
        if self._ds is None:
            self._ds = split_data(self.space)
        return self._ds

    def _setup(self, study: optuna.Study) -> tuple[float, float]:
        """The study's frontier, target and M_scratch(target), stored on it once."""
        import torch

        ds = self._data()
        given = given_frontier(self.frontier, ds)
        if given is not None and study.user_attrs.get("frontier") not in (None, given.to_dict()):
            raise GrowsearchError(f"study {study.study_name!r} already compares with another frontier: use a new study")
        out = Path(self.out_dir) if self.out_dir is not None else None
        front = ensure_frontier(study, self.space, out or Path("."), ds, given) if given is not None or out is not None else None
        if front is None:
            if "frontier" not in study.user_attrs:
                raise GrowsearchError("Objective needs a frontier: pass frontier=FRONTIER_DIR, or out_dir=DIR to train the space's")
            front = Frontier.from_dict(study.user_attrs["frontier"])
        target, ref = search_target(front, self.space.tolerance)
        if "target_acc" not in study.user_attrs:
            # the FGSM settings in growsearch search's shape (its resume check compares them)
            robust = None if self.fgsm_eps is None else {"eps": float(self.fgsm_eps), "objective": self.second == "fgsm_mi_acc", "min_acc": self.min_fgsm_acc}
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            record_setup(study, self.space, target, ref["M"], threads=torch.get_num_threads(), device=device, robust=robust)
            names = [METRIC] + ([self.second] if self.second else [])
            if len(study.directions) != len(names):
                raise GrowsearchError(
                    f"the study has {len(study.directions)} direction(s) but the objective returns {len(names)} ({', '.join(names)}): "
                    + ("create it with directions=['minimize', 'maximize']" if self.second else "create it with direction='minimize'")
                )
            name_metrics(study, names)
        return target, ref["M"]

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        from growsearch.plan.planner import plan_schedule, planned_M
        from growsearch.train.run import run_schedule

        study = trial.study
        if self._study is None or self._study[0] != study.study_name:
            self._study = (study.study_name, *self._setup(study))
        _, target, ref_M = self._study
        ds = self._data()
        sched = suggest_schedule(trial, self.space, ds.num_classes)
        trial.set_user_attr("schedule", sched.to_dict())
        single = len(study.directions) == 1
        planned = planned_M(plan_schedule(sched, dataset=ds))
        if planned is not None:
            trial.set_user_attr("planned_M", planned)
            best = best_trial(study)
            if single and best is not None and planned / ref_M >= best.user_attrs[METRIC]:
                trial.set_user_attr("planned_M_ratio", planned / ref_M)
                raise optuna.TrialPruned(f"planned M ratio {planned / ref_M:.3f} already reaches the best {best.user_attrs[METRIC]:.3f}")
        n = len(sched.stages)

        def on_stage(res: Any, model: Any) -> None:
            i = next(j for j, st in enumerate(sched.stages, 1) if st.classes == res.classes)
            if single and i < n:
                trial.report(res.history[-1]["cum_M"] / ref_M, i)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"M ratio after stage {i} already reaches the best feasible trial's")

        cache = Path(self.out_dir) / "prefix_cache" if self.out_dir is not None else None
        keep = self.artifact_store is not None or self.out_dir is not None
        with tempfile.TemporaryDirectory() as run_dir:
            result = run_schedule(
                sched, dataset=ds, progress=False, prefix_cache=cache, on_stage=on_stage, device=self.device,
                out_dir=Path(run_dir) / "run" if keep else None,
            )
            metrics = run_metrics(result, ref_M, target)
            ratio = metrics[METRIC]
            measure_fgsm(metrics, sched, sched.resolved_class_order(ds.num_classes), cache, ds, self.fgsm_eps, self.min_fgsm_acc)
            best = best_trial(study)
            if keep and metrics["feasible"] and (best is None or ratio < best.user_attrs[METRIC]):
                base = Path(self.out_dir) / "artifacts" if self.out_dir is not None else None
                store_network(study, trial, Path(run_dir) / "run" / f"stage{n}.pt", result.to_dict(), artifact_store=self.artifact_store, base=base)
        if single:
            trial.report(ratio, n)
        for key, value in user_attrs(metrics).items():
            trial.set_user_attr(key, value)
        set_constraints(trial, metrics)  # Optuna ≥ 5; older samplers read the user attribute through constraints_func
        if self.second is None:
            return ratio
        return ratio, float(metrics[self.second])
