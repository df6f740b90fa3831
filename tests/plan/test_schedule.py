from __future__ import annotations

import json
from pathlib import Path

import pytest

from growsearch.plan.planner import check
from growsearch.plan.schedule import Schedule, ScheduleError, Stage, load_schedule

GOOD = {
    "dataset": "digits",
    "seed": 0,
    "stages": [
        {"classes": 5, "arch": "vgg11", "epochs": 10, "prune_ratio": 0.0},
        {"classes": 7, "arch": "vgg16", "epochs": 8},
        {"classes": 10, "arch": "vgg19", "epochs": 10},
    ],
}


def test_design_md_example_loads_and_validates(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text(json.dumps(GOOD))
    s = load_schedule(p)
    check(s, num_classes=10)
    assert [st.classes for st in s.stages] == [5, 7, 10]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_save_load_round_trip(tmp_path: Path, suffix: str) -> None:
    s = Schedule.from_dict(GOOD)
    s.stages[1].patience = 3
    s.save(tmp_path / f"s{suffix}")
    assert load_schedule(tmp_path / f"s{suffix}") == s


def _stages(*specs) -> list[Stage]:
    return [Stage(*s) for s in specs]


@pytest.mark.parametrize(
    "stages,msg",
    [
        (
            _stages((5, "vgg11", 2), (5, "vgg16", 2)),
            "stage 2 has 5 classes, not more than stage 1's 5: class subsets must grow",
        ),
        (_stages((7, "vgg11", 2), (5, "vgg16", 2)), "class subsets must grow"),
        (_stages((5, "vgg11", 2), (12, "vgg16", 2)), "asks for 12 classes but digits has 10"),
        (_stages((5, "vgg11", 2), (7, "vgg16", 2)), "must see all of them"),
        (_stages((5, "vgg16", 2), (10, "vgg11", 2)), "would remove block1.conv2"),
        (_stages((5, "vgg11@0.5", 2), (10, "vgg19@0.25", 2)), "narrower"),
        (_stages((5, "vgg99", 2), (10, "vgg19", 2)), "unknown arch 'vgg99'"),
        (_stages((5, "vgg11", 0), (10, "vgg19", 2)), "epochs must be a whole number from 1 to 100000"),
        (_stages((5, "vgg11", 2), (10, "vgg19", -3)), "stage 2: epochs"),
        (_stages((5, "vgg11", 2, 0.5), (10, "vgg19", 2)), "stage 1 has none"),
        (_stages((5, "vgg11", 2), (10, "vgg19", 2, 1.5)), r"prune_ratio must be in \[0, 1\)"),
        ([], "no stages"),
    ],
)
def test_bad_schedules_fail_with_one_clear_line(stages: list[Stage], msg: str) -> None:
    with pytest.raises(ScheduleError, match=msg) as e:
        check(Schedule("digits", stages), num_classes=10)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "mutate,msg",
    [
        (lambda d: d["stages"][0].update(clases=5), "unknown key"),
        (lambda d: d.update(stagez=[]), "unknown key"),
        (lambda d: d.pop("dataset"), "missing 'dataset'"),
        (lambda d: d["stages"][1].pop("arch"), "stage 2 is missing arch"),
        (lambda d: d.update(train={"lr": 0.1, "momentom": 0.9}), "train: unknown key"),
    ],
)
def test_malformed_files_name_the_key(mutate, msg: str) -> None:
    d = json.loads(json.dumps(GOOD))
    mutate(d)
    with pytest.raises(ScheduleError, match=msg):
        Schedule.from_dict(d)


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match="does not exist"):
        load_schedule(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ScheduleError, match="cannot parse"):
        load_schedule(tmp_path / "bad.json")


def test_class_order_must_be_a_permutation() -> None:
    s = Schedule.from_dict({**GOOD, "class_order": [0, 1, 2, 3, 4, 5, 6, 7, 8, 8]})
    with pytest.raises(ScheduleError, match="permutation"):
        check(s, num_classes=10)


@pytest.mark.parametrize(
    "resolutions,arch,msg",
    [
        ((48, None), "vgg11", "above digits's native 32 px"),
        ((24, 16, None), "vgg11", "resolutions must never decrease"),
        ((None, 16, None), "vgg11", "resolutions must never decrease"),
        ((4, None), "vgg11", "needs inputs of at least 8 px"),
        ((8, None), "resnet10_stem7", "needs inputs of at least 16 px"),
        ((16, 24), "vgg11", "must train at digits's native 32 px"),
        ((0, None), "vgg11", "resolution .pixels. must be a whole number"),
    ],
)
def test_bad_resolutions_are_errors_before_training(resolutions, arch: str, msg: str) -> None:
    big = {"vgg11": "vgg13", "resnet10_stem7": "resnet18_stem7"}[arch]
    counts = [3, 6, 10][-len(resolutions) :] if len(resolutions) == 3 else [5, 10]
    stages = [
        Stage(k, arch if i < len(counts) - 1 else big, 1, resolution=r)
        for i, (k, r) in enumerate(zip(counts, resolutions))
    ]
    with pytest.raises(ScheduleError, match=msg):
        check(Schedule("digits", stages), num_classes=10, image_size=32)


def test_data_too_small_for_a_network_names_the_resize_not_the_stage() -> None:
    """The data's own size is too small (a folder of 1x1 images, say): the fix is the dataset's
    ?size=N, and an image folder's size is its first training image's."""
    sched = Schedule("imagefolder:/photos", [Stage(5, "vgg11", 1), Stage(10, "vgg13", 1)])
    with pytest.raises(
        ScheduleError,
        match=r"1 px images \(an image folder is sized by its first training image\): resize them with \?size=8",
    ):
        check(sched, num_classes=10, image_size=1)


def test_growing_resolution_validates_and_round_trips(tmp_path: Path) -> None:
    s = Schedule(
        "digits", [Stage(5, "vgg11", 2, resolution=16), Stage(7, "vgg16", 2, resolution=24), Stage(10, "vgg19", 2)]
    )
    check(s, num_classes=10, image_size=32)
    s.save(tmp_path / "s.json")
    assert load_schedule(tmp_path / "s.json").stages[1].resolution == 24


@pytest.mark.parametrize(
    "name, text, msg",
    [
        ("dup.json", '{"dataset": "digits", "seed": 1, "seed": 2, "stages": []}', "the key 'seed' is given twice"),
        ("dup.yaml", "dataset: digits\nstages: []\ntrain: {lr: 0.1, lr: 0.2}\n", "the key 'lr' is given twice"),
        ("latin1.json", b'{"dataset": "d\xe9gits"}', "not UTF-8 text"),
    ],
)
def test_duplicate_keys_and_undecodable_files_are_one_line(tmp_path: Path, name: str, text, msg: str) -> None:
    from growsearch.plan.schedule import load_schedule

    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ScheduleError, match=msg):
        load_schedule(path)


def test_duplicate_space_keys_and_dataset_options_are_refused(tmp_path: Path) -> None:
    from growsearch.data.dataset import DataError, create_dataset
    from growsearch.search.space import SpaceError, load_space

    (tmp_path / "s.yaml").write_text(
        "dataset: digits\nfinal_arch: vgg19@0.25\narchs: [vgg11@0.25]\ntrials: 4\ntrials: 40\n"
    )
    with pytest.raises(SpaceError, match="the key 'trials' is given twice"):
        load_space(tmp_path / "s.yaml")
    with pytest.raises(DataError, match="the option 'train_per_class' is given twice"):
        create_dataset("digits?train_per_class=10&train_per_class=20")


def test_a_schedule_written_before_the_levers_existed_writes_back_the_same() -> None:
    """Frontier --resume and the benchmarks reuse a run when its stored schedule equals the one
    asked for: the new keys at their defaults must not make every older run look foreign."""
    old = {
        "dataset": "digits",
        "seed": 0,
        "stages": [
            {
                "classes": 5,
                "arch": "vgg11@0.25",
                "epochs": 4,
                "prune_ratio": 0.0,
                "zero_mask": False,
                "resolution": None,
            }
        ],
        "train": {
            "batch_size": 128,
            "lr": 0.05,
            "momentum": 0.9,
            "weight_decay": 0.0005,
            "warmup_epochs": 1.0,
            "label_smoothing": 0.0,
            "eval_batch_size": 512,
            "rescale_kernels": True,
            "val_fraction": 0.1,
            "val_seed": 0,
        },
    }
    assert Schedule.from_dict(old).to_dict() == old
