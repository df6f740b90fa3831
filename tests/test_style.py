"""One formatter, no debates: ruff's lint and format checks pass on the whole repository."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO

pytest.importorskip("ruff")


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff_passes(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"ruff {' '.join(args)}:\n{proc.stdout[-3000:]}"
