"""Elastic subnets: what a cut keeps, and that the weight-shared network computes the same subnet."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from growsearch.model.arch import ArchError, create_model, get_family, register_family, spec_for
from growsearch.model.elastic import Subnet, active, channel_ranks, check_elastic, cut, menu, recalibrate, subnet_spec
from growsearch.model.net2net import deepen
from helpers import restored_registries


def _randomised(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics and affines, so a wrong channel or layer shows in the output."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return model.eval()


@pytest.mark.parametrize("arch", ["vgg19@0.25", "resnet18@0.25"])
def test_the_largest_subnet_is_the_full_network_bit_for_bit(arch: str) -> None:
    torch.manual_seed(0)
    model, spec = create_model(arch, 10)
    model = _randomised(model)
    ranks = channel_ranks(model)
    full = menu(spec, [], [0.5])[-1]
    assert full == Subnet("full", 1.0)
    net = cut(model, subnet_spec(spec, full), ranks)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), net.state_dict().values()))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        assert torch.equal(net(x), ref)
        with active(model, subnet_spec(spec, full), ranks):
            assert torch.equal(model(x), ref)


@pytest.mark.parametrize(
    "arch,depths", [("vgg19@0.25", ["vgg11", "vgg16"]), ("resnet34@0.25", ["resnet10", "resnet18"])]
)
def test_the_shared_network_computes_each_subnet_as_its_cut_does(arch: str, depths: list[str]) -> None:
    torch.manual_seed(0)
    model, spec = create_model(arch, 10)
    model = _randomised(model)
    ranks = channel_ranks(model)
    x = torch.randn(2, 3, 32, 32)
    subs = menu(spec, depths, [0.25, 0.5])
    assert len(subs) == 9 and subs[0] == Subnet(depths[0], 0.25)
    for sub in subs:
        s = subnet_spec(spec, sub)
        with torch.no_grad(), active(model, s, ranks):
            shared = model(x)
        assert torch.allclose(shared, cut(model, s, ranks)(x), atol=1e-4), sub
    assert all(isinstance(m, nn.Module) for m in model.modules())  # every swapped layer is back
    assert sum(isinstance(m, nn.Identity) for m in model.modules()) == sum(
        isinstance(m, nn.Identity) for m in create_model(arch, 10)[0].modules()
    )


def test_a_depth_subnet_of_a_grown_vgg_is_the_earlier_network() -> None:
    torch.manual_seed(0)
    small, spec = create_model("vgg11@0.25", 10)
    small = _randomised(small)
    grown = deepen(small, spec_for("vgg19@0.25", 10).depths).eval()
    gspec = grown.arch_spec
    s = subnet_spec(gspec, Subnet("vgg11", 1.0))
    assert s.widths == spec.widths  # the earlier stage's architecture, in shape
    net = cut(grown, s, channel_ranks(grown))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), small(x))  # and, before further training, its very weights
    assert all(torch.equal(a, b) for a, b in zip(small.state_dict().values(), net.state_dict().values()))


def test_width_subnets_keep_the_highest_importance_channels() -> None:
    model, spec = create_model("vgg11@0.25", 10)
    conv = model.features[0]  # block 0, layer 0: 16 filters
    with torch.no_grad():
        conv.weight.copy_(torch.arange(16, dtype=torch.float32).view(16, 1, 1, 1).expand_as(conv.weight) * 0.01)
        model.features[1].weight.fill_(1.0)
        conv.weight[3] *= 1000  # the most important filter, though a low index
    ranks = channel_ranks(model)
    s = subnet_spec(spec, Subnet("full", 0.5))
    net = cut(model, s, ranks)
    kept = sorted([3] + [15, 14, 13, 12, 11, 10, 9])
    assert torch.equal(net.features[0].weight, conv.weight[kept])
    assert torch.equal(net.features[4].weight, model.features[4].weight[:, kept][ranks["b1.l0"][:16].sort().values])


def test_recalibration_changes_only_running_statistics() -> None:
    torch.manual_seed(0)
    model, _ = create_model("vgg11@0.25", 10)
    params = {k: v.clone() for k, v in model.named_parameters()}
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    x = torch.randn(16, 3, 32, 32) * 3 + 1
    recalibrate(model, [x[:8], x[8:]])
    assert not model.training
    assert all(torch.equal(params[k], v) for k, v in model.named_parameters())
    assert any(not torch.equal(before[k], model.state_dict()[k]) for k in before)
    first = model.features[1]
    assert torch.allclose(
        first.running_mean, model.features[0](x).mean(dim=(0, 2, 3)), atol=1e-4
    )  # the exact mean over every batch


def test_subnet_passes_leave_the_full_networks_statistics_alone() -> None:
    torch.manual_seed(0)
    model, spec = create_model("vgg13@0.25", 10)
    ranks = channel_ranks(model)
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    model.train()
    with active(model, subnet_spec(spec, Subnet("vgg11", 0.5)), ranks):
        model(torch.randn(4, 3, 32, 32)).sum().backward()
    assert all(torch.equal(before[k], model.state_dict()[k]) for k in before)
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))


@pytest.mark.parametrize(
    "depths,widths,msg",
    [
        (["vgg19"], [], "deeper than the network"),
        (["resnet18"], [], "is not a vgg depth"),
        ([], [1.5], "not a fraction in (0, 1]"),
        ([], [0], "not a fraction in (0, 1]"),
    ],
)
def test_a_menu_the_network_cannot_hold_is_refused(depths: list, widths: list, msg: str) -> None:
    with pytest.raises(
        ArchError, match=msg.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]").replace("[", r"\[")
    ):
        check_elastic(spec_for("vgg13@0.25", 10), depths, widths)


def test_a_family_that_is_not_elastic_is_refused_naming_the_dimension() -> None:
    with restored_registries():
        register_family(
            replace(get_family("vgg"), name="rigidvgg", depths={"rigid11": (1, 1, 2, 2, 2)}, elastic=("depth",))
        )
        spec = spec_for("rigid11@0.25", 10)
        check_elastic(spec, [], [])
        with pytest.raises(ArchError, match="cannot be made elastic in width"):
            check_elastic(spec, [], [0.5])


def test_subnet_names_parse_and_refuse() -> None:
    assert Subnet.parse("VGG13:0.5") == Subnet("vgg13", 0.5) and Subnet.parse("vgg13").width == 1.0
    with pytest.raises(ArchError, match="width fraction"):
        Subnet.parse("vgg13:2")
    with pytest.raises(ArchError, match="DEPTH:WIDTH"):
        Subnet.parse("vgg13:half")
