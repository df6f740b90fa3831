"""CUDA paths (channels_last, bf16 autocast, growth of CUDA models). Run with `pytest -m gpu`."""

from __future__ import annotations

import pytest
import torch

from growsearch.backbones import create_model
from growsearch.grow import grow
from growsearch.schedule import Schedule, Stage
from growsearch.train import run_schedule

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_growing_a_cuda_model_stays_on_cuda_and_preserves_function() -> None:
    model, _ = create_model("resnet10@0.25", num_classes=4)
    model = model.cuda().eval()
    x = torch.rand(4, 3, 32, 32, device="cuda")
    grown = grow(model, to="resnet18@0.5", num_classes=6).eval()
    assert next(grown.parameters()).is_cuda
    with torch.no_grad():
        ref = model(x)
        assert float((grown(x)[:, :4] - ref).abs().max() / ref.abs().max()) <= 1e-4


def test_schedule_trains_on_cuda_with_bf16() -> None:
    sched = Schedule("digits", [Stage(5, "vgg11@0.25", 3), Stage(10, "vgg13@0.25", 3)])
    r = run_schedule(sched, device="cuda", progress=False)
    assert r.device.startswith("cuda") and r.test_acc > 0.8
