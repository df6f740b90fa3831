"""``growsearch search --backend optuna``: the trials of a search in local worker processes,
driven by Optuna's ask-and-tell API directly, with no Ray and no listening socket.

The study is the one the Ray backend writes: the same :class:`growsearch.search.tune.Searcher`
asks and tells Optuna (and :class:`~growsearch.search.tune.InOrderBatches` orders a
deterministic search), the same :func:`growsearch.search.tune.run_trial` trains each schedule
with the same prefix cache, reports and proposal-time bound, and the same
:class:`~growsearch.search.tune.TrialLines` print. Only the transport differs: a
``concurrent.futures.ProcessPoolExecutor`` (spawned processes, pipes between them) instead of
Ray's scheduler, its GCS and raylet servers. Optuna's own ``study.optimize(n_jobs=...)`` runs
threads in one process, which would share one torch thread pool and one GIL; processes keep a
trial's ``--cpus-per-trial`` threads its own. What this does that neither library does (retry a
failed trial from its last finished stage, tell in proposal order) is written here.

Example:
    >>> from growsearch.search.local import local_slots
    >>> local_slots(cpus_per_trial=1.0, cpus=4)
    4
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, ProcessPoolExecutor, as_completed, wait
from types import SimpleNamespace
from typing import Any, Callable, Iterator

__all__ = ["LocalPools", "local_pool", "local_slots", "pool_runner", "run_local_trials"]


def local_slots(cpus_per_trial: float, gpus_per_trial: float = 0.0, *, cpus: int | None = None) -> int:
    """How many trials this machine runs at once: its CPUs over a trial's (and its GPUs over a
    trial's, when trials take GPUs); ``SearchError`` when not even one trial fits."""
    from growsearch.search.judge import SearchError

    cpus = cpus or os.cpu_count() or 1
    if cpus_per_trial > cpus:
        raise SearchError(
            f"--cpus-per-trial {cpus_per_trial:g} exceeds this machine's {cpus} CPUs: no trial could ever start (use at most {cpus})"
        )
    slots = int(cpus // cpus_per_trial)
    if gpus_per_trial > 0:
        import torch

        gpus = torch.cuda.device_count()
        if gpus_per_trial > gpus:
            raise SearchError(
                f"--gpus-per-trial {gpus_per_trial:g} exceeds this machine's {gpus} GPUs: no trial could ever start"
            )
        slots = min(slots, int(gpus // gpus_per_trial))
    return slots


def _setup(hook: bytes | None) -> None:
    """Each worker, as it starts: repeat the registrations the driver made (families, ops,
    sources, costs), as Ray's ``worker_process_setup_hook`` does for Ray's workers."""
    if hook is not None:
        import pickle

        pickle.loads(hook)()


def local_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned worker processes that know what this process registered. Spawned,
    not forked: a fork would copy the driver's torch thread pool and open files."""
    from growsearch._extensions import worker_setup_hook

    hook = worker_setup_hook()
    if hook is not None:
        from ray import cloudpickle  # by value: the registering module need not be importable there

        hook = cloudpickle.dumps(hook)
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_setup, initargs=(hook,)
    )


class LocalPools:
    """The search's worker pool (:func:`local_pool`), replaced by a fresh one when a dead worker
    (killed, out of memory) broke it: a ``ProcessPoolExecutor`` then fails every call."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = local_pool(workers)

    def fresh(self) -> ProcessPoolExecutor:
        self.pool.shutdown(wait=True)
        self.pool = local_pool(self.workers)
        return self.pool

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """``fn(*args)`` in a worker; on a fresh pool when a worker died while idle (the broken
        pool refuses every call, though no work was lost)."""
        try:
            return self.pool.submit(fn, *args)
        except BrokenExecutor:
            return self.fresh().submit(fn, *args)

    def __enter__(self) -> LocalPools:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def pool_runner(pools: LocalPools) -> Callable[..., Iterator[tuple[int, Any]]]:
    """A :func:`growsearch.train.baseline.run_frontier` runner (and the confirmation's) on the
    search's worker pool: each run in a worker, longest budgets first, results as they finish."""

    def run(fn: Callable[[dict, Any], Any], jobs: list[tuple[int, dict]], dataset: Any) -> Iterator[tuple[int, Any]]:
        from growsearch.train.baseline import longest_first

        futures = {pools.submit(fn, {**job, "progress": False}, None): j for j, job in longest_first(jobs)}
        for f in as_completed(futures):
            yield futures[f], f.result()

    return run


def _trial(config: dict, ctx: dict, restored: bool) -> list[dict]:
    """One trial in a worker: its reports, in order."""
    from growsearch.search.tune import run_trial

    reports: list[dict] = []
    run_trial(config, ctx, lambda metrics, key: reports.append(metrics), restored=restored)
    return reports


def run_local_trials(
    pools: LocalPools,
    search_alg: Any,
    ctx: dict,
    trials: int,
    *,
    workers: int,
    max_failures: int,
    lines: Any,
) -> tuple[int, int]:
    """Run ``trials`` trials proposed by ``search_alg`` (a Tune ``Searcher``: growsearch's, or
    :class:`~growsearch.search.tune.InOrderBatches` around it), at most ``workers`` at once.
    ``pools`` holds the worker pool, and makes a fresh one when a worker dies (killed, out of
    memory), which breaks a ``ProcessPoolExecutor`` for every trial in it. A trial that raises or whose
    worker dies is run again from its last finished stage (the prefix cache holds them) up to
    ``max_failures`` times, then told failed. Returns how many trials finished, and how
    many of them failed."""
    running: dict[Future, tuple[str, dict, int]] = {}  # future -> (trial id, config, failures so far)
    asked = finished = failed = 0

    while asked < trials or running:
        while len(running) < workers and asked < trials:
            tid = f"local_{asked:05d}"
            config = search_alg.suggest(tid)
            if config is None:  # a deterministic batch waits for its last trial
                break
            asked += 1
            running[pools.submit(_trial, config, ctx, False)] = (tid, config, 0)
            lines.on_trial_start(0, [], _shown(config, None))
        if not running:
            break
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        if any(isinstance(f.exception(), BrokenExecutor) for f in done):
            # a dead worker broke the pool: every trial in it failed with it (each counts one failure)
            done = set(running)
            pools.fresh()
        for f in sorted(done, key=lambda f: running[f][0]):
            tid, config, failures = running.pop(f)
            try:
                reports = f.result()
            except Exception as e:  # noqa: BLE001 - any error in the trial's own code: retry, then FAIL
                if failures < max_failures:
                    running[pools.submit(_trial, config, ctx, True)] = (tid, config, failures + 1)
                    continue
                search_alg.on_trial_complete(tid, None, error=True)
                lines.on_trial_error(0, [], _shown(config, None, f"{type(e).__name__}: {e}"))
                finished, failed = finished + 1, failed + 1
                continue
            for r in reports:
                search_alg.on_trial_result(tid, r)
            search_alg.on_trial_complete(tid, reports[-1] if reports else None)
            lines.on_trial_complete(0, [], _shown(config, reports[-1] if reports else None))
            finished += 1
    return finished, failed


def _shown(config: dict, last: dict | None, error: str | None = None) -> SimpleNamespace:
    # what TrialLines reads of a Tune trial
    return SimpleNamespace(config=config, last_result=last, error=error)
