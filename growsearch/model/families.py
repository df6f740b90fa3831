"""Growable backbone families built from timm: VGG and ResNet, registered by name.

A family (``vgg``, ``resnet``) knows three things: its named depths (``vgg11`` … ``vgg19``,
``resnet10`` … ``resnet34``), how to build a timm model from a spec, and its *channel graph*:
which parameter tensor reads and writes which group of channels. Growth (``net2net.py``)
works on specs and channel graphs only, so it never needs to know a family's module names.
Importing :mod:`growsearch.model` registers these families (its ``__init__`` imports this
module, as timm's ``models/__init__`` does its model files); the spec type and the registry
(``create_model``, ``list_archs``, ``register_family``) live in :mod:`growsearch.model.arch`.

Example:
    >>> from growsearch.model.arch import create_model
    >>> model, spec = create_model("vgg11@0.25", num_classes=5, in_chans=1)
    >>> spec.depths, spec.widths[0]
    ((1, 1, 2, 2, 2), (16,))
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from growsearch.model.arch import ArchError, ArchSpec, ChannelGraph, Family, register_family

__all__: list[
    str
] = []  # nothing to import from here: the families are found by name (growsearch.model.arch.get_family)


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
    model = VGG(
        cfg, num_classes=spec.num_classes, in_chans=spec.in_chans, norm_layer=nn.BatchNorm2d, mlp_ratio=1 / 4096
    )
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
    conv, bn = model.get_submodule(conv_path), model.get_submodule(bn_path)
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
        elastic=("depth", "width"),  # a block's later layers keep its width; every channel group ends in a BatchNorm
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
    bn2 = model.get_submodule(f"layer{s + 1}.{b}.bn2")
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
    elastic=("depth", "width"),  # blocks after a stage's first keep its width; every channel group ends in a BatchNorm
    # not prunable yet: residual streams couple many convs; appended blocks are zero-init, no identity kernels to mask
)
register_family(_RESNET)


# --- ResNet with the ImageNet stem (7x7 stride-2 conv + max-pool) -------------------------
# The same basic-block stages with timm's own large-kernel stem: the family where kernel
# rescaling for lower-resolution stages applies (growsearch.model.net2net.rescale_stem).


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
