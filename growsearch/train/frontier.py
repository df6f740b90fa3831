"""The from-scratch frontier: the denominator of every saving growsearch reports.

A saving is only as honest as what it is compared with. Following Kaddour et al. (*No Train
No Gain*, NeurIPS 2023), the reference is not one from-scratch run of arbitrary length but a
*frontier*: the reference network trained from scratch at several budgets (epochs), each with
its learning rate warmed up and decayed to zero at the end of *that* budget, selected and
read on the validation split. ``M_scratch(a)`` is the least M at which any reference reaches
validation accuracy ``a`` (linear interpolation in log M between the two budgets around
``a``), and a run's ``iso_M_ratio = M_run / M_scratch(val_acc_run)``.

Example:
    >>> from growsearch.train.frontier import Frontier, FrontierPoint, Reference
    >>> pts = [FrontierPoint(epochs=e, M=m, val_acc=a, test_acc=a, wall_s=1.0, lr=0.05)
    ...        for e, m, a in ((2, 100, 0.80), (4, 200, 0.90), (8, 400, 0.95))]
    >>> f = Frontier("digits", 10, list(range(10)), 0.1, 0, "ab12", {}, [Reference("vgg19", "vgg19", None, pts)])
    >>> round(f.m_scratch(0.85)["M"], 3)  # halfway between 100 and 200 in log M
    141.421
    >>> f.iso(100, 0.90)["iso_M_ratio"]
    0.5
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from growsearch.errors import GrowsearchError

if TYPE_CHECKING:
    from growsearch.data.dataset import Dataset
    from growsearch.train.results import RunResult

__all__ = [
    "Frontier",
    "FrontierError",
    "FrontierPoint",
    "Reference",
    "bound_word",
    "budget_ladder",
    "budget_run_dir",
    "check_budgets",
    "load_frontier",
    "merge_frontiers",
]

FRONTIER_FILE = "frontier.json"


class FrontierError(GrowsearchError, ValueError):
    """A frontier that cannot be built, read, or compared with a run; the message names the fix."""


@dataclass
class FrontierPoint:
    """One budget of one reference, at the peak LR that validation preferred."""

    epochs: int  # the budget; the LR warms up and decays to zero at its end
    M: int  # training cost of one run at this budget (samples × MACs)
    val_acc: float  # mean over seeds: what M_scratch reads
    test_acc: float  # mean over seeds: reported only
    wall_s: float  # mean over seeds
    lr: float  # the peak LR chosen on validation (of lr_sweep; the recipe's when no sweep)
    seeds: list[dict] = field(default_factory=list)  # per seed: seed, val_acc, test_acc, wall_s
    lr_sweep: list[dict] = field(default_factory=list)  # per LR tried: lr, val_acc (mean over seeds)

    @classmethod
    def of_runs(
        cls, epochs: int, runs: Sequence["RunResult"], lr: float, lr_sweep: list[dict] | None = None
    ) -> "FrontierPoint":
        """A budget's point from its seeds' finished runs (``RunResult`` each, its seed in its
        schedule): the means a frontier reads, every seed kept. Seeds may be fewer than the
        frontier's others (a frontier assembled while its seeds still train); intervals then
        resample the seeds this point has."""
        return cls(
            epochs=epochs,
            M=runs[0].M,
            val_acc=statistics.mean(r.val_acc for r in runs),
            test_acc=statistics.mean(r.test_acc for r in runs),
            wall_s=statistics.mean(r.wall_s for r in runs),
            lr=lr,
            seeds=[
                {"seed": r.schedule["seed"], "val_acc": r.val_acc, "test_acc": r.test_acc, "wall_s": r.wall_s}
                for r in runs
            ],
            lr_sweep=lr_sweep or [],
        )

    @property
    def val_std(self) -> float:
        vals = [s["val_acc"] for s in self.seeds]
        return statistics.stdev(vals) if len(vals) > 1 else 0.0


@dataclass
class Reference:
    """A network trained from scratch at every budget: the final architecture, or a run's exact final network."""

    name: str  # label in tables and plots
    arch: str  # arch name (for an exact network, its family and nominal size)
    spec: dict | None  # the exact ArchSpec trained (``--spec-from``); None: ``arch``'s own widths
    points: list[FrontierPoint]
    # progressive resizing: each budget trains at resolutions[k] from switch_at[k-1] of its epochs
    # on (one LR schedule, optimizer state carried; growsearch.train.baseline.baseline_schedule)
    resolutions: list[int] | None = None
    switch_at: list[float] | None = None

    def at(self, M: float, field: str = "test_acc") -> float:
        """``field`` (``"test_acc"``, ``"val_acc"``, ``"wall_s"``) of this reference at cost ``M``:
        linear in log M between the two budgets around it, clamped to the cheapest and the
        dearest budget. What "iso-accuracy on test" compares a run's test accuracy with, at the
        run's M_scratch on the reference that set it.

        >>> pts = [FrontierPoint(epochs=e, M=m, val_acc=a, test_acc=a - 0.01, wall_s=e, lr=0.05)
        ...        for e, m, a in ((2, 100, 0.80), (4, 400, 0.90))]
        >>> round(Reference("vgg19", "vgg19", None, pts).at(200), 4)  # halfway in log M
        0.84
        >>> Reference("vgg19", "vgg19", None, pts).at(1000, "wall_s")  # beyond the dearest budget: its own
        4
        """
        pts = sorted((p.M, getattr(p, field)) for p in self.points)
        if M <= pts[0][0]:
            return pts[0][1]
        for (m0, v0), (m1, v1) in zip(pts, pts[1:]):
            if M <= m1:
                return v0 + (math.log(M) - math.log(m0)) / (math.log(m1) - math.log(m0)) * (v1 - v0)
        return pts[-1][1]


@dataclass
class Frontier:
    """From-scratch budgets of one or more references, on one dataset and validation split."""

    dataset: str  # dataset name the budgets trained on
    num_classes: int
    class_order: list[int]  # of seed 0 (a from-scratch run trains every class at once, so order does not matter)
    val_fraction: float
    val_seed: int
    val_id: str  # hash of the validation samples: a run must select on the same ones
    train: dict  # the recipe (TrainConfig) the budgets used
    references: list[Reference]
    spent_M: int = 0  # M of every run trained to build it: all budgets, seeds and swept LRs
    wall_s: float = 0.0  # Σ wall time of those runs (a resumed frontier keeps what its reused runs took)
    seeds: list[int] = field(default_factory=lambda: [0])
    threads: int | None = (
        None  # torch CPU threads every run trained with (None: torch's default); runs are bit-identical only at equal counts
    )

    # --- the arithmetic ---------------------------------------------------------------------

    def m_scratch(self, acc: float) -> dict:
        """The least M at which any reference reaches validation accuracy ``acc``.

        Returns a dict: ``M``, ``reference`` (its name), ``beyond`` (no budget reaches ``acc``:
        ``M`` is then the most accurate budget's, a lower bound on the true M_scratch) and
        ``below`` (even the cheapest budget is above ``acc``: ``M`` is that budget's, an upper
        bound, since a shorter run might have reached ``acc`` too).
        """
        return self.scratch(acc, "M")

    def scratch(self, acc: float, cost: str = "M") -> dict:
        """:meth:`m_scratch` for any cost a budget records (``"M"``, ``"wall_s"``): the least
        value of ``cost`` at which any reference reaches ``acc``, interpolated in log cost. The
        value is under ``cost``'s own key (``M``, ``wall_s``)."""
        best: dict | None = None
        for ref in self.references:
            hit = _crossing([(getattr(p, cost), p.val_acc) for p in ref.points], acc)
            if hit is not None and (best is None or hit[0] < best["value"]):
                best = {"value": hit[0], "reference": ref.name, "beyond": False, "below": hit[1]}
        if best is None:
            top_ref, top = max(
                ((r, p) for r in self.references for p in r.points), key=lambda rp: (rp[1].val_acc, -rp[1].M)
            )
            best = {"value": float(getattr(top, cost)), "reference": top_ref.name, "beyond": True, "below": False}
        return {cost: best.pop("value"), **best}

    def iso(
        self, M: float, acc: float, *, final_arch: str | None = None, runs: Sequence[tuple[float, float]] | None = None
    ) -> dict:
        """``iso_M_ratio = M / M_scratch(acc)`` with how to read it, and the frontier it used.

        ``bound`` says when the ratio is not exact: ``"upper"`` when the run is more accurate
        than every budget (the true ratio is at most this), ``"lower"`` when it is less
        accurate than the cheapest budget (the true ratio is at least this).

        Two yardsticks: ``iso_M_ratio`` against the whole family (the cheapest reference of any
        network), ``iso_M_ratio_same`` against ``final_arch``'s own references alone (None when
        the frontier trained none of them). ``iso_M_ratio_ci`` is the 95 % interval of
        ``iso_M_ratio`` over the frontier's seeds and the run's (``runs``: (M, val_acc) per seed
        of the run; see :meth:`ratio_interval`).
        """
        ms = self.m_scratch(acc)
        longest = self.longest
        same = self.only(final_arch) if final_arch is not None else None
        return {
            "iso_M_ratio": M / ms["M"],
            "iso_M_ratio_same": None if same is None else M / same.m_scratch(acc)["M"],
            "iso_M_ratio_ci": self.ratio_interval(runs or [(M, acc)]),
            "M_scratch": ms["M"],
            "val_acc": acc,
            "reference": ms["reference"],
            "beyond_frontier": ms["beyond"],
            "below_frontier": ms["below"],
            "bound": "upper" if ms["beyond"] else ("lower" if ms["below"] else None),
            "M_longest": longest.M,
            "M_ratio_longest": M / longest.M,  # the old single-baseline ratio, against the longest budget
            "frontier": self.to_dict(),
        }

    def only(self, arch: str) -> "Frontier | None":
        """This frontier with the references of ``arch`` alone (the final network's own
        yardstick: the paper's question, the same network for less), or None when it has none."""
        from dataclasses import replace

        refs = [r for r in self.references if r.arch == arch and r.spec is None]
        return replace(self, references=refs) if refs else None

    def ratio_interval(
        self,
        runs: Sequence[tuple[float, float]],
        *,
        acc: float | None = None,
        cost: str = "M",
        draws: int = 1000,
        seed: int = 0,
    ) -> list[float]:
        """The 95 % interval [low, high] of a ratio, by a bootstrap over the frontier's seeds and
        the run's together: each draw resamples every budget's seeds (the budget's accuracy is the
        mean of the draw) and the run's seeds ``runs`` ((M, val_acc) each), and takes mean M over
        M_scratch at the draw's mean accuracy, or at ``acc`` when given (a fixed target, as a
        search judges); ``cost`` is the budgets' cost it divides by (``"M"``, ``"wall_s"``). Where the run's seeds are the frontier's (as many, drawn with the same
        indices) the draws are paired. No spread in either (one seed each, or equal seeds)
        collapses the interval to the point. Hand-written: a paired bootstrap of a ratio through
        an interpolated envelope is not what ``scipy.stats.bootstrap`` resamples."""
        import numpy as np

        runs = [(float(m), float(a)) for m, a in runs]
        if not runs:
            raise FrontierError("a ratio's interval needs at least one run")
        rng = np.random.default_rng(seed)
        n_seeds = max((len(p.seeds) for r in self.references for p in r.points), default=0)
        paired = len(runs) == n_seeds
        ratios = []
        for _ in range(draws):
            f_idx = rng.integers(0, max(n_seeds, 1), n_seeds) if n_seeds else None
            r_idx = f_idx if paired else rng.integers(0, len(runs), len(runs))
            drawn = self._resampled(f_idx)
            ms = [runs[i][0] for i in r_idx]
            target = acc if acc is not None else float(np.mean([runs[i][1] for i in r_idx]))
            ratios.append(float(np.mean(ms)) / drawn.scratch(target, cost)[cost])
        lo, hi = np.percentile(ratios, [2.5, 97.5])
        point = (
            float(np.mean([m for m, _ in runs]))
            / self.scratch(acc if acc is not None else float(np.mean([a for _, a in runs])), cost)[cost]
        )
        return [min(float(lo), point), max(float(hi), point)]

    def _resampled(self, idx) -> "Frontier":
        """This frontier with each budget's accuracy the mean over its seeds at ``idx`` (a budget
        of fewer seeds wraps around; one recorded before seeds were kept stays as it is)."""
        from dataclasses import replace

        if idx is None:
            return self

        def point(p: FrontierPoint) -> FrontierPoint:
            if not p.seeds:
                return p
            return replace(p, val_acc=statistics.mean(p.seeds[i % len(p.seeds)]["val_acc"] for i in idx))

        return replace(self, references=[replace(r, points=[point(p) for p in r.points]) for r in self.references])

    @property
    def best_val_acc(self) -> float:
        return max(p.val_acc for r in self.references for p in r.points)

    @property
    def longest(self) -> FrontierPoint:
        """The longest budget of the first reference (the old single baseline's counterpart)."""
        return max(self.references[0].points, key=lambda p: p.M)

    def cheapest_reaching(self, acc: float) -> FrontierPoint | None:
        """The cheapest trained budget (any reference) whose validation accuracy is ≥ ``acc``."""
        pts = [p for r in self.references for p in r.points if p.val_acc >= acc]
        return min(pts, key=lambda p: p.M, default=None)

    # --- compatibility ----------------------------------------------------------------------

    def check_compatible(self, ds: "Dataset") -> None:
        """Raise ``FrontierError`` unless ``ds`` (split by ``with_validation``) is the data this frontier read."""
        if ds.name != self.dataset:
            raise FrontierError(
                f"the frontier was trained on {self.dataset!r}, this run on {ds.name!r}: compare runs on the same dataset"
            )
        if ds.num_classes != self.num_classes:
            raise FrontierError(
                f"the frontier has {self.num_classes} classes, this run's data {ds.num_classes}: use a frontier of the same classes"
            )
        if ds.val_id != self.val_id:
            raise FrontierError(
                f"the frontier selected on another validation split (val_fraction {self.val_fraction:g}, val_seed {self.val_seed}) "
                f"than this run (val_fraction {ds.val_fraction:g}, val_seed {ds.val_seed}): use the same train.val_fraction and "
                "val_seed, or re-train the frontier"
            )

    # --- files ------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Frontier":
        refs = [Reference(**{**r, "points": [FrontierPoint(**p) for p in r["points"]]}) for r in d["references"]]
        return cls(**{**d, "references": refs})

    def save(self, out_dir: str | Path) -> Path:
        from growsearch._io import atomic_path

        path = Path(out_dir) / FRONTIER_FILE
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def table(self) -> str:
        """A plain-text table of every point (what ``growsearch baseline`` prints)."""
        many = len(self.seeds) > 1
        lines = [f"{'reference':<28} {'epochs':>6} {'lr':>7} {'M':>11} {'val_acc':>14} {'test_acc':>8} {'wall_s':>7}"]
        for r in self.references:
            for p in sorted(r.points, key=lambda p: p.M):
                val = f"{p.val_acc:.4f}" + (f" ± {p.val_std:.4f}" if many else "")
                lines.append(
                    f"{r.name[:28]:<28} {p.epochs:>6} {p.lr:>7.3g} {p.M:>11.4g} {val:>14} {p.test_acc:>8.4f} {p.wall_s:>7.1f}"
                )
        return "\n".join(lines)


def _crossing(points: list[tuple[int, float]], acc: float) -> tuple[float, bool] | None:
    """(M, below) where the curve through ``points`` (M, accuracy) first reaches ``acc``.

    Linear in log M between the two budgets around ``acc``; ``below`` when the cheapest
    budget already exceeds it (then its M is returned); None when no budget reaches it.
    """
    pts = sorted(points)
    if acc < pts[0][1]:
        return float(pts[0][0]), True
    for (m0, a0), (m1, a1) in zip([pts[0]] + pts, pts):
        if a1 >= acc:
            if a1 == acc or a1 == a0 or m1 == m0:  # exactly on a budget: its own M, no rounding
                return float(m1), False
            t = (acc - a0) / (a1 - a0)
            return math.exp(math.log(m0) + t * (math.log(m1) - math.log(m0))), False
    return None


def bound_word(iso: dict) -> str:
    """The words before a ratio that is a bound ('at most ', 'at least '; see :meth:`Frontier.iso`), or nothing."""
    return {"upper": "at most ", "lower": "at least "}.get(iso["bound"], "")


def check_budgets(budgets: Sequence[int], what: str = "--budgets") -> list[int]:
    """Budgets must be positive integers, strictly increasing; raises ``FrontierError``."""
    b = list(budgets)
    if not b or any(isinstance(e, bool) or not isinstance(e, int) or not 0 < e <= 100_000 for e in b):
        raise FrontierError(f"{what} must be whole numbers of epochs from 1 to 100000, e.g. 2,4,8,16; got {b}")
    if any(y <= x for x, y in zip(b, b[1:])):
        raise FrontierError(f"{what} must be strictly increasing, e.g. 2,4,8,16; got {b}")
    return b


def budget_ladder(longest: int) -> list[int]:
    """A geometric ladder ending at ``longest``: longest/8, /4, /2, /1 (rounded, at least 1)."""
    return sorted({max(1, round(longest / 2**k)) for k in (3, 2, 1, 0)})


def load_frontier(path: str | Path) -> Frontier:
    """The frontier in a ``growsearch baseline`` folder (its ``frontier.json``), or that file itself."""
    p = Path(path)
    f = p / FRONTIER_FILE if p.is_dir() else p
    if not f.is_file():
        hint = (
            f"{p} holds a result.json but no {FRONTIER_FILE} (a baseline from growsearch < 0.2, made without a validation split): "
            "re-train it with growsearch baseline"
            if (p / "result.json").is_file()
            else f"no {FRONTIER_FILE} in {p}: pass the --out of `growsearch baseline --budgets ...`"
        )
        raise FrontierError(hint)
    try:
        return Frontier.from_dict(json.loads(f.read_text()))
    except (ValueError, TypeError, KeyError) as e:
        raise FrontierError(
            f"{f} is not a growsearch frontier ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}): re-create it with growsearch baseline"
        ) from None


def merge_frontiers(frontiers: Sequence[Frontier]) -> Frontier:
    """One family frontier from several (each ``growsearch baseline`` folder trains some
    architectures; together they are the family): every reference of each, in order, with what
    they cost summed. All must have read the same data, classes and validation split, with the
    same seeds (the interval pairs them), or ``FrontierError`` says which differs.

    Example:
        >>> a = Frontier("d", 10, list(range(10)), 0.1, 0, "x", {}, [Reference("vgg11", "vgg11", None, [])], spent_M=5)
        >>> b = Frontier("d", 10, list(range(10)), 0.1, 0, "x", {}, [Reference("vgg19", "vgg19", None, [])], spent_M=7)
        >>> m = merge_frontiers([a, b]); [r.name for r in m.references], m.spent_M
        (['vgg11', 'vgg19'], 12)
    """
    from dataclasses import replace

    if not frontiers:
        raise FrontierError("merge at least one frontier")
    first = frontiers[0]
    for f in frontiers[1:]:
        for key, what in (
            ("dataset", "dataset"),
            ("num_classes", "class count"),
            ("val_id", "validation split"),
            ("seeds", "seeds"),
        ):
            if getattr(f, key) != getattr(first, key):
                raise FrontierError(
                    f"frontiers to merge differ in {what} ({getattr(first, key)!r:.60} against {getattr(f, key)!r:.60}): "
                    "train every reference on the same data, split and seeds"
                )
    names = [r.name for f in frontiers for r in f.references]
    if len(set(names)) != len(names):
        raise FrontierError(
            f"frontiers to merge both hold a reference named {next(n for n in names if names.count(n) > 1)!r}: merge each once"
        )
    return replace(
        first,
        references=[r for f in frontiers for r in f.references],
        spent_M=sum(f.spent_M for f in frontiers),
        wall_s=sum(f.wall_s for f in frontiers),
    )


def budget_run_dir(frontier_dir: str | Path, epochs: int, lr: float, seed: int, *, reference: int = 0) -> Path:
    """Where :func:`run_frontier` keeps one budget's run (``result.json``, ``stage1.pt``):
    reference ``reference`` (0: the first arch), ``epochs``, peak ``lr``, ``seed``."""
    return Path(frontier_dir) / "runs" / f"ref{reference}-e{epochs}-lr{lr:g}-s{seed}"
