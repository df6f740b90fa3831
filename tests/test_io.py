from __future__ import annotations

import json
from pathlib import Path

import pytest

from growsearch._io import MANIFEST, atomic_path, foreign, held, lock_path, owned, remove_owned
from growsearch.errors import GrowsearchError
from helpers import growsearch_argv


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_a_finished_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "curve.png"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert list(tmp_path.iterdir()) == [target]


# --- the ownership rule: growsearch never replaces or removes a file it did not write ---------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _run_cmd(npz_data: str, tmp_path: Path, out: Path, *extra: str) -> int:
    from growsearch.cli.commands import main

    sched = tmp_path / "s.json"
    if not sched.exists():
        sched.write_text(
            json.dumps({"dataset": npz_data, "stages": [{"classes": 4, "arch": "vgg11@0.125", "epochs": 1}]})
        )
    return main(["run", str(sched), "--out", str(out), "--quiet", *extra])


@pytest.mark.parametrize("overwrite", [False, True])
def test_run_never_replaces_a_users_files_named_like_its_outputs(
    npz_data: str, tmp_path: Path, overwrite: bool, capsys
) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "curve.png").write_bytes(b"my plot")
    (out / "stage1.pt").write_bytes(b"my weights")
    before = _snapshot(out)
    assert _run_cmd(npz_data, tmp_path, out, *(["--overwrite"] if overwrite else [])) == 2
    assert "did not write (curve.png, stage1.pt)" in capsys.readouterr().err
    assert _snapshot(out) == before


def test_a_run_beside_the_users_files_keeps_them_and_replaces_only_its_own(npz_data: str, tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _run_cmd(npz_data, tmp_path, out) == 0
    assert _run_cmd(npz_data, tmp_path, out) == 2  # a finished run: only --overwrite replaces it
    first = (out / "result.json").read_bytes()
    assert (
        _run_cmd(npz_data, tmp_path, out, "--overwrite") == 2
    )  # --overwrite swaps the folder whole: not beside notes.txt
    assert (out / "notes.txt").read_text() == "mine" and (out / "result.json").read_bytes() == first
    assert owned(out) == {"curve.png", "result.json", "stage1.pt"}


def test_overwrite_through_a_symlink_replaces_the_run_it_points_to_and_keeps_the_link(
    npz_data: str, tmp_path: Path
) -> None:
    real, link = tmp_path / "real", tmp_path / "link"
    assert _run_cmd(npz_data, tmp_path, real) == 0
    link.symlink_to(real)
    assert _run_cmd(npz_data, tmp_path, link, "--overwrite") == 0
    assert link.is_symlink() and link.resolve() == real.resolve() and (real / "result.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "link",
        "real",
        "s.json",
        "tiny.npz",
    ]  # nothing hidden left beside


def test_the_lock_name_is_short_whatever_the_folder_is_called(tmp_path: Path) -> None:
    folder = tmp_path / ("x" * 250)
    assert len(lock_path(folder).name) < 40
    with held(folder, OSError):
        (folder / "result.json").write_text("{}")
    assert owned(folder) == {"result.json"}


def test_a_killed_holder_leaves_its_files_owned_and_the_users_not(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(KeyboardInterrupt), held(folder, OSError):
        (folder / "stage1.pt").write_bytes(b"ours")
        raise KeyboardInterrupt  # the manifest is written on the way out as well
    assert owned(folder) == {"stage1.pt"}
    (folder / MANIFEST).write_text(
        json.dumps({"ours": [], "claimed": {"pid": 1, "foreign": ["notes.txt"]}})
    )  # SIGKILL: no way out
    assert owned(folder) == {"stage1.pt"} and foreign(folder) == ["notes.txt"]
    remove_owned(folder)
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, "notes.txt"]


def test_the_demo_replaces_only_what_an_earlier_demo_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import growsearch.search.driver as driver
    from growsearch.cli.commands import run_demo

    calls = []
    monkeypatch.setattr(
        driver, "run_search", lambda *a, **k: calls.append(k["out_dir"])
    )  # the search itself is tested elsewhere
    d = tmp_path / "d"
    d.mkdir()
    (d / "demo.json").write_text("{}")  # an earlier demo (written before manifests) ...
    (d / "trials.csv").write_text("number\n")
    (d / "notes.txt").write_text("mine")  # ... beside the user's own files
    (d / "myrun").mkdir()
    (d / "myrun" / "a.txt").write_text("mine too")
    run_demo(d, trials=2)
    assert calls == [d] and not (d / "trials.csv").exists()
    assert (d / "notes.txt").read_text() == "mine" and (d / "myrun" / "a.txt").read_text() == "mine too"
    (d / "pareto.png").unlink(missing_ok=True)
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "trials.csv").write_text("my table")  # the user's, under an output name: refused, unchanged
    with pytest.raises(GrowsearchError, match=r"did not write \(trials.csv\)"):
        run_demo(tmp_path / "e", trials=2)
    assert (tmp_path / "e" / "trials.csv").read_text() == "my table"


def test_reading_a_study_never_writes_the_file(tmp_path: Path) -> None:
    import sqlite3

    from growsearch.cli.commands import main

    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes (t TEXT)")
    con.commit()
    con.close()
    empty = tmp_path / "empty.db"
    empty.touch()
    for db in (other, empty):
        before = db.read_bytes()
        assert main(["export", "--storage", f"sqlite:///{db}", "--study", "sp", "-o", str(tmp_path / "out")]) == 2
        assert db.read_bytes() == before and not (tmp_path / "out").exists()
    assert (
        main(
            [
                "export",
                "--storage",
                f"sqlite:///{tmp_path}/typo/study.db",
                "--study",
                "sp",
                "-o",
                str(tmp_path / "b.json"),
            ]
        )
        == 2
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "other.db"]


def test_export_replaces_a_schedule_file_only_with_overwrite_and_never_a_users_file(tmp_path: Path) -> None:
    from growsearch.search.best import _check_schedule_file
    from growsearch.search.judge import SearchError

    mine = tmp_path / "best.json"
    mine.write_text('{"my": "notes"}')
    for overwrite in (False, True):
        with pytest.raises(SearchError):
            _check_schedule_file(mine, overwrite)
    assert mine.read_text() == '{"my": "notes"}'


def test_two_commands_released_together_on_one_folder_never_both_proceed(npz_data: str, tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    sched = tmp_path / "s.json"
    sched.write_text(
        json.dumps(
            {
                "dataset": npz_data,
                "stages": [
                    {"classes": 2, "arch": "vgg11@0.125", "epochs": 3},
                    {"classes": 4, "arch": "vgg11@0.125", "epochs": 3},
                ],
            }
        )
    )
    go = tmp_path / "go"
    code = (
        "import os, sys, time\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.005)\n"
        "from growsearch.cli.commands import main\n"
        f"sys.exit(main(['run', {str(sched)!r}, '--out', {str(tmp_path / 'o')!r}, '--quiet']))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(3)  # both started and waiting (importing takes a while)
    go.touch()
    outs = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in outs) == [0, 2], outs
    err = next(e for rc, e in outs if rc == 2)
    assert len(err.strip().splitlines()) == 1 and (
        "in use by another growsearch command" in err or "already holds result.json" in err
    )
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    assert len(result["stages"]) == 2 and sorted(owned(tmp_path / "o")) == [
        "curve.png",
        "result.json",
        "stage1.pt",
        "stage2.pt",
    ]


def test_sigterm_releases_the_folder(npz_data: str, tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    sched = tmp_path / "s.json"
    sched.write_text(
        json.dumps({"dataset": npz_data, "stages": [{"classes": 4, "arch": "vgg11@0.125", "epochs": 400}]})
    )
    out = tmp_path / "o"
    p = subprocess.Popen(
        growsearch_argv("run", str(sched), "--out", str(out), "--quiet"),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not lock_path(out).exists() and time.time() < deadline:
        time.sleep(0.1)
    assert lock_path(out).exists()
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 143
    assert "interrupted" in p.stderr.read()
    assert not [q.name for q in tmp_path.iterdir() if q.name.startswith(".")]  # no lock or holder left beside --out


def test_json_and_yaml_read_a_bom_alike(tmp_path: Path) -> None:
    from growsearch._io import read_document

    for name, text in (("a.json", '{"k": 1}'), ("a.yaml", "k: 1\n")):
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + text.encode())
        assert read_document(tmp_path / name, ValueError) == {"k": 1}


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    from growsearch._io import read_document

    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(12)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nclass_order: *m\n")
    with pytest.raises(ValueError, match="YAML aliases"):
        read_document(bomb, ValueError)
