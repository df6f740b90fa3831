"""Batches from in-memory tensors: index slices, normalisation and augmentation on the batch.

Example:
    >>> import torch
    >>> from growsearch.data.loader import BatchLoader
    >>> x, y = torch.zeros(10, 3, 32, 32, dtype=torch.uint8), torch.arange(10)
    >>> [len(yb) for _, yb in BatchLoader(x, y, batch_size=4, mean=(0.5,) * 3, std=(0.25,) * 3, train=False)]
    [4, 4, 2]
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

__all__ = ["resize", "BatchLoader"]


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
