"""What several test files share: tiny datasets in each source's real layout, tiny spaces,
the real command as a subprocess, processes found by PID, and registries restored after a test.

Test files import these (``from helpers import ...``); no test file imports another.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np

from growsearch.model.arch import ArchSpec
from growsearch.model.net2net import widen
from growsearch.model.ops import Op

REPO = Path(__file__).resolve().parents[1]  # the checkout: examples/, search_spaces/, pyproject.toml


def images(n: int, classes: int, size: int, chans: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 NHWC images whose mean brightness encodes the class, so a net can learn them."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    base = (y[:, None, None, None] + 0.5) * (200 / classes)
    x = np.clip(base + rng.normal(0, 20, (n, size, size, chans)), 0, 255).astype(np.uint8)
    return x, y


def write_imagefolder(root: Path, classes: int = 3, per_class: int = 4, size: int = 32, test_dir: str = "test") -> None:
    from PIL import Image

    for split, seed in (("train", 0), (test_dir, 1)):
        x, y = images(classes * per_class, classes, size, 3, seed)
        for i, (img, label) in enumerate(zip(x, y)):
            d = root / split / f"class_{label}"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(d / f"{i}.png")


def write_tinyimagenet(root: Path, classes: int = 3, per_class: int = 3, size: int = 64) -> None:
    from PIL import Image

    wnids = [f"n0{i:07d}" for i in range(classes)]
    (root / "wnids.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("\n".join(wnids))
    x, y = images(classes * per_class, classes, size, 3, 0)
    for i, (img, label) in enumerate(zip(x, y)):
        d = root / "train" / wnids[label] / "images"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{wnids[label]}_{i}.JPEG")
    x, y = images(classes * 2, classes, size, 3, 1)
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
    files = (
        [("train", 0), ("test", 1)] if hundred else [(f"data_batch_{i}", i) for i in range(1, 6)] + [("test_batch", 9)]
    )
    for name, seed in files:
        x, y = images(classes * 2 if name != "test_batch" else classes, classes, 32, 3, seed)
        data = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, key: y.tolist()}, f)
    meta_name, meta_key = ("meta", "fine_label_names") if hundred else ("batches.meta", "label_names")
    with open(folder / meta_name, "wb") as f:
        pickle.dump({meta_key: [f"c{i}" for i in range(classes)]}, f)
    return classes


# --- tiny spaces and the real command --------------------------------------------------------

TINY_SPACE = """dataset: npz:{data}
final_arch: vgg13@0.125
archs: [vgg11@0.125, vgg13@0.125]
stages: [2, 2]
split: {split}
epochs: {epochs}
tolerance: 0.5
resolutions: [16, 32]
trials: 4
baseline_epochs: 2
baseline_lrs: [0.05]
seed: 0
"""


def tiny_space(root: Path, split: str = "[0.3, 0.7]", epochs: str = "[1, 3]", *, shuffle_test: bool = False) -> Path:
    rng = np.random.default_rng(0)
    y = np.arange(72) % 4
    x = np.clip((y[:, None, None, None] + 0.5) * 50 + rng.normal(0, 20, (72, 32, 32, 3)), 0, 255).astype(np.uint8)
    y_test = np.random.default_rng(1).permutation(y[48:]) if shuffle_test else y[48:]
    np.savez(root / "tiny.npz", x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y_test)
    space = root / "space.yaml"
    space.write_text(TINY_SPACE.format(data=root / "tiny.npz", split=split, epochs=epochs))
    return space


def growsearch_argv(*args: str) -> list[str]:
    """The command line of ``growsearch ARGS`` in this interpreter (the venv need not be on PATH),
    for a test that starts it itself (to signal or watch it)."""
    return [sys.executable, "-m", "growsearch.cli", *args]


def cli(*args: str, timeout: float = 1800, **kw) -> subprocess.CompletedProcess:
    """``growsearch ARGS`` as a user runs it, in a subprocess (the limit only catches a hang)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(growsearch_argv(*args), capture_output=True, text=True, timeout=timeout, env=env, **kw)


def console_script(name: str) -> str:
    """A console script of this interpreter's environment (the venv need not be activated)."""
    return str(Path(sys.executable).parent / name)


# --- what a network's MACs are, counted by hand -------------------------------------------------


def hand_macs_vgg(spec: ArchSpec, size: int) -> int:
    total, cin = 0, spec.in_chans
    for b, blk in enumerate(spec.widths):
        hw = (size // 2**b) ** 2
        for w in blk:
            total += hw * w * cin * 9
            cin = w
    return total + cin * spec.num_classes


def hand_macs_resnet(spec: ArchSpec, size: int) -> int:
    c0 = spec.widths[0][0]
    total, cin = size * size * c0 * spec.in_chans * 9, c0
    for s, blk in enumerate(spec.widths):
        hw = (size // 2**s) ** 2
        for b, w in enumerate(blk):
            total += hw * w * cin * 9 + hw * w * w * 9
            if b == 0 and s > 0:
                total += hw * w * cin  # 1x1 projection shortcut
            cin = w
    return total + cin * spec.num_classes


# --- what a study's trials carry ----------------------------------------------------------------


def constraints_of(t) -> list[float]:
    """A finished trial's constraints as its sampler sees them: Trial.set_constraint's values
    (Optuna ≥ 5), else the ``constraint`` user attribute constraints_func reads."""
    named = getattr(t, "constraints", None)
    return list(named.values()) if isinstance(named, dict) and named else list(t.user_attrs.get("constraint", []))


# --- an op written outside the package ---------------------------------------------------------


class DoubleLastBlock(Op):
    """Doubles the last block's width at every stage after the first (Net2WiderNet keeps the function)."""

    name = "double last block"

    def plan(self, spec, stage):
        return replace(spec, widths=spec.widths[:-1] + (tuple(2 * w for w in spec.widths[-1]),))

    def apply(self, model, step):
        return widen(model, step.after.widths, generator=step.run.generator)


# --- registries a test changes ----------------------------------------------------------------


@contextmanager
def restored_registries() -> Iterator[None]:
    """The family, source, op and cost registries (and the record of what was registered from
    outside growsearch) as they were before the block: what a test registers reaches no other."""
    from growsearch import _extensions
    from growsearch.data import dataset
    from growsearch.model import arch, ops
    from growsearch.search import judge

    registries = (arch._FAMILIES, dataset._SOURCES, judge._COSTS)
    saved = [dict(r) for r in registries], list(ops._TRANSITION), list(_extensions._MADE)
    try:
        yield
    finally:
        for registry, before in zip(registries, saved[0]):
            registry.clear()
            registry.update(before)
        ops._TRANSITION[:] = saved[1]
        _extensions._MADE[:] = saved[2]


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


def listening(pids: list[int]) -> set[int]:
    """The TCP ports in LISTEN state that any of ``pids`` holds (Linux's /proc: the sockets in
    /proc/net/tcp and tcp6, matched to each process's file descriptors by inode)."""
    import os

    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A":  # TCP_LISTEN
                inodes[cols[9]] = int(cols[1].rsplit(":", 1)[1], 16)
    ports = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                ports.add(inodes[link[8:-1]])
    return ports
