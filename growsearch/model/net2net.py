"""Function-preserving Net2Net growth: deeper, wider, more classes.

Each transform takes a model that carries its :class:`~growsearch.model.arch.ArchSpec` (as
built by ``build_model``) and returns a *new* model; the input is left untouched. The growth
ops (:mod:`growsearch.model.ops`) plan when each transform applies and in which order:
deepen (identity layers at the current widths), widen (Net2WiderNet over the channel graph),
then add classifier rows; :func:`growsearch.model.ops.grow` runs them.

Example:
    >>> import torch
    >>> from growsearch.model.arch import create_model
    >>> from growsearch.model.net2net import deepen
    >>> small, _ = create_model("vgg11@0.25", num_classes=5, in_chans=1)
    >>> deeper = deepen(small.eval(), (1, 2, 2, 2, 2)).eval()
    >>> x = torch.rand(2, 1, 32, 32)
    >>> torch.allclose(small(x), deeper(x), atol=1e-4)
    True
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn

from growsearch.model.arch import ArchError, ArchSpec, _scaled, build_model, get_family, parse_arch

__all__ = [
    "copy_sources",
    "deepen",
    "widen",
    "expand_classes",
    "layer_renames",
    "plan",
    "rescale_kernel",
    "rescale_stem",
    "spec_of",
    "stem_kernel_at",
]


def spec_of(model: nn.Module) -> ArchSpec:
    """The architecture spec a growsearch-built model carries; a one-line error for any other model."""
    spec = getattr(model, "arch_spec", None)
    if not isinstance(spec, ArchSpec):
        raise ArchError("model has no arch_spec: build it with growsearch.build_model or create_model")
    return spec


def _rebuilt(model: nn.Module, spec: ArchSpec, state: dict[str, torch.Tensor]) -> nn.Module:
    """A model of ``spec`` holding ``state``, on the old model's device/dtype and in its mode."""
    ref = next(model.parameters())
    new = build_model(spec)
    new.load_state_dict(state)
    new.to(device=ref.device, dtype=ref.dtype)
    new.train(model.training)
    return new


def _deepened(spec: ArchSpec, depths: tuple[int, ...]) -> ArchSpec:
    fam = get_family(spec.family)
    if len(depths) != len(spec.depths):
        raise ArchError(f"{spec.family} has {len(spec.depths)} blocks, asked for {len(depths)}")
    for b, (old, new) in enumerate(zip(spec.depths, depths)):
        if new < old:
            raise ArchError(f"deepen would remove {fam.layer_name(b, new)}: growth never removes layers")
    return replace(spec, widths=tuple(blk + (blk[-1],) * (d - len(blk)) for blk, d in zip(spec.widths, depths)))


def copy_sources(spec: ArchSpec, depths: tuple[int, ...]) -> dict[tuple[int, int], int | None]:
    """For every layer that deepening ``spec`` to ``depths`` inserts, (block, layer) → the trained
    layer of its block that ``deepen(..., init="copy")`` copies: the nearest one before it whose
    parameters and buffers have the same shapes; None where no trained layer has (that layer
    starts as an identity). Shapes are read from a network built on the meta device (no memory).

    Example:
        >>> from growsearch.model.arch import spec_for
        >>> copy_sources(spec_for("vgg11@0.25", 10, 3), (1, 1, 2, 3, 2))
        {(3, 2): 1}
    """
    new_spec = _deepened(spec, depths)
    fam = get_family(spec.family)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in build_model(new_spec).state_dict().items()}
    prefixes = fam.layer_prefixes(new_spec)

    def layer_shapes(b: int, l: int) -> list:
        return [[(k[len(p) :], sh) for k, sh in shapes.items() if k.startswith(p + ".")] for p in prefixes[b][l]]

    return {
        (b, l): next((j for j in range(old - 1, -1, -1) if layer_shapes(b, j) == layer_shapes(b, l)), None)
        for b, (old, new) in enumerate(zip(spec.depths, depths))
        for l in range(old, new)
    }


def layer_renames(spec: ArchSpec, other: ArchSpec) -> dict[str, str]:
    """Module path in a network of ``spec`` → the same layer's path in one of ``other``, for the
    layers both have (a layer keeps its (block, layer) position; flat indices after it shift)."""
    fam = get_family(spec.family)
    out = {}
    for blk_a, blk_b in zip(fam.layer_prefixes(spec), fam.layer_prefixes(other)):
        for la, lb in zip(blk_a, blk_b):
            out.update(zip(la, lb))
    return out


def deepen(model: nn.Module, depths: tuple[int, ...], *, init: str = "identity") -> nn.Module:
    """Append layers to each block until it has ``depths[b]`` layers.

    New layers take the width of the last layer of their block. With ``init="identity"``
    (Net2DeeperNet) VGG gets identity conv+BN (exact in eval mode) and ResNet basic blocks with a
    zeroed last BN (exact in both modes). With ``init="copy"`` each new layer is a copy of the
    nearest trained layer of its block with the same shapes (:func:`copy_sources`; not
    function-preserving), and an identity where there is none.
    """
    spec = spec_of(model)
    fam = get_family(spec.family)
    new_spec = _deepened(spec, depths)

    rename = layer_renames(spec, new_spec)  # every old tensor to its new name
    fresh = build_model(new_spec)
    state = fresh.state_dict()
    for key, t in model.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        head = next((p for p in rename if prefix == p or prefix.startswith(p + ".")), None)
        new_key = key if head is None else rename[head] + prefix[len(head) :] + "." + leaf
        state[new_key] = t.detach().clone()
    fresh.load_state_dict(state)
    sources = copy_sources(spec, depths) if init == "copy" else {}
    prefixes = fam.layer_prefixes(new_spec)
    for b, (old, new) in enumerate(zip(spec.depths, depths)):
        for l in range(old, new):
            src = sources.get((b, l))
            if src is None:
                fam.make_identity(fresh, new_spec, b, l)
            else:  # every module of the layer (conv, BN and its statistics) takes the source's values
                for p_src, p_new in zip(prefixes[b][src], prefixes[b][l]):
                    fresh.get_submodule(p_new).load_state_dict(fresh.get_submodule(p_src).state_dict())
    return _rebuilt(model, new_spec, fresh.state_dict())


def _mapping(old: int, new: int, generator: torch.Generator) -> torch.Tensor:
    """Net2WiderNet's index map: keep every old unit, then copy ``new - old`` random ones."""
    extra = torch.randint(0, old, (new - old,), generator=generator)
    return torch.cat([torch.arange(old), extra])


def widen(
    model: nn.Module,
    widths: tuple[tuple[int, ...], ...],
    *,
    generator: torch.Generator | None = None,
    noise: float = 0.0,
) -> nn.Module:
    """Net2WiderNet to ``widths`` (same depths). Exact in eval and train mode when ``noise`` is 0.

    Every channel group of the family's channel graph gets one index map; a tensor that
    writes the group copies rows (conv filters, BN statistics and affine parameters), a
    tensor that reads it copies columns divided by how often each source unit was copied.

    Args:
        model: a model built by growsearch (it carries ``arch_spec``).
        widths: target widths, one tuple per block, each entry ≥ the current one.
        generator: picks which units are replicated (seed it for reproducible growth).
        noise: relative std of symmetry-breaking noise added to replicated incoming weights;
            0 (the default) keeps the function exactly.
    """
    spec = spec_of(model)
    fam = get_family(spec.family)
    widths = tuple(tuple(int(w) for w in b) for b in widths)
    if tuple(len(b) for b in widths) != spec.depths:
        raise ArchError(f"widen keeps depths {spec.depths}; deepen first")
    for b, (ob, nb) in enumerate(zip(spec.widths, widths)):
        for l, (o, n) in enumerate(zip(ob, nb)):
            if n < o:
                raise ArchError(
                    f"{fam.layer_name(b, l)} would shrink from {o} to {n} channels: growth never narrows a layer"
                )
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    new_spec = replace(spec, widths=widths)
    old_graph, new_graph = fam.channel_graph(spec), fam.channel_graph(new_spec)
    maps = {g: _mapping(w, new_graph.group_widths[g], gen) for g, w in old_graph.group_widths.items()}
    counts = {g: torch.bincount(m).to(torch.float32) for g, m in maps.items()}

    # Growth is arithmetic on CPU copies (the index maps and the generator live there);
    # _rebuilt moves the result back to the model's device.
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    out = dict(state)
    for prefix, g_out, g_in in old_graph.edges:
        for key in [k for k in state if k.startswith(prefix + ".") and "." not in k[len(prefix) + 1 :]]:
            t = state[key]
            if key.endswith("num_batches_tracked") or t.dim() == 0:
                continue
            if g_out is not None:
                t = t[maps[g_out]]
            if g_in is not None and t.dim() >= 2:
                idx = maps[g_in]
                scale = counts[g_in][idx].to(t.dtype).view(1, -1, *([1] * (t.dim() - 2)))
                t = t[:, idx] / scale
                if noise > 0:
                    replicated = torch.arange(len(idx)) >= state[key].shape[1]
                    jitter = torch.randn(t.shape, generator=gen, dtype=t.dtype) * noise * t.abs().mean()
                    t = t + jitter * replicated.view(1, -1, *([1] * (t.dim() - 2))).to(t.dtype)
            out[key] = t.contiguous()
    return _rebuilt(model, new_spec, out)


def expand_classes(model: nn.Module, num_classes: int, *, generator: torch.Generator | None = None) -> nn.Module:
    """Add classifier rows for new classes; old rows are kept exactly.

    New rows use ``nn.Linear``'s default initialisation, U(-1/sqrt(d), 1/sqrt(d)). The paper
    found that Net2Net-widening the softmax layer instead hurts convergence.
    """
    spec = spec_of(model)
    if num_classes < spec.num_classes:
        raise ArchError(f"cannot drop classes: model has {spec.num_classes}, asked for {num_classes}")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    fc = get_family(spec.family).classifier
    state = dict(model.state_dict())
    w, b = state[f"{fc}.weight"], state[f"{fc}.bias"]
    extra, d = num_classes - spec.num_classes, w.shape[1]
    bound = 1.0 / d**0.5
    new_w = (torch.rand((extra, d), generator=gen) * 2 - 1) * bound
    new_b = (torch.rand((extra,), generator=gen) * 2 - 1) * bound
    state[f"{fc}.weight"] = torch.cat([w, new_w.to(w)])
    state[f"{fc}.bias"] = torch.cat([b, new_b.to(b)])
    new_spec = replace(spec, num_classes=num_classes)
    return _rebuilt(model, new_spec, state)


def plan(spec: ArchSpec, to: str | ArchSpec, num_classes: int | None = None) -> ArchSpec:
    """The spec that growing ``spec`` into ``to`` produces, or an ``ArchError`` naming the problem.

    With an arch name, depths come from the name and widths keep what the current model has
    (pruned widths stay pruned), scaled by the ratio of width multipliers; new layers take
    the width of their block's last layer. With an explicit spec, it is checked and returned.
    """
    fam = get_family(spec.family)
    num_classes = spec.num_classes if num_classes is None else int(num_classes)
    if num_classes < spec.num_classes:
        raise ArchError(f"class count would drop from {spec.num_classes} to {num_classes}: class subsets must grow")
    if isinstance(to, ArchSpec):
        target = replace(to, num_classes=num_classes)
    else:
        tfam, base, mult = parse_arch(to)
        if tfam.name != spec.family:
            raise ArchError(f"cannot grow a {spec.family} into {to!r} ({tfam.name}): stay within one family")
        if mult < spec.width_mult:
            raise ArchError(
                f"{to!r} is narrower than the current {spec.name or spec.family} "
                f"(width x{mult:g} < x{spec.width_mult:g}): architectures must not shrink"
            )
        ratio = mult / spec.width_mult
        widths = []
        for blk, d in zip(spec.widths, tfam.depths[base]):
            scaled = tuple(_scaled(w, ratio, fam.width_divisor) if ratio != 1 else w for w in blk)
            widths.append(scaled[:d] + (scaled[-1],) * max(0, d - len(scaled)))
        target = replace(spec, widths=tuple(widths), num_classes=num_classes, width_mult=mult, name=to)
    if target.family != spec.family or len(target.depths) != len(spec.depths):
        raise ArchError(f"cannot grow {spec.name or spec.family} into {target.name or target.family}: different family")
    if target.in_chans != spec.in_chans:
        raise ArchError(f"input channels differ ({spec.in_chans} vs {target.in_chans})")
    removed = [
        fam.layer_name(b, l)
        for b, (d_old, d_new) in enumerate(zip(spec.depths, target.depths))
        for l in range(d_new, d_old)
    ]
    if removed:
        removed = ", ".join(removed)
        raise ArchError(
            f"growing {spec.name or spec.family} into {target.name or target.family} would remove {removed}: "
            "architectures must not shrink"
        )
    for b, (ob, nb) in enumerate(zip(spec.widths, target.widths)):
        for l, n in enumerate(nb):
            o = ob[l] if l < len(ob) else ob[-1]
            if n < o:
                raise ArchError(
                    f"{fam.layer_name(b, l)} would shrink from {o} to {n} channels in "
                    f"{target.name or target.family}: architectures must not shrink"
                )
    return target


# --- kernel rescaling for lower-resolution stages -------------------------------------------
# Porto Buarque de Gusmão et al.'s spatial scaling property: a k x k kernel sampled on the
# full-resolution grid acts on an image downscaled by s like a kernel with the same continuous
# shape squeezed by s. No library ships this resampling, so it is written here: one linear map
# per axis, applied as W' = A W A^T.


def stem_kernel_at(native_kernel: int, scale: float) -> int:
    """Kernel side for a stem whose native kernel is ``native_kernel`` on images scaled by ``scale``:
    the smallest odd side that still holds every tap's squeezed offset (7 at 0.5 → 5; 3 stays 3)."""
    if native_kernel <= 3:
        return native_kernel
    return 2 * math.ceil(scale * (native_kernel // 2) - 1e-9) + 1


def _resample_1d(k_in: int, k_out: int, t: float) -> torch.Tensor:
    """(k_out, k_in) matrix moving kernel taps from a grid to one ``t`` times as fine.

    Shrinking (t ≤ 1): the tap at offset p lands at t·p and is split between its two nearest
    output taps (bilinear splatting). Enlarging (t > 1): the tap, a cell t output taps wide,
    is spread over the output taps within one input tap of it, by the linear-interpolation
    weights (1 − |q/t − p|). Either way each column is normalised, so every tap's weight is
    moved, never lost: the kernel's sum, hence its response to a constant input, is exact.
    """
    p = torch.arange(k_in, dtype=torch.float64) - k_in // 2
    q = torch.arange(k_out, dtype=torch.float64) - k_out // 2
    a = (1 - (q[:, None] - t * p[None, :]).abs() / max(t, 1.0)).clamp_min(0)
    # a tap whose offset lands beyond the outer output tap goes to the outer tap
    edge = a.sum(0) == 0
    a[:, edge] = (q[:, None] == q[-1] * torch.sign(p[edge])[None, :]).double()
    return a / a.sum(0, keepdim=True)


def rescale_kernel(weight: torch.Tensor, k_out: int, t: float) -> torch.Tensor:
    """Resample conv ``weight`` (O, I, k, k) to (O, I, k_out, k_out) for images ``t`` times as
    fine as the ones it was trained on (t = new resolution / old resolution)."""
    a = _resample_1d(weight.shape[-1], k_out, t).to(weight)
    return torch.einsum("jk,oikl,ml->oijm", a, weight, a)


def rescale_stem(model: nn.Module, kernel: int, t: float) -> nn.Module:
    """The same network with its stem kernel resampled to ``kernel`` x ``kernel`` for inputs
    ``t`` times the resolution it was trained at (see :func:`rescale_kernel`)."""
    spec = spec_of(model)
    fam = get_family(spec.family)
    if fam.stem_kernel <= 3:
        raise ArchError(
            f"{spec.family} has a {fam.stem_kernel}x{fam.stem_kernel} stem: there is no large kernel to rescale"
        )
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    w = fam.stem_param
    state[w] = rescale_kernel(state[w].double(), kernel, t).to(state[w].dtype)
    return _rebuilt(model, replace(spec, stem_kernel=kernel), state)
