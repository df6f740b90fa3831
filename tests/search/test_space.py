from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from growsearch.plan.planner import check
from growsearch.search.space import SpaceError, list_spaces, load_space, suggest_schedule
from helpers import REPO

BASE = """dataset: digits
final_arch: vgg19@0.25
archs: [vgg11@0.25, vgg16@0.25]
"""


@pytest.mark.parametrize("name", ["digits_vgg", "cifar100_vgg", "tinyimagenet_vgg", "cifar10_resnet", "cifar10_vgg"])
def test_shipped_spaces_load_by_name(name: str) -> None:
    assert name in list_spaces()
    space = load_space(name)
    assert space.name == name and space.trials >= 1


@pytest.mark.parametrize("name", ["digits_vgg", "cifar100_vgg", "cifar10_resnet", "cifar10_vgg"])
def test_suggested_schedules_are_always_valid(name: str) -> None:
    space = load_space(name)
    classes = {"digits": 10, "cifar100": 100, "cifar10": 10}[space.dataset.split("?")[0]]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seen = set()
    for _ in range(40):
        sched = suggest_schedule(study.ask(), space, classes)
        check(sched, num_classes=classes)  # nested, growing, never shrinking, last = all classes
        assert space.stages[0] <= len(sched.stages) <= space.stages[1]
        assert sched.stages[-1].arch in space.final_choices()
        if len(sched.stages) > 1 and space.last_share:  # the floor, where the epoch range allows it
            last, total = sched.stages[-1].epochs, sum(s.epochs for s in sched.stages)
            assert last / total >= space.last_share - 1e-9 or last == space.epochs[1]
        seen.add(tuple((s.classes, s.arch) for s in sched.stages))
    assert len(seen) > 10  # the space is really explored


def test_the_widened_cifar10_space_can_answer_train_a_smaller_network() -> None:
    """One-stage schedules of a small network, data growth none and by samples, and a floor on the
    last stage's share are all in the shipped CIFAR-10 space; a one-stage VGG11 round-trips."""
    from growsearch.plan.schedule import Schedule, Stage
    from growsearch.search.space import schedule_params

    space = load_space("cifar10_vgg")
    assert "vgg11@0.25" in space.final_choices() and space.stages[0] == 1
    assert {"none", "samples"} <= set(space.data_growth) and space.last_share > 0
    small = Schedule(space.dataset, [Stage(10, "vgg11@0.25", 6)], seed=space.seed, train=space.train)
    params = schedule_params(small, space, 10)
    assert params is not None and params["final_arch"] == "vgg11@0.25"
    assert suggest_schedule(optuna.trial.FixedTrial(params), space, 10).to_dict() == small.to_dict()
    # a grown schedule the space proposed round-trips; with its last stage under the floor it is
    # not one the space proposes
    from dataclasses import replace

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    grown = next(
        s
        for s in (suggest_schedule(study.ask(), space, 10) for _ in range(200))
        if len(s.stages) == 2 and s.stages[0].epochs >= 6
    )
    assert schedule_params(grown, space, 10) is not None
    short = replace(grown, stages=[grown.stages[0], replace(grown.stages[1], epochs=2)])
    assert schedule_params(short, space, 10) is None


@pytest.mark.parametrize("bad", ["1.0", "-0.1", "true", "x"])
def test_a_last_share_outside_zero_to_one_is_refused(tmp_path, bad: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"dataset: digits\nfinal_arch: vgg11@0.125\narchs: [vgg11@0.125]\nlast_share: {bad}\n")
    with pytest.raises(SpaceError, match="last_share"):
        load_space(path)


@pytest.mark.parametrize(
    "extra,msg",
    [
        ("stagez: [2, 3]\n", "unknown key"),
        ("stages: [3, 2]\n", "min 3 is above max 2"),
        ("split: [0.0, 0.5]\n", "strictly between 0 and 1"),
        ("epochs: [0, 5]\n", "outside"),
        ("epochs: [2.5, 5]\n", "expected \\[min, max\\] of ints"),
        ("prune_ratio: [0, 1.5]\n", "prune_ratio"),
        ("tolerance: 5\n", "tolerance"),
        ("trials: 0\n", "trials"),
        ("archs: [resnet18]\n", "one family"),
        ("train: {lr: 0.1, momentom: 0.9}\n", "train: unknown key"),
    ],
)
def test_bad_spaces_fail_with_the_key_named(tmp_path: Path, extra: str, msg: str) -> None:
    body = BASE if not extra.startswith("archs") else BASE.replace("archs: [vgg11@0.25, vgg16@0.25]\n", "")
    (tmp_path / "s.yaml").write_text(body + extra)
    with pytest.raises(SpaceError, match=msg):
        load_space(tmp_path / "s.yaml")


def test_missing_space_lists_the_shipped_ones() -> None:
    with pytest.raises(SpaceError, match="digits_vgg"):
        load_space("no_such_space")


def test_resolutions_are_searched_never_decreasing_and_native_last(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(BASE + "stages: [3, 3]\nresolutions: [16, 24, 32]\n")
    space = load_space(tmp_path / "s.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        sched = suggest_schedule(study.ask(), space, 10)
        res = [st.resolution for st in sched.stages]
        assert res[-1] is None and res[0] <= res[1]
        check(sched, num_classes=10, image_size=32)
        seen.add(tuple(res))
    assert len(seen) > 2


def test_resolutions_below_the_backbone_minimum_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(BASE + "resolutions: [4, 16]\n")
    with pytest.raises(SpaceError, match="at least 8 px"):
        load_space(tmp_path / "s.yaml")


@pytest.mark.parametrize("name", ["digits_vgg", "cifar100_vgg"])
def test_what_optuna_records_is_what_trains(name: str) -> None:
    """No repair after sampling: the recorded parameters alone rebuild the schedule, and each
    one equals the value that trains (an earlier version sorted splits and raised archs)."""
    space = load_space(name)
    classes = {"digits": 10, "cifar100": 100}[space.dataset]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(40):
        trial = study.ask()
        sched = suggest_schedule(trial, space, classes)
        p = trial.params
        assert suggest_schedule(optuna.trial.FixedTrial(p), space, classes).to_dict() == sched.to_dict()
        n = p["n_stages"]
        assert len(sched.stages) == n and [p.get(f"classes_{i}", classes) for i in range(1, n)] == [
            s.classes for s in sched.stages[:-1]
        ]
        assert [p[f"epochs_{i}"] for i in range(1, n + 1)] == [s.epochs for s in sched.stages]
        assert [p.get(f"prune_{i}", 0.0) for i in range(2, n + 1)] == [s.prune_ratio for s in sched.stages[1:]]
        assert [p[f"arch_{i}"] for i in range(1, n)] == sorted(
            p[f"arch_{i}"] for i in range(1, n)
        )  # rungs never go down


def test_a_deeper_but_narrower_arch_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("dataset: digits\nfinal_arch: vgg19@0.5\narchs: [vgg11@0.5, vgg16@0.25]\n")
    with pytest.raises(SpaceError, match="deeper but narrower"):
        load_space(tmp_path / "s.yaml")


@pytest.mark.slow  # builds a wheel
def test_the_shipped_spaces_sit_at_the_top_level_and_a_wheel_installs_them(tmp_path: Path) -> None:
    import subprocess
    import sys
    import zipfile

    root = REPO
    top = sorted(p.name for p in (root / "search_spaces").glob("*.yaml"))
    assert top and [n[: -len(".yaml")] for n in top] == list_spaces()
    assert not (root / "growsearch" / "search_spaces").exists()  # one copy, at the top level
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(root)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = tmp_path.glob("growsearch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # installed inside the package, where shipped_spaces_dir() looks first: found by name after `pip install`
    assert sorted(n.split("/")[-1] for n in names if n.startswith("growsearch/search_spaces/")) == top
    assert not [n for n in names if n.startswith("search_spaces/")]


@pytest.mark.parametrize(
    "change, key",
    [
        (
            {"zero_mask": True},
            "zero_mask: a schedule this space can propose",
        ),  # ResNet inserts no identity kernels to mask
        ({"prune_ratio": (0.0, 0.5)}, "prune_ratio: a schedule this space can propose"),  # ResNet cannot be pruned
    ],
)
def test_a_space_that_can_propose_an_invalid_schedule_is_refused_when_loaded(
    tmp_path: Path, change: dict, key: str
) -> None:
    import yaml

    d = yaml.safe_load((REPO / "search_spaces" / "cifar10_resnet.yaml").read_text())
    d.update({k: list(v) if isinstance(v, tuple) else v for k, v in change.items()})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(SpaceError, match=key):
        load_space(path)


def test_the_levers_are_searched_and_what_trains_is_what_optuna_recorded() -> None:
    """cifar10_vgg opens every lever: each mode is proposed, only where it means something
    (no re-warm or stage LR without their schedule, copy only where a layer can be copied, no
    run-level lever in a one-stage schedule), and the recorded parameters rebuild the schedule."""
    from growsearch.plan.planner import copied_layers

    space = load_space("cifar10_vgg")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    seen: dict[str, set] = {k: set() for k in ("data_growth", "lr_schedule", "deepen_init", "carry_optimizer", "n")}
    for _ in range(150):
        trial = study.ask()
        sched = suggest_schedule(trial, space, 10)
        trans = check(sched, num_classes=10, image_size=32)
        assert suggest_schedule(optuna.trial.FixedTrial(trial.params), space, 10).to_dict() == sched.to_dict()
        t, n = sched.train, len(sched.stages)
        seen["data_growth"].add(sched.data_growth)
        seen["lr_schedule"].add(t.lr_schedule)
        seen["deepen_init"].add(sched.deepen_init)
        seen["carry_optimizer"].add(t.carry_optimizer)
        seen["n"].add(n)
        if sched.data_growth == "samples" and n > 1:
            fr = [st.fraction for st in sched.stages]
            assert fr[-1] == 1 and all(0.2 - 1e-9 <= f <= 0.8 + 1e-9 for f in fr[:-1]) and fr == sorted(set(fr))
        if sched.data_growth != "classes":
            assert {st.classes for st in sched.stages} == {10}
        if t.lr_schedule == "global":
            assert all(st.lr is None for st in sched.stages)
        else:
            assert t.rewarm_epochs == 0 and "rewarm_epochs" not in trial.params
        if sched.deepen_init == "copy":
            assert copied_layers(trans) > 0
        if n == 1:
            assert not {"carry_optimizer", "new_param_lr", "rewarm_epochs", "deepen_init"} & set(trial.params)
    assert seen == {
        "data_growth": {"classes", "samples", "none"},
        "lr_schedule": {"per_stage", "global"},
        "deepen_init": {"identity", "copy"},
        "carry_optimizer": {False, True},
        "n": {1, 2, 3},
    }


def test_a_lever_schedule_enqueues_as_the_samplers_own_parameters() -> None:
    from growsearch.plan.schedule import Schedule, Stage, TrainConfig
    from growsearch.search.space import schedule_params

    space = load_space("cifar10_vgg")
    sched = Schedule(
        space.dataset,
        [Stage(10, "vgg11@0.25", 4, fraction=0.5, resolution=16), Stage(10, "vgg19@0.25", 6, fraction=1.0)],
        data_growth="samples",
        deepen_init="copy",
        train=TrainConfig(lr=0.05, lr_schedule="global", carry_optimizer=True, new_param_lr=2.0),
    )
    params = schedule_params(sched, space, 10)
    assert params is not None and params["data_growth"] == "samples" and params["deepen_init"] == "copy"
    assert suggest_schedule(optuna.trial.FixedTrial(params), space, 10).to_dict() == sched.to_dict()
    assert "lr_2" not in params and "rewarm_peak" not in params  # only what the space asks for


def test_the_optimizer_and_its_strength_are_proposed_per_stage_with_the_prune_ratio() -> None:
    from growsearch.plan.schedule import Schedule, Stage
    from growsearch.search.space import schedule_params

    space = load_space("cifar100_vgg")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen, strengths, pruned_after_ssgd = set(), [], 0
    for _ in range(60):
        trial = study.ask()
        sched = suggest_schedule(trial, space, 100)
        check(sched, num_classes=100, image_size=32)
        assert suggest_schedule(optuna.trial.FixedTrial(trial.params), space, 100).to_dict() == sched.to_dict()
        for i, st in enumerate(sched.stages):
            own = st.recipe(sched.train)
            seen.add(own.optimizer)
            if own.optimizer == "ssgd":
                strengths.append(own.ssgd_strength)
                pruned_after_ssgd += i + 1 < len(sched.stages) and sched.stages[i + 1].prune_ratio > 0
            else:
                assert (
                    st.optimizer is None and st.ssgd_strength is None
                )  # the recipe's own optimizer is not repeated per stage
    assert seen == {"sgd", "ssgd"} and all(0.25 <= s <= 1 for s in strengths) and pruned_after_ssgd > 0
    sched = Schedule(
        space.dataset,
        [
            Stage(50, "vgg11", 20, optimizer="ssgd", ssgd_strength=0.5),
            Stage(100, "vgg19", 40, prune_ratio=0.3, lr=0.05),
        ],
        train=space.train,
    )
    params = schedule_params(sched, space, 100)
    assert params is not None and params["optimizer_1"] == "ssgd" and params["ssgd_strength_1"] == 0.5
    assert suggest_schedule(optuna.trial.FixedTrial(params), space, 100).to_dict() == sched.to_dict()


@pytest.mark.parametrize(
    "extra, msg",
    [
        ("data_growth: [classes, cubes]\n", "data_growth: a list of distinct choices from classes, samples, none"),
        ("lr_schedule: global\n", "lr_schedule: a list of distinct choices"),
        ("carry_optimizer: [maybe]\n", "carry_optimizer: a list of distinct choices from false, true"),
        ("new_param_lr: [0, 2]\n", "new_param_lr: multipliers must be > 0"),
        ("rewarm_epochs: [0, 2]\n", "add global to lr_schedule"),
        ("lr_schedule: [global]\ngrown_lr: [0.01, 0.1]\n", "drop grown_lr"),
        ("zero_mask: true\ndeepen_init: [copy]\n", "add identity to deepen_init"),
        ("train: {lr_schedule: global}\n", "set it as a top-level space key"),
        ("optimizer: [adam]\n", "optimizer: a list of distinct choices from sgd, ssgd"),
        ("ssgd_strength: [0.5, 1]\n", "needs ssgd among the optimizers"),
        ("optimizer: [sgd, ssgd]\nssgd_strength: [0, 1]\n", "ssgd_strength: strengths must be in (0, 1]"),
        ("baseline_resolutions: [16, 32]\n", "baseline_switch_at must give 1 fraction"),
        ("baseline_resolutions: [16, 32]\nbaseline_switch_at: [1.5]\n", "baseline_switch_at must give 1 fraction"),
    ],
)
def test_bad_levers_in_a_space_name_the_key(tmp_path: Path, extra: str, msg: str) -> None:
    (tmp_path / "s.yaml").write_text(BASE + extra)
    with pytest.raises(SpaceError) as e:
        load_space(tmp_path / "s.yaml")
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_a_space_whose_recipe_is_ssgd_trains_every_stage_with_it(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(BASE + "train: {optimizer: ssgd}\nssgd_strength: [0.5, 1]\n")
    space = load_space(tmp_path / "s.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        sched = suggest_schedule(study.ask(), space, 10)
        assert all(
            st.recipe(sched.train).optimizer == "ssgd" and 0.5 <= st.recipe(sched.train).ssgd_strength <= 1
            for st in sched.stages
        )


@pytest.mark.parametrize("extra", ["optimizer: [sgd, ssgd]\n", "train: {optimizer: ssgd}\n"])
def test_ssgd_on_a_family_that_cannot_prune_is_refused_when_the_space_loads(tmp_path: Path, extra: str) -> None:
    (tmp_path / "s.yaml").write_text("dataset: digits\nfinal_arch: resnet18@0.25\narchs: [resnet10@0.25]\n" + extra)
    with pytest.raises(SpaceError) as e:
        load_space(tmp_path / "s.yaml")
    assert str(e.value).startswith("optimizer: ") and "resnet backbones cannot be pruned yet: use optimizer sgd" in str(
        e.value
    )


def test_the_frontier_trains_the_whole_family_with_its_lr_swept_by_default() -> None:
    from dataclasses import replace

    sp = load_space("digits_vgg")
    assert sp.frontier_references() == [
        "vgg19@0.25",
        "vgg11@0.25",
        "vgg13@0.25",
        "vgg16@0.25",
    ]  # the final first, then the family
    assert replace(sp, baseline_lrs=None).frontier_lrs() == [0.025, 0.05, 0.1]
    one = replace(sp, frontier_archs=["vgg11@0.25", "vgg19@0.25"], baseline_lrs=[0.05])
    one.validate()
    assert one.frontier_references() == ["vgg11@0.25", "vgg19@0.25"] and one.frontier_lrs() == [0.05]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"frontier_archs": []}, "frontier_archs: a list of arch names"),
        ({"frontier_archs": ["resnet18@0.25"]}, "is not a vgg like final_arch"),
        ({"frontier_archs": ["nonsense"]}, "frontier_archs"),
        ({"archs": ["vgg13@0.25"], "final_arch": "vgg11@0.25"}, "deeper or wider than final_arch"),
    ],
)
def test_a_frontier_or_ladder_the_space_cannot_use_is_refused(change: dict, message: str) -> None:
    from dataclasses import replace

    with pytest.raises(SpaceError, match=message):
        replace(load_space("digits_vgg"), **change).validate()


def test_a_free_final_architecture_proposes_a_one_stage_small_network() -> None:
    from dataclasses import replace

    from growsearch.plan.schedule import Schedule, Stage
    from growsearch.search.space import schedule_params

    sp = replace(load_space("digits_vgg"), final_archs=["vgg11@0.25", "vgg19@0.25"])
    sp.validate()
    assert "vgg11@0.25" in sp.frontier_references()
    small = Schedule(sp.dataset, [Stage(10, "vgg11@0.25", 8)], seed=sp.seed, train=sp.train, data_growth="none")
    params = schedule_params(small, sp, 10)
    assert params is not None and params["final_arch"] == "vgg11@0.25"
    assert suggest_schedule(optuna.trial.FixedTrial(params), sp, 10).to_dict() == small.to_dict()
    grown = Schedule(
        sp.dataset, [Stage(5, "vgg11@0.25", 4), Stage(10, "vgg11@0.25", 4, lr=0.05)], seed=sp.seed, train=sp.train
    )
    assert (
        suggest_schedule(optuna.trial.FixedTrial(schedule_params(grown, sp, 10)), sp, 10).to_dict() == grown.to_dict()
    )
    shrinking = Schedule(
        sp.dataset, [Stage(5, "vgg13@0.25", 4), Stage(10, "vgg11@0.25", 4, lr=0.05)], seed=sp.seed, train=sp.train
    )
    assert schedule_params(shrinking, sp, 10) is None  # the earlier stages never outgrow the chosen final one
