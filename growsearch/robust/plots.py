"""A robustness report's figures: ``noise.png``, ``ablation.png``, ``fgsm.png``, ``tnr_fnr.png``."""

from __future__ import annotations

from pathlib import Path

from growsearch._plot import pyplot, save

__all__ = ["plot_robustness"]


_LABELS = {
    "final": "cumulative, final net",
    "final_mi": "cumulative, mutual inference",
    "baseline": "from scratch (baseline)",
}
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
    plt = pyplot()
    paths = []
    for name, key, xlabel, title in (
        ("noise.png", "std", "Gaussian noise std (pixel units, images in [0, 1])", "input noise"),
        ("ablation.png", "fraction", "fraction of conv units zeroed", "unit ablation"),
    ):
        sec = report[name[:-4]]
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        _lines(ax, sec[key], sec, band=True)
        ax.set(
            xlabel=xlabel,
            ylabel="test accuracy",
            title=f"{title}: mean ± std over {sec['draws']} draws",
            ylim=(0, 1.02),
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        paths.append(save(fig, out / name))
    sec = report["fgsm"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _lines(ax, sec["eps"], sec, band=False)
    ax.set(
        xlabel="FGSM ε (pixel units)",
        ylabel="accuracy on adversarial inputs",
        title="FGSM (Foolbox); MI classifies the final net's adversarials",
        ylim=(0, 1.02),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    paths.append(save(fig, out / "fgsm.png"))
    det = report["detection"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for key in ("baseline", "final", "final_mi"):
        if key in det:
            pts = sorted(zip(det[key]["fnr"], det[key]["tnr"]))
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                marker=".",
                color=_COLORS[key],
                label=f"{_LABELS[key]} (TNR@10% {_fmt(det[key]['tnr_at_fnr_10'])})",
            )
    for f in (0.05, 0.10):
        ax.axvline(f, color="grey", ls=":", lw=0.8)
    ax.set(
        xlabel="FNR: clean inputs abstained on",
        ylabel="TNR: FGSM inputs abstained on or correct",
        title=f"no-decision detection, FGSM ε = {det['eps']:g}",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    paths.append(save(fig, out / "tnr_fnr.png"))
    return paths


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"
