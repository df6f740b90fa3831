"""Planning a schedule without training it: every stage's network, ops, data and cost.

A cumulative schedule is fully determined before any training: each stage's network follows
from the previous one by a list of op objects (:mod:`growsearch.model.ops`: prune → deepen →
widen → add classes → rescale stem → change resolution, and any op registered with
``register_op``), its data from the class order, and its cost from both. :func:`check` is the
single structural check of a schedule (class subsets, resolutions, the data, and every
transition planned on specs); :func:`plan_schedule` runs it once and derives each stage's
network, data and cost; ``run_schedule`` applies each plan's steps. A schedule that cannot be
planned is refused with the same one-line message everywhere.

Example:
    >>> from growsearch import Schedule, Stage
    >>> plans = plan_schedule(Schedule("digits", [Stage(5, "vgg11@0.25", 2), Stage(10, "vgg19@0.25", 3)]))
    >>> [p.ops for p in plans]
    [('build',), ('deepen', 'add classes 5→10')]
    >>> plans[1].M == 3 * plans[1].samples_per_epoch * plans[1].macs_per_sample
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from growsearch.data.dataset import create_dataset
from growsearch.data.split import stage_size, with_validation
from growsearch.model.arch import ArchError, ArchSpec, build_model, parse_arch
from growsearch.model.cost import count_params, input_shape, macs_per_sample
from growsearch.model.ops import Deepen, StageView, Step, first_ops, plan_transition, transition_ops
from growsearch.plan.schedule import Schedule, ScheduleError
from growsearch.plan.shrink import ShrinkPlan, plan_shrink

if TYPE_CHECKING:
    from growsearch.data.dataset import Dataset

__all__ = ["StagePlan", "check", "copied_layers", "plan_schedule", "plan_table", "planned_M", "transitions"]


@dataclass(frozen=True)
class Transition:
    """One stage's network change, on specs only."""

    before: ArchSpec | None  # the previous stage's trained network (None for stage 1)
    steps: tuple[Step, ...]  # the ops that act in this stage, in the order they are applied
    after: ArchSpec  # the network this stage trains
    resolution: int | None  # input side; None: the dataset's native size (unknown without data, or not square)

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(s.label for s in self.steps)


@dataclass(frozen=True)
class StagePlan:
    """What one stage will train, known before training."""

    stage: int  # 1-based
    classes: int  # the first k classes of the schedule's class order
    arch: str  # the stage's arch name
    steps: tuple[Step, ...]  # the ops that act in this stage, in order: what run_schedule applies
    spec_before: ArchSpec | None  # the network entering the stage (None for stage 1)
    spec: ArchSpec  # the network the stage trains
    resolution: int | None  # input side in pixels; None: the data's own shape, which is not square
    samples_per_epoch: int  # training images of the stage's classes (validation split held out)
    epochs: int  # fixed epochs, or the most a plateau stage may train
    plateau: bool  # trains until validation accuracy plateaus: its epochs are not known in advance
    macs_per_sample: int  # forward MACs of ``spec`` at ``resolution`` (the M of cost.py)
    params: int
    shrink: ShrinkPlan | None = None  # the last stage of a schedule with a shrink block: its subnets and their passes
    bounded: bool = (
        False  # a prune_threshold at or before this stage has not yet said its widths: the network is an upper bound
    )

    @property
    def ops(self) -> tuple[str, ...]:
        """The steps' names, e.g. ("prune R=0.5", "deepen", "widen", "add classes 5→10")."""
        return tuple(s.label for s in self.steps)

    @property
    def M(self) -> int | None:
        """samples × MACs of a fixed-epoch stage: equal to the trained stage's M; None for a plateau
        stage, or one whose network a prune_threshold before it decides (``bounded``)."""
        return None if self.plateau or self.bounded else self.M_max

    @property
    def M_max(self) -> int:
        """The most the stage can cost (a plateau stage stopped at its epoch cap), its subnets' passes included."""
        return self.epochs * self.samples_per_epoch * self.macs_per_sample + (self.shrink.M if self.shrink else 0)


def transitions(
    schedule: Schedule,
    *,
    in_chans: int = 3,
    native: int | None = None,
    init_spec: ArchSpec | None = None,
    prune_widths: dict[int, tuple[tuple[int, ...], ...]] | None = None,
    image_hw: tuple[int, int] | None = None,
) -> list[Transition]:
    """Each stage's spec before and after its ops, or a ``ScheduleError`` naming the stage.

    ``native``: the dataset's image side (stem kernels are rescaled for stages below it); without
    it resolutions are not applied. ``init_spec``: stage 1 builds this exact spec.
    ``prune_widths``: stage → the widths its ``prune_threshold`` left, once the trained network
    has said them (a stage missing here is planned unpruned: an upper bound). ``image_hw``: the
    data's (height, width), what a stage at the native shape is pruned at.
    """
    out: list[Transition] = []
    spec: ArchSpec | None = None
    prev_res = native
    for i, st in enumerate(schedule.stages, 1):
        res = st.resolution or native
        view = StageView(
            st.arch,
            st.classes,
            index=i,
            prune_ratio=st.prune_ratio,
            zero_mask=st.zero_mask,
            resolution=res,
            prev_resolution=prev_res,
            native=native,
            image_hw=image_hw,
            rescale_kernels=schedule.train.rescale_kernels,
            in_chans=in_chans,
            init_spec=init_spec,
            deepen_init=schedule.deepen_init,
            prune_threshold=st.prune_threshold,
            prune_widths=(prune_widths or {}).get(i),
        )
        try:
            steps, new = plan_transition(first_ops() if spec is None else transition_ops(), spec, view)
        except ArchError as e:
            raise ScheduleError(f"stage {i}: {e}") from None
        out.append(Transition(spec, steps, new, res))
        spec, prev_res = new, res
    return out


def check(
    schedule: Schedule,
    *,
    num_classes: int | None = None,
    image_size: int | None = None,
    in_chans: int = 3,
    init_spec: ArchSpec | None = None,
    prune_widths: dict[int, tuple[tuple[int, ...], ...]] | None = None,
    image_shape: tuple[int, int] | None = None,
) -> list[Transition]:
    """The single structural check of a schedule; returns its transitions (what each stage's ops
    do to the network, on specs).

    Field types and ranges first (``Schedule.validate``), then: class subsets strictly grow;
    resolutions never decrease and every stage's input is at least its backbone's minimum; each
    stage's network follows from the previous one by the registered ops (growable, prunable,
    maskable). Given the data's ``num_classes`` and ``image_size``: the last stage trains on
    every class at the native size, ``class_order`` is a permutation, no resolution is above the
    native one. ``prune_widths``: the widths ``prune_threshold`` stages left (see :func:`transitions`).
    ``image_shape``: the data's (height, width), which decides ``image_size`` when given (its side,
    or None when it is not square); non-square data trains at that shape only, so a ``resolution``
    stage is refused.

    Raises:
        ScheduleError: one line naming the stage and the fix.

    Example:
        >>> from growsearch import Schedule, Stage
        >>> check(Schedule("digits", [Stage(5, "vgg13@0.25", 2), Stage(4, "vgg19@0.25", 2)]))
        Traceback (most recent call last):
        ...
        growsearch.plan.schedule.ScheduleError: stage 2 has 4 classes, not more than stage 1's 5: class subsets must grow
    """
    schedule.validate()
    stages = schedule.stages
    if image_shape is not None:
        image_size = image_shape[0] if image_shape[0] == image_shape[1] else None
    # the data's shorter side, what a stage at the native shape must give its backbone, and its name in a message
    native_side = image_size if image_size is not None else min(image_shape) if image_shape else None
    native_what = (
        f"{native_side} px" if image_size is not None or image_shape is None else f"{image_shape[1]}x{image_shape[0]}"
    )
    if image_shape is not None and image_size is None:
        at = next((i for i, st in enumerate(stages, 1) if st.resolution is not None), None)
        if at is not None:  # a resolution is a square side: a non-square input has none to grow to
            raise ScheduleError(
                f"stage {at}: resolution stages train at a square side, and {schedule.dataset}'s images are {image_shape[1]}x{image_shape[0]}: "
                "drop resolution, or decode square with ?size=N"
            )
    for i, st in enumerate(stages, 1):
        where = f"stage {i}"
        if schedule.data_growth == "classes" and i > 1 and st.classes <= stages[i - 2].classes:
            raise ScheduleError(
                f"{where} has {st.classes} classes, not more than stage {i - 1}'s {stages[i - 2].classes}: class subsets must grow"
            )
        if schedule.data_growth != "classes" and st.classes != stages[-1].classes:
            raise ScheduleError(
                f"{where} has {st.classes} classes and stage {len(stages)} {stages[-1].classes}: data_growth {schedule.data_growth} trains every class "
                f"in every stage, so give every stage the dataset's class count (or use data_growth classes)"
            )
        later = [s.resolution for s in stages[i:] if s.resolution is not None]
        if st.resolution is not None and any(r < st.resolution for r in later):
            raise ScheduleError(
                f"{where}: resolution {st.resolution} is above a later stage's {min(later)}: resolutions must never decrease"
            )
        if st.resolution is None and image_size is not None and any(r < image_size for r in later):
            raise ScheduleError(
                f"{where} trains at the native {image_size} px but a later stage at less: resolutions must never decrease"
            )
        side = st.resolution if st.resolution is not None else native_side
        try:
            fam = parse_arch(st.arch)[0]
        except ArchError as e:
            raise ScheduleError(f"{where}: {e}") from None
        if st.recipe(schedule.train).optimizer == "ssgd" and not fam.prunable:
            raise ScheduleError(
                f"{where}: optimizer ssgd drives filters to zero for filter pruning to remove, and {fam.name} backbones cannot be pruned yet: use optimizer sgd"
            )
        if side is not None and side < fam.min_input:
            if st.resolution is not None:
                what, fix = f"resolution {side}", "raise it"
            else:  # the data's own size: resize the data
                first = (
                    " (an image folder is sized by its first training image)"
                    if schedule.dataset.startswith("imagefolder:")
                    else ""
                )
                what = f"{schedule.dataset}'s {native_what} images{first}"
                fix = f"resize them with ?size={fam.min_input} (or more) after the dataset's name"
            raise ScheduleError(f"{where}: {st.arch} needs inputs of at least {fam.min_input} px, got {what}: {fix}")
        if image_size is not None and st.resolution is not None and st.resolution > image_size:
            raise ScheduleError(
                f"{where}: resolution {st.resolution} is above {schedule.dataset}'s native {image_size} px: use at most {image_size}"
            )
    if num_classes is not None:
        last = stages[-1].classes
        if last > num_classes:
            raise ScheduleError(f"stage {len(stages)} asks for {last} classes but {schedule.dataset} has {num_classes}")
        if last != num_classes:
            raise ScheduleError(
                f"the last stage trains on {last} of {schedule.dataset}'s {num_classes} classes: it must see all of them"
            )
        if schedule.class_order is not None and sorted(schedule.class_order) != list(range(num_classes)):
            raise ScheduleError(f"class_order must be a permutation of 0..{num_classes - 1}")
    if image_size is not None and stages[-1].resolution not in (None, image_size):
        raise ScheduleError(
            f"the last stage trains at {stages[-1].resolution} px: it must train at {schedule.dataset}'s native {image_size} px "
            "(the final network is compared at full resolution); drop its resolution"
        )
    trans = transitions(
        schedule,
        in_chans=in_chans,
        native=image_size,
        init_spec=init_spec,
        prune_widths=prune_widths,
        image_hw=image_shape,
    )
    if schedule.deepen_init == "copy" and not copied_layers(trans):
        raise ScheduleError(
            "deepen_init copy: no growth of this schedule inserts a layer that a trained layer of its block could be copied into "
            f"({' → '.join(st.arch for st in stages)}; e.g. VGG11→13 adds each block's first same-width layer): deepen a block that "
            "already has a layer of the new one's shape, or use deepen_init identity"
        )
    if schedule.shrink is not None:
        from growsearch.model.elastic import check_elastic

        try:
            check_elastic(trans[-1].after, schedule.shrink.depths, schedule.shrink.widths)
        except ArchError as e:
            raise ScheduleError(f"shrink: {e}") from None
    return trans


def copied_layers(trans: list[Transition]) -> int:
    """How many new layers ``deepen_init: copy`` fills from trained ones over ``trans``."""
    return sum(Deepen.copies(step)[0] for tr in trans for step in tr.steps if isinstance(step.op, Deepen))


def plan_schedule(
    schedule: Schedule,
    *,
    dataset: "Dataset | None" = None,
    init_spec: ArchSpec | None = None,
    prune_widths: dict[int, tuple[tuple[int, ...], ...]] | None = None,
) -> list[StagePlan]:
    """Plan every stage of ``schedule`` without training: specs, ops, data and cost.

    Args:
        schedule: the schedule; checked against the data by :func:`check` (the same one-line
            errors as a run).
        dataset: the loaded dataset (default: read from ``schedule.dataset``); its validation
            split is carved from ``schedule.train`` exactly as a run carves it.
        init_spec: stage 1 builds this exact spec (a frontier's ``--spec-from`` reference).
        prune_widths: the widths a ``prune_threshold`` stage's pruning left (see :func:`transitions`);
            until a stage's are given, it and every later stage are ``bounded`` (their M unknown,
            ``M_max`` an upper bound), which is how a run plans before training.

    Returns:
        One :class:`StagePlan` per stage; ``sum(p.M for p in plans)`` is the trained ``result.M``
        of a fixed-epoch schedule.
    """
    schedule.validate()  # a malformed schedule is refused before any data is loaded
    ds = dataset if dataset is not None else create_dataset(schedule.dataset)
    trans = check(
        schedule,
        num_classes=ds.num_classes,
        image_shape=ds.image_shape,
        in_chans=ds.in_chans,
        init_spec=init_spec,
        prune_widths=prune_widths,
    )
    unknown = [
        i for i, st in enumerate(schedule.stages, 1) if st.prune_threshold is not None and i not in (prune_widths or {})
    ]
    if ds.val_fraction is None:  # samples per epoch count the training images left after the split
        ds = with_validation(ds, schedule.train.val_fraction, schedule.train.val_seed)
    order = schedule.resolved_class_order(ds.num_classes)
    plans = []
    for i, (st, tr) in enumerate(zip(schedule.stages, trans), 1):
        model = build_model(tr.after)  # untrained: MACs and parameters depend on the shape only
        n = stage_size(ds.y_train, order[: st.classes], st.fraction)  # the images stage_data gives run_schedule
        if len(ds.y_test) and not set(order[: st.classes]) & {int(c) for c in set(ds.y_test.tolist())}:
            # its test accuracy would be 0 of 0, reported as 0.0
            raise ScheduleError(
                f"stage {i}: its {st.classes} class(es) ({', '.join(map(str, order[: st.classes]))}) have no test images in "
                f"{schedule.dataset}: give the stage more classes, or set class_order so it starts with classes the test split holds"
            )
        shrink = None
        if schedule.shrink is not None and i == len(schedule.stages):
            shrink = plan_shrink(
                schedule.shrink,
                tr.after,
                resolution=tr.resolution,
                samples_per_epoch=n,
                epochs=st.epochs,
                batch_size=schedule.train.batch_size,
                seed=schedule.seed * 1000 + i,
                in_chans=ds.in_chans,
                image_hw=ds.image_shape,
            )
        plans.append(
            StagePlan(
                stage=i,
                classes=st.classes,
                arch=st.arch,
                steps=tr.steps,
                spec_before=tr.before,
                spec=tr.after,
                resolution=tr.resolution,
                samples_per_epoch=n,
                epochs=st.epochs,
                plateau=st.patience is not None,
                macs_per_sample=macs_per_sample(model, input_shape(ds.in_chans, tr.resolution, ds.image_shape)),
                params=count_params(model),
                shrink=shrink,
                bounded=any(j <= i for j in unknown),
            )
        )
    return plans


def planned_M(plans: list[StagePlan]) -> int | None:
    """The schedule's M, or None when a stage trains to a plateau."""
    ms = [p.M for p in plans]
    return None if None in ms else sum(ms)


def plan_table(plans: list[StagePlan], schedule: Schedule | None = None) -> str:
    """The plan as text: one line per stage, then the total and, given the ``schedule``, how its
    run is trained where that is not the paper's protocol (``growsearch run --dry-run``)."""
    lines = [
        f"{'stage':>5}  {'classes':>7}  {'arch':<14} {'px':>3}  {'epochs':>6}  {'samples/ep':>10}  {'MACs/sample':>11}  {'M':>10}  ops"
    ]
    for p in plans:
        ep = f"≤{p.epochs}" if p.plateau else str(p.epochs)
        m = f"≤{p.M_max:.3e}" if p.M is None else f"{p.M:.3e}"
        lines.append(
            f"{p.stage:>5}  {p.classes:>7}  {p.arch:<14} {p.resolution if p.resolution is not None else '-':>3}  {ep:>6}  {p.samples_per_epoch:>10}  {p.macs_per_sample:>11}  {m:>10}  {', '.join(p.ops)}"
        )
    total = planned_M(plans)
    why = (
        "a prune_threshold decides the widths after training"
        if any(p.bounded for p in plans)
        else "a plateau stage stops early"
    )
    lines.append(
        f"total M {total:.4e}" if total is not None else f"total M ≤ {sum(p.M_max for p in plans):.4e} ({why})"
    )
    if schedule is not None:
        lines += _recipe_lines(schedule)
    return "\n".join(lines)


def _recipe_lines(schedule: Schedule) -> list[str]:
    t, out = schedule.train, []
    if t.one_schedule:
        rewarm = (
            f", re-warmed over {t.rewarm_epochs:g} epoch(s) to {t.rewarm_peak:g}x after each growth"
            if t.rewarm_epochs
            else ", no restart at growth"
        )
        out.append(f"LR: one warm-up and one decay to zero over the whole run{rewarm}")
    if t.carry_optimizer:
        out.append("optimizer: momentum carried across every growth (new parameters start at zero)")
    if t.new_param_lr != 1:
        out.append(f"new parameters: LR x{t.new_param_lr:g} in the stage after the growth that created them")
    if schedule.data_growth == "samples":
        out.append("data: nested shares of every class, " + " → ".join(f"{st.fraction:g}" for st in schedule.stages))
    elif schedule.data_growth == "none":
        out.append("data: all of it in every stage")
    if schedule.shrink is not None:
        sh = schedule.shrink
        out.append(
            f"shrink: subnets {', '.join(filter(None, [', '.join(sh.depths), ', '.join(f'{w:g}' for w in sh.widths)]))} from {sh.start:g} of the last stage, "
            f"LR ramp {sh.ramp_epochs:g} epoch(s), smallest + {sh.subnets_per_step} random per step, distilled at T={sh.temperature:g}; "
            f"BatchNorm recalibrated on {sh.recal_images} images"
        )
    ssgd = [(i, r) for i, r in enumerate((st.recipe(t) for st in schedule.stages), 1) if r.optimizer == "ssgd"]
    if ssgd:
        out.append(
            "optimizer: SSGD (sparsity-promoting, "
            + f"{t.ssgd_structure}, eps {t.ssgd_eps:g}) in "
            + ", ".join(f"stage {i} (strength {r.ssgd_strength:g})" for i, r in ssgd)
        )
    own_decay = [(i, st.weight_decay) for i, st in enumerate(schedule.stages, 1) if st.weight_decay is not None]
    if own_decay:
        out.append(f"weight decay: {t.weight_decay:g}, but " + ", ".join(f"{d:g} in stage {i}" for i, d in own_decay))
    return out
