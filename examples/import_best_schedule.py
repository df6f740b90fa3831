"""Apply a searched schedule in your own training script.

After `growsearch search digits_vgg --out runs/search` (or `growsearch demo`), the cheapest
feasible schedule is in the study. This script loads it, then trains it stage by stage with
growsearch's building blocks: the grow op, the nested class subsets and the cost counter,
around a training step of your own (here a plain SGD loop, no growsearch trainer).

    python examples/import_best_schedule.py --storage sqlite:///runs/search/study.db --study digits_vgg
    python examples/import_best_schedule.py --schedule runs/search/best_schedule.json
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import growsearch
from growsearch.data import BatchLoader, subset
from growsearch.search import load_best


def my_train_epoch(model: torch.nn.Module, loader: BatchLoader, opt: torch.optim.Optimizer) -> None:
    model.train()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--storage")
    ap.add_argument("--study")
    ap.add_argument("--schedule", help="a best_schedule.json instead of a study")
    args = ap.parse_args()
    sched = growsearch.load_schedule(args.schedule) if args.schedule else load_best(args.storage, args.study)
    data = growsearch.create_dataset(sched.dataset)
    order = sched.resolved_class_order(data.num_classes)  # the order the search trained with
    shape = (data.in_chans, data.image_size, data.image_size)

    model, M = None, 0
    for i, stage in enumerate(sched.stages, 1):
        part = subset(data, order[: stage.classes])  # nested: every earlier class is still here
        if model is None:
            model, _ = growsearch.create_model(stage.arch, stage.classes, data.in_chans)
        else:  # function-preserving Net2Net growth, then fresh rows for the new classes
            model = growsearch.grow(model, to=stage.arch, num_classes=stage.classes)
        opt = torch.optim.SGD(model.parameters(), lr=stage.lr or sched.train.lr, momentum=0.9, nesterov=True)
        loader = BatchLoader(part.x_train, part.y_train, batch_size=128, mean=data.mean, std=data.std, train=True, flip=data.flip, seed=i)
        for _ in range(stage.epochs):
            my_train_epoch(model, loader, opt)
        M += stage.epochs * len(part.x_train) * growsearch.macs_per_sample(model, shape)
        print(f"stage {i}: {stage.classes} classes, {stage.arch}, {stage.epochs} epochs, cumulative M {M:.3g}")
    print("final model:", type(model).__name__, model.arch_spec.widths)


if __name__ == "__main__":
    main()
