"""Figures. matplotlib is imported lazily (Agg backend) so ``import growsearch`` stays light."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from growsearch.train import RunResult

__all__ = ["plot_curve", "plot_pareto", "plot_robustness"]


def _curve_points(result: "RunResult") -> tuple[list[float], list[float], list[float]]:
    """(cumulative M, test accuracy) after every epoch, and cumulative M at each stage end."""
    xs, ys, bounds, base = [], [], [], 0
    for st in result.stages:
        for row in st.history:
            xs.append(base + row["samples"] * st.macs_per_sample)
            ys.append(row["test_acc"])
        base += st.M
        bounds.append(base)
    return xs, ys, bounds


def plot_curve(result: "RunResult", path: str | Path, *, baseline: "RunResult | None" = None) -> Path:
    """Test accuracy against cumulative training cost M, stage boundaries marked.

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
    if baseline is not None:
        bx, by, _ = _curve_points(baseline)
        ax.plot(bx, by, marker=".", color="C3", label=f"from scratch ({baseline.stages[-1].arch})")
        ax.axhline(baseline.test_acc, color="C3", lw=0.8, ls="--")
        ax.set_title(f"M ratio {result.M / baseline.M:.2f}×, accuracy {result.test_acc:.3f} vs {baseline.test_acc:.3f}")
    ax.set_xlabel("cumulative training cost M (forward MACs)")
    ax.set_ylabel("test accuracy (stage's classes)")
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
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


def plot_pareto(trials: list, target_acc: float, baseline: dict, path: str | Path) -> Path:
    """M ratio against final accuracy for every finished trial; feasible ones marked, target line drawn."""
    fig, ax = _pyplot().subplots(figsize=(6.5, 4.2))
    pts = [(t.user_attrs.get("M_ratio"), t.user_attrs.get("test_acc"), bool(t.user_attrs.get("feasible"))) for t in trials if t.user_attrs.get("final")]
    for feasible, style in ((True, dict(color="C2", label="feasible")), (False, dict(color="C3", marker="x", label="infeasible"))):
        xs = [p[0] for p in pts if p[2] is feasible]
        ys = [p[1] for p in pts if p[2] is feasible]
        if xs:
            ax.scatter(xs, ys, s=28, **style)
    feas = sorted((p[0], p[1]) for p in pts if p[2])
    if feas:
        ax.scatter([feas[0][0]], [feas[0][1]], s=160, facecolors="none", edgecolors="k", label=f"best: {feas[0][0]:.3f}× M")
    ax.axhline(target_acc, color="grey", ls="--", lw=0.8, label=f"target {target_acc:.4f}")
    ax.scatter([1.0], [baseline["test_acc"]], marker="*", s=120, color="k", label="baseline (from scratch)")
    ax.set_xlabel("M / M(baseline)")
    ax.set_ylabel("final test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{len(pts)} finished trials")
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
