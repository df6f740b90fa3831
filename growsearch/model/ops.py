"""Growth ops: a stage's transition is a list of op objects, planned on specs, applied to networks.

Each op has two halves that must agree. ``plan(spec, stage)`` says what the op does to the
network's :class:`~growsearch.model.arch.ArchSpec` in this stage (``None``: nothing to do here);
``apply(model, step)`` does it to the trained network. The planner (``growsearch.plan.planner``) walks
the ``plan`` halves to know every stage's network and cost before training; ``run_schedule``
and ``net2net.grow`` walk the ``apply`` halves, and :func:`apply_transition` checks the network
that comes out is the planned one. Adding an op is one subclass of :class:`Op` and one
:func:`register_op` call naming its place in the order (here, or in your own code).

Example:
    >>> from growsearch.model.arch import create_model
    >>> model, _ = create_model("vgg11@0.125", num_classes=2, in_chans=1)
    >>> steps, after = plan_transition(GROW, model.arch_spec, StageView("vgg13@0.25", classes=4))
    >>> [s.label for s in steps]
    ['deepen', 'widen', 'add classes 2→4']
    >>> apply_transition(model, steps, after, Run()).arch_spec == after
    True
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import nn

from growsearch._extensions import caller as _caller
from growsearch._extensions import forget as _forget
from growsearch._extensions import record as _record
from growsearch.model.arch import ArchError, ArchSpec, Family, build_model, get_family, parse_arch, spec_for
from growsearch.model.cost import count_params, input_shape, macs_per_sample
from growsearch.model.net2net import copy_sources, deepen, expand_classes, rescale_stem, spec_of, stem_kernel_at, widen
from growsearch.model.net2net import plan as grown_spec
from growsearch.model.prune import (
    check_prunable,
    identity_masks,
    identity_masks_supported,
    prune,
    prune_below,
    pruned_widths,
    replay_pruning,
)

__all__ = [
    "StageView",
    "Run",
    "Step",
    "Op",
    "Build",
    "Prune",
    "Deepen",
    "Widen",
    "AddClasses",
    "ZeroMask",
    "RescaleStem",
    "ChangeResolution",
    "FIRST",
    "GROW",
    "plan_transition",
    "apply_transition",
    "first_ops",
    "grow",
    "register_op",
    "transition_ops",
    "unregister_op",
    "as_network",
    "tensors_of",
]


@dataclass(frozen=True)
class StageView:
    """What one stage's ops read: the network to grow into and where the stage trains."""

    arch: str | ArchSpec  # the stage's arch name (or, for ``grow``, an explicit target spec)
    classes: int  # classifier rows after the transition
    index: int = 1  # 1-based stage number
    prune_ratio: float = 0.0  # share of each conv's filters pruned before growth
    prune_threshold: float | None = (
        None  # instead: prune the filters scoring below this (growsearch.model.prune.channel_scores)
    )
    prune_widths: tuple[tuple[int, ...], ...] | None = (
        None  # prune_threshold's widths, once the trained network says them (None: not yet known)
    )
    zero_mask: bool = False  # keep the zero taps of the identity layers this stage inserts
    resolution: int | None = None  # the stage's input side (None: the dataset's, unknown without data)
    prev_resolution: int | None = None  # the previous stage's input side
    native: int | None = None  # the dataset's image side; None: stem kernels are not rescaled
    image_hw: tuple[int, int] | None = None  # the dataset's (height, width): the input of a stage at the native shape
    rescale_kernels: bool = True  # TrainConfig.rescale_kernels
    in_chans: int = 3  # image channels (what stage 1 builds)
    init_spec: ArchSpec | None = None  # stage 1 builds this exact spec instead of its arch name's
    deepen_init: str = "identity"  # new layers: "identity" (Net2DeeperNet) or "copy" (of the trained layer before them)

    def stem_kernel(self, fam: Family) -> int:
        """The family's stem kernel side at this stage's resolution (its own when not rescaled)."""
        if fam.stem_kernel > 3 and self.rescale_kernels and self.native is not None and self.resolution is not None:
            return stem_kernel_at(fam.stem_kernel, self.resolution / self.native)
        return fam.stem_kernel

    def trained_shape(self, in_chans: int) -> tuple:
        """(C, H, W) the previous stage trained at: where a prune before this stage's growth is
        measured and replayed."""
        return input_shape(in_chans, self.prev_resolution, self.image_hw)

    def named(self, spec: ArchSpec) -> ArchSpec:
        """``spec`` labelled with the stage's arch: its name and the width multiplier later growth scales from."""
        if isinstance(self.arch, ArchSpec):
            return replace(spec, name=self.arch.name, width_mult=self.arch.width_mult)
        return replace(spec, name=self.arch, width_mult=parse_arch(self.arch)[2])


@dataclass
class Run:
    """What applying a transition needs beyond specs; one per stage transition."""

    # Seeds which units Net2WiderNet replicates and then the new classifier rows: one generator
    # shared by widen and add classes, in that order, so growth is reproducible from one seed.
    generator: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))
    noise: float = 0.0  # symmetry-breaking noise for widening (0 keeps the function exactly)
    # the pruned network's accuracies on the previous stage's data (run_schedule scores them)
    score: Callable[[nn.Module], dict] | None = None
    # what the ops of one stage hand on, each field written by one op:
    prune: dict | None = None  # Prune: ratio, sizes and accuracies before and after (result.json's "prune")
    inserted: list[tuple[int, int]] = field(
        default_factory=list
    )  # Deepen: (block, layer) of the identity layers it inserted
    masked_before: list[tuple[int, int]] = field(
        default_factory=list
    )  # the identity layers earlier stages' zero masks kept
    masked: list[tuple[int, int]] = field(
        default_factory=list
    )  # ZeroMask: the layers whose zeros this stage keeps (else none)
    masks: dict[str, torch.Tensor] | None = (
        None  # ZeroMask: their non-zero patterns, re-applied after every optimizer step
    )
    pruning: list = field(
        default_factory=list
    )  # Prune: torch-pruning's history of which filters went (replayed on carried state)
    # Per-parameter state that follows the weights through the ops (see Op.carry): networks shaped
    # like the model whose parameters hold, e.g., SGD momentum. apply_transition maps each one
    # op by op; an entry becomes None after an op that cannot map it.
    carried: dict[str, nn.Module | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One op of one stage's transition: planned on specs; ``run`` is bound while it is applied."""

    op: "Op"
    stage: StageView
    before: ArchSpec | None  # None: nothing exists yet (stage 1's build)
    after: ArchSpec
    run: Run | None = None

    @property
    def label(self) -> str:
        return self.op.label(self)


class Op:
    """One growth op. ``plan`` on specs and ``apply`` on networks must produce the same spec."""

    name = ""

    def plan(self, spec: ArchSpec | None, stage: StageView) -> ArchSpec | None:
        """The spec after this op, or None when the op has nothing to do in this stage."""
        raise NotImplementedError

    def apply(self, model: nn.Module | None, step: Step) -> nn.Module:
        """The network after this op (a new model; the input is left untouched)."""
        raise NotImplementedError

    def label(self, step: Step) -> str:
        """How the plan names this step (``growsearch run --dry-run``)."""
        return self.name

    def carry(self, state: nn.Module, step: Step) -> nn.Module | None:
        """Per-parameter state mapped as :meth:`apply` maps the weights. ``state`` is a network of
        the shape before this op whose parameters hold the state (SGD momentum); the result has
        the shape after it: what the op keeps keeps its state, what it creates from nothing
        starts at zero. ``step.run`` is the run ``apply`` just wrote (its generator rewound to
        where ``apply`` started, so random choices repeat). The default keeps the state of an op
        that leaves the network's shape alone and returns None (the state is dropped and starts
        from zero) for any other: override it in an op that reshapes the network."""
        return state if step.after == step.before else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Build(Op):
    """Stage 1's network, built from its arch name (or ``init_spec``), its large stem kernel
    already at the stage's resolution."""

    name = "build"

    def plan(self, spec, stage):
        if spec is not None:
            return None
        fam = parse_arch(stage.arch)[0]
        new = (
            replace(stage.init_spec, num_classes=stage.classes)
            if stage.init_spec is not None
            else spec_for(stage.arch, stage.classes, stage.in_chans)
        )
        kernel = stage.stem_kernel(fam)
        return replace(new, stem_kernel=kernel) if kernel != fam.stem_kernel else new

    def apply(self, model, step):
        return build_model(step.after)

    def label(self, step):
        k = step.after.stem_kernel
        return f"build with a {k}x{k} stem kernel" if k else "build"


class Prune(Op):
    """L1 filter pruning of the previous stage's network before it grows (torch-pruning)."""

    name = "prune"

    def plan(self, spec, stage):
        if stage.prune_threshold is not None:
            # the widths follow the trained weights: before training, the unpruned widths stand in
            # (an upper bound of every later cost; the planner marks those stages' M unknown)
            check_prunable(spec)
            return replace(spec, widths=stage.prune_widths or spec.widths)
        return replace(spec, widths=pruned_widths(spec, stage.prune_ratio)) if stage.prune_ratio > 0 else None

    def apply(self, model, step):
        ratio, thr = step.stage.prune_ratio, step.stage.prune_threshold
        shape = step.stage.trained_shape(step.before.in_chans)
        before = (count_params(model), macs_per_sample(model, shape))
        if thr is not None:
            model = prune_below(model, thr, input_shape=shape, record=step.run.pruning)
            ratio = 1 - sum(map(sum, model.arch_spec.widths)) / sum(
                map(sum, step.before.widths)
            )  # the share of filters the threshold removed
        else:
            model = prune(model, ratio, input_shape=shape, record=step.run.pruning)
        scores = step.run.score(model) if step.run.score is not None else {}
        step.run.prune = {
            **({"threshold": thr} if thr is not None else {}),
            "ratio": ratio,
            "params_before": before[0],
            "params_after": count_params(model),
            "macs_before": before[1],
            "macs_after": macs_per_sample(model, shape),
            **scores,
            "widths_after": [list(b) for b in model.arch_spec.widths],
        }
        return model

    def label(self, step):
        if step.stage.prune_threshold is not None:
            return f"prune below {step.stage.prune_threshold:g}" + (
                "" if step.stage.prune_widths else " (widths known after training)"
            )
        return f"prune R={step.stage.prune_ratio:g}"

    def carry(self, state, step):  # the kept filters keep their state: the same filters go
        return replay_pruning(
            state, step.run.pruning, spec=step.after, input_shape=step.stage.trained_shape(step.before.in_chans)
        )


class Deepen(Op):
    """Identity layers appended to each block up to the stage arch's depths (new layers take
    their block's last width)."""

    name = "deepen"

    def plan(self, spec, stage):
        target = grown_spec(spec, stage.arch, stage.classes)  # one family, nothing shrinks, classes grow
        if stage.zero_mask:
            if target.depths == spec.depths:
                raise ArchError(
                    f"zero_mask is set but {spec.name} → {stage.arch} inserts no identity layers: deepen in this stage or set zero_mask to false"
                )
            identity_masks_supported(target)
        if target.depths == spec.depths:
            return None
        return replace(spec, widths=tuple(b + (b[-1],) * (len(t) - len(b)) for b, t in zip(spec.widths, target.widths)))

    def apply(self, model, step):
        before, after = step.before.depths, step.after.depths
        # the (block, layer) positions of the identity layers, for the zero mask
        step.run.inserted.extend((b, l) for b, (o, d) in enumerate(zip(before, after)) for l in range(o, d))
        return deepen(model, after, init=step.stage.deepen_init)

    def carry(self, state, step):  # old layers keep theirs; the new layers start at zero
        state = deepen(state, step.after.depths)
        prefixes = get_family(step.after.family).layer_prefixes(step.after)
        new = tuple(p + "." for b, l in step.run.inserted for p in prefixes[b][l])
        with torch.no_grad():
            for name, p in state.named_parameters():
                if name.startswith(new):
                    p.zero_()
        return state

    def label(self, step):
        if step.stage.deepen_init != "copy":
            return self.name
        copied, n = self.copies(step)
        if not copied:
            return f"deepen (copy: no trained layer has the {n} new layers' shapes, so identity)"
        rest = f", {n - copied} identity" if copied < n else ""
        return f"deepen by copy ({copied} of {n} new layers copied from trained ones{rest}; not function-preserving)"

    @staticmethod
    def copies(step) -> tuple[int, int]:
        """(new layers ``deepen_init: copy`` fills from a trained layer, new layers) at this step."""
        sources = copy_sources(step.before, step.after.depths)
        return sum(s is not None for s in sources.values()), len(sources)


class Widen(Op):
    """Net2WiderNet to the stage arch's widths (scaled by the ratio of width multipliers)."""

    name = "widen"

    def plan(self, spec, stage):
        widths = grown_spec(spec, stage.arch, spec.num_classes).widths
        return None if widths == spec.widths else replace(spec, widths=widths)

    def apply(self, model, step):
        return widen(model, step.after.widths, generator=step.run.generator, noise=step.run.noise)

    def carry(self, state, step):  # the same index maps: a copied unit takes its source's state, split like its weights
        return widen(state, step.after.widths, generator=step.run.generator)


class AddClasses(Op):
    """New classifier rows for the stage's new classes; old rows are kept exactly."""

    name = "add classes"

    def plan(self, spec, stage):
        if stage.classes < spec.num_classes:
            raise ArchError(
                f"class count would drop from {spec.num_classes} to {stage.classes}: class subsets must grow"
            )
        return replace(spec, num_classes=stage.classes) if stage.classes != spec.num_classes else None

    def apply(self, model, step):
        return expand_classes(model, step.after.num_classes, generator=step.run.generator)

    def label(self, step):
        return f"add classes {step.before.num_classes}→{step.after.num_classes}"

    def carry(self, state, step):  # old rows keep theirs; new rows start at zero
        state = expand_classes(state, step.after.num_classes)
        fc = get_family(step.after.family).classifier
        with torch.no_grad():
            for leaf in ("weight", "bias"):
                state.get_parameter(f"{fc}.{leaf}")[step.before.num_classes :] = 0
        return state


class RescaleStem(Op):
    """A large stem kernel resampled to the new resolution's scale (see net2net.rescale_kernel)."""

    name = "rescale stem"

    def plan(self, spec, stage):
        fam = get_family(spec.family)
        if (
            fam.stem_kernel <= 3
            or not stage.rescale_kernels
            or stage.native is None
            or stage.resolution == stage.prev_resolution
        ):
            return None
        return replace(spec, stem_kernel=stage.stem_kernel(fam))

    def apply(self, model, step):
        return rescale_stem(model, step.after.stem_kernel, step.stage.resolution / step.stage.prev_resolution)

    def label(self, step):
        return f"rescale stem to {step.after.stem_kernel}x{step.after.stem_kernel}"

    def carry(self, state, step):  # the same linear resampling of the kernel
        return self.apply(state, step)


class ChangeResolution(Op):
    """Train on larger images from this stage on. The network is unchanged (the backbones pool
    globally); the epoch loop resizes the images to the stage's side."""

    name = "resolution"

    def plan(self, spec, stage):
        return spec if stage.resolution is not None and stage.resolution != stage.prev_resolution else None

    def apply(self, model, step):
        return model

    def label(self, step):
        return f"resolution {step.stage.prev_resolution}→{step.stage.resolution} px"


class ZeroMask(Op):
    """Keeps the zero taps of the identity kernels Net2Net inserted (this stage's and those of
    earlier stages that kept theirs) at zero while the stage trains: it takes their non-zero
    patterns right after growth (``Run.masks``, which the epoch loop re-applies after every
    optimizer step). A stage without ``zero_mask`` keeps none, and the chain starts again."""

    name = "zero mask"

    def plan(self, spec, stage):
        return (
            spec if stage.zero_mask else None
        )  # whether the stage deepens and the family can mask: Deepen.plan checks

    def apply(self, model, step):
        step.run.masked = step.run.masked_before + step.run.inserted
        step.run.masks = identity_masks(model, step.run.masked)
        return model


FIRST: tuple[Op, ...] = (Build(),)  # stage 1
GROW: tuple[Op, ...] = (Deepen(), Widen(), AddClasses())  # grow(): function-preserving growth, in this order

# Every later stage's ops, in the order they apply: the shipped ones, then any register_op places.
_TRANSITION: list[Op] = [Prune(), *GROW, ZeroMask(), RescaleStem(), ChangeResolution()]


def register_op(op: Op, *, after: str | None = None, before: str | None = None) -> Op:
    """Add ``op`` to the transition of every stage after the first, at its place in the order:
    right after (or before) the op named ``after`` (``before``), else last. An op of the same
    ``name`` is replaced where it stands. The planner and ``run_schedule`` then walk it like the
    shipped ones (``plan`` on specs, ``apply`` on the network, checked to agree), the prefix
    cache keys on it, and the Ray workers a search starts learn it too
    (:mod:`growsearch._extensions`).

    Example:
        >>> class Noop(Op):
        ...     name = "noop"
        ...     def plan(self, spec, stage):
        ...         return None
        >>> _ = register_op(Noop(), after="widen")
        >>> names = [op.name for op in transition_ops()]
        >>> ", ".join(names[2:5])
        'widen, noop, add classes'
        >>> _ = unregister_op("noop")
    """
    if not isinstance(op, Op) or not isinstance(op.name, str) or not op.name:
        raise ArchError(f"register_op takes an instance of a growsearch.model.ops.Op subclass with a name, got {op!r}")
    if after is not None and before is not None:
        raise ArchError("register_op: give after= or before=, not both")
    names = [o.name for o in _TRANSITION]
    if op.name in (after, before):
        raise ArchError(f"register_op: {op.name!r} cannot be placed next to itself")
    anchor = after if after is not None else before
    if anchor is not None and anchor not in names:
        raise ArchError(f"register_op: no op {anchor!r} to place {op.name!r} next to; the order is {', '.join(names)}")
    _record(register_op, op, after=after, before=before, by=_caller())
    if op.name in names:
        _TRANSITION.pop(names.index(op.name))
        names.remove(op.name)
    at = len(_TRANSITION) if anchor is None else names.index(anchor) + (1 if after is not None else 0)
    _TRANSITION.insert(at, op)
    return op


def unregister_op(name: str) -> Op:
    """Remove the op named ``name`` from the transition (a shipped op too); returns it."""
    for i, op in enumerate(_TRANSITION):
        if op.name == name:
            _forget(register_op, op)
            return _TRANSITION.pop(i)
    raise ArchError(f"no op {name!r}; the order is {', '.join(o.name for o in _TRANSITION)}")


def transition_ops() -> tuple[Op, ...]:
    """Every later stage's ops, in the order they apply."""
    return tuple(_TRANSITION)


def first_ops() -> tuple[Op, ...]:
    """Stage 1's ops: build the network."""
    return FIRST


def plan_transition(ops: tuple[Op, ...], spec: ArchSpec | None, stage: StageView) -> tuple[tuple[Step, ...], ArchSpec]:
    """The steps of ``ops`` that act in ``stage``, and the spec the stage trains.

    A grown network is named after the stage's arch (its name and width multiplier, which the
    next stage's widening scales from). Raises ``ArchError`` when an op cannot plan.
    """
    steps, new = [], spec
    for op in ops:
        after = op.plan(new, stage)
        if after is not None:
            steps.append(Step(op, stage, new, after))
            new = after
    if new is None:
        raise ArchError(f"no op in {ops} builds a network for stage {stage.index}")
    return tuple(steps), (stage.named(new) if spec is not None else new)


def apply_transition(model: nn.Module | None, steps: tuple[Step, ...], after: ArchSpec, run: Run) -> nn.Module:
    """Apply planned ``steps`` to ``model`` and check the result is the planned ``after``; every
    network in ``run.carried`` is mapped alongside, op by op (:meth:`Op.carry`).

    Returns a new model (the input is left untouched, even when there is nothing to apply).
    """
    out = model
    for step in steps:
        rewound = run.generator.get_state()
        new = step.op.apply(out, replace(step, run=run))
        for name, state in run.carried.items():
            if state is not None:  # the op's random choices replayed from where apply made them
                again = replace(run, generator=torch.Generator().set_state(rewound))
                run.carried[name] = step.op.carry(state, replace(step, run=again))
        out = new
    if out is model:
        out = copy.deepcopy(model)
    out.arch_spec = replace(out.arch_spec, name=after.name, width_mult=after.width_mult)
    if out.arch_spec != after:  # the two halves of an op disagree: a growsearch bug, not a user error
        raise RuntimeError(f"the applied ops built {out.arch_spec}, not the planned {after}")
    return out


def as_network(model: nn.Module, tensors: dict[str, torch.Tensor] | float) -> nn.Module:
    """A copy of ``model`` whose parameters hold ``tensors`` (by parameter name; missing ones
    zero) or, given a number, that value everywhere: per-parameter state in the shape the ops
    carry (``Run.carried``)."""
    net = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if isinstance(tensors, (int, float)):
                p.fill_(tensors)
            elif name in tensors:
                p.copy_(tensors[name])
            else:
                p.zero_()
    return net


def tensors_of(net: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters of a carried network, by name (what :func:`as_network` took)."""
    return {name: p.detach().clone() for name, p in net.named_parameters()}


def grow(
    model: nn.Module,
    to: str | ArchSpec,
    num_classes: int | None = None,
    *,
    seed: int = 0,
    noise: float = 0.0,
) -> nn.Module:
    """Grow ``model`` into ``to`` with function-preserving ops, then add classes.

    Args:
        model: a model built by growsearch.
        to: an arch name (``"vgg16"``, ``"vgg19@0.5"``) or an explicit ``ArchSpec``.
        num_classes: classifier rows after growth (default: unchanged).
        seed: seeds which units Net2WiderNet replicates and the new classifier rows.
        noise: symmetry-breaking noise for widening (0 keeps the function exactly).

    Returns:
        A new model whose ``arch_spec`` is the planned target (its stem kernel is the model's).

    Example:
        >>> import torch
        >>> from growsearch.model.arch import create_model
        >>> small, _ = create_model("vgg11@0.25", num_classes=5, in_chans=1)
        >>> big = grow(small.eval(), to="vgg16@0.5", num_classes=7).eval()
        >>> x = torch.rand(2, 1, 32, 32)
        >>> torch.allclose(small(x), big(x)[:, :5], atol=1e-4)
        True
    """
    spec = spec_of(model)
    classes = spec.num_classes if num_classes is None else int(num_classes)
    steps, after = plan_transition(GROW, spec, StageView(to, classes=classes))
    return apply_transition(model, steps, after, Run(generator=torch.Generator().manual_seed(seed), noise=noise))
