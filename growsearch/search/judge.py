"""The judge of a trial: one object that holds the frontier, the tolerance and the target, and
answers everything every route asks of a trial.

A trial's ratio is its cost over the cheapest from-scratch cost that reaches the target on the
frontier (the target: the frontier's best validation accuracy − tolerance); it is feasible when
its validation accuracy reaches the target (and, with a floor, its FGSM accuracy the floor); it
can no longer win once its ratio, planned or cumulative so far (both only grow), reaches the
best feasible one. The Optuna objective and pruner, the Tune trainable, searcher and stopper,
the study records and the command's report are thin adapters over a :class:`Judge`.

What "cost" means is a :class:`Cost` registered by name: ``"M"`` (training MACs, the default:
ratio ``M_ratio``) and ``"wall_s"`` (wall-clock seconds: ratio ``wall_ratio``) ship; a new
objective is one :func:`register_cost` call.

Example:
    >>> from growsearch.train.frontier import Frontier, FrontierPoint, Reference
    >>> pts = [FrontierPoint(epochs=e, M=m, val_acc=a, test_acc=a, wall_s=m / 10, lr=0.05) for e, m, a in ((2, 100, 0.80), (4, 200, 0.90))]
    >>> judge = Judge(Frontier("digits", 10, list(range(10)), 0.1, 0, "ab12", {}, [Reference("vgg19", "vgg19", None, pts)]), tolerance=0.0)
    >>> judge.target, judge.ref_cost, judge.ratio(100.0)
    (0.9, 200.0, 0.5)
    >>> judge.cannot_win(0.6, best=0.5), judge.cannot_win(0.4, best=0.5)
    (True, False)
    >>> Judge(judge.frontier, tolerance=0.0, cost="wall_s").metric
    'wall_ratio'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

from growsearch._extensions import caller, record
from growsearch.errors import GrowsearchError
from growsearch.train.frontier import Frontier

__all__ = [
    "FGSM_METRIC",
    "STAGE_FIELDS",
    "Cost",
    "Judge",
    "SearchError",
    "SearchInterrupted",
    "StopTrial",
    "best_trial",
    "cannot_win",
    "feasible_trials",
    "get_cost",
    "list_costs",
    "register_cost",
]


class SearchError(GrowsearchError, ValueError):
    """A search that cannot start or continue as asked, or a study that cannot answer; the message names the fix."""


class SearchInterrupted(SearchError):
    """A search stopped (Ctrl-C, SIGTERM) before its trials had run: nothing is summarised or
    chosen; ``growsearch search`` exits 130 with the resume command."""


FGSM_METRIC = "fgsm_mi_acc"  # FGSM accuracy of the run's mutual inference (the attacker knows the final net)
# per stage of a finished trial: what its "stages" user attribute keeps
STAGE_FIELDS = (
    "classes",
    "arch",
    "resolution",
    "epochs",
    "samples",
    "macs_per_sample",
    "M",
    "val_acc",
    "test_acc",
    "wall_s",
    "params",
)


class StopTrial(Exception):
    """Raised inside a trial's stage callback to end it: it can no longer win (:func:`cannot_win`)."""


def cannot_win(ratio: float, best: float | None) -> bool:
    """The one rule every route stops or prunes by: a trial whose ratio (planned, or cumulative
    so far, which only grows) already reaches the best feasible one can no longer be the answer.
    Unlike a rung rule (ASHA), it never discards a schedule that could have won."""
    return best is not None and ratio >= best


@dataclass(frozen=True)
class Cost:
    """What a trial's ratio divides: the run's cost over the frontier's at the target."""

    name: str  # what Judge(cost=...), Objective(cost=...) and --cost call it ("M", "wall_s")
    metric: str  # the ratio's name in Optuna and Tune ("M_ratio")
    of_run: Callable[[Any], float]  # a finished RunResult's cost
    frontier_key: str = "M"  # what each frontier budget records of the same cost ("M", "wall_s"): the denominator
    so_far: Callable[[Any], float] | None = (
        None  # the cost up to a StageResult, earlier stages included (None: not known mid-run)
    )
    plannable: bool = False  # a fixed-epoch schedule's cost is its planned M: a trial can be judged before it trains
    what: str = ""  # in words, for --help and reports
    family: bool = (
        False  # the run is a shrink run's family: each subnet is judged on its own frontier reference (see Judge)
    )


def _run_M(result: Any) -> float:
    return float(result.M)


def _M_so_far(stage: Any) -> float:
    return float(stage.history[-1]["cum_M"])  # every epoch row carries the run's cumulative M


def _run_wall(result: Any) -> float:
    # the stages' own wall times: a stage loaded from the prefix cache counts what training it took
    return float(sum(s.wall_s for s in result.stages))


_COSTS: dict[str, Cost] = {}


def register_cost(cost: Cost) -> Cost:
    """Make ``cost`` an objective every route can minimise (``Judge(cost=NAME)``,
    ``Objective(cost=NAME)``, ``growsearch search --cost NAME``): one call, nothing else to change.
    Its ``frontier_key`` must be a value each frontier budget records (``M``, ``wall_s``).

    Example:
        >>> _ = register_cost(Cost("M_nonzero", "nonzero_ratio", lambda r: r.M_nonzero, frontier_key="M", what="MACs with zero weights skipped"))
        >>> "M_nonzero" in list_costs()
        True
    """
    from growsearch.train.frontier import FrontierPoint

    if cost.frontier_key not in FrontierPoint.__dataclass_fields__ or cost.frontier_key in (
        "epochs",
        "seeds",
        "lr_sweep",
    ):
        raise SearchError(f"cost {cost.name!r}: a frontier budget records no {cost.frontier_key!r}; use M or wall_s")
    taken = {c.metric: c.name for c in _COSTS.values() if c.name != cost.name}
    if cost.metric in taken:
        raise SearchError(
            f"cost {cost.name!r}: the metric name {cost.metric!r} already belongs to cost {taken[cost.metric]!r}"
        )
    record(register_cost, cost, by=caller())  # so the Ray workers a search starts register it too
    _COSTS[cost.name] = cost
    return cost


def get_cost(name: str) -> Cost:
    """A registered cost by name (``"M"``, ``"wall_s"``)."""
    try:
        return _COSTS[name]
    except KeyError:
        raise SearchError(f"unknown cost {name!r}; known: {', '.join(list_costs())}") from None


def list_costs() -> list[str]:
    return sorted(_COSTS)


register_cost(
    Cost("M", "M_ratio", _run_M, "M", _M_so_far, plannable=True, what="training MACs, Σ samples × forward MACs")
)
register_cost(
    Cost("wall_s", "wall_ratio", _run_wall, "wall_s", what="wall-clock seconds of training and per-epoch evaluation")
)
register_cost(
    Cost(
        "family",
        "family_ratio",
        _run_M,
        "M",
        _M_so_far,
        plannable=True,
        family=True,
        what="training MACs of a shrink run, over the sum of every subnet's from-scratch M at its own target; feasible when every subnet reaches its target",
    )
)


def feasible_trials(trials: list, metric: str = "M_ratio") -> list:
    """Complete, finished and feasible trials (under every constraint) that carry ``metric``."""
    import optuna

    return [
        t
        for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE
        and t.user_attrs.get("feasible")
        and t.user_attrs.get("final")
        and metric in t.user_attrs
    ]


def best_trial(study: Any, metric: str | None = None) -> Any | None:
    """The cheapest feasible trial of ``study`` by ``metric`` (default: the one recorded on it), or None."""
    metric = metric or study.user_attrs.get("metric", "M_ratio")
    confirmed = study.user_attrs.get("confirmed")
    if confirmed:  # a confirmed search's best is the one that held up on more seeds (growsearch.search.confirm)
        n = confirmed.get("best")
        return None if n is None else next(t for t in study.trials if t.number == n)
    return min(feasible_trials(study.trials, metric), key=lambda t: t.user_attrs[metric], default=None)


@dataclass(frozen=True)
class Judge:
    """What every trial of a study is judged by.

    Args:
        frontier: the from-scratch frontier (the denominator).
        tolerance: feasible when validation accuracy ≥ the frontier's best − tolerance.
        cost: a registered :class:`Cost` name (``"M"``; ``"wall_s"``).
        min_fgsm_acc: a floor on FGSM mutual-inference accuracy: a second constraint.
    """

    frontier: Frontier
    tolerance: float = 0.005  # 0.5 pt: the paper's iso-accuracy band
    cost: str = "M"
    min_fgsm_acc: float | None = None
    _cost: Cost = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cost", get_cost(self.cost))
        self._check()

    def __reduce__(self) -> tuple:
        # pickled by the cost's name, not its functions: a cost registered with a lambda or a
        # closure (register_cost's own example) survives Tune checkpointing the searcher with
        # plain pickle; the registration itself reaches workers through runtime_env()
        return (type(self), (self.frontier, self.tolerance, self.cost, self.min_fgsm_acc))

    def _check(self) -> None:
        if (
            isinstance(self.tolerance, bool)
            or not isinstance(self.tolerance, (int, float))
            or not 0 <= self.tolerance < 1
        ):
            raise SearchError(f"tolerance is a fraction of accuracy in [0, 1), got {self.tolerance!r} (0.005 = 0.5 pt)")

    # --- the yardstick ------------------------------------------------------------------------

    @property
    def in_M(self) -> bool:
        """Priced in M (the default cost), where the frontier's budgets and ``M_ref`` share the
        trials' units; the cost's name is read here once."""
        return self.cost == "M"

    @property
    def denominator(self) -> str:
        """What a trial's ratio divides by, in words: ``M_scratch(target)`` or ``from-scratch COST at the target``."""
        return "M_scratch(target)" if self.in_M else f"from-scratch {self.cost} at the target"

    @property
    def target(self) -> float:
        """The validation accuracy a feasible trial reaches: the frontier's best − tolerance (a
        family: the full network's, the last reference's)."""
        if self._cost.family:
            return self.members[-1][1]
        return self.frontier.best_val_acc - self.tolerance

    @cached_property
    def members(self) -> list[tuple[Any, float, dict]]:
        """A family's yardstick: per frontier reference (one per subnet architecture, the smallest
        first), its target (its own best − tolerance) and how it reaches it (:meth:`Frontier.scratch`)."""
        from dataclasses import replace

        out = []
        for ref in (r for r in self.frontier.references if r.resolutions is None):
            one = replace(self.frontier, references=[ref])
            target = one.best_val_acc - self.tolerance
            out.append((ref, target, one.scratch(target, self._cost.frontier_key)))
        return out

    @cached_property
    def ref(self) -> dict:
        """How the frontier reaches the target: its cost there (under the cost's key), the
        reference, and whether that is a bound (see :meth:`Frontier.scratch`). A family's: the sum
        over its subnets' references, a bound when any of them is."""
        if self._cost.family:
            key = self._cost.frontier_key
            return {
                key: sum(m[2][key] for m in self.members),
                "reference": f"family of {len(self.members)}",
                "beyond": any(m[2]["beyond"] for m in self.members),
                "below": any(m[2]["below"] for m in self.members),
            }
        return self.frontier.scratch(self.target, self._cost.frontier_key)

    @property
    def ref_cost(self) -> float:
        """The ratio's denominator: the cheapest from-scratch cost that reaches the target."""
        return float(self.ref[self._cost.frontier_key])

    @property
    def frontier_key(self) -> str:
        """What each frontier budget records of the cost (``"M"``, ``"wall_s"``): the denominator's key."""
        return self._cost.frontier_key

    @property
    def metric(self) -> str:
        """The ratio's name in Optuna and Tune (``M_ratio``)."""
        return self._cost.metric

    @property
    def feasible_metric(self) -> str:
        """The ratio where a trial is feasible, NaN everywhere else (``M_ratio_feasible``): what
        Tune's ``get_best_result(..., "min")`` and schedulers should read. NaN, not inf: Tune's
        ``get_best_result`` skips both, and its TensorBoard logger skips NaN but passes inf on to
        tensorboardX, which warns once per report ("NaN or Inf found in input tensor")."""
        return f"{self._cost.metric}_feasible"

    def ratio(self, value: float) -> float:
        return float(value) / self.ref_cost

    def planned_ratio(self, planned_M: int | None) -> float | None:
        """A fixed-epoch schedule's ratio from its plan, where the cost is plannable; else None."""
        return None if planned_M is None or not self._cost.plannable else self.ratio(planned_M)

    def cumulative_ratio(self, stage: Any) -> float:
        """The ratio a run has spent up to a finished stage (a ``StageResult``); NaN when the cost
        is not known mid-run. It only grows, so it can end a trial that can no longer win."""
        return math.nan if self._cost.so_far is None else self.ratio(self._cost.so_far(stage))

    cannot_win = staticmethod(cannot_win)

    # --- a finished trial ---------------------------------------------------------------------

    def metrics(self, result: Any) -> dict:
        """A finished run's metrics, as every route records them: M, the ratio, accuracies
        (feasibility reads validation; test is only reported), cost spent, the constraints."""
        value = self._cost.of_run(result)
        ratio = self.ratio(value)
        extra: dict = {}  # a family's per-subnet record; or the second yardstick and the interval
        if self._cost.family:
            constraint = self._family_constraint(result, extra)
        else:
            constraint = self.target - result.val_acc
            extra.update(self.yardsticks(value, result.stages[-1].arch if result.stages else None))
        out = {
            "M": result.M,
            self.metric: ratio,
            "val_acc": result.val_acc,
            "test_acc": result.test_acc,
            "final": True,
            "constraint": constraint,
            **extra,
            "wall_s": result.wall_s,
            "spent_M": result.spent_M,
            "reused_stages": result.reused_stages,
            "M_nonzero": result.M_nonzero,
            "stages": [{k: getattr(s, k) for k in STAGE_FIELDS} for s in result.stages],
            "versions": result.versions,
        }
        return self._settle(out)

    def yardsticks(self, value: float, final_arch: str | None) -> dict:
        """A trial's second yardstick and interval, as Tune-friendly scalars: ``M_ratio_same``
        (its cost over ``final_arch``'s own from-scratch cost at the target; absent when the
        frontier trained no such reference) and ``M_ratio_ci_low``/``_high`` (the 95 % interval of
        ``M_ratio`` over the frontier's seeds, :meth:`Frontier.ratio_interval`)."""
        key = self._cost.frontier_key
        same = self.frontier.only(final_arch) if final_arch else None
        lo, hi = self.frontier.ratio_interval([(value, self.target)], acc=self.target, cost=key)
        out = {f"{self.metric}_ci_low": lo, f"{self.metric}_ci_high": hi}
        if same is not None:  # absent rather than None or NaN: Tune's loggers take numbers only
            out[f"{self.metric}_same"] = float(value) / float(same.scratch(self.target, key)[key])
        return out

    def _family_constraint(self, result: Any, extra: dict) -> float:
        """A family trial's accuracy constraint: the largest shortfall of a subnet below its own
        reference's target (≤ 0: every subnet reached it); 1 when a subnet has no reference or the
        run has no subnets. ``extra`` receives the per-subnet record (``subnets``)."""
        from growsearch.train.family import matches

        rows, worst, rec = result.subnets or [], 1.0 if not result.subnets else -math.inf, []
        for row in rows:
            hit = next((m for m in self.members if matches(m[0], row["spec"], self.frontier.num_classes)), None)
            short = 1.0 if hit is None else hit[1] - row["val_acc"]
            worst = max(worst, short)
            rec.append(
                {
                    "subnet": row["subnet"],
                    "arch": row["arch"],
                    "val_acc": row["val_acc"],
                    "test_acc": row["test_acc"],
                    "target": None if hit is None else hit[1],
                }
            )
        extra["subnets"] = rec
        return float(worst)

    def add_fgsm(self, metrics: dict, fgsm: dict) -> dict:
        """``metrics`` with a run's FGSM accuracies (``fgsm_mi_acc``, ``fgsm_acc``, ``fgsm_eps``)
        and, with a floor, its second constraint (which feasibility then also needs)."""
        out = {**metrics, **fgsm}
        if self.min_fgsm_acc is not None:
            out["fgsm_constraint"] = float(self.min_fgsm_acc) - float(fgsm[FGSM_METRIC])
        return self._settle(out)

    def _settle(self, metrics: dict) -> dict:
        feasible = all(c <= 0 for c in self.constraints(metrics))
        return {**metrics, "feasible": feasible, self.feasible_metric: metrics[self.metric] if feasible else math.nan}

    @staticmethod
    def constraints(metrics: dict) -> list[float]:
        """A finished trial's constraints, ≤ 0 each when feasible: accuracy, then the FGSM floor if set."""
        return [float(metrics["constraint"])] + (
            [float(metrics["fgsm_constraint"])] if "fgsm_constraint" in metrics else []
        )

    # --- reports to Tune ----------------------------------------------------------------------

    def pending(self, fgsm: bool = False) -> dict:
        """The metrics a report carries before the trial has finished: NaN, so Tune's strict
        metric check (the searcher's metric is ``M_ratio``), its schedulers and ``get_best_result``
        see every key in every report and never a value a finished trial did not earn; Tune's
        loggers skip NaN (TensorBoard) or write it as such (CSV, JSON), none warns."""
        return {
            self.metric: math.nan,
            self.feasible_metric: math.nan,
            "val_acc": math.nan,
            **({FGSM_METRIC: math.nan} if fgsm else {}),
        }

    # --- a study's trials ---------------------------------------------------------------------

    def feasible(self, trials: list) -> list:
        """Complete, finished and feasible trials of a study (under every constraint)."""
        return feasible_trials(trials, self.metric)

    def best(self, study: Any) -> Any | None:
        """The cheapest feasible trial of ``study``, or None."""
        return best_trial(study, self.metric)

    def best_ratio(self, study: Any) -> float | None:
        best = self.best(study)
        return None if best is None else float(best.user_attrs[self.metric])

    def record(self, study: Any) -> None:
        """Store on ``study`` what its trials are judged by (``load_best`` and ``growsearch export``
        rebuild the judge from it: :meth:`from_study`)."""
        if "frontier" not in study.user_attrs:
            study.set_user_attr("frontier", self.frontier.to_dict())
        for key, value in (
            ("tolerance", self.tolerance),
            ("cost", self.cost),
            ("metric", self.metric),
            ("target_acc", self.target),
            ("ref_cost", self.ref_cost),
            ("min_fgsm_acc", self.min_fgsm_acc),
        ):
            study.set_user_attr(key, value)
        if self.in_M:
            study.set_user_attr("M_ref", self.ref_cost)  # M_scratch(target), as studies made before the judge record it

    @classmethod
    def from_study(cls, study: Any) -> "Judge":
        """The judge a study's trials were judged by (see :meth:`record`)."""
        attrs = study.user_attrs
        if "frontier" not in attrs:
            raise SearchError(f"study {study.study_name!r} holds no frontier: it was not made by growsearch")
        front = Frontier.from_dict(attrs["frontier"])
        tol = attrs.get("tolerance")
        if tol is None:  # studies made before the judge stored only the target
            tol = (
                front.best_val_acc - attrs["target_acc"]
                if "target_acc" in attrs
                else attrs.get("space", {}).get("tolerance", 0.005)
            )
        return cls(
            front, tolerance=max(0.0, float(tol)), cost=attrs.get("cost", "M"), min_fgsm_acc=attrs.get("min_fgsm_acc")
        )
