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
    bases = [
        np.clip(rng.normal(25 * c, 60, (int(side * 1.4), int(side * 1.4), 3)), 0, 255).astype(np.uint8)
        for c in range(10)
    ]
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
        [sys.executable, "-c", _MEASURE, name],
        capture_output=True,
        text=True,
        timeout=600,
        env={"GROWSEARCH_CACHE": str(cache), "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_a_photo_folder_loads_at_a_chosen_size_within_1_5x_its_bytes_decoded_or_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _photos(tmp_path / "photos", {"train": 3000, "test": 500})
    name = f"imagefolder:{tmp_path / 'photos'}?size=64"
    first = _measure(name, tmp_path / "cache")  # decoded straight into the cache's files
    again = _measure(name, tmp_path / "cache")  # memory-mapped from the cache
    assert first["shape"] == again["shape"] == [3000, 3, 64, 64]
    for m in (first, again):
        assert m["added"] <= 1.5 * m["bytes"], (
            f"{m['added'] / 1e6:.1f} MB resident for {m['bytes'] / 1e6:.1f} MB of images"
        )
    # the same arrays as a load that cannot write a cache (decoded into memory)
    mapped = create_dataset(name)  # this process's own cache (conftest), filled now
    (tmp_path / "afile").write_text("a cache folder cannot be made under a file")
    monkeypatch.setenv("GROWSEARCH_CACHE", str(tmp_path / "afile" / "cache"))
    plain = create_dataset(name)
    assert (tmp_path / "afile").read_text().startswith("a cache folder")
    assert (
        torch.equal(mapped.x_train, plain.x_train)
        and torch.equal(mapped.x_test, plain.x_test)
        and torch.equal(mapped.y_train, plain.y_train)
    )
    assert mapped.mean == pytest.approx(plain.mean) and mapped.std == pytest.approx(plain.std)


def test_size_fits_any_aspect_ratio_and_mode_and_is_its_own_cache_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
                im = (
                    Image.fromarray(a).convert(mode)
                    if mode != "I;16"
                    else Image.fromarray((a[..., 0].astype(np.uint16) * 257))
                )
                im.save(d / f"{i}.png")
    ds = create_dataset(f"imagefolder:{tmp_path / 'f'}?size=24")
    assert tuple(ds.x_train.shape) == (10, 3, 24, 24) and tuple(ds.x_test.shape) == (10, 3, 24, 24)
    assert ds.name == f"imagefolder:{tmp_path / 'f'}?size=24" and ds.image_size == 24
    assert len(list((tmp_path / "cache").iterdir())) == 1
    other = create_dataset(f"imagefolder:{tmp_path / 'f'}?size=16")
    assert (
        other.image_size == 16 and len(list((tmp_path / "cache").iterdir())) == 2
    )  # a changed option is another entry
    # without ?size: square at the first training image's shorter side (c0/0.png is 40 x 90)
    plain = create_dataset(f"imagefolder:{tmp_path / 'f'}")
    assert tuple(plain.x_train.shape[1:]) == (3, 40, 40) and tuple(plain.x_test.shape[1:]) == (3, 40, 40)
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


@pytest.mark.parametrize(
    "option,msg",
    [
        ("size=0", "size must be a whole number ≥ 1"),
        ("size=big", "size must be a whole number ≥ 1"),
        ("size=64x0", "must be N or WxH"),
        ("size=axb", "must be N or WxH"),
        ("size=5000x10", "must be N or WxH"),
        ("size=64x", "must be N or WxH"),
        ("size=99999", "at most 4096"),
        ("size=32&size=64", "given twice"),
    ],
)
def test_bad_sizes_are_one_line_errors(option: str, msg: str) -> None:
    with pytest.raises(DataError, match=msg):
        create_dataset(f"digits?{option}")


def test_a_run_on_the_mapped_cache_reads_rows_and_trains_exactly_as_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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


def _mapped_split(tmp_path: Path):
    from growsearch.data.split import with_validation
    from helpers import write_imagefolder

    write_imagefolder(tmp_path / "f", classes=4, per_class=15)
    return with_validation(create_dataset(f"imagefolder:{tmp_path / 'f'}"), 0.2)


def test_a_split_larger_than_the_memory_budget_is_read_in_shards_every_image_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from growsearch.data.dataset import Rows
    from growsearch.data.loader import BatchLoader

    ds = _mapped_split(tmp_path)  # 48 training images of 3x32x32 = 3,072 bytes
    kw = dict(batch_size=8, mean=ds.mean, std=ds.std, seed=3, pad=0, flip=False)
    copy = ds.x_train.materialize()
    # within the budget: exactly the batches of the same images held in memory
    same = [(x, y) for x, y in BatchLoader(ds.x_train, ds.y_train, train=True, **kw)]
    held = [(x, y) for x, y in BatchLoader(copy, ds.y_train, train=True, **kw)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(same, held, strict=True))
    # a budget of 12 images: shards of 12, every image once per epoch, as many steps
    monkeypatch.setenv("GROWSEARCH_MAX_RAM", str(12 * 3072))
    released = []
    loader = BatchLoader(ds.x_train, ds.y_train, train=True, **kw)
    monkeypatch.setattr(Rows, "release", lambda self, pos: released.append(sorted(self.index[pos].tolist())))
    assert loader.shard == 12
    for epoch in range(2):
        released.clear()
        seen = torch.cat([y for _, y in loader])
        assert len(seen) == 48 and sorted(seen.tolist()) == sorted(ds.y_train.tolist()) and len(loader) == 6
        assert sorted(r for shard in released for r in shard) == sorted(
            ds.x_train.index.tolist()
        )  # each image's pages handed back once
        assert all(len(s) == 12 for s in released[:-1])
    monkeypatch.setenv("GROWSEARCH_MAX_RAM", "3K")
    with pytest.raises(DataError, match="less than one batch"):
        BatchLoader(ds.x_train, ds.y_train, train=True, **kw)
    monkeypatch.setenv("GROWSEARCH_MAX_RAM", "lots")
    with pytest.raises(DataError, match="GROWSEARCH_MAX_RAM='lots': give bytes"):
        BatchLoader(ds.x_train, ds.y_train, train=True, **kw)


def test_released_pages_read_back_the_same_images_and_memory_not_a_files_is_never_released(tmp_path: Path) -> None:
    from growsearch.data.dataset import Rows

    ds = _mapped_split(tmp_path)
    before = ds.x_train.materialize().clone()
    ds.x_train.release(torch.arange(len(ds.x_train)))  # every page of the training rows dropped
    assert torch.equal(ds.x_train.materialize(), before)  # and read again from the file
    held = torch.arange(4 * 3 * 64 * 64, dtype=torch.int64).to(torch.uint8).view(4, 3, 64, 64)
    kept = held.clone()
    Rows(held, torch.arange(4)).release(torch.arange(4))  # plain memory: MADV_DONTNEED would zero it
    assert torch.equal(held, kept)


def test_a_run_beyond_the_memory_budget_costs_the_same_M(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from growsearch.plan.schedule import Schedule, Stage, TrainConfig
    from growsearch.train.run import run_schedule
    from helpers import write_imagefolder

    write_imagefolder(tmp_path / "f", classes=4, per_class=15)
    name = f"imagefolder:{tmp_path / 'f'}"
    sched = Schedule(
        name, [Stage(2, "vgg11@0.125", 2), Stage(4, "vgg13@0.125", 1)], seed=0, train=TrainConfig(batch_size=8)
    )
    free = run_schedule(sched, dataset=create_dataset(name), progress=False)
    monkeypatch.setenv("GROWSEARCH_MAX_RAM", str(20 * 3072))  # a third of the training images
    from growsearch.data.dataset import Rows

    real, calls = Rows.release, []
    monkeypatch.setattr(Rows, "release", lambda self, pos: calls.append(len(pos)) or real(self, pos))
    tight = run_schedule(sched, dataset=create_dataset(name), progress=False)
    assert calls  # it did read in shards, handing pages back
    assert [(s.M, s.samples, s.epochs) for s in tight.stages] == [(s.M, s.samples, s.epochs) for s in free.stages]
    assert all(0 <= s.val_acc <= 1 for s in tight.stages)
    # a budget below one training batch: one line, before anything is written
    monkeypatch.setenv("GROWSEARCH_MAX_RAM", "10K")
    with pytest.raises(DataError, match="less than one batch of 8 images"):
        run_schedule(sched, dataset=create_dataset(name), out_dir=tmp_path / "refused", progress=False)
    assert not (tmp_path / "refused").exists()


def test_non_square_arrays_train_at_their_own_shape_and_size_n_squares_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 32, 48, 3), dtype=np.uint8)
    np.savez(tmp_path / "wide.npz", x_train=x[:32], y_train=np.arange(32) % 4, x_test=x[32:], y_test=np.arange(8) % 4)
    wide = create_dataset(f"npz:{tmp_path / 'wide.npz'}")
    assert wide.image_shape == (32, 48) and wide.image_size is None
    ds = create_dataset(f"npz:{tmp_path / 'wide.npz'}?size=32")
    assert (
        tuple(ds.x_train.shape[1:]) == (3, 32, 32) and tuple(ds.x_test.shape[1:]) == (3, 32, 32) and ds.image_size == 32
    )


def test_size_w_x_h_decodes_photos_as_pillow_fits_them_and_keys_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """?size=WxH: every photo (wide or tall, any mode) scaled to cover W x H and centre-cropped, the
    same pixels as Pillow's ImageOps.fit of the same file; the cache is keyed by the size, so the
    same folder at WxH, at HxW and at N are three caches, and a second load maps the first's."""
    from PIL import Image, ImageOps

    monkeypatch.setenv("GROWSEARCH_CACHE", str(tmp_path / "cache"))
    _photos(tmp_path / "p", {"train": 20, "test": 10}, side=60)
    name = f"imagefolder:{tmp_path / 'p'}?size=40x24"
    ds = create_dataset(name)
    assert ds.image_shape == (24, 40) and ds.image_size is None and ds.name == name
    files = sorted((tmp_path / "p" / "train" / "class_0").iterdir())
    with Image.open(files[0]) as im:
        im.draft("RGB", (40, 24))
        ref = np.asarray(ImageOps.fit(im.convert("RGB"), (40, 24), method=Image.BILINEAR)).transpose(2, 0, 1)
    assert np.array_equal(np.asarray(ds.x_train[int(np.flatnonzero(np.asarray(ds.y_train) == 0)[0])]), ref)
    tall, square = (
        create_dataset(f"imagefolder:{tmp_path / 'p'}?size=24x40"),
        create_dataset(f"imagefolder:{tmp_path / 'p'}?size=24"),
    )
    assert tall.image_shape == (40, 24) and square.image_shape == (24, 24)
    assert len(list((tmp_path / "cache").rglob("x_train.npy"))) == 3
    again = create_dataset(name)
    assert np.array_equal(np.asarray(again.x_train), np.asarray(ds.x_train)) and again.mapped
    # array sources are fitted after loading; WxH with W = H is the side N
    d = create_dataset("digits?size=40x24&train_per_class=5")
    assert d.image_shape == (24, 40) and len(d.y_train) == 50
    assert create_dataset("digits?size=20x20").image_size == 20


def test_a_run_on_non_square_images_prices_macs_at_their_shape_and_plans_what_it_trains(tmp_path: Path) -> None:
    """Planned M = trained M on 40x24 images, through growth, pruning and a shrink phase; the MACs
    are the network's at 24 x 40 (not at a square side); a resolution stage is refused in one line."""
    from growsearch.model.arch import build_model
    from growsearch.model.cost import macs_per_sample
    from growsearch.plan.planner import plan_schedule, planned_M
    from growsearch.plan.schedule import Schedule, ScheduleError, Shrink, Stage
    from growsearch.train.run import run_schedule

    data = "digits?size=40x24&train_per_class=20"
    sched = Schedule(
        data,
        [Stage(5, "vgg11@0.125", 1), Stage(10, "vgg13@0.125", 1, prune_ratio=0.25)],
        shrink=Shrink(widths=[0.5], start=0.5, ramp_epochs=0),
    )
    plans = plan_schedule(sched)
    r = run_schedule(sched, out_dir=tmp_path / "run", progress=False)
    assert r.M == planned_M(plans) and [s.resolution for s in r.stages] == [None, None]
    final = build_model(plans[-1].spec)
    assert plans[-1].macs_per_sample == macs_per_sample(final, (1, 24, 40)) != macs_per_sample(final, (1, 32, 32))
    assert r.stages[-1].macs_per_sample == plans[-1].macs_per_sample and r.subnets
    with pytest.raises(ScheduleError, match=r"resolution stages train at a square side.*40x24.*\?size=N"):
        plan_schedule(Schedule(data, [Stage(5, "vgg11@0.125", 1, resolution=16), Stage(10, "vgg13@0.125", 1)]))
