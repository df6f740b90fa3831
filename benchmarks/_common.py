"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import statistics as stats
from pathlib import Path

from growsearch.schedule import Schedule, Stage, TrainConfig


def saturating_schedule(
    stages: list[tuple[int, str]] | list[tuple[int, str, dict]],
    *,
    seed: int,
    width: float,
    patience: int,
    cap: int,
    lr: float,
    grown_lr: float,
) -> Schedule:
    """Every stage trained to saturation (plateau rule); grown stages at ``grown_lr``.

    Each entry is (classes, arch) or (classes, arch, extra Stage options such as prune_ratio).
    """
    out = []
    for i, entry in enumerate(stages):
        k, arch, extra = (*entry, {})[:3]
        out.append(Stage(k, f"{arch}@{width:g}", cap, patience=patience, lr=None if i == 0 else grown_lr, **extra))
    return Schedule("digits", out, seed=seed, train=TrainConfig(lr=lr))


def mean_std(values: list[float]) -> str:
    sd = stats.stdev(values) if len(values) > 1 else 0.0
    return f"{stats.mean(values):.2f} ± {sd:.2f}"


def save_report(text: str, out: str | Path) -> Path:
    """Print the markdown report and write it to ``out`` (creating its folder)."""
    print(text)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_fig(fig, path: str | Path, dpi: int = 110) -> None:
    """Lay out, write and close a figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
