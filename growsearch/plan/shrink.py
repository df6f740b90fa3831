"""The shrink phase planned before training: which subnets, which of them train at every step,
how strongly, and what every forward pass costs.

The last stage's network (the *full* network) trains on every step as usual. From step
``start × steps`` on, each step also trains the smallest subnet and ``subnets_per_step`` others
drawn from the menu (the sandwich rule of BigNAS and DepS), each distilled in place from the full
network's outputs, with a loss weight that ramps from 0 to 1 over ``ramp_epochs`` (an LR ramp:
SGD's step is linear in the loss). The draws come from a generator seeded by the stage and the
step, so the plan knows every step's subnets and ``M`` counts every forward pass of every one,
plus the BatchNorm recalibration of each subnet at the end: the planned ``M`` is the trained ``M``.

Example:
    >>> from growsearch.model.arch import spec_for
    >>> from growsearch.plan.schedule import Shrink
    >>> p = plan_shrink(Shrink(widths=[0.5], start=0.5, ramp_epochs=0), spec_for("vgg11@0.25", 10, 1), resolution=8,
    ...                 samples_per_epoch=100, epochs=2, batch_size=50, seed=1)
    >>> [s.subnet.name for s in p.subnets], p.start_step, p.sample(1), p.sample(2)
    (['full:0.5', 'full:1'], 2, [], [0])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from growsearch.model.arch import ArchError, ArchSpec, build_model
from growsearch.model.cost import count_params, input_shape, macs_per_sample
from growsearch.model.elastic import Subnet, menu, subnet_spec
from growsearch.plan.schedule import ScheduleError, Shrink

__all__ = ["ShrinkPlan", "SubnetPlan", "plan_shrink"]


@dataclass(frozen=True)
class SubnetPlan:
    """One member of the family: its name, architecture and inference cost."""

    subnet: Subnet
    spec: ArchSpec
    macs_per_sample: int
    params: int


@dataclass(frozen=True)
class ShrinkPlan:
    """The shrink phase of a last stage, step by step (steps counted from the stage's first)."""

    subnets: tuple[SubnetPlan, ...]  # the menu, the smallest first and the full network last
    start_step: int  # the first step at which subnets may train
    ramp_steps: int  # steps over which their loss weight climbs from 0 to 1
    steps_per_epoch: int
    total_steps: int
    samples_per_epoch: int
    batch_size: int
    per_step: int  # random subnets per step besides the smallest
    seed: int
    temperature: float
    recal_images: int  # images each subnet's BatchNorm is recalibrated on (at most the stage's training set)

    def factor(self, step: int) -> float:
        """The subnets' loss weight (their LR's share of the schedule's) at ``step``."""
        if step < self.start_step:
            return 0.0
        return 1.0 if self.ramp_steps == 0 else min(1.0, (step - self.start_step) / self.ramp_steps)

    def sample(self, step: int) -> list[int]:
        """Indices into ``subnets`` trained at ``step`` besides the full network: the smallest and
        ``per_step`` others drawn without replacement from the rest; none while the weight is 0."""
        if self.factor(step) == 0:
            return []
        middle = list(range(1, len(self.subnets) - 1))
        k = min(self.per_step, len(middle))
        rng = np.random.default_rng([self.seed, step])
        return [0] + sorted(middle[j] for j in rng.choice(len(middle), size=k, replace=False)) if k else [0]

    def batch(self, step: int) -> int:
        """Samples in ``step``'s batch (the epoch's last batch holds the remainder)."""
        last = self.samples_per_epoch - (self.steps_per_epoch - 1) * self.batch_size
        return last if step % self.steps_per_epoch == self.steps_per_epoch - 1 else self.batch_size

    @cached_property
    def M_train(self) -> int:
        """Forward MACs of every subnet pass the phase trains (the full network's are the stage's own);
        replayed once per plan (every step's draw), however often the plan's M is read."""
        return sum(
            self.batch(t) * sum(self.subnets[i].macs_per_sample for i in self.sample(t))
            for t in range(self.start_step, self.total_steps)
        )

    @property
    def M_recal(self) -> int:
        """Forward MACs of recalibrating every subnet's BatchNorm statistics."""
        return self.recal_images * sum(s.macs_per_sample for s in self.subnets)

    @property
    def M(self) -> int:
        return self.M_train + self.M_recal


def plan_shrink(
    shrink: Shrink,
    spec: ArchSpec,
    *,
    resolution: int | None,
    samples_per_epoch: int,
    epochs: int,
    batch_size: int,
    seed: int,
    in_chans: int | None = None,
    image_hw: tuple[int, int] | None = None,
) -> ShrinkPlan:
    """The shrink phase of a last stage that trains ``spec`` for ``epochs`` on ``samples_per_epoch``
    images at ``resolution`` (None: the data's own ``image_hw``); ``ScheduleError`` naming the key
    when the family cannot shrink so."""
    try:
        subs = menu(spec, shrink.depths, shrink.widths)
    except ArchError as e:
        raise ScheduleError(f"shrink: {e}") from None
    plans = []
    for sub in subs:
        s = subnet_spec(spec, sub)
        model = build_model(s)  # untrained: MACs and parameters depend on the shape only
        plans.append(
            SubnetPlan(
                sub,
                s,
                macs_per_sample(model, input_shape(in_chans or spec.in_chans, resolution, image_hw)),
                count_params(model),
            )
        )
    per_epoch = math.ceil(samples_per_epoch / batch_size)  # BatchLoader's batches per epoch
    return ShrinkPlan(
        subnets=tuple(plans),
        start_step=int(round(shrink.start * epochs * per_epoch)),
        ramp_steps=int(round(shrink.ramp_epochs * per_epoch)),
        steps_per_epoch=per_epoch,
        total_steps=epochs * per_epoch,
        samples_per_epoch=samples_per_epoch,
        batch_size=batch_size,
        per_step=shrink.subnets_per_step,
        seed=seed,
        temperature=shrink.temperature,
        recal_images=min(shrink.recal_images, samples_per_epoch),
    )
