"""Training throughput: growsearch's trainer against a minimal hand-written PyTorch loop.

Same model (a fresh VGG19 at the given width), same data (digits, in memory), same batch size
and optimizer, in one process. The hand loop is what a user writes with no framework: a
pre-normalised tensor, a random permutation, index slices, forward, backward, step; no
augmentation, no evaluation. growsearch's number is measured twice: its training steps only
(which include its on-batch augmentation) and with its per-epoch test evaluation.

    python benchmarks/throughput.py [--arch vgg19@0.25] [--epochs 5] [--device cpu]

Prints and saves benchmarks/results/throughput.md. With ``--matrix``: growsearch's trainer alone
on --data for --archs x --batches, eager and ``torch.compile``d, with the share of the GPU's
dense BF16 peak (results/throughput_matrix_DEVICE.md):

    python benchmarks/throughput.py --matrix --device cuda --data imagefolder:../shared/data/cifar10-jpeg.tar.gz
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import save_report

from growsearch.data.dataset import create_dataset
from growsearch.data.split import with_validation
from growsearch.model.arch import build_model, spec_for
from growsearch.plan.schedule import TrainConfig
from growsearch.train.loop import optimizer_for, train_stage


def hand_loop(arch: str, ds, epochs: int, cfg: TrainConfig, device: torch.device, channels_last: bool) -> float:
    """Samples/s of the simplest loop that trains the same model on the same tensors."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(spec_for(arch, ds.num_classes, ds.in_chans)).to(device, memory_format=fmt).train()
    mean = torch.tensor(ds.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(ds.std, device=device).view(1, -1, 1, 1)
    x = (((ds.x_train.to(device).float() / 255) - mean) / std).contiguous(memory_format=fmt)
    y = ds.y_train.to(device)
    opt = optimizer_for(model, cfg, cfg.lr)
    samples, elapsed = 0, 0.0
    for epoch in range(epochs + 1):  # epoch 0 is warm-up, not timed
        t0 = time.perf_counter()
        perm = torch.randperm(len(x), device=device)
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if epoch > 0:
            elapsed += time.perf_counter() - t0
            samples += len(x)
    return samples / elapsed


def growsearch_loop(arch: str, ds, epochs: int, cfg: TrainConfig, device: torch.device) -> tuple[float, float]:
    """(training-only samples/s, samples/s including per-epoch evaluation) of train_stage."""
    torch.manual_seed(0)
    model = build_model(spec_for(arch, ds.num_classes, ds.in_chans)).to(device, memory_format=torch.channels_last)
    times = []
    history, _ = train_stage(
        model,
        ds,
        epochs=epochs + 1,
        cfg=cfg,
        device=device,
        progress=False,
        on_epoch=lambda row: times.append(time.perf_counter()),
    )
    timed = history[1:]  # drop the warm-up epoch
    samples = len(ds.x_train) * len(timed)
    train_only = samples / sum(row["train_s"] for row in timed)
    with_eval = samples / (times[-1] - times[0])
    return train_only, with_eval


# Dense BF16 tensor-core peaks (TFLOP/s, without sparsity) from NVIDIA's datasheets, by device name.
PEAKS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAKS.items() if k in name), None)


def matrix(args, device: torch.device) -> None:
    """Images/s of growsearch's trainer for each arch x batch x (eager, compiled), and the share
    of the device's dense BF16 peak it reaches: training FLOPs = 3 x forward MACs x 2 per image
    (forward, and a backward of about twice the forward)."""
    from dataclasses import replace

    from growsearch.model.cost import macs_per_sample

    ds = with_validation(create_dataset(args.data), 0.1)  # train_stage scores every epoch on a validation split
    peak = peak_tflops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    rows = []
    for arch in args.archs.split(","):
        macs = macs_per_sample(
            build_model(spec_for(arch, ds.num_classes, ds.in_chans)), (ds.in_chans, ds.image_size, ds.image_size)
        )
        for batch in (int(b) for b in args.batches.split(",")):
            for compiled in [
                {"eager": False, "compiled": True, "reduce-overhead": "reduce-overhead"}[g]
                for g in args.graphs.split(",")
            ]:
                cfg = replace(TrainConfig(), batch_size=batch, lr_scaling="linear", compile=compiled)
                train_only, _ = growsearch_loop(arch, ds, args.epochs, cfg, device)
                share = train_only * 6 * macs / (peak * 1e12) if peak else None
                rows.append((arch, batch, compiled, train_only, share))
                print(
                    f"{arch} batch {batch} {_graph(compiled)}: {train_only:.0f} images/s"
                    + (f", {100 * share:.1f}% of dense BF16 peak" if share else ""),
                    flush=True,
                )
                # saved after every cell: a run cut short (a GPU lease) keeps what it measured
                _save_matrix(args, device, name, peak, len(ds.x_train), rows)


def _graph(mode: bool | str) -> str:
    return ("compiled" if mode else "eager") if isinstance(mode, bool) else f"compiled, {mode} (CUDA graphs)"


def _save_matrix(args, device: torch.device, name: str, peak: float | None, images: int, rows: list) -> None:
    lines = [
        f"# Training throughput on {args.data}: growsearch's trainer, eager and compiled",
        *(
            [
                "",
                f"growsearch {__import__('growsearch').__version__}: CUDA runs autotune cuDNN's convolution algorithms (cudnn.benchmark).",
            ]
            if device.type == "cuda"
            else []
        ),
        "",
        f"Device {device} ({name}), torch {torch.__version__}; {images} training images, {args.epochs} timed epochs after one warm-up epoch (which also compiles); "
        f"training steps only (augmentation included, evaluation not); LR scaled linearly with the batch. "
        + (
            f"Peak: {peak:g} dense BF16 TFLOP/s; training FLOPs = 6 x forward MACs per image."
            if peak
            else "No peak known for this device (--peak-tflops)."
        ),
        "",
        "| arch | batch | graph | images/s | share of dense BF16 peak |",
        "| --- | ---: | --- | ---: | ---: |",
        *[f"| {a} | {b} | {_graph(c)} | {v:.0f} | {f'{100 * sh:.1f}%' if sh else 'n/a'} |" for a, b, c, v, sh in rows],
        "",
        f"Command: `python benchmarks/throughput.py --matrix --device {args.device} --data {args.data} --archs {args.archs} --batches {args.batches} --graphs {args.graphs} --epochs {args.epochs}`",
    ]
    save_report("\n".join(lines) + "\n", args.out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="vgg19@0.25")
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs after one warm-up epoch")
    ap.add_argument("--repeats", type=int, default=3, help="alternate the two loops this many times; report medians")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--out",
        default=None,
        help="report file (default results/throughput.md, or results/throughput_matrix_DEVICE.md with --matrix)",
    )
    ap.add_argument(
        "--matrix",
        action="store_true",
        help="growsearch's trainer alone over --archs x --batches x (eager, compiled), with the share of the GPU's peak",
    )
    ap.add_argument(
        "--data", default="cifar10", help="--matrix: the dataset (e.g. imagefolder:../shared/data/cifar10-jpeg.tar.gz)"
    )
    ap.add_argument("--archs", default="vgg19,resnet18", help="--matrix: comma-separated archs")
    ap.add_argument("--batches", default="128,512", help="--matrix: comma-separated batch sizes")
    ap.add_argument(
        "--graphs",
        default="eager,compiled",
        help="--matrix: comma-separated: eager, compiled (torch.compile's default mode), reduce-overhead (CUDA graphs)",
    )
    ap.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="--matrix: the device's dense BF16 peak (default: from its name)",
    )
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.matrix:
        args.out = args.out or str(Path(__file__).parent / "results" / f"throughput_matrix_{device.type}.md")
        return matrix(args, device)
    args.out = args.out or str(Path(__file__).parent / "results" / "throughput.md")
    ds = with_validation(create_dataset("digits"), 0.1)  # train_stage scores every epoch on a validation split
    cfg = TrainConfig()
    hand, hand_cl, gs, gs_eval = [], [], [], []
    for r in range(args.repeats):
        hand.append(hand_loop(args.arch, ds, args.epochs, cfg, device, channels_last=False))
        hand_cl.append(hand_loop(args.arch, ds, args.epochs, cfg, device, channels_last=True))
        a, b = growsearch_loop(args.arch, ds, args.epochs, cfg, device)
        gs.append(a)
        gs_eval.append(b)
        print(
            f"repeat {r + 1}: hand {hand[-1]:.0f}/s, hand channels_last {hand_cl[-1]:.0f}/s, "
            f"growsearch {gs[-1]:.0f}/s (with eval {gs_eval[-1]:.0f}/s)",
            flush=True,
        )
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    h, hc, g, ge = med(hand), med(hand_cl), med(gs), med(gs_eval)
    lines = [
        "# Training throughput: growsearch trainer vs a minimal PyTorch loop",
        "",
        f"Model {args.arch} on digits ({len(ds.x_train)} training images, 1x32x32), batch {cfg.batch_size}, "
        f"device {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), torch {torch.__version__}. "
        f"{args.epochs} timed epochs after one warm-up epoch, median of {args.repeats} alternating repeats.",
        "",
        "| loop | samples/s | ratio to hand loop (NCHW) | ratio to hand loop (channels_last) |",
        "| --- | ---: | ---: | ---: |",
        f"| hand-written, NCHW (no augmentation, no eval) | {h:.0f} | 1.00 | {h / hc:.2f} |",
        f"| hand-written, channels_last (no augmentation, no eval) | {hc:.0f} | {hc / h:.2f} | 1.00 |",
        f"| growsearch `train_stage`, training steps (with crop augmentation) | {g:.0f} | {g / h:.2f} | {g / hc:.2f} |",
        f"| growsearch `train_stage`, including per-epoch test evaluation | {ge:.0f} | {ge / h:.2f} | {ge / hc:.2f} |",
        "",
        "Target: training steps ≥ 0.95× the hand loop. growsearch trains in channels_last memory format on CPU too;",
        "the like-for-like comparison is the last column (the same memory format, so the ratio is the trainer's own overhead:",
        "batch gather, normalisation, crop augmentation, LR scheduler).",
        "",
        "Command: `python benchmarks/throughput.py "
        + f"--arch {args.arch} --epochs {args.epochs} --repeats {args.repeats} --device {args.device}`",
    ]
    text = "\n".join(lines) + "\n"
    save_report(text, args.out)


if __name__ == "__main__":
    main()
