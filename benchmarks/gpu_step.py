"""Where a training step's time goes on a GPU: the trainer's step one change at a time (issue 25).

The throughput matrix (throughput.py --matrix) measures growsearch's trainer whole; this script
takes its step apart on the same network (VGG19 or ResNet18 at full width, CIFAR-shaped
3x32x32 batches already on the GPU): the step as the trainer runs it (bf16 autocast,
channels_last, Nesterov SGD with torch's default foreach implementation), then one change at a
time (cuDNN autotuning, fused SGD, a larger batch, bf16 weights, compiled graphs), the batch
loader's augmentation alone, and torch.profiler's kernel table of the trainer's step grouped
by kind (convolution, BatchNorm, elementwise, optimizer, copies). Share of peak as in the matrix:
6 x forward MACs per image against the card's dense BF16 peak.

    python benchmarks/gpu_step.py --device cuda [--arch vgg19] [--compile]

Prints and saves results/gpu_step_DEVICE.md after every row (a lease cut short keeps them).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import save_report
from throughput import peak_tflops

from growsearch.data.loader import BatchLoader
from growsearch.model.arch import build_model, spec_for
from growsearch.model.cost import macs_per_sample
from growsearch.plan.schedule import TrainConfig
from growsearch.train.loop import optimizer_for


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trainer_parts(arch: str, batch: int, device: torch.device) -> tuple:
    """(model, optimizer, batch, labels) as the trainer sets them up: the network in channels_last,
    Nesterov SGD with the LR scaled linearly to ``batch``, one fixed CIFAR-shaped batch on the device."""
    model = build_model(spec_for(arch, 10, 3)).to(device, memory_format=torch.channels_last).train()
    cfg = TrainConfig(batch_size=batch, lr_scaling="linear")
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    return model, optimizer_for(model, cfg, cfg.peak_lr()), x, torch.randint(0, 10, (batch,), device=device)


def step_rate(
    arch: str,
    batch: int,
    device: torch.device,
    *,
    benchmark=False,
    fused=False,
    bf16_weights=False,
    compile_mode=None,
    steps=40,
) -> float:
    """Images/s of forward + backward + optimizer step on one fixed batch already on the device."""
    torch.backends.cudnn.benchmark = benchmark
    torch.manual_seed(0)
    model, opt, x, y = trainer_parts(arch, batch, device)
    if bf16_weights:  # in place: the optimizer's parameters are the model's
        model.to(torch.bfloat16)
        x = x.to(torch.bfloat16)
    if fused:  # the same groups and hyperparameters, torch's fused CUDA kernel
        groups = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in opt.param_groups]
        d = opt.defaults
        opt = torch.optim.SGD(groups, lr=d["lr"], momentum=d["momentum"], nesterov=True, fused=True)
    fwd = torch.compile(model, mode=compile_mode) if compile_mode else model

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=not bf16_weights):
            loss = F.cross_entropy(fwd(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(10 if not compile_mode else 20):  # warm-up (cuDNN autotuning, compilation, CUDA graph capture)
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - t0)


def loader_rate(batch: int, device: torch.device, n: int = 45000) -> float:
    """Images/s of the trainer's BatchLoader alone (index gather, crop + flip on uint8, normalise)."""
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    loader = BatchLoader(
        x,
        torch.zeros(n, dtype=torch.long),
        batch_size=batch,
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        train=True,
        device=device,
        channels_last=True,
    )
    for _ in loader:  # warm-up epoch
        pass
    sync(device)
    t0 = time.perf_counter()
    for _ in loader:
        pass
    sync(device)
    return n / (time.perf_counter() - t0)


# Kernel names to kinds, first match wins (cuDNN's BatchNorm kernels are named cudnn::bn_*, so
# BatchNorm is looked for before convolution; layout transposes before both).
KINDS = [
    ("BatchNorm", ("batch_norm", "bn_fw", "bn_bw", "batchnorm", "welford")),
    ("optimizer", ("multi_tensor", "foreach", "fused_sgd", "sgd")),
    ("layout transpose", ("nhwctonchw", "nchwtonhwc", "transpose")),
    ("copy/cast", ("copy", "cast", "convert")),
    (
        "convolution/GEMM",
        (
            "conv",
            "cudnn",
            "implicit_gemm",
            "wgrad",
            "dgrad",
            "fprop",
            "xmma",
            "cutlass",
            "gemm",
            "nhwc",
            "sm90",
            "sm80",
        ),
    ),
    ("elementwise/reduction", ("elementwise", "vectorized", "relu", "threshold", "reduce", "softmax", "nll", "pool")),
]


def kernel_table(
    arch: str, batch: int, device: torch.device, benchmark: bool
) -> tuple[list[tuple[str, float, int]], list[tuple[float, str]]]:
    """(kind, ms of CUDA time per step, kernels per step) of the trainer's step, by torch.profiler,
    and its top kernels (ms per step, name)."""
    from torch.profiler import ProfilerActivity, profile

    torch.backends.cudnn.benchmark = benchmark
    model, opt, x, y = trainer_parts(arch, batch, device)
    steps = 10
    for i in range(steps + 10):
        if i == 10:
            sync(device)
            prof = profile(activities=[ProfilerActivity.CUDA if device.type == "cuda" else ProfilerActivity.CPU])
            prof.__enter__()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    prof.__exit__(None, None, None)
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    top = []
    for e in prof.key_averages():
        us = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
        if not us or e.key.startswith("aten::") or e.key.startswith("cuda"):  # kernels only: aten ops would count twice
            continue
        name = e.key.lower()
        kind = next((k for k, keys in KINDS if any(s in name for s in keys)), "other")
        by_kind[kind][0] += us / 1000 / steps
        by_kind[kind][1] += e.count // steps
        top.append((us / 1000 / steps, e.key[:90]))
    top = sorted(top, reverse=True)[:10]
    print("top kernels (ms/step):", *[f"  {ms:.3f} {k}" for ms, k in top], sep="\n", flush=True)
    return sorted(((k, v[0], v[1]) for k, v in by_kind.items()), key=lambda r: -r[1]), top


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--arch", default="vgg19")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also torch.compile's default and max-autotune-no-cudagraphs modes and CUDA graphs (reduce-overhead): minutes each",
    )
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    out = args.out or str(Path(__file__).parent / "results" / f"gpu_step_{device.type}.md")
    peak = peak_tflops(device, args.peak_tflops)
    macs = macs_per_sample(build_model(spec_for(args.arch, 10, 3)), (3, 32, 32))
    b = args.batch
    rows: list[tuple[str, float]] = []
    variants = [
        ("the trainer's step (bf16 autocast, channels_last, foreach SGD)", b, {}),
        ("+ cuDNN autotuning (cudnn.benchmark)", b, {"benchmark": True}),
        ("+ cuDNN autotuning + fused SGD", b, {"benchmark": True, "fused": True}),
        ("+ cuDNN autotuning + fused SGD, batch x2", 2 * b, {"benchmark": True, "fused": True}),
        ("+ cuDNN autotuning, bf16 weights (no autocast casts)", b, {"benchmark": True, "bf16_weights": True}),
        ("the trainer's step, batch 128", 128, {}),
        ("+ cuDNN autotuning, batch 128", 128, {"benchmark": True}),
    ]
    if args.compile:
        variants += [
            ("+ cuDNN autotuning, torch.compile default", b, {"benchmark": True, "compile_mode": "default"}),
            (
                "+ cuDNN autotuning, torch.compile reduce-overhead (CUDA graphs)",
                b,
                {"benchmark": True, "compile_mode": "reduce-overhead"},
            ),
            ("+ cuDNN autotuning, CUDA graphs, batch 128", 128, {"benchmark": True, "compile_mode": "reduce-overhead"}),
            (
                "+ cuDNN autotuning, torch.compile max-autotune-no-cudagraphs",
                b,
                {"benchmark": True, "compile_mode": "max-autotune-no-cudagraphs"},
            ),
        ]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (a dry run)"
    loader = loader_rate(b, device)
    kinds: dict[bool, list] = {}

    def save() -> None:
        share = lambda r: f"{100 * r * 6 * macs / (peak * 1e12):.1f}%" if peak else "n/a"  # noqa: E731
        lines = [
            f"# Where a training step's time goes: {args.arch} on {name}",
            "",
            f"`benchmarks/gpu_step.py`: {args.arch} at full width ({macs / 1e6:.0f} M forward MACs per 3x32x32 image), one fixed batch already on the GPU "
            f"(so no loader), torch {torch.__version__}; {'peak ' + format(peak, 'g') + ' dense BF16 TFLOP/s, ' if peak else ''}training FLOPs = 6 x forward MACs per image. "
            "Each row changes one thing from the row it names.",
            "",
            "| step | batch | images/s | share of dense BF16 peak |",
            "| --- | ---: | ---: | ---: |",
            *[f"| {label} | {bb} | {r:.0f} | {share(r)} |" for label, bb, r in rows],
            "",
            f"The trainer's batch loader alone (gather, crop + flip on uint8, normalise; 45,000 images, batch {b}): {loader:.0f} images/s.",
            "",
        ]
        for bench, (table, top) in kinds.items():
            total = sum(ms for _, ms, _ in table)
            lines += [
                f"CUDA kernel time per step of the trainer's step at batch {b}, cuDNN autotuning {'on' if bench else 'off'} (torch.profiler, 10 steps; {total:.2f} ms in all):",
                "",
                "| kind | ms/step | share | kernels/step |",
                "| --- | ---: | ---: | ---: |",
                *[f"| {k} | {ms:.2f} | {100 * ms / max(total, 1e-9):.0f}% | {n} |" for k, ms, n in table],
                "",
                "Its longest kernels (ms/step): " + "; ".join(f"`{k}` {ms:.3f}" for ms, k in top),
                "",
            ]
        lines.append(
            f"Command: `python benchmarks/gpu_step.py --device {args.device} --arch {args.arch} --batch {b}{' --compile' if args.compile else ''}`"
        )
        save_report("\n".join(lines) + "\n", out)

    for bench in (False, True):
        kinds[bench] = kernel_table(args.arch, b, device, bench)
        save()
    for label, bb, kw in variants:
        t0 = time.perf_counter()
        try:
            r = step_rate(args.arch, bb, device, **kw)
        except Exception as e:  # noqa: BLE001 - a variant torch cannot run here is reported, not fatal
            print(f"{label}: failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})", flush=True)
            continue
        rows.append((label, bb, r))
        print(f"{label}, batch {bb}: {r:.0f} images/s ({time.perf_counter() - t0:.0f} s)", flush=True)
        save()


if __name__ == "__main__":
    main()
