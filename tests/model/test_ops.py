"""Growth ops: each op's plan (on specs) and apply (on networks) agree, and a new op is one class."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from growsearch.model.arch import ArchError, build_model, create_model
from growsearch.model.ops import (
    FIRST,
    GROW,
    AddClasses,
    Build,
    ChangeResolution,
    Deepen,
    Op,
    Prune,
    RescaleStem,
    Run,
    StageView,
    Widen,
    apply_transition,
    as_network,
    plan_transition,
    tensors_of,
    transition_ops,
)

TOL = 1e-4  # max |Δlogit| relative to the largest logit, as in test_net2net
X = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _model(arch: str, classes: int = 2) -> nn.Module:
    torch.manual_seed(0)
    return create_model(arch, num_classes=classes, in_chans=3)[0].eval()


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max())


def _one(op: Op, model: nn.Module, stage: StageView, run: Run | None = None) -> nn.Module:
    """Plan ``op`` alone, apply it, and check the network is the planned spec."""
    after = op.plan(model.arch_spec, stage)
    assert after is not None, f"{op} has nothing to do"
    steps, _ = plan_transition((op,), model.arch_spec, stage)
    out = steps[0].op.apply(model, replace(steps[0], run=run or Run()))
    assert out.arch_spec == after and out is not model
    return out


def test_build_plans_the_stage_arch_with_its_stem_kernel_at_the_stage_resolution() -> None:
    native = StageView("resnet10_stem7@0.125", classes=3)
    low = StageView("resnet10_stem7@0.125", classes=3, resolution=16, native=32)
    assert Build().plan(None, native).stem_kernel == 0 and Build().plan(None, low).stem_kernel == 5
    steps, after = plan_transition(FIRST, None, low)
    model = apply_transition(None, steps, after, Run())
    assert model.arch_spec == after and model.get_parameter("conv1.weight").shape[-1] == 5
    assert Build().plan(after, low) is None  # only stage 1 builds


def test_prune_narrows_as_planned_and_records_what_it_kept() -> None:
    model = _model("vgg11@0.25")
    stage = StageView("vgg11@0.25", classes=2, prune_ratio=0.5, prev_resolution=32)
    run = Run(score=lambda m: {"val_acc_after_prune": 0.5})
    pruned = _one(Prune(), model, stage, run)
    assert pruned.arch_spec.widths[0] == (8,)
    rec = run.prune
    assert rec["ratio"] == 0.5 and rec["params_after"] < rec["params_before"] and rec["val_acc_after_prune"] == 0.5
    assert Prune().plan(model.arch_spec, replace(stage, prune_ratio=0.0)) is None


@pytest.mark.parametrize(
    "op,small,big",
    [
        (Deepen(), "vgg11", "vgg13@0.125"),
        (Widen(), "vgg11", "vgg11@0.25"),
        (Deepen(), "resnet10", "resnet18@0.125"),
        (Widen(), "resnet10", "resnet10@0.25"),
    ],
)
def test_growth_ops_keep_the_function(op: Op, small: str, big: str) -> None:
    model = _model(f"{small}@0.125")
    run = Run()
    grown = _one(op, model, StageView(big, classes=2), run).eval()
    with torch.no_grad():
        assert _rel_err(model(X), grown(X)) <= TOL
    if isinstance(op, Deepen):  # the inserted (block, layer) positions, for the zero mask
        assert run.inserted and all(l >= model.arch_spec.depths[b] for b, l in run.inserted)


def test_add_classes_keeps_the_old_logits_and_refuses_to_drop_classes() -> None:
    model = _model("vgg11@0.125")
    grown = _one(AddClasses(), model, StageView("vgg11@0.125", classes=5)).eval()
    with torch.no_grad():
        out = grown(X)
        assert out.shape[1] == 5 and _rel_err(model(X), out[:, :2]) <= TOL
    with pytest.raises(ArchError, match="must grow"):
        AddClasses().plan(model.arch_spec, StageView("vgg11@0.125", classes=1))


def test_rescale_stem_follows_the_resolution_and_keeps_a_constant_image_response() -> None:
    model = _model("resnet10_stem7@0.125")
    low = replace(model.arch_spec, stem_kernel=5)
    small = build_model(low).eval()
    stage = StageView("resnet10_stem7@0.125", classes=2, resolution=32, prev_resolution=16, native=32)
    big = _one(RescaleStem(), small, stage)
    assert big.arch_spec.stem_kernel == 7
    w_small, w_big = small.get_parameter("conv1.weight"), big.get_parameter("conv1.weight")
    assert torch.allclose(w_small.sum((2, 3)), w_big.sum((2, 3)), atol=1e-5)  # a tap's weight is moved, never lost
    assert RescaleStem().plan(low, replace(stage, prev_resolution=32)) is None  # same resolution: nothing to do
    assert RescaleStem().plan(_model("vgg11@0.125").arch_spec, stage) is None  # 3x3 stems are never rescaled


def test_change_resolution_leaves_the_network_as_it_is() -> None:
    model = _model("vgg11@0.125")
    stage = StageView("vgg11@0.125", classes=2, resolution=32, prev_resolution=16)
    assert ChangeResolution().plan(model.arch_spec, stage) == model.arch_spec
    steps, _ = plan_transition((ChangeResolution(),), model.arch_spec, stage)
    assert steps[0].label == "resolution 16→32 px"
    assert ChangeResolution().plan(model.arch_spec, replace(stage, prev_resolution=32)) is None


def test_a_transition_applies_its_ops_in_order_with_one_generator() -> None:
    model = _model("vgg11@0.125")
    stage = StageView("vgg13@0.25", classes=4, prune_ratio=0.5, prev_resolution=32)
    steps, after = plan_transition(transition_ops(), model.arch_spec, stage)
    assert [type(s.op) for s in steps] == [Prune, Deepen, Widen, AddClasses]
    assert after.name == "vgg13@0.25" and after.width_mult == 0.25
    a = apply_transition(model, steps, after, Run(generator=torch.Generator().manual_seed(7)))
    b = apply_transition(model, steps, after, Run(generator=torch.Generator().manual_seed(7)))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert [type(op) for op in GROW] == [Deepen, Widen, AddClasses]


def test_a_new_op_is_one_class() -> None:
    """An op written outside the package joins a transition and is planned and applied like the shipped ones."""

    from helpers import DoubleLastBlock

    model = _model("vgg11@0.125")
    steps, after = plan_transition((*GROW, DoubleLastBlock()), model.arch_spec, StageView("vgg13@0.125", classes=3))
    assert [s.label for s in steps] == ["deepen", "add classes 2→3", "double last block"]
    grown = apply_transition(model, steps, after, Run()).eval()
    assert grown.arch_spec.widths[-1] == tuple(2 * w for w in model.arch_spec.widths[-1])
    with torch.no_grad():
        assert _rel_err(model(X), grown(X)[:, :2]) <= TOL


def test_an_op_whose_halves_disagree_is_caught() -> None:
    class Liar(Op):
        name = "liar"

        def plan(self, spec, stage):
            return replace(spec, num_classes=spec.num_classes + 1)

        def apply(self, model, step):
            return build_model(step.before)

    model = _model("vgg11@0.125")
    steps, after = plan_transition((Liar(),), model.arch_spec, StageView("vgg11@0.125", classes=3))
    with pytest.raises(RuntimeError, match="not the planned"):
        apply_transition(model, steps, after, Run())


# Optimizer state across growth: each op maps a per-parameter state (SGD momentum) as it maps the
# weights. Carrying the weights themselves as the "state" makes the check exact: wherever a
# weight was kept (moved, copied, split or pruned around) the carried state equals the grown
# network's weight; what growth created from nothing (inserted layers, new class rows) is zero.
CARRY_CASES = {
    "widen": ("vgg11@0.125", 2, StageView("vgg11@0.25", classes=2)),
    "deepen": ("vgg11@0.125", 2, StageView("vgg13@0.125", classes=2)),
    "deepen by copy": ("vgg13@0.125", 2, StageView("vgg16@0.125", classes=2, deepen_init="copy")),
    "add classes": ("vgg11@0.125", 2, StageView("vgg11@0.125", classes=4)),
    "prune": ("vgg11@0.25", 2, StageView("vgg11@0.25", classes=2, prune_ratio=0.5, prev_resolution=32)),
    "resnet deepen + widen": ("resnet10@0.125", 2, StageView("resnet18@0.25", classes=2)),
    "prune + deepen + widen + add classes": (
        "vgg11@0.25",
        2,
        StageView("vgg13@0.5", classes=4, prune_ratio=0.5, prev_resolution=32),
    ),
    "rescale stem": (
        "resnet10_stem7@0.125",
        2,
        StageView("resnet10_stem7@0.125", classes=2, resolution=32, prev_resolution=16, native=32),
    ),
}


@pytest.mark.parametrize("name", list(CARRY_CASES))
def test_carried_state_goes_where_the_weights_went_and_starts_at_zero_where_growth_created(name: str) -> None:
    arch, classes, stage = CARRY_CASES[name]
    first = replace(
        stage, arch=arch, classes=classes, prune_ratio=0.0, resolution=stage.prev_resolution if stage.native else None
    )
    steps, spec = plan_transition(FIRST, None, first)
    model = apply_transition(None, steps, spec, Run(generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():  # a trained-looking network: no zero weight and no exact identity anywhere
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    steps, after = plan_transition(transition_ops(), model.arch_spec, stage)
    assert steps, name
    run = Run(
        generator=torch.Generator().manual_seed(3),
        carried={"state": as_network(model, tensors_of(model)), "existed": as_network(model, 1.0)},
    )
    grown = apply_transition(model, steps, after, run)
    state, existed = tensors_of(run.carried["state"]), tensors_of(run.carried["existed"])
    weights = dict(grown.named_parameters())
    assert state.keys() == weights.keys() == existed.keys()
    created = 0
    for k, w in weights.items():
        kept = existed[k] != 0
        assert torch.equal(state[k], torch.where(kept, w.detach(), 0.0)), (
            k
        )  # kept: where the weight went; created: zero
        created += int((~kept).sum())
    fresh = {"widen": 0, "prune": 0, "rescale stem": 0}.get(name)  # ops that create nothing from nothing
    assert created == 0 if fresh == 0 else created > 0, created


def test_an_op_that_does_not_say_how_to_carry_state_drops_it_rather_than_misplace_it() -> None:
    class Reshaping(Op):
        name = "reshape"

        def plan(self, spec, stage):
            return replace(spec, num_classes=stage.classes) if stage.classes != spec.num_classes else None

        def apply(self, model, step):
            return AddClasses().apply(model, step)

    model = _model("vgg11@0.125")
    stage = StageView("vgg11@0.125", classes=4)
    steps, after = plan_transition((Reshaping(),), model.arch_spec, stage)
    run = Run(carried={"state": as_network(model, 1.0)})
    apply_transition(model, steps, after, run)
    assert run.carried["state"] is None
