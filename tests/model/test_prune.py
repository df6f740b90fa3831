from __future__ import annotations

from pathlib import Path

import pytest
import torch

from growsearch.model.arch import build_model, create_model, get_family, spec_for
from growsearch.model.cost import macs_per_sample
from growsearch.model.ops import grow
from growsearch.model.prune import nonzero_macs_per_sample, prune, pruned_widths
from growsearch.plan.planner import check
from growsearch.plan.schedule import Schedule, ScheduleError, Stage
from growsearch.train.results import load_checkpoint
from growsearch.train.run import run_schedule

SHAPE = (3, 32, 32)


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.7])
def test_prune_keeps_int_c_times_1_minus_r_filters_per_conv(ratio: float) -> None:
    model, spec = create_model("vgg11@0.25", num_classes=6)
    pruned = prune(model, ratio, input_shape=SHAPE)
    expect = tuple(tuple(int(w * (1 - ratio)) for w in blk) for blk in spec.widths)
    assert pruned.arch_spec.widths == expect
    assert pruned.head.fc.out_features == 6  # the classifier loses no rows
    assert pruned.head.fc.in_features == expect[-1][-1]
    assert model.arch_spec == spec  # the input model is untouched


def test_prune_removes_the_lowest_l1_filters() -> None:
    model, _ = create_model("vgg11@0.25", num_classes=4)
    w = model.features[0].weight.detach()
    l1 = w.abs().sum(dim=(1, 2, 3))
    pruned = prune(model, 0.5, input_shape=SHAPE)
    kept = pruned.features[0].weight.detach()
    top = set(l1.argsort(descending=True)[: kept.shape[0]].tolist())
    kept_ids = {next(j for j in range(w.shape[0]) if torch.equal(w[j], k)) for k in kept}
    assert kept_ids == top


def test_pruned_then_grown_keeps_the_saved_channels_and_the_function() -> None:
    model, _ = create_model("vgg11@0.25", num_classes=5)
    pruned = prune(model.eval(), 0.5, input_shape=SHAPE).eval()
    grown = grow(pruned, to="vgg19@0.25", num_classes=5).eval()
    assert grown.arch_spec.widths[2] == (32, 32, 32, 32)
    x = torch.rand(4, *SHAPE)
    with torch.no_grad():
        ref = pruned(x)
        assert float((grown(x) - ref).abs().max() / ref.abs().max()) <= 1e-4
    assert macs_per_sample(grown, SHAPE) < macs_per_sample(build_model(spec_for("vgg19@0.25", 5)), SHAPE)


def test_nonzero_macs_count_only_non_zero_taps() -> None:
    model, spec = create_model("vgg11@0.125", num_classes=3)
    assert nonzero_macs_per_sample(model, SHAPE) == macs_per_sample(model, SHAPE)  # dense model
    grown = grow(model, to="vgg13@0.125")
    # vgg11 -> vgg13 inserts one identity conv in blocks 1 and 2 (8 and 16 channels at 32 and 16 px):
    # dense they cost H*W*9*c*c, with zeros skipped H*W*c (the centre taps).
    dense_extra = 32 * 32 * 9 * 8 * 8 + 16 * 16 * 9 * 16 * 16
    sparse_extra = 32 * 32 * 8 + 16 * 16 * 16
    assert macs_per_sample(grown, SHAPE) == macs_per_sample(model, SHAPE) + dense_extra
    assert nonzero_macs_per_sample(grown, SHAPE) == macs_per_sample(model, SHAPE) + sparse_extra


def _prune_sched(data: str, zero_mask: bool) -> Schedule:
    return Schedule(data, [Stage(2, "vgg11@0.25", 2), Stage(4, "vgg13@0.25", 2, prune_ratio=0.5, zero_mask=zero_mask)])


@pytest.mark.parametrize("zero_mask", [True, False])
def test_zero_mask_keeps_identity_zeros_through_training(npz_data: str, tmp_path: Path, zero_mask: bool) -> None:
    r = run_schedule(_prune_sched(npz_data, zero_mask), out_dir=tmp_path, progress=False)
    model, _ = load_checkpoint(tmp_path / "stage2.pt")
    conv = get_family("vgg").layer_prefixes(model.arch_spec)[0][1][0]  # block1.conv2: inserted by vgg11 -> vgg13
    inserted = model.get_submodule(conv).weight.detach()
    c = inserted.shape[0]
    off = inserted.clone()
    off[torch.arange(c), torch.arange(c), 1, 1] = 0
    if zero_mask:
        assert torch.count_nonzero(off) == 0
        assert torch.count_nonzero(inserted) > 0  # the centre taps still train
        assert r.stages[1].nonzero_macs_per_sample < r.stages[1].macs_per_sample
    else:
        assert torch.count_nonzero(off) > 0  # without the mask the zeros fill in
    st = r.stages[1]
    assert st.zero_mask is zero_mask
    assert st.M_nonzero == st.samples * st.nonzero_macs_per_sample
    assert r.M_nonzero == sum(s.M_nonzero for s in r.stages)


def test_prune_is_recorded_and_the_checkpoint_rebuilds_exactly(npz_data: str, tmp_path: Path) -> None:
    seen = {}
    x = torch.rand(3, *SHAPE)

    def keep(stage, model) -> None:
        with torch.no_grad():
            seen[stage.classes] = model.eval()(x)

    r = run_schedule(_prune_sched(npz_data, True), out_dir=tmp_path, progress=False, on_stage=keep)
    info = r.stages[1].prune
    assert info["ratio"] == 0.5 and info["params_after"] < info["params_before"]
    assert info["macs_after"] < info["macs_before"]
    assert 0 <= info["test_acc_after_prune"] <= 1
    assert info["widths_after"][0] == [8]
    model, ckpt = load_checkpoint(tmp_path / "stage2.pt")
    assert ckpt["spec"]["widths"][0] == [8, 8]  # the pruned width survives growth and save/load
    with torch.no_grad():
        assert torch.allclose(model(x), seen[4], atol=1e-5)


@pytest.mark.parametrize(
    "stages,msg",
    [
        ([Stage(2, "vgg11@0.25", 1), Stage(4, "vgg13@0.25", 1, prune_ratio=1.0)], r"\[0, 1\)"),
        ([Stage(2, "vgg11@0.25", 1), Stage(4, "vgg13@0.25", 1, prune_ratio=-0.1)], r"\[0, 1\)"),
        (
            [Stage(2, "vgg11@0.125", 1), Stage(4, "vgg13@0.125", 1, prune_ratio=0.9)],
            "block1.conv1 .8 filters. with none",
        ),
        ([Stage(2, "vgg11@0.25", 1), Stage(4, "vgg11@0.25", 1, zero_mask=True)], "inserts no identity layers"),
        ([Stage(2, "vgg11@0.25", 1, zero_mask=True), Stage(4, "vgg13@0.25", 1)], "stage 1 grows nothing"),
        ([Stage(2, "resnet10@0.25", 1), Stage(4, "resnet18@0.25", 1, prune_ratio=0.5)], "resnet is not supported yet"),
        ([Stage(2, "resnet10@0.25", 1), Stage(4, "resnet18@0.25", 1, zero_mask=True)], "resnet inserts none"),
    ],
)
def test_bad_pruning_options_fail_before_training(stages: list[Stage], msg: str) -> None:
    with pytest.raises(ScheduleError, match=msg):
        check(Schedule("digits", stages), num_classes=4)


def test_pruned_widths_rejects_resnet() -> None:
    from growsearch.model.arch import ArchError

    with pytest.raises(ArchError, match="not supported"):
        pruned_widths(spec_for("resnet18", 10), 0.5)


def test_nonzero_macs_count_grouped_and_depthwise_convolutions() -> None:
    """A grouped conv's weight holds its group's input channels only: the dense count equals the MACs counter's."""
    import torch
    from torch import nn

    from growsearch.model.cost import macs_per_sample
    from growsearch.model.prune import nonzero_macs_per_sample

    net = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1, groups=2),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.Flatten(),
        nn.Linear(8 * 6 * 6, 3),
    )
    assert nonzero_macs_per_sample(net, (4, 6, 6)) == macs_per_sample(net, (4, 6, 6))
    with torch.no_grad():
        net[1].weight[:4] = 0  # half the depthwise filters off
    assert nonzero_macs_per_sample(net, (4, 6, 6)) == macs_per_sample(net, (4, 6, 6)) - 4 * 9 * 36
