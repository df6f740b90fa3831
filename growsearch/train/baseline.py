"""Training from scratch: one budget (``run_baseline``), and every budget of a frontier (``run_frontier``).

A baseline is the final network trained on all classes with the same recipe as the schedules,
its LR decayed to zero at the end of its own budget; ``run_frontier`` trains one per budget,
seed and LR and reads the frontier off them (the types and the M_scratch arithmetic live in
``growsearch.train.frontier``).

Example:
    >>> from growsearch.train.baseline import run_baseline
    >>> r = run_baseline("digits", "vgg11@0.125", epochs=1, progress=False)
    >>> len(r.stages), r.stages[0].classes
    (1, 10)
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from growsearch._io import held
from growsearch.data.dataset import Dataset, create_dataset
from growsearch.data.split import class_order
from growsearch.errors import GrowsearchError
from growsearch.model.arch import ArchError, ArchSpec, spec_for
from growsearch.plan.planner import plan_schedule
from growsearch.plan.schedule import Schedule, Stage, TrainConfig, epoch_edges, load_split
from growsearch.train.frontier import (
    FRONTIER_FILE,
    Frontier,
    FrontierError,
    FrontierPoint,
    Reference,
    budget_run_dir,
    check_budgets,
)
from growsearch.train.results import OutputExistsError, RunResult, check_out_dir
from growsearch.train.run import run_schedule

__all__ = ["baseline_schedule", "check_resizing", "resizing_name", "run_baseline", "run_frontier"]


def run_baseline(
    data: str,
    arch: str,
    *,
    epochs: int,
    patience: int | None = None,
    seed: int = 0,
    train: TrainConfig | None = None,
    dataset: Dataset | None = None,
    lr: float | None = None,
    spec: ArchSpec | None = None,
    resolutions: Sequence[int] | None = None,
    switch_at: Sequence[float] | None = None,
    **kwargs,
) -> RunResult:
    """Train ``arch`` from scratch on all classes with the same recipe: one budget of a frontier.

    With fixed ``epochs`` the LR warms up and decays to zero at the end of *this* budget (never a
    truncated longer schedule), as the from-scratch frontier requires.

    Args:
        data: dataset name (``"digits"``, ``"cifar100:/data"``, ...).
        arch: the final architecture of the schedules it is compared with.
        epochs, patience, seed, train, lr: as in a schedule's stage and recipe.
        dataset: the already-loaded ``data``, to skip loading it again.
        spec: train this exact network (e.g. a run's pruned final one) instead of ``arch``'s.
        resolutions, switch_at: progressive resizing from scratch (see :func:`baseline_schedule`).
        **kwargs: the keyword options of :func:`run_schedule` (``out_dir``, ``device``, ...).

    Example:
        >>> r = run_baseline("digits", "vgg11@0.125", epochs=1, progress=False)
        >>> len(r.stages), r.stages[0].classes
        (1, 10)
    """
    ds = dataset if dataset is not None else create_dataset(data)
    sched = baseline_schedule(
        data,
        arch,
        ds.num_classes,
        epochs=epochs,
        patience=patience,
        seed=seed,
        train=train,
        lr=lr,
        resolutions=resolutions,
        switch_at=switch_at,
        native=ds.image_size,
    )
    return run_schedule(sched, dataset=ds, init_spec=spec, **kwargs)


def baseline_schedule(
    data: str,
    arch: str,
    num_classes: int,
    *,
    epochs: int,
    patience: int | None = None,
    seed: int = 0,
    train: TrainConfig | None = None,
    lr: float | None = None,
    resolutions: Sequence[int] | None = None,
    switch_at: Sequence[float] | None = None,
    native: int | None = None,
) -> Schedule:
    """The schedule :func:`run_baseline` trains (and a resumed frontier compares with): one stage,
    or with ``resolutions`` progressive resizing from scratch: the same network on all the data,
    at ``resolutions[k]`` from ``switch_at[k-1]`` of the ``epochs`` on, under one LR schedule with
    the optimizer state carried (``lr_schedule: global``, ``carry_optimizer``), so only the input
    size changes at a switch. A size that rounds to no whole epoch at this budget is skipped (the
    last always keeps at least one); the last resolution equal to ``native`` trains at the data's
    own size.

    Example:
        >>> s = baseline_schedule("digits", "vgg11@0.125", 10, epochs=8, resolutions=[16, 24, 32], switch_at=[0.5, 0.75], native=32)
        >>> [(st.epochs, st.resolution) for st in s.stages], s.train.lr_schedule
        ([(4, 16), (2, 24), (2, None)], 'global')
    """
    cfg = train or TrainConfig()
    if not resolutions:
        stage = Stage(classes=num_classes, arch=arch, epochs=epochs, patience=patience, lr=lr)
        return Schedule(dataset=data, stages=[stage], seed=seed, train=cfg)
    # the last size always trains at least one epoch (the final network is judged at it)
    edges = epoch_edges(epochs, list(switch_at or []), last=1)
    stages = [
        Stage(classes=num_classes, arch=arch, epochs=b - a, resolution=None if r == native else int(r))
        for r, a, b in zip(resolutions, edges, edges[1:])
        if b > a
    ]
    cfg = replace(cfg, lr=lr if lr is not None else cfg.lr, lr_schedule="global", carry_optimizer=True)
    return Schedule(dataset=data, stages=stages, seed=seed, train=cfg, data_growth="none")


def resizing_name(arch: str, resolutions: Sequence[int], switch_at: Sequence[float]) -> str:
    """How tables name a progressive-resizing reference, e.g. ``vgg19@0.25 16→24→32px@.5,.75``."""
    at = ",".join(f"{f:g}".lstrip("0") for f in switch_at)
    return f"{arch} {'→'.join(map(str, resolutions))}px@{at}"


def check_resizing(
    resolutions: Sequence[int], switch_at: Sequence[float], native: int | None
) -> tuple[list[int], list[float]]:
    """The progressive-resizing settings of a frontier, or ``FrontierError`` naming the fix
    (``native`` None: the data is not square, and resizing trains at square sides)."""
    res, at = list(resolutions), list(switch_at)
    if not res:
        if at:
            raise FrontierError("--switch-at needs --resolutions (e.g. --resolutions 16,24,32 --switch-at 0.5,0.75)")
        return res, at
    if native is None:
        raise FrontierError(
            "--resolutions trains at square sides and the data's images are not square: drop --resolutions, or decode square with ?size=N"
        )
    if (
        len(res) < 2
        or any(isinstance(r, bool) or not isinstance(r, int) or not 8 <= r <= native for r in res)
        or any(b <= a for a, b in zip(res, res[1:]))
    ):
        raise FrontierError(
            f"--resolutions must be at least two strictly increasing image sides from 8 to the data's {native} px, e.g. 16,24,{native}; got {res}"
        )
    if (
        len(at) != len(res) - 1
        or any(isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1 for f in at)
        or any(b <= a for a, b in zip(at, at[1:]))
    ):
        raise FrontierError(
            f"--switch-at must give {len(res) - 1} fraction(s) of each budget strictly increasing in (0, 1), one per resolution after the first "
            f"(e.g. {','.join(f'{(k + 1) / len(res):.2g}' for k in range(len(res) - 1))}); got {at}"
        )
    return res, [float(f) for f in at]


def run_frontier(
    data: str,
    archs: Sequence[str] = (),
    budgets: Sequence[int] = (2, 4, 8, 16),
    *,
    specs_from: Sequence[str | Path] = (),
    specs: Sequence[ArchSpec] = (),
    seeds: Sequence[int] = (0,),
    lrs: Sequence[float] | None = None,
    train: TrainConfig | None = None,
    dataset: Dataset | None = None,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    threads: int | None = None,
    prefix_cache: str | Path | None = None,
    runner: Runner | None = None,
    workers: str = "",
    resolutions: Sequence[int] = (),
    switch_at: Sequence[float] = (),
    plain: bool = True,
) -> Frontier:
    """Train each reference from scratch at every budget (each fully decayed), seeds and LRs.

    Args:
        data: dataset name.
        archs: reference architectures (e.g. the schedules' final one, ``"vgg19@0.25"``).
        budgets: epochs, strictly increasing; each run warms up and decays to zero at its end.
        specs_from: run folders whose exact final network (pruned widths and all) is trained
            from scratch as a further reference: the second reference a reviewer asks for.
        specs: exact architectures trained from scratch as further references, each named by its
            ``name`` (a shrink run's subnets: ``growsearch.model.elastic.subnet_spec``).
        seeds: training seeds; a point's accuracies are their mean (the split stays the same).
        lrs: peak LRs to sweep; per budget the best by mean validation accuracy is kept
            (the schedules are tuned by a search, so the frontier is tuned too). Default: the recipe's.
        train: the recipe (default ``TrainConfig()``); its ``val_fraction``/``val_seed`` make the split.
        dataset: ``data`` already loaded.
        out_dir: writes ``frontier.json`` and ``frontier.png``, and each budget's run (its
            ``result.json`` and ``stage1.pt``) under ``runs/``; a single run (one reference,
            budget, seed and LR) goes in ``out_dir`` itself, as a plain baseline.
        overwrite: replace an existing frontier in ``out_dir``.
        resume: keep the runs already finished in ``out_dir`` with the same settings, train the rest.
        threads: torch CPU threads of every run (recorded on the frontier; default: torch's own).
            Runs are bit-identical only at equal thread counts: a search trains its frontier with
            its trials' count, so a one-stage trial reproduces the frontier run it equals.
        prefix_cache: also store each run's network in this stage-prefix cache (a search's), where
            a trial whose schedule is that run finds it instead of training it again.
        runner: how the runs are executed: ``runner(fn, jobs, dataset)`` yields ``(index, result)``
            for each ``(index, job)`` in ``jobs`` as it finishes, ``fn(job, dataset)`` training one.
            Default: one after another in this process; ``growsearch search`` passes Ray workers
            (:func:`growsearch.search.cluster.ray_runner`).
        workers: how ``runner`` runs them, for the progress line (e.g. "2 Ray workers").
        resolutions: also train every reference with progressive resizing at these sides (e.g.
            16, 24, 32 px; :func:`baseline_schedule`), a further reference named like
            ``vgg19@0.25 16→24→32px@.5,.75``: the from-scratch recipe that a schedule growing its
            resolution must beat.
        switch_at: with ``resolutions``, the fractions of each budget where the side changes
            (e.g. 0.5 and 0.75).
        plain: with ``resolutions``, also train every reference as it is (False: only its
            progressive-resizing twin, e.g. to add it beside a frontier trained before).

    Raises:
        FrontierError: bad budgets, seeds, LRs or references (before any training).
        OutputExistsError: ``out_dir`` holds a frontier and neither ``overwrite`` nor ``resume``.
    """

    budgets = check_budgets(budgets)
    seeds = list(seeds)
    if (
        not seeds
        or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**32 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise FrontierError(f"seeds must be distinct whole numbers ≥ 0, e.g. 0,1,2; got {seeds}")
    cfg = train or TrainConfig()
    # the recipe's own LR trains as the recipe (no stage LR): the same run, the same prefix-cache key
    sweep = [None] if not lrs else [None if v == cfg.lr else v for v in lrs]
    if lrs is not None and (
        not lrs or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 100 for v in lrs)
    ):
        raise FrontierError(
            f"--lrs must be finite peak learning rates in (0, 100], e.g. 0.02,0.05,0.1; got {list(lrs)}"
        )
    if not archs and not specs_from and not specs:
        raise FrontierError("a frontier needs a reference: give --arch (and/or --spec-from RUN_DIR)")
    cfg.validate()
    out = Path(out_dir) if out_dir is not None else None

    def check_out() -> None:  # before anything is loaded, and again inside the folder's lock
        if out is None:
            return
        check_out_dir(
            out, overwrite=True, replaces=overwrite
        )  # a file, a folder that cannot be written, files not ours to replace
        if (out / FRONTIER_FILE).exists() and not (overwrite or resume):
            raise OutputExistsError(
                f"{out} already holds {FRONTIER_FILE}: pass --resume to extend it, --overwrite to replace it, or another --out"
            )

    check_out()
    raw = dataset if dataset is not None else create_dataset(data)
    ds = load_split(data, cfg, dataset=raw)
    resizing = check_resizing(resolutions, switch_at, ds.image_size)
    refs: list[tuple[str, str, dict | None]] = [(a, a, None) for a in archs]
    for run_dir in specs_from:
        r = RunResult.load(run_dir)
        if r.schedule.get("dataset") != data:
            raise FrontierError(
                f"--spec-from {run_dir} was trained on {r.schedule.get('dataset')!r}, not {data!r}: use a run on the same dataset"
            )
        last = r.stages[-1]
        refs.append((f"{last.arch} as in {Path(run_dir).name} ({last.params} params)", last.arch, last.spec))
    refs += [(sp.name, sp.name, sp.to_dict()) for sp in specs]
    for name, arch, spec in refs:
        try:
            spec_for(arch, ds.num_classes, ds.in_chans)
        except ArchError as e:
            raise FrontierError(f"reference {name}: {e}") from None
    # every reference once as it is, and once with progressive resizing when asked for
    plain_refs = [(name, arch, spec, None, None) for name, arch, spec in refs]
    resized = (
        [(resizing_name(name, *resizing), arch, spec, *resizing) for name, arch, spec in refs] if resizing[0] else []
    )
    if resized and not plain:
        plain_refs = []
    elif not resized and not plain:
        raise FrontierError("plain=False trains only progressive-resizing references: give resolutions and switch_at")
    all_refs = plain_refs + resized
    # the planner's checks (a family whose minimum input size the data is below, ...) for every
    # reference at every budget, before any training: one line, nothing written
    for name, arch, _, res, at in all_refs:
        for epochs in budgets if res else budgets[:1]:  # resizing's stages depend on the budget
            try:
                plan_schedule(
                    baseline_schedule(
                        data,
                        arch,
                        ds.num_classes,
                        epochs=epochs,
                        train=cfg,
                        resolutions=res,
                        switch_at=at,
                        native=ds.image_size,
                    ),
                    dataset=ds,
                )
            except GrowsearchError as e:
                raise FrontierError(f"reference {name} at {epochs} epochs: {e}") from None

    single = len(all_refs) * len(budgets) * len(seeds) * len(sweep) == 1
    jobs: list[dict] = []  # every run the frontier is made of, in a fixed order
    for ri, (name, arch, spec, res, at) in enumerate(all_refs):
        for epochs in budgets:
            for lr in sweep:
                for seed in seeds:
                    run_out = None
                    if out is not None:
                        run_out = out if single else budget_run_dir(out, epochs, lr or cfg.lr, seed, reference=ri)
                    jobs.append(
                        dict(
                            # a single run lives in --out itself, whose files are the user's unless --overwrite says otherwise
                            data=data,
                            arch=arch,
                            epochs=epochs,
                            seed=seed,
                            train=cfg,
                            lr=lr,
                            spec=spec,
                            out_dir=run_out,
                            overwrite=overwrite or not single,
                            resolutions=res,
                            switch_at=at,
                            device=device,
                            progress=progress,
                            prefix_cache=prefix_cache,
                            threads=threads,
                            label=f"{name} {epochs} ep lr {lr or cfg.lr:g} seed {seed}",
                        )
                    )
    # held against any other command while it trains and writes (in this process: a runner's
    # workers hold their own run folders, a single run's being --out itself)
    with held(out if runner is None else None, OutputExistsError, check=check_out):
        done: dict[int, RunResult] = {}
        todo = []
        for j, job in enumerate(jobs):
            r = (
                _reuse(job["out_dir"], data, job["arch"], job, ds.image_size)
                if resume and job["out_dir"] is not None
                else None
            )
            if r is None:
                todo.append((j, job))
            else:
                done[j] = r
        if done:
            print(f"frontier: reusing {len(done)} finished run(s) in {out}", flush=True)
        if todo:
            where = f" on {workers}" if workers else ""
            print(f"frontier: training {len(todo)} from-scratch run(s){where}", flush=True)
        for j, r in (runner or _in_process)(train_budget, todo, raw):
            done[j] = r
            print(
                f"frontier: {jobs[j]['label']}: val {r.val_acc:.4f} test {r.test_acc:.4f} M {r.M:.3g} ({r.wall_s:.0f} s)",
                flush=True,
            )
        spent = sum(r.M for r in done.values())  # every run the frontier is made of, reused ones included
        wall = sum(r.wall_s for r in done.values())
        references = []
        runs_of = iter(done[j] for j in range(len(jobs)))
        for name, arch, spec, res, at in all_refs:
            points = []
            for epochs in budgets:
                by_lr = [(lr or cfg.lr, [next(runs_of) for _ in seeds]) for lr in sweep]
                # the LR whose seeds reach the best mean validation accuracy (first on ties)
                lr, runs = max(by_lr, key=lambda lr_runs: statistics.mean(r.val_acc for r in lr_runs[1]))
                points.append(
                    FrontierPoint.of_runs(
                        epochs,
                        runs,
                        lr,
                        [{"lr": v, "val_acc": statistics.mean(r.val_acc for r in rs)} for v, rs in by_lr]
                        if len(sweep) > 1
                        else [],
                    )
                )
            references.append(Reference(name, arch, spec, points, resolutions=res, switch_at=at))
        front = Frontier(
            dataset=ds.name,
            num_classes=ds.num_classes,
            class_order=class_order(ds.num_classes, 0),
            val_fraction=float(ds.val_fraction),
            val_seed=int(ds.val_seed),
            val_id=ds.val_id,
            train=asdict(cfg),
            references=references,
            spent_M=spent,
            wall_s=wall,
            seeds=seeds,
            threads=threads,
        )
        if out is not None:
            from growsearch.train.plots import plot_frontier

            front.save(out)
            plot_frontier(front, out / "frontier.png")
    return front


Runner = Callable[[Callable[[dict, Any], RunResult], list[tuple[int, dict]], Any], Iterator[tuple[int, RunResult]]]


def longest_first(jobs: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    """A parallel :data:`Runner`'s order: the longest budgets first, so the short ones fill the
    workers' gaps at the end."""
    return sorted(jobs, key=lambda j_job: -j_job[1]["epochs"])


def train_budget(job: dict, dataset: Any = None) -> RunResult:
    """Train one run of a frontier (a ``job`` :func:`run_frontier` made); ``dataset``: its data
    already loaded (None: load it by name, as a Ray worker does)."""
    from growsearch.train.loop import torch_threads

    job = dict(job)
    data, arch, spec, threads = job.pop("data"), job.pop("arch"), job.pop("spec"), job.pop("threads")
    job.pop("label")
    with torch_threads(threads):
        return run_baseline(data, arch, dataset=dataset, spec=ArchSpec.from_dict(spec) if spec else None, **job)


def _in_process(
    fn: Callable[[dict, Any], RunResult], jobs: list[tuple[int, dict]], dataset: Any
) -> Iterator[tuple[int, RunResult]]:
    for j, job in jobs:
        yield j, fn(job, dataset)


def _reuse(run_out: Path, data: str, arch: str, kw: dict, native: int):
    """A finished budget run in ``run_out`` trained with exactly these settings, else None."""
    if not (run_out / "result.json").is_file():
        return None
    try:
        r = RunResult.load(run_out)
    except (ValueError, TypeError, KeyError):
        return None
    want = baseline_schedule(
        data,
        arch,
        r.stages[-1].classes,
        epochs=kw["epochs"],
        seed=kw["seed"],
        train=kw["train"],
        lr=kw["lr"],
        resolutions=kw["resolutions"],
        switch_at=kw["switch_at"],
        native=native,
    )
    spec_ok = kw["spec"] is None or r.stages[0].spec.get("widths") == [list(b) for b in kw["spec"]["widths"]]
    return r if _same_training(r.schedule, want.to_dict()) and spec_ok else None


def _same_training(a: dict, b: dict) -> bool:
    """Whether two one-run schedules train alike: a stage LR equal to the recipe's is the recipe's
    (a swept LR that is the recipe's own reuses a run made without a sweep, and the other way round)."""

    def plain(d: dict) -> dict:
        lr = d.get("train", {}).get("lr")
        return {
            **d,
            "stages": [{k: v for k, v in st.items() if not (k == "lr" and v == lr)} for st in d.get("stages", [])],
        }

    return plain(a) == plain(b)
