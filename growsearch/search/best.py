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

from growsearch.train.results import RESULT_FILE
from growsearch.plan.schedule import Schedule
from growsearch.search.study import best_trial, fetch_network, NETWORK_FILE, SearchError

__all__ = ["load_best", "load_best_network", "export_best", "export"]


def load_best(storage: str, study: str) -> Schedule:
    """The cheapest feasible schedule of a finished (or running) study, ready for ``run_schedule``.

    Example:
        >>> sched = load_best("sqlite:///runs/search/study.db", "digits_vgg")  # doctest: +SKIP
    """
    import optuna

    try:
        st = optuna.load_study(study_name=study, storage=storage)
    except KeyError:
        raise SearchError(f"no study {study!r} in {storage}") from None
    except Exception as e:  # noqa: BLE001 - a malformed URL or unreachable database is one line
        raise SearchError(f"cannot open Optuna storage {storage!r}: {str(e).splitlines()[0]} (e.g. sqlite:///runs/search/study.db)") from None
    best = best_trial(st)
    if best is None:
        raise SearchError(f"study {study!r} has no feasible trial yet (none reached the target accuracy)")
    sched = Schedule.from_dict(best.user_attrs["schedule"])
    sched.threads = st.user_attrs.get("threads")  # reproduce the trial's numbers by default
    return sched


def load_best_network(storage: str, study: str, out_dir: str | Path, *, artifact_store: Any = None) -> Path | None:
    """Download the best feasible trial's trained final network (``network.pt``, a stage
    checkpoint ``growsearch.load_checkpoint`` reads) and its ``result.json`` into ``out_dir``;
    the network's path, or None when the study stored none. ``artifact_store``: the Optuna
    store it was uploaded to (default: the file-system store recorded on the study)."""
    import optuna

    load_best(storage, study)  # the same one-line errors for a missing study or no feasible trial
    return fetch_network(optuna.load_study(study_name=study, storage=storage), Path(out_dir), artifact_store=artifact_store)


def export_best(storage: str, study: str, path: str | Path) -> Schedule:
    """Write the best schedule to ``path`` (a .json/.yaml file), or into a folder as
    ``best_schedule.json`` next to the trained ``network.pt`` and ``result.json`` when the study
    stored them (see :func:`load_best_network`)."""
    return export(storage, study, path)[0]


def export(storage: str, study: str, path: str | Path) -> tuple[Schedule, Path, Path | None]:
    """The work of :func:`export_best`: (the schedule, the file it was written to, the network's path
    or None when none was written), so ``growsearch export`` can say what it wrote."""
    sched = load_best(storage, study)
    path = Path(path)
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        sched.save(path)
        return sched, path, None
    path.mkdir(parents=True, exist_ok=True)
    for name in (NETWORK_FILE, RESULT_FILE):  # an earlier export's files must not pose as this study's
        (path / name).unlink(missing_ok=True)
    sched.save(path / "best_schedule.json")
    return sched, path / "best_schedule.json", load_best_network(storage, study, path)
