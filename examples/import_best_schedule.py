"""Apply a searched schedule in your own training script.

After `growsearch search digits_vgg --out runs/search` (or `growsearch demo`), the cheapest
feasible schedule is in the study. This script loads it, then trains it stage by stage with
growsearch's building blocks: the grow op, the nested class subsets and the cost counter,
around a training step of your own (here a plain SGD loop, no growsearch trainer). Every key
of the schedule is applied: class splits, architectures, epochs and per-stage LR, pruning
before growth, the zero mask, per-stage input resolution and the plateau rule (read on the
validation split, as the search did).

    python examples/import_best_schedule.py --storage sqlite:///runs/search/study.db --study digits_vgg
    python examples/import_best_schedule.py --schedule runs/search/best_schedule.json
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import growsearch
from growsearch.data.loader import BatchLoader
from growsearch.data.split import subset, with_validation
from growsearch.model.prune import apply_masks, identity_masks, prune
from growsearch.search.best import load_best


def my_train_epoch(model: torch.nn.Module, loader: BatchLoader, opt: torch.optim.Optimizer, masks: dict) -> None:
    model.train()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if masks:
            apply_masks(model, masks)  # zero_mask: the inserted identity kernels keep their zeros


@torch.no_grad()
def accuracy(model: torch.nn.Module, loader: BatchLoader) -> float:
    model.eval()
    hits = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
    return hits / max(1, len(loader.y))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--storage")
    ap.add_argument("--study")
    ap.add_argument("--schedule", help="a best_schedule.json instead of a study")
    args = ap.parse_args()
    sched = growsearch.load_schedule(args.schedule) if args.schedule else load_best(args.storage, args.study)
    data = with_validation(growsearch.create_dataset(sched.dataset), sched.train.val_fraction, sched.train.val_seed)
    order = sched.resolved_class_order(data.num_classes)  # the order the search trained with

    model, M, masked, prev_res = None, 0, [], data.image_size
    for i, stage in enumerate(sched.stages, 1):
        part = subset(data, order[: stage.classes])  # nested: every earlier class is still here
        res = stage.resolution or data.image_size  # a low-resolution early stage trains on resized batches
        if model is None:
            model, _ = growsearch.create_model(stage.arch, stage.classes, data.in_chans)
        else:
            if stage.prune_ratio:  # L1 filter pruning of the previous network, before it grows
                model = prune(model, stage.prune_ratio, input_shape=(data.in_chans, prev_res, prev_res))
            depths = model.arch_spec.depths
            # function-preserving Net2Net growth, then fresh rows for the new classes
            model = growsearch.grow(model, to=stage.arch, num_classes=stage.classes)
            inserted = [(b, l) for b, (o, d) in enumerate(zip(depths, model.arch_spec.depths)) for l in range(o, d)]
            masked = masked + inserted if stage.zero_mask else []
        masks = identity_masks(model, masked) if masked else {}
        opt = torch.optim.SGD(model.parameters(), lr=stage.lr or sched.train.lr, momentum=0.9, nesterov=True)
        common = dict(mean=data.mean, std=data.std, resolution=res)
        loader = BatchLoader(part.x_train, part.y_train, batch_size=128, train=True, flip=data.flip, seed=i, **common)
        val = BatchLoader(part.x_val, part.y_val, batch_size=512, train=False, **common)
        best, since, epochs = -1.0, 0, 0
        for _ in range(stage.epochs):  # with patience, epochs is the cap
            my_train_epoch(model, loader, opt, masks)
            epochs += 1
            acc = accuracy(model, val)
            best, since = (acc, 0) if acc > best else (best, since + 1)
            if stage.patience and since >= stage.patience:
                break
        M += epochs * len(part.x_train) * growsearch.macs_per_sample(model, (data.in_chans, res, res))
        prev_res = res
        print(
            f"stage {i}: {stage.classes} classes, {stage.arch} at {res} px, {epochs} epochs, val acc {acc:.4f}, cumulative M {M:.3g}"
        )
    print("final model:", type(model).__name__, model.arch_spec.widths)


if __name__ == "__main__":
    main()
