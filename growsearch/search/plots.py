"""A search's figure: ``pareto.png``, every finished trial over the from-scratch frontier."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from growsearch._plot import log_x, pyplot, save
from growsearch.train.plots import draw_frontier

if TYPE_CHECKING:
    from growsearch.search.judge import Judge

__all__ = ["plot_pareto"]


def plot_pareto(trials: list, judge: "Judge", path: str | Path) -> Path:
    """Each finished trial's ratio (its cost over the from-scratch cost at the target) against
    its validation accuracy, the frontier's budgets on the same axes, target line drawn."""
    fig, ax = pyplot().subplots(figsize=(6.5, 4.2))
    metric, target_acc = judge.metric, judge.target
    pts = [
        (t.user_attrs.get(metric), t.user_attrs.get("val_acc"), bool(t.user_attrs.get("feasible")))
        for t in trials
        if t.user_attrs.get("final")
    ]
    for feasible, style in (
        (True, dict(color="C2", label="feasible trials")),
        (False, dict(color="C1", marker="x", label="infeasible trials")),
    ):
        xs = [p[0] for p in pts if p[2] is feasible]
        ys = [p[1] for p in pts if p[2] is feasible]
        if xs:
            ax.scatter(xs, ys, s=28, zorder=3, **style)
    feas = sorted((p[0], p[1]) for p in pts if p[2])
    if feas:
        ax.scatter(
            [feas[0][0]],
            [feas[0][1]],
            s=160,
            facecolors="none",
            edgecolors="k",
            zorder=4,
            label=f"best: {feas[0][0]:.3f}×",
        )
    if judge.in_M:  # the frontier's budgets in the same units (their M over the target's)
        draw_frontier(ax, judge.frontier, scale=judge.ref_cost)
    ax.axhline(target_acc, color="grey", ls="--", lw=0.8, label=f"target {target_acc:.4f}")
    ax.axvline(1.0, color="grey", ls=":", lw=0.8)
    log_x(ax)
    ax.set_xlabel(f"{metric}: from-scratch {judge.cost} at the target accuracy = 1")
    ax.set_ylabel("final validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")
    ax.set_title(f"{len(pts)} finished trials over the from-scratch frontier", fontsize=10)
    return save(fig, path)
