"""Ray Tune classes that Tune pickles with its experiment state.

They live at module level here (and import Ray at the top) so that ``Tuner.restore`` can
unpickle them by name; ``growsearch.search`` imports this module only when a search runs.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
from ray import tune
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from growsearch.search import METRIC, _user_attrs


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
        for key, value in _user_attrs(result or {}).items():
            ot_trial.set_user_attr(key, value)
        if result and "constraint" in result and hasattr(ot_trial, "set_constraint"):
            ot_trial.set_constraint("accuracy", float(result["constraint"]))  # Optuna ≥ 5; older ones use constraints_func
            if "fgsm_constraint" in result:
                ot_trial.set_constraint("fgsm", float(result["fgsm_constraint"]))
        if error or (result and not result.get("final")):
            # errored for good (retries spent): FAIL, not COMPLETE with a partial run's value;
            # stopped before its last stage: PRUNED
            state = optuna.trial.TrialState.FAIL if error else optuna.trial.TrialState.PRUNED
            self._ot_study.tell(ot_trial, state=state)
            self._completed_trials.add(trial_id)
            return None
        return super().on_trial_complete(trial_id, result, error)


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
        if result.get("planned"):
            return float(result["planned_ratio"]) >= self.best
        return float(result[METRIC]) >= self.best

    def stop_all(self) -> bool:
        return False


class TrialLines(tune.Callback):
    """One line per finished trial on the driver's stdout."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.done += 1
        r = trial.last_result or {}
        if r.get("final"):
            sched = json.loads(r["schedule"]) if isinstance(r.get("schedule"), str) else {}
            shape = " → ".join(f"{s['classes']}:{s['arch']}" for s in sched.get("stages", []))
            print(
                f"trial {self.done}/{self.total}: M ratio {r[METRIC]:.3f}, val acc {r['val_acc']:.4f} (test {r['test_acc']:.4f}) "
                f"{'feasible' if r.get('feasible') else 'infeasible'}  [{shape}]",
                flush=True,
            )
        elif r.get("planned"):
            print(f"trial {self.done}/{self.total}: pruned before training: its planned M ratio {r['planned_ratio']:.3f} already reached the best", flush=True)
        else:
            print(f"trial {self.done}/{self.total}: stopped after stage {r.get('stage', '?')}: its M ratio {r.get(METRIC, float('nan')):.3f} already reached the best", flush=True)
