"""Noise and ablation sweeps: accuracy per level over seeded draws, and its mean over the levels.

``sweep`` calls ``measure(model, level, draw)`` for every level, draw and model and keeps every
draw (mean, std, the draws themselves); ``area`` is the curve's mean accuracy over the level
range. ``ablate`` zeroes random conv units while its context is open (Morcos et al.).

Example:
    >>> area([0.0, 0.5, 1.0], [1.0, 0.5, 0.0])
    0.5
    >>> sweep("toy", "level", [0.0, 1.0], 2, ["m"], lambda m, level, d: 1 - level, progress=False)["area"]
    {'m': 0.5}
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from growsearch.robust.attack import _batches
from growsearch.robust.members import RobustnessError

__all__ = ["ablate", "accuracy", "area", "sweep"]


def unit_norms(model: nn.Module) -> tuple[type, ...]:
    """The layers whose output channels are ``model``'s units, as its family declares them; a
    one-line error when it declares none (ablation would zero nothing and report it as robustness)."""
    from growsearch.model.arch import get_family

    norms = get_family(model.arch_spec.family).unit_norms
    if not norms:
        raise RobustnessError(
            f"family {model.arch_spec.family!r} declares no unit layers to ablate (Family.unit_norms): pass --ablation 0, or declare them"
        )
    return norms


@contextmanager
def ablate(model: nn.Module, fraction: float, generator: torch.Generator) -> Iterator[int]:
    """Zero a random ``fraction`` of every conv layer's output channels (Morcos et al.'s unit
    ablation) while the context is open; yields the number of units zeroed.

    A unit is a channel of the output of one of the family's ``unit_norms`` layers (BatchNorm
    in the shipped families: every conv is followed by one), so with ReLU next a zeroed unit
    stays 0 downstream; in a residual block, zeroing the branch's last BN channel removes that
    channel's branch only.
    """
    norms = unit_norms(model) if fraction > 0 else ()
    handles, zeroed = [], 0
    for mod in model.modules():
        if isinstance(mod, norms):
            c = mod.num_features
            k = int(round(fraction * c))
            keep = torch.ones(c)
            keep[torch.randperm(c, generator=generator)[:k]] = 0.0
            zeroed += k
            dev = mod.weight.device if mod.weight is not None else torch.device("cpu")
            mask = keep.view(1, -1, 1, 1).to(dev)
            handles.append(mod.register_forward_hook(lambda _m, _i, out, _mask=mask: out * _mask.to(out.dtype)))
    try:
        yield zeroed
    finally:
        for h in handles:
            h.remove()


def accuracy(pred_fn, x: torch.Tensor, y: torch.Tensor, batch_size: int, dev: torch.device, transform=None) -> float:
    correct = 0
    for xb, yb in _batches(x, y, batch_size, dev):
        if transform is not None:
            xb = transform(xb)
        correct += int((pred_fn(xb) == yb).sum())
    return correct / max(1, len(y))


def area(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Mean accuracy over the level range: the trapezoid area under the curve ÷ its x span."""
    if len(xs) < 2 or xs[-1] == xs[0]:
        return float(ys[0]) if ys else 0.0
    a = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))
    return a / (xs[-1] - xs[0])


def _summary(rows: list[list[float]]) -> dict:
    t = torch.tensor(rows, dtype=torch.float64)  # (levels, draws)
    return {"mean": t.mean(1).tolist(), "std": (t.std(1, unbiased=False)).tolist(), "draws": t.tolist()}


def sweep(name: str, key: str, levels: list[float], draws: int, models: list[str], measure, progress: bool) -> dict:
    """``measure(model, level, draw)`` for every level, draw and model: a noise or ablation curve
    (per level: mean, std and every draw), and its mean accuracy over the levels (``area``)."""
    from tqdm.auto import tqdm

    rows: dict[str, list[list[float]]] = {m: [] for m in models}
    with tqdm(total=len(levels) * draws, desc=name, disable=not progress, unit="draw") as bar:
        for level in levels:
            per: dict[str, list[float]] = {m: [] for m in models}
            for d in range(draws):
                for m in models:
                    per[m].append(measure(m, level, d))
                bar.update()
            for m in models:
                rows[m].append(per[m])
    out = {key: list(levels), "draws": draws, **{m: _summary(v) for m, v in rows.items()}}
    out["area"] = {m: area(levels, out[m]["mean"]) for m in models}
    return out
