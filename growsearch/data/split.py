"""Nested class subsets and the validation split: the views of a dataset that stages train on.

:func:`class_order` is a schedule's seeded class permutation; stage ``i`` trains on
``subset(ds, order[:k_i])``, so the subsets are nested and label ``j`` always means
``order[j]``. :func:`with_validation` carves a seeded, stratified validation split out of the
training set. Everything that *chooses* (the plateau rule, the search, mutual-inference
weights, detection thresholds) reads the validation split; the test split is only reported.
With ``fraction=0`` the validation split *is* the test split (the paper's own protocol), and
every report says so.

Example:
    >>> from growsearch.data.dataset import create_dataset
    >>> ds = create_dataset("digits")
    >>> order = class_order(ds.num_classes, seed=0)
    >>> d1 = subset(ds, order[:5])
    >>> d1.num_classes, int(d1.y_train.max())
    (5, 4)
    >>> dv = with_validation(ds, 0.1, seed=0)
    >>> len(dv.y_train) + len(dv.y_val) == len(ds.y_train)
    True
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from growsearch.data.dataset import DataError, Dataset, _stratified, select

__all__ = ["class_order", "stage_data", "stage_size", "subset", "with_validation"]


def class_order(num_classes: int, seed: int) -> list[int]:
    """A fixed permutation of the classes; stage ``i`` trains on its first ``k_i`` entries."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(num_classes, generator=g).tolist()


def subset(ds: Dataset, classes: list[int]) -> Dataset:
    """Train and test samples of ``classes`` only, labels renumbered to positions in ``classes``.

    With ``classes = order[:k]`` for growing ``k`` the subsets are nested and label ``j``
    always means ``order[j]``, so classifier rows learnt in one stage keep their meaning.
    """
    lut = torch.full((ds.num_classes,), -1, dtype=torch.int64)
    lut[torch.tensor(classes, dtype=torch.int64)] = torch.arange(len(classes))
    mtr, mte = lut[ds.y_train] >= 0, lut[ds.y_test] >= 0
    return replace(
        ds,
        x_train=select(ds.x_train, mtr, mapped=ds.mapped),
        y_train=lut[ds.y_train[mtr]],
        x_test=select(ds.x_test, mte, mapped=ds.mapped),
        y_test=lut[ds.y_test[mte]],
        num_classes=len(classes),
        class_names=tuple(ds.class_names[c] for c in classes) if ds.class_names else (),
        idx_train=ds.idx_train[mtr] if ds.idx_train is not None else None,
        idx_test=ds.idx_test[mte] if ds.idx_test is not None else None,
        **_subset_val(ds, lut),
    )


def stage_data(ds: Dataset, classes: list[int], fraction: float | None = None, seed: int = 0) -> Dataset:
    """What one stage trains on: ``subset(ds, classes)`` and, with ``fraction`` below 1, a seeded
    share of every class's training images (validation and test splits untouched).

    The shares are stratified and nested: each class's images are drawn in one seeded order and
    a stage takes the first ``round(fraction × count)`` (at least one), so a larger fraction
    under the same seed holds every image a smaller one held.

    Example:
        >>> from growsearch.data.dataset import create_dataset
        >>> ds = create_dataset("digits")
        >>> small, big = (stage_data(ds, list(range(10)), f, seed=0) for f in (0.25, 0.5))
        >>> set(small.idx_train.tolist()) <= set(big.idx_train.tolist()), len(small.y_train) < len(big.y_train)
        (True, True)
    """
    d = subset(ds, classes)
    if fraction is None or fraction >= 1:
        return d
    keep = _stratified(d.y_train, seed, lambda _c, n: _share(n, fraction))
    idx = d.idx_train if d.idx_train is not None else torch.arange(len(d.y_train))
    return replace(d, x_train=select(d.x_train, keep, mapped=d.mapped), y_train=d.y_train[keep], idx_train=idx[keep])


def stage_size(y_train: torch.Tensor, classes: list[int], fraction: float | None = None) -> int:
    """How many training images :func:`stage_data` gives a stage, counted without copying them (the planner's M)."""
    counts = torch.bincount(y_train, minlength=max(classes) + 1)[torch.tensor(classes, dtype=torch.int64)].tolist()
    return sum(counts) if fraction is None or fraction >= 1 else sum(_share(n, fraction) for n in counts)


def _share(n: int, fraction: float) -> int:
    return max(1, int(round(n * fraction)))


def _subset_val(ds: Dataset, lut: torch.Tensor) -> dict:
    if ds.y_val is None:
        return {}
    m = lut[ds.y_val] >= 0
    return {
        "x_val": select(ds.x_val, m, mapped=ds.mapped),
        "y_val": lut[ds.y_val[m]],
        "idx_val": ds.idx_val[m] if ds.idx_val is not None else None,
    }


def with_validation(ds: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """Hold out a stratified, seeded ``fraction`` of each class's training samples for validation.

    The same ``(fraction, seed)`` always picks the same samples, whatever the training seed, so
    every run of a study and its from-scratch frontier select on one split. ``fraction = 0``
    makes the test split double as the validation split (then selection sees the test set).
    A dataset already split the same way is returned as it is.

    Raises:
        DataError: ``fraction`` outside [0, 0.5), a class with too few training samples to give
            it a validation sample and keep one for training, or a dataset split another way.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 0.5:
        raise DataError(f"val_fraction must be in [0, 0.5) (0.1 holds out 10% of each class), got {fraction!r}")
    if ds.val_fraction is not None:
        if (ds.val_fraction, ds.val_seed) == (float(fraction), int(seed)):
            return ds
        raise DataError(
            f"{ds.name} is already split with val_fraction {ds.val_fraction:g} (seed {ds.val_seed}), not {fraction:g} (seed {seed}): "
            "pass the dataset as create_dataset returns it"
        )
    if fraction == 0:
        ids = ds.idx_test if ds.idx_test is not None else torch.arange(len(ds.y_test))
        return replace(
            ds,
            x_val=ds.x_test,
            y_val=ds.y_test,
            idx_val=ds.idx_test,
            val_fraction=0.0,
            val_seed=int(seed),
            val_id="test:" + _hash(ids),
        )

    def take(c: int, members: int) -> int:
        k = int(round(members * fraction))
        if k < 1 or k >= members:
            need = "no validation sample" if k < 1 else "no training sample"
            raise DataError(
                f"{ds.name}: class {c} has {members} training sample(s), so val_fraction {fraction:g} leaves it {need}: "
                f"use a val_fraction between {1 / members:.3g} and 0.5, add samples, or 0 to select on the test set"
                if members > 1
                else f"{ds.name}: class {c} has 1 training sample, too few to hold one out: add samples or use val_fraction 0"
            )
        return k

    vi = _stratified(ds.y_train, seed, take)
    keep = torch.ones(len(ds.y_train), dtype=torch.bool)
    keep[vi] = False
    idx = ds.idx_train if ds.idx_train is not None else torch.arange(len(ds.y_train))
    return replace(
        ds,
        x_train=select(ds.x_train, keep, mapped=ds.mapped),
        y_train=ds.y_train[keep],
        idx_train=idx[keep],
        x_val=select(ds.x_train, vi, mapped=ds.mapped),
        y_val=ds.y_train[vi],
        idx_val=idx[vi],
        val_fraction=float(fraction),
        val_seed=int(seed),
        val_id=_hash(idx[vi]),
    )


def _hash(idx: torch.Tensor) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(idx.numpy().astype(np.int64)).tobytes()).hexdigest()[:16]
