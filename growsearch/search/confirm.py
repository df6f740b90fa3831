"""Confirmation: before a search names its best, its top K feasible trials train again on more
seeds, and the best is the cheapest whose mean validation accuracy over all its seeds still
reaches the target (ranked by its mean ratio). A single lucky seed can no longer win the study.

The record lands on the study as the ``confirmed`` user attribute; :func:`growsearch.search.judge.best_trial`
(hence ``export``, ``load_best``, the summary) reads it: a confirmed study's best is the
confirmed one, or none when no candidate held up. Test accuracy is carried along for the
report and never read to choose.

Example:
    >>> rows = [{"number": 3, "ratio": 0.9, "val_acc": 0.91}, {"number": 5, "ratio": 0.8, "val_acc": 0.89}]
    >>> choose(rows, target=0.90)
    3
    >>> choose(rows, target=0.95) is None
    True
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from growsearch.plan.schedule import Schedule
from growsearch.search.judge import Judge, SearchError

if TYPE_CHECKING:
    from growsearch.train.baseline import Runner

__all__ = [
    "CONFIRMED",
    "DEFAULT_CONFIRM",
    "DEFAULT_CONFIRM_SEEDS",
    "check_confirm",
    "choose",
    "confirm",
    "confirm_run",
    "numbers",
]

CONFIRMED = "confirmed"  # the study's user attribute
DEFAULT_CONFIRM = 3  # `growsearch search`: the top 3 feasible trials (fewer when fewer are feasible)
DEFAULT_CONFIRM_SEEDS = 2  # ... each on 2 more seeds: 3 seeds per candidate, as every benchmark row


def check_confirm(top: int | None, seeds: int, trials: int, *, fgsm: bool, family: bool) -> None:
    """``SearchError`` naming the fix for a confirmation that cannot run as asked."""
    for flag, v, lo in (("--confirm", top, 0), ("--confirm-seeds", seeds, 1)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < lo):
            raise SearchError(f"{flag} must be a whole number ≥ {lo}, got {v!r}")
    if top is not None and top > trials:
        raise SearchError(
            f"--confirm {top} asks for more candidates than the search's {trials} trials: use at most {trials}"
        )
    if top and fgsm:
        raise SearchError(
            "--confirm re-runs the best trials without measuring FGSM: drop --fgsm-eps, or pass --confirm 0"
        )
    if top and family:
        raise SearchError("--confirm does not yet re-run shrink families (--cost family): pass --confirm 0")


def confirm_run(job: dict, dataset: Any = None) -> Any:
    """Train one confirmation run (a ``job`` :func:`confirm` made); ``dataset``: loaded already,
    or None to load it by name (a Ray worker)."""
    from growsearch.train.loop import torch_threads
    from growsearch.train.run import run_schedule

    with torch_threads(job["threads"]):
        return run_schedule(
            Schedule.from_dict(job["schedule"]), dataset=dataset, progress=False, prefix_cache=job["prefix_cache"]
        )


def numbers(confirmed: dict | None, number: int, attrs: dict, metric: str) -> dict:
    """What a report reads of trial ``number``: on the mean of its seeds when ``confirmed`` (a
    study's record) holds it, else its own seed's user attributes ``attrs``: ``ratio``, ``ci``,
    ``val_acc``, ``test_acc`` and ``seeds`` (how many)."""
    row = next((r for r in (confirmed or {}).get("rows", []) if r["number"] == number), None)
    if row is None:
        return {
            "ratio": attrs[metric],
            "ci": attrs.get(f"{metric}_ci"),
            "val_acc": attrs["val_acc"],
            "test_acc": attrs.get("test_acc"),
            "seeds": 1,
        }
    tests = [x for x in row["test_accs"] if x is not None]
    return {
        "ratio": row["ratio"],
        "ci": row["ci"],
        "val_acc": row["val_acc"],
        "test_acc": statistics.mean(tests) if tests else attrs.get("test_acc"),
        "seeds": len(row["seeds"]),
    }


def choose(rows: list[dict], target: float) -> int | None:
    """The confirmed best: the trial number of the cheapest row (mean ``ratio``) whose mean
    validation accuracy reaches ``target``; None when none does."""
    ok = [r for r in rows if r["val_acc"] >= target]
    return min(ok, key=lambda r: r["ratio"])["number"] if ok else None


def confirm(
    study: Any,
    judge: Judge,
    top: int,
    seeds: int,
    *,
    prefix_cache: str | Path,
    threads: int = 1,
    runner: "Runner | None" = None,
    dataset: Any = None,
    artifacts: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> dict | None:
    """Re-run the ``top`` cheapest feasible trials of ``study`` on ``seeds`` more seeds each (the
    trial's seed + 1, + 2, ...) and store the record on the study (``confirmed``). Runs go
    through ``runner`` (``growsearch.search.cluster.ray_runner``; default: in this process) and the
    prefix cache, so a repeated confirmation loads them instead of training. Returns the record:
    ``top``, ``seeds``, ``rows`` (per candidate: its seeds, per-seed validation and test accuracy
    and ratio, the means, the ratio's interval over frontier and run seeds, feasible on the mean)
    and ``best`` (a trial number, or None), or None when ``top`` is 0 or no trial is feasible.
    ``artifacts``: where the study's artifact store lives; a confirmed best whose trial stored no
    network (it was not the best when it finished) uploads its own from the prefix cache."""
    from growsearch.train.baseline import _in_process

    ranked = sorted(judge.feasible(study.trials), key=lambda t: t.user_attrs[judge.metric])[:top]
    if not ranked:
        return None
    jobs: list[tuple[int, dict]] = []
    for t in ranked:
        sched = Schedule.from_dict(t.user_attrs["schedule"])
        for k in range(1, seeds + 1):
            again = replace(sched, seed=sched.seed + k)
            jobs.append(
                (
                    len(jobs),
                    {
                        "schedule": again.to_dict(),
                        "threads": threads,
                        "prefix_cache": str(prefix_cache),
                        "trial": t.number,
                        "seed": again.seed,
                        "epochs": sum(st.epochs for st in again.stages),  # the runner starts the longest first
                    },
                )
            )
    log(f"confirm: the {len(ranked)} cheapest feasible trial(s) again on {seeds} more seed(s): {len(jobs)} run(s)")
    results: dict[int, Any] = {}
    for j, r in (runner or _in_process)(confirm_run, jobs, dataset):
        results[j] = r
        job = jobs[j][1]
        log(f"confirm: trial {job['trial'] + 1} seed {job['seed']}: validation {r.val_acc:.4f}, M {r.M:.4g}")
    key = judge.frontier_key
    rows = []
    for t in ranked:
        a = t.user_attrs
        sched = Schedule.from_dict(a["schedule"])
        mine = [results[j] for j, job in jobs if job["trial"] == t.number]
        # (cost, val_acc, test_acc) per seed, the trial's own first
        runs = [(a[judge.metric] * judge.ref_cost, a["val_acc"], a.get("test_acc"))]
        runs += [(judge.metrics(r)[judge.metric] * judge.ref_cost, r.val_acc, r.test_acc) for r in mine]
        val = statistics.mean(v for _, v, _ in runs)
        rows.append(
            {
                "number": t.number,
                "seeds": [sched.seed + k for k in range(seeds + 1)],
                "val_accs": [v for _, v, _ in runs],
                "test_accs": [x for _, _, x in runs],
                "ratios": [c / judge.ref_cost for c, _, _ in runs],
                "ratio": statistics.mean(c for c, _, _ in runs) / judge.ref_cost,
                "ci": judge.frontier.ratio_interval([(c, v) for c, v, _ in runs], acc=judge.target, cost=key),
                "val_acc": val,
                "feasible": val >= judge.target,
            }
        )
    record = {"top": len(ranked), "seeds": seeds, "rows": rows, "best": choose(rows, judge.target)}
    best = next((t for t in ranked if t.number == record["best"]), None)
    if best is not None and artifacts is not None and "network_artifact" not in best.user_attrs:
        record["artifacts"] = _store_best(study, best, Path(prefix_cache), Path(artifacts), judge.frontier.num_classes)
    study.set_user_attr(CONFIRMED, record)
    for r in rows:
        log(
            f"confirm: trial {r['number'] + 1}: mean validation {r['val_acc']:.4f} over {len(r['seeds'])} seeds "
            f"({'reaches' if r['feasible'] else 'misses'} the target {judge.target:.4f}), {judge.metric} {r['ratio']:.3f}x "
            f"[{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]"
        )
    return record


def _store_best(study: Any, trial: Any, cache: Path, artifacts: Path, num_classes: int) -> dict | None:
    """Upload a finished trial's final network and result from the prefix cache as artifacts of
    the study (a finished trial takes no new user attributes); their ids, or None when this
    node's cache does not hold them."""
    import json

    from growsearch.search.study import store_network
    from growsearch.train.prefix import prefix_key

    sched = Schedule.from_dict(trial.user_attrs["schedule"])
    key = prefix_key(sched, len(sched.stages), sched.resolved_class_order(num_classes))
    ckpt, res = cache / f"{key}.pt", cache / f"{key}.result.json"
    if not (ckpt.is_file() and res.is_file()):
        return None
    return store_network(study, None, ckpt, json.loads(res.read_text()), base=artifacts)
