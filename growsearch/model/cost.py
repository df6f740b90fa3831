"""Training cost: per-sample forward MACs and M = Σ samples × MACs.

MACs are counted with PyTorch's own ``torch.utils.flop_counter.FlopCounterMode``: it counts
exactly the convolution and matrix-multiply ops at the ATen level (FLOPs = 2 × MACs) and
nothing else, which is the paper's MAC definition (conv and linear layers), and it works on
any timm model without per-module hooks. torch-pruning's ``count_ops_and_params`` also adds
BatchNorm, bias and activation ops, so its totals do not match a hand count of conv + linear
MACs; we use torch-pruning for the pruning graph only.

Example:
    >>> import torch
    >>> m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 3))
    >>> macs_per_sample(m, (1, 8, 8)) == 8 * 8 * 4 * 1 * 9 + 256 * 3
    True
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["macs_per_sample", "count_params", "stage_cost", "input_shape"]


def input_shape(in_chans: int, resolution: int | None, image_hw: tuple[int, int] | None) -> tuple:
    """(C, H, W) of a stage's input: ``resolution`` x ``resolution``, or the data's own (height,
    width) where the stage trains at the native shape (``resolution`` None), as non-square data
    always does."""
    if resolution is None and image_hw is not None:
        return (in_chans, *image_hw)
    return (in_chans, resolution, resolution)


def macs_per_sample(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Forward multiply-accumulates of conv and linear layers for one input of ``input_shape`` (C, H, W)."""
    from torch.utils.flop_counter import FlopCounterMode

    ref = next(model.parameters())
    was_training = model.training
    model.eval()  # train mode would update BatchNorm running statistics
    try:
        x = torch.zeros((1, *input_shape), device=ref.device, dtype=ref.dtype)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // 2


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def stage_cost(samples: int, macs: int) -> int:
    """M of one stage: training samples processed × forward MACs per sample (exact integer)."""
    return int(samples) * int(macs)
