"""SSGD (``train.optimizer: ssgd``): the affine-scaled step, its neutral setting, its filter
groups, and the recipe keys a schedule trains with."""

from __future__ import annotations

import copy

import pytest
import torch

from growsearch.data.dataset import create_dataset
from growsearch.model.arch import create_model
from growsearch.model.prune import channel_norms
from growsearch.plan.planner import plan_schedule
from growsearch.plan.schedule import Schedule, ScheduleError, Stage, TrainConfig
from growsearch.train import loop
from growsearch.train.prefix import prefix_key
from growsearch.train.run import run_schedule
from growsearch.train.ssgd import SSGD

ARCH = "vgg11@0.125"
LS_LR, LS_WD = 0.05, 1e-2
LS_STEPS = {"weights": 1000, "filters": 2000}  # where SSGD has found the sparse solutions (below)


def _sparse_problem(seed: int, groups: int, size: int, k: int):
    """An underdetermined least-squares problem (20 equations) whose exact solution has ``k``
    non-zero rows of ``size`` entries among ``groups`` rows."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(20, groups * size, generator=g) / 20**0.5
    x0 = torch.zeros(groups, size)
    support = torch.randperm(groups, generator=g)[:k]
    x0[support] = torch.randn(k, size, generator=g).sign() * (1 + torch.rand(k, size, generator=g))
    return a, a @ x0.flatten(), set(support.tolist()), 0.1 * torch.randn(groups, size, generator=g)


def _recovered(opt_for, groups: int, size: int, steps: int, problems: int = 8) -> int:
    """How many of ``problems`` sparse problems end with exactly their support (rows above 1% of
    the largest). The problems are independent parameters trained together: one backward per step."""
    cases = [_sparse_problem(seed, groups, size, 3) for seed in range(problems)]
    xs = [torch.nn.Parameter(init) for *_, init in cases]
    opt = opt_for(xs)
    for _ in range(steps):
        opt.zero_grad()
        sum(0.5 * (a @ x.flatten() - y).square().sum() for (a, y, _, _), x in zip(cases, xs)).backward()
        opt.step()
    rows = [x.detach().norm(dim=1) for x in xs]
    return sum(
        set((r > 1e-2 * r.max()).nonzero().flatten().tolist()) == support for r, (_, _, support, _) in zip(rows, cases)
    )


@pytest.mark.parametrize("structure", ["weights", "filters"])
def test_ssgd_recovers_a_sparse_solution_where_sgd_finds_a_dense_one(structure: str) -> None:
    """The papers' premise on a case small enough to check: gradient descent from a dense start
    converges to a dense solution of an underdetermined system; the affine-scaled step to the
    sparse one that generated it (entries, or whole rows for the filter variant)."""
    groups, size = (48, 1) if structure == "weights" else (12, 4)
    kw = dict(lr=LS_LR, momentum=0.9, weight_decay=LS_WD)
    found_ssgd = _recovered(
        lambda xs: SSGD(xs, **kw, channels=[[x] for x in xs] if structure == "filters" else None),
        groups,
        size,
        LS_STEPS[structure],
    )
    found_sgd = _recovered(lambda xs: torch.optim.SGD(xs, **kw), groups, size, LS_STEPS[structure])
    # measured here: 5 of 8 (weights, 1000 steps) and 6 (filters, 2000; 7 at 3000, 1 at 1000) for SSGD, 0 of 8 for SGD
    assert found_ssgd >= 4 and found_sgd <= 1, (found_ssgd, found_sgd)


@pytest.mark.parametrize("structure", ["weights", "filters"])
def test_strength_zero_is_torchs_sgd_step(structure: str) -> None:
    """The neutral setting (s = 0: every ω equal) takes torch's SGD step, momentum, Nesterov and
    weight decay included."""
    torch.manual_seed(0)
    model, _ = create_model(ARCH, num_classes=3, in_chans=3)
    twin = copy.deepcopy(model)
    cfg = TrainConfig(
        optimizer="ssgd", ssgd_structure=structure, ssgd_strength=0.0
    )  # 0: refused in a schedule, neutral here
    opt = loop.optimizer_for(model, cfg, 0.05)
    assert isinstance(opt, SSGD)
    groups = [
        {
            "params": [dict(twin.named_parameters())[n] for n in _names(model, g["params"])],
            "weight_decay": g["weight_decay"],
        }
        for g in opt.param_groups
    ]
    ref = torch.optim.SGD(groups, lr=0.05, momentum=0.9, nesterov=True)
    x = torch.randn(4, 3, 32, 32)
    y = torch.tensor([0, 1, 2, 0])
    for _ in range(3):
        for m, o in ((model, opt), (twin, ref)):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
    for (k, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=k)


def _names(model: torch.nn.Module, params: list) -> list[str]:
    ids = {id(p): n for n, p in model.named_parameters()}
    return [ids[id(p)] for p in params]


def test_the_filter_variant_scales_every_tensor_of_a_channel_alike_and_weak_channels_least() -> None:
    torch.manual_seed(0)
    model, _ = create_model(ARCH, num_classes=3, in_chans=3)
    conv, bn = model.features[0], model.features[1]
    with torch.no_grad():  # channel 0 weak, the others typical
        conv.weight[0] *= 0.01
        bn.weight[0], bn.bias[0] = 0.01, 0.0
    opt = loop.optimizer_for(
        model, TrainConfig(optimizer="ssgd", ssgd_structure="filters", weight_decay=0.0, momentum=0.0), 1.0
    )
    assert isinstance(opt, SSGD)
    # the first channel group holds the stem conv's filters (and bias) and its BatchNorm's γ and β
    first = next(g for g in opt.channels if any(t is conv.weight for t in g))
    assert {id(t) for t in first} == {id(conv.weight), id(bn.weight), id(bn.bias)} | (
        {id(conv.bias)} if conv.bias is not None else set()
    )
    for t in first:
        t.grad = torch.ones_like(t)
    before = {id(t): t.detach().clone() for t in first}
    opt.step()
    steps = {
        id(t): (before[id(t)] - t.detach()).reshape(t.shape[0], -1)[:, 0] for t in first
    }  # lr 1, grad 1: the step is ω²
    for s in steps.values():
        torch.testing.assert_close(s, steps[id(conv.weight)])
    w2 = steps[id(conv.weight)]
    assert w2[0] < 0.01 * w2[1:].min() and w2.mean() == pytest.approx(1.0, rel=1e-5)
    assert channel_norms(first)[0] < 1e-3 < channel_norms(first)[1:].min()


def test_ssgd_keys_read_write_and_default_to_plain_sgd() -> None:
    plain = Schedule("digits", [Stage(5, ARCH, 2), Stage(10, "vgg13@0.125", 2)])
    assert "optimizer" not in plain.to_dict()["train"] and "optimizer" not in plain.to_dict()["stages"][0]
    sparse = Schedule(
        "digits",
        [Stage(5, ARCH, 2, optimizer="ssgd", ssgd_strength=0.5), Stage(10, "vgg13@0.125", 2)],
        train=TrainConfig(ssgd_eps=0.01, ssgd_structure="weights"),
    )
    d = sparse.to_dict()
    assert d["stages"][0]["optimizer"] == "ssgd" and d["stages"][0]["ssgd_strength"] == 0.5
    assert d["train"]["ssgd_eps"] == 0.01 and d["train"]["ssgd_structure"] == "weights"
    assert Schedule.from_dict(d) == sparse
    assert (
        sparse.stages[0].recipe(sparse.train).optimizer == "ssgd"
        and sparse.stages[1].recipe(sparse.train).optimizer == "sgd"
    )
    order = list(range(10))
    # the optimizer is part of what trained a stage: a cached SGD network is never served to SSGD
    assert prefix_key(sparse, 1, order) != prefix_key(plain, 1, order)
    # so is a stage's own weight decay; unset, it leaves the key (and every cached network) as it was
    decayed = Schedule("digits", [Stage(5, ARCH, 2, weight_decay=5e-3), Stage(10, "vgg13@0.125", 2)])
    assert Schedule.from_dict(decayed.to_dict()) == decayed and "weight_decay" not in plain.to_dict()["stages"][0]
    assert (
        decayed.stages[0].recipe(decayed.train).weight_decay == 5e-3
        and decayed.stages[1].recipe(decayed.train).weight_decay == 5e-4
    )
    assert prefix_key(decayed, 1, order) != prefix_key(plain, 1, order)
    assert prefix_key(
        Schedule("digits", [Stage(5, ARCH, 2, weight_decay=None), Stage(10, "vgg13@0.125", 2)]), 1, order
    ) == prefix_key(plain, 1, order)


@pytest.mark.parametrize(
    ("stage", "train", "fix"),
    [
        ({"optimizer": "adam"}, {}, "optimizer must be one of sgd, ssgd"),
        ({"ssgd_strength": 0.5}, {}, "set its optimizer to ssgd or drop ssgd_strength"),
        ({"optimizer": "ssgd", "ssgd_strength": 0.0}, {}, "ssgd_strength must be a number in (0, 1]"),
        ({}, {"optimizer": "ssgd", "ssgd_strength": -1.0}, "train.ssgd_strength must be a number in (0, 1]"),
        ({}, {"optimizer": "ssgd", "ssgd_eps": 0.0}, "train.ssgd_eps must be a number in (0, 1]"),
        ({}, {"ssgd_structure": "rows"}, "train.ssgd_structure must be one of filters, weights"),
        ({"weight_decay": float("inf")}, {}, "stage 1: weight_decay must be a number in [0, 1]"),
        ({"weight_decay": -1e-4}, {}, "stage 1: weight_decay must be a number in [0, 1]"),
        ({"weight_decay": "strong"}, {}, "stage 1: weight_decay must be a number in [0, 1]"),
    ],
)
def test_bad_optimizer_keys_are_one_line_errors(stage: dict, train: dict, fix: str) -> None:
    with pytest.raises(ScheduleError, match=fix.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        Schedule(
            "digits", [Stage(5, ARCH, 2, **stage), Stage(10, "vgg13@0.125", 2)], train=TrainConfig(**train)
        ).validate()


def test_ssgd_on_a_family_that_cannot_prune_is_refused() -> None:
    from growsearch.plan.planner import check

    with pytest.raises(ScheduleError, match="resnet backbones cannot be pruned yet: use optimizer sgd"):
        check(Schedule("digits", [Stage(10, "resnet10@0.25", 2, optimizer="ssgd")]))


def test_a_stage_trains_with_its_own_optimizer_and_planned_m_is_trained_m(
    npz_data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = create_dataset(npz_data)
    built = []
    real = loop.optimizer_for
    monkeypatch.setattr(loop, "optimizer_for", lambda model, cfg, lr: built.append(real(model, cfg, lr)) or built[-1])
    sched = Schedule(
        npz_data,
        [
            Stage(2, ARCH, 2, optimizer="ssgd", ssgd_strength=0.5, weight_decay=5e-3),
            Stage(4, "vgg13@0.125", 1, prune_ratio=0.5),
        ],
        train=TrainConfig(batch_size=16),
    )
    result = run_schedule(sched, dataset=ds, progress=False)
    assert [type(o).__name__ for o in built] == ["SSGD", "SGD"] and built[0].strength == 0.5
    # each stage decays its conv/linear weights at its own rate (BN and biases at none)
    assert [sorted({g["weight_decay"] for g in o.param_groups}) for o in built] == [[0.0, 5e-3], [0.0, 5e-4]]
    assert result.M == sum(p.M for p in plan_schedule(sched, dataset=ds))
    assert result.schedule["stages"][0]["optimizer"] == "ssgd"


def test_baseline_trains_with_the_optimizer_its_flags_name(tmp_path) -> None:
    """The from-scratch frontier takes the same recipe: --optimizer ssgd reaches the run's schedule."""
    import json

    from growsearch.cli.commands import main

    out = tmp_path / "front"
    assert (
        main(
            [
                "baseline",
                "--data",
                "digits",
                "--arch",
                ARCH,
                "--epochs",
                "1",
                "--optimizer",
                "ssgd",
                "--ssgd-strength",
                "0.5",
                "--weight-decay",
                "0.005",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    train = json.loads((out / "result.json").read_text())["schedule"]["train"]
    assert train["optimizer"] == "ssgd" and train["ssgd_strength"] == 0.5 and train["weight_decay"] == 0.005
    assert (
        main(
            [
                "baseline",
                "--data",
                "digits",
                "--arch",
                ARCH,
                "--epochs",
                "1",
                "--weight-decay",
                "inf",
                "--out",
                str(tmp_path / "inf"),
                "--quiet",
            ]
        )
        == 2
    )
    assert not (tmp_path / "inf").exists()
    assert (
        main(
            [
                "baseline",
                "--data",
                "digits",
                "--arch",
                ARCH,
                "--epochs",
                "1",
                "--optimizer",
                "ssgd",
                "--ssgd-strength",
                "2",
                "--out",
                str(tmp_path / "bad"),
                "--quiet",
            ]
        )
        == 2
    )
    assert not (tmp_path / "bad").exists()


def test_a_closure_step_scales_the_gradients_the_closure_computed() -> None:
    """``step(closure)`` (torch's protocol) takes the same step as computing the loss first."""
    torch.manual_seed(0)
    x, y = torch.randn(8, 5), torch.randn(8)
    w1 = torch.nn.Parameter(torch.randn(1, 5))
    w2 = torch.nn.Parameter(w1.detach().clone())
    a, b = SSGD([w1], lr=0.1, momentum=0.9), SSGD([w2], lr=0.1, momentum=0.9)

    def closure():
        a.zero_grad()
        loss = (x @ w1[0] - y).square().mean()
        loss.backward()
        return loss

    for _ in range(3):
        assert a.step(closure) is not None
        b.zero_grad()
        (x @ w2[0] - y).square().mean().backward()
        b.step()
    torch.testing.assert_close(w1, w2)


# --- prune_threshold: the sparsity decides the widths --------------------------------------


def test_pruning_at_the_threshold_removes_exactly_the_zeroed_filters_and_changes_nothing() -> None:
    from growsearch.model.arch import create_model
    from growsearch.model.prune import prune_below, threshold_widths

    torch.manual_seed(0)
    model, spec = create_model("vgg11@0.25", 10)
    dead = [0, 3, 5]  # what SSGD's filter variant drives to zero: filter, bias, BN γ and β of a channel
    conv, bn = model.features[4], model.features[5]  # block 2's conv (32 filters) and its BatchNorm
    with torch.no_grad():
        for t in (conv.weight, conv.bias, bn.weight, bn.bias):
            t[dead] = 0
    model.eval()
    assert threshold_widths(model, 0.01) == ((16,), (29,), (64, 64), (128, 128), (128, 128))
    history: list = []
    pruned = prune_below(model, 0.01, input_shape=(3, 32, 32), record=history)
    assert pruned.arch_spec.widths[1] == (29,) and history
    kept = [c for c in range(32) if c not in dead]
    assert torch.equal(pruned.features[4].weight, conv.weight[kept])
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(pruned(x), model(x), atol=1e-5)  # they were already zero


def test_a_threshold_stage_is_planned_as_a_bound_until_training_says_its_widths(npz_data: str) -> None:
    from growsearch.plan.planner import plan_schedule, planned_M
    from growsearch.train.run import run_schedule

    sched = Schedule(
        npz_data,
        [Stage(2, "vgg11@0.125", 2, optimizer="ssgd"), Stage(4, "vgg13@0.125", 1, prune_threshold=0.6)],
        train=TrainConfig(batch_size=8),
    )
    before = plan_schedule(sched)
    assert before[0].M is not None and before[1].M is None and before[1].bounded and planned_M(before) is None
    r = run_schedule(sched, progress=False)
    widths = tuple(tuple(b) for b in r.stages[1].prune["widths_after"])
    assert r.stages[1].prune["threshold"] == 0.6 and sum(map(sum, widths)) < sum(map(sum, before[0].spec.widths))
    after = plan_schedule(sched, prune_widths={2: widths})
    assert (
        planned_M(after) == r.M <= sum(p.M_max for p in before)
    )  # the plan with the widths is the bill; the bound holds
    d = sched.to_dict()
    assert (
        Schedule.from_dict(d) == sched
        and "prune_threshold" not in d["stages"][0]
        and d["stages"][1]["prune_threshold"] == 0.6
    )


@pytest.mark.parametrize(
    "stage,msg",
    [
        ({"prune_threshold": 1.5}, "prune_threshold must be in (0, 1]"),
        ({"prune_threshold": 0}, "prune_threshold must be in (0, 1]"),
        ({"prune_threshold": 0.5, "prune_ratio": 0.5}, "keep one"),
    ],
)
def test_a_bad_threshold_is_a_one_line_error(stage: dict, msg: str) -> None:
    sched = Schedule("digits", [Stage(5, "vgg11@0.25", 1), Stage(10, "vgg13@0.25", 1, **stage)])
    with pytest.raises(
        ScheduleError, match=msg.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    ):
        sched.validate()


def test_a_threshold_on_stage_one_or_a_family_that_cannot_prune_is_refused() -> None:
    from growsearch.plan.planner import check

    with pytest.raises(ScheduleError, match="stage 1: prune_threshold"):
        Schedule("digits", [Stage(10, "vgg11@0.25", 1, prune_threshold=0.5)]).validate()
    with pytest.raises(ScheduleError, match="resnet is not supported"):
        check(Schedule("digits", [Stage(5, "resnet10@0.25", 1), Stage(10, "resnet18@0.25", 1, prune_threshold=0.5)]))


def test_a_run_resumed_after_a_threshold_stage_plans_with_the_widths_it_left(npz_data: str, tmp_path) -> None:
    from growsearch.train.run import run_schedule

    sched = Schedule(
        npz_data,
        [
            Stage(2, "vgg11@0.125", 1, optimizer="ssgd"),
            Stage(3, "vgg11@0.125", 1, prune_threshold=0.6),
            Stage(4, "vgg13@0.125", 1),
        ],
        train=TrainConfig(batch_size=8),
    )
    whole = run_schedule(sched, progress=False, prefix_cache=tmp_path / "cache")
    # stages 1 and 2 from the cache: stage 3 is planned from the widths stage 2's threshold left
    later = run_schedule(sched, progress=False, prefix_cache=tmp_path / "cache", reuse_upto=2)
    assert later.reused_stages == 2 and later.stages[-1].spec == whole.stages[-1].spec and later.M == whole.M
