"""The run-level training state (``train.lr_schedule: global``, ``carry_optimizer``,
``new_param_lr``) and data growth by samples: growth happens inside one training run."""

from __future__ import annotations

import math

import pytest
import torch

from growsearch.data.dataset import create_dataset
from growsearch.plan.schedule import Schedule, ScheduleError, Stage, TrainConfig
from growsearch.train import loop
from growsearch.train.loop import lr_factor
from growsearch.train.run import run_schedule

ARCH = "vgg11@0.125"


def _final_weights(sched: Schedule, ds) -> tuple[list, dict]:
    kept = {}
    result = run_schedule(sched, dataset=ds, progress=False, on_stage=lambda st, m: kept.update(m=m))
    history = [row for st in result.stages for row in st.history]
    return history, {k: v.detach().cpu().clone() for k, v in kept["m"].state_dict().items()}


def test_a_global_run_whose_stage_boundary_changes_nothing_equals_one_from_scratch_run(npz_data: str) -> None:
    """Two stages of the same network on the same data under one schedule, momentum and batch
    order carried: the boundary must not restart anything, so the run is the frontier's own
    one-stage run of the same length, weights and history."""
    ds = create_dataset(npz_data)
    train = TrainConfig(batch_size=8)
    one = Schedule(npz_data, [Stage(4, ARCH, 3)], train=train)
    two = Schedule(
        npz_data,
        [Stage(4, ARCH, 2), Stage(4, ARCH, 1)],
        data_growth="none",
        train=TrainConfig(batch_size=8, lr_schedule="global", carry_optimizer=True),
    )
    h1, w1 = _final_weights(one, ds)
    h2, w2 = _final_weights(two, ds)
    assert [r["lr"] for r in h1] == pytest.approx([r["lr"] for r in h2], rel=1e-9)
    assert [r["val_acc"] for r in h1] == [r["val_acc"] for r in h2]
    assert w1.keys() == w2.keys()
    for k in w1:
        assert torch.allclose(w1[k].float(), w2[k].float(), rtol=1e-5, atol=1e-6), k
    # and the carried state is what makes it so: without the momentum the boundary shows
    _, w3 = _final_weights(
        Schedule(npz_data, two.stages, data_growth="none", train=TrainConfig(batch_size=8, lr_schedule="global")), ds
    )
    assert any(not torch.allclose(w1[k].float(), w3[k].float(), rtol=1e-5, atol=1e-6) for k in w1)


def _lrs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The LR of every optimizer step of every stage, in order."""
    seen: list[float] = []
    make = loop.optimizer_for

    def recording(*args, **kwargs):
        opt = make(*args, **kwargs)
        opt.register_step_pre_hook(lambda o, a, k: seen.append(o.param_groups[0]["lr"]))
        return opt

    monkeypatch.setattr(loop, "optimizer_for", recording)
    return seen


@pytest.mark.parametrize("rewarm", [0, 1])
def test_the_lr_continues_the_global_schedule_across_growth(
    npz_data: str, monkeypatch: pytest.MonkeyPatch, rewarm: int
) -> None:
    ds = create_dataset(npz_data)  # 44 training images after validation: 6 steps of 8 per epoch
    train = TrainConfig(
        batch_size=8,
        lr=0.05,
        warmup_epochs=1,
        lr_schedule="global",
        rewarm_epochs=rewarm,
        rewarm_peak=2.0 if rewarm else 1.0,
    )
    sched = Schedule(npz_data, [Stage(4, ARCH, 2), Stage(4, "vgg13@0.125", 2)], data_growth="none", train=train)
    seen = _lrs(monkeypatch)
    run_schedule(sched, dataset=ds, progress=False)
    per_epoch = math.ceil(44 / 8)
    total, growth = 4 * per_epoch, 2 * per_epoch
    assert len(seen) == total
    on_schedule = [0.05 * lr_factor(s, warmup=per_epoch, total=total, plateau=False) for s in range(total)]
    assert seen[:growth] == pytest.approx(on_schedule[:growth])
    if not rewarm:  # no restart: the first step after growth is where the one schedule stands
        assert seen == pytest.approx(on_schedule)
    else:  # a tenth of it, climbing to twice it over one epoch, back onto it over another
        assert seen[growth] == pytest.approx(0.1 * on_schedule[growth])
        assert seen[growth + per_epoch] == pytest.approx(2.0 * on_schedule[growth + per_epoch])
        assert seen[growth + 2 * per_epoch - 1] < 2.0 * on_schedule[growth + 2 * per_epoch - 1]
    # the per-stage protocol restarts its warm-up at the growth instead
    monkeypatch.undo()
    seen = _lrs(monkeypatch)
    run_schedule(
        Schedule(npz_data, sched.stages, data_growth="none", train=TrainConfig(batch_size=8)),
        dataset=ds,
        progress=False,
    )
    assert seen[growth] == pytest.approx(0.05 * lr_factor(0, warmup=per_epoch, total=growth, plateau=False))


def test_new_param_lr_multiplies_the_update_of_what_growth_created_and_nothing_else(
    npz_data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from growsearch.model.arch import get_family
    from growsearch.train import run as run_module

    ds = create_dataset(npz_data)
    scales: list = []
    train_stage = run_module.train_stage

    def recording(*args, **kwargs):
        scales.append(kwargs["lr_scale"])
        return train_stage(*args, **kwargs)

    monkeypatch.setattr(run_module, "train_stage", recording)
    kept = {}
    sched = Schedule(npz_data, [Stage(2, ARCH, 1), Stage(4, "vgg13@0.125", 1)], train=TrainConfig(new_param_lr=3.0))
    run_schedule(sched, dataset=ds, progress=False, on_stage=lambda st, m: kept.update(m=m))
    assert scales[0] is None  # stage 1 grew nothing
    fc = get_family("vgg").classifier + ".weight"
    rows = scales[1][fc]
    assert rows[:2].eq(1).all() and rows[2:].eq(3).all()  # the 2 new classes' rows, and only them
    inserted = [k for k in scales[1] if k != fc and not k.startswith(get_family("vgg").classifier)]
    assert inserted and all(scales[1][k].eq(3).all() for k in inserted)  # the layers deepening inserted, whole
    assert len(inserted) < len(list(kept["m"].named_parameters())) - 2  # the trained layers are not scaled


def test_an_lr_scale_multiplies_one_sgd_update_entry_by_entry(npz_data: str) -> None:
    from growsearch.data.split import with_validation
    from growsearch.model.arch import create_model

    ds = with_validation(create_dataset(npz_data), 0.1, 0)
    cfg = TrainConfig(batch_size=64, warmup_epochs=0)  # one step
    deltas = []
    for scale in (None, 10.0):
        torch.manual_seed(0)
        model = create_model(ARCH, num_classes=4, in_chans=3)[0]
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        w = next(k for k, v in before.items() if v.dim() == 4)
        lr_scale = (
            None
            if scale is None
            else {
                w: torch.cat(
                    [
                        torch.ones(1, *before[w].shape[1:]),
                        torch.full((before[w].shape[0] - 1, *before[w].shape[1:]), scale),
                    ]
                )
            }
        )
        loop.train_stage(
            model, ds, epochs=1, cfg=cfg, seed=0, device=torch.device("cpu"), progress=False, lr_scale=lr_scale
        )
        deltas.append(dict(model.named_parameters())[w].detach() - before[w])
    assert torch.allclose(deltas[1][:1], deltas[0][:1], atol=1e-7)
    assert torch.allclose(deltas[1][1:], 10 * deltas[0][1:], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    "changes, msg",
    [
        ({"data_growth": "samples"}, "needs every stage's fraction"),
        ({"data_growth": "samples", "fractions": [0.5, 0.5]}, "strictly increase"),
        ({"data_growth": "samples", "fractions": [0.5, 0.9]}, "last stage must see all data"),
        ({"data_growth": "samples", "fractions": [0, 1]}, "(0, 1]"),
        ({"fractions": [0.5, 1]}, "set data_growth to samples"),
        ({"train": {"new_param_lr": 0}}, "train.new_param_lr must be"),
        ({"train": {"lr_schedule": "cosine"}}, "train.lr_schedule must be one of per_stage, global"),
        ({"train": {"rewarm_epochs": 1}}, "set train.lr_schedule to global"),
        ({"train": {"lr_schedule": "global"}, "patience": 2}, "patience (train to a plateau) is a per-stage rule"),
        ({"train": {"lr_schedule": "global"}, "lr": 0.1}, "a stage lr restarts the schedule"),
        ({"deepen_init": "zeros"}, "deepen_init must be one of identity, copy"),
        ({"data_growth": "none", "classes": [2, 4]}, "trains every class in every stage"),
    ],
)
def test_bad_levers_are_one_line_errors_naming_the_fix(npz_data: str, changes: dict, msg: str) -> None:
    from growsearch.plan.planner import check

    fr = changes.get("fractions", [None, None])
    cls = changes.get(
        "classes", [4, 4] if changes.get("data_growth") in ("samples", "none") or "fractions" in changes else [2, 4]
    )
    stages = [
        Stage(cls[0], ARCH, 1, fraction=fr[0], patience=changes.get("patience"), lr=changes.get("lr")),
        Stage(cls[1], "vgg13@0.125", 1, fraction=fr[1]),
    ]
    kw = {k: changes[k] for k in ("data_growth", "deepen_init") if k in changes}
    with pytest.raises(ScheduleError, match=None) as e:
        sched = Schedule(npz_data, stages, train=TrainConfig(**changes.get("train", {})), **kw)
        sched.validate()
        check(sched, num_classes=4)
    assert msg in str(e.value) and "\n" not in str(e.value)
