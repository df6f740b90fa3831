from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from growsearch.data.dataset import DataError, create_dataset, list_sources
from growsearch.data.loader import BatchLoader
from growsearch.data.split import class_order, subset, with_validation
from helpers import write_cifar, write_imagefolder, write_tinyimagenet


@pytest.fixture(scope="module")
def digits():
    return create_dataset("digits")


def test_digits_is_the_shipped_default(digits) -> None:
    assert digits.num_classes == 10
    assert digits.x_train.dtype == torch.uint8 and digits.x_train.shape[1:] == (1, 32, 32)
    assert len(digits.x_train) + len(digits.x_test) == 1797  # all of scikit-learn's digits
    assert digits.flip is False  # mirrored digits are not digits


def test_class_order_is_a_seeded_permutation() -> None:
    assert class_order(10, 0) == class_order(10, 0)
    assert sorted(class_order(10, 3)) == list(range(10))
    assert class_order(10, 0) != class_order(10, 1)


def _keys(ds, split: str) -> set[int]:
    return set(getattr(ds, f"idx_{split}").tolist())


def test_subsets_are_nested_for_train_and_test(digits) -> None:
    order = class_order(10, 0)
    subs = [subset(digits, order[:k]) for k in (2, 5, 7, 10)]
    for small, big in zip(subs, subs[1:]):
        for split in ("train", "test"):
            assert _keys(small, split) < _keys(big, split)
    assert _keys(subs[-1], "train") == _keys(digits, "train")


def test_stage_test_set_holds_only_its_classes(digits) -> None:
    order = class_order(10, 0)
    d = subset(digits, order[:5])
    assert set(d.y_test.tolist()) == set(range(5)) == set(d.y_train.tolist())
    from sklearn.datasets import load_digits

    original = torch.as_tensor(load_digits().target)[d.idx_test]  # each test sample's label in the raw source
    assert set(original.tolist()) == set(order[:5])
    assert torch.equal(torch.tensor(order)[d.y_test], original)  # label j means class order[j]


def test_no_sample_is_in_both_train_and_test(digits) -> None:
    train, test = _keys(digits, "train"), _keys(digits, "test")
    assert not train & test
    assert train | test == set(range(1797))  # every digit is used, once
    order = class_order(10, 0)
    for k in (2, 5, 7, 10):
        d = subset(digits, order[:k])
        assert not _keys(d, "train") & _keys(d, "test")


@pytest.mark.parametrize("source", sorted(set(list_sources()) - {"digits"}))
def test_every_source_loads_from_its_on_disk_layout(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if source == "npz":
        x = np.random.default_rng(0).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
        np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(12) % 3, x_test=x[:6], y_test=np.arange(6) % 3)
        name, classes, size = f"npz:{tmp_path / 'd.npz'}", 3, 32
    elif source == "imagefolder":
        write_imagefolder(tmp_path / "img", classes=3, test_dir="val")
        name, classes, size = f"imagefolder:{tmp_path / 'img'}", 3, 32
    elif source == "tinyimagenet":
        write_tinyimagenet(tmp_path / "tin", classes=3)
        name, classes, size = f"tinyimagenet:{tmp_path / 'tin'}", 3, 64
    else:
        import torchvision

        # The fixture is a few fake images, not the official archives whose md5 torchvision checks.
        for cls in (torchvision.datasets.CIFAR10, torchvision.datasets.CIFAR100):
            monkeypatch.setattr(cls, "_check_integrity", lambda self: True)
        monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
        classes = write_cifar(tmp_path, hundred=source == "cifar100")
        name, size = f"{source}:{tmp_path}", 32
    ds = create_dataset(name)
    assert ds.num_classes == classes
    names = {  # what a checkpoint calls each output row: the source's own names
        "npz": ["0", "1", "2"],
        "imagefolder": ["class_0", "class_1", "class_2"],
        "tinyimagenet": [f"n0{i:07d}" for i in range(3)],
    }.get(source, [f"c{i}" for i in range(classes)])
    assert list(ds.class_names) == names
    assert ds.x_train.dtype == torch.uint8 and ds.x_train.shape[1:] == (3, size, size)
    assert ds.x_test.shape[1:] == ds.x_train.shape[1:]
    assert set(ds.y_train.tolist()) == set(range(classes))
    assert ds.y_test.max() < classes


@pytest.mark.parametrize(
    "name,msg",
    [
        ("cifar10:{tmp}", "cifar-10-batches-py"),
        ("cifar100:{tmp}", "cifar-100-python"),
        ("imagefolder:{tmp}", "train/<class>"),
        ("tinyimagenet:{tmp}", "val_annotations.txt"),
        ("npz:{tmp}/none.npz", "no such file"),
        ("mnist", "unknown dataset"),
    ],
)
def test_missing_dataset_names_the_expected_layout(name: str, msg: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=msg):
        create_dataset(name.format(tmp=tmp_path))


def test_npz_with_out_of_range_floats_is_rejected(tmp_path: Path) -> None:
    x = np.full((4, 8, 8), 3.0, dtype=np.float32)
    np.savez(tmp_path / "f.npz", x_train=x, y_train=np.arange(4) % 2, x_test=x, y_test=np.arange(4) % 2)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        create_dataset(f"npz:{tmp_path / 'f.npz'}")


def test_loader_normalises_augments_and_is_seeded(digits) -> None:
    kw = dict(batch_size=100, mean=digits.mean, std=digits.std, train=True, flip=True, seed=3)
    a = [x for x, _ in BatchLoader(digits.x_train, digits.y_train, **kw)]
    b = [x for x, _ in BatchLoader(digits.x_train, digits.y_train, **kw)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert sum(len(x) for x in a) == len(digits.x_train)
    assert a[0].shape == (100, 1, 32, 32) and a[0].dtype == torch.float32
    plain = next(
        iter(
            BatchLoader(
                digits.x_test,
                digits.y_test,
                batch_size=len(digits.x_test),
                mean=digits.mean,
                std=digits.std,
                train=False,
            )
        )
    )[0]
    assert abs(float(plain.mean())) < 0.1 and abs(float(plain.std()) - 1) < 0.1
    c = next(iter(BatchLoader(digits.x_train, digits.y_train, **{**kw, "seed": 4})))[0]
    assert not torch.equal(a[0], c)


def test_random_crop_is_a_shift_of_the_padded_image() -> None:
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    loader = BatchLoader(
        x, torch.zeros(64, dtype=torch.int64), batch_size=64, mean=(0.0,), std=(1 / 255,), train=True, flip=False, pad=1
    )
    xb, _ = next(iter(loader))
    centre = x[0, 0].float()
    shifted = [xb[i, 0] for i in range(64)]
    assert any(torch.equal(s, centre) for s in shifted)
    assert any(not torch.equal(s, centre) for s in shifted)
    for s in shifted:  # every crop's interior is a shifted copy of the original
        assert s[1:3, 1:3].flatten().tolist()[0] in centre.flatten().tolist()


@pytest.mark.parametrize(
    "pad,flip,channels_last", [(4, True, True), (4, True, False), (7, False, False), (0, True, True)]
)
def test_augmentation_is_a_reflect_padded_crop_and_a_flip(pad: int, flip: bool, channels_last: bool) -> None:
    """The loader gathers crops and flips from the uint8 batch; every batch equals padding the
    normalised images by reflection, cropping at the drawn offsets and flipping the drawn ones,
    value for value, with the same random draws."""
    import torch.nn.functional as F

    x = torch.randint(0, 256, (150, 3, 12, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    kw = dict(batch_size=64, mean=mean, std=std, train=True, flip=flip, pad=pad, seed=3, channels_last=channels_last)
    got = list(BatchLoader(x, torch.arange(150), **kw))
    g = torch.Generator().manual_seed(3)
    order = torch.randperm(150, generator=g)
    m, s = torch.tensor(mean).view(1, -1, 1, 1) * 255, torch.tensor(std).view(1, -1, 1, 1) * 255
    for i, (xb, yb) in enumerate(got):
        idx = order[i * 64 : (i + 1) * 64]
        want, n = (x[idx].float() - m) / s, len(idx)
        if pad:
            dy, dx = (torch.randint(0, 2 * pad + 1, (n,), generator=g) for _ in range(2))
            padded = F.pad(want, (pad,) * 4, mode="reflect")
            want = torch.stack([padded[j, :, dy[j] : dy[j] + 12, dx[j] : dx[j] + 10] for j in range(n)])
        if flip:
            mask = torch.rand(n, generator=g) < 0.5
            want = torch.where(mask.view(-1, 1, 1, 1), want.flip(-1), want)
        assert torch.equal(yb, idx) and torch.equal(xb, want)
        assert xb.is_contiguous(memory_format=torch.channels_last) or not channels_last


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_batches_never_write_to_the_dataset(dtype: torch.dtype) -> None:
    """Batches are normalised in place: always on a copy, whatever the images' type."""
    x = (torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 255).to(dtype)
    before = x.clone()
    for train, channels_last in ((False, False), (False, True), (True, False)):
        for xb, _ in BatchLoader(
            x,
            torch.arange(10),
            batch_size=4,
            mean=(0.5,) * 3,
            std=(0.25,) * 3,
            train=train,
            channels_last=channels_last,
        ):
            assert xb.dtype == torch.float32
    assert torch.equal(x, before)


def test_evaluation_batches_of_large_images_are_bounded_in_bytes() -> None:
    """An evaluation batch holds at most EVAL_BATCH_BYTES of float input (its size changes no
    number); a training batch is the size asked for."""
    from growsearch.data.loader import EVAL_BATCH_BYTES

    x, y = torch.zeros(300, 3, 224, 224, dtype=torch.uint8), torch.zeros(300, dtype=torch.int64)
    kw = dict(batch_size=512, mean=(0.5,) * 3, std=(0.25,) * 3)
    sizes = [len(yb) for _, yb in BatchLoader(x, y, train=False, **kw)]
    assert sum(sizes) == 300 and max(sizes) == EVAL_BATCH_BYTES // (4 * 3 * 224 * 224) == 111
    assert [len(yb) for _, yb in BatchLoader(x[:40, :, :32, :32], y[:40], train=False, **kw)] == [40]
    assert [len(yb) for _, yb in BatchLoader(x, y, train=True, **{**kw, "batch_size": 200})] == [200, 100]


def test_loader_resizes_batches_to_the_stage_resolution(digits) -> None:
    from growsearch.data.loader import BatchLoader

    full = BatchLoader(digits.x_test, digits.y_test, batch_size=64, mean=digits.mean, std=digits.std, train=False)
    low = BatchLoader(
        digits.x_test, digits.y_test, batch_size=64, mean=digits.mean, std=digits.std, train=False, resolution=16
    )
    (xf, yf), (xl, yl) = next(iter(full)), next(iter(low))
    assert xf.shape[-1] == 32 and xl.shape[-1] == 16 and torch.equal(yf, yl)
    # antialiased: closer to the 2x2 average than subsampling every other pixel, image means kept
    box = torch.nn.functional.avg_pool2d(xf, 2)
    assert (xl - box).abs().mean() < 0.5 * (xf[..., ::2, ::2] - box).abs().mean()
    torch.testing.assert_close(xl.mean((2, 3)), xf.mean((2, 3)), rtol=0, atol=0.05)


# --- the validation split -----------------------------------------------------------------


def test_validation_split_is_stratified_disjoint_and_seeded(digits) -> None:
    d = with_validation(digits, 0.1, seed=0)
    # carved from train only: train + val = the source's train set, test untouched
    assert len(d.y_train) + len(d.y_val) == len(digits.y_train) and torch.equal(d.y_test, digits.y_test)
    ids = lambda t: set(t.tolist())  # noqa: E731
    assert not ids(d.idx_val) & ids(d.idx_train) and not ids(d.idx_val) & ids(d.idx_test)
    assert ids(d.idx_val) | ids(d.idx_train) == ids(digits.idx_train)
    # stratified: each class gives round(10%) of its training samples
    for c in range(10):
        n_c = int((digits.y_train == c).sum())
        assert int((d.y_val == c).sum()) == round(0.1 * n_c)
    # the images moved with their labels
    pos = {int(i): k for k, i in enumerate(digits.idx_train)}
    for j in range(0, len(d.y_val), 17):
        k = pos[int(d.idx_val[j])]
        assert torch.equal(d.x_val[j], digits.x_train[k]) and int(d.y_val[j]) == int(digits.y_train[k])
    # the same seed gives the same split; another seed another one
    assert (
        torch.equal(with_validation(digits, 0.1, seed=0).idx_val, d.idx_val)
        and d.val_id == with_validation(digits, 0.1, 0).val_id
    )
    other = with_validation(digits, 0.1, seed=1)
    assert not torch.equal(other.idx_val, d.idx_val) and other.val_id != d.val_id


def test_validation_subsets_are_nested_across_stages(digits) -> None:
    d = with_validation(digits, 0.1, seed=0)
    order = class_order(10, 0)
    prev: set[int] = set()
    for k in (3, 5, 7, 10):
        s = subset(d, order[:k])
        got = set(s.idx_val.tolist())
        assert prev <= got  # nested: every earlier stage's validation sample is still there
        assert set(s.y_val.tolist()) == set(range(k))
        assert not got & set(s.idx_train.tolist())
        prev = got
    assert prev == set(d.idx_val.tolist())


def test_zero_fraction_selects_on_the_test_set(digits) -> None:
    d = with_validation(digits, 0, seed=0)
    assert torch.equal(d.y_val, digits.y_test) and len(d.y_train) == len(digits.y_train) and d.val_fraction == 0


@pytest.mark.parametrize("fraction", [-0.1, 0.5, 0.9, "0.1", True])
def test_validation_fraction_outside_its_range_is_an_error(digits, fraction) -> None:
    with pytest.raises(DataError, match=r"val_fraction must be in \[0, 0.5\)"):
        with_validation(digits, fraction)


def test_a_class_too_small_for_a_validation_sample_is_an_error(tmp_path: Path) -> None:
    y = np.array([0] * 20 + [1] * 3)
    x = np.zeros((len(y), 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:4], y_test=np.array([0, 1, 0, 1]))
    ds = create_dataset(f"npz:{tmp_path / 'd.npz'}")
    with pytest.raises(DataError, match="class 1 has 3 training sample"):
        with_validation(ds, 0.1)
    assert len(with_validation(ds, 0.34).y_val) == round(20 * 0.34) + 1


# --- imagefolder archives and the decode cache --------------------------------------------------


def _tar(src: Path, dst: Path, top: str = "cifar10") -> Path:
    import tarfile

    with tarfile.open(dst, "w:gz") as t:
        t.add(src, arcname=top)  # the layout under one top folder, as the shipped CIFAR-10 archive has it
    return dst


def test_an_archive_loads_like_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWSEARCH_CACHE", str(tmp_path / "cache"))
    write_imagefolder(tmp_path / "folder", classes=3, per_class=4)
    a = create_dataset(f"imagefolder:{tmp_path / 'folder'}")
    b = create_dataset(f"imagefolder:{_tar(tmp_path / 'folder', tmp_path / 'data.tar.gz')}")
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train) and torch.equal(a.x_test, b.x_test)
    assert a.num_classes == b.num_classes == 3 and len(b.y_train) == 12


def test_a_second_load_is_served_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import growsearch.data.sources as sources  # where the shipped sources decode images

    monkeypatch.setenv("GROWSEARCH_CACHE", str(tmp_path / "cache"))
    write_imagefolder(tmp_path / "folder")
    first = create_dataset(f"imagefolder:{tmp_path / 'folder'}")
    assert len(list((tmp_path / "cache").glob("imagefolder-*"))) == 1

    def no_decoding(*a, **k):
        raise AssertionError("decoded again although the cache holds this source")

    monkeypatch.setattr(sources, "_decode_into", no_decoding)
    again = create_dataset(f"imagefolder:{tmp_path / 'folder'}")
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.y_test, again.y_test)


def test_a_changed_source_is_never_served_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from PIL import Image

    monkeypatch.setenv("GROWSEARCH_CACHE", str(tmp_path / "cache"))
    write_imagefolder(tmp_path / "folder")
    before = create_dataset(f"imagefolder:{tmp_path / 'folder'}")
    img = sorted((tmp_path / "folder" / "train" / "class_0").iterdir())[0]
    Image.fromarray(np.full((32, 32, 3), 7, dtype=np.uint8)).save(img)
    os.utime(img, ns=(1, 1))  # even with an old timestamp: the size changed
    after = create_dataset(f"imagefolder:{tmp_path / 'folder'}")
    assert not torch.equal(before.x_train, after.x_train) and int(after.x_train[0].float().mean()) == 7
    # an archive is keyed by its bytes
    arch = _tar(tmp_path / "folder", tmp_path / "d.tar.gz")
    x1 = create_dataset(f"imagefolder:{arch}").x_train
    Image.fromarray(np.full((32, 32, 3), 200, dtype=np.uint8)).save(img)
    _tar(tmp_path / "folder", arch)
    assert int(create_dataset(f"imagefolder:{arch}").x_train[0].float().mean()) == 200 and not torch.equal(
        x1, create_dataset(f"imagefolder:{arch}").x_train
    )


def test_a_corrupt_cache_file_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWSEARCH_CACHE", str(tmp_path / "cache"))
    write_imagefolder(tmp_path / "folder")
    good = create_dataset(
        f"imagefolder:{tmp_path / 'folder'}"
    ).x_train.clone()  # a copy: the dataset maps the file truncated below
    (cached,) = (tmp_path / "cache").glob("imagefolder-*")
    images = cached / "x_train.npy"
    images.write_bytes(images.read_bytes()[:100])  # a truncated file
    again = create_dataset(f"imagefolder:{tmp_path / 'folder'}")
    assert torch.equal(good, again.x_train)
    assert np.load(images).shape[0] == len(good)  # rewritten whole


def test_bad_archives_and_images_are_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWSEARCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(DataError, match="not a readable .tar/.tar.gz archive"):
        create_dataset(f"imagefolder:{tmp_path / 'junk.tar.gz'}")
    write_imagefolder(tmp_path / "folder")
    (tmp_path / "folder" / "train" / "class_1" / "broken.jpg").write_text("not a jpeg")
    with pytest.raises(DataError, match="broken.jpg is not a readable image"):
        create_dataset(f"imagefolder:{_tar(tmp_path / 'folder', tmp_path / 'b.tar.gz')}")
    with pytest.raises(DataError, match="no such folder"):
        create_dataset(f"imagefolder:{tmp_path / 'absent'}")


def test_train_per_class_is_a_stratified_seeded_subset(digits) -> None:
    sub = create_dataset("digits?train_per_class=50")
    assert sub.name == "digits?train_per_class=50"
    assert [int((sub.y_train == c).sum()) for c in range(10)] == [50] * 10
    assert set(sub.idx_train.tolist()) <= set(digits.idx_train.tolist()) and torch.equal(sub.y_test, digits.y_test)
    assert torch.equal(create_dataset("digits?train_per_class=50").idx_train, sub.idx_train)  # seeded
    for bad, msg in (
        ("digits?train_per_class=0", "whole number"),
        ("digits?train_per_class=999", "fewer than"),
        ("digits?per=3", "unknown dataset option"),
    ):
        with pytest.raises(DataError, match=msg):
            create_dataset(bad)


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    from PIL import Image

    for split in ("train", "test"):
        for c, level in ((0, 8000), (1, 60000)):  # both far above 255: clipping would make them equal and white
            d = tmp_path / "f" / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((8, 8), level, dtype=np.uint16)).save(d / f"{i}.png")
    ds = create_dataset(f"imagefolder:{tmp_path / 'f'}")
    dark, bright = (int(ds.x_train[ds.y_train == c].float().mean()) for c in (0, 1))
    assert dark == round(8000 / 65535 * 255) and bright == round(60000 / 65535 * 255)


def test_a_dataset_needs_two_classes_and_shapes_name_the_real_axis() -> None:
    from growsearch.data.dataset import DataError, from_arrays

    x = np.zeros((6, 8, 8, 3), np.uint8)
    with pytest.raises(DataError, match="needs at least two"):
        from_arrays("one", x, np.zeros(6, int), x[:2], np.zeros(2, int))
    with pytest.raises(DataError, match="4 channels .RGBA"):
        from_arrays(
            "rgba", np.zeros((6, 8, 8, 4), np.uint8), np.arange(6) % 2, np.zeros((2, 8, 8, 4), np.uint8), np.arange(2)
        )
    with pytest.raises(
        DataError, match=r"shape \(6, 16, 16, 2\) have no channel axis: neither axis 1 \(16\) nor the last \(2\)"
    ):
        from_arrays(
            "two",
            np.zeros((6, 16, 16, 2), np.uint8),
            np.arange(6) % 2,
            np.zeros((2, 16, 16, 2), np.uint8),
            np.arange(2),
        )
    tiny = from_arrays(
        "dots", np.zeros((6, 1, 1, 3), np.uint8), np.arange(6) % 2, np.zeros((2, 1, 1, 3), np.uint8), np.arange(2)
    )
    assert tiny.in_chans == 3 and tiny.image_size == 1  # 1-pixel RGB images, not 3-pixel-wide grey ones


def test_a_decompression_bomb_is_one_line_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from growsearch.data.dataset import DataError

    write_imagefolder(tmp_path / "f", classes=2, per_class=2)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 32x32 images are then 10x over the limit
    with pytest.raises(DataError, match="decompression-bomb limit"):
        create_dataset(f"imagefolder:{tmp_path / 'f'}")


def test_a_corrupt_or_foreign_decode_cache_is_rebuilt(tmp_path: Path) -> None:
    from growsearch.data.sources import cache_dir

    write_imagefolder(tmp_path / "f", classes=2, per_class=3)
    before = set(cache_dir().glob("imagefolder-*"))
    good = create_dataset(f"imagefolder:{tmp_path / 'f'}")
    good = replace(good, x_train=good.x_train.clone())  # a copy: the dataset maps the file rewritten below
    (cached,) = set(cache_dir().glob("imagefolder-*")) - before
    np.save(cached / "x_train.npy", np.zeros((1, 3, 2, 2), np.uint8))  # a readable array, but not what a build writes
    again = create_dataset(f"imagefolder:{tmp_path / 'f'}")
    assert torch.equal(again.x_train, good.x_train) and torch.equal(again.y_test, good.y_test)


def test_a_crop_padding_as_large_as_the_image_is_refused() -> None:
    """Reflection needs a pad below the image's side (as F.pad's reflect mode): one line, not
    indices that wrap around."""
    x, y = torch.zeros(4, 1, 4, 6, dtype=torch.uint8), torch.arange(4)
    with pytest.raises(DataError, match="padding of 4 px needs images larger than"):
        BatchLoader(x, y, batch_size=2, mean=(0.0,), std=(1.0,), train=True, pad=4)
    assert len(list(BatchLoader(x, y, batch_size=2, mean=(0.0,), std=(1.0,), train=True, pad=3))) == 2
    assert (
        len(list(BatchLoader(x, y, batch_size=2, mean=(0.0,), std=(1.0,), train=False, pad=4))) == 2
    )  # evaluation pads nothing


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1e400"])
def test_a_malformed_ram_budget_is_refused_for_every_source(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROWSEARCH_MAX_RAM", value)
    with pytest.raises(DataError, match="GROWSEARCH_MAX_RAM"):
        create_dataset("digits")


@pytest.mark.parametrize("member", ["train/a/../../../ESCAPED2.png", "/abs/train/a/x.png"])
def test_an_archive_member_outside_its_folder_is_refused_by_name(member: str, tmp_path: Path) -> None:
    import io
    import tarfile

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    path = tmp_path / "d.tar"
    with tarfile.open(path, "w") as tar:
        for name in ("train/a/1.png", "test/a/1.png", member):
            info = tarfile.TarInfo(name)
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
    with pytest.raises(DataError, match="points outside the archive"):
        create_dataset(f"imagefolder:{path}")
