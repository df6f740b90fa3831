"""Confirmation: the best of a search is chosen on the mean validation accuracy of more seeds,
never on test accuracy, and everything that reads a study's best reads the confirmed one."""

import optuna
import pytest

from growsearch.plan.schedule import Schedule, Stage
from growsearch.search.confirm import check_confirm, confirm
from growsearch.search.judge import Judge, SearchError, best_trial
from growsearch.train.frontier import Frontier, FrontierPoint, Reference
from growsearch.train.results import RunResult, StageResult

TARGET = 0.90  # the frontier's best, tolerance 0


def _judge() -> Judge:
    pts = [
        FrontierPoint(epochs=e, M=m, val_acc=a, test_acc=a, wall_s=1.0, lr=0.05)
        for e, m, a in ((2, 100, 0.8), (4, 200, 0.9))
    ]
    return Judge(
        Frontier("digits", 10, list(range(10)), 0.1, 0, "id", {}, [Reference("vgg11", "vgg11", None, pts)]), 0.0
    )


def _study(rows: list[tuple[int, float, float]]) -> optuna.Study:
    """A finished study: one feasible trial per (M, val_acc, test_acc), each a schedule of its own."""
    study = optuna.create_study()
    for k, (m, val, test) in enumerate(rows):
        sched = Schedule(dataset="digits", stages=[Stage(classes=10, arch="vgg11@0.125", epochs=k + 1)], seed=7)
        attrs = {"M": m, "M_ratio": m / 200, "val_acc": val, "test_acc": test, "feasible": True, "final": True}
        study.add_trial(optuna.trial.create_trial(value=m / 200, user_attrs={**attrs, "schedule": sched.to_dict()}))
    return study


def _runner(outcomes: dict[int, tuple[float, float]], seen: list):
    """A runner that trains nothing: each job's result is its schedule's (val_acc, test_acc), keyed by epochs."""

    def run(fn, jobs, dataset):
        for j, job in jobs:
            seen.append(job)
            s = Schedule.from_dict(job["schedule"])
            val, test = outcomes[s.stages[0].epochs]
            st = StageResult(10, "vgg11@0.125", 1, 1, 1, 100, test, 1.0)
            yield j, RunResult(M=100, test_acc=test, wall_s=1.0, macs_per_sample=1, stages=[st], val_acc=val)

    return run


def test_the_best_is_chosen_on_the_mean_of_its_seeds_never_on_test_accuracy(tmp_path):
    # trial 0 is the cheapest on its one lucky seed; on two more its validation falls below the
    # target (with a far higher test accuracy, which must not count); trial 1 holds up
    study, seen = _study([(100, 0.92, 0.5), (150, 0.91, 0.5), (180, 0.95, 0.5)]), []
    outcomes = {1: (0.85, 0.99), 2: (0.90, 0.40), 3: (0.95, 0.50)}
    assert best_trial(study).number == 0
    rec = confirm(study, _judge(), 2, 2, prefix_cache=tmp_path, runner=_runner(outcomes, seen), log=lambda _: None)
    assert [j["seed"] for j in seen] == [8, 9, 8, 9]  # the trial's own seed + 1, + 2
    assert len(seen) == 4  # only the top 2 are re-run
    rows = {r["number"]: r for r in rec["rows"]}
    assert rows[0]["val_acc"] == pytest.approx((0.92 + 0.85 + 0.85) / 3) and not rows[0]["feasible"]
    assert rows[1]["feasible"] and rows[1]["ratio"] == pytest.approx((150 + 100 + 100) / 3 / 200)
    assert rec["best"] == 1
    assert best_trial(study).number == 1  # what export, load_best and the summary read
    lo, hi = rows[1]["ci"]
    assert lo <= rows[1]["ratio"] <= hi


def test_no_candidate_holding_up_leaves_no_best(tmp_path):
    study = _study([(100, 0.92, 0.9), (150, 0.91, 0.9)])
    rec = confirm(
        study,
        _judge(),
        2,
        1,
        prefix_cache=tmp_path,
        runner=_runner({1: (0.5, 0.9), 2: (0.5, 0.9)}, []),
        log=lambda _: None,
    )
    assert rec["best"] is None and best_trial(study) is None


def test_a_study_without_a_confirmation_keeps_its_cheapest_feasible_trial(tmp_path):
    study = _study([(150, 0.91, 0.9), (100, 0.92, 0.9)])
    study.set_user_attr("confirmed", None)  # what a search sets while its trials run
    assert best_trial(study).number == 1


@pytest.mark.parametrize(
    "top, seeds, fgsm, message",
    [
        (7, 2, False, "--confirm 7 asks for more candidates than the search's 6 trials"),
        (-1, 2, False, "--confirm must be a whole number ≥ 0"),
        (2, 0, False, "--confirm-seeds must be a whole number ≥ 1"),
        (2, 2, True, "drop --fgsm-eps, or pass --confirm 0"),
    ],
)
def test_a_confirmation_that_cannot_run_is_refused_naming_the_fix(top, seeds, fgsm, message):
    with pytest.raises(SearchError, match=message):
        check_confirm(top, seeds, 6, fgsm=fgsm, family=False)
    check_confirm(0, 1, 6, fgsm=fgsm, family=False)  # off is always fine
