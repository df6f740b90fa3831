"""Architecture specs and the family registry: what a growsearch network is, before any family.

An :class:`ArchSpec` lists a network's layers and widths; a :class:`Family` knows how to build
a model from one and describes its channel graph (which parameter tensor reads and writes
which group of channels), so growth and pruning never need a family's module names. The
shipped families (VGG, ResNet) are registered by :mod:`growsearch.model.families` when
:mod:`growsearch.model` is imported; every family is found by name here.

Example:
    >>> from growsearch.model.arch import create_model
    >>> model, spec = create_model("vgg11@0.25", num_classes=5, in_chans=1)
    >>> spec.depths, spec.widths[0]
    ((1, 1, 2, 2, 2), (16,))
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Callable

from torch import nn

from growsearch._extensions import caller, record
from growsearch._io import printable
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
    elastic: tuple[
        str, ...
    ] = ()  # dimensions a shrink block can cut subnets along: "depth" (a block's leading layers), "width" (each layer's most important channels)
    unit_norms: tuple[type, ...] = (
        nn.BatchNorm2d,
    )  # layers whose output channels are a conv layer's units (what ablation zeroes); () : none


_FAMILIES: dict[str, Family] = {}
_ARCH_RE = re.compile(r"^(?P<base>[a-z]+\d+(?:_[a-z0-9]+)?)(?:@(?P<mult>\d*\.?\d+))?$")


def register_family(family: Family) -> Family:
    """Make ``family``'s arch names (its ``depths`` keys, optionally ``@WIDTH``) usable in schedules,
    spaces and frontiers. Its callables build a model from an ``ArchSpec`` and describe its
    channel graph and layers, which is all growth, pruning (``prunable``) and the zero mask
    (``zero_mask``) need. A variant of a shipped family is one ``dataclasses.replace`` away.

    Example:
        >>> from dataclasses import replace
        >>> vgg = get_family("vgg")  # the shipped families register when growsearch.model is imported
        >>> _ = register_family(replace(vgg, name="slimvgg", depths={"slimvgg6": (1, 1, 1, 1, 2)}, base_widths=(16, 32, 64, 64, 64)))
        >>> spec_for("slimvgg6@0.5", 10).widths
        ((8,), (16,), (32,), (32,), (32, 32))
    """
    taken = {base: f.name for f in _FAMILIES.values() if f.name != family.name for base in f.depths}
    clash = sorted(b for b in family.depths if b in taken)
    if clash:
        raise ArchError(
            f"family {family.name!r}: arch name(s) {', '.join(clash)} already belong to {taken[clash[0]]!r}: pick other names"
        )
    if any(not _ARCH_RE.match(b) or "@" in b for b in family.depths):
        raise ArchError(
            f"family {family.name!r}: arch names are letters then digits (e.g. 'mynet8'), got {sorted(family.depths)}"
        )
    record(register_family, family, by=caller())  # so the Ray workers a search starts register it too
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
            if not 0 < mult <= 64:  # 64: far beyond any machine; past it a typo becomes a MemoryError
                raise ArchError(f"arch {arch!r}: width multiplier must be in (0, 64], got {mult:g}")
            return fam, base, mult
    raise ArchError(
        f"unknown arch {arch!r}; known: {', '.join(list_archs())} (optionally with @WIDTH, e.g. vgg19@0.25)"
    )


def _scaled(width: int, mult: float, divisor: int) -> int:
    return max(divisor, int(round(width * mult / divisor)) * divisor)


def spec_for(arch: str, num_classes: int, in_chans: int = 3) -> ArchSpec:
    """The spec of a fresh (unpruned, unwidened) model named ``arch``."""
    fam, base, mult = parse_arch(arch)
    widths = tuple((_scaled(w, mult, fam.width_divisor),) * d for w, d in zip(fam.base_widths, fam.depths[base]))
    return ArchSpec(fam.name, widths, int(num_classes), int(in_chans), mult, arch)


def build_model(spec: ArchSpec) -> nn.Module:
    """A freshly initialised model with exactly the layers and widths of ``spec``.

    The spec travels with the model as ``model.arch_spec`` so growth can be planned from it.
    """
    model = get_family(spec.family).build(spec)
    model.arch_spec = spec
    return model


def create_model(arch: str, num_classes: int, in_chans: int = 3) -> tuple[nn.Module, ArchSpec]:
    """Build ``arch`` (e.g. ``"resnet18@0.5"``) from scratch; returns the model and its spec."""
    for name, v in (("num_classes", num_classes), ("in_chans", in_chans)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ArchError(f"create_model: {name} must be a whole number ≥ 1, got {printable(v)[:40]}")
    spec = spec_for(arch, num_classes, in_chans)
    return build_model(spec), spec
