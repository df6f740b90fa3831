"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import statistics as stats
from pathlib import Path

from growsearch.plan.schedule import Schedule, Stage, TrainConfig
from growsearch.train.baseline import run_frontier
from growsearch.train.frontier import Frontier

RESULTS = Path(__file__).parent / "results"
# The shared from-scratch frontier of the digits benchmarks: VGG19@0.25 at five budgets, each
# decayed to zero, peak LR swept over the two LRs the schedules use, three seeds.
BUDGETS = [2, 4, 8, 16, 32]
LRS = [0.02, 0.05]
SEEDS = 3


# the shared CIFAR-10 archive, relative to the repository root where every benchmark runs
# (python -m benchmarks.X, python benchmarks/X.py): the dataset name committed results record is then a clone's own,
# so it re-judges and resumes them by name (an absolute path named one machine's folders)
CIFAR_ARCHIVE = "../shared/data/cifar10-jpeg.tar.gz"


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


def frontier_table(front: Frontier) -> list[str]:
    """Markdown rows of every frontier point: epochs, LR chosen on validation, M, val and test accuracy."""
    lines = [
        "| reference | epochs | LR (chosen on val) | M | val acc % (mean ± std) | test acc % (mean ± std) | wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for ref in front.references:
        for p in sorted(ref.points, key=lambda p: p.M):
            lines.append(
                f"| {ref.name} | {p.epochs} | {p.lr:g} | {p.M:.3e} | {mean_std([100 * s['val_acc'] for s in p.seeds])} "
                f"| {mean_std([100 * s['test_acc'] for s in p.seeds])} | {p.wall_s:.0f} |"
            )
    return lines


def frontier(
    name: str,
    archs: list[str],
    *,
    specs_from: list[Path] = (),
    budgets: list[int] = BUDGETS,
    lrs: list[float] = LRS,
    seeds: int = SEEDS,
) -> Frontier:
    """A digits frontier kept under ``results/frontiers/NAME``: every budget run's result.json
    stays there, so a later session extends it (new budgets, seeds, LRs) instead of redoing it."""
    return run_frontier(
        "digits",
        archs,
        budgets,
        specs_from=specs_from,
        seeds=list(range(seeds)),
        lrs=lrs,
        train=TrainConfig(),
        out_dir=RESULTS / "frontiers" / name,
        resume=True,
        progress=False,
    )


def iso_cells(runs: list, front: Frontier) -> tuple[str, str]:
    """(iso-accuracy M ratio mean ± std over runs, how many runs are bounds rather than exact)."""
    isos = [front.iso(r.M, r.val_acc) for r in runs]
    flags = [i["bound"] for i in isos if i["bound"]]
    note = (
        ", ".join(f"{flags.count(b)}× {'≤' if b == 'upper' else '≥'}" for b in ("upper", "lower") if b in flags)
        or "exact"
    )
    return mean_std([i["iso_M_ratio"] for i in isos], digits=3), note


def scratch_test_acc(front: Frontier, M: float, reference: str) -> float:
    """The from-scratch test accuracy at cost ``M`` on ``reference``'s curve (the product's
    :meth:`growsearch.train.frontier.Reference.at`)."""
    return next(r for r in front.references if r.name == reference).at(M)


def iso_test_delta(runs: list, front: Frontier) -> str:
    """Run test accuracy − from-scratch test accuracy at M_scratch (pt), mean ± std over runs."""
    out = []
    for r in runs:
        ms = front.m_scratch(r.val_acc)  # M_scratch and its reference only: iso() would also bootstrap an interval
        out.append(100 * (r.test_acc - scratch_test_acc(front, ms["M"], ms["reference"])))
    return mean_std(out)


def mean_std(values: list[float], digits: int = 2) -> str:
    """ "mean ± sample SD"; one value alone (its table or text says how many), since "± 0" would
    claim a spread was measured."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{stats.mean(values):.{digits}f} ± {stats.stdev(values):.{digits}f}"


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


def save_frontier_axes(fig, ax, title: str, path: str | Path) -> None:
    """Finish a runs-over-the-frontier plot (log M against validation accuracy) and write it."""
    ax.set_xscale("log")
    ax.set_xlabel("training cost M (forward MACs, log scale)")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.legend(fontsize=6, loc="lower right")
    ax.grid(alpha=0.3)
    save_fig(fig, path, dpi=120)


def ratio_cell(d: dict | None) -> str:
    """A judged ratio as a table cell, ``1.45× [1.37, 2.26]`` with its bound's words; — when absent."""
    if d is None:
        return "—"
    from growsearch.train.frontier import bound_word

    lo, hi = d["iso_M_ratio_ci"]
    return f"{bound_word(d)}{d['iso_M_ratio']:.2f}× [{lo:.2f}, {hi:.2f}]"


def ratio_plot(rows: list[tuple[str, dict, dict | None]], path: str | Path, *, fontsize: int, xlabel: str) -> None:
    """Each (label, ratio against the family, ratio against the final network) as two points with
    their 95 % intervals on a log axis, 1 marked: what the family pages and the README plot."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(rows) + 1.4))
    for i, (_, family, same) in enumerate(rows):
        for d, color, dy, name in (
            (family, "tab:red", 0.15, "vs the family"),
            (same, "tab:blue", -0.15, "vs the final net alone"),
        ):
            if d is not None:
                lo, hi = d["iso_M_ratio_ci"]
                x = d["iso_M_ratio"]
                ax.errorbar(
                    x, i + dy, xerr=[[x - lo], [hi - x]], fmt="o", ms=3, color=color, label=name if i == 0 else None
                )
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks(range(len(rows)), [label for label, _, _ in rows], fontsize=fontsize)
    ax.set_xscale("log")
    ticks = [0.5, 1, 2, 4, 8]
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    save_fig(fig, path, dpi=120)


def with_reading(lines: list[str], out: Path) -> str:
    """A generated page's lines, then its hand-written Reading (``OUT_reading.md``) when there is one."""
    reading = RESULTS / f"{out.name}_reading.md"
    if reading.is_file():
        lines = [*lines, reading.read_text().rstrip()]
    return "\n".join(lines) + "\n"


def page_main(ap, out: Path, measure, report, plot) -> None:
    """The shared command line of a benchmark whose page is generated from its JSON: measure
    (``measure(args)`` returns the raw data, written to ``OUT.json``), or ``--report-only`` read
    the committed JSON, then draw ``OUT.png`` and write ``OUT.md``; ``--check`` exits 1 when the
    committed page differs from what its JSON gives, writing nothing."""
    import json

    ap.add_argument("--report-only", action="store_true", help="read the committed JSON, train nothing")
    ap.add_argument("--check", action="store_true", help="exit 1 when the committed page differs from its JSON")
    args = ap.parse_args()
    raw = out.with_suffix(".json")
    if args.check:
        raise SystemExit(0 if report(json.loads(raw.read_text())) == out.with_suffix(".md").read_text() else 1)
    if args.report_only:
        data = json.loads(raw.read_text())
    else:
        data = measure(args)
        raw.write_text(json.dumps(data, indent=1) + "\n")
    plot(data, out.with_suffix(".png"))
    save_report(report(data), out.with_suffix(".md"))
