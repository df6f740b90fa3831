from __future__ import annotations

import pytest
import torch

from growsearch.model.arch import (
    ArchError,
    ArchSpec,
    build_model,
    create_model,
    get_family,
    list_archs,
    parse_arch,
    spec_for,
)


@pytest.mark.parametrize("arch", list_archs())
def test_every_arch_builds_and_classifies(arch: str) -> None:
    model, spec = create_model(f"{arch}@0.125", num_classes=7, in_chans=1)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 7)
    assert model.arch_spec == spec
    assert spec.depths == get_family(spec.family).depths[arch]


@pytest.mark.parametrize("arch", list_archs())
def test_spec_rebuilds_the_same_parameter_shapes(arch: str) -> None:
    model, spec = create_model(f"{arch}@0.25", num_classes=5)
    again = build_model(ArchSpec.from_dict(spec.to_dict()))
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in again.state_dict().items()}


def test_vgg19_has_the_cifar_head_not_timms_imagenet_head() -> None:
    model, _ = create_model("vgg19", num_classes=100)
    n = sum(p.numel() for p in model.parameters())
    assert 19e6 < n < 21e6  # paper-style VGG19 is ~20M parameters; timm's ImageNet head alone is ~120M
    assert model.head.fc.in_features == 512


def test_vgg_depths_come_from_timm_cfgs() -> None:
    assert [get_family("vgg").depths[a] for a in ("vgg11", "vgg13", "vgg16", "vgg19")] == [
        (1, 1, 2, 2, 2),
        (2, 2, 2, 2, 2),
        (2, 2, 3, 3, 3),
        (2, 2, 4, 4, 4),
    ]


def test_resnet_has_a_cifar_stem() -> None:
    model, _ = create_model("resnet18@0.25", num_classes=10)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    feats = model.forward_features(torch.rand(1, 3, 32, 32))
    assert feats.shape[-1] == 4  # 32 / 8: three stride-2 stages, nothing in the stem


def test_width_multiplier_scales_every_layer() -> None:
    assert spec_for("vgg11@0.25", 10).widths == ((16,), (32,), (64, 64), (128, 128), (128, 128))
    assert spec_for("resnet10@0.5", 10).widths == ((32,), (64,), (128,), (256,))


@pytest.mark.parametrize("bad", ["vgg12", "alexnet", "vgg19@0", "vgg19@-1", ""])
def test_unknown_arch_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ArchError, match="arch|multiplier"):
        parse_arch(bad)


def test_resnet_stem7_has_timms_imagenet_stem_and_a_rescalable_kernel() -> None:
    model, spec = create_model("resnet18_stem7@0.25", num_classes=10)
    assert model.conv1.kernel_size == (7, 7) and model.conv1.stride == (2, 2)
    assert isinstance(model.maxpool, torch.nn.MaxPool2d)
    assert get_family(spec.family).stem_kernel == 7
    small = build_model(ArchSpec.from_dict({**spec.to_dict(), "stem_kernel": 5}))
    assert small.conv1.kernel_size == (5, 5) and small.conv1.padding == (2, 2)


def test_vgg_runs_at_low_resolution_with_the_same_parameters_and_unchanged_at_32() -> None:
    model, _ = create_model("vgg19@0.125", num_classes=5)
    model.eval()
    for side in (8, 16, 24):
        assert model(torch.rand(2, 3, side, side)).shape == (2, 5)
    x = torch.rand(2, 3, 32, 32)
    ceil = model(x)
    for m in model.features:
        if isinstance(m, torch.nn.MaxPool2d):
            m.ceil_mode = False  # timm's own pooling
    torch.testing.assert_close(model(x), ceil, rtol=0, atol=0)


@pytest.mark.parametrize("n", [0, -1, True, 2.5])
def test_create_model_refuses_a_class_count_below_one(n) -> None:
    from growsearch.model.arch import ArchError, create_model

    with pytest.raises(ArchError, match="num_classes must be a whole number"):
        create_model("vgg11@0.125", n)
