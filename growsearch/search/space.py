"""Search spaces: what Optuna may choose for a cumulative schedule, from a YAML file.

A space names the dataset, the family and final architecture, and ranges for everything a
schedule leaves open. Shipped spaces live in the repository's top-level ``search_spaces/``
(installed as ``growsearch/search_spaces/``) and are found by name (``digits_vgg``) as well as
by path.

Example:
    >>> from growsearch.search.space import load_space
    >>> space = load_space("digits_vgg")
    >>> space.dataset, space.final_arch
    ('digits', 'vgg19@0.25')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from growsearch.errors import GrowsearchError
from growsearch.plan.schedule import Schedule, Stage, TrainConfig

__all__ = ["SearchSpace", "SpaceError", "load_space", "list_spaces", "schedule_params", "suggest_schedule"]


class SpaceError(GrowsearchError, ValueError):
    """A search space file that cannot be searched; the message names the key and the fix."""


@dataclass
class SearchSpace:
    """Ranges Optuna searches over; every default has a comment saying where it comes from."""

    dataset: str  # dataset name, as in a schedule
    final_arch: str  # the last stage's architecture (and the baseline's), e.g. "vgg19@0.25"
    archs: list[str]  # candidate architectures of the earlier stages (same family; never shrinking along a schedule)
    stages: tuple[int, int] = (2, 3)  # min and max stage count
    split: tuple[float, float] = (0.2, 0.8)  # range of each intermediate stage's class fraction
    epochs: tuple[int, int] = (2, 20)  # per-stage epoch range (log-uniform integers)
    grown_lr: tuple[float, float] | None = None  # log-uniform range of grown stages' peak LR; None: the recipe's lr
    prune_ratio: tuple[float, float] = (0.0, 0.0)  # range of R before each growth; (0, 0) disables pruning
    zero_mask: bool = False  # whether the search may turn on the zero mask in stages that deepen
    resolutions: list[int] = field(
        default_factory=list
    )  # input sides (px) the stages before the last may train at; [] keeps native
    tolerance: float = 0.005  # feasible if validation accuracy ≥ the frontier's best − tolerance (0.5 pt: the paper's iso-accuracy band)
    trials: int = 24  # trial budget when --trials is not given
    baseline_epochs: int = 30  # the frontier's longest budget when ``budgets`` is not given
    baseline_patience: int | None = None  # no longer used: a plateau run is no budget; must stay unset
    budgets: list[int] | None = None  # the frontier's budgets (epochs); default: baseline_epochs/8, /4, /2, /1
    # peak LRs the frontier sweeps per (arch, budget), the best on validation kept; default: half, once and twice train.lr
    # (the from-scratch arm gets its LR tuned too: equal effort); one value trains that LR alone
    baseline_lrs: list[float] | None = None
    # the networks trained from scratch for the frontier (a smaller one is a legitimate answer); default: the final
    # architecture and every arch the earlier stages may use (the family), the final first
    frontier_archs: list[str] | None = None
    # the architectures the last stage may end in (a one-stage schedule of a small one: "train a smaller network");
    # default: final_arch alone. final_arch stays the largest, the one every other arch grows towards
    final_archs: list[str] | None = None
    baseline_seeds: list[int] | None = (
        None  # seeds the frontier averages (the target is its best mean, less biased than one seed's best); default: [seed]
    )
    seed: int = 0  # seeds every trial's schedule and the sampler
    # a floor on the last stage's share of a grown schedule's epochs (0: none): a schedule whose final
    # network trains for a sliver of its budget rarely reaches the target, so the search need not try it
    last_share: float = 0.0
    # The levers of growth inside one run (each a list of the choices the search may make, or a
    # [min, max] range; one choice fixes it; the defaults are the paper's protocol):
    data_growth: list[str] = field(
        default_factory=lambda: ["classes"]
    )  # classes | samples (nested shares of every class, in the split range) | none
    lr_schedule: list[str] = field(
        default_factory=lambda: ["per_stage"]
    )  # per_stage | global (one LR schedule over the run)
    rewarm_epochs: tuple[float, float] | None = (
        None  # global: range of the re-warm-up after each growth (epochs); None: no re-warm
    )
    rewarm_peak: tuple[float, float] | None = (
        None  # global, with rewarm_epochs: range of the re-warm-up's peak (× the global LR); None: 1
    )
    carry_optimizer: list[bool] = field(
        default_factory=lambda: [False]
    )  # whether SGD momentum is carried across growth
    new_param_lr: tuple[float, float] | None = (
        None  # log-uniform range of the LR multiplier of what growth created; None: 1
    )
    deepen_init: list[str] = field(
        default_factory=lambda: ["identity"]
    )  # identity | copy (proposed only where a schedule can copy)
    optimizer: list[str] | None = (
        None  # sgd | ssgd, chosen per stage (ssgd: sparsity-promoting SGD, for the pruning that follows); None: train.optimizer
    )
    ssgd_strength: tuple[float, float] | None = (
        None  # range of a stage's SSGD strength in (0, 1]; None: train.ssgd_strength
    )
    shrink: dict | None = (
        None  # a shrink block for every trial's last stage: depths and widths fixed (the family), start, ramp_epochs, subnets_per_step, temperature each a [min, max] range or one value; recal_images one value
    )
    baseline_resolutions: list[int] = field(
        default_factory=list
    )  # the frontier also trains each budget with progressive resizing at these sides
    baseline_switch_at: list[float] = field(default_factory=list)  # ... switching at these fractions of each budget
    train: TrainConfig = field(default_factory=TrainConfig)  # the recipe shared by trials and the baseline
    name: str = ""  # the space's name (file stem)

    def validate(self) -> None:
        """Raise ``SpaceError`` naming the key when a field has the wrong type or range, or when
        the space could propose a schedule that cannot be trained."""
        from growsearch.model.arch import ArchError, parse_arch
        from growsearch.plan.schedule import MAX_EPOCHS, MAX_RESOLUTION, MAX_SEED

        for key, kind, what in (
            ("dataset", str, "a dataset name such as digits"),
            ("final_arch", str, "an arch name such as vgg19@0.25"),
            ("zero_mask", bool, "true or false"),
            ("archs", list, "a list of arch names"),
            ("resolutions", list, "a list of input sides in pixels"),
        ):
            v = getattr(self, key)
            if not isinstance(v, kind) or (
                kind is list
                and not all(isinstance(x, int if key == "resolutions" else str) and not isinstance(x, bool) for x in v)
            ):
                raise SpaceError(f"{key}: expected {what}, got {v!r}")
        for key, hi in (("trials", 100_000), ("baseline_epochs", MAX_EPOCHS), ("seed", MAX_SEED)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or not (0 if key == "seed" else 1) <= v <= hi:
                raise SpaceError(f"{key}: a whole number from {0 if key == 'seed' else 1} to {hi}, got {v!r}")
        if any(r > MAX_RESOLUTION for r in self.resolutions):
            raise SpaceError(f"resolutions: at most {MAX_RESOLUTION} px, got {max(self.resolutions)}")
        try:
            fam, _, _ = parse_arch(self.final_arch)
            for a in self.archs:
                if parse_arch(a)[0] is not fam:
                    raise SpaceError(
                        f"archs: {a!r} is not a {fam.name} like final_arch {self.final_arch!r}: one family per space"
                    )
        except ArchError as e:
            raise SpaceError(f"{self.name or 'space'}: {e}") from None
        if not self.archs:
            raise SpaceError("archs: list at least one architecture for the stages before the last")
        rungs = sorted((_depth_rank(a), parse_arch(a)[2], a) for a in self.archs)
        for (_, w0, a0), (_, w1, a1) in zip(rungs, rungs[1:]):
            if w1 < w0:
                raise SpaceError(
                    f"archs: {a1!r} is deeper but narrower than {a0!r}: a schedule grows along the archs, so keep widths non-decreasing with depth"
                )
        fd, fw = _depth_rank(self.final_arch), parse_arch(self.final_arch)[2]
        beyond = [a for d, w, a in rungs if d > fd or w > fw]
        if beyond:
            raise SpaceError(
                f"archs: {beyond[0]!r} is deeper or wider than final_arch {self.final_arch!r}, and a schedule never shrinks into "
                "its last stage: drop it, or raise final_arch"
            )
        _range(self.stages, "stages", int, lo=1, hi=100)
        _range(self.split, "split", float, lo=0.0, hi=1.0)
        if not (0 < self.split[0] and self.split[1] < 1):
            raise SpaceError(f"split: class fractions must lie strictly between 0 and 1, got {list(self.split)}")
        _range(self.epochs, "epochs", int, lo=1, hi=MAX_EPOCHS)
        if self.grown_lr is not None:
            _range(self.grown_lr, "grown_lr", float, lo=0.0, hi=100.0)
            if self.grown_lr[0] <= 0:
                raise SpaceError("grown_lr: learning rates must be > 0")
        _range(self.prune_ratio, "prune_ratio", float, lo=0.0, hi=0.99)
        if not isinstance(self.resolutions, list) or any(
            not isinstance(r, int) or isinstance(r, bool) for r in self.resolutions
        ):
            raise SpaceError(
                f"resolutions: a list of input sides in pixels, e.g. [16, 24, 32], got {self.resolutions!r}"
            )
        too_small = [r for r in self.resolutions if r < fam.min_input]
        if too_small:
            raise SpaceError(f"resolutions: {fam.name} needs inputs of at least {fam.min_input} px, got {too_small}")
        if (
            isinstance(self.tolerance, bool)
            or not isinstance(self.tolerance, (int, float))
            or not 0 <= self.tolerance < 1
        ):
            raise SpaceError(f"tolerance: a fraction of accuracy in [0, 1), got {self.tolerance!r} (0.005 = 0.5 pt)")
        if not isinstance(self.trials, int) or self.trials < 1:
            raise SpaceError(f"trials: a positive integer, got {self.trials!r}")
        if (
            isinstance(self.last_share, bool)
            or not isinstance(self.last_share, (int, float))
            or not 0 <= self.last_share < 1
        ):
            raise SpaceError(
                f"last_share: the least share of a grown schedule's epochs its last stage trains, in [0, 1), got {self.last_share!r} (e.g. 0.3)"
            )
        if not isinstance(self.baseline_epochs, int) or self.baseline_epochs < 1:
            raise SpaceError(f"baseline_epochs: a positive integer, got {self.baseline_epochs!r}")
        if self.baseline_patience is not None:
            raise SpaceError(
                "baseline_patience: the from-scratch reference is now a frontier of fixed budgets, each decayed to zero: "
                "delete baseline_patience and list budgets (e.g. budgets: [4, 8, 15, 30])"
            )
        from growsearch.train.frontier import FrontierError, check_budgets

        try:
            if self.budgets is not None:
                check_budgets(self.budgets, "budgets")
        except FrontierError as e:
            raise SpaceError(str(e)) from None
        if self.baseline_lrs is not None and (
            not isinstance(self.baseline_lrs, list)
            or not self.baseline_lrs
            or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 100 for v in self.baseline_lrs
            )
        ):
            raise SpaceError(
                f"baseline_lrs: a list of peak learning rates > 0, e.g. [0.02, 0.05], got {self.baseline_lrs!r}"
            )
        if self.final_archs is not None:
            if (
                not isinstance(self.final_archs, list)
                or not self.final_archs
                or not all(isinstance(a, str) for a in self.final_archs)
            ):
                raise SpaceError(
                    f"final_archs: a list of arch names such as [vgg11@0.25, vgg19@0.25], got {self.final_archs!r:.80}"
                )
            for a in self.final_archs:
                try:
                    fam_a, _, w = parse_arch(a)
                except ArchError as e:
                    raise SpaceError(f"final_archs: {e}") from None
                if fam_a is not parse_arch(self.final_arch)[0] or _depth_rank(a) > fd or w > fw:
                    raise SpaceError(
                        f"final_archs: {a!r} must be a {parse_arch(self.final_arch)[0].name} no deeper or wider than final_arch {self.final_arch!r}"
                    )
        if self.final_archs and self.shrink is not None and self.final_choices() != [self.final_arch]:
            raise SpaceError(
                "final_archs: a shrink block cuts its family from final_arch alone: drop final_archs or the shrink block"
            )
        if self.frontier_archs is not None:
            from growsearch._io import printable

            if (
                not isinstance(self.frontier_archs, list)
                or not self.frontier_archs
                or not all(isinstance(a, str) for a in self.frontier_archs)
            ):
                raise SpaceError(
                    f"frontier_archs: a list of arch names such as [vgg11@0.25, vgg19@0.25], got {printable(self.frontier_archs)[:80]}"
                )
            fam = parse_arch(self.final_arch)[0].name
            for a in self.frontier_archs:
                try:
                    other = parse_arch(a)[0].name
                except ArchError as e:
                    raise SpaceError(f"frontier_archs: {e}") from None
                if other != fam:
                    raise SpaceError(
                        f"frontier_archs: {a!r} is not a {fam} like final_arch {self.final_arch!r}: a frontier compares one family on one input size"
                    )
        seeds = self.baseline_seeds
        if seeds is not None and (
            not isinstance(seeds, list)
            or not seeds
            or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_SEED for v in seeds)
            or len(set(seeds)) != len(seeds)
        ):
            raise SpaceError(f"baseline_seeds: distinct whole numbers ≥ 0, e.g. [0, 1, 2], got {seeds!r}")
        from growsearch.plan.schedule import ScheduleError

        try:
            self.train.validate()
        except ScheduleError as e:
            raise SpaceError(str(e)) from None
        self._check_levers()
        self._check_shrink()
        self._check_extremes()

    def _check_shrink(self) -> None:
        """The shrink block: its keys, every range, and whether the final network can shrink so."""
        if self.shrink is None:
            return
        from growsearch.model.arch import ArchError, spec_for
        from growsearch.model.elastic import check_elastic
        from growsearch.plan.schedule import ScheduleError, Shrink

        if not isinstance(self.shrink, dict):
            raise SpaceError(
                f"shrink: a mapping of depths, widths, start, ramp_epochs, subnets_per_step, temperature, recal_images, got {self.shrink!r}"
            )
        allowed = [f.name for f in fields(Shrink)]
        unknown = sorted(set(self.shrink) - set(allowed))
        if unknown:
            raise SpaceError(f"shrink: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(allowed)}")
        for key in SHRINK_RANGES:
            v = self.shrink.get(key)
            if isinstance(v, list):
                _range(v, f"shrink.{key}", int if key == "subnets_per_step" else float)
        try:
            for end in (0, 1):  # the lowest and the highest value of every range
                Shrink(**self.shrink_at(end)).validate()
            check_elastic(spec_for(self.final_arch, 10), self.shrink.get("depths", []), self.shrink.get("widths", []))
        except (ScheduleError, ArchError) as e:
            raise SpaceError(f"shrink: {e}".replace("shrink: shrink.", "shrink.")) from None

    def shrink_at(self, end: int) -> dict:
        """The shrink block with every range at its low (``end`` 0) or high (1) end."""
        return {
            k: (v[end] if k in SHRINK_RANGES and isinstance(v, list) else v) for k, v in (self.shrink or {}).items()
        }

    def _check_levers(self) -> None:
        from growsearch.plan.schedule import DATA_GROWTH, DEEPEN_INIT, LR_SCHEDULES, OPTIMIZERS

        for key, allowed in (
            ("data_growth", DATA_GROWTH),
            ("lr_schedule", LR_SCHEDULES),
            ("deepen_init", DEEPEN_INIT),
            ("carry_optimizer", (False, True)),
            ("optimizer", OPTIMIZERS),
        ):
            v = getattr(self, key)
            if key == "optimizer" and v is None:
                continue
            if (
                not isinstance(v, list)
                or not v
                or len(set(v)) != len(v)
                or any(type(x) is not type(allowed[0]) or x not in allowed for x in v)
            ):
                shown = ", ".join(str(a).lower() if isinstance(a, bool) else a for a in allowed)
                raise SpaceError(f"{key}: a list of distinct choices from {shown} (one fixes it), got {v!r}")
        for key in ("rewarm_epochs", "rewarm_peak", "new_param_lr"):
            v = getattr(self, key)
            if v is not None:
                _range(v, key, float, lo=0.0, hi=100.0)
                if key != "rewarm_epochs" and v[0] <= 0:
                    raise SpaceError(f"{key}: multipliers must be > 0, got {list(v)}")
        if (self.rewarm_epochs is not None or self.rewarm_peak is not None) and "global" not in self.lr_schedule:
            raise SpaceError(
                "rewarm_epochs/rewarm_peak re-warm the one LR schedule of lr_schedule global: add global to lr_schedule or drop them"
            )
        if self.rewarm_peak is not None and self.rewarm_epochs is None:
            raise SpaceError("rewarm_peak: the re-warm-up's peak needs a re-warm-up: add rewarm_epochs (e.g. [0, 2])")
        if self.grown_lr is not None and self.lr_schedule == ["global"]:
            raise SpaceError(
                "grown_lr: a stage LR restarts the schedule, and lr_schedule global has one: drop grown_lr or add per_stage to lr_schedule"
            )
        if self.ssgd_strength is not None:
            _range(self.ssgd_strength, "ssgd_strength", float, lo=0.0, hi=1.0)
            if self.ssgd_strength[0] <= 0:
                raise SpaceError(f"ssgd_strength: strengths must be in (0, 1], got {list(self.ssgd_strength)}")
            if "ssgd" not in self.optimizers():
                raise SpaceError(
                    "ssgd_strength: a range of SSGD's strength needs ssgd among the optimizers: add it (optimizer: [sgd, ssgd]) or drop ssgd_strength"
                )
        if self.zero_mask and self.deepen_init == ["copy"]:
            raise SpaceError(
                "zero_mask keeps the zeros of identity layers, and deepen_init [copy] inserts none: add identity to deepen_init or drop zero_mask"
            )
        from growsearch.plan.schedule import TRAIN_LEVERS

        moved = [k for k, default in TRAIN_LEVERS.items() if getattr(self.train, k) != default]
        if moved:
            raise SpaceError(
                f"train: {', '.join(moved)} is a lever the search chooses: set it as a top-level space key (e.g. lr_schedule: [global]), not in train"
            )
        from growsearch.train.baseline import check_resizing
        from growsearch.train.frontier import FrontierError

        for key in ("baseline_resolutions", "baseline_switch_at"):
            v = getattr(self, key)
            if not isinstance(v, list) or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v):
                raise SpaceError(f"{key}: a list of numbers, got {v!r}")
        try:
            check_resizing(
                self.baseline_resolutions, self.baseline_switch_at, max(self.baseline_resolutions, default=8)
            )
        except FrontierError as e:
            raise SpaceError(
                str(e).replace("--resolutions", "baseline_resolutions").replace("--switch-at", "baseline_switch_at")
            ) from None

    def _check_extremes(self) -> None:
        """Plan the most extreme schedules the space can propose, one choice at a time, so a
        space that could propose an invalid schedule is refused when it is loaded, naming the
        key, not inside every trial (a ResNet space with ``zero_mask: true``, say). Data-free:
        class counts are nominal, and resolutions are checked against the data by the search."""
        from growsearch.plan.planner import check
        from growsearch.plan.schedule import ScheduleError

        ladder = _ladder(self)
        deeper = [a for a in ladder if _depth_rank(a) < _depth_rank(self.final_arch)]
        smallest_res = min(self.resolutions) if self.resolutions else None
        # ssgd first: with train.optimizer ssgd every case would fail, and the key to name is optimizer
        cases = [("optimizer", a, {"optimizer": "ssgd"}, {}) for a in ladder] if "ssgd" in self.optimizers() else []
        cases += [("archs", a, {}, {}) for a in ladder]
        if smallest_res is not None:
            cases += [("resolutions", a, {"resolution": smallest_res}, {}) for a in ladder]
        if self.prune_ratio[1] > 0:
            # the smallest ratio the space allows above 0: whether the family can be pruned at all
            # (how far is capped when proposed, so a ratio never empties a layer)
            ratio = max(self.prune_ratio[0], min(self.prune_ratio[1], 0.01))
            cases += [("prune_ratio", a, {}, {"prune_ratio": ratio}) for a in ladder]
        if self.zero_mask:
            cases += [("zero_mask", a, {}, {"zero_mask": True}) for a in deeper]
        for key, arch, first, last in cases:
            sched = Schedule(
                self.dataset,
                [Stage(1, arch, 1, **first), Stage(2, self.final_arch, 1, **last)],
                seed=self.seed,
                train=self.train,
            )
            try:
                check(sched)
            except ScheduleError as e:
                raise SpaceError(
                    f"{key}: a schedule this space can propose ({arch} → {self.final_arch}) fails: {e}"
                ) from None

    def optimizers(self) -> list[str]:
        """The optimizers a stage may train with: ``optimizer``, or the recipe's one."""
        return list(self.optimizer) if self.optimizer is not None else [self.train.optimizer]

    def final_choices(self) -> list[str]:
        """The architectures a schedule's last stage may end in: ``final_archs``, or ``final_arch``."""
        return list(dict.fromkeys(self.final_archs)) if self.final_archs else [self.final_arch]

    def frontier_references(self) -> list[str]:
        """The architectures the frontier trains from scratch: ``frontier_archs``, or the final
        one and every arch the stages may use (the family), the final first."""
        if self.frontier_archs is not None:
            return list(dict.fromkeys(self.frontier_archs))
        return list(dict.fromkeys([self.final_arch, *_ladder(self), *self.final_choices()]))

    def frontier_lrs(self) -> list[float]:
        """The peak LRs the frontier sweeps: ``baseline_lrs``, or half, once and twice the recipe's."""
        return list(self.baseline_lrs) if self.baseline_lrs is not None else lr_sweep(self.train.lr)

    def frontier_budgets(self) -> list[int]:
        """The frontier's budgets: ``budgets``, or a geometric ladder ending at ``baseline_epochs``."""
        from growsearch.train.frontier import budget_ladder

        return list(self.budgets) if self.budgets is not None else budget_ladder(self.baseline_epochs)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["stages"], d["split"], d["epochs"], d["prune_ratio"] = (
            list(d[k]) for k in ("stages", "split", "epochs", "prune_ratio")
        )
        for key in ("grown_lr", "rewarm_epochs", "rewarm_peak", "new_param_lr"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d


SHRINK_RANGES = ("start", "ramp_epochs", "subnets_per_step", "temperature")  # the shrink keys a search may choose


def _range(value: Any, key: str, kind: type, *, lo: float | None = None, hi: float | None = None) -> None:
    import math

    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )
    if kind is int and ok:
        ok = all(float(v).is_integer() for v in value)
    if not ok:
        raise SpaceError(f"{key}: expected [min, max] of {kind.__name__}s, got {value!r}")
    if value[0] > value[1]:
        raise SpaceError(f"{key}: min {value[0]} is above max {value[1]}")
    if (lo is not None and value[0] < lo) or (hi is not None and value[1] > hi):
        raise SpaceError(
            f"{key}: {list(value)} is outside [{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        )


def shipped_spaces_dir() -> Path:
    """The folder of the shipped spaces: ``growsearch/search_spaces/`` where a wheel installed
    them, else the repository's top-level ``search_spaces/`` (a checkout, an editable install, or
    ``PYTHONPATH`` pointing at a checkout, as Ray workers and the GPU machine use it)."""
    here = Path(__file__).resolve().parents[1]  # the growsearch package
    for d in (here / "search_spaces", here.parent / "search_spaces"):
        if any(d.glob("*.yaml")):
            return d
    raise SpaceError(
        f"the shipped search spaces are missing (looked in {here / 'search_spaces'} and {here.parent / 'search_spaces'}): reinstall growsearch"
    )


def list_spaces() -> list[str]:
    """Names of the spaces shipped with growsearch."""
    return sorted(p.stem for p in shipped_spaces_dir().glob("*.yaml"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A validated space from a YAML path or a shipped space's name.

    Raises:
        SpaceError: missing file, unknown keys, or impossible ranges.
    """
    from growsearch._io import printable, read_document

    if not isinstance(name_or_path, (str, Path)):
        raise SpaceError(
            f"a space is a name ({', '.join(list_spaces())}) or a YAML path, got {type(name_or_path).__name__}"
        )
    path = Path(name_or_path)
    if not path.is_file():
        shipped = shipped_spaces_dir() / f"{name_or_path}.yaml"
        if not shipped.is_file():
            raise SpaceError(f"no space file {name_or_path}: give a path or one of {', '.join(list_spaces())}")
        path, name = shipped, str(name_or_path)
    else:
        name = path.stem
    d = read_document(path, SpaceError, yaml_format=True)
    if not isinstance(d, dict):
        raise SpaceError(f"{name_or_path}: expected a mapping of space keys")
    allowed = [f.name for f in fields(SearchSpace) if f.name != "name"]
    unknown = sorted(map(printable, set(d) - set(allowed)))
    if unknown:
        raise SpaceError(f"{name_or_path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    missing = [k for k in ("dataset", "final_arch", "archs") if k not in d]
    if missing:
        raise SpaceError(f"{name_or_path}: missing {', '.join(missing)}")
    train = d.pop("train", None) or {}
    if not isinstance(train, dict):
        raise SpaceError(f"{name_or_path}: train must be a mapping of recipe keys (e.g. {{lr: 0.05}}), got {train!r}")
    bad = sorted(map(printable, set(train) - {f.name for f in fields(TrainConfig)}))
    if bad:
        raise SpaceError(f"{name_or_path}: train: unknown key(s) {', '.join(bad)}")
    for key in (
        "stages",
        "split",
        "epochs",
        "grown_lr",
        "prune_ratio",
        "rewarm_epochs",
        "rewarm_peak",
        "new_param_lr",
        "ssgd_strength",
    ):
        if isinstance(d.get(key), list):
            d[key] = tuple(d[key])
    space = SearchSpace(**d, train=TrainConfig(**train), name=name)
    space.validate()
    return space


def lr_sweep(lr: float) -> list[float]:
    """The default LR sweep of a from-scratch frontier: half, once and twice ``lr`` (a factor of
    two each way: the neighbourhood a tuned recipe's LR is usually optimal within)."""
    return [lr / 2, lr, lr * 2]


FRACTION_STEP = 0.05  # data_growth samples: stage fractions are proposed on this grid


def suggest_schedule(trial: Any, space: SearchSpace, num_classes: int) -> Schedule:
    """Define-by-run: ask ``trial`` (an Optuna trial) for a schedule inside ``space``.

    Every parameter's range is conditional on the ones before it, so whatever the sampler
    proposes is a valid schedule and is exactly what trains: class counts strictly increase
    (``classes_i``; with ``data_growth: samples`` the data shares ``fraction_i`` do, on a 0.05
    grid in the ``split`` range), architectures climb a ladder of the space's ``archs`` sorted by
    depth and width (``arch_i``: a rung index, never below the previous stage's), resolutions
    never decrease (``resolution_i``: an index into the sorted ``resolutions``), and a prune
    ratio never empties a layer. A lever with one choice is fixed, not a parameter;
    ``deepen_init`` is asked only of a schedule where copying can copy a layer. Optuna therefore
    learns from the parameters that really trained (an earlier version sorted and raised values
    after sampling).
    """
    from dataclasses import replace

    from growsearch.plan.planner import check, copied_layers, transitions

    growth = _choose(trial, "data_growth", space.data_growth)
    lr_schedule = _choose(trial, "lr_schedule", space.lr_schedule)
    if growth == "classes":
        lo_k = min(max(1, round(space.split[0] * num_classes)), num_classes - 1)
        hi_k = min(max(lo_k, round(space.split[1] * num_classes)), num_classes - 1)
        room = hi_k - lo_k + 1  # intermediate stages fit at most this many distinct class counts
    elif growth == "samples":
        grid = _fraction_grid(space)
        room = len(grid)
    else:
        room = space.stages[1]
    n = trial.suggest_int("n_stages", min(space.stages[0], room + 1), min(space.stages[1], room + 1))
    counts: list[int] = []
    fractions: list[float | None] = [None] * n
    if growth == "classes":
        for i in range(1, n):
            low = max(lo_k, counts[-1] + 1 if counts else lo_k)
            counts.append(trial.suggest_int(f"classes_{i}", low, hi_k - (n - 1 - i)))
        counts.append(num_classes)
    else:
        counts = [num_classes] * n
    if growth == "samples":
        at = -1
        for i in range(1, n):  # an index into the grid, never below the previous stage's + 1
            at = trial.suggest_int(f"fraction_{i}", at + 1, len(grid) - (n - i))
            fractions[i - 1] = grid[at]
        fractions[-1] = 1.0

    final = _choose(trial, "final_arch", space.final_choices())
    ladder = _ladder(space, final)
    archs: list[str] = []
    rung = 0
    for i in range(1, n):
        rung = trial.suggest_int(f"arch_{i}", rung, len(ladder) - 1)
        archs.append(ladder[rung])
    archs.append(final)
    train = replace(space.train, lr_schedule=lr_schedule)
    # copy is proposed only where this schedule's growth can copy a trained layer
    shape = Schedule(
        space.dataset, [Stage(k, a, 1) for k, a in zip(counts, archs)], seed=space.seed, train=train, data_growth=growth
    )
    can_copy = "copy" in space.deepen_init and copied_layers(transitions(shape)) > 0
    deepen_init = (
        _choose(trial, "deepen_init", space.deepen_init)
        if can_copy and len(space.deepen_init) > 1
        else ("copy" if can_copy else "identity")
    )

    sizes = sorted(space.resolutions)
    stages: list[Stage] = []
    res_idx = 0
    for i, (k, a) in enumerate(zip(counts, archs), 1):
        low = space.epochs[0]
        if i == n > 1 and space.last_share:  # the floor on the last stage's share of the epochs
            before = sum(st.epochs for st in stages)
            low = min(space.epochs[1], max(low, math.ceil(space.last_share / (1 - space.last_share) * before - 1e-9)))
        st = Stage(
            classes=k,
            arch=a,
            epochs=trial.suggest_int(f"epochs_{i}", low, space.epochs[1], log=True),
            fraction=fractions[i - 1],
        )
        if sizes and i < n:
            res_idx = trial.suggest_int(f"resolution_{i}", res_idx, len(sizes) - 1)
            st.resolution = sizes[res_idx]
        opt = _choose(trial, f"optimizer_{i}", space.optimizers())
        if opt != train.optimizer:
            st.optimizer = opt
        if opt == "ssgd" and space.ssgd_strength is not None:
            st.ssgd_strength = trial.suggest_float(f"ssgd_strength_{i}", *space.ssgd_strength)
        if i > 1:
            if space.grown_lr is not None and lr_schedule == "per_stage":
                st.lr = trial.suggest_float(f"lr_{i}", space.grown_lr[0], space.grown_lr[1], log=True)
            if space.prune_ratio[1] > 0:
                prev = transitions(Schedule(space.dataset, stages, seed=space.seed, train=train, data_growth=growth))[
                    -1
                ].after
                # int(w × (1 − R)) ≥ 1 for every layer: R < 1 − 1/w for the narrowest (at most 0.999)
                cap = min(space.prune_ratio[1], 1 - 1 / min(min(b) for b in prev.widths) - 1e-9)
                if cap >= space.prune_ratio[0]:
                    st.prune_ratio = trial.suggest_float(f"prune_{i}", space.prune_ratio[0], cap)
            if space.zero_mask and deepen_init == "identity" and _depth_rank(a) > _depth_rank(archs[i - 2]):
                st.zero_mask = trial.suggest_categorical(f"zero_mask_{i}", [False, True])
        stages.append(st)
    if n > 1:  # the run-level levers act at growth: a one-stage schedule has none
        if lr_schedule == "global" and space.rewarm_epochs is not None:
            train = replace(train, rewarm_epochs=trial.suggest_float("rewarm_epochs", *space.rewarm_epochs))
            if space.rewarm_peak is not None and train.rewarm_epochs > 0:
                train = replace(train, rewarm_peak=trial.suggest_float("rewarm_peak", *space.rewarm_peak))
        train = replace(train, carry_optimizer=_choose(trial, "carry_optimizer", space.carry_optimizer))
        if space.new_param_lr is not None:
            train = replace(train, new_param_lr=trial.suggest_float("new_param_lr", *space.new_param_lr, log=True))
    shrink = _suggest_shrink(trial, space) if space.shrink is not None else None
    sched = Schedule(
        space.dataset, stages, seed=space.seed, train=train, data_growth=growth, deepen_init=deepen_init, shrink=shrink
    )
    check(sched, num_classes=num_classes)  # by construction; a failure here is a growsearch bug, not a repair
    return sched


def _suggest_shrink(trial: Any, space: SearchSpace) -> Any:
    """The trial's shrink block: each range of the space's a parameter (``shrink_start``, ...), each single value fixed."""
    from growsearch.plan.schedule import Shrink

    d = dict(space.shrink)
    for key in SHRINK_RANGES:
        v = d.get(key)
        if isinstance(v, list) and v[0] != v[1]:
            d[key] = (
                trial.suggest_int(f"shrink_{key}", *v)
                if key == "subnets_per_step"
                else trial.suggest_float(f"shrink_{key}", *map(float, v))
            )
        elif isinstance(v, list):
            d[key] = v[0]
    return Shrink(**d)


def _choose(trial: Any, name: str, choices: list) -> Any:
    """One of ``choices``: a categorical parameter when there are several, the one otherwise."""
    return trial.suggest_categorical(name, choices) if len(choices) > 1 else choices[0]


def _fraction_grid(space: SearchSpace) -> list[float]:
    """The data shares ``data_growth: samples`` may give the stages before the last."""
    lo = max(FRACTION_STEP, math.ceil(space.split[0] / FRACTION_STEP - 1e-9) * FRACTION_STEP)
    k = int(math.floor(space.split[1] / FRACTION_STEP + 1e-9))
    return [
        round(j * FRACTION_STEP, 10) for j in range(int(round(lo / FRACTION_STEP)), k + 1) if j * FRACTION_STEP < 1
    ] or [round(lo, 10)]


def schedule_params(schedule: Schedule, space: SearchSpace, num_classes: int) -> dict | None:
    """The Optuna parameters under which :func:`suggest_schedule` proposes exactly ``schedule``
    (what ``study.enqueue_trial`` takes), or None when the space cannot propose it (another seed,
    recipe or dataset, an arch off the ladder, a value outside a range).

    Example:
        >>> space = load_space("digits_vgg")
        >>> s = Schedule("digits", [Stage(5, "vgg11@0.25", 4), Stage(10, "vgg19@0.25", 4, lr=0.05)])
        >>> schedule_params(s, space, 10)["arch_1"]
        0
    """
    import warnings
    from dataclasses import replace

    from optuna.trial import FixedTrial

    final = schedule.stages[-1].arch
    ladder, sizes, n = _ladder(space, final), sorted(space.resolutions), len(schedule.stages)
    from growsearch.plan.schedule import TRAIN_LEVERS

    if (schedule.dataset, schedule.seed, replace(schedule.train, **TRAIN_LEVERS), schedule.class_order) != (
        space.dataset,
        space.seed,
        space.train,
        None,
    ):
        return None
    t = schedule.train
    params: dict[str, Any] = {
        "n_stages": n,
        "data_growth": schedule.data_growth,
        "lr_schedule": t.lr_schedule,
        "deepen_init": schedule.deepen_init,
        "carry_optimizer": t.carry_optimizer,
        "rewarm_epochs": t.rewarm_epochs,
        "rewarm_peak": t.rewarm_peak,
        "new_param_lr": t.new_param_lr,
        "final_arch": final,
    }
    grid = _fraction_grid(space)
    for i, st in enumerate(schedule.stages, 1):
        params[f"epochs_{i}"] = st.epochs
        own = st.recipe(t)
        params[f"optimizer_{i}"] = own.optimizer
        if own.optimizer == "ssgd" and st.ssgd_strength is not None:
            params[f"ssgd_strength_{i}"] = st.ssgd_strength
        if i < n:
            params[f"classes_{i}"] = st.classes
            if st.fraction is not None:
                if st.fraction not in grid:
                    return None
                params[f"fraction_{i}"] = grid.index(st.fraction)
            if st.arch not in ladder or (sizes and st.resolution not in sizes):
                return None
            params[f"arch_{i}"] = ladder.index(st.arch)
            if sizes:
                params[f"resolution_{i}"] = sizes.index(st.resolution)
        if i > 1:
            params.update({f"lr_{i}": st.lr, f"prune_{i}": st.prune_ratio, f"zero_mask_{i}": st.zero_mask})
    if schedule.shrink is not None:
        params.update({f"shrink_{k}": getattr(schedule.shrink, k) for k in SHRINK_RANGES})
    params = {k: v for k, v in params.items() if v is not None}
    trial = FixedTrial(params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # FixedTrial only warns about a value outside its range
            proposed = suggest_schedule(trial, space, num_classes)
    except (ValueError, UserWarning, GrowsearchError):
        return None
    # only the parameters the space really asked for (FixedTrial ignores the rest; Optuna's enqueue would keep them)
    return dict(trial.params) if proposed.to_dict() == schedule.to_dict() else None


def _ladder(space: SearchSpace, final: str | None = None) -> list[str]:
    """The earlier stages' architectures from shallow and narrow to deep and wide, none beyond
    the final one (``final``: the one this schedule ends in; default the space's ``final_arch``)."""
    from growsearch.model.arch import parse_arch

    final = final or space.final_arch
    fd, fw = _depth_rank(final), parse_arch(final)[2]
    keyed = sorted({(_depth_rank(a), parse_arch(a)[2], a) for a in space.archs})
    return [a for d, w, a in keyed if d <= fd and w <= fw] or [final]


def _depth_rank(arch: str) -> int:
    from growsearch.model.arch import parse_arch

    fam, base, _ = parse_arch(arch)
    return sum(fam.depths[base])
