"""The shipped dataset sources: digits, CIFAR-10/100, ImageFolder folders and archives,
Tiny ImageNet and npz files, and the on-disk cache of decoded images.

Each is registered by name (see :func:`growsearch.data.dataset.register_source`); nothing is
downloaded. Decoded image folders and archives are cached under :func:`cache_dir`, keyed by
their content, so a changed source is never served stale.

Example:
    >>> from growsearch.data.dataset import create_dataset
    >>> create_dataset("digits").image_size
    32
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from growsearch.data.dataset import _finish, DataError, Dataset, register_source

__all__ = ["cache_dir"]


def _root(arg: str | None) -> Path:
    return Path(arg or os.environ.get("GROWSEARCH_DATA", "data")).expanduser()


@register_source("digits")
def _digits(arg: str | None) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()  # ships inside scikit-learn, nothing downloaded
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0
    # 32x32 because VGG's five max-pools need at least that; bilinear upsampling of 8x8 digits.
    x = F.interpolate(x, size=32, mode="bilinear", align_corners=False).clamp(0, 1)
    # A fixed split (random_state=0, stratified), so every schedule seed sees the same test set.
    itr, ite = train_test_split(np.arange(len(x)), test_size=0.2, random_state=0, stratify=d.target)
    return _finish("digits", x[itr], d.target[itr], x[ite], d.target[ite], flip=False, num_classes=10, idx=(itr, ite))


def _cifar(arg: str | None, cls_name: str, folder: str) -> Dataset:
    import torchvision

    root = _root(arg)
    cls = getattr(torchvision.datasets, cls_name)
    try:
        tr, te = cls(str(root), train=True, download=False), cls(str(root), train=False, download=False)
    except RuntimeError:
        raise DataError(
            f"{cls_name.lower()} not found under {root}: expected {root / folder}/ in torchvision's format "
            f"(pass '{cls_name.lower()}:ROOT' or set GROWSEARCH_DATA; growsearch never downloads)"
        ) from None
    return _finish(cls_name.lower(), tr.data, tr.targets, te.data, te.targets, num_classes=len(tr.classes), class_names=tr.classes)


@register_source("cifar10")
def _cifar10(arg: str | None) -> Dataset:
    return _cifar(arg, "CIFAR10", "cifar-10-batches-py")


@register_source("cifar100")
def _cifar100(arg: str | None) -> Dataset:
    return _cifar(arg, "CIFAR100", "cifar-100-python")


def _load_images(paths: list, name: str, size: tuple[int, int] | None, read=None) -> np.ndarray:
    """Decode images (paths, or keys that ``read`` turns into bytes) to one uint8 NHWC array."""
    import io

    from PIL import Image, UnidentifiedImageError

    out = []
    for p in paths:
        try:
            im = Image.open(io.BytesIO(read(p)) if read is not None else p)
            im.load()
        except Image.DecompressionBombError:
            raise DataError(
                f"{name}: {p} has more pixels than Pillow's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS}): shrink it, or remove it"
            ) from None
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise DataError(f"{name}: {p} is not a readable image ({type(e).__name__}): remove or replace it") from None
        with im:
            im = _rgb(im)
            if size is None:
                size = im.size
            if im.size != size:  # one size for the whole set: the first image's
                im = im.resize(size, Image.BILINEAR)
            out.append(np.asarray(im))
    if not out:
        raise DataError(f"{name}: no images found")
    return np.stack(out)


def _rgb(im):
    """``im`` as 8-bit RGB, its values scaled, not clipped: a 16-bit image (Pillow's "I;16" and
    "I" modes, e.g. 16-bit PNGs) would otherwise come out all white where it is brighter than 255
    of 65535. Palette, grey, alpha and CMYK images go through Pillow's own conversion."""
    from PIL import Image

    if im.mode.startswith("I") or im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max(initial=0) <= 65535 else float(2**32 - 1)
        if im.mode == "F":
            top = 1.0 if a.max(initial=0) <= 1.0 else top
        im = Image.fromarray(np.clip(np.round(a / top * 255), 0, 255).astype(np.uint8), mode="L")
    return im.convert("RGB")


_IMG_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


_ARCHIVES = (".tar", ".tar.gz", ".tgz")


_CACHE_VERSION = 1  # bump when decoding changes, so no cache made by an older decoder is served


def _folder_items(d: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    paths, labels = [], []
    for i, c in enumerate(classes):
        files = sorted(p for p in (d / c).rglob("*") if p.suffix.lower() in _IMG_EXT) if (d / c).is_dir() else []
        paths += files
        labels += [i] * len(files)
    return paths, labels


def cache_dir() -> Path:
    """Where decoded datasets are kept: ``$GROWSEARCH_CACHE``, else ``~/.cache/growsearch``."""
    return Path(os.environ.get("GROWSEARCH_CACHE") or Path.home() / ".cache" / "growsearch").expanduser()


def _cached(key: dict, name: str, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``build()``'s arrays, decoded once and kept under :func:`cache_dir`, keyed by ``key`` (the
    source's content). A changed source has another key, so it is never served stale; a cache
    file that cannot be read is rebuilt."""
    import hashlib
    import json

    from growsearch._io import atomic_path

    digest = hashlib.sha256(json.dumps({**key, "v": _CACHE_VERSION}, sort_keys=True).encode()).hexdigest()[:24]
    path = cache_dir() / f"{name}-{digest}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            if all(len(arrays[f"x_{s}"]) == len(arrays[f"y_{s}"]) > 0 for s in ("train", "test")):
                return arrays
        except Exception:  # noqa: BLE001 - an unreadable cache is rebuilt, never trusted
            pass
        path.unlink(missing_ok=True)  # unreadable, or not the arrays a build writes: rebuilt from the source
    arrays = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)
    except OSError:
        pass  # a read-only cache folder costs speed, not correctness
    return arrays


def _archive_images(path: Path) -> dict[str, bytes]:
    """Every image file of a .tar/.tar.gz archive, by its path inside it, read in one sequential
    pass (random access into a .tar.gz decompresses it again from the start)."""
    import tarfile

    try:
        with tarfile.open(path, "r:*") as tar:
            return {
                m.name.lstrip("./"): tar.extractfile(m).read()
                for m in tar if m.isfile() and Path(m.name).suffix.lower() in _IMG_EXT
            }
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"imagefolder:{path}: not a readable .tar/.tar.gz archive ({type(e).__name__})") from None


def _layout(files: list[str], where: str) -> tuple[str, str]:
    """(prefix, test split name) of an ImageFolder layout among relative ``files``: train/ and
    test/ (or val/) at the top, or under one top folder (as archives often have)."""
    tops = {f.split("/", 1)[0] for f in files}
    for prefix in ["", *(f"{t}/" for t in sorted(tops))]:
        splits = {f[len(prefix):].split("/", 1)[0] for f in files if f.startswith(prefix) and f.count("/") >= prefix.count("/") + 2}
        test = next((t for t in ("test", "val") if t in splits), None)
        if "train" in splits and test:
            return prefix, test
    raise DataError(f"imagefolder:{where}: expected train/<class>/* and test/<class>/* (or val/), at the top or under one folder")


def _imagefolder_arrays(files: list[str], prefix: str, test: str, where: str, read) -> dict[str, np.ndarray]:
    def items(split: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for f in files:
            rest = f[len(prefix):]
            parts = rest.split("/")
            if f.startswith(prefix) and len(parts) >= 3 and parts[0] == split and Path(f).suffix.lower() in _IMG_EXT:
                out.setdefault(parts[1], []).append(f)
        return out

    tr, te = items("train"), items(test)
    classes = sorted(tr)
    unknown = sorted(set(te) - set(classes))
    if unknown:
        raise DataError(f"imagefolder:{where}: test classes {unknown} have no train folder")
    ptr = [f for c in classes for f in sorted(tr[c])]
    pte = [f for c in classes for f in sorted(te.get(c, []))]
    ytr = np.array([i for i, c in enumerate(classes) for _ in tr[c]], dtype=np.int64)
    yte = np.array([i for i, c in enumerate(classes) for _ in te.get(c, [])], dtype=np.int64)
    xtr = _load_images(ptr, f"imagefolder:{where}/train", None, read)
    xte = _load_images(pte, f"imagefolder:{where}/{test}", (xtr.shape[2], xtr.shape[1]), read)
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte, "classes": np.array(classes)}


@register_source("imagefolder")
def _imagefolder(arg: str | None) -> Dataset:
    """A folder, or a .tar/.tar.gz archive, in the ImageFolder layout; decoded once, then cached.

    The cache key is the source's content: for a folder every image's path, size and
    modification time; for an archive the hash of its bytes.
    """
    import hashlib

    if not arg:
        raise DataError("imagefolder needs a path: 'imagefolder:PATH' with PATH/train/<class>/* and PATH/test/<class>/*")
    root = Path(arg).expanduser()
    if root.is_file() and root.name.lower().endswith(_ARCHIVES):
        h = hashlib.sha256()
        with open(root, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        key = {"archive": h.hexdigest()}

        def build() -> dict[str, np.ndarray]:
            data = _archive_images(root)
            files = sorted(data)
            prefix, test = _layout(files, str(root))
            return _imagefolder_arrays(files, prefix, test, str(root), data.__getitem__)
    elif root.is_dir():
        files = sorted(str(p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _IMG_EXT)
        prefix, test = _layout(files, str(root))
        key = {"folder": str(root.resolve()), "files": [(f, (st := (root / f).stat()).st_size, st.st_mtime_ns) for f in files]}

        def build() -> dict[str, np.ndarray]:
            return _imagefolder_arrays(files, prefix, test, str(root), lambda f: (root / f).read_bytes())
    else:
        raise DataError(f"imagefolder:{root}: no such folder or .tar/.tar.gz archive (expected train/<class>/* and test/<class>/*)")
    a = _cached(key, "imagefolder", build)
    return _finish(
        f"imagefolder:{root}", a["x_train"], a["y_train"], a["x_test"], a["y_test"], num_classes=len(a["classes"]), class_names=a["classes"].tolist(),
    )


@register_source("tinyimagenet")
def _tinyimagenet(arg: str | None) -> Dataset:
    root = _root(arg)
    ann = root / "val" / "val_annotations.txt"
    if not (root / "train").is_dir() or not ann.is_file():
        raise DataError(
            f"tinyimagenet:{root}: expected {root}/train/<wnid>/images/*.JPEG and {ann} (the official tiny-imagenet-200 layout)"
        )
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    ptr, ytr = _folder_items(root / "train", classes)
    index = {c: i for i, c in enumerate(classes)}
    pte, yte = [], []
    for line in ann.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1] in index:
            pte.append(root / "val" / "images" / parts[0])
            yte.append(index[parts[1]])
    xtr = _load_images(ptr, f"tinyimagenet:{root}/train", None)
    xte = _load_images(pte, f"tinyimagenet:{root}/val", (xtr.shape[2], xtr.shape[1]))
    return _finish("tinyimagenet", xtr, ytr, xte, yte, num_classes=len(classes), class_names=classes)


@register_source("npz")
def _npz(arg: str | None) -> Dataset:
    if not arg:
        raise DataError("npz needs a path: 'npz:PATH' to a file with x_train, y_train, x_test, y_test")
    path = Path(arg).expanduser()
    if not path.is_file():
        raise DataError(f"npz:{path}: no such file (expected arrays x_train, y_train, x_test, y_test)")
    import zipfile

    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in keys if k in z}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise DataError(f"npz:{path}: not a readable .npz ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'truncated?'}): re-save it with numpy.savez") from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise DataError(f"npz:{path}: missing arrays {missing} (expected x_train, y_train, x_test, y_test)")
    return _finish(f"npz:{path}", *(arrays[k] for k in keys))
