"""The declared dependency floors are the ones .ci/floors installs and tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from helpers import REPO


def _floors_module():
    spec = importlib.util.spec_from_file_location("ci_floors", REPO / ".ci" / "floors.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_dependency_has_a_floor_the_floors_job_pins() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+, as the floors job

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = dict(line.split("==") for line in _floors_module().floors(REPO / "pyproject.toml"))
    wanted = [r for r in project["dependencies"]] + [
        r for rs in project["optional-dependencies"].values() for r in rs if not r.startswith("growsearch[")
    ]
    assert len(pins) == len(wanted)
    assert (
        pins["ray"] == "2.41" and pins["torch"] == "2.4" and pins["numpy"] == "2.0"
    )  # what the floors job last passed on


def test_a_dependency_without_a_floor_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("tomllib")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["torch>=2.4", "numpy"]\n')
    with pytest.raises(SystemExit, match="'numpy' has no testable floor"):
        _floors_module().floors(tmp_path / "pyproject.toml")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\ndependencies = ["ray[tune]>=2.41,<3"]\n[project.optional-dependencies]\nt = ["p[x]", "pytest>=8"]\n'
    )
    assert _floors_module().floors(tmp_path / "pyproject.toml") == ["ray==2.41", "pytest==8"]
