"""The shrink phase trained and measured: subnets distilled in place during the last stage, then
each one cut, recalibrated and scored.

:class:`Shrinker` is called by the epoch loop after the full network's backward pass on every
step: it freezes the channel ranks when shrinking starts, and on each step the plan names
(``growsearch.plan.shrink.ShrinkPlan``) it runs the step's subnets on the same batch inside the
weight-shared network (``growsearch.model.elastic.active``) and adds their distillation
gradients (Hinton's softened KL, times T², from the full network's outputs of that batch),
weighted by the plan's LR ramp. :func:`family_table` cuts every subnet of the menu, recalibrates
its BatchNorm on a fixed sample of training images and scores it on validation (what chooses)
and test (reported). Written here because neither timm nor torch has a weight-shared trainer;
the recipe follows once-for-all and DepS (sandwich sampling, in-place distillation, BN
recalibration), with DepS's delayed start and LR ramp as the plan's ``start`` and ``ramp``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from growsearch.data.dataset import Dataset
from growsearch.data.loader import BatchLoader
from growsearch.model.elastic import active, channel_ranks, cut, recalibrate
from growsearch.plan.schedule import TrainConfig
from growsearch.plan.shrink import ShrinkPlan, SubnetPlan
from growsearch.train.loop import eval_loader, evaluate

__all__ = ["Shrinker", "cut_member", "family_table", "pareto", "recal_loader"]


@dataclass
class Shrinker:
    """The subnets' share of each training step (see the module's docstring)."""

    plan: ShrinkPlan
    autocast: bool = False
    ranks: dict[str, torch.Tensor] | None = None  # frozen at the plan's start step (None until then)
    M: int = 0  # forward MACs of the subnet passes so far
    passes: int = 0  # subnet forward passes so far
    last_factor: float = 0.0  # the loss weight of the last step

    def __call__(self, model: nn.Module, xb: torch.Tensor, teacher: torch.Tensor, step: int) -> None:
        plan = self.plan
        if step >= plan.start_step and self.ranks is None:
            self.ranks = channel_ranks(model)  # once-for-all sorts channels when its width phase starts
        self.last_factor = plan.factor(step)
        picked = plan.sample(step)
        if not picked:
            return
        T = plan.temperature
        soft = F.softmax(teacher.float() / T, dim=1)
        for i in picked:
            sub = plan.subnets[i]
            with (
                active(model, sub.spec, self.ranks),
                torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=self.autocast),
            ):
                out = model(xb)
            loss = (
                self.last_factor * T * T * F.kl_div(F.log_softmax(out.float() / T, dim=1), soft, reduction="batchmean")
            )
            loss.backward()
            self.M += len(xb) * sub.macs_per_sample
            self.passes += 1

    def ranks_now(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The frozen ranks, or (shrinking never started: ``start`` 1) the trained network's."""
        if self.ranks is None:
            self.ranks = channel_ranks(model)
        return self.ranks


def recal_loader(
    data: Dataset, plan: ShrinkPlan, cfg: TrainConfig, device: torch.device, resolution: int | None
) -> BatchLoader:
    """The fixed sample of training images (no augmentation) every subnet's BatchNorm is recalibrated on."""
    idx = np.sort(np.random.default_rng(plan.seed).permutation(len(data.y_train))[: plan.recal_images])
    return BatchLoader(
        data.x_train[idx],
        data.y_train[idx],
        batch_size=cfg.eval_batch_size,
        mean=data.mean,
        std=data.std,
        train=False,
        device=device,
        channels_last=True,
        resolution=resolution,
    )


def cut_member(model: nn.Module, sub: SubnetPlan, ranks: dict[str, torch.Tensor], recal: BatchLoader) -> nn.Module:
    """``sub`` cut from ``model`` as a standalone network, its BatchNorm recalibrated on ``recal``."""
    net = cut(model, sub.spec, ranks).to(memory_format=torch.channels_last)
    with torch.autocast(recal.device.type, dtype=torch.bfloat16, enabled=recal.device.type == "cuda"):
        return recalibrate(net, (xb for xb, _ in recal))


def family_table(
    model: nn.Module,
    plan: ShrinkPlan,
    ranks: dict[str, torch.Tensor],
    data: Dataset,
    cfg: TrainConfig,
    device: torch.device,
    resolution: int | None,
) -> list[dict]:
    """Every subnet of the menu cut, recalibrated and scored: one row each (``result.json``'s
    ``subnets``), the smallest first; ``pareto`` marks the validation Pareto front of MACs and accuracy."""
    recal = recal_loader(data, plan, cfg, device, resolution)
    ac = device.type == "cuda"
    rows = []
    for sub in plan.subnets:
        net = cut_member(model, sub, ranks, recal)
        val = evaluate(net, eval_loader(data, cfg, device, resolution, split="val"), autocast=ac)
        test = evaluate(net, eval_loader(data, cfg, device, resolution), autocast=ac)  # reported, never used to choose
        rows.append(
            {
                "subnet": sub.subnet.name,
                "depth": sub.subnet.depth,
                "width": sub.subnet.width,
                "arch": sub.spec.name,
                "spec": sub.spec.to_dict(),
                "params": sub.params,
                "macs_per_sample": sub.macs_per_sample,
                "val_acc": val,
                "test_acc": test,
            }
        )
    front = pareto([(r["macs_per_sample"], r["val_acc"]) for r in rows])
    for r, on in zip(rows, front):
        r["pareto"] = on
    return rows


def pareto(points: list[tuple[float, float]]) -> list[bool]:
    """For each (cost, accuracy): no other point is at most as costly and at least as accurate, and better in one."""
    return [
        not any(c2 <= c and a2 >= a and (c2 < c or a2 > a) for j, (c2, a2) in enumerate(points) if j != i)
        for i, (c, a) in enumerate(points)
    ]
