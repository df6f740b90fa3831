"""Net2Net ops keep the function: max |Δlogit| ≤ 1e-4 × max |logit| on random inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from growsearch.model.arch import ArchError, create_model, get_family, list_archs
from growsearch.model.net2net import (
    copy_sources,
    deepen,
    expand_classes,
    plan,
    rescale_kernel,
    rescale_stem,
    stem_kernel_at,
    widen,
)
from growsearch.model.ops import grow

TOL = 1e-4  # relative to the largest logit, the stated tolerance
FAMILIES = {
    "vgg": ("vgg11", "vgg19"),
    "resnet": ("resnet10", "resnet34"),
    "resnet_stem7": ("resnet10_stem7", "resnet34_stem7"),
}


def _randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine terms, so identity layers are really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return model


def _small(arch: str, classes: int = 5) -> nn.Module:
    model, _ = create_model(arch, num_classes=classes, in_chans=3)
    return _randomise_bn(model).eval()


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max())


X = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("small,big", [(f"{s}@0.125", f"{b}@0.125") for s, b in FAMILIES.values()])
def test_deepen_preserves_function_in_eval_mode(small: str, big: str) -> None:
    model = _small(small)
    target = get_family(model.arch_spec.family).depths[big.split("@")[0]]
    grown = deepen(model, target).eval()
    assert grown.arch_spec.depths == target
    with torch.no_grad():
        assert _rel_err(model(X), grown(X)) <= TOL


def test_resnet_deepen_is_exact_in_train_mode() -> None:
    model = _small("resnet10@0.125").train()
    grown = deepen(model, (2, 3, 2, 2)).train()
    with torch.no_grad():
        assert _rel_err(model(X), grown(X)) <= TOL


@pytest.mark.parametrize("small,big", [("vgg11@0.125", "vgg16@0.125"), ("resnet10@0.125", "resnet34@0.125")])
def test_deepen_by_copy_puts_trained_layers_in_the_new_ones(small: str, big: str) -> None:
    model = _small(small)
    fam = get_family(model.arch_spec.family)
    target = fam.depths[big.split("@")[0]]
    grown = deepen(model, target, init="copy")
    sources = copy_sources(model.arch_spec, target)
    assert any(s is not None for s in sources.values())
    prefixes = fam.layer_prefixes(grown.arch_spec)
    old = dict(model.state_dict())
    for (b, l), src in sources.items():
        for p_new, p_src in zip(prefixes[b][l], prefixes[b][src if src is not None else l]):
            new_state = grown.get_submodule(p_new).state_dict()
            if src is None:
                continue
            # the copy's source is the trained layer at (b, src), which kept its own name in the small network
            src_name = get_family(model.arch_spec.family).layer_prefixes(model.arch_spec)[b][src][
                prefixes[b][src].index(p_src)
            ]
            for leaf, t in new_state.items():
                assert torch.equal(t, old[f"{src_name}.{leaf}"]), (p_new, leaf)
    with torch.no_grad():  # not function-preserving (said in the docs and --dry-run)
        assert _rel_err(model.eval()(X), grown.eval()(X)) > TOL


@pytest.mark.parametrize("arch", ["vgg13@0.125", "resnet18@0.125"])
def test_widen_preserves_function(arch: str) -> None:
    model = _small(arch)
    wider = tuple(tuple(w * 2 + 3 * (w % 2) for w in blk) for blk in model.arch_spec.widths)
    grown = widen(model, wider).eval()
    assert grown.arch_spec.widths == wider
    assert (
        grown.state_dict()[
            next(k for k in grown.state_dict() if k.endswith("conv1.weight") or k == "features.0.weight")
        ].shape[0]
        == wider[0][0]
    )
    with torch.no_grad():
        assert _rel_err(model(X), grown(X)) <= TOL


def test_widen_noise_breaks_symmetry_but_stays_close() -> None:
    model = _small("vgg11@0.125")
    wider = tuple(tuple(2 * w for w in blk) for blk in model.arch_spec.widths)
    exact, noisy = widen(model, wider).eval(), widen(model, wider, noise=0.05).eval()
    with torch.no_grad():
        assert _rel_err(model(X), exact(X)) <= TOL
        err = _rel_err(model(X), noisy(X))
    assert 0 < err < 0.5


@pytest.mark.parametrize("arch", [f"{a}@0.125" for a in list_archs()])
def test_expand_classes_keeps_old_logits(arch: str) -> None:
    model = _small(arch, classes=4)
    grown = expand_classes(model, 9).eval()
    with torch.no_grad():
        old, new = model(X), grown(X)
    assert new.shape == (8, 9)
    assert torch.equal(old, new[:, :4])
    fc = get_family(model.arch_spec.family).classifier
    assert grown.state_dict()[f"{fc}.weight"][4:].abs().sum() > 0  # new rows randomly initialised


@pytest.mark.parametrize("small,big", [(f"{s}@0.125", f"{b}@0.25") for s, b in FAMILIES.values()])
def test_grow_deeper_wider_and_more_classes(small: str, big: str) -> None:
    model = _small(small, classes=5)
    grown = grow(model, to=big, num_classes=8).eval()
    assert grown.arch_spec.num_classes == 8
    with torch.no_grad():
        assert _rel_err(model(X), grown(X)[:, :5]) <= TOL
    assert model.arch_spec.name == small  # the input model is left untouched
    assert grown(X).shape == (8, 8)


def test_grow_keeps_pruned_widths_when_deepening() -> None:
    from growsearch.model.arch import ArchSpec, build_model

    spec = ArchSpec("vgg", ((12,), (30,), (50, 61), (128, 100), (128, 128)), 5, 3, 0.25, "vgg11@0.25")
    model = _randomise_bn(build_model(spec)).eval()
    grown = grow(model, to="vgg19@0.25", num_classes=5).eval()
    assert grown.arch_spec.widths == ((12, 12), (30, 30), (50, 61, 61, 61), (128, 100, 100, 100), (128, 128, 128, 128))
    with torch.no_grad():
        assert _rel_err(model(X), grown(X)) <= TOL


@pytest.mark.parametrize(
    "start,to,msg",
    [
        ("vgg16@0.25", "vgg11@0.25", "block1.conv2"),
        ("vgg11@0.5", "vgg19@0.25", "narrower"),
        ("resnet34@0.25", "resnet18@0.25", "layer1.2, layer2.2, layer2.3, layer3.2"),
        ("vgg11@0.25", "resnet18@0.25", "one family"),
    ],
)
def test_shrinking_is_an_error_naming_the_layer(start: str, to: str, msg: str) -> None:
    model = _small(start)
    with pytest.raises(ArchError, match=msg):
        grow(model, to=to)


def test_explicit_spec_that_narrows_a_layer_names_it() -> None:
    model = _small("vgg11@0.25")
    spec = model.arch_spec
    narrower = type(spec)(spec.family, ((16,), (31,), (64, 64), (128, 128), (128, 128)), 5, 3, 0.25)
    with pytest.raises(ArchError, match=r"block2.conv1 would shrink from 32 to 31"):
        plan(spec, narrower)


def test_dropping_classes_is_an_error() -> None:
    with pytest.raises(ArchError, match="class"):
        grow(_small("vgg11@0.125", classes=5), to="vgg13@0.125", num_classes=3)


# --- kernel rescaling -----------------------------------------------------------------------


def _smooth(side: int) -> torch.Tensor:
    """A smooth 3-channel image: a wide Gaussian blob, a low-frequency wave and a constant."""
    yy, xx = torch.meshgrid(torch.arange(float(side)), torch.arange(float(side)), indexing="ij")
    c = side / 2
    return torch.stack(
        [
            torch.exp(-((yy - c) ** 2 + (xx - c) ** 2) / (2 * (side / 5) ** 2)),
            torch.sin(xx * 7 / side) * torch.cos(yy * 6 / side),
            torch.full_like(xx, 0.5),
        ]
    )[None].double()


def test_kernel_sizes_follow_the_image_scale() -> None:
    assert [stem_kernel_at(7, s) for s in (1.0, 0.75, 0.5, 0.25)] == [7, 7, 5, 3]
    assert stem_kernel_at(3, 0.5) == 3  # 3x3 kernels are never rescaled


def test_rescaled_kernel_matches_the_full_resolution_response_on_smooth_inputs() -> None:
    # Stated tolerance: on a smooth input downscaled 2x, the 7x7 → 5x5 rescaled kernel's response
    # is within 2% (relative L2, borders excluded) of the full-resolution response downscaled 2x.
    import torch.nn.functional as F

    w = torch.randn(16, 3, 7, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = _smooth(64)
    x_low = F.avg_pool2d(x, 2)
    ref = F.avg_pool2d(F.conv2d(x, w, padding=3), 2)[..., 4:-4, 4:-4]
    w_low = rescale_kernel(w, stem_kernel_at(7, 0.5), 0.5)
    assert w_low.shape[-1] == 5
    torch.testing.assert_close(w_low.sum((2, 3)), w.sum((2, 3)))  # the response to a constant is exact

    def err(y: torch.Tensor) -> float:
        return float((y[..., 4:-4, 4:-4] - ref).norm() / ref.norm())

    assert err(F.conv2d(x_low, w_low, padding=2)) < 0.02
    assert err(F.conv2d(x_low, w, padding=3)) > 0.10  # the same 7x7 kernel unrescaled is far off
    # back to full resolution: 5x5 → 7x7 keeps the sum and the response within 5%
    w_back = rescale_kernel(w_low, 7, 2.0)
    torch.testing.assert_close(w_back.sum((2, 3)), w.sum((2, 3)))
    full = F.conv2d(x, w, padding=3)[..., 8:-8, 8:-8]
    assert float((F.conv2d(x, w_back, padding=3)[..., 8:-8, 8:-8] - full).norm() / full.norm()) < 0.05


def test_rescale_stem_rebuilds_a_model_that_saves_and_grows() -> None:
    model = _small("resnet10_stem7@0.125")
    low = rescale_stem(model, 5, 0.5)
    assert low.arch_spec.stem_kernel == 5 and low.conv1.kernel_size == (5, 5)
    assert low(torch.rand(2, 3, 16, 16)).shape == (2, 5)
    grown = grow(low, "resnet18_stem7@0.125", num_classes=7)
    assert grown.arch_spec.stem_kernel == 5  # growth keeps the current stem
    with pytest.raises(ArchError, match="no large kernel"):
        rescale_stem(_small("vgg11@0.125"), 3, 0.5)
