from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from growsearch._io import MANIFEST, held, lock_path
from growsearch.data.dataset import create_dataset
from growsearch.model.arch import ArchSpec
from growsearch.plan.schedule import Schedule, ScheduleError, Stage
from growsearch.train.baseline import run_baseline
from growsearch.train.results import OutputExistsError, RunResult, load_checkpoint
from growsearch.train.run import run_schedule
from helpers import growsearch_argv, hand_macs_vgg

RESULT_KEYS = {"M", "test_acc", "wall_s", "macs_per_sample", "stages"}
STAGE_KEYS = {"classes", "arch", "epochs", "samples", "macs_per_sample", "M", "test_acc", "wall_s"}


def _sched(data: str, seed: int = 0, **kw) -> Schedule:
    return Schedule(data, [Stage(2, "vgg11@0.125", 2), Stage(4, "vgg13@0.125", 1)], seed=seed, **kw)


def test_result_json_follows_the_contract(npz_data: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_schedule(_sched(npz_data), out_dir=out, progress=False)
    d = json.loads((out / "result.json").read_text())
    assert RESULT_KEYS <= set(d) and all(STAGE_KEYS <= set(s) for s in d["stages"])
    assert 0 <= d["test_acc"] <= 1 and isinstance(d["M"], int)
    assert d["macs_per_sample"] == d["stages"][-1]["macs_per_sample"]
    assert [s["classes"] for s in d["stages"]] == [2, 4]
    assert (out / "curve.png").stat().st_size > 1000
    assert RunResult.load(out) == result


def test_M_is_samples_times_macs_summed_over_stages(npz_data: str) -> None:
    ds = create_dataset(npz_data)  # 48 train images, 12 per class; val_fraction 0.1 holds out 1 per class
    result = run_schedule(_sched(npz_data), dataset=ds, progress=False)
    s1, s2 = result.stages
    assert (s1.samples, s2.samples) == (2 * 22, 1 * 44)  # epochs x train samples of the stage's classes
    assert s1.macs_per_sample == hand_macs_vgg(ArchSpec.from_dict(s1.spec), 32)
    assert s2.macs_per_sample == hand_macs_vgg(ArchSpec.from_dict(s2.spec), 32)
    assert s1.M == s1.samples * s1.macs_per_sample and s2.M == s2.samples * s2.macs_per_sample
    assert result.M == s1.M + s2.M


def test_checkpoints_rebuild_each_stage_network(npz_data: str, tmp_path: Path) -> None:
    x = torch.rand(5, 3, 32, 32)
    seen = {}

    def keep(stage, model) -> None:
        model.eval()
        with torch.no_grad():
            seen[stage.classes] = model(x)

    result = run_schedule(_sched(npz_data), out_dir=tmp_path, progress=False, on_stage=keep)
    for i, st in enumerate(result.stages, 1):
        raw = torch.load(tmp_path / f"stage{i}.pt", weights_only=True)
        assert raw["spec"]["num_classes"] == st.classes and len(raw["classes"]) == st.classes
        model, ckpt = load_checkpoint(tmp_path / f"stage{i}.pt")
        with torch.no_grad():
            assert torch.allclose(model(x), seen[st.classes], atol=1e-5)
    assert ckpt["classes"] == result.class_order[:4]


def _metrics(r: RunResult) -> dict:
    """A result without its wall-clock times."""
    d = r.to_dict()
    d.pop("wall_s"), d.pop("time_split")
    for s in d["stages"]:
        s.pop("wall_s"), s.pop("time_split")
        for row in s["history"]:
            row.pop("train_s"), row.pop("val_s")
    return d


def test_same_seed_gives_identical_metrics(npz_data: str) -> None:
    ds = create_dataset(npz_data)
    a = run_schedule(_sched(npz_data, seed=3), dataset=ds, progress=False)
    b = run_schedule(_sched(npz_data, seed=3), dataset=ds, progress=False)
    c = run_schedule(_sched(npz_data, seed=4), dataset=ds, progress=False)
    assert _metrics(a) == _metrics(b)
    assert _metrics(a) != _metrics(c)


def test_existing_results_are_not_overwritten(npz_data: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_schedule(_sched(npz_data), out_dir=out, progress=False)
    before = (out / "result.json").read_text()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_schedule(_sched(npz_data, seed=1), out_dir=out, progress=False)
    assert (out / "result.json").read_text() == before
    run_schedule(_sched(npz_data, seed=1), out_dir=out, progress=False, overwrite=True)
    assert (out / "result.json").read_text() != before


def test_overwrite_never_removes_files_growsearch_did_not_write(npz_data: str, tmp_path: Path) -> None:
    """--overwrite on a folder that is not a run (here the data's own folder) is refused; nothing goes."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="files growsearch did not write \\(notes.txt\\)"):
        run_schedule(_sched(npz_data), out_dir=mine, progress=False, overwrite=True)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # a run of its own, with a user's file dropped in later: still refused, the run and the file kept
    run_schedule(_sched(npz_data), out_dir=tmp_path / "run", progress=False)
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        run_schedule(_sched(npz_data, seed=1), out_dir=tmp_path / "run", progress=False, overwrite=True)
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine" and (tmp_path / "run" / "result.json").is_file()
    # without --overwrite a new run lives beside a user's files and removes none
    run_schedule(_sched(npz_data), out_dir=mine, progress=False)
    assert (mine / "notes.txt").read_text() == "keep me" and (mine / "result.json").is_file()


@pytest.mark.slow  # two real processes; the first must outlive the second's start-up on a busy machine
def test_a_second_command_on_a_folder_in_use_is_refused_and_the_first_finishes_whole(
    npz_data: str, tmp_path: Path
) -> None:
    import subprocess
    import time

    out = tmp_path / "run"
    sched = tmp_path / "s.json"
    Schedule(npz_data, [Stage(2, "vgg11@0.125", 150), Stage(4, "vgg13@0.125", 150)]).save(
        sched
    )  # long enough to outlive a second command's start
    first = subprocess.Popen(
        growsearch_argv("run", str(sched), "--out", str(out), "--quiet"),
        stderr=subprocess.PIPE,
        text=True,
    )
    holder = lock_path(out).with_suffix(".holder")
    deadline = time.time() + 600
    while not holder.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert first.poll() is None, "the first run finished before a second could try: make it longer"
    second = subprocess.run(
        growsearch_argv("run", str(sched), "--out", str(out), "--quiet", "--overwrite"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert second.returncode == 2 and "is in use by another growsearch command (pid" in second.stderr, second.stderr
    assert first.wait(timeout=1200) == 0, first.stderr.read()
    r = RunResult.load(out)
    assert [s.epochs for s in r.stages] == [150, 150] and (out / "stage2.pt").is_file()


def test_bad_schedule_fails_before_training(npz_data: str, tmp_path: Path) -> None:
    bad = Schedule(npz_data, [Stage(2, "vgg11@0.125", 1), Stage(6, "vgg13@0.125", 1)])
    with pytest.raises(ScheduleError, match="6 classes but"):
        run_schedule(bad, out_dir=tmp_path / "o", progress=False)
    assert not (tmp_path / "o" / "stage1.pt").exists()


def test_training_learns_digits() -> None:
    r = run_baseline("digits", "vgg11@0.125", epochs=4, progress=False)
    assert r.test_acc > 0.8  # chance is 0.1
    assert r.stages[0].classes == 10 and r.schedule["stages"][0]["arch"] == "vgg11@0.125"


def test_patience_trains_to_saturation_and_stops_early(npz_data: str) -> None:
    s = Schedule(npz_data, [Stage(4, "vgg11@0.125", 60, patience=2)], seed=0)
    r = run_schedule(s, progress=False)
    hist = r.stages[0].history
    assert len(hist) < 60
    assert hist[-1]["lr"] < hist[1]["lr"]  # the LR dropped at the first plateau
    assert r.stages[0].samples == len(hist) * 44  # 48 minus the 4 validation images


def test_epoch_callback_reports_cumulative_M(npz_data: str) -> None:
    rows = []
    r = run_schedule(_sched(npz_data), progress=False, on_epoch=rows.append)
    assert [(row["stage"], row["epoch"]) for row in rows] == [(1, 1), (1, 2), (2, 1)]
    assert rows[-1]["cum_M"] == r.M
    assert rows[1]["cum_M"] == r.stages[0].M


def test_prefix_cache_reuses_trained_stages_and_changes_no_metric(npz_data: str, tmp_path: Path) -> None:
    ds = create_dataset(npz_data)
    cache = tmp_path / "cache"
    first = run_schedule(_sched(npz_data), dataset=ds, progress=False, prefix_cache=cache)
    assert (first.reused_stages, first.spent_M) == (0, first.M)
    again = run_schedule(_sched(npz_data), dataset=ds, progress=False, prefix_cache=cache)
    assert (again.reused_stages, again.spent_M) == (2, 0)
    assert _metrics(again) | {"spent_M": 0, "reused_stages": 0} == _metrics(first) | {"spent_M": 0, "reused_stages": 0}

    # Same first stage, different second stage: stage 1 comes from the cache, and the result is
    # exactly what training from scratch gives.
    other = Schedule(npz_data, [Stage(2, "vgg11@0.125", 2), Stage(4, "vgg16@0.125", 1)], seed=0)
    cached = run_schedule(other, dataset=ds, progress=False, prefix_cache=cache)
    fresh = run_schedule(other, dataset=ds, progress=False)
    assert cached.reused_stages == 1 and cached.spent_M == cached.stages[1].M
    assert cached.M == fresh.M  # the trial still pays for the whole schedule
    strip = {"spent_M": 0, "reused_stages": 0}
    assert _metrics(cached) | strip == _metrics(fresh) | strip


def test_resolution_growth_counts_M_at_each_stage_resolution(npz_data: str, tmp_path: Path) -> None:
    from growsearch.model.arch import build_model, spec_for
    from growsearch.model.cost import macs_per_sample

    sched = Schedule(npz_data, [Stage(2, "vgg11@0.125", 1, resolution=16), Stage(4, "vgg13@0.125", 1)])
    r = run_schedule(sched, progress=False, out_dir=tmp_path / "run")
    low, full = r.stages
    assert (low.resolution, full.resolution) == (16, 32)
    assert low.macs_per_sample == macs_per_sample(build_model(spec_for("vgg11@0.125", 2)), (3, 16, 16))
    assert full.macs_per_sample == macs_per_sample(build_model(spec_for("vgg13@0.125", 4)), (3, 32, 32))
    assert 3.9 < macs_per_sample(build_model(spec_for("vgg11@0.125", 2)), (3, 32, 32)) / low.macs_per_sample < 4.1
    assert r.M == low.samples * low.macs_per_sample + full.samples * full.macs_per_sample
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert [s["resolution"] for s in saved["stages"]] == [16, 32]
    assert saved["schedule"]["stages"][0]["resolution"] == 16
    model, ckpt = load_checkpoint(tmp_path / "run" / "stage1.pt")
    assert ckpt["resolution"] == 16


@pytest.mark.parametrize("rescale,kernels", [(True, [5, 7]), (False, [7, 7])])
def test_large_stem_kernels_follow_the_resolution(npz_data: str, rescale: bool, kernels: list[int]) -> None:
    from growsearch.plan.schedule import TrainConfig

    sched = Schedule(
        npz_data,
        [Stage(2, "resnet10_stem7@0.125", 1, resolution=16), Stage(4, "resnet18_stem7@0.125", 1)],
        train=TrainConfig(rescale_kernels=rescale),
    )
    r = run_schedule(sched, progress=False)
    assert [s.spec["stem_kernel"] or 7 for s in r.stages] == kernels


def _shuffled_test_labels(src: str, dst: Path) -> str:
    import numpy as np

    with np.load(src.partition(":")[2]) as z:
        arrays = dict(z)
    arrays["y_test"] = np.random.default_rng(5).permutation(arrays["y_test"])
    np.savez(dst, **arrays)
    return f"npz:{dst}"


def test_training_choices_never_read_the_test_labels(npz_data: str, tmp_path: Path) -> None:
    """Plateau stopping reads validation accuracy only: shuffling the test labels changes the
    reported test accuracy and nothing else."""
    shuffled = _shuffled_test_labels(npz_data, tmp_path / "shuffled.npz")
    runs = []
    for data in (npz_data, shuffled):
        s = Schedule(data, [Stage(2, "vgg11@0.125", 30, patience=2), Stage(4, "vgg13@0.125", 30, patience=2)], seed=0)
        s.train.val_fraction = 0.25
        runs.append(run_schedule(s, progress=False))
    a, b = runs
    assert [st.epochs for st in a.stages] == [st.epochs for st in b.stages]
    assert [st.val_acc for st in a.stages] == [st.val_acc for st in b.stages] and a.val_acc == b.val_acc
    assert [row["val_acc"] for st in a.stages for row in st.history] == [
        row["val_acc"] for st in b.stages for row in st.history
    ]
    assert a.M == b.M
    assert [st.test_acc for st in a.stages] != [st.test_acc for st in b.stages]  # the test labels did change


def test_with_val_fraction_zero_selection_reads_the_test_set(npz_data: str) -> None:
    s = Schedule(npz_data, [Stage(4, "vgg11@0.125", 2)], seed=0)
    s.train.val_fraction = 0.0
    r = run_schedule(s, progress=False)
    assert r.selection == "test" and r.val_acc == r.test_acc and r.stages[0].samples == 2 * 48


# --- nothing stale, nothing lost ---------------------------------------------------------------


def test_overwriting_a_longer_run_leaves_no_file_of_it(npz_data: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    three = Schedule(npz_data, [Stage(2, "vgg11@0.125", 1), Stage(3, "vgg11@0.125", 1), Stage(4, "vgg13@0.125", 1)])
    run_schedule(three, out_dir=out, progress=False)
    with held(out, OutputExistsError):
        (out / "robustness.json").write_text("{}")  # a report of the earlier run, which growsearch wrote
    run_schedule(_sched(npz_data), out_dir=out, overwrite=True, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "curve.png", "result.json", "stage1.pt", "stage2.pt"]
    assert [s["classes"] for s in json.loads((out / "result.json").read_text())["stages"]] == [2, 4]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no hidden work folder left beside it


def test_leftovers_of_killed_writes_are_removed(npz_data: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # not growsearch's: kept
    with held(out, OutputExistsError):  # a growsearch write killed half-way
        (out / "stage1.4242.tmp.pt").write_bytes(b"half a checkpoint")
    run_schedule(_sched(npz_data), out_dir=out, progress=False)
    assert not list(out.glob("*.tmp*")) and (out / "notes.txt").read_text() == "mine"


def test_a_run_killed_in_its_last_stage_resumes_to_the_same_result(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import time

    sched = {
        "dataset": "digits",
        "seed": 0,
        "threads": 1,
        "stages": [
            {"classes": 4, "arch": "vgg11@0.125", "epochs": 1},
            {"classes": 10, "arch": "vgg11@0.125", "epochs": 10},
        ],
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(sched))
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        growsearch_argv("run", str(path), "--out", str(out), "--quiet"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.time() + 600
    while not (out / "stage1.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(1.0)  # into the 10-epoch last stage (an epoch takes about half a second here)
    assert proc.poll() is None, "the run ended before it could be killed: lengthen its last stage"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "result.json").exists() and not (out / "stage2.pt").exists()
    from growsearch.cli.commands import main
    from growsearch.plan.schedule import load_schedule

    assert main(["run", str(path), "--out", str(out), "--resume", "--quiet"]) == 0
    resumed = RunResult.load(out)
    whole = run_schedule(load_schedule(path), progress=False)  # uninterrupted, the same 1 thread
    assert _metrics(resumed) == _metrics(whole)
    assert resumed.threads == 1 and not list(out.glob("*.tmp*"))


def test_the_thread_count_is_recorded_and_honoured(npz_data: str) -> None:
    before = torch.get_num_threads()
    s = _sched(npz_data)
    s.threads = 1
    assert run_schedule(s, progress=False).threads == 1
    assert torch.get_num_threads() == before  # restored afterwards
    assert run_schedule(_sched(npz_data), progress=False).threads == before


def test_a_checkpoint_carries_what_inference_needs_without_the_dataset(tmp_path: Path) -> None:
    from growsearch.data.dataset import create_dataset
    from growsearch.data.split import with_validation
    from growsearch.train.results import load_checkpoint

    sched = Schedule("digits", [Stage(4, "vgg11@0.125", 1), Stage(10, "vgg11@0.125", 1)], seed=1)
    run_schedule(sched, out_dir=tmp_path / "run", progress=False)
    ds = with_validation(create_dataset("digits"), 0.1, 0)
    model, ckpt = load_checkpoint(tmp_path / "run" / "stage1.pt")
    order = sched.resolved_class_order(10)
    assert ckpt["class_names"] == [str(c) for c in order[:4]]  # digits' classes are named by their digit
    assert ckpt["mean"] == pytest.approx(list(ds.mean)) and ckpt["std"] == pytest.approx(list(ds.std))
    assert model.arch_spec.num_classes == len(ckpt["class_names"])


def test_a_diverging_run_stops_with_one_line_and_writes_no_result(
    npz_data: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A loss that becomes NaN (here made to) ends the run at that epoch: one line naming the fix,
    exit 2, and no result.json that would report garbage as a result."""
    import torch.nn.functional as F

    from growsearch.cli.commands import main
    from growsearch.train import loop

    real = F.cross_entropy
    monkeypatch.setattr(loop.F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    sched = tmp_path / "s.json"
    _sched(npz_data).save(sched)
    assert main(["run", str(sched), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "diverged in epoch 1" in err and "lower the learning rate" in err
    assert not (tmp_path / "run" / "result.json").exists()


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), 1e9])
def test_non_finite_or_absurd_rates_are_refused_before_training(npz_data: str, tmp_path: Path, bad: float) -> None:
    import json as _json

    path = tmp_path / "s.json"
    path.write_text(
        _json.dumps(
            {"dataset": npz_data, "stages": [{"classes": 4, "arch": "vgg11@0.125", "epochs": 1}], "train": {"lr": bad}}
        )
    )
    from growsearch.cli.commands import main

    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert not (tmp_path / "run").exists()


def test_the_prefix_cache_trusts_the_key_inside_a_file_not_its_name(npz_data: str, tmp_path: Path) -> None:
    """A file planted under a schedule's key (here: another schedule's network renamed) is passed over."""
    from growsearch.train.prefix import find_prefix, prefix_key

    cache = tmp_path / "cache"
    a, b = _sched(npz_data), _sched(npz_data, seed=1)
    run_schedule(a, prefix_cache=cache, progress=False)
    order_b = b.resolved_class_order(4)
    key_a1 = prefix_key(a, 1, a.resolved_class_order(4))
    (cache / f"{key_a1}.pt").rename(cache / f"{prefix_key(b, 1, order_b)}.pt")
    assert find_prefix(b, order_b, cache) == (0, None)
    r = run_schedule(b, prefix_cache=cache, progress=False)
    assert r.reused_stages == 0 and r.spent_M == r.M  # trained, not served the planted network


def test_time_split_says_where_each_stage_went(
    npz_data: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Every part is measured where it happens: slowing one part shows up in that part alone, and
    what no part measures (a stage's other_s) stays small."""
    import time

    import growsearch.train.run as run_mod

    def slowed(fn, s):
        def wrapped(*a, **k):
            time.sleep(s)
            return fn(*a, **k)

        return wrapped

    monkeypatch.setattr(run_mod, "stage_data", slowed(run_mod.stage_data, 0.3))  # each stage's data
    monkeypatch.setattr(run_mod, "evaluate", slowed(run_mod.evaluate, 0.4))  # each stage's one test
    out = tmp_path / "run"
    result = run_schedule(_sched(npz_data), out_dir=out, progress=False)
    for st in result.stages:
        t = st.time_split
        assert set(t) == {"data_s", "grow_s", "train_s", "val_s", "test_s", "other_s"}
        assert 0.3 <= t["data_s"] < 0.3 + 0.5 * st.wall_s and 0.4 <= t["test_s"] < 0.4 + 0.5 * st.wall_s
        assert t["train_s"] > 0 and t["val_s"] > 0 and t["grow_s"] >= 0
        assert -1e-6 <= t["other_s"] <= 0.05 + 0.1 * st.wall_s, t  # nothing big goes unmeasured
        assert sum(t.values()) == pytest.approx(st.wall_s)
        assert t["val_s"] == pytest.approx(sum(r["val_s"] for r in st.history))
    run_split = json.loads((out / "result.json").read_text())["time_split"]
    assert run_split["load_s"] > 0 and run_split["test_s"] == pytest.approx(
        sum(st.time_split["test_s"] for st in result.stages)
    )
    assert sum(v for k, v in run_split.items() if k != "load_s") == pytest.approx(result.wall_s)
    from growsearch.cli.summaries import run_summary

    assert "time: " in run_summary(result) and "test " in run_summary(result)


def test_lr_scaling_trains_as_if_the_scaled_lr_were_given(npz_data: str) -> None:
    """linear: lr x batch/128; sqrt: lr x sqrt(batch/128); the run is the one trained at that LR."""
    from growsearch.plan.schedule import TrainConfig

    assert TrainConfig(lr=0.1, batch_size=512, lr_scaling="linear").peak_lr() == pytest.approx(0.4)
    assert TrainConfig(lr=0.1, batch_size=512, lr_scaling="sqrt").peak_lr() == pytest.approx(0.2)
    assert TrainConfig(lr=0.1, batch_size=512).peak_lr() == 0.1 and TrainConfig(
        lr=0.1, batch_size=32, lr_scaling="linear"
    ).peak_lr(0.2) == pytest.approx(0.05)
    ds = create_dataset(npz_data)
    scaled = run_schedule(
        _sched(npz_data, train=TrainConfig(lr=0.025, batch_size=16, lr_scaling="linear")), dataset=ds, progress=False
    )
    given = run_schedule(_sched(npz_data, train=TrainConfig(lr=0.025 / 8, batch_size=16)), dataset=ds, progress=False)
    plain = run_schedule(_sched(npz_data, train=TrainConfig(lr=0.025, batch_size=16)), dataset=ds, progress=False)
    lrs = lambda r: [row["lr"] for st in r.stages for row in st.history]  # noqa: E731
    assert (
        lrs(scaled) == pytest.approx(lrs(given))
        and _metrics(scaled)["stages"][0]["history"] == _metrics(given)["stages"][0]["history"]
    )
    assert lrs(plain) != pytest.approx(lrs(scaled))
    assert (
        scaled.schedule["train"]["lr_scaling"] == "linear" and "lr_scaling" not in plain.schedule["train"]
    )  # the default is not written


@pytest.mark.slow  # torch.compile's C++ code generation: about a minute on 2 cores
def test_a_compiled_run_trains_every_grown_stage(tmp_path: Path) -> None:
    """train.compile on CPU: each stage's network compiled (the grown one again), the same cost
    accounting, checkpoints of the plain module that load and predict as the run scored them."""
    from growsearch.plan.schedule import TrainConfig

    stages = [Stage(5, "vgg11@0.125", 1), Stage(10, "vgg11@0.25", 1)]
    compiled = run_schedule(
        Schedule("digits?train_per_class=10", stages, train=TrainConfig(compile=True)),
        out_dir=tmp_path / "c",
        progress=False,
    )
    eager = run_schedule(Schedule("digits?train_per_class=10", stages), progress=False)
    assert compiled.M == eager.M and [s.spec for s in compiled.stages] == [s.spec for s in eager.stages]
    assert compiled.schedule["train"]["compile"] is True and all(s.time_split["train_s"] > 0 for s in compiled.stages)
    model, ckpt = load_checkpoint(tmp_path / "c" / "stage2.pt")
    assert not any(
        k.startswith("_orig_mod") for k in ckpt["state_dict"]
    )  # the module's own names, loadable without torch.compile


def test_cuda_training_autotunes_cudnn_only_for_the_call() -> None:
    """train_stage on CUDA runs with cuDNN autotuning (cudnn.benchmark) and gives the user's own
    setting back afterwards, also when training fails; on the CPU it touches nothing."""
    import torch

    from growsearch.train.loop import autotuned, train_stage

    seen = []

    @autotuned
    def stage(*, device, fail=False):
        seen.append(torch.backends.cudnn.benchmark)
        if fail:
            raise RuntimeError("diverged")

    before = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = False
        stage(device=torch.device("cuda"))
        stage(device="cpu")
        with pytest.raises(RuntimeError):
            stage(device="cuda:0", fail=True)
        assert seen == [True, False, True] and torch.backends.cudnn.benchmark is False
        torch.backends.cudnn.benchmark = True  # a user who switched it on keeps it on
        stage(device="cuda")
        assert torch.backends.cudnn.benchmark is True
    finally:
        torch.backends.cudnn.benchmark = before
    assert train_stage.__wrapped__.__name__ == "train_stage"  # the trainer itself is wrapped
