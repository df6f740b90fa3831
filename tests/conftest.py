"""Shared fixtures: a private decode cache, tiny datasets, a tiny space with its frontier.
Shared helper functions live in ``helpers.py``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from growsearch.train.baseline import run_frontier
from helpers import images

# Ray keeps the first session's auth mode for the life of a process (a later session with another
# mode cannot start actors): every Ray a test starts, in this process or a subprocess, uses this one.
os.environ["RAY_AUTH_MODE"] = "disabled"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoded-dataset caches go to a temporary folder, never the user's ~/.cache."""
    monkeypatch.setenv("GROWSEARCH_CACHE", str(tmp_path_factory.getbasetemp() / "growsearch-cache"))


@pytest.fixture
def npz_data(tmp_path: Path) -> str:
    """``npz:PATH`` with 4 classes of 32x32 RGB, 48 train and 24 test images."""
    xtr, ytr = images(48, 4, 32, 3, 0)
    xte, yte = images(24, 4, 32, 3, 1)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return f"npz:{path}"


SPACE = """dataset: npz:{data}
final_arch: vgg13@0.125
archs: [vgg11@0.125, vgg13@0.125]
stages: [2, 2]
split: [0.3, 0.7]
epochs: [1, 2]
tolerance: 0.5
seed: 0
"""


@pytest.fixture(scope="session")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("optuna")
    rng = np.random.default_rng(0)
    y = np.arange(72) % 4
    x = np.clip((y[:, None, None, None] + 0.5) * 50 + rng.normal(0, 20, (72, 32, 32, 3)), 0, 255).astype(np.uint8)
    np.savez(root / "tiny.npz", x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y[48:])
    space = root / "space.yaml"
    space.write_text(SPACE.format(data=root / "tiny.npz"))
    run_frontier(f"npz:{root / 'tiny.npz'}", ["vgg13@0.125"], [1, 2], out_dir=root / "frontier", progress=False)
    return space, root / "frontier"
