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
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from growsearch._io import printable
from growsearch.data.dataset import DataError, Dataset, _finish, _stats, hw, register_source

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
    return _finish(
        cls_name.lower(), tr.data, tr.targets, te.data, te.targets, num_classes=len(tr.classes), class_names=tr.classes
    )


@register_source("cifar10")
def _cifar10(arg: str | None) -> Dataset:
    return _cifar(arg, "CIFAR10", "cifar-10-batches-py")


@register_source("cifar100")
def _cifar100(arg: str | None) -> Dataset:
    return _cifar(arg, "CIFAR100", "cifar-100-python")


def _open_image(src, where, name: str):
    """An image opened (not yet decoded) by Pillow from ``src`` (a path, or the file's bytes),
    or a one-line error naming the file (``where``)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(src) if isinstance(src, bytes) else src)
    except Image.DecompressionBombError:
        raise DataError(
            f"{name}: {where} has more pixels than Pillow's decompression-bomb limit ({Image.MAX_IMAGE_PIXELS}): shrink it, or remove it"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"{name}: {where} is not a readable image ({type(e).__name__}): remove or replace it") from None


def _decode_into(out: np.ndarray, items, name: str) -> None:
    """Decode ``items`` ((row, where, source): a path, or the file's bytes) straight into their
    rows of ``out``, a preallocated uint8 (N, 3, H, W) array (no list of images to stack: one
    copy, not two). Each image is scaled to cover H x W and centre-cropped (Pillow's
    ``ImageOps.fit``, which copies an image already at H x W unchanged; JPEGs are decoded at a
    reduced scale first when that is enough)."""
    from PIL import Image, ImageOps

    h, w = out.shape[2], out.shape[3]
    for i, where, src in items:
        with _open_image(src, where, name) as im:
            try:
                im.draft(
                    "RGB", (w, h)
                )  # JPEG: decode at the smallest scale still ≥ the size (a no-op for other formats)
                im.load()
            except (OSError, ValueError) as e:
                raise DataError(
                    f"{name}: {where} is not a readable image ({type(e).__name__}): remove or replace it"
                ) from None
            out[i] = np.asarray(ImageOps.fit(_rgb(im), (w, h), method=Image.BILINEAR)).transpose(
                2, 0, 1
            )  # Pillow sizes are (width, height)


def _decode_size(size: int | tuple[int, int] | None, src, where, name: str) -> int | tuple[int, int]:
    """The size a set is decoded at: ``size`` (a side, or (height, width)), else the first
    image's shorter side (images of mixed shapes decode square)."""
    if size is not None:
        return size
    with _open_image(src, where, name) as im:
        return min(im.size)


def _decode_files(alloc, field: str, paths: list, name: str, size: int | tuple[int, int]) -> np.ndarray:
    """One split's image files, decoded at ``size`` into an array from ``alloc`` (a cache file when it can be)."""
    if not paths:
        raise DataError(f"{name}: no images found")
    out = alloc(field, (len(paths), 3, *hw(size)))
    _decode_into(out, ((i, p, p) for i, p in enumerate(paths)), name)
    return out


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


_CACHE_VERSION = (
    3  # bump when decoding changes, so no cache made by an older decoder is served (3: NCHW .npy folders with stats)
)


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


_CACHED = ("x_train", "y_train", "x_test", "y_test", "classes", "stats")


def _cached(key: dict, name: str, build: Callable) -> dict[str, np.ndarray]:
    """``build(alloc)``'s arrays, decoded once and kept under :func:`cache_dir` as a folder of
    ``.npy`` files, keyed by ``key`` (the source's content and decode options). A changed source
    has another key, so it is never served stale; a cache that cannot be read is rebuilt.

    Images are memory-mapped (``mmap_mode="c"``: pages are read as batches touch them and shared
    by every process that maps them, such as a search's trials), so a dataset costs resident
    memory for what a run uses, not for the whole file. ``build`` asks ``alloc(field, shape)``
    for each image array and decodes straight into it: a file of the cache being written, or
    plain memory where the cache folder cannot be written. numpy's ``open_memmap`` does the file
    format; the folder is written under a temporary name and renamed whole, so a cache is
    complete or absent.
    """
    import hashlib
    import json
    import shutil
    import tempfile

    digest = hashlib.sha256(json.dumps({**key, "v": _CACHE_VERSION}, sort_keys=True).encode()).hexdigest()[:24]
    path = cache_dir() / f"{name}-{digest}"
    arrays = _open_cache(path)
    if arrays is not None:
        return arrays
    shutil.rmtree(path, ignore_errors=True)  # unreadable, or not the arrays a build writes: rebuilt from the source
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp: Path | None = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError:
        tmp = None  # a read-only cache folder costs speed, not correctness

    def alloc(field: str, shape: tuple[int, ...]) -> np.ndarray:
        if tmp is None:
            return np.empty(shape, np.uint8)
        return np.lib.format.open_memmap(tmp / f"{field}.npy", mode="w+", dtype=np.uint8, shape=shape)

    try:
        arrays = _with_stats(build(alloc))
        if tmp is None:
            return arrays
        for k in _CACHED:
            a = arrays[k]
            if isinstance(a, np.memmap):
                a.flush()
            else:
                np.save(tmp / f"{k}.npy", a, allow_pickle=False)
        try:
            tmp.rename(path)  # atomic: another process that finished first keeps its own (same key, same arrays)
        except OSError:
            pass
        return _open_cache(path) or arrays
    except OSError:  # the cache could not be written (a full disk): decoded into memory instead
        if tmp is None:
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        return _with_stats(build(lambda field, shape: np.empty(shape, np.uint8)))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _with_stats(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays plus the training images' normalisation (mean and std rows), computed while the
    images are fresh, so that loading from the cache reads none of them."""
    return {**arrays, "stats": np.array(_stats(arrays["x_train"]), dtype=np.float64)}


def _open_cache(path: Path) -> dict[str, np.ndarray] | None:
    """A cache folder's arrays (images memory-mapped), or None when it is absent, incomplete or
    not what a build writes."""
    if not path.is_dir():
        return None
    try:
        a = {
            k: np.load(path / f"{k}.npy", mmap_mode="c" if k.startswith("x_") else None, allow_pickle=False)
            for k in _CACHED
        }
        ok = all(
            a[f"x_{s}"].ndim == 4 and a[f"x_{s}"].dtype == np.uint8 and len(a[f"x_{s}"]) == len(a[f"y_{s}"]) > 0
            for s in ("train", "test")
        )
        ok = ok and a["stats"].shape == (2, a["x_train"].shape[1])
        return a if ok and a["x_train"].shape[1:] == a["x_test"].shape[1:] else None
    except Exception:  # noqa: BLE001 - an unreadable cache is rebuilt, never trusted
        return None


def _archive_members(path: Path):
    """(path inside it, bytes) of every image file of a .tar/.tar.gz archive, in archive order,
    one at a time: a pass reads the archive sequentially (random access into a .tar.gz
    decompresses it again from the start) and keeps no image it has handed out."""
    import tarfile

    try:
        with tarfile.open(path, "r:*") as tar:
            for m in tar:
                if m.isfile() and Path(m.name).suffix.lower() in _IMG_EXT:
                    if (
                        m.name.startswith("/") or ".." in Path(m.name).parts
                    ):  # it would name a file outside its class folder
                        raise DataError(
                            f"imagefolder:{path}: member {printable(m.name)[:120]!r} points outside the archive (an absolute path or '..'): rebuild the archive without it"
                        )
                    yield m.name.lstrip("./"), tar.extractfile(m).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"imagefolder:{path}: not a readable .tar/.tar.gz archive ({type(e).__name__})") from None


def _layout(files: list[str], where: str) -> tuple[str, str]:
    """(prefix, test split name) of an ImageFolder layout among relative ``files``: train/ and
    test/ (or val/) at the top, or under one top folder (as archives often have)."""
    tops = {f.split("/", 1)[0] for f in files}
    for prefix in ["", *(f"{t}/" for t in sorted(tops))]:
        splits = {
            f[len(prefix) :].split("/", 1)[0]
            for f in files
            if f.startswith(prefix) and f.count("/") >= prefix.count("/") + 2
        }
        test = next((t for t in ("test", "val") if t in splits), None)
        if "train" in splits and test:
            return prefix, test
    raise DataError(
        f"imagefolder:{where}: expected train/<class>/* and test/<class>/* (or val/), at the top or under one folder"
    )


def _imagefolder_index(
    files: list[str], prefix: str, test: str, where: str
) -> tuple[list[str], list[str], np.ndarray, np.ndarray, list[str]]:
    """(train files, test files, their labels, the class names) of an ImageFolder layout, each
    split in class order, then file order."""

    def items(split: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for f in files:
            rest = f[len(prefix) :]
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
    if not ptr or not pte:
        raise DataError(f"imagefolder:{where}/{'train' if not ptr else test}: no images found")
    return ptr, pte, ytr, yte, classes


def _folder_arrays(root: Path, files: list[str], alloc, size: int | tuple[int, int] | None) -> dict[str, np.ndarray]:
    prefix, test = _layout(files, str(root))
    ptr, pte, ytr, yte, classes = _imagefolder_index(files, prefix, test, str(root))
    size = _decode_size(size, root / ptr[0], ptr[0], f"imagefolder:{root}/train")
    xtr = _decode_files(alloc, "x_train", [root / f for f in ptr], f"imagefolder:{root}/train", size)
    xte = _decode_files(alloc, "x_test", [root / f for f in pte], f"imagefolder:{root}/{test}", size)
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte, "classes": np.array(classes)}


def _archive_arrays(path: Path, alloc, size: int | tuple[int, int] | None) -> dict[str, np.ndarray]:
    """An archive in two sequential passes: its file names (and, without ``size``, each image's
    shorter side, for the first training image's), then every image decoded straight into its
    row, so no more than one image's bytes are held at a time."""
    name = f"imagefolder:{path}"
    files, sides = [], {}
    for f, data in _archive_members(path):
        files.append(f)
        if size is None:
            sides[f] = _decode_size(None, data, f, name)
    files.sort()
    prefix, test = _layout(files, str(path))
    ptr, pte, ytr, yte, classes = _imagefolder_index(files, prefix, test, str(path))
    size = size if size is not None else sides[ptr[0]]
    xtr, xte = alloc("x_train", (len(ptr), 3, *hw(size))), alloc("x_test", (len(pte), 3, *hw(size)))
    rows = {f: (xtr, i) for i, f in enumerate(ptr)} | {f: (xte, i) for i, f in enumerate(pte)}
    for f, data in _archive_members(path):
        if f in rows:
            out, i = rows[f]
            _decode_into(out, [(i, f, data)], name)
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte, "classes": np.array(classes)}


@register_source("imagefolder")
def _imagefolder(arg: str | None, size: int | tuple[int, int] | None = None) -> Dataset:
    """A folder, or a .tar/.tar.gz archive, in the ImageFolder layout; decoded once (at ``size``
    when given), then cached.

    The cache key is the source's content and the decode size: for a folder every image's
    path, size and modification time; for an archive the hash of its bytes.
    """
    import hashlib

    if not arg:
        raise DataError(
            "imagefolder needs a path: 'imagefolder:PATH' with PATH/train/<class>/* and PATH/test/<class>/*"
        )
    root = Path(arg).expanduser()
    if root.is_file() and root.name.lower().endswith(_ARCHIVES):
        h = hashlib.sha256()
        with open(root, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        key = {"archive": h.hexdigest(), "size": _size_key(size)}

        def build(alloc) -> dict[str, np.ndarray]:
            return _archive_arrays(root, alloc, size)
    elif root.is_dir():
        files = sorted(
            str(p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _IMG_EXT
        )
        _layout(files, str(root))  # the layout is checked before the cache is looked up
        key = {"folder": str(root.resolve()), "files": _stamps(root, files), "size": _size_key(size)}

        def build(alloc) -> dict[str, np.ndarray]:
            return _folder_arrays(root, files, alloc, size)
    else:
        raise DataError(
            f"imagefolder:{root}: no such folder or .tar/.tar.gz archive (expected train/<class>/* and test/<class>/*)"
        )
    return _from_cache(f"imagefolder:{root}", _cached(key, "imagefolder", build))


def _stamps(root: Path, files: list) -> list:
    """What a folder's cache key holds of each image: its path, size and modification time."""
    return [(str(f), (st := (root / f).stat()).st_size, st.st_mtime_ns) for f in files]


def _from_cache(name: str, a: dict[str, np.ndarray]) -> Dataset:
    ds = _finish(
        name,
        a["x_train"],
        a["y_train"],
        a["x_test"],
        a["y_test"],
        num_classes=len(a["classes"]),
        class_names=a["classes"].tolist(),
        stats=a["stats"],
    )
    return replace(ds, mapped=isinstance(a["x_train"], np.memmap))  # its splits are then Rows of the map, not copies


@register_source("tinyimagenet")
def _tinyimagenet(arg: str | None, size: int | tuple[int, int] | None = None) -> Dataset:
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
    rel = [p.relative_to(root) for p in (*ptr, *pte)]

    def build(alloc) -> dict[str, np.ndarray]:
        side = _decode_size(size, ptr[0], ptr[0], f"tinyimagenet:{root}/train") if ptr else size
        xtr = _decode_files(alloc, "x_train", ptr, f"tinyimagenet:{root}/train", side)
        xte = _decode_files(alloc, "x_test", pte, f"tinyimagenet:{root}/val", side)
        return {
            "x_train": xtr,
            "y_train": np.array(ytr, np.int64),
            "x_test": xte,
            "y_test": np.array(yte, np.int64),
            "classes": np.array(classes),
        }

    key = {"folder": str(root.resolve()), "files": _stamps(root, rel), "labels": [*ytr, *yte], "size": _size_key(size)}
    return _from_cache("tinyimagenet", _cached(key, "tinyimagenet", build))


_imagefolder.takes_shape = _tinyimagenet.takes_shape = True  # they decode at (height, width) too (create_dataset)


def _size_key(size: int | tuple[int, int] | None) -> int | str | None:
    """The decode size in a cache key: a side as before (so caches made before WxH stay valid), WxH as text."""
    return size if size is None or isinstance(size, int) else f"{size[1]}x{size[0]}"


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
        raise DataError(
            f"npz:{path}: not a readable .npz ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'truncated?'}): re-save it with numpy.savez"
        ) from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise DataError(f"npz:{path}: missing arrays {missing} (expected x_train, y_train, x_test, y_test)")
    return _finish(f"npz:{path}", *(arrays[k] for k in keys))
