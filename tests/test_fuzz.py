"""The bad-input contract, fuzzed: whatever a schedule file, a space file or a dataset name holds,
growsearch answers with a valid result or one line naming the fix (exit code 2), never a
traceback, and writes nothing when it refuses. Bounded examples here; many more under ``slow``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from growsearch.cli.commands import main
from growsearch.errors import GrowsearchError

# derandomized: CI explores the same examples on every run (a new one found elsewhere becomes a fix and, here, a fixed case)
FEW = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MANY = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# values of every kind a hand-edited file may hold, the nasty ones included
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["vgg11@0.125", "vgg13@0.125", "digits", "1e309"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)
stage = st.fixed_dictionaries(
    {
        "classes": st.one_of(st.integers(1, 10), values),
        "arch": st.one_of(st.sampled_from(["vgg11@0.125", "vgg13@0.125", "vgg99", "resnet10@0.25"]), values),
        "epochs": st.one_of(st.integers(1, 3), values),
    },
    optional={
        "prune_ratio": values,
        "lr": values,
        "resolution": st.one_of(st.integers(1, 64), values),
        "zero_mask": values,
        "patience": values,
        "prune_threshold": values,
        "optimizer": st.one_of(st.sampled_from(["sgd", "ssgd"]), values),
        "ssgd_strength": values,
        "weight_decay": values,
    },
)
schedules = st.fixed_dictionaries(
    {
        "dataset": st.one_of(st.just("digits"), values),
        "stages": st.one_of(st.lists(stage, min_size=1, max_size=3), values),
    },
    optional={
        "seed": values,
        "train": st.one_of(
            st.dictionaries(st.sampled_from(["lr", "batch_size", "momentum", "val_fraction", "warmup_epochs"]), values),
            values,
        ),
        "threads": values,
        "class_order": values,
        "bogus": values,
    },
)


def _check(rc: int, err: str) -> None:
    assert rc in (0, 2), err
    if rc == 2:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def _dry_run(sched: dict, tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(sched))  # NaN and inf as JSON's NaN/Infinity, as a hand-edited file may hold them
    rc = main(["run", str(path), "--dry-run"])
    _check(rc, capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]  # a plan writes nothing


@FEW
@given(sched=schedules)
def test_any_schedule_file_plans_or_is_one_line(sched: dict, tmp_path: Path, capsys) -> None:
    _dry_run(sched, tmp_path, capsys)


@pytest.mark.slow
@MANY
@given(sched=schedules)
def test_any_schedule_file_plans_or_is_one_line_many(sched: dict, tmp_path: Path, capsys) -> None:
    _dry_run(sched, tmp_path, capsys)


spaces = st.fixed_dictionaries(
    {
        "dataset": st.one_of(st.just("digits"), values),
        "final_arch": st.one_of(st.just("vgg19@0.25"), values),
        "archs": st.one_of(st.just(["vgg11@0.25", "vgg13@0.25"]), values),
    },
    optional={
        k: values
        for k in (
            "stages",
            "split",
            "epochs",
            "grown_lr",
            "prune_ratio",
            "zero_mask",
            "resolutions",
            "tolerance",
            "trials",
            "baseline_epochs",
            "budgets",
            "baseline_lrs",
            "baseline_seeds",
            "seed",
            "train",
            "nonsense",
        )
    },
)


def _load_space(space: dict, tmp_path: Path) -> None:
    import yaml

    from growsearch.search.space import load_space

    path = tmp_path / "space.yaml"
    try:
        path.write_text(yaml.safe_dump(space))
    except (yaml.YAMLError, ValueError):
        return  # not representable as YAML: no file a user could hand us
    try:
        load_space(path)
    except GrowsearchError as e:
        assert "\n" not in str(e)


@FEW
@given(space=spaces)
def test_any_space_file_loads_or_is_one_line(space: dict, tmp_path: Path) -> None:
    _load_space(space, tmp_path)


@pytest.mark.slow
@MANY
@given(space=spaces)
def test_any_space_file_loads_or_is_one_line_many(space: dict, tmp_path: Path) -> None:
    _load_space(space, tmp_path)


options = st.lists(
    st.one_of(
        st.builds(
            lambda k, v: f"{k}={v}",
            st.sampled_from(["train_per_class", "size", "x", ""]),
            st.one_of(st.integers(-5, 10**6), st.text(max_size=5)),
        ),
        st.text(max_size=10),
    ),
    max_size=3,
)


@FEW
@given(opts=options)
def test_any_dataset_option_string_loads_or_is_one_line(opts: list[str]) -> None:
    from growsearch.data.dataset import create_dataset

    name = "digits?" + "&".join(opts)
    try:
        ds = create_dataset(name)
    except GrowsearchError as e:
        assert "\n" not in str(e)
    else:
        assert ds.num_classes == 10 and not math.isnan(float(ds.x_train.float().mean()))


@pytest.mark.parametrize("name", ["digits?\n", "digits?train_per_class=\n", "dig\tits"])
def test_a_dataset_name_with_control_characters_is_one_line(name: str) -> None:
    """Cases the fuzzer found: a newline in a name used to break the one-line message naming it."""
    from growsearch.data.dataset import create_dataset

    with pytest.raises(GrowsearchError) as e:
        create_dataset(name)
    assert "\n" not in str(e.value) and "control characters" in str(e.value)


def test_an_unknown_key_that_is_not_printable_is_quoted(tmp_path: Path) -> None:
    """A case the fuzzer found: an unknown key holding a newline broke the one-line message."""
    from growsearch.search.space import load_space

    (tmp_path / "s.yaml").write_text(
        'dataset: digits\nfinal_arch: vgg19@0.25\narchs: [vgg11@0.25]\ntrain: {"\\n": 1}\n'
    )
    with pytest.raises(GrowsearchError) as e:
        load_space(tmp_path / "s.yaml")
    assert "\n" not in str(e.value) and "unknown key(s) '\\n'" in str(e.value)


# --- the bounds of the Python API and the environment (issue 43) --------------------------------


@FEW
@given(
    n_members=st.integers(1, 3),
    n_classes=st.lists(st.integers(1, 4), min_size=0, max_size=4),
    weights=st.lists(scalars, min_size=0, max_size=4),
    num_classes=scalars,
    cls_offset=st.integers(-2, 3),
)
def test_mutual_inference_votes_or_is_one_line(n_members, n_classes, weights, num_classes, cls_offset) -> None:
    """Any member count, classes lists, weights (NaN, negative, strings) and class count: a vote
    of one class per sample within [0, num_classes), or one line naming the bound."""
    import torch

    from growsearch.robust.vote import mutual_inference

    classes = [list(range(cls_offset, cls_offset + k)) for k in n_classes]
    logits = [torch.randn(5, len(c)) for c in classes[:n_members]] or [torch.randn(5, 2)]
    try:
        pred = mutual_inference(logits, classes, weights, num_classes=num_classes)
    except GrowsearchError as e:
        assert "\n" not in str(e) and len(str(e)) < 400
    else:
        assert pred.shape == (5,) and int(pred.min()) >= 0 and int(pred.max()) < num_classes
        assert all(math.isfinite(w) and w >= 0 for w in weights)


@FEW
@given(num_classes=scalars, in_chans=scalars)
def test_create_model_builds_or_is_one_line(num_classes, in_chans) -> None:
    from growsearch.model.arch import create_model

    try:
        model, spec = create_model("vgg11@0.125", num_classes, in_chans)
    except GrowsearchError as e:
        assert "\n" not in str(e) and len(str(e)) < 400
    else:
        assert isinstance(num_classes, int) and num_classes >= 1 and spec.num_classes == num_classes


@FEW
@given(
    text=st.one_of(
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),  # what an environment can hold
        st.sampled_from(["0", "-1", "1e400", "abc", "4G", "500M", "nanK", "infT"]),
    )
)
def test_the_ram_budget_is_a_positive_size_or_one_line(text: str) -> None:
    import os

    from growsearch.data.dataset import ram_budget

    old = os.environ.get("GROWSEARCH_MAX_RAM")
    os.environ["GROWSEARCH_MAX_RAM"] = text
    try:
        budget = ram_budget()
    except GrowsearchError as e:
        assert "\n" not in str(e) and "GROWSEARCH_MAX_RAM" in str(e)
    else:
        assert 0 < budget < 1 << 60
    finally:
        if old is None:
            os.environ.pop("GROWSEARCH_MAX_RAM", None)
        else:
            os.environ["GROWSEARCH_MAX_RAM"] = old
