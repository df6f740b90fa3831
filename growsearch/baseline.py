"""One budget of a from-scratch frontier: a network trained on all classes with the same recipe.

Example:
    >>> from growsearch.baseline import run_baseline
    >>> r = run_baseline("digits", "vgg11@0.125", epochs=1, progress=False)
    >>> len(r.stages), r.stages[0].classes
    (1, 10)
"""

from __future__ import annotations

from growsearch.backbones import ArchSpec
from growsearch.data import Dataset, create_dataset
from growsearch.results import RunResult
from growsearch.schedule import Schedule, Stage, TrainConfig
from growsearch.train import run_schedule

__all__ = ["baseline_schedule", "run_baseline"]


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
        **kwargs: the keyword options of :func:`run_schedule` (``out_dir``, ``device``, ...).

    Example:
        >>> r = run_baseline("digits", "vgg11@0.125", epochs=1, progress=False)
        >>> len(r.stages), r.stages[0].classes
        (1, 10)
    """
    ds = dataset if dataset is not None else create_dataset(data)
    sched = baseline_schedule(data, arch, ds.num_classes, epochs=epochs, patience=patience, seed=seed, train=train, lr=lr)
    return run_schedule(sched, dataset=ds, init_spec=spec, **kwargs)


def baseline_schedule(
    data: str, arch: str, num_classes: int, *, epochs: int, patience: int | None = None, seed: int = 0,
    train: TrainConfig | None = None, lr: float | None = None,
) -> Schedule:
    """The one-stage schedule :func:`run_baseline` trains (and a resumed frontier compares with)."""
    stage = Stage(classes=num_classes, arch=arch, epochs=epochs, patience=patience, lr=lr)
    return Schedule(dataset=data, stages=[stage], seed=seed, train=train or TrainConfig())
