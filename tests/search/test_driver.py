"""The search through real components: a local Ray, Optuna's SQLite storage, optuna-dashboard."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from helpers import cli, cmdline, console_script, constraints_of, descendants, kill_tree, tiny_space
from growsearch.train.frontier import Frontier
from growsearch.plan.schedule import load_schedule
from growsearch.search.judge import SearchError
from growsearch.search.best import load_best
from growsearch.plan.planner import check

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # a real Ray: run with -m slow (.ci/run does)

@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("search")
    proc = cli("search", str(tiny_space(root)), "--out", str(root / "out"), "--trials", "4")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return root / "out", proc


def _study(out: Path) -> optuna.Study:
    return optuna.load_study(study_name="space", storage=f"sqlite:///{out / 'study.db'}")


def test_search_writes_results_users_import(searched, tmp_path: Path) -> None:
    out, proc = searched
    assert re.search(r"^best feasible: trial \d+, M ratio", proc.stdout, re.M) and "optuna-dashboard sqlite:///" in proc.stdout
    assert f"--artifact-dir {out.resolve() / 'artifacts'}" in proc.stdout  # the dashboard command that shows the stored network
    best = load_schedule(out / "best_schedule.json")
    check(best, num_classes=4)
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[0].startswith("number,state,M_ratio")
    assert (out / "pareto.png").stat().st_size > 1000
    from growsearch.cli.commands import main

    assert main(["run", str(out / "best_schedule.json"), "--out", str(tmp_path / "rerun"), "--quiet"]) == 0


def test_each_trial_records_its_schedule_and_metrics(searched) -> None:
    study = _study(searched[0])
    front = Frontier.from_dict(study.user_attrs["frontier"])
    assert [p.epochs for p in front.references[0].points] == [1, 2]  # the ladder ending at baseline_epochs 2
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done
    for t in done:
        a = t.user_attrs
        assert {"schedule", "M", "M_ratio", "val_acc", "test_acc", "wall_s", "stages", "versions"} <= set(a)
        assert a["M_ratio"] == pytest.approx(a["M"] / study.user_attrs["M_ref"])
        assert t.value == pytest.approx(a["M_ratio"])
        assert len(a["stages"]) == len(a["schedule"]["stages"])
        assert "torch" in a["versions"]
        # the space's resolutions reach the schedule and the per-stage results (last stage native)
        first = a["schedule"]["stages"][0]
        assert first["resolution"] in (16, 32) and a["stages"][0]["resolution"] == first["resolution"]
        assert a["schedule"]["stages"][-1]["resolution"] is None and a["stages"][-1]["resolution"] == 32


def test_the_stored_objective_and_constraint_follow_the_frontier(searched) -> None:
    study = _study(searched[0])
    front = Frontier.from_dict(study.user_attrs["frontier"])
    target = study.user_attrs["target_acc"]
    # target = the frontier's best validation accuracy − tolerance (0.5 in the tiny space)
    assert target == pytest.approx(max(p.val_acc for p in front.references[0].points) - 0.5)
    assert study.user_attrs["M_ref"] == pytest.approx(front.m_scratch(target)["M"])
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.value == pytest.approx(t.user_attrs["M"] / front.m_scratch(target)["M"])
            assert constraints_of(t) == pytest.approx([target - t.user_attrs["val_acc"]])
            assert (constraints_of(t)[0] <= 0) == t.user_attrs["feasible"]


def test_running_into_an_existing_study_needs_resume(searched) -> None:
    out, _ = searched
    space = out.parent / "space.yaml"
    before = (out / "study.db").read_bytes()
    proc = cli("search", str(space), "--out", str(out))
    assert proc.returncode == 2 and "already exists" in proc.stderr and "--resume" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / "study.db").read_bytes() == before


def test_export_and_load_best(searched, tmp_path: Path) -> None:
    out, _ = searched
    url = f"sqlite:///{out / 'study.db'}"
    proc = cli("export", "--storage", url, "--study", "space", "-o", str(tmp_path / "best.json"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "best.json").read_text()) == json.loads((out / "best_schedule.json").read_text())
    assert load_best(url, "space") == load_schedule(out / "best_schedule.json")
    import growsearch

    assert growsearch.load_best(url, "space") == load_best(url, "space")
    with pytest.raises(SearchError, match="no study"):
        load_best(url, "nope")
    proc = cli("export", "--storage", url, "--study", "nope", "-o", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and "no study 'nope'" in proc.stderr

    # a folder: the schedule and the best trial's trained network, stored as Optuna artifacts
    proc = cli("export", "--storage", url, "--study", "space", "-o", str(tmp_path / "best"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "best" / "result.json").read_text())
    feasible = [t for t in _study(out).trials if t.user_attrs.get("feasible")]
    winner = min(feasible, key=lambda t: t.user_attrs["M_ratio"])
    assert result["M"] == winner.user_attrs["M"] and result["val_acc"] == winner.user_attrs["val_acc"]
    from growsearch.train.results import load_checkpoint

    model, ckpt = load_checkpoint(tmp_path / "best" / "network.pt")
    assert ckpt["spec"] == result["stages"][-1]["spec"] and ckpt["val_acc"] == winner.user_attrs["val_acc"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_optuna_dashboard_lists_the_trials_and_serves_the_best_network(searched) -> None:
    out, _ = searched
    port = _free_port()
    server = subprocess.Popen(
        [
            console_script("optuna-dashboard"), f"sqlite:///{out / 'study.db'}", "--port", str(port), "--host", "127.0.0.1", "--quiet",
            "--artifact-dir", str(out / "artifacts"),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline, studies = time.time() + 300, None
        while time.time() < deadline and studies is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                    studies = json.load(r)["study_summaries"]
            except OSError:
                time.sleep(0.5)
        assert studies is not None, "optuna-dashboard did not answer"
        (ours,) = [s for s in studies if s["study_name"] == "space"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{ours['study_id']}", timeout=10) as r:
            detail = json.load(r)
        assert len(detail["trials"]) == 4
        assert any(t["state"] == "Complete" for t in detail["trials"])
        # the best feasible trial's network and result.json are artifacts the dashboard lists and serves
        feasible = [t for t in _study(out).trials if t.user_attrs.get("feasible")]
        winner = min(feasible, key=lambda t: t.user_attrs["M_ratio"])
        (row,) = [t for t in detail["trials"] if t["number"] == winner.number]
        listed = {a["artifact_id"]: a for a in row["artifacts"]}
        assert set(listed) == {winner.user_attrs["network_artifact"], winner.user_attrs["result_artifact"]}
        url = f"http://127.0.0.1:{port}/artifacts/{ours['study_id']}/{row['trial_id']}/{winner.user_attrs['result_artifact']}"
        with urllib.request.urlopen(url, timeout=10) as r:
            served = json.load(r)
        assert served["M"] == winner.user_attrs["M"] and served["val_acc"] == winner.user_attrs["val_acc"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_trial_that_cannot_win_is_pruned_from_its_plan_before_training(tmp_path: Path) -> None:
    # A space with exactly one fixed-epoch schedule, trials one at a time: the first trains and is
    # feasible (tolerance 0.5); the others plan the same M, which cannot beat it, so the stopper
    # ends them before they train anything (their prefix would have been reused anyway).
    space = tiny_space(tmp_path, split="[0.5, 0.5]", epochs="[1, 1]")
    text = space.read_text().replace("archs: [vgg11@0.125, vgg13@0.125]", "archs: [vgg11@0.125]").replace("resolutions: [16, 32]\n", "")
    space.write_text(text)
    proc = cli("search", str(space), "--out", str(tmp_path / "out"), "--trials", "3", "--cpus-per-trial", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = sorted(_study(tmp_path / "out").trials, key=lambda t: t.number)
    first, rest = trials[0], trials[1:]
    assert first.state == optuna.trial.TrialState.COMPLETE and first.user_attrs["feasible"]
    assert first.user_attrs["spent_M"] == first.user_attrs["M"]
    assert [t.state for t in rest] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(t.user_attrs["planned_M"] == first.user_attrs["M"] for t in rest)  # the plan is the trained M
    assert all("spent_M" not in t.user_attrs and "M_ratio" not in t.user_attrs and not t.intermediate_values for t in rest)  # nothing trained
    assert sorted(first.intermediate_values) == [1, 2]  # Optuna steps are stages; the plan is no step
    assert proc.stdout.count("pruned before training: its planned M ratio") == 2


def _study_record(out: Path) -> list[tuple]:
    """What a study is, trial by trial: number, state, parameters, value and what was measured."""
    keys = ("M", "M_ratio", "val_acc", "test_acc", "feasible", "schedule", "planned_M")
    return [
        (t.number, t.state.name, t.params, t.values, {k: t.user_attrs.get(k) for k in keys})
        for t in sorted(_study(out).trials, key=lambda t: t.number)
    ]


def test_a_deterministic_search_is_the_same_study_one_trial_at_a_time_or_two(tmp_path: Path) -> None:
    space = tiny_space(tmp_path, epochs="[1, 2]")
    runs = []
    for name, extra in (("two", []), ("one", ["--max-concurrent", "1"])):
        proc = cli("search", str(space), "--out", str(tmp_path / name), "--trials", "4", "--deterministic", "--batch", "2", *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append((_study_record(tmp_path / name), [line for line in proc.stdout.splitlines() if line.startswith("trial ")]))
    assert runs[0] == runs[1]
    assert len(runs[0][0]) == 4 and len({json.dumps(r[2], sort_keys=True) for r in runs[0][0]}) > 1  # the sampler did propose
    assert _study(tmp_path / "two").user_attrs["batch"] == 2


def test_impossible_resources_are_a_clear_error(tmp_path: Path) -> None:
    proc = cli("search", str(tiny_space(tmp_path)), "--out", str(tmp_path / "out"), "--cpus-per-trial", "64")
    assert proc.returncode == 2 and "exceeds the largest node" in proc.stderr


def test_bad_space_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("dataset: digits\nfinal_arch: vgg19\narchs: [vgg11]\nstages: [4, 2]\n")
    proc = cli("search", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "stages: min 4 is above max 2" in proc.stderr


def _complete(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_killed_search_resumes_with_nothing_lost(tmp_path: Path) -> None:
    space = tiny_space(tmp_path, epochs="[3, 6]")
    out = tmp_path / "out"
    args = [sys.executable, "-m", "growsearch.cli.commands", "search", str(space), "--out", str(out), "--trials", "6"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.time() + 900
    while _complete(out / "study.db") < 2 and time.time() < deadline and driver.poll() is None:
        time.sleep(0.5)
    assert driver.poll() is None, "the search finished before it could be killed: make the trials longer"
    kill_tree(driver.pid)  # the driver and the local Ray it started (its own processes, by PID)
    driver.wait()
    url = f"sqlite:///{out / 'study.db'}"
    before = {t.number: (t.value, t.datetime_complete) for t in optuna.load_study(study_name="space", storage=url).trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(before) >= 2

    proc = cli("search", str(space), "--out", str(out), "--trials", "6", "--resume", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = optuna.load_study(study_name="space", storage=url).trials
    finished = [t for t in after if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    for number, (value, when) in before.items():  # every completed trial kept, none told twice
        assert (after[number].value, after[number].datetime_complete) == (value, when)
    assert len(finished) == 6  # the budget is the total: nothing re-run, nothing extra
    assert "reusing the study's" in proc.stdout  # the frontier is not trained again


class _Crafted:
    """A pickle that runs code when loaded: it creates the file its path names."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_tune_state_is_never_read_on_resume(tmp_path: Path) -> None:
    """Anyone who can write the run folder could plant Tune state that runs code when unpickled:
    --resume reads the Optuna study and the prefix cache (weights only), never Tune's pickles."""
    import pickle

    space = tiny_space(tmp_path, epochs="[1, 1]")
    out = tmp_path / "out"
    assert cli("search", str(space), "--out", str(out), "--trials", "2").returncode == 0
    marker = tmp_path / "pwned"
    for pkl in [*(out / "tune").rglob("*.pkl"), out / "tune" / "space" / "tuner.pkl"]:
        pkl.write_bytes(pickle.dumps(_Crafted(marker)))
    proc = cli("search", str(space), "--out", str(out), "--trials", "3", "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not marker.exists(), "a planted pickle ran on --resume"
    assert len([t for t in _study(out).trials if t.state == optuna.trial.TrialState.COMPLETE]) >= 2


def test_resuming_a_mistyped_storage_creates_nothing(tmp_path: Path) -> None:
    space = tiny_space(tmp_path)
    proc = cli("search", str(space), "--out", str(tmp_path / "out"), "--storage", f"sqlite:///{tmp_path / 'typo.db'}", "--resume")
    assert proc.returncode == 2 and "nothing to resume: no database at" in proc.stderr
    assert not (tmp_path / "typo.db").exists() and not (tmp_path / "out").exists()


def test_a_trial_whose_worker_dies_is_retried_from_its_stage_checkpoint(tmp_path: Path) -> None:
    space = tiny_space(tmp_path, epochs="[4, 8]")
    out = tmp_path / "out"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "growsearch.cli.commands", "search", str(space), "--out", str(out), "--trials", "3", "--max-failures", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
    )
    killed = False
    deadline = time.time() + 900
    while not killed and time.time() < deadline and driver.poll() is None:
        if list((out / "tune").glob("*/*/checkpoint_*")):  # a trial reported its first stage
            # the trial workers of this test's own driver (its descendants), not any Ray on the machine
            pids = [p for p in descendants(driver.pid) if "ray::ImplicitFunc" in cmdline(p)]
            if pids:
                os.kill(pids[0], signal.SIGKILL)  # the trial's worker dies mid-schedule
                killed = True
        time.sleep(0.2)
    log, _ = driver.communicate(timeout=1800)
    assert killed, "no trial worker was found to kill"
    assert driver.returncode == 0, log[-3000:]
    trials = _study(out).trials
    assert len(trials) == 3
    # Without the retry the killed trial would be told as FAIL; with it, it finishes.
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)


def test_fgsm_with_mutual_inference_as_second_objective_and_constraint(tmp_path: Path) -> None:
    space = tiny_space(tmp_path)
    out = tmp_path / "out"
    proc = cli("search", str(space), "--out", str(out), "--trials", "3", "--fgsm-eps", "0.05", "--fgsm-objective", "--min-fgsm-acc", "0.3")
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    study = _study(out)
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE, optuna.study.StudyDirection.MAXIMIZE]
    assert study.user_attrs["robust"] == {"eps": 0.05, "objective": True, "min_acc": 0.3}
    target = study.user_attrs["target_acc"]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3  # nothing is stopped early in multi-objective mode
    for t in done:
        a = t.user_attrs
        assert 0 <= a["fgsm_mi_acc"] <= 1 and a["fgsm_eps"] == 0.05
        assert t.values == pytest.approx([a["M_ratio"], a["fgsm_mi_acc"]])
        assert constraints_of(t) == pytest.approx([target - a["val_acc"], 0.3 - a["fgsm_mi_acc"]])
        assert a["feasible"] == (a["val_acc"] >= target and a["fgsm_mi_acc"] >= 0.3)
    header = (out / "trials.csv").read_text().splitlines()[0]
    assert "fgsm_mi_acc" in header
    if any(t.user_attrs["feasible"] for t in done):
        assert "Pareto front" in proc.stdout
    # resuming with different FGSM settings would mix incomparable trials
    again = cli("search", str(space), "--out", str(out), "--resume", "--fgsm-eps", "0.1")
    assert again.returncode == 2 and "FGSM settings" in again.stderr


def test_fgsm_options_need_an_epsilon(tmp_path: Path) -> None:
    proc = cli("search", str(tiny_space(tmp_path)), "--out", str(tmp_path / "out"), "--fgsm-objective")
    assert proc.returncode == 2 and "need --fgsm-eps" in proc.stderr
    assert not (tmp_path / "out" / "study.db").exists()


def test_space_resolutions_above_native_are_an_error(tmp_path: Path) -> None:
    space = tiny_space(tmp_path)
    space.write_text(space.read_text().replace("resolutions: [16, 32]", "resolutions: [16, 64]"))
    proc = cli("search", str(space), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "above" in proc.stderr and "native 32 px" in proc.stderr


def test_selection_is_blind_to_test_labels(tmp_path: Path) -> None:
    """The same search on a copy whose test labels are shuffled picks the same best trial with
    the same validation numbers: nothing the search chooses reads the test set."""
    picks = []
    for shuffled in (False, True):
        root = tmp_path / ("shuffled" if shuffled else "plain")
        root.mkdir()
        space = tiny_space(root, epochs="[1, 3]", shuffle_test=shuffled)
        # one trial at a time, so TPE sees the same history in both searches
        proc = cli("search", str(space), "--out", str(root / "out"), "--trials", "3", "--cpus-per-trial", "2")
        assert proc.returncode in (0, 1), proc.stderr[-3000:]
        trials = _study(root / "out").trials

        def shape(sched: dict | None) -> dict | None:  # the schedule without its dataset path (plain/ vs shuffled/)
            return None if sched is None else {k: v for k, v in sched.items() if k != "dataset"}

        best = root / "out" / "best_schedule.json"
        picks.append((
            [(t.number, t.state.name, t.user_attrs.get("M_ratio"), t.user_attrs.get("val_acc"), shape(t.user_attrs.get("schedule"))) for t in trials],
            # every test accuracy measured: each trained stage's and each frontier budget's (trials that
            # cannot win are pruned from their plan and measure none)
            [[s["test_acc"] for s in t.user_attrs.get("stages", [])] for t in trials]
            + [[p["test_acc"] for p in ref["points"]] for ref in _study(root / "out").user_attrs["frontier"]["references"]],
            shape(json.loads(best.read_text())) if best.exists() else None,
        ))
    (chosen, tests, best), (chosen_s, tests_s, best_s) = picks
    assert chosen == chosen_s and best == best_s
    assert tests != tests_s  # the test labels really differ, and are reported as measured


def test_a_search_on_a_given_frontier_trains_no_budgets(tmp_path: Path) -> None:
    space = tiny_space(tmp_path)
    data = f"npz:{tmp_path / 'tiny.npz'}"
    front = tmp_path / "frontier"
    proc = cli("baseline", "--data", data, "--arch", "vgg13@0.125", "--budgets", "1,2", "--out", str(front))
    assert proc.returncode == 0, proc.stderr[-3000:]
    given = json.loads((front / "frontier.json").read_text())

    # another validation split: refused before anything is written
    bad = tmp_path / "bad_frontier"
    proc = cli("baseline", "--data", data, "--arch", "vgg13@0.125", "--budgets", "1,2", "--val-fraction", "0.25", "--out", str(bad))
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = cli("search", str(space), "--out", str(tmp_path / "refused"), "--trials", "2", "--baseline", str(bad))
    assert proc.returncode == 2 and "another validation split" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "refused").exists()

    proc = cli("search", str(space), "--out", str(tmp_path / "out"), "--trials", "2", "--baseline", str(front))
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert not (tmp_path / "out" / "frontier").exists()  # the space's baseline_epochs ladder was not trained
    study = _study(tmp_path / "out")
    assert study.user_attrs["frontier"] == given
    best = Frontier.from_dict(given).best_val_acc
    assert study.user_attrs["target_acc"] == pytest.approx(best - 0.5)
