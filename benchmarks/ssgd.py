"""SSGD's own claim on growsearch's data: the sparsity reached at iso-accuracy (issue 26, benchmark 1).

Three ways to a sparse network at the same training budget, each followed by the same magnitude
pruning sweep: plain SGD (magnitude pruning alone), L1-regularised SGD (loss + λ Σ|w|), and
SSGD (``train.optimizer: ssgd``, both structures). After training, each layer's smallest
weights (unstructured) or channels (structured: a channel's filter, bias and BatchNorm γ, β,
ranked by ``growsearch.model.prune.channel_norms``) are zeroed at rising fractions; the sparsity
at iso-accuracy is the largest fraction whose **validation** accuracy stays within 0.5 pt of the
dense network's; the test accuracy there is read once, for the report. 3 seeds.

One shared training loop (growsearch's BatchLoader, recipe, warm-up + cosine and optimizer
builder), written here because growsearch has no L1 penalty to compare with. Not part of the
package.

    python benchmarks/ssgd.py [--dataset digits] [--arch vgg11@0.25] [--epochs 20] [--weight-decay 5e-4] [--name ssgd_digits]
"""

from __future__ import annotations

import argparse
import json
import statistics as stats
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from _common import RESULTS, mean_std, pyplot, save_fig, save_report

from growsearch.data.loader import BatchLoader
from growsearch.model.arch import create_model
from growsearch.model.prune import channel_groups, channel_norms
from growsearch.plan.schedule import TrainConfig, load_split
from growsearch.train.loop import eval_loader, evaluate, lr_factor, optimizer_for

FRACTIONS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98]
BAND = 0.005  # iso-accuracy: validation accuracy within 0.5 pt of the dense network's


METHOD_KEYS = ["sgd", "l1", "ssgd-weights", "ssgd-filters"]  # --methods, in the order of methods()


def methods(l1: float, strength: float) -> dict[str, tuple[dict, float]]:
    """label → (recipe changes, L1 coefficient)."""
    return {
        "SGD + magnitude pruning": ({}, 0.0),
        f"L1-regularised SGD (λ = {l1:g})": ({}, l1),
        f"SSGD, weights (s = {strength:g})": (
            {"optimizer": "ssgd", "ssgd_structure": "weights", "ssgd_strength": strength},
            0.0,
        ),
        f"SSGD, filters (s = {strength:g})": (
            {"optimizer": "ssgd", "ssgd_structure": "filters", "ssgd_strength": strength},
            0.0,
        ),
    }


def train(
    data, arch: str, cfg: TrainConfig, epochs: int, l1: float, seed: int, device: torch.device, desc: str = ""
) -> torch.nn.Module:
    """One row's network; on CUDA with growsearch's bf16 autocast and channels_last. An epoch bar
    (tqdm, on stderr) shows progress: a full-width CPU row trains for about 30 min."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    model, _ = create_model(arch, num_classes=data.num_classes, in_chans=data.in_chans)
    gpu = device.type == "cuda"  # the CPU rows trained before --device existed: unchanged there
    model = model.to(device, memory_format=torch.channels_last if gpu else torch.contiguous_format)
    loader = BatchLoader(
        data.x_train,
        data.y_train,
        batch_size=cfg.batch_size,
        mean=data.mean,
        std=data.std,
        train=True,
        flip=data.flip,
        seed=seed,
        device=device,
        channels_last=gpu,
    )
    opt = optimizer_for(model, cfg, cfg.lr)
    total, warmup = epochs * len(loader), max(1, int(cfg.warmup_epochs * len(loader)))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: lr_factor(step, warmup=warmup, total=total, plateau=False)
    )
    weights = [p for p in model.parameters() if p.dim() > 1]
    model.train()
    for _ in tqdm(range(epochs), desc=desc, unit="ep", dynamic_ncols=True):
        for xb, yb in loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu):
                loss = F.cross_entropy(model(xb), yb)
            if l1:
                loss = loss + l1 * sum(w.abs().sum() for w in weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def sparsified(model: torch.nn.Module, frac: float, structured: bool) -> tuple[torch.nn.Module, float]:
    """A copy with ``frac`` of each layer's smallest weights (or channels) zeroed, and the share of
    conv/linear weights that are zero."""
    import copy

    m = copy.deepcopy(model)
    if structured:
        for members in channel_groups(m).values():
            norms = channel_norms(members)
            k = int(frac * len(norms))
            if k:
                gone = norms.argsort()[:k]
                for t in members:
                    t[gone] = 0
    else:
        for p in m.parameters():
            if p.dim() > 1:
                k = int(frac * p.numel())
                if k:
                    cut = p.abs().flatten().kthvalue(k).values
                    p[p.abs() <= cut] = 0
    ws = [p for p in m.parameters() if p.dim() > 1]
    zero = sum(int((p == 0).sum()) for p in ws) / sum(p.numel() for p in ws)
    return m, zero


def sweep(model, data, cfg: TrainConfig, structured: bool) -> dict:
    """Validation accuracy at each pruning fraction; the sparsity at iso-accuracy and its test accuracy."""
    dev = next(model.parameters()).device
    val, test = eval_loader(data, cfg, dev, None, split="val"), eval_loader(data, cfg, dev, None)
    rows = []
    for f in FRACTIONS:
        m, zero = sparsified(model, f, structured)
        rows.append({"fraction": f, "zero_weights": zero, "val_acc": evaluate(m, val)})
    dense = rows[0]["val_acc"]
    best = max((r for r in rows if r["val_acc"] >= dense - BAND), key=lambda r: r["fraction"])
    m, _ = sparsified(model, best["fraction"], structured)
    return {
        "rows": rows,
        "dense_val": dense,
        "iso_fraction": best["fraction"],
        "iso_zero_weights": best["zero_weights"],
        "iso_val": best["val_acc"],
        "iso_test": evaluate(m, test),
        "dense_test": evaluate(model, test),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--arch", default="vgg11@0.25")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="train seeds --first-seed..--seeds-1 only (one process per seed, side by side on one GPU); the report reads every seed on disk",
    )
    ap.add_argument(
        "--l1", type=float, default=1e-4, help="L1 coefficient of the L1-regularised SGD row (one value, not tuned)"
    )
    ap.add_argument("--strength", type=float, default=1.0, help="ssgd_strength of the SSGD rows")
    ap.add_argument(
        "--methods",
        nargs="+",
        default=["sgd", "l1", "ssgd-weights", "ssgd-filters"],
        choices=["sgd", "l1", "ssgd-weights", "ssgd-filters"],
        help="the rows to train and report (default all four)",
    )
    ap.add_argument(
        "--weight-decay",
        type=float,
        default=5e-4,
        help="weight decay of every row (the recipe's 5e-4; SSGD's zeroing comes from it)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast, channels_last: the full-width rows)")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: report the rows on disk (e.g. after processes that trained one method each)",
    )
    ap.add_argument("--name", default="ssgd_digits")
    args = ap.parse_args()
    if not 0 <= args.first_seed < args.seeds:
        ap.error(f"--first-seed {args.first_seed} trains nothing: give 0 <= --first-seed < --seeds ({args.seeds})")
    torch.set_num_threads(args.threads)
    out = RESULTS / args.name
    out.mkdir(parents=True, exist_ok=True)
    base = TrainConfig(weight_decay=args.weight_decay)
    data = None  # decoded on the first row to train: --report-only reads no images
    t0 = time.perf_counter()
    got: dict[str, list[dict]] = {}
    rows = methods(args.l1, args.strength)
    for label, (changes, l1) in (
        (k, v) for k, v in rows.items() if list(rows).index(k) in [METHOD_KEYS.index(m) for m in args.methods]
    ):
        cfg = replace(base, **changes)
        for seed in range(args.seeds):
            path = out / f"{label.split(' (')[0].replace(' ', '_').replace(',', '').replace('+', 'plus')}-s{seed}.json"
            setting = {
                "dataset": args.dataset,
                "arch": args.arch,
                "epochs": args.epochs,
                "weight_decay": args.weight_decay,
                "l1": l1,
                **changes,
            }
            kept = json.loads(path.read_text()) if path.is_file() else None
            # later sessions extend, not redo; a row of another setting (rows before the setting was
            # stored have none and are kept) is trained again
            if kept is not None and kept.get("setting", setting) == setting:
                got.setdefault(label, []).append(kept)
                continue
            if args.report_only or seed < args.first_seed:
                continue
            t = time.perf_counter()
            dev = torch.device(args.device)
            if data is None:
                data = load_split(args.dataset, base)
            model = train(data, args.arch, cfg, args.epochs, l1, seed, dev, desc=f"{label} seed {seed}")
            row = {
                "seed": seed,
                "setting": setting,
                "train_s": time.perf_counter() - t,
                "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU",
                "unstructured": sweep(model, data, cfg, False),
                "structured": sweep(model, data, cfg, True),
            }
            path.write_text(json.dumps(row, indent=1))
            got.setdefault(label, []).append(row)
            print(
                f"{label} seed {seed}: dense val {row['unstructured']['dense_val']:.4f}, unstructured iso {row['unstructured']['iso_zero_weights']:.2f}, "
                f"structured iso {row['structured']['iso_fraction']:.2f} ({row['train_s']:.0f} s)",
                flush=True,
            )
    report(args, got, time.perf_counter() - t0)


def report(args, got: dict[str, list[dict]], wall: float) -> None:
    lines = [
        f"# SSGD on {args.dataset}: sparsity at iso-accuracy",
        "",
        f"**Setting.** {args.dataset}, {args.arch}, {args.epochs} epochs, growsearch's recipe (batch 128, SGD Nesterov 0.9, peak LR 0.05, "
        f"1 warm-up epoch, cosine to zero, weight decay {args.weight_decay:g} on conv/linear weights; SSGD's filter variant also decays the channel's BN γ, β), "
        f"{', '.join(sorted({r.get('device', 'CPU') for rows in got.values() for r in rows}))}"
        f"{' (bf16 autocast, channels_last)' if any(r.get('device', 'CPU') != 'CPU' for rows in got.values() for r in rows) else ''}, "
        f"up to {args.seeds} seeds (the seeds column: the rows on disk, mean ± SD over them). After training, each layer's smallest weights (unstructured) or channels (structured: filter + BN γ, β, by "
        "channel_norms) are zeroed at rising fractions; **sparsity at iso-accuracy** = the largest fraction whose validation accuracy stays "
        f"within 0.5 pt of the dense network's; test accuracy there, read once. Benchmark time this call {wall:.0f} s (seeds on disk are loaded).",
        "",
        "| method | seeds | dense val acc % | dense test acc % | zero weights at iso-accuracy (unstructured) | test acc % there | channels removable at iso-accuracy (structured) | test acc % there |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, rows in got.items():
        u, s = [r["unstructured"] for r in rows], [r["structured"] for r in rows]
        lines.append(
            f"| {label} | {len(rows)} | {mean_std([100 * x['dense_val'] for x in u])} | {mean_std([100 * x['dense_test'] for x in u])} "
            f"| {mean_std([100 * x['iso_zero_weights'] for x in u], 1)} % | {mean_std([100 * x['iso_test'] for x in u])} "
            f"| {mean_std([100 * x['iso_fraction'] for x in s], 1)} % | {mean_std([100 * x['iso_test'] for x in s])} |"
        )
    lines += [
        "",
        "The paper (Lee, Fedorov, Rao, Garudadri, ICASSP 2020) reports that SSGD outperforms existing sparsification methods on MNIST "
        "and CIFAR-10; its table could not be read here (only the abstract was reachable), so no figure of it is quoted beside ours.",
        "",
        f"![sweeps]({args.name}.png)",
        "",
    ]
    reading = RESULTS / f"{args.name}_reading.md"
    if reading.is_file():
        lines.append(reading.read_text())
    save_report("\n".join(lines), RESULTS / f"{args.name}.md")
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, kind in zip(axes, ("unstructured", "structured")):
        for label, rows in got.items():
            xs = FRACTIONS
            ys = [stats.mean(r[kind]["rows"][j]["val_acc"] for r in rows) for j in range(len(xs))]
            ax.plot(xs, ys, marker="o", ms=3, label=label)
        ax.set_xlabel(f"fraction of each layer's {'weights' if kind == 'unstructured' else 'channels'} zeroed")
        ax.set_ylabel("validation accuracy (mean of seeds)")
        ax.set_title(kind)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    save_fig(fig, RESULTS / f"{args.name}.png")


if __name__ == "__main__":
    main()
