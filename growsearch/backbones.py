"""Growable backbone families built from timm, each model described by an :class:`ArchSpec`.

A family (``vgg``, ``resnet``) knows three things: its named depths (``vgg11`` … ``vgg19``,
``resnet10`` … ``resnet34``), how to build a timm model from a spec, and its *channel graph*:
which parameter tensor reads and writes which group of channels. Growth (``grow.py``) works
on specs and channel graphs only, so it never needs to know a family's module names.

Example:
    >>> from growsearch.backbones import create_model, list_archs
    >>> model, spec = create_model("vgg11@0.25", num_classes=5, in_chans=1)
    >>> spec.depths, spec.widths[0]
    ((1, 1, 2, 2, 2), (16,))
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Callable

import torch
from torch import nn

from growsearch.errors import GrowsearchError

__all__ = [
    "ArchSpec",
    "ArchError",
    "ChannelGraph",
    "Family",
    "build_model",
    "create_model",
    "get_family",
    "list_archs",
    "parse_arch",
    "register_family",
    "spec_for",
]


class ArchError(GrowsearchError, ValueError):
    """An architecture name or spec that growsearch cannot build or grow into."""


@dataclass(frozen=True)
class ArchSpec:
    """What layers exist and how wide they are; enough to rebuild the model exactly.

    ``widths[b][l]`` is the output width of layer ``l`` in block ``b``. For VGG a block is
    the run of 3x3 convs between two max-pools; for ResNet a block is a stage and each entry
    is one basic block (its residual width).
    """

    family: str  # registry key of the family: "vgg" or "resnet"
    widths: tuple[tuple[int, ...], ...]  # per block, per layer output channels
    num_classes: int  # rows of the classifier
    in_chans: int = 3  # image channels (1 for digits)
    width_mult: float = 1.0  # nominal multiplier the widths were planned at; growth scales by ratios of it
    name: str = ""  # the arch name this spec was last planned from, e.g. "vgg19@0.25" (informational)
    stem_kernel: int = 0  # side of the stem conv's kernel when rescaled for a lower resolution (0: the family's own)

    @property
    def depths(self) -> tuple[int, ...]:
        """Layers per block."""
        return tuple(len(b) for b in self.widths)

    @property
    def num_layers(self) -> int:
        return sum(self.depths)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (lists, ints, floats, strings) for checkpoints and result files."""
        d = asdict(self)
        d["widths"] = [list(b) for b in self.widths]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ArchSpec":
        return cls(
            family=str(d["family"]),
            widths=tuple(tuple(int(w) for w in b) for b in d["widths"]),
            num_classes=int(d["num_classes"]),
            in_chans=int(d.get("in_chans", 3)),
            width_mult=float(d.get("width_mult", 1.0)),
            name=str(d.get("name", "")),
            stem_kernel=int(d.get("stem_kernel", 0)),
        )


@dataclass(frozen=True)
class ChannelGraph:
    """Which channel group each parameter tensor writes (dim 0) and reads (dim 1).

    ``edges`` holds ``(param_prefix, out_group, in_group)``; a group of ``None`` means the
    tensor does not touch a growable dimension there (the image input, the class rows).
    """

    edges: tuple[tuple[str, str | None, str | None], ...]
    group_widths: dict[str, int]


@dataclass(frozen=True)
class Family:
    """A registered backbone family."""

    name: str
    depths: dict[str, tuple[int, ...]]  # arch name -> layers per block
    base_widths: tuple[int, ...]  # per-block widths at width multiplier 1.0
    build: Callable[[ArchSpec], nn.Module]
    channel_graph: Callable[[ArchSpec], ChannelGraph]
    layer_name: Callable[[int, int], str]  # (block, layer) -> a name users recognise
    layer_prefixes: Callable[[ArchSpec], list[list[tuple[str, ...]]]]  # per block, per layer: its module paths
    make_identity: Callable[[nn.Module, ArchSpec, int, int], None]  # turn new layer (block, layer) into an identity
    classifier: str  # state-dict prefix of the final Linear
    min_input: int  # smallest input side (pixels) the family accepts
    width_divisor: int = 1  # every planned width is a multiple of this
    stem_kernel: int = 3  # the stem conv's kernel side at native resolution (> 3: rescaled for lower resolutions)
    stem_param: str = "conv1.weight"  # state-dict name of the stem conv's weight (what rescale_stem resamples)
    prunable: bool = False  # L1 filter pruning (torch-pruning) keeps this family's graph consistent
    zero_mask: bool = False  # deepening inserts identity kernels whose zero taps the zero mask can keep


_FAMILIES: dict[str, Family] = {}
_ARCH_RE = re.compile(r"^(?P<base>[a-z]+\d+(?:_[a-z0-9]+)?)(?:@(?P<mult>\d*\.?\d+))?$")


def register_family(family: Family) -> Family:
    """Make ``family``'s arch names (its ``depths`` keys, optionally ``@WIDTH``) usable in schedules,
    spaces and frontiers. Its callables build a model from an ``ArchSpec`` and describe its
    channel graph and layers, which is all growth, pruning (``prunable``) and the zero mask
    (``zero_mask``) need. A variant of a shipped family is one ``dataclasses.replace`` away.

    Example:
        >>> from dataclasses import replace
        >>> vgg = get_family("vgg")
        >>> _ = register_family(replace(vgg, name="slimvgg", depths={"slimvgg6": (1, 1, 1, 1, 2)}, base_widths=(16, 32, 64, 64, 64)))
        >>> spec_for("slimvgg6@0.5", 10).widths
        ((8,), (16,), (32,), (32,), (32, 32))
    """
    taken = {base: f.name for f in _FAMILIES.values() if f.name != family.name for base in f.depths}
    clash = sorted(b for b in family.depths if b in taken)
    if clash:
        raise ArchError(f"family {family.name!r}: arch name(s) {', '.join(clash)} already belong to {taken[clash[0]]!r}: pick other names")
    if any(not _ARCH_RE.match(b) or "@" in b for b in family.depths):
        raise ArchError(f"family {family.name!r}: arch names are letters then digits (e.g. 'mynet8'), got {sorted(family.depths)}")
    _FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ArchError(f"unknown backbone family {name!r}; known: {', '.join(sorted(_FAMILIES))}") from None


def list_archs() -> list[str]:
    """Every arch name that ``create_model`` accepts (append ``@MULT`` for a width multiplier)."""
    return [a for f in _FAMILIES.values() for a in f.depths]


def parse_arch(arch: str) -> tuple[Family, str, float]:
    """Split ``"vgg19@0.25"`` into (family, ``"vgg19"``, 0.25).

    Raises:
        ArchError: unknown name or a multiplier that is not positive.
    """
    m = _ARCH_RE.match(arch.strip().lower())
    base = m.group("base") if m else None
    for fam in _FAMILIES.values():
        if base in fam.depths:
            mult = float(m.group("mult") or 1.0)
            if mult <= 0:
                raise ArchError(f"arch {arch!r}: width multiplier must be > 0")
            return fam, base, mult
    raise ArchError(f"unknown arch {arch!r}; known: {', '.join(list_archs())} (optionally with @WIDTH, e.g. vgg19@0.25)")


def _scaled(width: int, mult: float, divisor: int) -> int:
    return max(divisor, int(round(width * mult / divisor)) * divisor)


def spec_for(arch: str, num_classes: int, in_chans: int = 3) -> ArchSpec:
    """The spec of a fresh (unpruned, unwidened) model named ``arch``."""
    fam, base, mult = parse_arch(arch)
    widths = tuple(
        (_scaled(w, mult, fam.width_divisor),) * d for w, d in zip(fam.base_widths, fam.depths[base])
    )
    return ArchSpec(fam.name, widths, int(num_classes), int(in_chans), mult, arch)


def build_model(spec: ArchSpec) -> nn.Module:
    """A freshly initialised model with exactly the layers and widths of ``spec``.

    The spec travels with the model as ``model.arch_spec`` so growth can be planned from it.
    """
    model = get_family(spec.family).build(spec)
    model.arch_spec = spec
    return model


def _module(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path)


def create_model(arch: str, num_classes: int, in_chans: int = 3) -> tuple[nn.Module, ArchSpec]:
    """Build ``arch`` (e.g. ``"resnet18@0.5"``) from scratch; returns the model and its spec."""
    spec = spec_for(arch, num_classes, in_chans)
    return build_model(spec), spec


# --- VGG -----------------------------------------------------------------------------------
# timm's VGG builds `features` from a cfg list; we keep that and swap its ImageNet head
# (a 7x7 ConvMlp to 4096 features, ~100M parameters) for the CIFAR-style head the paper used:
# global average pooling and one Linear.


def _timm_vgg_depths() -> dict[str, tuple[int, ...]]:
    from timm.models.vgg import cfgs

    out = {}
    for name, cfg in cfgs.items():
        depths, run = [], 0
        for v in cfg:
            if v == "M":
                depths.append(run)
                run = 0
            else:
                run += 1
        out[name] = tuple(depths)
    return out


def _build_vgg(spec: ArchSpec) -> nn.Module:
    from timm.layers import ClassifierHead
    from timm.models.vgg import VGG

    cfg: list = []
    for block in spec.widths:
        cfg += list(block) + ["M"]
    # mlp_ratio=1/4096 makes the throw-away ImageNet pre_logits tiny before we replace it.
    model = VGG(cfg, num_classes=spec.num_classes, in_chans=spec.in_chans, norm_layer=nn.BatchNorm2d, mlp_ratio=1 / 4096)
    model.pre_logits = nn.Identity()
    model.head = ClassifierHead(spec.widths[-1][-1], spec.num_classes, pool_type="avg")
    # ceil_mode: a map already down to 1x1 passes the remaining pools unchanged, so VGG runs at
    # 8-16 px (lower-resolution stages) with the same parameters; sizes that stay even (32, 64,
    # ...) pool exactly as before.
    for m in model.features:
        if isinstance(m, nn.MaxPool2d):
            m.ceil_mode = True
    model.num_features = model.head_hidden_size = spec.widths[-1][-1]
    return model


def _vgg_prefixes(spec: ArchSpec) -> list[list[tuple[str, str]]]:
    """(conv, bn) state-dict prefixes per block and layer, mirroring timm's `features` order."""
    out, idx = [], 0
    for block in spec.widths:
        layers = []
        for _ in block:
            layers.append((f"features.{idx}", f"features.{idx + 1}"))
            idx += 3  # conv, bn, relu
        idx += 1  # max-pool
        out.append(layers)
    return out


def _vgg_identity(model: nn.Module, spec: ArchSpec, b: int, l: int) -> None:
    # Net2DeeperNet for conv+BN+ReLU: a 3x3 kernel with centre tap 1 and zero surround copies
    # each channel; BN with mean 0, var 1, weight sqrt(1+eps), bias 0 is the identity in eval
    # mode; ReLU is the identity on the previous layer's non-negative output.
    conv_path, bn_path = _vgg_prefixes(spec)[b][l]
    conv, bn = _module(model, conv_path), _module(model, bn_path)
    with torch.no_grad():
        conv.weight.zero_()
        idx = torch.arange(conv.out_channels)
        conv.weight[idx, idx, 1, 1] = 1.0
        conv.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
        bn.weight.fill_((1.0 + bn.eps) ** 0.5)
        bn.bias.zero_()


def _vgg_graph(spec: ArchSpec) -> ChannelGraph:
    edges, widths, prev = [], {}, None
    for b, layers in enumerate(_vgg_prefixes(spec)):
        for l, (conv, bn) in enumerate(layers):
            g = f"b{b}.l{l}"
            widths[g] = spec.widths[b][l]
            edges += [(conv, g, prev), (bn, g, None)]
            prev = g
    edges.append(("head.fc", None, prev))
    return ChannelGraph(tuple(edges), widths)


register_family(
    Family(
        name="vgg",
        depths={k: v for k, v in _timm_vgg_depths().items() if k in ("vgg11", "vgg13", "vgg16", "vgg19")},
        base_widths=(64, 128, 256, 512, 512),
        build=_build_vgg,
        channel_graph=_vgg_graph,
        layer_name=lambda b, l: f"block{b + 1}.conv{l + 1}",
        layer_prefixes=_vgg_prefixes,
        make_identity=_vgg_identity,
        classifier="head.fc",
        min_input=8,  # below 8 px the map is 1x1 before the third of five max-pools
        stem_param="features.0.weight",
        prunable=True,
        zero_mask=True,  # inserted 3x3 identity convs: centre tap 1, the rest 0
    )
)


# --- ResNet (basic blocks, CIFAR stem) ----------------------------------------------------
# timm's ResNet with BasicBlock stages; the 7x7/2 stem and max-pool are replaced by one 3x3
# stride-1 conv (the CIFAR stem). We ask timm for its 'deep' stem of width c0/2 only so that
# it sizes `bn1` and layer1's input to c0 (its plain stem hard-codes 64), then swap the conv.


def _build_resnet(spec: ArchSpec) -> nn.Module:
    from timm.models.resnet import BasicBlock, ResNet

    for s, block in enumerate(spec.widths):
        if len(set(block)) != 1:
            raise ArchError(f"resnet layer{s + 1}: all blocks of a stage share one width, got {list(block)}")
    c0 = spec.widths[0][0]
    if c0 % 2:
        raise ArchError(f"resnet layer1 width must be even, got {c0}")
    model = ResNet(
        block=BasicBlock,
        layers=list(spec.depths),
        channels=tuple(b[0] for b in spec.widths),
        num_classes=spec.num_classes,
        in_chans=spec.in_chans,
        stem_type="deep",
        stem_width=c0 // 2,
    )
    model.conv1 = nn.Conv2d(spec.in_chans, c0, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model


def _resnet_prefixes(spec: ArchSpec) -> list[list[tuple[str, ...]]]:
    return [[(f"layer{s + 1}.{b}",) for b in range(d)] for s, d in enumerate(spec.depths)]


def _resnet_identity(model: nn.Module, spec: ArchSpec, s: int, b: int) -> None:
    # A basic block whose last BN has weight and bias 0 adds nothing to its shortcut, and the
    # final ReLU is the identity on the (non-negative) stream: exact in train and eval mode.
    bn2 = _module(model, f"layer{s + 1}.{b}.bn2")
    with torch.no_grad():
        bn2.weight.zero_()
        bn2.bias.zero_()


def _resnet_graph(spec: ArchSpec) -> ChannelGraph:
    edges = [("conv1", "s0", None), ("bn1", "s0", None)]
    widths = {}
    prev = "s0"
    for s, block in enumerate(spec.widths):
        stream = f"s{s}"
        widths[stream] = block[0]
        for b, w in enumerate(block):
            inner, p = f"s{s}.b{b}", f"layer{s + 1}.{b}"
            widths[inner] = w
            edges += [
                (f"{p}.conv1", inner, prev),
                (f"{p}.bn1", inner, None),
                (f"{p}.conv2", stream, inner),
                (f"{p}.bn2", stream, None),
            ]
            if b == 0 and s > 0:  # stride-2 first block of stages 2..4 has a 1x1 projection
                edges += [(f"{p}.downsample.0", stream, prev), (f"{p}.downsample.1", stream, None)]
            prev = stream
    edges.append(("fc", None, prev))
    return ChannelGraph(tuple(edges), widths)


_RESNET = Family(
    name="resnet",
    depths={"resnet10": (1, 1, 1, 1), "resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)},
    base_widths=(64, 128, 256, 512),
    build=_build_resnet,
    channel_graph=_resnet_graph,
    layer_name=lambda s, b: f"layer{s + 1}.{b}",
    layer_prefixes=_resnet_prefixes,
    make_identity=_resnet_identity,
    classifier="fc",
    min_input=8,  # three stride-2 stages
    width_divisor=2,  # the stem trick above needs an even layer1 width
    # not prunable yet: residual streams couple many convs; appended blocks are zero-init, no identity kernels to mask
)
register_family(_RESNET)


# --- ResNet with the ImageNet stem (7x7 stride-2 conv + max-pool) -------------------------
# The same basic-block stages with timm's own large-kernel stem: the family where kernel
# rescaling for lower-resolution stages applies (growsearch.net2net.rescale_stem).


def _build_resnet_stem7(spec: ArchSpec) -> nn.Module:
    model = _build_resnet(spec)
    k = spec.stem_kernel or 7
    model.conv1 = nn.Conv2d(spec.in_chans, spec.widths[0][0], k, stride=2, padding=k // 2, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    return model


register_family(
    replace(  # the same stages, graph and growth ops; another stem
        _RESNET,
        name="resnet_stem7",
        depths={f"{k}_stem7": v for k, v in _RESNET.depths.items()},
        build=_build_resnet_stem7,
        min_input=16,  # stride-2 stem, max-pool and three stride-2 stages: 1x1 by layer3 at 16 px
        stem_kernel=7,
    )
)
