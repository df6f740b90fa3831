"""Figures. matplotlib is imported lazily (Agg backend) so ``import growsearch`` stays light."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from growsearch.frontier import Frontier
    from growsearch.results import RunResult

__all__ = ["plot_curve", "plot_frontier", "plot_pareto", "plot_robustness"]


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


def log_x(ax) -> None:
    """A log-scale x axis labelled with plain numbers at the decades only (no crowded minor labels)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _draw_frontier(ax, frontier: "Frontier", scale: float = 1.0) -> None:
    """Each reference's budgets as a line of (M / scale, validation accuracy), labelled by epochs."""
    for j, ref in enumerate(frontier.references):
        pts = sorted(ref.points, key=lambda p: p.M)
        xs, ys = [p.M / scale for p in pts], [p.val_acc for p in pts]
        err = [p.val_std for p in pts]
        ax.errorbar(xs, ys, yerr=err if any(err) else None, marker="s", ms=4, color=f"C{3 + j}", capsize=2, label=f"from scratch: {ref.name}")
        for x, y, p in zip(xs, ys, pts):
            ax.annotate(f"{p.epochs} ep", (x, y), textcoords="offset points", xytext=(3, -10), fontsize=6, color=f"C{3 + j}")


def plot_curve(result: "RunResult", path: str | Path, *, frontier: "Frontier | None" = None) -> Path:
    """Validation accuracy against cumulative training cost M (log scale), stage boundaries
    marked, over the from-scratch frontier when one is given.

    Accuracy within a stage is measured on that stage's classes, so the curve steps down
    where a stage adds classes; the last stage's values are on all classes.
    """
    fig, ax = _pyplot().subplots(figsize=(7, 4.2))
    xs, ys, bounds = _curve_points(result)
    ax.plot(xs, ys, marker=".", label=f"cumulative ({' → '.join(s.arch for s in result.stages)})")
    show_res = len({st.resolution for st in result.stages}) > 1  # resolution growth: label each stage's input size
    for i, (b, st) in enumerate(zip(bounds, result.stages), 1):
        ax.axvline(b, color="grey", lw=0.8, ls=":")
        label = f"stage {i}\n{st.classes} cls" + (f"\n{st.resolution} px" if show_res else "")
        ax.annotate(label, (b, 0.02), xycoords=("data", "axes fraction"), ha="right", fontsize=7, color="grey")
    if frontier is not None:
        _draw_frontier(ax, frontier)
        iso = result.iso or frontier.iso(result.M, result.val_acc)
        ax.plot([iso["M_scratch"], result.M], [result.val_acc] * 2, color="k", lw=0.8, ls="--")
        from growsearch.frontier import bound_word

        ax.set_title(f"iso-accuracy M ratio {bound_word(iso)}{iso['iso_M_ratio']:.2f}× (validation accuracy {result.val_acc:.3f})", fontsize=10)
    log_x(ax)
    ax.set_xlabel("cumulative training cost M (forward MACs, log scale)")
    ax.set_ylabel("validation accuracy (stage's classes)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    return _save(fig, path)


def plot_frontier(frontier: "Frontier", path: str | Path) -> Path:
    """Validation accuracy against M (log scale), one line per reference, ± std over seeds."""
    fig, ax = _pyplot().subplots(figsize=(6.5, 4.2))
    _draw_frontier(ax, frontier)
    log_x(ax)
    ax.set_xlabel("training cost M (forward MACs, log scale)")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    seeds = len(frontier.seeds)
    ax.set_title(f"from-scratch frontier on {frontier.dataset}" + (f" (mean of {seeds} seeds)" if seeds > 1 else ""), fontsize=10)
    return _save(fig, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    from growsearch._io import atomic_path

    plt = _pyplot()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_pareto(trials: list, target_acc: float, frontier: "Frontier", M_ref: float, path: str | Path) -> Path:
    """Iso-accuracy M ratio (M / M_scratch(target)) against validation accuracy for every
    finished trial, the frontier's budgets on the same axes, target line drawn."""
    fig, ax = _pyplot().subplots(figsize=(6.5, 4.2))
    pts = [(t.user_attrs.get("M_ratio"), t.user_attrs.get("val_acc"), bool(t.user_attrs.get("feasible"))) for t in trials if t.user_attrs.get("final")]
    for feasible, style in ((True, dict(color="C2", label="feasible trials")), (False, dict(color="C1", marker="x", label="infeasible trials"))):
        xs = [p[0] for p in pts if p[2] is feasible]
        ys = [p[1] for p in pts if p[2] is feasible]
        if xs:
            ax.scatter(xs, ys, s=28, zorder=3, **style)
    feas = sorted((p[0], p[1]) for p in pts if p[2])
    if feas:
        ax.scatter([feas[0][0]], [feas[0][1]], s=160, facecolors="none", edgecolors="k", zorder=4, label=f"best: {feas[0][0]:.3f}×")
    _draw_frontier(ax, frontier, scale=M_ref)
    ax.axhline(target_acc, color="grey", ls="--", lw=0.8, label=f"target {target_acc:.4f}")
    ax.axvline(1.0, color="grey", ls=":", lw=0.8)
    log_x(ax)
    ax.set_xlabel("M / M_scratch(target): from-scratch cost at the target accuracy = 1")
    ax.set_ylabel("final validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")
    ax.set_title(f"{len(pts)} finished trials over the from-scratch frontier", fontsize=10)
    return _save(fig, path)


_LABELS = {"final": "cumulative, final net", "final_mi": "cumulative, mutual inference", "baseline": "from scratch (baseline)"}
_COLORS = {"final": "C0", "final_mi": "C2", "baseline": "C3"}


def _lines(ax, xs: list[float], section: dict, *, band: bool) -> None:
    for key in ("baseline", "final", "final_mi"):
        if key not in section:
            continue
        val = section[key]
        ys = val["mean"] if band else val
        ax.plot(xs, ys, marker=".", color=_COLORS[key], label=_LABELS[key])
        if band:
            lo = [m - s for m, s in zip(val["mean"], val["std"])]
            hi = [m + s for m, s in zip(val["mean"], val["std"])]
            ax.fill_between(xs, lo, hi, color=_COLORS[key], alpha=0.15, lw=0)


def plot_robustness(report: dict, out_dir: str | Path) -> list[Path]:
    """``noise.png``, ``ablation.png``, ``fgsm.png`` and ``tnr_fnr.png`` from a robustness report."""
    out = Path(out_dir)
    plt = _pyplot()
    paths = []
    for name, key, xlabel, title in (
        ("noise.png", "std", "Gaussian noise std (pixel units, images in [0, 1])", "input noise"),
        ("ablation.png", "fraction", "fraction of conv units zeroed", "unit ablation"),
    ):
        sec = report[name[:-4]]
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        _lines(ax, sec[key], sec, band=True)
        ax.set(xlabel=xlabel, ylabel="test accuracy", title=f"{title}: mean ± std over {sec['draws']} draws", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        paths.append(_save(fig, out / name))
    sec = report["fgsm"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _lines(ax, sec["eps"], sec, band=False)
    ax.set(xlabel="FGSM ε (pixel units)", ylabel="accuracy on adversarial inputs", title="FGSM (Foolbox); MI classifies the final net's adversarials", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(_save(fig, out / "fgsm.png"))
    det = report["detection"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for key in ("baseline", "final", "final_mi"):
        if key in det:
            pts = sorted(zip(det[key]["fnr"], det[key]["tnr"]))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", color=_COLORS[key], label=f"{_LABELS[key]} (TNR@10% {_fmt(det[key]['tnr_at_fnr_10'])})")
    for f in (0.05, 0.10):
        ax.axvline(f, color="grey", ls=":", lw=0.8)
    ax.set(xlabel="FNR: clean inputs abstained on", ylabel="TNR: FGSM inputs abstained on or correct", title=f"no-decision detection, FGSM ε = {det['eps']:g}", xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    paths.append(_save(fig, out / "tnr_fnr.png"))
    return paths


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"
