from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from growsearch.cli.commands import main
from growsearch.plan.planner import check
from helpers import REPO


def _write(path: Path, data: str, stages: list[dict]) -> Path:
    path.write_text(json.dumps({"dataset": data, "seed": 0, "stages": stages}))
    return path


GOOD = [{"classes": 2, "arch": "vgg11@0.125", "epochs": 1}, {"classes": 4, "arch": "vgg13@0.125", "epochs": 1}]


@pytest.mark.parametrize("cmd", [[], ["run"], ["baseline"], ["search"], ["export"], ["demo"]])
def test_every_subcommand_has_help(cmd: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0
    assert "usage: growsearch" in capsys.readouterr().out


def test_run_and_baseline_write_their_files(npz_data: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert (
        main(
            [
                "baseline",
                "--data",
                npz_data,
                "--arch",
                "vgg13@0.125",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "b"),
                "--quiet",
            ]
        )
        == 0
    )
    sched = _write(tmp_path / "s.json", npz_data, GOOD)
    assert main(["run", str(sched), "--out", str(tmp_path / "r"), "--baseline", str(tmp_path / "b"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "M ratio" in out
    for f in ("result.json", "stage1.pt", "stage2.pt", "curve.png"):
        assert (tmp_path / "r" / f).is_file()
    assert (tmp_path / "b" / "stage1.pt").is_file()


@pytest.mark.parametrize(
    "stages,msg",
    [
        (
            [{"classes": 3, "arch": "vgg11@0.125", "epochs": 1}, {"classes": 2, "arch": "vgg13@0.125", "epochs": 1}],
            "class subsets must grow",
        ),
        (
            [{"classes": 2, "arch": "vgg11@0.125", "epochs": 1}, {"classes": 9, "arch": "vgg13@0.125", "epochs": 1}],
            "9 classes but",
        ),
        (
            [{"classes": 2, "arch": "vgg13@0.125", "epochs": 1}, {"classes": 4, "arch": "vgg11@0.125", "epochs": 1}],
            "would remove",
        ),
        ([{"classes": 2, "arch": "vgg7", "epochs": 1}, {"classes": 4, "arch": "vgg11", "epochs": 1}], "unknown arch"),
        (
            [{"classes": 2, "arch": "vgg11@0.125", "epochs": 0}, {"classes": 4, "arch": "vgg13@0.125", "epochs": 1}],
            "epochs",
        ),
    ],
)
def test_bad_schedules_exit_2_with_one_line(
    npz_data: str, tmp_path: Path, capsys: pytest.CaptureFixture, stages, msg: str
) -> None:
    sched = _write(tmp_path / "s.json", npz_data, stages)
    assert main(["run", str(sched), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r" / "result.json").exists()


def test_unknown_dataset_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sched = _write(tmp_path / "s.json", "cifar10:" + str(tmp_path), [{"classes": 10, "arch": "vgg11", "epochs": 1}])
    assert main(["run", str(sched), "--out", str(tmp_path / "r")]) == 2
    assert "cifar-10-batches-py" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_existing_out_is_refused_without_overwrite(
    npz_data: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sched = _write(tmp_path / "s.json", npz_data, GOOD)
    assert main(["run", str(sched), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    before = (tmp_path / "r" / "result.json").read_bytes()
    assert main(["run", str(sched), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "r" / "result.json").read_bytes() == before


def test_user_errors_show_no_traceback_from_the_real_command(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "growsearch.cli.commands",
            "run",
            str(tmp_path / "nope.json"),
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "does not exist" in proc.stderr


def test_baseline_from_another_dataset_is_refused(npz_data: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert (
        main(
            [
                "baseline",
                "--data",
                "digits",
                "--arch",
                "vgg11@0.125",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / "b"),
                "--quiet",
            ]
        )
        == 0
    )
    sched = _write(tmp_path / "s.json", npz_data, GOOD)
    assert main(["run", str(sched), "--out", str(tmp_path / "r"), "--baseline", str(tmp_path / "b"), "--quiet"]) == 2
    assert "same dataset" in capsys.readouterr().err
    assert not (tmp_path / "r" / "result.json").exists()


@pytest.mark.slow  # trains the shipped example whole: 45 s on 2 cores
def test_the_example_schedule_runs(tmp_path: Path) -> None:
    example = REPO / "examples" / "digits_schedule.json"
    assert main(["run", str(example), "--out", str(tmp_path / "ex"), "--quiet"]) == 0
    result = json.loads((tmp_path / "ex" / "result.json").read_text())
    assert [s["arch"] for s in result["stages"]] == ["vgg11@0.25", "vgg16@0.25", "vgg19@0.25"]
    assert result["test_acc"] > 0.9  # a trained digits classifier, not a smoke test


def test_the_resolution_example_is_a_valid_schedule() -> None:
    from growsearch.plan.schedule import load_schedule

    sched = load_schedule(REPO / "examples" / "digits_resolution_schedule.json")
    check(sched, num_classes=10, image_size=32)
    assert [s.resolution for s in sched.stages] == [16, 16, None]


def test_dry_run_says_how_the_run_is_trained_and_that_copying_is_not_function_preserving(
    npz_data: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    sched = {
        "dataset": npz_data,
        "budget_epochs": 4,
        "grow_at": [0.5],
        "deepen_init": "copy",
        "data_growth": "samples",
        "train": {"lr_schedule": "global", "carry_optimizer": True, "new_param_lr": 2},
        "stages": [
            {"classes": 4, "arch": "vgg13@0.125", "fraction": 0.5, "optimizer": "ssgd", "weight_decay": 0.005},
            {"classes": 4, "arch": "vgg16@0.125", "fraction": 1},
        ],
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(sched))
    assert main(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "in stage 1 (strength 1)" in out and "weight decay: 0.0005, but 0.005 in stage 1" in out
    assert "deepen by copy (3 of 3 new layers copied from trained ones; not function-preserving)" in out
    assert "one warm-up and one decay to zero over the whole run" in out and "momentum carried" in out
    assert "LR x2" in out and "0.5 → 1" in out
    assert [line.split()[4] for line in out.splitlines()[1:3]] == ["2", "2"]  # the budget's halves
    assert not list(tmp_path.glob("*/"))  # nothing written


def test_the_verdict_says_dont_grow_when_a_one_stage_schedule_is_cheapest() -> None:
    from types import SimpleNamespace

    from growsearch.cli.summaries import verdict

    judge = SimpleNamespace(metric="M_ratio", cost="M")
    one = {"schedule": {"stages": [{}]}, "M_ratio": 0.74}
    two = {"schedule": {"stages": [{}, {}]}, "M_ratio": 0.74}
    grown = {"number": 1, "M_ratio": 0.88}
    res = lambda best: SimpleNamespace(best=best, best_grown=grown, best_number=5, judge=judge, trials=6, val_size=142)  # noqa: E731
    assert "does not grow (trial 6, one stage, 0.740x): on this evidence, train from scratch" in verdict(res(one))
    assert "growth beat the from-scratch frontier" in verdict(res(two)) and "does not grow" not in verdict(res(two))


def test_a_command_run_inside_a_program_gives_back_its_sigterm_handler(tmp_path: Path) -> None:
    """main() turns SIGTERM into an orderly stop while its command runs; afterwards the calling
    program's own handler is back (a test runner stopped by SIGTERM stops as it would have)."""
    import signal

    mine = lambda signum, frame: None  # noqa: E731
    before = signal.signal(signal.SIGTERM, mine)
    try:
        assert main(["run", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)
