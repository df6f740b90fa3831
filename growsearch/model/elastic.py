"""Elastic subnets of one trained network: once-for-all's depth and width dimensions.

A :class:`Subnet` names a depth rung of the network's family (``vgg13``: keep the first layers
of every block, as many as VGG13 has; ``full``: every layer) and a width fraction (keep that
share of every layer's channels, the most important ones). Importance is the L1 norm of the
weights that write a channel, frozen when shrinking starts (:func:`channel_ranks`), as
once-for-all sorts channels before its width phase. Three ways to use a subnet, all reading the
same ranks:

- :func:`active`: the weight-shared network computes the subnet in place (skipped layers are
  identities, dropped channels are zeroed after their BatchNorm, BatchNorm's running statistics
  are left alone); what the shrink phase trains.
- :func:`cut`: a standalone network of the subnet's :class:`~growsearch.model.arch.ArchSpec`
  holding the kept weights; what is evaluated and deployed.
- :func:`recalibrate`: fresh BatchNorm statistics for a subnet, from a sample of training images
  (once-for-all's "BN calibration"; only running statistics change).

Net2Net deepening appends layers to the end of each block (``growsearch.model.net2net.deepen``),
so a depth rung of a grown network is the earlier stage's network, grown further. Written here
because timm has no elastic layers and torch-pruning removes channels for good: a weight-shared
subnet must keep every weight in place.

Example:
    >>> from growsearch.model.arch import create_model
    >>> model, spec = create_model("vgg19@0.25", num_classes=10)
    >>> subnet_spec(spec, Subnet("vgg11", 0.5)).widths
    ((8,), (16,), (32, 32), (64, 64), (64, 64))
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Iterable, Iterator

import torch
from torch import nn

from growsearch.model.arch import ArchError, ArchSpec, build_model, get_family
from growsearch.model.net2net import layer_renames

# torch's public batch-norm classes (their shared base, _BatchNorm, is private)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

__all__ = [
    "Subnet",
    "active",
    "channel_ranks",
    "check_elastic",
    "cut",
    "kept_channels",
    "menu",
    "recalibrate",
    "subnet_spec",
]

FULL = "full"  # the depth rung of every layer the network has


@dataclass(frozen=True, order=True)
class Subnet:
    """One member of a network's family: a depth rung and a width fraction."""

    depth: str  # a depth rung of the family (e.g. "vgg13"), or "full"
    width: float  # share of every layer's channels kept, in (0, 1]

    @property
    def name(self) -> str:
        return f"{self.depth}:{self.width:g}"

    @classmethod
    def parse(cls, text: str) -> "Subnet":
        """``"vgg13:0.5"`` (or ``"full:1"``, ``"vgg13"`` for width 1)."""
        depth, _, width = str(text).strip().lower().partition(":")
        try:
            w = float(width) if width else 1.0
        except ValueError:
            raise ArchError(f"subnet {text!r}: expected DEPTH:WIDTH such as vgg13:0.5 or full:1") from None
        if not 0 < w <= 1:
            raise ArchError(f"subnet {text!r}: the width fraction must be in (0, 1], got {w:g}")
        return cls(depth or FULL, w)


def _rung_depths(spec: ArchSpec, depth: str) -> tuple[int, ...]:
    fam = get_family(spec.family)
    if depth == FULL:
        return spec.depths
    if depth not in fam.depths:
        raise ArchError(f"depth rung {depth!r} is not a {fam.name} depth: use one of {', '.join(fam.depths)} (or full)")
    rung = fam.depths[depth]
    if len(rung) != len(spec.depths) or any(r > d for r, d in zip(rung, spec.depths)):
        raise ArchError(
            f"depth rung {depth} {list(rung)} is deeper than the network {list(spec.depths)} in some block: pick a shallower rung"
        )
    for b, (r, blk) in enumerate(zip(rung, spec.widths)):
        if any(w != blk[r - 1] for w in blk[r:]):  # a skipped layer is an identity: it must keep its input's width
            raise ArchError(
                f"depth rung {depth} skips {fam.layer_name(b, r)}, whose block changes width after it {list(blk)}: pick a rung that keeps it"
            )
    return rung


def _kept(width: int, frac: float, divisor: int) -> int:
    return width if frac == 1 else min(width, max(divisor, int(round(width * frac / divisor)) * divisor))


def check_elastic(spec: ArchSpec, depths: Iterable[str], widths: Iterable[float]) -> None:
    """``ArchError`` naming the dimension unless ``spec``'s family can shrink along every one asked
    for, every depth rung fits the network and every width fraction is in (0, 1]."""
    fam = get_family(spec.family)
    depths, widths = list(depths), list(widths)
    for dim, asked in (("depth", any(d != FULL for d in depths)), ("width", any(w != 1 for w in widths))):
        if asked and dim not in fam.elastic:
            raise ArchError(
                f"family {fam.name} cannot be made elastic in {dim} (it offers {', '.join(fam.elastic) or 'none'}): drop the {dim}s of the shrink block"
            )
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 1:
            raise ArchError(f"shrink width {w!r} is not a fraction in (0, 1]: e.g. widths [0.5, 1]")
    for d in depths:
        _rung_depths(spec, d)


def subnet_spec(spec: ArchSpec, sub: Subnet) -> ArchSpec:
    """The architecture of ``sub`` cut from a network of ``spec``: the rung's leading layers of
    every block, each keeping ``sub.width`` of its channels (at least the family's divisor)."""
    fam = get_family(spec.family)
    depths = _rung_depths(spec, sub.depth)
    widths = tuple(
        tuple(_kept(w, sub.width, fam.width_divisor) for w in blk[:d]) for blk, d in zip(spec.widths, depths)
    )
    base = spec.name.split("@")[0] if sub.depth == FULL else sub.depth
    mult = spec.width_mult * sub.width
    return replace(spec, widths=widths, width_mult=mult, name=f"{base}@{mult:g}")


def menu(spec: ArchSpec, depths: Iterable[str], widths: Iterable[float]) -> list[Subnet]:
    """Every depth × width subnet asked for, and the full network, each architecture once,
    from the smallest to the full network (by depth, then width)."""
    check_elastic(spec, depths, widths)
    subs = {Subnet(d, float(w)) for d in [*depths, FULL] for w in [*widths, 1.0]}
    out: dict[ArchSpec, Subnet] = {}
    for s in sorted(subs, key=lambda s: (sum(_rung_depths(spec, s.depth)), s.depth != FULL, s.width)):
        out.setdefault(replace(subnet_spec(spec, s), name=""), s)  # a rung as deep as the network is the full depth
    return list(out.values())


def _writers(model: nn.Module) -> dict[str, list[str]]:
    """Channel group → the module paths that write it (dim 0), from the family's channel graph."""
    spec = model.arch_spec
    out: dict[str, list[str]] = {}
    for prefix, group, _ in get_family(spec.family).channel_graph(spec).edges:
        if group is not None:
            out.setdefault(group, []).append(prefix)
    return out


@torch.no_grad()
def channel_ranks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Per channel group, its channels from the most to the least important: the L1 norm of every
    weight tensor that writes the channel (convolutions' filters, BatchNorm's γ), summed."""
    ranks = {}
    for group, paths in _writers(model).items():
        weights = [model.get_submodule(p).weight.detach().float() for p in paths]
        score = sum(w.abs().reshape(w.shape[0], -1).sum(1) for w in weights)
        ranks[group] = torch.argsort(score, descending=True, stable=True).cpu()
    return ranks


def kept_channels(spec: ArchSpec, sub: ArchSpec, ranks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Channel group → the indices (ascending) of the channels ``sub`` keeps: its width's most important."""
    fam = get_family(spec.family)
    full = fam.channel_graph(spec).group_widths
    return {g: torch.sort(ranks[g][:k]).values for g, k in fam.channel_graph(sub).group_widths.items() if k < full[g]}


def _skipped(spec: ArchSpec, sub: ArchSpec) -> list[str]:
    prefixes = get_family(spec.family).layer_prefixes(spec)
    return [p for b, blk in enumerate(prefixes) for layer in blk[sub.depths[b] :] for p in layer]


@contextmanager
def active(model: nn.Module, sub: ArchSpec, ranks: dict[str, torch.Tensor]) -> Iterator[nn.Module]:
    """Within the block, ``model`` computes the subnet ``sub`` in place, weights shared: the layers
    past each block's rung are identities (they keep their input's width, and the ReLU after them
    is the identity on the non-negative map before), and every dropped channel is zeroed after
    the module that writes it last (BatchNorm where the family has one), so the next layer reads
    only kept channels. BatchNorm's running statistics do not move (momentum 0): they stay the
    full network's, and a subnet gets its own by :func:`recalibrate`."""
    spec = model.arch_spec
    fam = get_family(spec.family)
    handles, swapped, moments = [], [], []
    try:
        writers, widths = _writers(model), fam.channel_graph(spec).group_widths
        for group, idx in kept_channels(spec, sub, ranks).items():
            mods = [model.get_submodule(p) for p in writers[group]]
            last = [m for m in mods if isinstance(m, fam.unit_norms)] or mods
            mask = torch.zeros(widths[group], device=next(model.parameters()).device)
            mask[idx.to(mask.device)] = 1
            for m in last:
                handles.append(m.register_forward_hook(_masker(mask)))
        for path in _skipped(spec, sub):
            parent, _, name = path.rpartition(".")
            holder = model.get_submodule(parent) if parent else model
            swapped.append((holder, name, getattr(holder, name)))
            setattr(holder, name, nn.Identity())
        for m in model.modules():
            if isinstance(m, _BATCH_NORMS):
                moments.append((m, m.momentum, "momentum"))
                m.momentum = 0.0
            elif (
                getattr(m, "inplace", False) is True
            ):  # an in-place ReLU after a skipped layer would overwrite the tensor before it, which backward reads
                moments.append((m, True, "inplace"))
                m.inplace = False
        yield model
    finally:
        for h in handles:
            h.remove()
        for holder, name, mod in reversed(swapped):
            setattr(holder, name, mod)
        for m, value, attr in moments:
            setattr(m, attr, value)


def _masker(mask: torch.Tensor):
    def hook(module: nn.Module, args, out: torch.Tensor) -> torch.Tensor:
        return out * mask.view(1, -1, *([1] * (out.dim() - 2))).to(out.dtype)

    return hook


def cut(model: nn.Module, sub: ArchSpec, ranks: dict[str, torch.Tensor]) -> nn.Module:
    """A standalone network of ``sub`` holding the weights ``model`` shares with it (the kept
    layers, and in each the kept channels), on ``model``'s device, in eval mode. Cutting the full
    network's own spec returns an exact copy."""
    spec = model.arch_spec
    graph = get_family(spec.family).channel_graph(
        sub
    )  # what each kept tensor reads in the subnet: past a skipped layer, the last kept one's channels
    keep = kept_channels(spec, sub, ranks)
    renames = layer_renames(spec, sub)
    skipped = _skipped(spec, sub)
    state = {}
    for key, t in model.state_dict().items():
        prefix = key.rpartition(".")[0]
        if any(prefix == p or prefix.startswith(p + ".") for p in skipped):
            continue
        head = next((p for p in renames if prefix == p or prefix.startswith(p + ".")), None)
        if head is not None:
            key, prefix = renames[head] + key[len(head) :], renames[head] + prefix[len(head) :]
        edge = next((e for e in graph.edges if prefix == e[0]), None)
        t = t.detach()
        if edge is not None and t.dim() >= 1:
            if edge[1] in keep:
                t = t.index_select(0, keep[edge[1]].to(t.device))
            if edge[2] in keep and t.dim() >= 2:
                t = t.index_select(1, keep[edge[2]].to(t.device))
        state[key] = t.clone()
    new = build_model(sub)
    new.load_state_dict(state)
    ref = next(model.parameters())
    return new.to(device=ref.device, dtype=ref.dtype).eval()


@torch.no_grad()
def recalibrate(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Fresh BatchNorm running statistics: the exact mean and variance over ``batches`` (inputs,
    already normalised), every other tensor unchanged; leaves ``model`` in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, _BATCH_NORMS)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over every batch given
    model.train()
    for xb in batches:
        model(xb)
    for m, mom in zip(norms, saved):
        m.momentum = mom
    return model.eval()
