"""The from-scratch frontier: the denominator of every saving growsearch reports.

A saving is only as honest as what it is compared with. Following Kaddour et al. (*No Train
No Gain*, NeurIPS 2023), the reference is not one from-scratch run of arbitrary length but a
*frontier*: the reference network trained from scratch at several budgets (epochs), each with
its learning rate warmed up and decayed to zero at the end of *that* budget, selected and
read on the validation split. ``M_scratch(a)`` is the least M at which any reference reaches
validation accuracy ``a`` (linear interpolation in log M between the two budgets around
``a``), and a run's ``iso_M_ratio = M_run / M_scratch(val_acc_run)``.

Example:
    >>> from growsearch.frontier import Frontier, FrontierPoint, Reference
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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from growsearch.errors import GrowsearchError

if TYPE_CHECKING:
    from growsearch.data import Dataset
    from growsearch.schedule import TrainConfig

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
    "run_frontier",
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
    wall_s: float = 0.0
    seeds: list[int] = field(default_factory=lambda: [0])

    # --- the arithmetic ---------------------------------------------------------------------

    def m_scratch(self, acc: float) -> dict:
        """The least M at which any reference reaches validation accuracy ``acc``.

        Returns a dict: ``M``, ``reference`` (its name), ``beyond`` (no budget reaches ``acc``:
        ``M`` is then the most accurate budget's, a lower bound on the true M_scratch) and
        ``below`` (even the cheapest budget is above ``acc``: ``M`` is that budget's, an upper
        bound, since a shorter run might have reached ``acc`` too).
        """
        best: dict | None = None
        for ref in self.references:
            hit = _crossing([(p.M, p.val_acc) for p in ref.points], acc)
            if hit is not None and (best is None or hit[0] < best["M"]):
                best = {"M": hit[0], "reference": ref.name, "beyond": False, "below": hit[1]}
        if best is not None:
            return best
        top_ref, top = max(((r, p) for r in self.references for p in r.points), key=lambda rp: (rp[1].val_acc, -rp[1].M))
        return {"M": float(top.M), "reference": top_ref.name, "beyond": True, "below": False}

    def iso(self, M: float, acc: float) -> dict:
        """``iso_M_ratio = M / M_scratch(acc)`` with how to read it, and the frontier it used.

        ``bound`` says when the ratio is not exact: ``"upper"`` when the run is more accurate
        than every budget (the true ratio is at most this), ``"lower"`` when it is less
        accurate than the cheapest budget (the true ratio is at least this).
        """
        ms = self.m_scratch(acc)
        longest = self.longest
        return {
            "iso_M_ratio": M / ms["M"],
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
            raise FrontierError(f"the frontier was trained on {self.dataset!r}, this run on {ds.name!r}: compare runs on the same dataset")
        if ds.num_classes != self.num_classes:
            raise FrontierError(f"the frontier has {self.num_classes} classes, this run's data {ds.num_classes}: use a frontier of the same classes")
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
                lines.append(f"{r.name[:28]:<28} {p.epochs:>6} {p.lr:>7.3g} {p.M:>11.4g} {val:>14} {p.test_acc:>8.4f} {p.wall_s:>7.1f}")
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
    if not b or any(isinstance(e, bool) or not isinstance(e, int) or e <= 0 for e in b):
        raise FrontierError(f"{what} must be positive whole numbers of epochs, e.g. 2,4,8,16; got {b}")
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
            if (p / "result.json").is_file() else
            f"no {FRONTIER_FILE} in {p}: pass the --out of `growsearch baseline --budgets ...`"
        )
        raise FrontierError(hint)
    try:
        return Frontier.from_dict(json.loads(f.read_text()))
    except (ValueError, TypeError, KeyError) as e:
        raise FrontierError(f"{f} is not a growsearch frontier ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}): re-create it with growsearch baseline") from None


def budget_run_dir(frontier_dir: str | Path, epochs: int, lr: float, seed: int, *, reference: int = 0) -> Path:
    """Where :func:`run_frontier` keeps one budget's run (``result.json``, ``stage1.pt``):
    reference ``reference`` (0: the first arch), ``epochs``, peak ``lr``, ``seed``."""
    return Path(frontier_dir) / "runs" / f"ref{reference}-e{epochs}-lr{lr:g}-s{seed}"


def run_frontier(
    data: str,
    archs: Sequence[str] = (),
    budgets: Sequence[int] = (2, 4, 8, 16),
    *,
    specs_from: Sequence[str | Path] = (),
    seeds: Sequence[int] = (0,),
    lrs: Sequence[float] | None = None,
    train: "TrainConfig | None" = None,
    dataset: "Dataset | None" = None,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> Frontier:
    """Train each reference from scratch at every budget (each fully decayed), seeds and LRs.

    Args:
        data: dataset name.
        archs: reference architectures (e.g. the schedules' final one, ``"vgg19@0.25"``).
        budgets: epochs, strictly increasing; each run warms up and decays to zero at its end.
        specs_from: run folders whose exact final network (pruned widths and all) is trained
            from scratch as a further reference: the second reference a reviewer asks for.
        seeds: training seeds; a point's accuracies are their mean (the split stays the same).
        lrs: peak LRs to sweep; per budget the best by mean validation accuracy is kept
            (the schedules are tuned by a search, so the frontier is tuned too). Default: the recipe's.
        train: the recipe (default ``TrainConfig()``); its ``val_fraction``/``val_seed`` make the split.
        dataset: ``data`` already loaded.
        out_dir: writes ``frontier.json`` and ``frontier.png``, and each budget's run (its
            ``result.json`` and ``stage1.pt``) under ``runs/``; a single run (one reference,
            budget, seed and LR) goes in ``out_dir`` itself, as a plain baseline.
        overwrite: replace an existing frontier in ``out_dir``.
        resume: keep the runs already finished in ``out_dir`` with the same settings, train the rest.

    Raises:
        FrontierError: bad budgets, seeds, LRs or references (before any training).
        OutputExistsError: ``out_dir`` holds a frontier and neither ``overwrite`` nor ``resume``.
    """
    from growsearch.data import class_order, create_dataset, with_validation
    from growsearch.schedule import TrainConfig
    from growsearch.baseline import run_baseline
    from growsearch.results import OutputExistsError, RunResult

    budgets = check_budgets(budgets)
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise FrontierError(f"seeds must be distinct whole numbers ≥ 0, e.g. 0,1,2; got {seeds}")
    cfg = train or TrainConfig()
    sweep = [None] if not lrs else list(lrs)
    if lrs is not None and (not lrs or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 for v in lrs)):
        raise FrontierError(f"--lrs must be peak learning rates > 0, e.g. 0.02,0.05,0.1; got {list(lrs)}")
    if not archs and not specs_from:
        raise FrontierError("a frontier needs a reference: give --arch (and/or --spec-from RUN_DIR)")
    cfg.validate()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        from growsearch.results import check_out_dir

        check_out_dir(out, overwrite=True)  # a file, or a folder that cannot be written
    if out is not None and (out / FRONTIER_FILE).exists() and not (overwrite or resume):
        raise OutputExistsError(f"{out} already holds {FRONTIER_FILE}: pass --resume to extend it, --overwrite to replace it, or another --out")
    raw = dataset if dataset is not None else create_dataset(data)
    ds = with_validation(raw, cfg.val_fraction, cfg.val_seed)
    refs: list[tuple[str, str, dict | None]] = [(a, a, None) for a in archs]
    for run_dir in specs_from:
        r = RunResult.load(run_dir)
        if r.schedule.get("dataset") != data:
            raise FrontierError(f"--spec-from {run_dir} was trained on {r.schedule.get('dataset')!r}, not {data!r}: use a run on the same dataset")
        last = r.stages[-1]
        refs.append((f"{last.arch} as in {Path(run_dir).name} ({last.params} params)", last.arch, last.spec))
    from growsearch.backbones import ArchError, ArchSpec, spec_for

    for name, arch, spec in refs:
        try:
            spec_for(arch, ds.num_classes, ds.in_chans)
        except ArchError as e:
            raise FrontierError(f"reference {name}: {e}") from None

    single = len(refs) * len(budgets) * len(seeds) * len(sweep) == 1
    t0, spent = time.perf_counter(), 0
    references = []
    for ri, (name, arch, spec) in enumerate(refs):
        points = []
        for epochs in budgets:
            by_lr = []
            for lr in sweep:
                runs = []
                for seed in seeds:
                    run_out = None
                    if out is not None:
                        run_out = out if single else budget_run_dir(out, epochs, lr or cfg.lr, seed, reference=ri)
                    kw = dict(epochs=epochs, seed=seed, train=cfg, dataset=raw, lr=lr, spec=ArchSpec.from_dict(spec) if spec else None)
                    r = _reuse(run_out, data, arch, kw) if resume and run_out is not None else None
                    if r is None:
                        r = run_baseline(data, arch, **kw, out_dir=run_out, overwrite=True, device=device, progress=progress)
                    spent += r.M
                    runs.append(r)
                    print(
                        f"frontier: {name} {epochs} ep lr {lr or cfg.lr:g} seed {seed}: val {r.val_acc:.4f} "
                        f"test {r.test_acc:.4f} M {r.M:.3g} ({r.wall_s:.0f} s)", flush=True,
                    )
                by_lr.append((lr or cfg.lr, runs))
            # the LR whose seeds reach the best mean validation accuracy (first on ties)
            lr, runs = max(by_lr, key=lambda lr_runs: statistics.mean(r.val_acc for r in lr_runs[1]))
            points.append(FrontierPoint(
                epochs=epochs, M=runs[0].M, val_acc=statistics.mean(r.val_acc for r in runs),
                test_acc=statistics.mean(r.test_acc for r in runs), wall_s=statistics.mean(r.wall_s for r in runs), lr=lr,
                seeds=[{"seed": s, "val_acc": r.val_acc, "test_acc": r.test_acc, "wall_s": r.wall_s} for s, r in zip(seeds, runs)],
                lr_sweep=[{"lr": v, "val_acc": statistics.mean(r.val_acc for r in rs)} for v, rs in by_lr] if len(sweep) > 1 else [],
            ))
        references.append(Reference(name, arch, spec, points))
    front = Frontier(
        dataset=ds.name, num_classes=ds.num_classes, class_order=class_order(ds.num_classes, 0), val_fraction=float(ds.val_fraction),
        val_seed=int(ds.val_seed), val_id=ds.val_id, train=asdict(cfg), references=references, spent_M=spent,
        wall_s=time.perf_counter() - t0, seeds=seeds,
    )
    if out is not None:
        from growsearch.plots import plot_frontier

        front.save(out)
        plot_frontier(front, out / "frontier.png")
    return front


def _reuse(run_out: Path, data: str, arch: str, kw: dict):
    """A finished budget run in ``run_out`` trained with exactly these settings, else None."""
    from growsearch.baseline import baseline_schedule
    from growsearch.results import RunResult

    if not (run_out / "result.json").is_file():
        return None
    try:
        r = RunResult.load(run_out)
    except (ValueError, TypeError, KeyError):
        return None
    want = baseline_schedule(data, arch, r.stages[-1].classes, epochs=kw["epochs"], seed=kw["seed"], train=kw["train"], lr=kw["lr"])
    spec_ok = kw["spec"] is None or r.stages[0].spec.get("widths") == [list(b) for b in kw["spec"].widths]
    return r if r.schedule == want.to_dict() and spec_ok else None
