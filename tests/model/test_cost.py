"""MACs against hand counts (conv: H·W·Cout·Cin·k², linear: in·out) and M = samples × MACs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from growsearch.model.arch import build_model, spec_for
from growsearch.model.cost import count_params, macs_per_sample, stage_cost
from helpers import hand_macs_resnet, hand_macs_vgg


def test_tiny_model_matches_a_hand_count() -> None:
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    )
    assert macs_per_sample(model, (2, 6, 6)) == 6 * 6 * 4 * 2 * 9 + 144 * 3


@pytest.mark.parametrize("arch", ["vgg11@0.125", "vgg19@0.25", "vgg16"])
def test_vgg_macs_match_a_hand_count(arch: str) -> None:
    spec = spec_for(arch, 10, 3)
    assert macs_per_sample(build_model(spec), (3, 32, 32)) == hand_macs_vgg(spec, 32)


@pytest.mark.parametrize("arch", ["resnet10@0.25", "resnet18@0.5", "resnet34@0.125"])
def test_resnet_macs_match_a_hand_count(arch: str) -> None:
    spec = spec_for(arch, 10, 3)
    assert macs_per_sample(build_model(spec), (3, 32, 32)) == hand_macs_resnet(spec, 32)


def test_counting_leaves_bn_statistics_and_mode_alone() -> None:
    model = build_model(spec_for("vgg11@0.125", 4, 1)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    macs_per_sample(model, (1, 32, 32))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_stage_cost_is_exact_integer_arithmetic() -> None:
    assert stage_cost(1437 * 30, 24_921_344) == 1437 * 30 * 24_921_344
    assert isinstance(stage_cost(10**6, 10**9), int)


def test_count_params() -> None:
    assert count_params(nn.Linear(3, 2)) == 8
