"""Shared fixtures: tiny datasets written to disk in each source's real layout."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest


# Ray keeps the first session's auth mode for the life of a process (a later session with another
# mode cannot start actors): every Ray a test starts, in this process or a subprocess, uses this one.
os.environ["RAY_AUTH_MODE"] = "disabled"


def _images(n: int, classes: int, size: int, chans: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 NHWC images whose mean brightness encodes the class, so a net can learn them."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    base = (y[:, None, None, None] + 0.5) * (200 / classes)
    x = np.clip(base + rng.normal(0, 20, (n, size, size, chans)), 0, 255).astype(np.uint8)
    return x, y


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoded-dataset caches go to a temporary folder, never the user's ~/.cache."""
    monkeypatch.setenv("GROWSEARCH_CACHE", str(tmp_path_factory.getbasetemp() / "growsearch-cache"))


@pytest.fixture
def npz_data(tmp_path: Path) -> str:
    """``npz:PATH`` with 4 classes of 32x32 RGB, 48 train and 24 test images."""
    xtr, ytr = _images(48, 4, 32, 3, 0)
    xte, yte = _images(24, 4, 32, 3, 1)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return f"npz:{path}"


def write_imagefolder(root: Path, classes: int = 3, per_class: int = 4, size: int = 32, test_dir: str = "test") -> None:
    from PIL import Image

    for split, seed in (("train", 0), (test_dir, 1)):
        x, y = _images(classes * per_class, classes, size, 3, seed)
        for i, (img, label) in enumerate(zip(x, y)):
            d = root / split / f"class_{label}"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(d / f"{i}.png")


def write_tinyimagenet(root: Path, classes: int = 3, per_class: int = 3, size: int = 64) -> None:
    from PIL import Image

    wnids = [f"n0{i:07d}" for i in range(classes)]
    (root / "wnids.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("\n".join(wnids))
    x, y = _images(classes * per_class, classes, size, 3, 0)
    for i, (img, label) in enumerate(zip(x, y)):
        d = root / "train" / wnids[label] / "images"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{wnids[label]}_{i}.JPEG")
    x, y = _images(classes * 2, classes, size, 3, 1)
    (root / "val" / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (img, label) in enumerate(zip(x, y)):
        Image.fromarray(img).save(root / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{wnids[label]}\t0\t0\t{size}\t{size}")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


def write_cifar(root: Path, hundred: bool) -> int:
    """torchvision's pickled CIFAR layout (a few images); returns the class count."""
    classes = 100 if hundred else 10
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    key = "fine_labels" if hundred else "labels"
    files = [("train", 0), ("test", 1)] if hundred else [(f"data_batch_{i}", i) for i in range(1, 6)] + [("test_batch", 9)]
    for name, seed in files:
        x, y = _images(classes * 2 if name != "test_batch" else classes, classes, 32, 3, seed)
        data = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, key: y.tolist()}, f)
    meta_name, meta_key = ("meta", "fine_label_names") if hundred else ("batches.meta", "label_names")
    with open(folder / meta_name, "wb") as f:
        pickle.dump({meta_key: [f"c{i}" for i in range(classes)]}, f)
    return classes


# --- processes a test started, found by PID (never by name across the machine) --------------


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from Linux's /proc): what a test started, nothing else.

    Collect them before killing ``pid``: orphans are re-parented and no longer found here.
    """
    import os

    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_tree(pid: int, pids: list[int] | None = None) -> None:
    """SIGKILL ``pid`` and ``pids`` (default: its descendants now), ignoring those already gone."""
    import os
    import signal

    for p in [pid, *(descendants(pid) if pids is None else pids)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
