"""Batches from in-memory tensors: index slices, normalisation and augmentation on the batch.

Example:
    >>> import torch
    >>> from growsearch.data.loader import BatchLoader
    >>> x, y = torch.zeros(10, 3, 32, 32, dtype=torch.uint8), torch.arange(10)
    >>> [len(yb) for _, yb in BatchLoader(x, y, batch_size=4, mean=(0.5,) * 3, std=(0.25,) * 3, train=False)]
    [4, 4, 2]
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F

from growsearch.data.dataset import DataError, Rows, ram_budget

__all__ = ["resize", "BatchLoader", "check_budget", "EVAL_BATCH_BYTES"]

# The most float input one evaluation batch holds (64 MiB): 512 images of 3 channels up to 104 px,
# 111 at 224 px. Evaluation is the one place where the batch size is free (it changes no number).
EVAL_BATCH_BYTES = 1 << 26


def resize(x: torch.Tensor, side: int) -> torch.Tensor:
    """Antialiased bilinear resize of an (N, C, H, W) batch to side x side: how a stage's
    ``resolution`` is applied, in training and wherever its network is evaluated."""
    return F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)


def check_budget(x, batch_size: int) -> None:
    """``DataError`` in one line when rows of a mapped cache (``x``) could not hold one training
    batch within the memory budget, or the budget cannot be read; a run calls it before it writes
    anything."""
    if isinstance(x, Rows) and batch_size * x.row_bytes > (budget := ram_budget()):
        raise DataError(
            f"GROWSEARCH_MAX_RAM={budget} bytes holds less than one batch of {batch_size} images of {x.row_bytes} bytes: raise it or lower the batch size"
        )


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Indices into a side of length ``n`` as ``F.pad(mode="reflect")`` maps the padded ones
    (``-1`` is ``1``, ``n`` is ``n - 2``); the pad is smaller than ``n``, as reflect padding needs."""
    i = i.abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i)


class BatchLoader:
    """Batches from in-memory tensors: an index slice, then augment (at the native size, on the
    uint8 images), normalise and, with ``resolution``, resize on the batch.

    Hand-written rather than a ``DataLoader``: for data that fits in (GPU) memory, worker
    processes and per-sample collation cost more than the whole training step (airbench's
    CifarLoader makes the same choice). ``x`` may be :class:`~growsearch.data.dataset.Rows` of a
    memory-mapped decode cache: batches are gathered from the map, and a split larger than the
    memory budget (:func:`~growsearch.data.dataset.ram_budget`) is read in shards of it (decoded
    images are already in the cache, so reading a shard is a copy, not a decode: no worker
    processes are needed either).
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
        if self.pad >= min(x.shape[-2:], default=0):  # reflection needs a pad below the side, as F.pad does
            raise DataError(f"a crop padding of {self.pad} px needs images larger than {tuple(x.shape[-2:])}: lower it")
        self.channels_last = channels_last
        self.resolution = resolution if resolution and resolution != x.shape[-1] else None
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        # Rows of a memory-mapped cache larger than the memory budget: read in shards of the budget
        # (file order, so a shard is one stretch of the file), each shard's pages handed back once
        # the pass has left it. Smaller ones take the in-memory path's order exactly.
        self.shard = None
        if not train:  # an evaluation batch's size changes no number: at large images it shrinks to
            # EVAL_BATCH_BYTES of float input, and the activations of the batch with it
            self.batch_size = max(
                1, min(self.batch_size, EVAL_BATCH_BYTES // (4 * max(1, math.prod(self.x.shape[1:]))))
            )
        if isinstance(self.x, Rows):
            budget = ram_budget()
            if not train:  # and to the memory budget
                self.batch_size = max(1, min(self.batch_size, budget // self.x.row_bytes))
            check_budget(self.x, self.batch_size)
            if len(self.x) * self.x.row_bytes > budget:
                self.shard = budget // self.x.row_bytes

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def _augment(self, xb: torch.Tensor) -> torch.Tensor:
        """A random crop of the reflect-padded image and a random horizontal flip, as one gather
        on the uint8 batch: each output pixel's source row and column are computed (reflection,
        crop offset and flip folded into the index) instead of padding, cropping and flipping
        float copies, so augmentation adds one uint8 batch rather than several float ones (at
        224 px a float batch of 128 is 77 MB). The same random draws in the same order as
        ``F.pad(mode="reflect")`` + crop + ``flip``, and the same values (tested)."""
        n, _, h, w = xb.shape
        g, dev = self.generator, self.device
        if not (self.pad or self.flip):
            return xb
        rows = torch.arange(h, device=dev).expand(n, h)
        cols = torch.arange(w, device=dev).expand(n, w)
        if self.pad:  # the crop's source rows and columns in the unpadded image
            dy = torch.randint(0, 2 * self.pad + 1, (n,), generator=g, device=dev)
            dx = torch.randint(0, 2 * self.pad + 1, (n,), generator=g, device=dev)
            rows = _reflect(rows + dy[:, None] - self.pad, h)
            cols = _reflect(cols + dx[:, None] - self.pad, w)
        if self.flip:  # a flipped sample's column c is the crop's column w - 1 - c
            mask = torch.rand(n, generator=g, device=dev) < 0.5
            cols = torch.where(mask[:, None], cols.flip(-1), cols)
        # advanced indices around the channel slice put it last: (n, h, w, C), channels-last strides
        # (as the padded crop's were; a flip alone keeps the batch's own layout)
        out = xb[torch.arange(n, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        return out if self.pad else out.contiguous()

    def _order(self) -> tuple[torch.Tensor | None, list[int]]:
        """This epoch's sample order (None: evaluation, in order) and, in shards, where each shard
        ends in it: the shards in a random order, each shard's samples permuted (training), or
        consecutive stretches (evaluation)."""
        n = len(self.x)
        if not self.shard:
            return (torch.randperm(n, generator=self.generator, device=self.device) if self.train else None), []
        if not self.train:
            return torch.arange(n), list(range(self.shard, n, self.shard)) + [n]
        shards = list(
            torch.split(torch.argsort(self.x.index), self.shard)
        )  # file order: a shard is one stretch of the file
        pick = [int(k) for k in torch.randperm(len(shards), generator=self.generator)]
        order = torch.cat([shards[k][torch.randperm(len(shards[k]), generator=self.generator)] for k in pick])
        ends = torch.cumsum(torch.tensor([len(shards[k]) for k in pick]), 0).tolist()
        return order, ends

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        order, ends = self._order()
        start = 0  # in shards: where the shard being read starts in the order
        for i in range(0, n, self.batch_size):
            idx = order[i : i + self.batch_size] if order is not None else slice(i, i + self.batch_size)
            while ends and ends[0] <= i:  # every batch from here on is past that shard: its pages go back
                self.x.release(order[start : ends[0]])
                start = ends.pop(0)
            xb = self.x[idx]  # uint8: augmented and laid out before it becomes float (a quarter of the bytes)
            if self.train:
                xb = self._augment(xb)
            if self.channels_last and self.resolution is None:
                xb = xb.contiguous(memory_format=torch.channels_last)
            xb = (
                xb.to(torch.float32, copy=True).sub_(self.mean).div_(self.std)
            )  # a copy even of a float input: normalised in place
            if self.resolution is not None:  # a lower-resolution stage
                xb = resize(xb, self.resolution)
                if self.channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, self.y[idx]
        if self.shard:
            self.x.release(order[start:])
