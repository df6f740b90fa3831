"""What a growsearch trial records in Optuna, shared by every route into a study.

``growsearch search`` (Ray Tune), :mod:`growsearch.search.tune` (your own Tuner) and
:mod:`growsearch.search.optuna` (your own study, no Ray) all store the same things: what the
trials are judged by (:meth:`growsearch.search.judge.Judge.record`: the frontier, tolerance, cost,
target) on the study; per trial the schedule, M, the ratio, accuracies, feasibility and the
constraints. ``load_best`` and ``growsearch export`` read them from a study made by any route.
No Ray import here.

Example:
    >>> from growsearch.search.study import user_attrs
    >>> user_attrs({"M": 10, "M_ratio": 0.5, "val_acc": 0.9, "constraint": -0.01, "ignored": 1}, "M_ratio")
    {'M': 10, 'M_ratio': 0.5, 'val_acc': 0.9}
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from growsearch.plan.schedule import Schedule, load_split
from growsearch.search.judge import FGSM_METRIC, Judge, SearchError
from growsearch.search.space import SearchSpace
from growsearch.train.frontier import Frontier

__all__ = [
    "FIXED_SCHEDULE",
    "NETWORK_FILE",
    "enqueue",
    "ensure_frontier",
    "family_specs",
    "fetch_network",
    "fgsm_of_run",
    "given_frontier",
    "measure_fgsm",
    "name_metrics",
    "open_storage",
    "record_setup",
    "study_names",
    "reference_schedules",
    "note_best",
    "set_constraints",
    "split_data",
    "store_network",
    "user_attrs",
]

FIXED_SCHEDULE = "enqueued_schedule"  # a trial's user attribute: the whole schedule it trains, enqueued (not sampled)


_SQLITE = "sqlite:///"


def _optuna_tables(path: Path) -> bool:
    """Whether the SQLite file ``path`` holds Optuna's tables, opened read-only (a look never writes)."""
    import sqlite3

    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.Error:
        return False
    return {"studies", "version_info"} <= names


def open_storage(storage: Any, *, create: bool = False) -> Any:
    """An Optuna storage for ``storage``: an SQLAlchemy URL (``sqlite:///runs/s/study.db``), a
    journal file (``runs/s/journal.log``, what ``JournalFileBackend`` writes), or a storage
    object (returned as it is). Reading never writes: unless ``create``, a database or journal
    file must exist, and an SQLite file must already hold Optuna's tables, or ``SearchError``
    says so in one line and the file is left byte for byte as it was. ``create`` (a search
    starting a study) still refuses a folder that does not exist and an SQLite file of
    another program's."""
    import optuna

    if not isinstance(storage, str):
        return storage
    if storage.startswith(_SQLITE):
        path = Path(storage[len(_SQLITE) :])
        if path.is_file():
            if (path.stat().st_size or not create) and not _optuna_tables(path):
                raise SearchError(
                    f"{path} is not an Optuna database: name another file in --storage (nothing was changed)"
                )
        elif not create or path.is_dir():
            raise SearchError(f"no database at {path} (is --storage mistyped?)")
        elif not path.parent.is_dir():
            raise SearchError(
                f"--storage {storage}: the folder {path.parent} does not exist: create it, or fix the path"
            )
    elif "://" not in storage:  # a journal file
        path = Path(storage)
        if not path.is_file() and (not create or not path.parent.is_dir()):
            raise SearchError(
                f"no Optuna journal file at {path}: give an existing journal file or an SQLAlchemy URL (sqlite:///PATH)"
            )
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(path)))
    try:
        return optuna.storages.get_storage(storage)
    except Exception as e:  # noqa: BLE001 - a malformed URL or unreachable database is one line
        raise SearchError(
            f"cannot open Optuna storage {storage!r}: {str(e).splitlines()[0]} (e.g. sqlite:///runs/search/study.db)"
        ) from None


def study_names(storage: Any) -> list[str]:
    """The studies in ``storage`` (none in an SQLite file that does not exist yet: nothing is created to look)."""
    import optuna

    if isinstance(storage, str) and storage.startswith(_SQLITE) and not Path(storage[len(_SQLITE) :]).is_file():
        return []
    if isinstance(storage, str) and "://" not in storage and not Path(storage).is_file():
        return []
    return optuna.study.get_all_study_names(open_storage(storage))


def split_data(source: SearchSpace | Schedule) -> Any:
    """The dataset of a space (or of one trial's schedule) with the validation split every trial
    and the frontier select on (``source.train.val_fraction`` and ``val_seed``)."""
    return load_split(source.dataset, source.train)


DASHBOARD_CONSTRAINTS = "constraints"  # the system attribute optuna-dashboard (0.21) shows a trial's constraints from


def set_constraints(trial: Any, metrics: dict, storage: Any = None) -> None:
    """A finished trial's constraints (≤ 0 is feasible: accuracy, and the FGSM floor when one is
    set). With the study's ``storage`` (an Optuna storage object, as the Tune route holds) they are
    written as the list both Optuna's samplers and optuna-dashboard read (the ``constraints``
    system attribute, through the storage's public calls; ``Trial.set_constraint``'s named keys
    are not shown by the dashboard, and both forms at once would count each constraint twice).
    Without it, the Optuna-5 way (``Trial.set_constraint``); Optuna < 5 has no such call: there
    the ``constraint`` user attribute carries them to ``constraints_func``
    (:func:`growsearch.search.optuna.constraints`)."""
    values = [float(v) for v in Judge.constraints(metrics)]
    if storage is not None:
        study_id = storage.get_study_id_from_name(trial.study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_system_attr(trial_id, DASHBOARD_CONSTRAINTS, values)
    elif not hasattr(trial, "set_constraint"):
        trial.set_user_attr("constraint", values)
    else:
        for name, value in zip(("accuracy", "fgsm"), values):
            trial.set_constraint(name, value)


def note_best(study: Any, lines: list[str]) -> bool:
    """Write ``lines`` as the study's note in optuna-dashboard (its public ``save_note``), where
    the dashboard's own "best trial" card, which reads values without constraints, can show an
    infeasible trial. False when optuna-dashboard is not installed."""
    import importlib.util

    if importlib.util.find_spec("optuna_dashboard") is None:
        return False
    from optuna_dashboard import save_note

    save_note(study, "\n\n".join(lines))
    return True


def name_metrics(study: Any, names: list[str]) -> None:
    """Label the study's objectives, as optuna-dashboard shows them."""
    import warnings

    import optuna

    with warnings.catch_warnings():  # experimental in Optuna 3.2-5 but what optuna-dashboard reads
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(names)


def user_attrs(result: dict, metric: str) -> dict:
    """A trial's reported metrics as the Optuna user attributes growsearch stores (JSON strings
    decoded; NaN placeholders dropped). ``metric``: the judge's ratio (``M_ratio``)."""
    if result.get("planned"):  # stopped on its plan: nothing trained, no ratio of its own
        return {"planned_M": result["planned_M"], f"planned_{metric}": result["planned_ratio"], "final": False}
    out = {}
    for key in (
        "M",
        metric,
        "val_acc",
        "test_acc",
        "wall_s",
        "spent_M",
        "reused_stages",
        "feasible",
        "final",
        "M_nonzero",
        "node_id",
        FGSM_METRIC,
        "fgsm_acc",
        "fgsm_eps",
    ):
        if (
            key in result
            and result[key] is not None
            and not (isinstance(result[key], float) and math.isnan(result[key]))
        ):
            out[key] = result[key]
    if result.get(f"{metric}_same") is not None:  # the second yardstick: against the final architecture alone
        out[f"{metric}_same"] = result[f"{metric}_same"]
    if result.get(f"{metric}_ci_low") is not None:  # the ratio's interval, [low, high]
        out[f"{metric}_ci"] = [result[f"{metric}_ci_low"], result[f"{metric}_ci_high"]]
    for key in (
        "schedule",
        "stages",
        "versions",
        "subnets",
    ):  # JSON strings in a Tune result (Tune flattens nested dicts)
        if isinstance(result.get(key), str):
            out[key] = json.loads(result[key])
        elif result.get(key) is not None:
            out[key] = result[key]
    return out


def measure_fgsm(
    judge: Judge, metrics: dict, sched: Schedule, order: list[int], cache: Path, ds: Any, eps: float | None
) -> dict:
    """``metrics`` with the run's FGSM accuracies at ``eps`` (unchanged when ``eps`` is None),
    judged by ``judge`` (its FGSM floor, if any, becomes a constraint). The Tune trainable and
    the Optuna objective both call it, so the two routes judge robustness alike."""
    if eps is None:
        return metrics
    return judge.add_fgsm(metrics, fgsm_of_run(sched, order, cache, ds, float(eps)))


def fgsm_of_run(sched: Schedule, order: list[int], cache: Path, ds: Any, eps: float) -> dict:
    """FGSM accuracy at ``eps`` of a finished run's final network and of its mutual inference,
    from the stage networks in the prefix cache (each stage's entry holds that stage's network).
    Measured on ``ds``'s validation split: the search may choose by it."""
    from growsearch.robust.attack import fgsm_accuracy
    from growsearch.robust.members import member_from_checkpoint
    from growsearch.train.prefix import prefix_key

    members = [
        member_from_checkpoint(cache / f"{prefix_key(sched, i, order)}.pt", i) for i in range(1, len(sched.stages) + 1)
    ]
    acc = fgsm_accuracy(members, ds.x_val, ds.y_val, [eps], mean=ds.mean, std=ds.std, num_classes=ds.num_classes)
    return {FGSM_METRIC: acc["final_mi"][0], "fgsm_acc": acc["final"][0], "fgsm_eps": eps}


def ensure_frontier(
    study: Any,
    space: SearchSpace,
    out_dir: Path,
    dataset: Any,
    given: Frontier | None = None,
    *,
    threads: int | None = None,
    prefix_cache: Path | None = None,
    runner: Any = None,
    workers: str = "",
    family: bool = False,
) -> Frontier:
    """The study's from-scratch frontier: the one it stored, else ``given``, else trained now
    (the final architecture at the space's budgets; with ``family``, every subnet architecture of
    the space's shrink block, the smallest first), with the trials' thread count and into
    their prefix cache, so a trial whose schedule is one of its runs reproduces that run without
    training it again. ``runner``/``workers``: see :func:`growsearch.train.baseline.run_frontier`."""
    from growsearch.train.baseline import run_frontier

    if "frontier" in study.user_attrs:
        front = Frontier.from_dict(study.user_attrs["frontier"])
        print(f"frontier: reusing the study's (best validation accuracy {front.best_val_acc:.4f})", flush=True)
        return front
    if given is not None:
        study.set_user_attr("frontier", given.to_dict())
        names = "; ".join(r.name for r in given.references)
        print(
            f"frontier: the given one, references {names} (best validation accuracy {given.best_val_acc:.4f}; the space's budgets are not trained)",
            flush=True,
        )
        if space.baseline_resolutions and not any(r.resolutions for r in given.references):
            print(
                "frontier: note: the space grows resolution but the given frontier holds no progressive-resizing reference, so a resolution "
                "saving will be credited to growth (train one with growsearch baseline --resolutions ... --switch-at ...)",
                flush=True,
            )
        return given
    budgets = space.frontier_budgets()
    resized = (
        f", and with progressive resizing {'→'.join(map(str, space.baseline_resolutions))} px"
        if space.baseline_resolutions
        else ""
    )
    specs = family_specs(space, dataset.num_classes, dataset.in_chans) if family else []
    archs = [] if family else space.frontier_references()
    what = f"every subnet ({', '.join(s.name for s in specs)})" if family else ", ".join(archs)
    lrs, seeds = space.frontier_lrs(), space.baseline_seeds or [space.seed]
    print(
        f"frontier: {what} from scratch on all of {space.dataset} at {budgets} epochs{resized}, peak LR {'/'.join(f'{v:g}' for v in lrs)} "
        f"(the best on validation per budget), seeds {seeds}: {len(specs or archs) * (2 if resized else 1) * len(budgets) * len(lrs) * len(seeds)} runs",
        flush=True,
    )
    front = run_frontier(
        space.dataset,
        archs,
        budgets,
        specs=specs,
        lrs=lrs,
        seeds=seeds,
        train=space.train,
        dataset=dataset,
        out_dir=out_dir / "frontier",
        overwrite=True,
        progress=False,
        threads=threads,
        prefix_cache=prefix_cache,
        runner=runner,
        workers=workers,
        resolutions=space.baseline_resolutions,
        switch_at=space.baseline_switch_at,
    )
    study.set_user_attr("frontier", front.to_dict())
    print(front.table(), flush=True)
    return front


def family_specs(space: SearchSpace, num_classes: int, in_chans: int) -> list:
    """The architectures of the family a space's shrink block cuts from its final network, the smallest first."""
    from growsearch.model.arch import spec_for
    from growsearch.model.elastic import menu, subnet_spec

    if space.shrink is None:
        raise SearchError(
            "the family cost prices a shrink run's subnets: add a shrink block to the space (shrink: {depths: [...], widths: [...]})"
        )
    final = spec_for(space.final_arch, num_classes, in_chans)
    return [subnet_spec(final, s) for s in menu(final, space.shrink.get("depths", []), space.shrink.get("widths", []))]


def reference_schedules(
    space: SearchSpace, front: Frontier, target: float, num_classes: int, native: int | None = None
) -> list[tuple[str, Schedule]]:
    """The schedules a study can start from before its sampler takes over, labelled:

    - ``"from scratch"``: the frontier's run, at its most accurate budget, of the seed that
      reached the highest validation accuracy there. That run is one of those the target was
      read from, so this schedule is feasible by construction (exactly so when the search
      trained the frontier: the trial then loads that run from the prefix cache), and its M
      ratio is at least 1 (the budget is at or beyond where the frontier crosses the target).
    - ``"cheapest from scratch (ARCH)"``: the frontier's cheapest network at the target (when it
      is not the run above), at its cheapest budget that reaches the target: the answer
      "train a smaller network" is always among the trials.
    - ``"paper 5→10"``-style: the paper's two-stage recipe, half the classes on the smallest
      architecture of the space, then all of them on the final one, each stage trained for the
      cheapest budget that reaches the target (within the space's epoch range).
    - the same two stages with the presets the CIFAR-10 lever ablation found best: ``", no data
      growth"`` (stage 1 on all the data) and ``", data by samples"`` (stage 1 on half of every
      class). Where the space cannot propose one, it trains as it is (see :func:`enqueue`).
    """
    from dataclasses import replace

    from growsearch.plan.schedule import Stage, TrainConfig
    from growsearch.search.space import _ladder
    from growsearch.train.baseline import baseline_schedule

    # the reference whose best budget is the frontier's most accurate (the target is read from it)
    ref = max(front.references, key=lambda r: max(p.val_acc for p in r.points))
    top = max(ref.points, key=lambda p: (p.val_acc, -p.M))
    lucky = max(top.seeds, key=lambda s: s["val_acc"])["seed"] if top.seeds else front.seeds[0]
    train = TrainConfig(**front.train)
    scratch = baseline_schedule(
        space.dataset,
        ref.arch,
        num_classes,
        epochs=top.epochs,
        seed=lucky,
        train=train,
        lr=top.lr if top.lr_sweep and top.lr != train.lr else None,  # the recipe's LR as the frontier ran it
        resolutions=ref.resolutions,
        switch_at=ref.switch_at,
        native=native,
    )
    on_target = front.cheapest_reaching(target) or top
    epochs = min(max(on_target.epochs, space.epochs[0]), space.epochs[1])
    half = num_classes // 2
    lr = None
    if space.grown_lr is not None:
        lr = min(max(space.train.lr, space.grown_lr[0]), space.grown_lr[1])
    paper = Schedule(
        space.dataset,
        [Stage(half, _ladder(space)[0], epochs), Stage(num_classes, space.final_arch, epochs, lr=lr)],
        seed=space.seed,
        train=space.train,
    )
    out = [("from scratch", scratch)]
    # the frontier's cheapest network at the target (a smaller one than the most accurate, often):
    # its cheapest budget that reaches the target, at the LR validation chose there
    cheap_name = front.m_scratch(target)["reference"]
    cheap = next(r for r in front.references if r.name == cheap_name)
    reach = min((p for p in cheap.points if p.val_acc >= target), key=lambda p: p.M, default=None)
    if reach is not None and (cheap is not ref or reach is not top):
        out.append(
            (
                f"cheapest from scratch ({cheap.name})",
                baseline_schedule(
                    space.dataset,
                    cheap.arch,
                    num_classes,
                    epochs=reach.epochs,
                    seed=space.seed,
                    train=train,
                    lr=reach.lr if reach.lr_sweep and reach.lr != train.lr else None,
                    resolutions=cheap.resolutions,
                    switch_at=cheap.switch_at,
                    native=native,
                ),
            )
        )
    if half >= 1:
        out.append((f"paper {half}→{num_classes}", paper))
        # the presets the CIFAR-10 lever ablation found best (benchmarks/results/cifar10.md): the
        # same two stages with all the data in stage 1, and with half of every class
        out.append(
            (
                f"paper {half}→{num_classes}, no data growth",
                replace(
                    paper, stages=[replace(paper.stages[0], classes=num_classes), paper.stages[1]], data_growth="none"
                ),
            )
        )
        out.append(
            (
                f"paper {half}→{num_classes}, data by samples",
                replace(
                    paper,
                    stages=[
                        replace(paper.stages[0], classes=num_classes, fraction=0.5),
                        replace(paper.stages[1], fraction=1.0),
                    ],
                    data_growth="samples",
                ),
            )
        )
    return out


def enqueue(study: Any, schedules: list[tuple[str, Schedule]], space: SearchSpace, num_classes: int) -> None:
    """Enqueue labelled schedules as the study's next trials: as the sampler's own parameters
    where the space can propose the schedule (so the sampler learns from it), else as a whole
    schedule the trial trains as it is (its ``enqueued_schedule`` user attribute)."""
    from growsearch.search.space import schedule_params

    for label, sched in schedules:
        params = schedule_params(sched, space, num_classes)
        attrs: dict[str, Any] = {"reference": label}
        if params is None:
            params, attrs[FIXED_SCHEDULE] = {}, sched.to_dict()
        study.enqueue_trial(params, user_attrs=attrs)


def given_frontier(frontier: str | Path | Frontier | None, ds: Any) -> Frontier | None:
    """``frontier`` loaded (from a folder) and checked against the search's split data."""
    from growsearch.train.frontier import load_frontier

    if frontier is None:
        return None
    front = frontier if isinstance(frontier, Frontier) else load_frontier(frontier)
    front.check_compatible(ds)
    return front


def record_setup(
    study: Any, judge: Judge, space: SearchSpace, *, threads: int, device: str, robust: dict | None
) -> None:
    """Store what every trial of ``study`` is judged by, and how its trials train."""
    judge.record(study)
    study.set_user_attr("space", space.to_dict())
    study.set_user_attr("robust", robust)
    study.set_user_attr("threads", threads)  # every trial's torch thread count: re-runs match only at the same count
    study.set_user_attr("device", device)


# --- the best network as Optuna artifacts ------------------------------------------------
# Optuna's artifact API stores files next to a study (optuna-dashboard lists and serves them);
# growsearch records the artifact ids on the trial and a file-system store's folder on the
# study, so `growsearch export` can fetch the network without being told where it is.

NETWORK_FILE = "network.pt"  # beside it, the trial's result.json (growsearch.train.results.RESULT_FILE)


def store_network(
    study: Any, trial: Any, checkpoint: Path, result: dict, *, artifact_store: Any = None, base: Path | None = None
) -> dict:
    """Upload a trial's final network (its last stage checkpoint) and its ``result.json``
    (``trial`` None: as artifacts of the study, e.g. a confirmed best that already finished).

    ``artifact_store``: any Optuna artifact store; default a ``FileSystemArtifactStore`` in
    ``base`` (whose folder is recorded on the study). Returns the artifact ids, also set as the
    trial's ``network_artifact`` and ``result_artifact`` user attributes.
    """
    import shutil
    import tempfile

    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    from growsearch.train.results import RESULT_FILE

    if artifact_store is None:
        base = Path(base).resolve()
        base.mkdir(parents=True, exist_ok=True)
        artifact_store = FileSystemArtifactStore(str(base))
        study.set_user_attr("artifact_store", str(base))
    with tempfile.TemporaryDirectory() as d:
        res, net = Path(d) / RESULT_FILE, Path(d) / NETWORK_FILE
        res.write_text(json.dumps(result, indent=1))
        # under the name export gives it (the cache's is a content hash) and a MIME type a browser
        # downloads (".pt" guesses as a PowerPoint template)
        shutil.copyfile(checkpoint, net)
        ids = {
            "network_artifact": upload_artifact(
                artifact_store=artifact_store,
                file_path=str(net),
                study_or_trial=study if trial is None else trial,
                mimetype="application/octet-stream",
            ),
            "result_artifact": upload_artifact(
                artifact_store=artifact_store,
                file_path=str(res),
                study_or_trial=study if trial is None else trial,
                mimetype="application/json",
            ),
        }
    for key, value in ids.items():
        if trial is not None:
            trial.set_user_attr(key, value)
    return ids


def fetch_network(study: Any, out_dir: Path, *, artifact_store: Any = None) -> Path | None:
    """Download the best feasible trial's network and ``result.json`` into ``out_dir``; its
    network's path, or None when the study holds none (e.g. made before artifacts existed)."""
    from optuna.artifacts import FileSystemArtifactStore, download_artifact

    from growsearch.train.results import RESULT_FILE

    best = Judge.from_study(study).best(study)
    ids = (study.user_attrs.get("confirmed") or {}).get("artifacts") or (best.user_attrs if best else {})
    if best is None or "network_artifact" not in ids:
        return None
    if artifact_store is None:
        base = study.user_attrs.get("artifact_store")
        if base is None or not Path(base).is_dir():
            return None
        artifact_store = FileSystemArtifactStore(base)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for key, name in (("network_artifact", NETWORK_FILE), ("result_artifact", RESULT_FILE)):
        target = out_dir / name
        if target.exists():
            target.unlink()  # download_artifact will not overwrite
        download_artifact(artifact_store=artifact_store, artifact_id=ids[key], file_path=str(target))
    return out_dir / NETWORK_FILE
