"""Published numbers are generated from committed data: the README's results table and the family
pages regenerate byte for byte from the JSON under benchmarks/results/."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO


def test_the_readme_results_table_is_what_the_data_gives() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.report", "--check"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, (
        "README.md's results table differs from the data: run python -m benchmarks.report\n" + proc.stderr[-2000:]
    )


@pytest.mark.parametrize("setting", ["cpu", "gpu", "tin"])
def test_each_family_page_is_what_its_json_gives(setting: str) -> None:
    cmd = [sys.executable, "-m", "benchmarks.family", "--setting", setting, "--check"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (
        f"the {setting} family page differs from its JSON: run python -m benchmarks.family --setting {setting} --report-only"
    )


@pytest.mark.parametrize("module", ["benchmarks.family_search", "benchmarks.tinyimagenet"])
def test_each_generated_page_is_what_its_json_gives(module: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", module, "--check"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{module}'s page differs from its JSON: run python -m {module} --report-only"


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
