"""Schedules: which classes, which architecture and how long, stage by stage.

A schedule file is JSON or YAML; the key names are a contract (see DESIGN.md):

    {"dataset": "digits", "seed": 0,
     "stages": [{"classes": 5,  "arch": "vgg11@0.25", "epochs": 10},
                {"classes": 10, "arch": "vgg19@0.25", "epochs": 10}]}

Example:
    >>> from growsearch.plan.schedule import Schedule, Stage
    >>> s = Schedule("digits", [Stage(5, "vgg11@0.25", 10), Stage(10, "vgg19@0.25", 10)])
    >>> s.validate()
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from growsearch.errors import GrowsearchError

if TYPE_CHECKING:
    from growsearch.data.dataset import Dataset

__all__ = [
    "Schedule",
    "Shrink",
    "Stage",
    "TrainConfig",
    "ScheduleError",
    "budget_split",
    "epoch_edges",
    "check_optimizer",
    "load_schedule",
    "load_split",
]


class ScheduleError(GrowsearchError, ValueError):
    """A schedule that cannot be trained; the message names the stage and the fix."""


# Bounds far beyond any machine: a value past them is a typo, refused in one line before it
# becomes a MemoryError or an OverflowError deep inside torch.
MAX_SEED = 2**32 - 1  # numpy's seed range; growsearch derives seed * 1000 + stage, well inside torch's 2^63
MAX_BATCH = 2**20
MAX_EPOCHS = 100_000
MAX_THREADS = 4096
MAX_RESOLUTION = 8192  # pixels on a side
MAX_CLASSES = 1_000_000

LR_SCHEDULES = ("per_stage", "global")
# the run-level recipe keys and their defaults (the paper's protocol): omitted from a schedule's dict at these values
TRAIN_LEVERS = {
    "lr_schedule": "per_stage",
    "rewarm_epochs": 0.0,
    "rewarm_peak": 1.0,
    "carry_optimizer": False,
    "new_param_lr": 1.0,
}
DATA_GROWTH = ("classes", "samples", "none")  # what grows from stage to stage besides the network
DEEPEN_INIT = ("identity", "copy")
OPTIMIZERS = ("sgd", "ssgd")  # train.optimizer / stages[].optimizer
SSGD_STRUCTURES = ("filters", "weights")
# the optimizer keys and their defaults (plain SGD): omitted from a schedule's dict, and from a stage's key, at these values
OPTIMIZER_KEYS = {"optimizer": "sgd", "ssgd_strength": 1.0, "ssgd_eps": 1e-3, "ssgd_structure": "filters"}
# the stage's overrides of the first two and of train.weight_decay (what SSGD's zeroing runs on), likewise
STAGE_OPTIMIZER_KEYS = {"optimizer": None, "ssgd_strength": None, "weight_decay": None}
SPEED_KEYS = {"lr_scaling": "none", "compile": False}  # the large-batch and compiled-graph keys, likewise
LR_SCALINGS = ("none", "linear", "sqrt")
COMPILE_MODES = (
    False,
    True,
    "reduce-overhead",
)  # train.compile: eager, torch.compile's default mode, or its CUDA-graph mode
LR_BASE_BATCH = 128  # train.lr is the peak LR at this batch size when lr_scaling scales it


def whole(v: object, what: str, lo: int, hi: int, *, omittable: bool = False) -> int:
    """``v`` if it is a whole number from ``lo`` to ``hi``, else ``ScheduleError`` naming ``what`` and the range."""
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ScheduleError(
            f"{what} must be a whole number from {lo} to {hi}{' or omitted' if omittable else ''}, got {v!r}"
        )
    return v


def finite(v: object, what: str, ok, rule: str) -> float:
    """``v`` if it is a finite number for which ``ok`` holds, else ``ScheduleError`` naming ``what``
    and ``rule`` (NaN and infinity are refused everywhere: they train silently to garbage)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
        raise ScheduleError(f"{what} must be {rule}, got {v!r}")
    return float(v)


def epoch_edges(total: int, fractions: "list[float]", *, last: int = 0) -> list[int]:
    """0, each fraction of ``total`` epochs rounded half up (at most ``total - last``), and
    ``total``: where the stages of a budget (``grow_at``) or the sizes of a progressively resized
    run (``switch_at``) change. The one rounding rule both use.

    Example:
        >>> epoch_edges(10, [0.25, 0.95], last=1)
        [0, 3, 9, 10]
    """
    return [0] + [min(math.floor(f * total + 0.5), total - last) for f in fractions] + [total]


def budget_split(budget: int, grow_at: list[float]) -> list[int]:
    """Each stage's whole epochs when growth happens at the fractions ``grow_at`` of ``budget``
    epochs (each boundary rounded half up), or ``ScheduleError`` naming the fix.

    Example:
        >>> budget_split(16, [0.25, 0.5])
        [4, 4, 8]
    """
    if not all(
        isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f) and 0 < f < 1 for f in grow_at
    ) or any(b <= a for a, b in zip(grow_at, grow_at[1:])):
        raise ScheduleError(
            f"grow_at must be fractions of budget_epochs strictly increasing in (0, 1), e.g. [0.25, 0.5]; got {grow_at!r}"
        )
    edges = epoch_edges(budget, grow_at)
    epochs = [b - a for a, b in zip(edges, edges[1:])]
    if min(epochs) < 1:
        i = epochs.index(min(epochs)) + 1
        raise ScheduleError(
            f"grow_at {grow_at} of budget_epochs {budget} leaves stage {i} no whole epoch: raise budget_epochs or move grow_at apart"
        )
    return epochs


@dataclass
class TrainConfig:
    """The training recipe shared by every stage (and by the baseline, for a fair M ratio)."""

    batch_size: int = 128  # samples per SGD step
    lr: float = 0.05  # peak learning rate (after linear warm-up)
    momentum: float = 0.9  # SGD momentum, Nesterov
    weight_decay: float = 5e-4  # on conv/linear weights, not on BN or biases
    warmup_epochs: float = 1.0  # linear warm-up from lr/10, rebuilt with the optimizer each stage
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    eval_batch_size: int = 512  # evaluation batch; at most 64 MiB of float input (data.loader.EVAL_BATCH_BYTES)
    rescale_kernels: bool = True  # stages below native resolution resample stem kernels > 3x3 to the image scale
    val_fraction: float = (
        0.1  # share of each class's training images held out for validation (0: select on the test set)
    )
    val_seed: int = 0  # seeds the validation split; independent of the schedule's seed so every seed shares one split
    # The run-level training state (the levers growth work uses; the defaults are the paper's protocol):
    lr_schedule: str = "per_stage"  # "per_stage": every stage warms up and decays to zero; "global": one warm-up and one decay to zero over the whole run
    rewarm_epochs: float = (
        0.0  # global: after each growth, re-warm from a tenth of the LR over this many epochs (0: none)
    )
    rewarm_peak: float = 1.0  # global: the re-warm-up's peak, as a multiple of the global schedule's LR there
    carry_optimizer: bool = (
        False  # keep SGD momentum across growth (each op maps what it keeps; what growth creates starts at zero)
    )
    new_param_lr: float = (
        1.0  # LR multiplier, for the stage after a growth, of the parameters that growth created from nothing
    )
    # The optimizer (stages[].optimizer and stages[].ssgd_strength override the first two per stage):
    optimizer: str = (
        "sgd"  # "sgd": torch's SGD; "ssgd": sparsity-promoting SGD by affine scaling (growsearch.train.ssgd)
    )
    ssgd_strength: float = 1.0  # ssgd: the reweighting exponent s in (0, 1]; 1 is the SSGD paper's log-sum measure, 1 - p/2 a p-norm measure
    ssgd_eps: float = 1e-3  # ssgd: epsilon added to each relative squared magnitude, in (0, 1]
    ssgd_structure: str = "filters"  # ssgd: "filters" reweights whole output channels (what filter pruning removes); "weights" each weight
    # Speed (the defaults change nothing):
    lr_scaling: str = "none"  # the peak LR at batch_size: "none" lr as given; "linear" lr x batch_size/128 (Goyal et al. 2017); "sqrt" lr x sqrt(batch_size/128)
    compile: bool | str = (
        False  # torch.compile each stage's network (again after each growth): true (default mode) rarely pays; "reduce-overhead" (CUDA graphs, CUDA only) pays on a GPU
    )

    def peak_lr(self, lr: float | None = None) -> float:
        """The peak LR a stage trains at: ``lr`` (default ``self.lr``), scaled to ``batch_size`` by
        ``lr_scaling`` from its value at batch 128.

        Example:
            >>> TrainConfig(lr=0.1, batch_size=512, lr_scaling="linear").peak_lr()
            0.4
        """
        base = float(lr if lr is not None else self.lr)
        ratio = self.batch_size / LR_BASE_BATCH
        return base * {"none": 1.0, "linear": ratio, "sqrt": ratio**0.5}[self.lr_scaling]

    @property
    def one_schedule(self) -> bool:
        """One LR schedule over the whole run (``lr_schedule: global``) rather than one per stage:
        the mode string is read here once, every caller asks this."""
        return self.lr_schedule == "global"

    def validate(self) -> None:
        """Raise ``ScheduleError`` naming the key if a recipe value has the wrong type or range."""
        whole(self.batch_size, "train.batch_size", 1, MAX_BATCH)
        whole(self.eval_batch_size, "train.eval_batch_size", 1, MAX_BATCH)
        finite(self.lr, "train.lr", lambda v: 0 < v <= 100, "a finite number in (0, 100]")
        finite(self.momentum, "train.momentum", lambda v: 0 <= v < 1, "a number in [0, 1)")
        finite(self.weight_decay, "train.weight_decay", lambda v: 0 <= v <= 1, "a number in [0, 1]")
        finite(
            self.warmup_epochs, "train.warmup_epochs", lambda v: 0 <= v <= MAX_EPOCHS, f"a number in [0, {MAX_EPOCHS}]"
        )
        finite(self.label_smoothing, "train.label_smoothing", lambda v: 0 <= v < 1, "a number in [0, 1)")
        finite(
            self.val_fraction,
            "train.val_fraction",
            lambda v: 0 <= v < 0.5,
            "a number in [0, 0.5) (0.1 holds out 10% of each class)",
        )
        whole(self.val_seed, "train.val_seed", 0, MAX_SEED)
        for key in ("rescale_kernels", "carry_optimizer"):
            if not isinstance(getattr(self, key), bool):
                raise ScheduleError(f"train.{key} must be true or false, got {getattr(self, key)!r}")
        if not any(
            self.compile is m or (isinstance(m, str) and self.compile == m) for m in COMPILE_MODES
        ):  # `is`: 0 and 1 are not booleans here
            raise ScheduleError(
                f"train.compile must be false, true or reduce-overhead (CUDA graphs, on a GPU), got {self.compile!r}"
            )
        if self.lr_scaling not in LR_SCALINGS:
            raise ScheduleError(f"train.lr_scaling must be one of {', '.join(LR_SCALINGS)}, got {self.lr_scaling!r}")
        if self.lr_scaling != "none":
            finite(
                self.peak_lr(),
                "train.lr scaled to train.batch_size",
                lambda v: 0 < v <= 100,
                "a finite number in (0, 100]: lower lr or batch_size",
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ScheduleError(f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        finite(
            self.rewarm_epochs, "train.rewarm_epochs", lambda v: 0 <= v <= MAX_EPOCHS, f"a number in [0, {MAX_EPOCHS}]"
        )
        finite(self.rewarm_peak, "train.rewarm_peak", lambda v: 0 < v <= 100, "a finite number in (0, 100]")
        finite(
            self.new_param_lr,
            "train.new_param_lr",
            lambda v: 0 < v <= 100,
            "a finite number in (0, 100] (1 gives new parameters the same LR)",
        )
        check_optimizer(self.optimizer, self.ssgd_strength, "train.")
        finite(self.ssgd_eps, "train.ssgd_eps", lambda v: 0 < v <= 1, "a number in (0, 1]")
        if self.ssgd_structure not in SSGD_STRUCTURES:
            raise ScheduleError(
                f"train.ssgd_structure must be one of {', '.join(SSGD_STRUCTURES)}, got {self.ssgd_structure!r}"
            )
        if not self.one_schedule and (self.rewarm_epochs or self.rewarm_peak != 1):
            raise ScheduleError(
                "train.rewarm_epochs and rewarm_peak re-warm the run's one LR schedule after growth: set train.lr_schedule to global, or drop them"
            )


def check_optimizer(name: object, strength: object, where: str) -> None:
    """``ScheduleError`` naming the key after ``where`` ("train." or "stage 2: ") unless ``name`` is
    an optimizer and ``strength`` an SSGD strength."""
    if name not in OPTIMIZERS:
        raise ScheduleError(f"{where}optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    finite(
        strength,
        f"{where}ssgd_strength",
        lambda v: 0 < v <= 1,
        "a number in (0, 1] (1: the SSGD paper's log-sum reweighting; plain SGD is optimizer sgd)",
    )


@dataclass
class Stage:
    """One stage: grow to ``arch``, train on the first ``classes`` classes."""

    classes: int  # the first k classes of the schedule's class order
    arch: str  # e.g. "vgg16@0.25"; never shallower or narrower than the previous stage
    epochs: int  # epochs to train; with ``patience`` the most it may train
    prune_ratio: float = (
        0.0  # fraction of each conv's filters (lowest L1 norm) pruned from the previous stage's network before growing
    )
    zero_mask: bool = False  # keep the zero taps of the identity kernels Net2Net inserted at zero while training
    patience: int | None = (
        None  # train to saturation: drop LR 10x after this many epochs without a new best validation accuracy, stop at the next plateau
    )
    lr: float | None = None  # peak LR for this stage (default: the schedule's train.lr)
    resolution: int | None = (
        None  # input side in pixels for this stage (default: the dataset's native size); never decreasing
    )
    fraction: float | None = (
        None  # data_growth "samples": the share of every class's training images this stage sees (nested; the last stage 1)
    )
    optimizer: str | None = None  # this stage's optimizer, sgd or ssgd (default: train.optimizer)
    ssgd_strength: float | None = None  # this stage's SSGD strength (default: train.ssgd_strength); needs ssgd
    prune_threshold: float | None = (
        None  # instead of prune_ratio: prune the filters whose score (relative mean square of filter, bias, BN γ and β; 1 on average) is below this
    )
    weight_decay: float | None = (
        None  # this stage's weight decay (default: train.weight_decay); SSGD zeroes what the decay shrinks
    )

    def recipe(self, train: "TrainConfig") -> "TrainConfig":
        """``train`` with this stage's optimizer choices in it: the recipe the stage trains with."""
        over = {k: getattr(self, k) for k in STAGE_OPTIMIZER_KEYS if getattr(self, k) is not None}
        return replace(train, **over) if over else train


@dataclass
class Shrink:
    """The schedule's shrink phase: during the last stage, train weight-shared subnets of its
    network alongside it (once-for-all; DepS's delayed shrinking), then cut and evaluate each."""

    depths: list[str] = field(
        default_factory=list
    )  # depth rungs of the final network's family (e.g. [vgg11, vgg13, vgg16]); the full depth is always in
    widths: list[float] = field(
        default_factory=list
    )  # fractions of every layer's channels (e.g. [0.5]); 1 is always in
    start: float = 0.5  # share of the last stage's steps after which subnets train: 0 once-for-all from the start, 1 none (cut after training), DepS in between
    ramp_epochs: float = 1.0  # the subnets' LR climbs from 0 at start to the schedule's LR over this many epochs
    subnets_per_step: int = 1  # random subnets per step besides the full network and the smallest (the sandwich rule)
    temperature: float = 1.0  # in-place distillation: subnets learn the full network's outputs softened by this
    recal_images: int = (
        1000  # training images each subnet's BatchNorm statistics are recalibrated on before it is evaluated
    )

    def validate(self) -> None:
        for key in ("depths", "widths"):
            v = getattr(self, key)
            if not isinstance(v, list) or len(v) > 64:
                raise ScheduleError(
                    f"shrink.{key} must be a list (e.g. depths [vgg11, vgg16], widths [0.5]), got {v!r}"
                )
        for d in self.depths:
            if not isinstance(d, str):
                raise ScheduleError(f"shrink.depths holds arch names without a width such as vgg13, got {d!r}")
        for w in self.widths:
            finite(
                w,
                "shrink.widths: every width",
                lambda v: 0 < v <= 1,
                "a fraction in (0, 1] (0.5 keeps half of each layer's channels)",
            )
        finite(
            self.start,
            "shrink.start",
            lambda v: 0 <= v <= 1,
            "a share of the last stage in [0, 1] (0: from its first step, 1: after it)",
        )
        finite(self.ramp_epochs, "shrink.ramp_epochs", lambda v: 0 <= v <= MAX_EPOCHS, f"a number in [0, {MAX_EPOCHS}]")
        whole(self.subnets_per_step, "shrink.subnets_per_step", 0, 64)
        finite(self.temperature, "shrink.temperature", lambda v: 0 < v <= 100, "a number in (0, 100]")
        whole(self.recal_images, "shrink.recal_images", 1, 10_000_000)
        if not self.depths and not self.widths:
            raise ScheduleError(
                "shrink has no subnets besides the full network: give depths (e.g. [vgg11, vgg16]) and/or widths (e.g. [0.5])"
            )


@dataclass
class Schedule:
    """A cumulative Net2Net schedule: nested class subsets, one architecture per stage."""

    dataset: str  # a dataset name, see growsearch.data.dataset.create_dataset
    stages: list[Stage]
    seed: int = 0  # seeds the class order, initialisation, growth and batch order
    train: TrainConfig = field(default_factory=TrainConfig)
    class_order: list[int] | None = None  # explicit class order (default: a permutation seeded by ``seed``)
    threads: int | None = (
        None  # torch CPU threads to train with (a search's best schedule records its trials'); None: torch's default
    )
    data_growth: str = "classes"  # "classes": nested class subsets (the paper); "samples": nested random shares of every class (stages[].fraction); "none": all data in every stage
    deepen_init: str = "identity"  # new layers: "identity" (function-preserving) or "copy" (a copy of the trained layer before it in its block; not function-preserving)
    # The stages as fractions of one budget instead of epochs each: stage i trains from
    # grow_at[i-1] to grow_at[i] of budget_epochs (rounded to whole epochs; stages[].epochs then omitted)
    budget_epochs: int | None = None
    grow_at: list[float] | None = None
    shrink: Shrink | None = (
        None  # train and cut weight-shared subnets of the last stage's network (growsearch.model.elastic)
    )

    def __post_init__(self) -> None:
        if self.budget_epochs is not None and isinstance(self.stages, list):
            try:
                split = budget_split(self.budget_epochs, self.grow_at or [])
            except (ScheduleError, TypeError):
                return  # validate() names what is wrong
            if len(split) == len(self.stages):
                self.stages = [
                    replace(st, epochs=e) if isinstance(st, Stage) and st.epochs is None else st
                    for st, e in zip(self.stages, split)
                ]

    def validate(self) -> None:
        """Raise ``ScheduleError`` naming the key and the fix when a field has the wrong type or
        range (what needs neither data nor architectures). Whether the stages fit together and
        fit the data is the planner's one check (:func:`growsearch.plan.planner.check`, which
        ``plan_schedule`` and ``run_schedule`` call)."""
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ScheduleError(f"dataset must be a dataset name such as 'digits' or 'npz:PATH', got {self.dataset!r}")
        if not isinstance(self.stages, (list, tuple)) or not all(isinstance(st, Stage) for st in self.stages):
            raise ScheduleError("stages must be a list of growsearch.Stage(classes, arch, epochs)")
        if not isinstance(self.train, TrainConfig):
            raise ScheduleError("train must be a growsearch.TrainConfig")
        whole(self.seed, "seed", 0, MAX_SEED)
        if not self.stages:
            raise ScheduleError("schedule has no stages: add at least one {classes, arch, epochs}")
        if self.threads is not None:
            whole(self.threads, "threads", 1, MAX_THREADS, omittable=True)
        order = self.class_order
        if order is not None and not (
            isinstance(order, list)
            and len(order) <= MAX_CLASSES
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < MAX_CLASSES for c in order)
        ):
            raise ScheduleError(f"class_order must be a list of class indices, got {order!r}")
        self.train.validate()
        self._check_budget()
        if self.data_growth not in DATA_GROWTH:
            raise ScheduleError(f"data_growth must be one of {', '.join(DATA_GROWTH)}, got {self.data_growth!r}")
        if self.deepen_init not in DEEPEN_INIT:
            raise ScheduleError(f"deepen_init must be one of {', '.join(DEEPEN_INIT)}, got {self.deepen_init!r}")
        for i, st in enumerate(self.stages, 1):
            where = f"stage {i}"
            if not isinstance(st.arch, str):
                raise ScheduleError(f"{where}: arch must be a name such as 'vgg19@0.25', got {st.arch!r}")
            whole(st.classes, f"{where}: classes", 1, MAX_CLASSES)
            whole(st.epochs, f"{where}: epochs", 1, MAX_EPOCHS)
            if st.patience is not None:
                whole(st.patience, f"{where}: patience", 1, MAX_EPOCHS, omittable=True)
            if st.lr is not None:
                finite(st.lr, f"{where}: lr", lambda v: 0 < v <= 100, "a finite number in (0, 100]")
            finite(st.prune_ratio, f"{where}: prune_ratio", lambda v: 0 <= v < 1, "in [0, 1)")
            if i == 1 and st.prune_ratio > 0:
                raise ScheduleError(
                    "stage 1: prune_ratio prunes the previous stage's network, and stage 1 has none: set it to 0"
                )
            if st.prune_threshold is not None:
                finite(
                    st.prune_threshold,
                    f"{where}: prune_threshold",
                    lambda v: 0 < v <= 1,
                    "in (0, 1] (a layer's scores average 1, so a threshold up to 1 never empties a layer)",
                )
                if i == 1:
                    raise ScheduleError(
                        "stage 1: prune_threshold prunes the previous stage's network, and stage 1 has none: drop it"
                    )
                if st.prune_ratio > 0:
                    raise ScheduleError(
                        f"{where}: prune_ratio and prune_threshold both choose the filters to prune: keep one"
                    )
            if st.resolution is not None:
                whole(st.resolution, f"{where}: resolution (pixels)", 1, MAX_RESOLUTION, omittable=True)
            if not isinstance(st.zero_mask, bool):
                raise ScheduleError(f"{where}: zero_mask must be true or false, got {st.zero_mask!r}")
            if i == 1 and st.zero_mask:
                raise ScheduleError(
                    "stage 1: zero_mask keeps the zeros of identity layers inserted by growth, and stage 1 grows nothing: set it to false"
                )
            if st.zero_mask and self.deepen_init == "copy":
                raise ScheduleError(
                    f"{where}: zero_mask keeps the zeros of identity layers, and deepen_init copy inserts none: set zero_mask to false or deepen_init to identity"
                )
            if st.weight_decay is not None:
                finite(st.weight_decay, f"{where}: weight_decay", lambda v: 0 <= v <= 1, "a number in [0, 1]")
            if st.optimizer is not None or st.ssgd_strength is not None:
                own = st.recipe(self.train)
                check_optimizer(own.optimizer, own.ssgd_strength, f"{where}: ")
                if st.ssgd_strength is not None and own.optimizer != "ssgd":
                    raise ScheduleError(
                        f"{where}: ssgd_strength sets SSGD's reweighting, and the stage trains with {own.optimizer}: set its optimizer to ssgd or drop ssgd_strength"
                    )
            if self.train.one_schedule and st.patience is not None:
                raise ScheduleError(
                    f"{where}: patience (train to a plateau) is a per-stage rule, and lr_schedule global plans one schedule over the whole run: drop patience or use per_stage"
                )
            if self.train.one_schedule and st.lr is not None:
                raise ScheduleError(
                    f"{where}: a stage lr restarts the schedule, and lr_schedule global has one: drop the stage's lr (train.lr is the peak) or use per_stage"
                )
        self._check_fractions()
        if self.shrink is not None:
            if not isinstance(self.shrink, Shrink):
                raise ScheduleError(
                    "shrink must be a growsearch Shrink (a mapping of depths, widths, start, ... in a file)"
                )
            self.shrink.validate()
            if self.stages[-1].patience is not None:
                raise ScheduleError(
                    f"stage {len(self.stages)}: the shrink phase is planned over the last stage's steps, and patience makes them unknown: drop patience"
                )
            if self.train.compile:
                raise ScheduleError(
                    "train.compile does not combine with a shrink block (the subnets change the network between steps): drop one"
                )

    def _check_budget(self) -> None:
        if self.budget_epochs is None:
            if self.grow_at is not None:
                raise ScheduleError(
                    "grow_at places growth within budget_epochs, and there is none: add budget_epochs (e.g. 16) or give every stage its epochs"
                )
            return
        whole(self.budget_epochs, "budget_epochs", 1, MAX_EPOCHS)
        at = self.grow_at if self.grow_at is not None else []
        if not isinstance(at, list) or len(at) != len(self.stages) - 1:
            raise ScheduleError(
                f"grow_at must list one fraction of budget_epochs per growth ({len(self.stages) - 1} for {len(self.stages)} stages, e.g. "
                f"{[round((k + 1) / len(self.stages), 2) for k in range(len(self.stages) - 1)]}), got {at!r}"
            )
        split = budget_split(self.budget_epochs, at)
        for i, (st, e) in enumerate(zip(self.stages, split), 1):
            if st.patience is not None:
                raise ScheduleError(
                    f"stage {i}: patience trains to a plateau, and budget_epochs fixes every stage's epochs: drop patience or budget_epochs"
                )
            if st.epochs != e:
                raise ScheduleError(
                    f"stage {i}: epochs {st.epochs!r} disagrees with budget_epochs {self.budget_epochs} and grow_at ({e} epochs): drop the stages' epochs or budget_epochs"
                )

    def _check_fractions(self) -> None:
        fracs = [st.fraction for st in self.stages]
        if self.data_growth != "samples":
            if any(f is not None for f in fracs):
                raise ScheduleError(
                    f"stages[].fraction is the share of data a stage sees under data_growth samples, and data_growth is {self.data_growth}: set data_growth to samples or drop fraction"
                )
            return
        if any(f is None for f in fracs):
            missing = next(i for i, f in enumerate(fracs, 1) if f is None)
            raise ScheduleError(
                f"data_growth samples needs every stage's fraction (stage {missing} has none): e.g. 0.25, 0.5, 1"
            )
        for i, f in enumerate(fracs, 1):
            finite(f, f"stage {i}: fraction", lambda v: 0 < v <= 1, "a number in (0, 1]")
        if any(b <= a for a, b in zip(fracs, fracs[1:])) or fracs[-1] != 1:
            raise ScheduleError(
                f"stage fractions must strictly increase and the last stage must see all data (1), got {', '.join(f'{f:g}' for f in fracs)}"
            )

    def resolved_class_order(self, num_classes: int) -> list[int]:
        """``class_order`` if given, else the permutation seeded by ``seed``; stage i trains on its first k_i."""
        from growsearch.data.split import class_order

        return list(self.class_order) if self.class_order is not None else class_order(num_classes, self.seed)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("class_order", "threads"):
            if d[key] is None:
                del d[key]
        for key, default in (
            ("data_growth", "classes"),
            ("deepen_init", "identity"),
            ("budget_epochs", None),
            ("grow_at", None),
            ("shrink", None),
        ):
            if (
                d[key] == default
            ):  # the paper's protocol: a schedule written before these keys existed reads back as it was
                del d[key]
        for key, default in {
            **TRAIN_LEVERS,
            **OPTIMIZER_KEYS,
            **SPEED_KEYS,
        }.items():  # likewise the recipe: a result written before them compares equal
            if d["train"][key] == default:
                del d["train"][key]
        if self.budget_epochs is not None:  # the epochs follow from the budget
            for st in d["stages"]:
                del st["epochs"]
        for st in d["stages"]:
            for k in ("patience", "lr", "fraction", "prune_threshold", *STAGE_OPTIMIZER_KEYS):
                if st[k] is None:
                    del st[k]
        return d

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "schedule") -> "Schedule":
        if not isinstance(d, dict):
            raise ScheduleError(f"{source}: expected a mapping with 'dataset' and 'stages'")
        _check_keys(d, Schedule, source)
        for key in ("dataset", "stages"):
            if key not in d:
                raise ScheduleError(f"{source}: missing '{key}'")
        if not isinstance(d["stages"], list):
            raise ScheduleError(f"{source}: 'stages' must be a list of {{classes, arch, epochs}}")
        stages = []
        for i, s in enumerate(d["stages"], 1):
            if not isinstance(s, dict):
                raise ScheduleError(f"{source}: stage {i} must be a mapping with classes, arch, epochs")
            _check_keys(s, Stage, f"{source}: stage {i}")
            missing = [k for k in ("classes", "arch") + (() if "budget_epochs" in d else ("epochs",)) if k not in s]
            if missing:
                raise ScheduleError(f"{source}: stage {i} is missing {', '.join(missing)}")
            stages.append(Stage(**{"epochs": None, **s}))
        train = d.get("train") or {}
        if not isinstance(train, dict):
            raise ScheduleError(f"{source}: train must be a mapping of recipe keys (e.g. {{lr: 0.05}}), got {train!r}")
        _check_keys(train, TrainConfig, f"{source}: train")
        shrink = d.get("shrink")
        if shrink is not None:
            if not isinstance(shrink, dict):
                raise ScheduleError(
                    f"{source}: shrink must be a mapping (e.g. {{depths: [vgg11], widths: [0.5], start: 0.5}}), got {shrink!r}"
                )
            _check_keys(shrink, Shrink, f"{source}: shrink")
            shrink = Shrink(**shrink)
        return cls(
            dataset=str(d["dataset"]),
            stages=stages,
            seed=_seed(d.get("seed", 0), source),
            train=TrainConfig(**train),
            class_order=d.get("class_order"),
            threads=d.get("threads"),
            data_growth=d.get("data_growth", "classes"),
            deepen_init=d.get("deepen_init", "identity"),
            budget_epochs=d.get("budget_epochs"),
            grow_at=d.get("grow_at"),
            shrink=shrink,
        )

    def save(self, path: str | Path) -> None:
        """Write JSON (or YAML for .yaml/.yml) atomically."""
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        else:
            text = json.dumps(self.to_dict(), indent=2) + "\n"
        from growsearch._io import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(text)


def _seed(v, source: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ScheduleError(f"{source}: seed must be a whole number ≥ 0, got {v!r}")
    return v


def _check_keys(d: dict, cls: type, where: str) -> None:
    allowed = [f.name for f in fields(cls)]
    from growsearch._io import printable

    unknown = sorted(map(printable, set(d) - set(allowed)))
    if unknown:
        raise ScheduleError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def load_schedule(path: str | Path) -> Schedule:
    """Read a schedule from a .json, .yaml or .yml file.

    Raises:
        ScheduleError: missing file, unreadable JSON/YAML, or an invalid structure.
    """
    from growsearch._io import read_document

    path = Path(path)
    if not path.is_file():
        raise ScheduleError(f"schedule file {path} does not exist" + (" (it is a folder)" if path.is_dir() else ""))
    return Schedule.from_dict(read_document(path, ScheduleError), source=str(path))


def load_split(name: str, train: TrainConfig, *, dataset: "Dataset | None" = None) -> "Dataset":
    """Load, validate and split, the one way every command does it: the dataset ``name`` (or
    ``dataset``, already loaded and checked by its source) with the seeded, stratified
    validation split ``train.val_fraction``/``train.val_seed`` every choice reads."""
    from growsearch.data.dataset import create_dataset
    from growsearch.data.split import with_validation

    ds = dataset if dataset is not None else create_dataset(name)
    return with_validation(ds, train.val_fraction, train.val_seed)
