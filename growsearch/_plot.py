"""Figures' common ground: matplotlib (imported lazily, Agg backend), atomic saving, log axes."""

from __future__ import annotations

from pathlib import Path

from growsearch._io import atomic_path

__all__ = ["log_x", "pyplot", "save"]


def log_x(ax) -> None:
    """A log-scale x axis labelled with plain numbers at the decades only (no crowded minor labels)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | Path) -> Path:
    plt = pyplot()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return Path(path)
