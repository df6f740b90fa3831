"""CUDA paths (channels_last, bf16 autocast, growth of CUDA models). Run with `pytest -m gpu`."""

from __future__ import annotations

import pytest
import torch

from growsearch.model.arch import create_model
from growsearch.model.ops import grow
from growsearch.plan.schedule import Schedule, Stage
from growsearch.train.run import run_schedule

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_growing_a_cuda_model_stays_on_cuda_and_preserves_function(monkeypatch: pytest.MonkeyPatch) -> None:
    # TF32 convolutions (cuDNN's default) round to ~1e-3: the identity is exact math, checked in fp32
    # (for this test only: the others train as users do)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
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


def test_fgsm_and_mutual_inference_on_cuda_match_cpu_at_eps_zero() -> None:
    from growsearch.robust.attack import fgsm_accuracy
    from growsearch.robust.members import Member

    torch.manual_seed(0)
    small, _ = create_model("vgg11@0.125", 2, 3)
    full, _ = create_model("vgg11@0.125", 4, 3)
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 4, (32,))
    kw = dict(mean=(0.5,) * 3, std=(0.25,) * 3, num_classes=4)
    cpu = fgsm_accuracy(
        [Member(small.eval(), [2, 0], 1, 0.9), Member(full.eval(), [2, 0, 3, 1], 2, 0.8)], x, y, [0.0, 0.05], **kw
    )
    gpu = fgsm_accuracy(
        [Member(small.cuda().eval(), [2, 0], 1, 0.9), Member(full.cuda().eval(), [2, 0, 3, 1], 2, 0.8)],
        x,
        y,
        [0.0, 0.05],
        device="cuda",
        **kw,
    )
    assert gpu["final"][0] == pytest.approx(cpu["final"][0]) and gpu["final_mi"][0] == pytest.approx(cpu["final_mi"][0])


def test_resolution_growth_with_kernel_rescaling_on_cuda() -> None:
    sched = Schedule("digits", [Stage(5, "resnet10_stem7@0.25", 2, resolution=16), Stage(10, "resnet18_stem7@0.25", 2)])
    r = run_schedule(sched, device="cuda", progress=False)
    assert [s.resolution for s in r.stages] == [16, 32] and [s.spec["stem_kernel"] for s in r.stages] == [5, 7]


@pytest.mark.parametrize("mode", [True, "reduce-overhead"])
def test_a_compiled_large_batch_run_trains_on_cuda(mode, monkeypatch) -> None:
    """train.compile (default mode, and CUDA graphs) with batch 512 and the linear LR rule: the
    paths the throughput benchmark measures; every grown stage compiles its own graph, the cost
    accounting is eager's, and cuDNN autotuning is back to the caller's setting afterwards.
    (lr 0.0125 at batch 128 is 0.05 at 512: on digits' ~3 steps per epoch, the 0.2 that lr 0.05
    scales to never leaves chance accuracy, compiled or eager, as measured on an H100.)"""
    from growsearch.plan.schedule import TrainConfig

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)  # a user's setting, given back after the run
    train = TrainConfig(batch_size=512, lr=0.0125, lr_scaling="linear", compile=mode)
    sched = Schedule("digits", [Stage(5, "vgg11@0.25", 4), Stage(10, "vgg13@0.25", 6)], train=train)
    r = run_schedule(sched, device="cuda", progress=False)
    eager = run_schedule(
        Schedule("digits", sched.stages, train=TrainConfig(batch_size=512, lr=0.0125, lr_scaling="linear")),
        device="cuda",
        progress=False,
    )
    assert r.device.startswith("cuda") and r.test_acc > 0.6 and r.stages[0].history[0]["lr"] == pytest.approx(0.05)
    assert r.M == eager.M and abs(r.test_acc - eager.test_acc) < 0.1 and r.schedule["train"]["compile"] == mode
    assert torch.backends.cudnn.benchmark is False


def test_one_training_state_across_growth_on_cuda() -> None:
    """The growth levers (global LR, optimizer carried, copy init, new-parameter LR, data by
    samples) on CUDA: the carried momentum buffers live on the GPU and planned M is trained M."""
    from growsearch.plan.planner import plan_schedule, planned_M
    from growsearch.plan.schedule import TrainConfig

    train = TrainConfig(lr_schedule="global", carry_optimizer=True, new_param_lr=2.0)
    sched = Schedule(
        "digits",
        [Stage(10, "vgg11@0.25", 2, fraction=0.5), Stage(10, "vgg16@0.25", 2, fraction=1.0)],
        train=train,
        data_growth="samples",
        deepen_init="copy",
    )
    r = run_schedule(sched, device="cuda", progress=False)
    assert r.device.startswith("cuda") and r.test_acc > 0.6 and r.M == planned_M(plan_schedule(sched))


def test_a_shrink_phase_trains_and_recalibrates_subnets_on_cuda() -> None:
    from growsearch.plan.schedule import Shrink, TrainConfig

    sched = Schedule(
        "digits",
        [Stage(5, "vgg11@0.25", 2), Stage(10, "vgg13@0.25", 3)],
        train=TrainConfig(),
        shrink=Shrink(depths=["vgg11"], widths=[0.5], start=0.3, ramp_epochs=1),
    )
    r = run_schedule(sched, device="cuda", progress=False)
    assert [row["subnet"] for row in r.subnets] == ["vgg11:0.5", "vgg11:1", "full:0.5", "full:1"]
    assert all(0.0 < row["val_acc"] <= 1.0 for row in r.subnets) and r.subnets[-1]["val_acc"] > 0.6


def test_ssgd_and_threshold_pruning_on_cuda() -> None:
    sched = Schedule(
        "digits", [Stage(5, "vgg11@0.25", 3, optimizer="ssgd"), Stage(10, "vgg13@0.25", 2, prune_threshold=0.5)]
    )
    r = run_schedule(sched, device="cuda", progress=False)
    assert r.device.startswith("cuda") and r.test_acc > 0.5 and len(r.stages[-1].prune["widths_after"]) > 0
