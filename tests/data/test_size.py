"""Real photo folders at a chosen size, in bounded memory: ``?size=N`` and the memory-mapped decode cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from growsearch.data.dataset import DataError, create_dataset

# Run in a fresh interpreter: the resident memory a load adds, from the kernel's own peak over
# the interpreter's resident memory once torch and growsearch are imported. The peak is VmHWM:
# getrusage's ru_maxrss survives exec, so a child forked from a large pytest process starts with
# its parent's size as its "peak".
_MEASURE = """
import json, sys
import torch
from growsearch.data.dataset import create_dataset
def status(key):
    return int(next(l for l in open("/proc/self/status") if l.startswith(key + ":")).split()[1]) * 1024
base = status("VmRSS")
ds = create_dataset(sys.argv[1])
print(json.dumps({"added": status("VmHWM") - base, "bytes": ds.x_train.numel() + ds.x_test.numel(), "shape": list(ds.x_train.shape)}))
"""


def _photos(root: Path, per_split: dict[str, int], side: int = 224) -> None:
    """JPEG "photos" of 10 classes at about ``side`` px, wide and tall (aspect 0.6 to 1.4)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    bases = [np.clip(rng.normal(25 * c, 60, (int(side * 1.4), int(side * 1.4), 3)), 0, 255).astype(np.uint8) for c in range(10)]
    for split, n in per_split.items():
        for i in range(n):
            c = i % 10
            w, h = side, int(side * (0.6 + 0.8 * ((i * 7) % 11) / 10))
            w, h = (w, h) if i % 2 else (h, w)
            d = root / split / f"class_{c}"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(bases[c][:h, :w]).save(d / f"{i}.jpg", quality=80)


def _measure(name: str, cache: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, name], capture_output=True, text=True, timeout=600, env={"GROWSEARCH_CACHE": str(cache), "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_a_photo_folder_loads_at_a_chosen_size_within_1_5x_its_bytes_decoded_or_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _photos(tmp_path / "photos", {"train": 3000, "test": 500})
    name = f"imagefolder:{tmp_path / 'photos'}?size=64"
    first = _measure(name, tmp_path / "cache")  # decoded straight into the cache's files
    again = _measure(name, tmp_path / "cache")  # memory-mapped from the cache
    assert first["shape"] == again["shape"] == [3000, 3, 64, 64]
    for m in (first, again):
        assert m["added"] <= 1.5 * m["bytes"], f"{m['added'] / 1e6:.1f} MB resident for {m['bytes'] / 1e6:.1f} MB of images"
    # the same arrays as a load that cannot write a cache (decoded into memory)
    mapped = create_dataset(name)  # this process's own cache (conftest), filled now
    (tmp_path / "afile").write_text("a cache folder cannot be made under a file")
    monkeypatch.setenv("GROWSEARCH_CACHE", str(tmp_path / "afile" / "cache"))
    plain = create_dataset(name)
    assert (tmp_path / "afile").read_text().startswith("a cache folder")
    assert torch.equal(mapped.x_train, plain.x_train) and torch.equal(mapped.x_test, plain.x_test) and torch.equal(mapped.y_train, plain.y_train)
    assert mapped.mean == pytest.approx(plain.mean) and mapped.std == pytest.approx(plain.std)


def test_size_fits_any_aspect_ratio_and_mode_and_is_its_own_cache_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    monkeypatch.setenv("GROWSEARCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    shapes_modes = [((40, 90), "RGB"), ((90, 40), "L"), ((33, 33), "RGBA"), ((50, 70), "P"), ((64, 48), "I;16")]
    for split in ("train", "test"):
        for c in range(2):
            d = tmp_path / "f" / split / f"c{c}"
            d.mkdir(parents=True)
            for i, ((h, w), mode) in enumerate(shapes_modes):
                a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                im = Image.fromarray(a).convert(mode) if mode != "I;16" else Image.fromarray((a[..., 0].astype(np.uint16) * 257))
                im.save(d / f"{i}.png")
    ds = create_dataset(f"imagefolder:{tmp_path / 'f'}?size=24")
    assert tuple(ds.x_train.shape) == (10, 3, 24, 24) and tuple(ds.x_test.shape) == (10, 3, 24, 24)
    assert ds.name == f"imagefolder:{tmp_path / 'f'}?size=24" and ds.image_size == 24
    assert len(list((tmp_path / "cache").iterdir())) == 1
    other = create_dataset(f"imagefolder:{tmp_path / 'f'}?size=16")
    assert other.image_size == 16 and len(list((tmp_path / "cache").iterdir())) == 2  # a changed option is another entry
    # a centre crop of the shorter side: a wide image's middle, resized
    wide = np.zeros((40, 120, 3), np.uint8)
    wide[:, 40:80] = 255  # a white middle third between black sides
    for split in ("train", "test"):
        for c in range(2):
            d = tmp_path / "w" / split / f"c{c}"
            d.mkdir(parents=True)
            Image.fromarray(wide).save(d / "0.png")
    w = create_dataset(f"imagefolder:{tmp_path / 'w'}?size=20")
    assert int(w.x_train[0].float().mean()) >= 250  # only the white middle survives the crop
    # array sources are resized after loading (the shorter side, then a centre crop)
    d = create_dataset("digits?size=48&train_per_class=5")
    assert d.image_size == 48 and len(d.y_train) == 50 and d.name == "digits?size=48&train_per_class=5"


@pytest.mark.parametrize("option,msg", [
    ("size=0", "size must be a whole number ≥ 1"), ("size=big", "size must be a whole number ≥ 1"),
    ("size=64x32", "give size=N"), ("size=99999", "at most 4096"), ("size=32&size=64", "given twice"),
])
def test_bad_sizes_are_one_line_errors(option: str, msg: str) -> None:
    with pytest.raises(DataError, match=msg):
        create_dataset(f"digits?{option}")


def test_a_run_on_the_mapped_cache_reads_rows_and_trains_exactly_as_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Splits of a memory-mapped dataset are rows of the map, not copies; a run on them gathers
    the same batches, costs the same M and reaches the same numbers as on the same images in memory."""
    from growsearch.data.dataset import Rows
    from growsearch.data.split import stage_data, with_validation
    from growsearch.plan.schedule import Schedule, Stage
    from growsearch.train.run import run_schedule
    from helpers import write_imagefolder

    write_imagefolder(tmp_path / "f", classes=4, per_class=12)
    name = f"imagefolder:{tmp_path / 'f'}"
    mapped = create_dataset(name)
    (tmp_path / "afile").write_text("no cache under a file")
    monkeypatch.setenv("GROWSEARCH_CACHE", str(tmp_path / "afile" / "cache"))
    plain = create_dataset(name)
    assert mapped.mapped and not plain.mapped
    split = with_validation(mapped, 0.25)
    stage = stage_data(split, [2, 0], 0.5, seed=1)
    assert isinstance(split.x_train, Rows) and isinstance(split.x_val, Rows) and isinstance(stage.x_train, Rows)
    assert split.x_train.base is mapped.x_train  # rows of the one map: nothing copied
    ref = stage_data(with_validation(plain, 0.25), [2, 0], 0.5, seed=1)
    assert torch.equal(stage.x_train.materialize(), ref.x_train) and torch.equal(stage.y_train, ref.y_train)
    sched = Schedule(name, [Stage(2, "vgg11@0.125", 2), Stage(4, "vgg13@0.125", 1)], seed=0)
    a, b = run_schedule(sched, dataset=mapped, progress=False), run_schedule(sched, dataset=plain, progress=False)

    def numbers(r) -> list:
        return [(s.M, s.samples, s.val_acc, s.test_acc, [h["val_acc"] for h in s.history]) for s in r.stages]

    assert numbers(a) == numbers(b) and a.M == b.M
