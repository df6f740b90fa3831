"""A study's best trial, for use after the search: its schedule, its trained network, an export.

These read what every route into a study records (``growsearch search``, your own Ray Tune
Tuner, your own Optuna study; see :mod:`growsearch.search.study`): the cheapest trial that is
feasible under every constraint.

Example:
    >>> from growsearch.search.best import export_best, load_best  # doctest: +SKIP
    >>> sched = load_best("sqlite:///runs/search/study.db", "digits_vgg")  # doctest: +SKIP
    >>> export_best("sqlite:///runs/search/study.db", "digits_vgg", "best/")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from growsearch._io import held
from growsearch.plan.schedule import Schedule
from growsearch.search.judge import Judge, SearchError
from growsearch.search.study import fetch_network, open_storage

__all__ = ["best_text", "load_best", "load_best_network", "export_best", "export"]


def _open(study: Any, name: str | None) -> Any:
    """``study`` when it is an Optuna study; else the study ``name`` in the storage ``study``."""
    import optuna

    if isinstance(study, optuna.Study):
        return study
    if name is None:
        raise SearchError("name the study: load_best(storage_url, study_name), or pass an optuna.Study")
    storage = open_storage(study)  # reading never writes: an existing Optuna database or journal only
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise SearchError(f"no study {name!r} in {study}") from None


def _best(st: Any) -> Any:
    best = Judge.from_study(st).best(st)
    if best is None:
        raise SearchError(f"study {st.study_name!r} has no feasible trial yet (none reached the target accuracy)")
    return best


def load_best(study: Any, study_name: str | None = None) -> Schedule:
    """The cheapest feasible schedule of a finished (or running) study, ready for ``run_schedule``.

    Args:
        study: an ``optuna.Study``, or a storage URL with ``study_name``.

    Example:
        >>> sched = load_best("sqlite:///runs/search/study.db", "digits_vgg")  # doctest: +SKIP
        >>> sched = load_best(optuna.load_study(study_name="digits_vgg", storage="sqlite:///runs/search/study.db"))  # doctest: +SKIP
    """
    st = _open(study, study_name)
    sched = Schedule.from_dict(_best(st).user_attrs["schedule"])
    sched.threads = st.user_attrs.get("threads")  # reproduce the trial's numbers by default
    return sched


def load_best_network(
    study: Any, study_name: str | None = None, *, out_dir: str | Path, artifact_store: Any = None
) -> Path | None:
    """Download the best feasible trial's trained final network (``network.pt``, a stage
    checkpoint ``growsearch.load_checkpoint`` reads) and its ``result.json`` into ``out_dir``;
    the network's path, or None when the study stored none.

    Args:
        study: an ``optuna.Study``, or a storage URL with ``study_name``.
        artifact_store: the Optuna store it was uploaded to (default: the file-system store
            recorded on the study).
    """
    st = _open(study, study_name)
    _best(st)  # the same one-line error when no trial is feasible
    return fetch_network(st, Path(out_dir), artifact_store=artifact_store)


def best_text(study: Any, study_name: str | None = None) -> str:
    """The study's best feasible trial in one line, with both yardsticks and the interval (on
    the mean of its seeds when the search confirmed it): what ``growsearch export`` prints."""
    from growsearch.search.confirm import numbers

    st = _open(study, study_name)
    judge, best = Judge.from_study(st), _best(st)
    m, a = judge.metric, best.user_attrs
    n = numbers(st.user_attrs.get("confirmed"), best.number, a, m)
    ratio, ci, val = n["ratio"], n["ci"], n["val_acc"]
    how = f"mean of {n['seeds']} seeds" if n["seeds"] > 1 else "one seed"
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    same = (
        f"; {a[m + '_same']:.3f}x against {a['schedule']['stages'][-1]['arch']} alone (one seed)"
        if a.get(f"{m}_same") is not None
        else ""
    )
    return (
        f"best feasible: trial {best.number + 1} ({how}), {m} {ratio:.3f}x{interval} against the family "
        f"(cheapest from scratch: {judge.ref['reference']}){same}; validation accuracy {val:.4f}, target {judge.target:.4f}"
    )


def export_best(storage: str, study: str, path: str | Path, *, overwrite: bool = False) -> Schedule:
    """Write the best schedule to ``path`` (a .json/.yaml file), or into a folder as
    ``best_schedule.json`` next to the trained ``network.pt`` and ``result.json`` when the study
    stored them (see :func:`load_best_network`). An earlier export is replaced only with
    ``overwrite``, and a file growsearch did not write never is."""
    return export(storage, study, path, overwrite=overwrite)[0]


def export(
    storage: str, study: str, path: str | Path, *, overwrite: bool = False
) -> tuple[Schedule, Path, Path | None]:
    """The work of :func:`export_best`: (the schedule, the file it was written to, the network's path
    or None when none was written), so ``growsearch export`` can say what it wrote."""
    from growsearch._io import check_owned, remove_owned

    path = Path(path)
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        _check_schedule_file(path, overwrite)
        sched = load_best(storage, study)
        sched.save(path)
        return sched, path, None

    def check() -> None:
        check_owned(path, SearchError)  # a file of the user's named best_schedule.json, network.pt, result.json
        if (path / "best_schedule.json").exists() and not overwrite:
            raise SearchError(
                f"{path} holds an earlier export: pass --overwrite to replace it, or choose another folder"
            )

    check()
    sched = load_best(storage, study)
    with held(path, SearchError, check=check):
        remove_owned(path)  # an earlier export's files must not pose as this study's
        sched.save(path / "best_schedule.json")
        return sched, path / "best_schedule.json", load_best_network(storage, study, out_dir=path)


def _check_schedule_file(path: Path, overwrite: bool) -> None:
    """A schedule file is replaced only with ``overwrite``, and only when it is a growsearch schedule."""
    from growsearch.plan.schedule import load_schedule

    if not path.exists():
        return
    if not overwrite:
        raise SearchError(f"{path} exists: pass --overwrite to replace it, or choose another file")
    try:
        load_schedule(path)
    except Exception:  # noqa: BLE001 - anything that is not a schedule is the user's own file
        raise SearchError(
            f"{path} is not a growsearch schedule: it is left as it is; choose another file (nothing was changed)"
        ) from None
