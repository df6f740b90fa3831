"""The documentation site builds, strictly: a broken link, page or anchor fails it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")


def _build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(root / "mkdocs.yml"), "-d", str(site)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin", "HOME": str(site.parent)},
    )


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    proc = _build(REPO, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "index.html").read_text().count("growsearch.search.optuna.Objective") > 0


def test_a_link_to_a_missing_anchor_fails_the_build(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    (root / "examples" / "ray_cluster").mkdir(parents=True)
    shutil.copy(REPO / "examples" / "ray_cluster" / "README.md", root / "examples" / "ray_cluster" / "README.md")
    shutil.copytree(REPO / "growsearch", root / "growsearch")
    assert _build(root, tmp_path / "ok").returncode == 0  # the copy builds as it is
    with (root / "docs" / "index.md").open("a") as f:
        f.write("\nSee [the verdict](measuring.md#no-such-section).\n")
    proc = _build(root, tmp_path / "broken")
    assert proc.returncode != 0 and "no-such-section" in proc.stderr
