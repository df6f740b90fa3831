"""A run's and a frontier's figures: ``curve.png`` (a run over the frontier) and ``frontier.png``.

Drawn by whoever reports (``run_schedule`` for its run folder, ``run_frontier`` for its own),
never by the result writer. matplotlib is imported lazily, so ``import growsearch`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from growsearch._plot import log_x, pyplot, save
from growsearch.train.frontier import bound_word

if TYPE_CHECKING:
    from growsearch.train.frontier import Frontier
    from growsearch.train.results import RunResult

__all__ = ["draw_frontier", "plot_curve", "plot_family", "plot_frontier"]


def _curve_points(result: "RunResult") -> tuple[list[float], list[float], list[float]]:
    """(cumulative M, validation accuracy) after every epoch, and cumulative M at each stage end."""
    xs, ys, bounds, base = [], [], [], 0
    for st in result.stages:
        for row in st.history:
            xs.append(base + row["samples"] * st.macs_per_sample)
            ys.append(row["val_acc"])
        base += st.M
        bounds.append(base)
    return xs, ys, bounds


def draw_frontier(ax, frontier: "Frontier", scale: float = 1.0) -> None:
    """On ``ax``: each reference's budgets as a line of (M / scale, validation accuracy), labelled by epochs."""
    for j, ref in enumerate(frontier.references):
        pts = sorted(ref.points, key=lambda p: p.M)
        xs, ys = [p.M / scale for p in pts], [p.val_acc for p in pts]
        err = [p.val_std for p in pts]
        ax.errorbar(
            xs,
            ys,
            yerr=err if any(err) else None,
            marker="s",
            ms=4,
            color=f"C{3 + j}",
            capsize=2,
            label=f"from scratch: {ref.name}",
        )
        for x, y, p in zip(xs, ys, pts):
            ax.annotate(
                f"{p.epochs} ep", (x, y), textcoords="offset points", xytext=(3, -10), fontsize=6, color=f"C{3 + j}"
            )


def plot_curve(result: "RunResult", path: str | Path, *, frontier: "Frontier | None" = None) -> Path:
    """Validation accuracy against cumulative training cost M (log scale), stage boundaries
    marked, over the from-scratch frontier when one is given.

    Accuracy within a stage is measured on that stage's classes, so the curve steps down
    where a stage adds classes; the last stage's values are on all classes.
    """
    fig, ax = pyplot().subplots(figsize=(7, 4.2))
    xs, ys, bounds = _curve_points(result)
    ax.plot(xs, ys, marker=".", label=f"cumulative ({' → '.join(s.arch for s in result.stages)})")
    show_res = len({st.resolution for st in result.stages}) > 1  # resolution growth: label each stage's input size
    for i, (b, st) in enumerate(zip(bounds, result.stages), 1):
        ax.axvline(b, color="grey", lw=0.8, ls=":")
        label = f"stage {i}\n{st.classes} cls" + (f"\n{st.resolution} px" if show_res else "")
        ax.annotate(label, (b, 0.02), xycoords=("data", "axes fraction"), ha="right", fontsize=7, color="grey")
    if frontier is not None:
        draw_frontier(ax, frontier)
        iso = result.iso or frontier.iso(result.M, result.val_acc)
        ax.plot([iso["M_scratch"], result.M], [result.val_acc] * 2, color="k", lw=0.8, ls="--")
        ax.set_title(
            f"iso-accuracy M ratio {bound_word(iso)}{iso['iso_M_ratio']:.2f}× (validation accuracy {result.val_acc:.3f})",
            fontsize=10,
        )
    log_x(ax)
    ax.set_xlabel("cumulative training cost M (forward MACs, log scale)")
    ax.set_ylabel("validation accuracy (stage's classes)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    return save(fig, path)


def plot_frontier(frontier: "Frontier", path: str | Path) -> Path:
    """Validation accuracy against M (log scale), one line per reference, ± std over seeds."""
    fig, ax = pyplot().subplots(figsize=(6.5, 4.2))
    draw_frontier(ax, frontier)
    log_x(ax)
    ax.set_xlabel("training cost M (forward MACs, log scale)")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    seeds = len(frontier.seeds)
    ax.set_title(
        f"from-scratch frontier on {frontier.dataset}" + (f" (mean of {seeds} seeds)" if seeds > 1 else ""), fontsize=10
    )
    return save(fig, path)


def plot_family(
    result: "RunResult", path: str | Path, *, ratio: dict | None = None, frontiers: "list[Frontier] | None" = None
) -> Path:
    """A shrink run's family: each subnet's validation accuracy (BatchNorm recalibrated) against
    its inference MACs, the validation Pareto front joined; beside each subnet with a frontier of
    its own architecture, that frontier's most accurate from-scratch budget (open squares)."""
    from growsearch.train.family import own_reference

    fig, ax = pyplot().subplots(figsize=(6.5, 4.2))
    rows = result.subnets or []
    ax.scatter(
        [r["macs_per_sample"] for r in rows],
        [r["val_acc"] for r in rows],
        color="C0",
        zorder=3,
        label="subnets of the run",
    )
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["macs_per_sample"])
    ax.plot(
        [r["macs_per_sample"] for r in front],
        [r["val_acc"] for r in front],
        color="C0",
        lw=1,
        label="Pareto front (validation)",
    )
    for r in rows:
        ax.annotate(
            r["subnet"], (r["macs_per_sample"], r["val_acc"]), textcoords="offset points", xytext=(3, 3), fontsize=6
        )
    labelled = False
    for r in rows:
        own = own_reference(frontiers or [], r["spec"])
        if own is not None:
            best = max(own[1].points, key=lambda p: p.val_acc)
            ax.scatter(
                [r["macs_per_sample"]],
                [best.val_acc],
                marker="s",
                facecolors="none",
                edgecolors="C3",
                label=None if labelled else "from scratch, its most accurate budget",
            )
            labelled = True
    log_x(ax)
    ax.set_xlabel("inference MACs per image (log scale)")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fr = (ratio or {}).get("family_ratio")
    ax.set_title(
        f"family of {len(rows)} subnets"
        + (f": family M ratio {fr:.2f}× ({ratio['chosen']})" if fr is not None else ""),
        fontsize=10,
    )
    return save(fig, path)
