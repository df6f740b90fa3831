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

from growsearch.plan.planner import check
from growsearch.plan.schedule import load_schedule
from growsearch.search.best import load_best
from growsearch.search.judge import SearchError, best_trial
from growsearch.train.frontier import Frontier
from helpers import cli, cmdline, console_script, constraints_of, descendants, growsearch_argv, kill_tree, tiny_space

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # a real Ray: run with -m slow (.ci/run does)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("search")
    space = tiny_space(root)
    # the dataset as a user often writes it: relative to where the search runs (Tune starts each
    # trial in its own folder, and a trial must still find it)
    space.write_text(space.read_text().replace(f"npz:{root / 'tiny.npz'}", "npz:tiny.npz"))
    proc = cli("search", "space.yaml", "--out", str(root / "out"), "--trials", "4", cwd=root)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return root / "out", proc


def _study(out: Path) -> optuna.Study:
    return optuna.load_study(study_name="space", storage=f"sqlite:///{out / 'study.db'}")


def test_search_writes_results_users_import(searched, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, proc = searched
    assert (
        "trial 4/4" in proc.stdout and "failed (retries spent" not in proc.stdout
    )  # every trial found the relative dataset
    assert (
        re.search(r"^best feasible: trial \d+ \(mean of 3 seeds\), M ratio", proc.stdout, re.M)
        and "optuna-dashboard sqlite:///" in proc.stdout
    )
    assert (
        "--artifact-dir out/artifacts" in proc.stdout
    )  # the dashboard command that shows the stored network (relative to the search's folder)
    best = load_schedule(out / "best_schedule.json")
    check(best, num_classes=4)
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[0].startswith("number,state,M_ratio")
    assert (out / "pareto.png").stat().st_size > 1000
    from growsearch.cli.commands import main

    monkeypatch.chdir(out.parent)  # where the search ran: the schedule names its dataset as the space did
    assert main(["run", str(out / "best_schedule.json"), "--out", str(tmp_path / "rerun"), "--quiet"]) == 0


def test_the_search_confirms_its_best_on_more_seeds(searched) -> None:
    """By default the cheapest feasible trials train again on 2 more seeds and the best is chosen
    on their mean validation accuracy (issue 46); best_schedule.json is that trial's schedule."""
    import statistics

    from growsearch.search.confirm import choose

    out, proc = searched
    study = _study(out)
    rec = study.user_attrs["confirmed"]
    feasible = [t for t in study.trials if t.user_attrs.get("feasible") and t.user_attrs.get("final")]
    assert rec["seeds"] == 2 and len(rec["rows"]) == min(3, len(feasible)) >= 1
    cheapest = sorted(feasible, key=lambda t: t.user_attrs["M_ratio"])[: len(rec["rows"])]
    assert sorted(r["number"] for r in rec["rows"]) == sorted(t.number for t in cheapest)
    for r in rec["rows"]:
        trial = study.trials[r["number"]]
        assert r["val_accs"][0] == trial.user_attrs["val_acc"] and len(r["val_accs"]) == 3
        assert r["val_acc"] == pytest.approx(statistics.mean(r["val_accs"]))
        assert r["seeds"] == [trial.user_attrs["schedule"]["seed"] + k for k in range(3)]
    assert rec["best"] == choose(rec["rows"], study.user_attrs["target_acc"])
    assert load_schedule(out / "best_schedule.json").stages == _stages_of(study.trials[rec["best"]])
    assert "confirmed: the" in proc.stdout


def _stages_of(trial) -> list:
    from growsearch.plan.schedule import Schedule

    return Schedule.from_dict(trial.user_attrs["schedule"]).stages


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
    assert target == pytest.approx(
        max(p.val_acc for r in front.references for p in r.points) - 0.5
    )  # over the whole family
    assert study.user_attrs["M_ref"] == pytest.approx(front.m_scratch(target)["M"])
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.value == pytest.approx(t.user_attrs["M"] / front.m_scratch(target)["M"])
            assert constraints_of(t) == pytest.approx([target - t.user_attrs["val_acc"]])
            assert (constraints_of(t)[0] <= 0) == t.user_attrs["feasible"]


def test_running_into_an_existing_study_needs_resume(searched) -> None:
    out, _ = searched
    before = (out / "study.db").read_bytes()
    proc = cli("search", "space.yaml", "--out", str(out), cwd=out.parent)
    assert proc.returncode == 2 and "already exists" in proc.stderr and "--resume" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / "study.db").read_bytes() == before


def test_export_and_load_best(searched, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from growsearch.cli.commands import main

    out, _ = searched
    url = f"sqlite:///{out / 'study.db'}"
    assert main(["export", "--storage", url, "--study", "space", "-o", str(tmp_path / "best.json")]) == 0
    assert json.loads((tmp_path / "best.json").read_text()) == json.loads((out / "best_schedule.json").read_text())
    assert load_best(url, "space") == load_schedule(out / "best_schedule.json")
    import growsearch

    assert growsearch.load_best(url, "space") == load_best(url, "space")
    with pytest.raises(SearchError, match="no study"):
        load_best(url, "nope")
    assert re.search(
        r"^best feasible: trial \d+ \(mean of 3 seeds\), M_ratio [\d.]+x \[", capsys.readouterr().out, re.M
    )
    assert main(["export", "--storage", url, "--study", "nope", "-o", str(tmp_path / "x.json")]) == 2
    assert "no study 'nope'" in capsys.readouterr().err

    # a folder: the schedule and the best trial's trained network, stored as Optuna artifacts
    assert main(["export", "--storage", url, "--study", "space", "-o", str(tmp_path / "best")]) == 0
    result = json.loads((tmp_path / "best" / "result.json").read_text())
    winner = best_trial(_study(out))  # the confirmed best: chosen on the mean of 3 seeds
    assert winner.number == _study(out).user_attrs["confirmed"]["best"]
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
            console_script("optuna-dashboard"),
            f"sqlite:///{out / 'study.db'}",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--quiet",
            "--artifact-dir",
            str(out / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
    text = (
        space.read_text()
        .replace("archs: [vgg11@0.125, vgg13@0.125]", "archs: [vgg11@0.125]")
        .replace("resolutions: [16, 32]\n", "")
    )
    space.write_text(text)
    proc = cli(
        "search", str(space), "--out", str(tmp_path / "out"), "--trials", "3", "--cpus-per-trial", "2", "--confirm", "0"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = sorted(_study(tmp_path / "out").trials, key=lambda t: t.number)
    first, rest = trials[0], trials[1:]
    assert first.state == optuna.trial.TrialState.COMPLETE and first.user_attrs["feasible"]
    assert first.user_attrs["spent_M"] == first.user_attrs["M"]
    assert [t.state for t in rest] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(t.user_attrs["planned_M"] == first.user_attrs["M"] for t in rest)  # the plan is the trained M
    assert all(
        "spent_M" not in t.user_attrs and "M_ratio" not in t.user_attrs and not t.intermediate_values for t in rest
    )  # nothing trained
    assert sorted(first.intermediate_values) == [1, 2]  # Optuna steps are stages; the plan is no step
    assert proc.stdout.count("pruned before training: its planned M ratio") == 2


def _running(out: Path) -> bool:
    """A trial of the study in ``out`` is running (False while there is no study yet): read with
    plain SQL, in a millisecond, so a short trial is not missed while Optuna loads the study."""
    import sqlite3

    db = out / "study.db"
    if not db.is_file():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as con:
            return con.execute("SELECT count(*) FROM trials WHERE state = 'RUNNING'").fetchone()[0] > 0
    except sqlite3.Error:  # the database, not yet its tables (or locked for a moment)
        return False


def _alive(pid: int) -> bool:
    """``pid`` runs (a zombie, dead but not yet reaped by whoever adopted it, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _study_record(out: Path) -> list[tuple]:
    """What a study is, trial by trial: number, state, parameters, value, intermediate values
    (the cumulative ratio per stage) and what was measured."""
    keys = ("M", "M_ratio", "val_acc", "test_acc", "feasible", "schedule", "planned_M")
    return [
        (t.number, t.state.name, t.params, t.values, t.intermediate_values, {k: t.user_attrs.get(k) for k in keys})
        for t in sorted(_study(out).trials, key=lambda t: t.number)
    ]


def test_a_deterministic_search_is_the_same_study_on_either_backend_one_trial_at_a_time_or_two_and_blind_to_test_labels(
    tmp_path: Path,
) -> None:
    """The demo's own search (deterministic, batches of 3, the two reference schedules first) is the
    same study on Ray with two trials at once and on the Optuna backend one at a time (issue 44: a
    laptop search needs no Ray servers; only Ray's process tree listens on a port), and the second
    of them reads a copy whose test labels are shuffled: the same trials, values and best schedule
    show at once that neither the backend, nor the concurrency, nor the test set changes a choice
    (the test set is only reported). Two searches, where separate tests paid for five."""
    args = ["--trials", "4", "--deterministic", "--batch", "3", "--references", "--confirm", "0"]
    runs, ports = {}, {}
    for name, shuffled, extra in (
        ("two", False, ["--backend", "ray"]),
        ("one", True, ["--backend", "optuna", "--max-concurrent", "1"]),
    ):
        root = tmp_path / name
        root.mkdir()
        tiny_space(root, epochs="[1, 3]", shuffle_test=shuffled)
        proc, ports[name] = _search_watching_ports(root, [*args, *extra])
        assert proc.returncode in (0, 3), proc.stderr[-3000:]  # 3: finished, nothing feasible
        best = root / "out" / "best_schedule.json"
        study = _study(root / "out")
        runs[name] = {
            # each search has its own folder: the dataset's path is left out of the schedules compared
            "record": [
                (*r[:5], {**r[5], "schedule": _without_dataset(r[5]["schedule"])}) for r in _study_record(root / "out")
            ],
            "refs": [t.user_attrs.get("reference") for t in sorted(study.trials, key=lambda t: t.number)],
            "lines": [
                re.sub(r" \(test [0-9.]+\)|, test accuracy [0-9.]+", "", line)  # test accuracy: reported only
                for line in proc.stdout.splitlines()
                if line.startswith(("trial ", "best feasible"))
            ],
            "best": _without_dataset(json.loads(best.read_text())) if best.exists() else None,
            # every test accuracy measured: each trained stage's and each frontier budget's
            "tests": [[st["test_acc"] for st in t.user_attrs.get("stages", [])] for t in study.trials]
            + [[pt["test_acc"] for pt in ref["points"]] for ref in study.user_attrs["frontier"]["references"]],
            "batch": study.user_attrs["batch"],
        }
        if name == "one":
            assert "ray:" not in proc.stdout and "local worker process(es) of 1 thread(s), no Ray" in proc.stdout
    assert ports["one"] == set() and ports["two"], ports  # the watch does see Ray's servers
    two, one = runs["two"], runs["one"]
    assert (
        len(two["record"]) == 4 and len({json.dumps(r[2], sort_keys=True) for r in two["record"]}) > 1
    )  # the sampler did propose
    refs, k = two["refs"], sum(r is not None for r in two["refs"])
    # the references first (from scratch, the frontier's cheapest network when it is another run,
    # the paper's, its presets), as many as leave the sampler a trial
    assert (
        refs[0] == "from scratch"
        and "paper 2→4" in refs[:k]
        and k == 3
        and all(r is None for r in refs[k:])
        and two["batch"] == 3
    )
    assert _chosen(one) == _chosen(two) and one["batch"] == two["batch"], (
        "the Optuna backend one trial at a time, on shuffled test labels, chose or measured on validation another study than Ray two at once"
    )
    assert one["tests"] != two["tests"]  # the test labels really differ, and are reported as measured


def _chosen(run: dict) -> tuple:
    """What a search chose and measured on validation: its record without test accuracies."""
    record = [(*r[:5], {k: v for k, v in r[5].items() if k != "test_acc"}) for r in run["record"]]
    return record, run["lines"], run["best"], run["refs"]


def _without_dataset(sched: dict | None) -> dict | None:
    """A schedule without its dataset path (each search here has its own folder)."""
    return None if sched is None else {k: v for k, v in sched.items() if k != "dataset"}


@pytest.mark.parametrize(
    ("backend", "says"), [("ray", "exceeds the largest node"), ("optuna", "exceeds this machine's")]
)
def test_impossible_resources_are_a_clear_error(tmp_path: Path, backend: str, says: str) -> None:
    space = str(tiny_space(tmp_path))
    proc = cli("search", space, "--out", str(tmp_path / "out"), "--cpus-per-trial", "64", "--backend", backend)
    assert proc.returncode == 2 and says in proc.stderr and not (tmp_path / "out").exists(), proc.stderr


def _count(db: Path, where: str) -> int:
    """How many trials of the study in ``db`` match ``where`` (SQL on Optuna's tables; 0 while
    the file is not there yet or is being written)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as con:
            return con.execute(f"SELECT COUNT(*) FROM trials t WHERE {where}").fetchone()[0]
    except sqlite3.Error:
        return 0


def _complete(db: Path) -> int:
    return _count(db, "t.state = 'COMPLETE'")


def _mid_trial(db: Path) -> bool:
    """Whether a trial of the study has reported a stage (an intermediate value) and still runs."""
    return bool(
        _count(
            db,
            "t.state = 'RUNNING' AND EXISTS (SELECT 1 FROM trial_intermediate_values v WHERE v.trial_id = t.trial_id)",
        )
    )


class _Crafted:
    """A pickle that runs code when loaded: it creates the file its path names."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_killed_search_resumes_with_nothing_lost_and_never_reads_tunes_pickles(tmp_path: Path) -> None:
    """A killed driver resumes every completed trial as it was. Anyone who can write the run folder
    could plant Tune state that runs code when unpickled: --resume reads the Optuna study and the
    prefix cache (weights only), never Tune's pickles."""
    import pickle

    space = tiny_space(tmp_path, epochs="[3, 6]")
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "growsearch.cli.commands",
        "search",
        str(space),
        "--out",
        str(out),
        "--trials",
        "6",
        "--confirm",
        "0",
        "--backend",
        "ray",  # Tune's own saved state is what this plants pickles in
    ]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    driver = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    deadline = time.time() + 900
    while _complete(out / "study.db") < 2 and time.time() < deadline and driver.poll() is None:
        time.sleep(0.5)
    assert driver.poll() is None, "the search finished before it could be killed: make the trials longer"
    ray_procs = [p for p in descendants(driver.pid) if "reaper.py" not in cmdline(p)]
    assert any("raylet" in cmdline(p) for p in ray_procs)
    os.kill(driver.pid, signal.SIGKILL)  # the driver alone: the local Ray it started must die with it
    driver.wait()
    deadline = time.time() + 30
    while time.time() < deadline and (alive := [p for p in ray_procs if _alive(p)]):
        time.sleep(0.5)
    kill_tree(driver.pid, alive)  # whatever is left, by PID, before failing
    assert not alive, [cmdline(p)[:80] for p in alive]
    url = f"sqlite:///{out / 'study.db'}"
    before = {
        t.number: (t.value, t.datetime_complete)
        for t in optuna.load_study(study_name="space", storage=url).trials
        if t.state == optuna.trial.TrialState.COMPLETE
    }
    assert len(before) >= 2
    marker = tmp_path / "pwned"
    found = list((out / "tune").rglob("*.pkl"))
    assert found  # Tune's own state of the killed run was there to be read
    for pkl in {*found, out / "tune" / "space" / "tuner.pkl"}:
        pkl.write_bytes(pickle.dumps(_Crafted(marker)))

    proc = cli(
        "search",
        str(space),
        "--out",
        str(out),
        "--trials",
        "6",
        "--resume",
        "--confirm",
        "0",
        "--backend",
        "ray",
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not marker.exists(), "a planted pickle ran on --resume"
    after = optuna.load_study(study_name="space", storage=url).trials
    finished = [t for t in after if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    for number, (value, when) in before.items():  # every completed trial kept, none told twice
        assert (after[number].value, after[number].datetime_complete) == (value, when)
    assert len(finished) == 6  # the budget is the total: nothing re-run, nothing extra
    assert "reusing the study's" in proc.stdout  # the frontier is not trained again


@pytest.mark.parametrize(
    "backend,sig,code", [("optuna", signal.SIGINT, 130), ("ray", signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm-ray"]
)
def test_an_interrupted_search_says_so_chooses_nothing_and_resumes(
    tmp_path: Path, backend: str, sig: int, code: int
) -> None:
    """Ctrl-C, or SIGTERM (under Ray too, whose C++ handler printed a stack dump): the search says
    how far it got and how to resume, chooses nothing, exits 130 or 143; the resume completes it."""
    space = tiny_space(tmp_path, epochs="[3, 6]")
    out = tmp_path / "out"
    args = growsearch_argv(
        "search", str(space), "--out", str(out), "--trials", "6", "--confirm", "0", "--backend", backend
    )
    driver = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "RAY_AUTH_MODE": "disabled"}
    )
    deadline = time.time() + 900
    # mid-trial: a trial has reported a stage and is still running, so that trial's later stages
    # and the trials after it are left (after the first COMPLETE trial the rest could all be
    # pruned from their plans within a second, and the search end before the signal came)
    while not _mid_trial(out / "study.db") and time.time() < deadline and driver.poll() is None:
        time.sleep(0.1)
    assert driver.poll() is None, "the search finished before it could be interrupted: make the trials longer"
    driver.send_signal(sig)
    _, err = driver.communicate(timeout=600)
    assert driver.returncode == code, err[-3000:]
    assert "--resume" in err and "of 6 trials" in err and "SIGTERM received" not in err, err[-3000:]
    assert len(err.strip().splitlines()) == 1, err[-3000:]
    assert not (out / "best_schedule.json").exists()  # nothing chosen from an unfinished search
    if backend == "ray":
        return  # a resumed Ray search: test_killed_search_resumes_with_nothing_lost_and_never_reads_tunes_pickles
    proc = cli("search", str(space), "--out", str(out), "--trials", "6", "--resume", "--confirm", "0", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = _study(out)
    assert (out / "best_schedule.json").is_file()
    assert (
        len([t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)])
        == 6
    )


@pytest.mark.parametrize("backend", ["ray", "optuna"])
def test_a_trial_whose_worker_dies_is_retried_from_its_stage_checkpoint(tmp_path: Path, backend: str) -> None:
    # local workers start in a second, not Ray's: longer trials leave time to find one mid-schedule
    space = tiny_space(tmp_path, epochs="[4, 8]" if backend == "ray" else "[10, 20]")
    out = tmp_path / "out"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    args = ["search", str(space), "--out", str(out), "--trials", "3", "--max-failures", "2", "--confirm", "0"]
    driver = subprocess.Popen(
        growsearch_argv(*args, "--backend", backend),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    killed, running_since, cached = False, None, set()
    deadline = time.time() + 900
    while not killed and time.time() < deadline and driver.poll() is None:
        if backend == "ray":
            started = list((out / "tune").glob("*/*/checkpoint_*/*.pt"))  # a trial reported its first stage
            worker = "ray::ImplicitFunc"
        else:
            # a trial is running (the frontier is done) and has finished its first stage (a new
            # prefix-cache entry), or has run a second without one: its worker is one of the
            # pool's spawned processes, and any of them dying breaks the pool for every trial in it
            if running_since is None and _running(out):
                running_since, cached = time.time(), set((out / "prefix_cache").glob("*.pt"))
            started = running_since is not None and (
                set((out / "prefix_cache").glob("*.pt")) > cached or time.time() > running_since + 1
            )
            worker = "spawn_main"
        if started:
            # the trial workers of this test's own driver (its descendants), not any on the machine
            pids = [p for p in descendants(driver.pid) if worker in cmdline(p)]
            if pids:
                os.kill(pids[0], signal.SIGKILL)  # the trial's worker dies mid-schedule
                killed = True
        time.sleep(0.02)
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
    proc = cli(
        "search",
        str(space),
        "--out",
        str(out),
        "--trials",
        "3",
        "--fgsm-eps",
        "0.05",
        "--fgsm-objective",
        "--min-fgsm-acc",
        "0.3",
    )
    assert proc.returncode in (0, 3), proc.stderr[-3000:]  # 3: finished, nothing feasible
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


def test_a_search_on_a_given_frontier_trains_no_budgets(searched, tmp_path: Path) -> None:
    root = searched[0].parent  # the module's search: its space, data (named relative to root) and frontier
    front = searched[0] / "frontier"
    given = json.loads((front / "frontier.json").read_text())

    # another validation split: refused before anything is written
    bad = tmp_path / "bad_frontier"
    proc = cli(
        "baseline",
        "--data",
        "npz:tiny.npz",
        "--arch",
        "vgg13@0.125",
        "--budgets",
        "1,2",
        "--val-fraction",
        "0.25",
        "--out",
        str(bad),
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = cli(
        "search", "space.yaml", "--out", str(tmp_path / "refused"), "--trials", "2", "--baseline", str(bad), cwd=root
    )
    assert (
        proc.returncode == 2
        and "another validation split" in proc.stderr
        and len(proc.stderr.strip().splitlines()) == 1
    )
    assert not (tmp_path / "refused").exists()

    proc = cli(
        "search",
        "space.yaml",
        "--out",
        str(tmp_path / "out"),
        "--trials",
        "2",
        "--baseline",
        str(front),
        "--confirm",
        "0",
        cwd=root,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert not (tmp_path / "out" / "frontier").exists()  # the space's baseline_epochs ladder was not trained
    study = _study(tmp_path / "out")
    assert study.user_attrs["frontier"] == given
    best = Frontier.from_dict(given).best_val_acc
    assert study.user_attrs["target_acc"] == pytest.approx(best - 0.5)


def _search_watching_ports(root: Path, args: list[str]) -> tuple[subprocess.CompletedProcess, set[int]]:
    """``growsearch search space.yaml --out out ARGS`` in ``root``, polling the listening TCP
    ports of its process and every process below it while it runs."""
    from helpers import listening

    cmd = growsearch_argv("search", "space.yaml", "--out", "out", *args)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ports: set[int] = set()
    while proc.poll() is None:
        ports |= listening([proc.pid, *descendants(proc.pid)])
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr), ports
