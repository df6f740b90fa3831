"""L1 filter pruning before growth (a ratio, or a threshold on channel scores), and the zero mask of Net2Net identity kernels.

torch-pruning does the graph work (its dependency graph keeps BatchNorm and the next layer
consistent); growsearch only chooses the ratio and the moment. The importance is classic
per-filter L1 (Li et al.): ``MagnitudeImportance(p=1, normalizer=None, group_reduction="first")``
scores each filter by the L1 norm of the conv that produces it, not torch-pruning's default
group-normalised score. The classifier is never pruned (its input shrinks with the last conv).

Example:
    >>> from growsearch.model.arch import create_model
    >>> from growsearch.model.prune import prune
    >>> model, _ = create_model("vgg11@0.25", num_classes=5, in_chans=1)
    >>> prune(model, 0.5, input_shape=(1, 32, 32)).arch_spec.widths[0]
    (8,)
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn

from growsearch.model.arch import _FAMILIES, ArchError, ArchSpec, build_model, get_family

__all__ = [
    "channel_groups",
    "channel_norms",
    "channel_scores",
    "prune",
    "prune_below",
    "pruned_widths",
    "threshold_widths",
    "replay_pruning",
    "check_prunable",
    "identity_masks",
    "identity_masks_supported",
    "apply_masks",
    "nonzero_macs_per_sample",
]


def check_prunable(spec: ArchSpec) -> None:
    if not get_family(spec.family).prunable:
        raise ArchError(
            f"pruning supports {', '.join(_families_with('prunable'))} backbones; {spec.family} is not supported yet: set prune_ratio to 0 (and drop prune_threshold)"
        )


def _families_with(capability: str) -> list[str]:
    return sorted(name for name, fam in _FAMILIES.items() if getattr(fam, capability))


def pruned_widths(spec: ArchSpec, ratio: float) -> tuple[tuple[int, ...], ...]:
    """Widths after pruning ``ratio`` of every conv's filters (torch-pruning keeps int(c × (1 − ratio)))."""
    check_prunable(spec)
    fam = get_family(spec.family)
    out = []
    for b, blk in enumerate(spec.widths):
        kept = []
        for l, w in enumerate(blk):
            keep = int(w * (1 - ratio))
            if keep < 1:
                raise ArchError(
                    f"prune_ratio {ratio:g} would leave {fam.layer_name(b, l)} ({w} filters) with none: use a smaller ratio or a wider arch"
                )
            kept.append(keep)
        out.append(tuple(kept))
    return tuple(out)


def prune(
    model: nn.Module, ratio: float, *, input_shape: tuple[int, int, int], record: list | None = None
) -> nn.Module:
    """A copy of ``model`` with ``ratio`` of each conv's filters removed (lowest L1 norm first).

    Returns a freshly built model of the pruned spec holding the pruned weights, so it saves,
    loads and grows like any other growsearch model. ``record``: a list that receives
    torch-pruning's history of which filters went, for :func:`replay_pruning`.
    """
    import torch_pruning as tp

    spec: ArchSpec = model.arch_spec
    expect = pruned_widths(spec, ratio)
    if ratio == 0:
        return model
    ref = next(model.parameters())
    work = copy.deepcopy(model).cpu().float().eval()
    fam = get_family(spec.family)
    importance = tp.importance.MagnitudeImportance(p=1, normalizer=None, group_reduction="first")
    pruner = tp.pruner.BasePruner(
        work,
        example_inputs=torch.zeros(1, *input_shape),
        importance=importance,
        pruning_ratio=ratio,
        ignored_layers=[work.get_submodule(fam.classifier)],
        global_pruning=False,
    )
    pruner.step()
    if record is not None:
        record.extend(pruner.DG.pruning_history())
    return _rebuilt_pruned(model, work, spec, expect, ref)


def channel_groups(model: nn.Module) -> dict[str, list[torch.Tensor]]:
    """For each channel group of the model's family graph, the parameters that write it (dim 0
    of each: conv weights and biases, BatchNorm γ and β): SSGD's filter groups, and what a
    threshold reads."""
    spec = model.arch_spec
    params = dict(model.named_parameters())
    groups: dict[str, list[torch.Tensor]] = {}
    for prefix, out, _ in get_family(spec.family).channel_graph(spec).edges:
        if out is not None:
            groups.setdefault(out, []).extend(
                params[f"{prefix}.{k}"] for k in ("weight", "bias") if f"{prefix}.{k}" in params
            )
    return groups


@torch.no_grad()
def channel_norms(members: "list[torch.Tensor]") -> torch.Tensor:
    """Each output channel's mean square, relative to its tensor's mean over channels, averaged
    over the tensors that write the channel: 1 for a typical channel, 0 for one whose filter,
    bias and BatchNorm γ and β are all zero. Their mean over a layer's channels is 1, so the
    largest is at least 1."""
    rel = []
    for t in members:
        per = t.detach().float().reshape(t.shape[0], -1).square().mean(dim=1)
        rel.append(per / per.mean().clamp_min(torch.finfo(per.dtype).tiny))
    return torch.stack(rel).mean(dim=0)


def channel_scores(model: nn.Module) -> dict[str, torch.Tensor]:
    """:func:`channel_norms` of every channel group: what ``prune_threshold`` compares."""
    return {g: channel_norms(members) for g, members in channel_groups(model).items()}


def _kept_by_threshold(model: nn.Module, threshold: float) -> dict[str, torch.Tensor]:
    """Per conv layer's channel group, the channels whose score reaches ``threshold`` (at least the
    best one: a threshold ≤ 1 keeps it anyway, as scores average 1 over a layer)."""
    out = {}
    for g, score in channel_scores(model).items():
        keep = torch.nonzero(score >= threshold).flatten()
        out[g] = keep if len(keep) else score.argmax().view(1)
    return out


def threshold_widths(model: nn.Module, threshold: float) -> tuple[tuple[int, ...], ...]:
    """The widths ``prune_below(model, threshold)`` leaves: per layer, its channels whose score
    (:func:`channel_scores`) reaches ``threshold``. Data-free: the weights alone decide."""
    check_prunable(model.arch_spec)
    return _widths_kept(model.arch_spec, _kept_by_threshold(model, threshold))


def _widths_kept(spec: ArchSpec, keep: dict[str, torch.Tensor]) -> tuple[tuple[int, ...], ...]:
    """Per block and layer, how many channels ``keep`` (channel group → kept indices) leaves."""
    fam = get_family(spec.family)
    group_of = {prefix: out for prefix, out, _ in fam.channel_graph(spec).edges}
    return tuple(tuple(len(keep[group_of[layer[0]]]) for layer in blk) for blk in fam.layer_prefixes(spec))


def prune_below(
    model: nn.Module, threshold: float, *, input_shape: tuple[int, int, int], record: list | None = None
) -> nn.Module:
    """A copy of ``model`` without the filters whose score (:func:`channel_scores`: the filter,
    bias and BatchNorm γ and β together, relative to their layer) is below ``threshold``: what
    SSGD's filter variant drove to zero. torch-pruning's dependency graph removes exactly those
    channels (``get_pruning_group`` with their indices), keeping BatchNorm and the next layer
    consistent. ``record``: as :func:`prune`."""
    import torch_pruning as tp

    spec: ArchSpec = model.arch_spec
    check_prunable(spec)
    keep = _kept_by_threshold(model, threshold)  # the scores are read once: the widths follow from the same choice
    expect = _widths_kept(spec, keep)
    ref = next(model.parameters())
    work = copy.deepcopy(model).cpu().float().eval()
    fam = get_family(spec.family)
    graph = tp.DependencyGraph().build_dependency(work, example_inputs=torch.zeros(1, *input_shape))
    writers = {}
    for prefix, out, _ in fam.channel_graph(spec).edges:
        if out is not None and isinstance(work.get_submodule(prefix), nn.Conv2d):
            writers.setdefault(out, prefix)
    for g, conv in writers.items():
        width = work.get_submodule(conv).out_channels
        drop = sorted(set(range(width)) - set(keep[g].tolist()))
        if drop:
            graph.get_pruning_group(work.get_submodule(conv), tp.prune_conv_out_channels, idxs=drop).prune()
    if record is not None:
        record.extend(graph.pruning_history())
    return _rebuilt_pruned(model, work, spec, expect, ref)


def _rebuilt_pruned(model: nn.Module, work: nn.Module, spec: ArchSpec, expect: tuple, ref: torch.Tensor) -> nn.Module:
    """The pruned copy ``work`` as a freshly built model of its spec, on ``model``'s device, dtype and mode."""
    fam = get_family(spec.family)
    widths = tuple(
        tuple(work.get_submodule(layer[0]).out_channels for layer in blk) for blk in fam.layer_prefixes(spec)
    )
    if widths != expect:  # torch-pruning's rounding changed: fail loudly rather than mis-count
        raise RuntimeError(f"torch-pruning kept widths {widths}, expected {expect}")
    new = build_model(replace(spec, widths=widths))
    new.load_state_dict(work.state_dict())
    return new.to(device=ref.device, dtype=ref.dtype).train(model.training)


def replay_pruning(model: nn.Module, history: list, *, spec: ArchSpec, input_shape: tuple[int, int, int]) -> nn.Module:
    """``model`` pruned exactly as a recorded :func:`prune` pruned a network of the same shape
    (the same filters, by torch-pruning's ``load_pruning_history``), rebuilt as ``spec``: how the
    optimizer state of a pruned network follows its weights."""
    import torch_pruning as tp

    ref = next(model.parameters())
    work = copy.deepcopy(model).cpu().float().eval()
    graph = tp.DependencyGraph().build_dependency(work, example_inputs=torch.zeros(1, *input_shape))
    graph.load_pruning_history(history)
    new = build_model(spec)
    new.load_state_dict(work.state_dict())
    return new.to(device=ref.device, dtype=ref.dtype).train(model.training)


def identity_masks_supported(spec: ArchSpec) -> None:
    if not get_family(spec.family).zero_mask:
        raise ArchError(
            f"zero_mask applies to the identity kernels Net2Net inserts into {', '.join(_families_with('zero_mask'))}; {spec.family} inserts none"
        )


def identity_masks(model: nn.Module, layers: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
    """Non-zero patterns of the conv weights at (block, layer) positions, by parameter name.

    Taken right after growth, these are the taps of the inserted identity kernels (after any
    widening, the replicated centre taps); everything else in those kernels is zero.
    """
    spec: ArchSpec = model.arch_spec
    identity_masks_supported(spec)
    fam = get_family(spec.family)
    prefixes = fam.layer_prefixes(spec)
    params = dict(model.named_parameters())
    return {f"{prefixes[b][l][0]}.weight": params[f"{prefixes[b][l][0]}.weight"].detach() != 0 for b, l in layers}


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero every masked-out weight (called after each optimizer step)."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        params[name].mul_(mask)


@torch.no_grad()
def nonzero_macs_per_sample(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """MACs a zero-skipping accelerator performs: output positions × non-zero weights, per layer.

    Hand-written with forward hooks because no counter we know of counts non-zero weights;
    with a dense model it equals ``cost.macs_per_sample`` (tested, grouped and depthwise
    convolutions too: a grouped conv's weight holds only its group's input channels, so each
    output position costs its non-zero weights all the same).
    """
    total = 0
    hooks = []

    def conv_hook(m: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += int(out.shape[-1] * out.shape[-2]) * int(torch.count_nonzero(m.weight))

    def linear_hook(m: nn.Linear, _inp, _out) -> None:
        nonlocal total
        total += int(torch.count_nonzero(m.weight))

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    ref = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros((1, *input_shape), device=ref.device, dtype=ref.dtype))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return total
