"""Datasets by name, nested class subsets, and an in-memory batch loader.

Every source yields uint8 NCHW tensors held in memory (on the GPU when training there): a
batch is an index slice, normalisation and augmentation (random crop with padding, and a
horizontal flip where the data allows it) run on the batch tensor. Nothing is downloaded.

Sources (``create_dataset(name)``):
    ``digits``             scikit-learn's 8x8 digits (shipped), upsampled to 32x32, fixed 80/20 split
    ``cifar10[:ROOT]``     torchvision's on-disk format: ROOT/cifar-10-batches-py/
    ``cifar100[:ROOT]``    torchvision's on-disk format: ROOT/cifar-100-python/
    ``imagefolder:PATH``   PATH/train/<class>/*.png|jpg and PATH/test/<class>/* (or PATH/val/<class>/*)
    ``tinyimagenet:PATH``  the official layout: PATH/train/<wnid>/images/*, PATH/val/val_annotations.txt
    ``npz:PATH``           arrays x_train, y_train, x_test, y_test

ROOT defaults to ``$GROWSEARCH_DATA`` (else ``./data``). Any name may end in
``?train_per_class=N``: a stratified, seeded subset of N training images per class (the name,
and so every result and frontier, says so).

A source returns its train and test splits; :func:`with_validation` then carves a seeded,
stratified validation split out of the training set. Everything that *chooses* (the plateau
rule, the search, mutual-inference weights, detection thresholds) reads the validation split;
the test split is only reported. With ``fraction=0`` the validation split *is* the test split
(the paper's own protocol), and every report says so.

Example:
    >>> from growsearch.data import create_dataset, class_order, subset
    >>> ds = create_dataset("digits")
    >>> order = class_order(ds.num_classes, seed=0)
    >>> d1 = subset(ds, order[:5])
    >>> d1.num_classes, int(d1.y_train.max())
    (5, 4)
    >>> dv = with_validation(ds, 0.1, seed=0)
    >>> len(dv.y_train) + len(dv.y_val) == len(ds.y_train)
    True
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from growsearch.errors import GrowsearchError

__all__ = [
    "Dataset",
    "DataError",
    "BatchLoader",
    "class_order",
    "create_dataset",
    "list_sources",
    "register_source",
    "from_arrays",
    "subset",
    "with_validation",
    "cache_dir",
    "TEST_SELECTION_NOTE",
]

# The one line every report prints when there is no validation split (val_fraction 0).
TEST_SELECTION_NOTE = "note: val_fraction is 0, so selection (plateau, best trial, MI weights, thresholds) used the test set"


class DataError(GrowsearchError, ValueError):
    """A dataset that is missing, malformed, or asked for in a way it cannot serve."""


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 NCHW tensors, labels as int64, test split kept apart."""

    name: str  # the name it was created from, e.g. "digits" or "npz:/data/x.npz"
    x_train: torch.Tensor  # uint8 (N, C, H, W)
    y_train: torch.Tensor  # int64 (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]  # per-channel mean of x_train / 255, for normalisation
    std: tuple[float, ...]
    flip: bool = True  # horizontal flip is label-preserving (False for digits: a flipped 2 is no 2)
    idx_train: torch.Tensor | None = None  # each sample's index in the source's full sample list
    idx_test: torch.Tensor | None = None  # (disjoint from idx_train; subsets keep them, so nesting is checkable)
    x_val: torch.Tensor | None = None  # validation images, carved from the training set by with_validation
    y_val: torch.Tensor | None = None
    idx_val: torch.Tensor | None = None
    val_fraction: float | None = None  # None: no split made yet; 0: the validation split is the test split
    val_seed: int = 0  # seed of the validation split
    val_id: str = ""  # hash of the validation samples' indices: runs and frontiers compare it

    @property
    def in_chans(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[-1])


_SOURCES: dict[str, Callable[[str | None], Dataset]] = {}


def register_source(name: str):
    """Register a dataset source: ``create_dataset("NAME")`` / ``"NAME:ARG"`` then calls ``fn(ARG or None)``.

    The function returns a :class:`Dataset`; build it with :func:`from_arrays`, which checks the
    images and labels and computes the normalisation, so a plugin source gets the same one-line
    errors as the shipped ones.

    Example:
        >>> import numpy as np
        >>> @register_source("noise")
        ... def _noise(arg):
        ...     rng = np.random.default_rng(int(arg or 0))
        ...     x, y = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), np.arange(40) % 4
        ...     return from_arrays("noise", x[:32], y[:32], x[32:], y[32:])
        >>> create_dataset("noise:1").num_classes
        4
    """
    key = name.strip().lower()
    if not key or any(c in key for c in ":?"):
        raise DataError(f"a source name is a word without ':' or '?', got {name!r}")

    def deco(fn: Callable[[str | None], Dataset]):
        _SOURCES[key] = fn
        return fn

    return deco


def from_arrays(name: str, x_train, y_train, x_test, y_test, *, flip: bool = True, num_classes: int | None = None) -> Dataset:
    """A :class:`Dataset` from images (uint8, NHWC or NCHW, numpy or torch) and integer labels
    0..k-1; raises ``DataError`` naming what is wrong. ``flip``: horizontal flips keep labels."""
    return _finish(name, x_train, y_train, x_test, y_test, flip=flip, num_classes=num_classes)


def list_sources() -> list[str]:
    return sorted(_SOURCES)


def create_dataset(name: str) -> Dataset:
    """Load a dataset by name (``"digits"``, ``"cifar100:/data"``, ``"npz:/x.npz"``, ...).

    Raises:
        DataError: unknown name, or files missing or malformed (the message names the expected layout).
    """
    if not isinstance(name, str):
        raise DataError(f"a dataset name is a string such as 'digits' or 'npz:PATH', got {type(name).__name__}")
    base, _, query = name.partition("?")
    options = _options(query, name)
    kind, _, arg = base.partition(":")
    kind = kind.strip().lower()
    if kind not in _SOURCES:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(list_sources())} (e.g. 'npz:PATH')")
    ds = _SOURCES[kind](arg or None)
    if "train_per_class" in options:
        ds = _train_per_class(ds, options["train_per_class"], name)
    return replace(ds, name=name)


def _options(query: str, name: str) -> dict[str, int]:
    """``NAME?train_per_class=N``: options that are part of the dataset's name, so every result,
    frontier and comparison that names the dataset states them too."""
    out: dict[str, int] = {}
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key != "train_per_class":
            raise DataError(f"{name}: unknown dataset option {key!r}; known: train_per_class (e.g. 'cifar10?train_per_class=1000')")
        if not value.isdigit() or int(value) < 1:
            raise DataError(f"{name}: train_per_class must be a whole number ≥ 1, got {value!r}")
        out[key] = int(value)
    return out


def _train_per_class(ds: Dataset, n: int, name: str) -> Dataset:
    """A stratified, seeded (seed 0) subset of ``n`` training images per class, for runs that
    must fit a CPU budget; the test split is untouched."""
    def take(c: int, members: int) -> int:
        if members < n:
            raise DataError(f"{name}: class {c} has {members} training images, fewer than train_per_class {n}: lower it")
        return n

    k = _stratified(ds.y_train, 0, take)
    return replace(ds, x_train=ds.x_train[k], y_train=ds.y_train[k], idx_train=ds.idx_train[k] if ds.idx_train is not None else None)


def _stratified(y: torch.Tensor, seed: int, take: Callable[[int, int], int]) -> torch.Tensor:
    """Sorted indices of a seeded random ``take(class, its count)`` samples of every class in ``y``."""
    rng = np.random.default_rng(int(seed))
    labels = y.numpy()
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        picked.append(rng.permutation(members)[: take(int(c), len(members))])
    return torch.as_tensor(np.sort(np.concatenate(picked)), dtype=torch.int64)


def _finish(
    name: str, xtr, ytr, xte, yte, *, flip: bool = True, num_classes: int | None = None, idx: tuple | None = None
) -> Dataset:
    xtr, xte = _as_uint8_nchw(xtr, f"{name}: train images"), _as_uint8_nchw(xte, f"{name}: test images")
    ytr, yte = _labels(ytr, f"{name}: train labels"), _labels(yte, f"{name}: test labels")
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataError(f"{name}: train images are {tuple(xtr.shape[1:])} but test images {tuple(xte.shape[1:])}")
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise DataError(
            f"{name}: {len(xtr)} train images but {len(ytr)} labels, {len(xte)} test images but {len(yte)} labels: one label per image"
        )
    k = int(num_classes or int(ytr.max()) + 1)
    missing = sorted(set(range(k)) - set(ytr.unique().tolist()))
    if missing:
        raise DataError(
            f"{name}: class(es) {missing[:10]} have no training images (labels must be 0..{k - 1}, every class present in train)"
        )
    unseen = sorted(c for c in yte.unique().tolist() if c >= k)
    if unseen:
        raise DataError(f"{name}: test labels {unseen[:10]} never occur in train (classes 0..{k - 1}): every test class needs training images")
    f = xtr.float() / 255
    mean = tuple(f.mean(dim=(0, 2, 3)).tolist())
    std = tuple(f.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
    if idx is None:  # sources with separate train and test files: test samples come after the train ones
        idx = (np.arange(len(xtr)), len(xtr) + np.arange(len(xte)))
    itr, ite = (torch.as_tensor(np.asarray(i), dtype=torch.int64) for i in idx)
    return Dataset(name, xtr, ytr, xte, yte, k, mean, std, flip, itr, ite)


def _labels(y, name: str) -> torch.Tensor:
    """Class labels as int64, refusing what would silently train wrong (negative labels index
    from the end; fractional ones would be truncated)."""
    a = np.asarray(y)
    if a.ndim != 1:
        raise DataError(f"{name}: expected one integer class index per image (shape (N,)), got shape {a.shape}")
    if a.size == 0:
        raise DataError(f"{name}: no labels")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all() or (a != np.round(a)).any():
            raise DataError(f"{name}: class labels must be whole numbers 0..K-1, got non-integer values such as {float(a[(a != np.round(a)) | ~np.isfinite(a)][0])!r}")
    elif a.dtype.kind not in "iub":
        raise DataError(f"{name}: class labels must be integers 0..K-1, got dtype {a.dtype}")
    if (a < 0).any():
        raise DataError(f"{name}: class labels must be ≥ 0, got {int(a.min())} (labels are 0..K-1; -1 is not 'unlabelled' here)")
    return torch.as_tensor(a.astype(np.int64))


def _as_uint8_nchw(x, name: str) -> torch.Tensor:
    try:
        x = torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError):
        raise DataError(f"{name}: expected a numeric array of images") from None
    if x.numel() == 0:
        raise DataError(f"{name}: no images")
    if x.dtype == torch.bool or not (x.is_floating_point() or x.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
        raise DataError(f"{name}: images must be uint8 (0..255) or floats in [0, 1], got dtype {x.dtype}")
    if x.dim() == 3:
        x = x[:, None]
    elif x.dim() == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.dim() != 4:
        raise DataError(f"{name}: images must be (N,H,W), (N,H,W,C) or (N,C,H,W), got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        if not x.is_floating_point():
            if x.min() < 0 or x.max() > 255:
                raise DataError(f"{name}: integer images must lie in 0..255, got [{int(x.min())}, {int(x.max())}]")
            return x.to(torch.uint8).contiguous()
        x = x.float()
        if not torch.isfinite(x).all():
            raise DataError(f"{name}: images contain NaN or infinite values")
        if x.min() < 0 or x.max() > 1:
            raise DataError(f"{name}: float images must lie in [0, 1], got [{float(x.min()):g}, {float(x.max()):g}]")
        x = (x * 255).round().to(torch.uint8)
    return x.contiguous()


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
    return _finish(cls_name.lower(), tr.data, tr.targets, te.data, te.targets, num_classes=len(tr.classes))


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
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise DataError(f"{name}: {p} is not a readable image ({type(e).__name__}): remove or replace it") from None
        with im:
            im = im.convert("RGB")
            if size is None:
                size = im.size
            if im.size != size:  # one size for the whole set: the first image's
                im = im.resize(size, Image.BILINEAR)
            out.append(np.asarray(im))
    if not out:
        raise DataError(f"{name}: no images found")
    return np.stack(out)


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
                return {k: z[k] for k in z.files}
        except Exception:  # noqa: BLE001 - any unreadable cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
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
    return _finish(f"imagefolder:{root}", a["x_train"], a["y_train"], a["x_test"], a["y_test"], num_classes=len(a["classes"]))


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
    return _finish("tinyimagenet", xtr, ytr, xte, yte, num_classes=len(classes))


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


def class_order(num_classes: int, seed: int) -> list[int]:
    """A fixed permutation of the classes; stage ``i`` trains on its first ``k_i`` entries."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(num_classes, generator=g).tolist()


def subset(ds: Dataset, classes: list[int]) -> Dataset:
    """Train and test samples of ``classes`` only, labels renumbered to positions in ``classes``.

    With ``classes = order[:k]`` for growing ``k`` the subsets are nested and label ``j``
    always means ``order[j]``, so classifier rows learnt in one stage keep their meaning.
    """
    lut = torch.full((ds.num_classes,), -1, dtype=torch.int64)
    lut[torch.tensor(classes, dtype=torch.int64)] = torch.arange(len(classes))
    mtr, mte = lut[ds.y_train] >= 0, lut[ds.y_test] >= 0
    return replace(
        ds,
        x_train=ds.x_train[mtr],
        y_train=lut[ds.y_train[mtr]],
        x_test=ds.x_test[mte],
        y_test=lut[ds.y_test[mte]],
        num_classes=len(classes),
        idx_train=ds.idx_train[mtr] if ds.idx_train is not None else None,
        idx_test=ds.idx_test[mte] if ds.idx_test is not None else None,
        **_subset_val(ds, lut),
    )


def _subset_val(ds: Dataset, lut: torch.Tensor) -> dict:
    if ds.y_val is None:
        return {}
    m = lut[ds.y_val] >= 0
    return {"x_val": ds.x_val[m], "y_val": lut[ds.y_val[m]], "idx_val": ds.idx_val[m] if ds.idx_val is not None else None}


def with_validation(ds: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """Hold out a stratified, seeded ``fraction`` of each class's training samples for validation.

    The same ``(fraction, seed)`` always picks the same samples, whatever the training seed, so
    every run of a study and its from-scratch frontier select on one split. ``fraction = 0``
    makes the test split double as the validation split (then selection sees the test set).
    A dataset already split the same way is returned as it is.

    Raises:
        DataError: ``fraction`` outside [0, 0.5), a class with too few training samples to give
            it a validation sample and keep one for training, or a dataset split another way.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 0.5:
        raise DataError(f"val_fraction must be in [0, 0.5) (0.1 holds out 10% of each class), got {fraction!r}")
    if ds.val_fraction is not None:
        if (ds.val_fraction, ds.val_seed) == (float(fraction), int(seed)):
            return ds
        raise DataError(
            f"{ds.name} is already split with val_fraction {ds.val_fraction:g} (seed {ds.val_seed}), not {fraction:g} (seed {seed}): "
            "pass the dataset as create_dataset returns it"
        )
    if fraction == 0:
        ids = ds.idx_test if ds.idx_test is not None else torch.arange(len(ds.y_test))
        return replace(ds, x_val=ds.x_test, y_val=ds.y_test, idx_val=ds.idx_test, val_fraction=0.0, val_seed=int(seed), val_id="test:" + _hash(ids))
    def take(c: int, members: int) -> int:
        k = int(round(members * fraction))
        if k < 1 or k >= members:
            need = "no validation sample" if k < 1 else "no training sample"
            raise DataError(
                f"{ds.name}: class {c} has {members} training sample(s), so val_fraction {fraction:g} leaves it {need}: "
                f"use a val_fraction between {1 / members:.3g} and 0.5, add samples, or 0 to select on the test set"
                if members > 1 else
                f"{ds.name}: class {c} has 1 training sample, too few to hold one out: add samples or use val_fraction 0"
            )
        return k

    vi = _stratified(ds.y_train, seed, take)
    keep = torch.ones(len(ds.y_train), dtype=torch.bool)
    keep[vi] = False
    idx = ds.idx_train if ds.idx_train is not None else torch.arange(len(ds.y_train))
    return replace(
        ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep], idx_train=idx[keep],
        x_val=ds.x_train[vi], y_val=ds.y_train[vi], idx_val=idx[vi],
        val_fraction=float(fraction), val_seed=int(seed), val_id=_hash(idx[vi]),
    )


def _hash(idx: torch.Tensor) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(idx.numpy().astype(np.int64)).tobytes()).hexdigest()[:16]


def resize(x: torch.Tensor, side: int) -> torch.Tensor:
    """Antialiased bilinear resize of an (N, C, H, W) batch to side x side: how a stage's
    ``resolution`` is applied, in training and wherever its network is evaluated."""
    return F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)


class BatchLoader:
    """Batches from in-memory tensors: an index slice, then normalise, augment (at the native
    size) and, with ``resolution``, resize on the batch.

    Hand-written rather than a ``DataLoader``: for data that fits in (GPU) memory, worker
    processes and per-sample collation cost more than the whole training step (airbench's
    CifarLoader makes the same choice).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        train: bool,
        flip: bool = True,
        pad: int = 4,
        seed: int = 0,
        device: torch.device | str = "cpu",
        channels_last: bool = False,
        resolution: int | None = None,
    ):
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device)
        self.batch_size = int(batch_size)
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255
        self.train, self.flip, self.pad = train, flip and train, pad if train else 0
        self.channels_last = channels_last
        self.resolution = resolution if resolution and resolution != x.shape[-1] else None
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def _augment(self, xb: torch.Tensor) -> torch.Tensor:
        n, _, h, w = xb.shape
        g = self.generator
        if self.pad:
            p = self.pad
            xp = F.pad(xb, (p, p, p, p), mode="reflect")
            dy = torch.randint(0, 2 * p + 1, (n,), generator=g, device=self.device)
            dx = torch.randint(0, 2 * p + 1, (n,), generator=g, device=self.device)
            rows = (dy[:, None] + torch.arange(h, device=self.device))[:, :, None]
            cols = (dx[:, None] + torch.arange(w, device=self.device))[:, None, :]
            xb = xp.permute(0, 2, 3, 1)[torch.arange(n, device=self.device)[:, None, None], rows, cols].permute(0, 3, 1, 2)
        if self.flip:
            mask = torch.rand(n, generator=g, device=self.device) < 0.5
            xb = torch.where(mask.view(-1, 1, 1, 1), xb.flip(-1), xb)
        return xb

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        order = torch.randperm(n, generator=self.generator, device=self.device) if self.train else None
        for i in range(0, n, self.batch_size):
            idx = order[i : i + self.batch_size] if order is not None else slice(i, i + self.batch_size)
            xb = (self.x[idx].float() - self.mean) / self.std
            if self.train:
                xb = self._augment(xb)
            if self.resolution is not None:  # a lower-resolution stage
                xb = resize(xb, self.resolution)
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, self.y[idx]
