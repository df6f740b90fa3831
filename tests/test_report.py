"""Published numbers are generated from committed data: the README's results table and the family
pages regenerate byte for byte from the JSON under benchmarks/results/."""

from __future__ import annotations

import runpy
import sys

import pytest

from helpers import REPO


def _check(module: str, *args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """``python -m MODULE --check ARGS`` in this process (torch and matplotlib already imported: a
    subprocess spent most of its time importing them); its exit code."""
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", [module, *args, "--check"])
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_the_readme_results_table_is_what_the_data_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _check("benchmarks.report", monkeypatch=monkeypatch) == 0, (
        "README.md's results table differs from the data: run python -m benchmarks.report"
    )


@pytest.mark.parametrize("setting", ["cpu", "gpu", "tin"])
def test_each_family_page_is_what_its_json_gives(setting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _check("benchmarks.family", "--setting", setting, monkeypatch=monkeypatch) == 0, (
        f"the {setting} family page differs from its JSON: run python -m benchmarks.family --setting {setting} --report-only"
    )


@pytest.mark.parametrize("module", ["benchmarks.family_search", "benchmarks.tinyimagenet"])
def test_each_generated_page_is_what_its_json_gives(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _check(module, monkeypatch=monkeypatch) == 0, (
        f"{module}'s page differs from its JSON: run python -m {module} --report-only"
    )


def test_committed_results_name_their_datasets_relative_to_the_repository() -> None:
    """A clone re-judges and resumes committed runs by their dataset's name: an absolute path
    (``imagefolder:/home/someone/...``) names one machine's folders, never the clone's."""
    import re

    absolute = re.compile(r"\b(?:imagefolder|tinyimagenet|npz|cifar10):/")
    found = [
        str(p.relative_to(REPO))
        for p in sorted((REPO / "benchmarks" / "results").rglob("*.json"))
        if absolute.search(p.read_text())
    ]
    assert not found, f"{len(found)} committed result(s) name an absolute dataset path, e.g. {found[:3]}"
