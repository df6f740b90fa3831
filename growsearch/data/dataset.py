"""The dataset type, the source registry, and datasets by name.

A :class:`Dataset` holds uint8 NCHW images and int64 labels in memory, its test split kept apart
and, once :func:`growsearch.data.split.with_validation` has carved it, a validation split. A
source is a function registered under a name (:func:`register_source`) that builds one with
:func:`from_arrays`, which checks images and labels and computes the normalisation;
:func:`create_dataset` finds a source by name, as timm's ``create_model`` finds a model.

Shipped sources (registered when :mod:`growsearch.data` is imported; :mod:`growsearch.data.sources`):
    ``digits``             scikit-learn's 8x8 digits (shipped), upsampled to 32x32, fixed 80/20 split
    ``cifar10[:ROOT]``     torchvision's on-disk format: ROOT/cifar-10-batches-py/
    ``cifar100[:ROOT]``    torchvision's on-disk format: ROOT/cifar-100-python/
    ``imagefolder:PATH``   PATH/train/<class>/*.png|jpg and PATH/test/<class>/* (or PATH/val/<class>/*),
                           square at the first training image's shorter side unless ``?size``
    ``tinyimagenet:PATH``  the official layout: PATH/train/<wnid>/images/*, PATH/val/val_annotations.txt
    ``npz:PATH``           arrays x_train, y_train, x_test, y_test

ROOT defaults to ``$GROWSEARCH_DATA`` (else ``./data``). Any name may end in options, joined
by ``&``; the name, and so every result and frontier, states them:

    ``?size=N``             images at N x N: the shorter side resized to N, then centre-cropped
                            (any size, aspect ratio and mode); image folders decode at that size
    ``?size=WxH``           images W wide and H high: scaled to cover W x H, then centre-cropped;
                            non-square images train at that shape only (no ``resolution`` stages)
    ``?train_per_class=N``  a stratified, seeded subset of N training images per class

Nothing is downloaded.

Example:
    >>> import numpy as np
    >>> x, y = np.zeros((8, 32, 32, 3), dtype=np.uint8), np.arange(8) % 2
    >>> from_arrays("zeros", x[:6], y[:6], x[6:], y[6:]).num_classes
    2
    >>> create_dataset("digits").image_size
    32
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import sys
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from growsearch._extensions import caller, record
from growsearch.errors import GrowsearchError

__all__ = [
    "TEST_SELECTION_NOTE",
    "DataError",
    "Dataset",
    "Rows",
    "create_dataset",
    "fit",
    "from_arrays",
    "list_sources",
    "ram_budget",
    "register_source",
    "select",
]


# The one line every report prints when there is no validation split (val_fraction 0).
TEST_SELECTION_NOTE = (
    "note: val_fraction is 0, so selection (plateau, best trial, MI weights, thresholds) used the test set"
)


class DataError(GrowsearchError, ValueError):
    """A dataset that is missing, malformed, or asked for in a way it cannot serve."""


class Rows:
    """Some rows of an image array, gathered when asked: a split of a memory-mapped dataset.

    A split (validation, a class subset, a share) of images that live in the decode cache's
    memory-mapped file is kept as the file's tensor and the rows it holds, not copied: a batch
    (``rows[idx]``, ``rows[i:j]``) gathers its images from the map, the kernel pages them in as
    they are read and may drop them again, so a run's resident memory is what it touches, and a
    dataset larger than memory still trains. ``take`` narrows the rows without reading any image.
    Written by hand because neither torch nor numpy has a lazy index view of an array.

    Example:
        >>> r = Rows(torch.arange(24, dtype=torch.uint8).view(6, 1, 2, 2), torch.tensor([4, 1, 3]))
        >>> len(r), tuple(r.shape), r[1:].flatten().tolist(), len(r.take(torch.tensor([True, False, True])))
        (3, (3, 1, 2, 2), [4, 5, 6, 7, 12, 13, 14, 15], 2)
    """

    def __init__(self, base: torch.Tensor, index: torch.Tensor, *, mapped: bool = False):
        self.base, self.index, self.mapped = (
            base,
            index,
            mapped,
        )  # mapped: base is a file map, whose pages release() may drop

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.index), *self.base.shape[1:]))

    @property
    def dtype(self) -> torch.dtype:
        return self.base.dtype

    @property
    def device(self) -> torch.device:
        return self.base.device

    def numel(self) -> int:
        return self.shape.numel()

    @property
    def row_bytes(self) -> int:
        """Bytes of one image."""
        return self.base[0].numel() * self.base.element_size()

    def take(self, idx: torch.Tensor) -> "Rows":
        """The rows ``idx`` (positions or a mask) of these rows, still unread."""
        return Rows(self.base, self.index[idx], mapped=self.mapped)

    def __getitem__(self, idx) -> torch.Tensor:
        return self.base[self.index[idx]]

    def materialize(self) -> torch.Tensor:
        """All rows as one tensor (a copy)."""
        return self.base[self.index]

    def to(self, device: torch.device | str) -> "Rows | torch.Tensor":
        """Itself on the CPU (batches are gathered from the map); on another device, a copy there."""
        return self if torch.device(device).type == "cpu" else self.materialize().to(device)

    def release(self, positions: torch.Tensor) -> None:
        """Hand the pages of the file rows under ``positions`` back to the kernel (Linux
        ``madvise(MADV_DONTNEED)`` on the private map: unmodified pages are dropped and read again
        from the file if touched), so a pass over more images than the memory budget stays within
        it. Elsewhere a no-op: the kernel still evicts clean pages under pressure."""
        if not self.mapped or not len(positions) or not sys.platform.startswith("linux"):
            return  # never on memory that is not a file's: MADV_DONTNEED would zero it
        rows = self.index[positions]
        start = self.base.data_ptr() + int(rows.min()) * self.row_bytes
        end = self.base.data_ptr() + (int(rows.max()) + 1) * self.row_bytes
        page = mmap.PAGESIZE
        lo, hi = -(-start // page) * page, end // page * page  # whole pages inside the rows only
        if hi > lo:
            _libc().madvise(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), 4)  # 4: MADV_DONTNEED


@functools.lru_cache(maxsize=1)
def _libc():
    return ctypes.CDLL(None, use_errno=True)


def ram_budget() -> int:
    """Bytes of images a loader may keep resident: ``$GROWSEARCH_MAX_RAM`` (bytes, or with a K, M,
    G or T suffix), else half of this machine's memory. A split of a memory-mapped dataset larger
    than this is read in shards of this size (see :class:`growsearch.data.loader.BatchLoader`)."""
    text = os.environ.get("GROWSEARCH_MAX_RAM", "").strip()
    if not text:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    unit = units.get(text[-1].upper())
    try:
        value = float(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        value = -1
    if not (value > 0 and value < 1 << 60):
        raise DataError(f"GROWSEARCH_MAX_RAM={text!r}: give bytes or a size such as 4G or 500M")
    return int(value)


def select(x: "torch.Tensor | Rows", idx: torch.Tensor, *, mapped: bool = False) -> "torch.Tensor | Rows":
    """``x[idx]`` for a split: the same ``x`` when ``idx`` keeps every row in order (a mask of all
    True); :class:`Rows` (no copy) when ``x`` is rows of a map, or ``mapped`` (``x`` is a mapped
    cache's tensor); else a copy."""
    if idx.dtype == torch.bool and bool(idx.all()):
        return x
    if isinstance(x, Rows):
        return x.take(idx)
    if mapped:
        return Rows(x, torch.arange(len(x))[idx], mapped=True)
    return x[idx]


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 NCHW tensors (or :class:`Rows` of a memory-mapped cache, once split),
    labels as int64, test split kept apart."""

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
    class_names: tuple[
        str, ...
    ] = ()  # label j's name (folder, synset, CIFAR label); "0", "1", ... where the source has none
    mapped: bool = False  # the images are the decode cache's memory-mapped file: splits are Rows of it, not copies

    @property
    def in_chans(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int | None:
        """The images' side; None for non-square images (``?size=WxH``, or arrays that are not
        square), which train at their native shape only: no ``resolution`` stages or resizing."""
        h, w = self.image_shape
        return h if h == w else None

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width) of the images."""
        return int(self.x_train.shape[-2]), int(self.x_train.shape[-1])


_SOURCES: dict[str, Callable[[str | None], Dataset]] = {}


def register_source(name: str):
    """Register a dataset source: ``create_dataset("NAME")`` / ``"NAME:ARG"`` then calls ``fn(ARG or None)``.

    The function returns a :class:`Dataset`; build it with :func:`from_arrays`, which checks the
    images and labels and computes the normalisation, so a plugin source gets the same one-line
    errors as the shipped ones. ``NAME?size=N`` resizes what it returns; a function with a
    ``size`` keyword is given N instead and decodes at that size itself (as the image folders do);
    ``?size=WxH`` is given as (H, W) only to a function with ``takes_shape = True`` set on it.

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
    key = name.strip().lower() if isinstance(name, str) else ""
    if not key or any(c in key for c in ":?"):
        raise DataError(f"a source name is a word without ':' or '?', got {name!r}")
    by = caller()

    def deco(fn: Callable[[str | None], Dataset]):
        return _add_source(key, fn, by=by)

    return deco


def _add_source(
    key: str, fn: Callable[[str | None], Dataset], *, by: str | None = None
) -> Callable[[str | None], Dataset]:
    record(
        _add_source, key, fn, by=caller() if by is None else by
    )  # so the Ray workers a search starts register it too
    _SOURCES[key] = fn
    return fn


def from_arrays(
    name: str,
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    flip: bool = True,
    num_classes: int | None = None,
    class_names=None,
) -> Dataset:
    """A :class:`Dataset` from images (uint8, NHWC or NCHW, numpy or torch) and integer labels
    0..k-1; raises ``DataError`` naming what is wrong. ``flip``: horizontal flips keep labels;
    ``class_names``: label j's name (default ``"j"``)."""
    return _finish(name, x_train, y_train, x_test, y_test, flip=flip, num_classes=num_classes, class_names=class_names)


def _finish(
    name: str,
    xtr,
    ytr,
    xte,
    yte,
    *,
    flip: bool = True,
    num_classes: int | None = None,
    idx: tuple | None = None,
    class_names=None,
    stats: tuple | None = None,
) -> Dataset:
    """:func:`from_arrays` for the shipped sources: ``idx`` each sample's index in the source's
    list, ``stats`` (mean, std) when the decode cache already holds them (a cached load then
    reads no image at all)."""
    xtr, xte = _as_uint8_nchw(xtr, f"{name}: train images"), _as_uint8_nchw(xte, f"{name}: test images")
    ytr, yte = _labels(ytr, f"{name}: train labels"), _labels(yte, f"{name}: test labels")
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataError(f"{name}: train images are {tuple(xtr.shape[1:])} but test images {tuple(xte.shape[1:])}")
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise DataError(
            f"{name}: {len(xtr)} train images but {len(ytr)} labels, {len(xte)} test images but {len(yte)} labels: one label per image"
        )
    k = int(num_classes or int(ytr.max()) + 1)
    if k < 2:
        raise DataError(f"{name}: {k} class: growsearch learns to tell classes apart and needs at least two")
    missing = sorted(set(range(k)) - set(ytr.unique().tolist()))
    if missing:
        raise DataError(
            f"{name}: class(es) {missing[:10]} have no training images (labels must be 0..{k - 1}, every class present in train)"
        )
    unseen = sorted(c for c in yte.unique().tolist() if c >= k)
    if unseen:
        raise DataError(
            f"{name}: test labels {unseen[:10]} never occur in train (classes 0..{k - 1}): every test class needs training images"
        )
    mean, std = (
        (tuple(float(v) for v in stats[0]), tuple(float(v) for v in stats[1])) if stats is not None else _stats(xtr)
    )
    if idx is None:  # sources with separate train and test files: test samples come after the train ones
        idx = (np.arange(len(xtr)), len(xtr) + np.arange(len(xte)))
    itr, ite = (torch.as_tensor(np.asarray(i), dtype=torch.int64) for i in idx)
    names = tuple(str(c) for c in (class_names if class_names is not None else range(k)))
    if len(names) != k:
        raise DataError(f"{name}: {len(names)} class names for {k} classes: give one name per class")
    return Dataset(name, xtr, ytr, xte, yte, k, mean, std, flip, itr, ite, class_names=names)


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
            raise DataError(
                f"{name}: class labels must be whole numbers 0..K-1, got non-integer values such as {float(a[(a != np.round(a)) | ~np.isfinite(a)][0])!r}"
            )
    elif a.dtype.kind not in "iub":
        raise DataError(f"{name}: class labels must be integers 0..K-1, got dtype {a.dtype}")
    if (a < 0).any():
        raise DataError(
            f"{name}: class labels must be ≥ 0, got {int(a.min())} (labels are 0..K-1; -1 is not 'unlabelled' here)"
        )
    return torch.as_tensor(a.astype(np.int64))


def _channels_last(shape: tuple[int, ...]) -> bool:
    """Whether a 4-d image array is (N,H,W,C): its last axis holds channels (1, 3, or 4: RGBA) and
    its second does not; when both could, the reading that gives square images wins (a batch of
    1-pixel RGB images is (N,1,1,3), not 3-pixel-wide grey ones)."""
    last, second = shape[-1] in (1, 3, 4), shape[1] in (1, 3, 4)
    if last != second:
        return last
    return last and shape[1] == shape[2] and shape[2] != shape[3]


def _as_uint8_nchw(x, name: str) -> torch.Tensor:
    try:
        x = torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError):
        raise DataError(f"{name}: expected a numeric array of images") from None
    if x.numel() == 0:
        raise DataError(f"{name}: no images")
    if x.dtype == torch.bool or not (
        x.is_floating_point() or x.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
    ):
        raise DataError(f"{name}: images must be uint8 (0..255) or floats in [0, 1], got dtype {x.dtype}")
    if x.dim() == 3:
        x = x[:, None]
    elif x.dim() == 4 and _channels_last(tuple(x.shape)):
        x = x.permute(0, 3, 1, 2)
    if x.dim() != 4:
        raise DataError(f"{name}: images must be (N,H,W), (N,H,W,C) or (N,C,H,W), got shape {tuple(x.shape)}")
    if x.dim() == 4 and not {x.shape[1], x.shape[3]} & {1, 3, 4}:
        raise DataError(
            f"{name}: images of shape {tuple(x.shape)} have no channel axis: neither axis 1 ({x.shape[1]}) nor the last "
            f"({x.shape[3]}) is 1 (grey) or 3 (RGB); give (N,H,W), (N,H,W,C) or (N,C,H,W)"
        )
    if x.shape[1] not in (1, 3):
        what = " (RGBA? drop the alpha channel)" if x.shape[1] == 4 else ""
        raise DataError(
            f"{name}: images have {x.shape[1]} channels{what}; growsearch takes 1 (grey) or 3 (RGB), shape {tuple(x.shape)} read as (N,C,H,W)"
        )
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


def list_sources() -> list[str]:
    return sorted(_SOURCES)


def create_dataset(name: str) -> Dataset:
    """Load a dataset by name (``"digits"``, ``"cifar100:/data"``, ``"npz:/x.npz"``, ...).

    Raises:
        DataError: unknown name, or files missing or malformed (the message names the expected layout).
    """
    if not isinstance(name, str):
        raise DataError(f"a dataset name is a string such as 'digits' or 'npz:PATH', got {type(name).__name__}")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):  # a newline would also break every one-line message naming it
        raise DataError(f"a dataset name has no control characters (newlines, tabs), got {name[:120]!r}")
    ram_budget()  # a malformed $GROWSEARCH_MAX_RAM is refused for every source, not only those that map their images
    base, _, query = name.partition("?")
    options = _options(query, name)
    kind, _, arg = base.partition(":")
    kind = kind.strip().lower()
    if kind not in _SOURCES:
        raise DataError(f"unknown dataset {name[:120]!r}; known: {', '.join(list_sources())} (e.g. 'npz:PATH')")
    fn = _SOURCES[kind]
    size = options.get("size")
    # a source with a ``size`` keyword decodes at that size itself; (height, width) only where it
    # says it can (``fn.takes_shape``: the image folders), a plugin's gets a side and no more
    if size is not None and _takes_size(fn) and (isinstance(size, int) or getattr(fn, "takes_shape", False)):
        ds = fn(arg or None, size=size)
    else:
        ds = fn(arg or None)
    if size is not None and tuple(ds.x_train.shape[-2:]) != hw(size):
        ds = _fit_dataset(ds, size)
    if "train_per_class" in options:
        ds = _train_per_class(ds, options["train_per_class"], name)
    return replace(ds, name=name)


_OPTIONS = ("size", "train_per_class")


def hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a decode size: a side N is N x N."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _options(query: str, name: str) -> dict[str, int | tuple[int, int]]:
    """``NAME?size=N&train_per_class=N``: options that are part of the dataset's name, so every
    result, frontier and comparison that names the dataset states them too. ``size=WxH``
    (width x height, as image sizes are written: 64x48 is landscape) is kept as (height, width)."""
    out: dict[str, int | tuple[int, int]] = {}
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key in out:
            raise DataError(f"{name}: the option {key!r} is given twice: keep one")
        if key not in _OPTIONS:
            raise DataError(
                f"{name}: unknown dataset option {key!r}; known: {', '.join(_OPTIONS)} (e.g. 'cifar10?train_per_class=1000')"
            )
        if key == "size" and "x" in value.lower():
            w, _, h = value.lower().partition("x")
            if (
                not (w.isdigit() and h.isdigit())
                or not (1 <= int(w) <= 4096 and 1 <= int(h) <= 4096)
                or len(w) > 6
                or len(h) > 6
            ):
                raise DataError(
                    f"{name}: size={value} must be N or WxH, whole numbers from 1 to 4096 (e.g. size=64 or size=64x48)"
                )
            out[key] = int(w) if int(w) == int(h) else (int(h), int(w))
            continue
        if not value.isdigit() or int(value) < 1 or len(value) > 6:
            raise DataError(f"{name}: {key} must be a whole number ≥ 1, got {value!r}")
        if key == "size" and int(value) > 4096:
            raise DataError(f"{name}: size={value} is larger than any network here trains on (at most 4096 px)")
        out[key] = int(value)
    return out


def _takes_size(fn: Callable) -> bool:
    """Whether a source decodes at a requested size itself (it has a ``size`` keyword)."""
    import inspect

    try:
        return "size" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def fit(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """uint8 NCHW images at ``size`` (a side, or (height, width)): scaled (antialiased bilinear)
    just enough to cover it, then centre-cropped, as Pillow's ``ImageOps.fit`` does; in chunks,
    into one preallocated array. A side N scales the shorter side to N.

    Example:
        >>> fit(torch.zeros(2, 3, 20, 40, dtype=torch.uint8), 10).shape
        torch.Size([2, 3, 10, 10])
        >>> fit(torch.zeros(2, 3, 20, 40, dtype=torch.uint8), (10, 30)).shape
        torch.Size([2, 3, 10, 30])
    """
    import torch.nn.functional as F

    n, c, h, w = x.shape
    th, tw = hw(size)
    scale = max(th / h, tw / w)
    nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
    top, left = (nh - th) // 2, (nw - tw) // 2
    out = torch.empty((n, c, th, tw), dtype=torch.uint8)
    chunk = _chunk(c * h * w)
    for i in range(0, n, chunk):
        xb = x[i : i + chunk].float()
        if (nh, nw) != (h, w):
            xb = F.interpolate(xb, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        out[i : i + chunk] = xb[:, :, top : top + th, left : left + tw].round().clamp(0, 255).to(torch.uint8)
    return out


def _fit_dataset(ds: Dataset, size: int | tuple[int, int]) -> Dataset:
    xtr, xte = fit(ds.x_train, size), fit(ds.x_test, size)
    mean, std = _stats(xtr)
    return replace(ds, x_train=xtr, x_test=xte, mean=mean, std=std, mapped=False)


def _chunk(per_image: int, elements: int = 1 << 20) -> int:
    """Images per chunk so that a chunk of images of ``per_image`` values each holds about
    ``elements`` values (4 MB as float32)."""
    return max(1, elements // max(1, per_image))


def _stats(x) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (unbiased) std of uint8 images / 255, from exact integer sums: a float
    copy of the whole training set (what ``x.float().std()`` makes) would take four times the
    dataset's memory for six numbers. numpy's reductions cast in small buffers; the squares are
    summed over chunks of about a million values."""
    a = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    n, c = a.shape[0], a.shape[1]
    total = a.sum(axis=(0, 2, 3), dtype=np.int64)  # exact: 255² x 10^12 pixels still fits in int64
    squares = np.zeros(c, dtype=np.int64)
    step = _chunk(a[0].size)
    for i in range(0, n, step):
        xb = a[i : i + step].astype(np.int32)
        squares += np.einsum("nchw,nchw->c", xb, xb, dtype=np.int64)
    count = n * a.shape[2] * a.shape[3]
    mean = total / count
    var = np.clip(squares - count * mean * mean, 0, None) / max(1, count - 1)
    return tuple((mean / 255).tolist()), tuple(np.maximum(np.sqrt(var) / 255, 1e-3).tolist())


def _train_per_class(ds: Dataset, n: int, name: str) -> Dataset:
    """A stratified, seeded (seed 0) subset of ``n`` training images per class, for runs that
    must fit a CPU budget; the test split is untouched."""

    def take(c: int, members: int) -> int:
        if members < n:
            raise DataError(
                f"{name}: class {c} has {members} training images, fewer than train_per_class {n}: lower it"
            )
        return n

    k = _stratified(ds.y_train, 0, take)
    return replace(
        ds,
        x_train=select(ds.x_train, k, mapped=ds.mapped),
        y_train=ds.y_train[k],
        idx_train=ds.idx_train[k] if ds.idx_train is not None else None,
    )


def _stratified(y: torch.Tensor, seed: int, take: Callable[[int, int], int]) -> torch.Tensor:
    """Sorted indices of a seeded random ``take(class, its count)`` samples of every class in ``y``."""
    rng = np.random.default_rng(int(seed))
    labels = y.numpy()
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        picked.append(rng.permutation(members)[: take(int(c), len(members))])
    return torch.as_tensor(np.sort(np.concatenate(picked)), dtype=torch.int64)
