"""Resident memory of reading real photo folders: decoding, the memory-mapped cache, a run.

Each case runs in a fresh interpreter and reports the kernel's peak resident memory (VmHWM) over
the interpreter's resident memory once torch and growsearch are imported: what the dataset (and,
for a run, the model and its training) added. getrusage's ru_maxrss is not used: it survives
exec, so a child of a large process starts with its parent's size as its peak.

Datasets: a photo ImageFolder this script generates (10 classes, JPEGs of about 224 px, aspect
ratios 0.6 to 1.4; under $TMPDIR, never committed), and CIFAR-10 from ../shared/data when it is
there (all 60,000 JPEGs, decoded once into the cache).

    python benchmarks/data_memory.py [--photos 3000] [--no-cifar]

Prints and saves benchmarks/results/data_memory.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, save_report

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"

_LOAD = """
import json, sys, threading, time
import torch
from growsearch.data.dataset import create_dataset
def statuses():
    return {l.split(":")[0]: int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.endswith(" kB\\n")}
def status(key):
    return statuses()[key]
base = status("VmRSS")
# the kernel keeps no peak per kind of page: a thread samples them every 20 ms (a shorter spike is missed; every 5 ms cost a tenth of the training speed)
kinds = {k: v for k, v in statuses().items() if k in ("RssAnon", "RssFile")}
peak = dict(kinds)
def sample():
    while True:
        now = statuses()  # one read of the file per sample
        for k in kinds:
            peak[k] = max(peak[k], now[k])
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
t = time.perf_counter()
ds = create_dataset(sys.argv[1])
out = {"seconds": time.perf_counter() - t, "added": status("VmHWM") - base, "bytes": ds.x_train.numel() + ds.x_test.numel(), "shape": list(ds.x_train.shape)}
if len(sys.argv) > 2:  # then a one-stage run on it
    from growsearch.plan.schedule import Schedule, Stage, TrainConfig
    from growsearch.train.run import run_schedule
    loaded = status("VmHWM")
    if len(sys.argv) > 3:  # the trainer alone, batches resized to this side on the fly (a schedule's last stage must be native)
        from growsearch.data.split import with_validation
        from growsearch.model.arch import build_model, spec_for
        from growsearch.train.loop import train_stage
        split = with_validation(ds, 0.1)
        model = build_model(spec_for(sys.argv[2], ds.num_classes, ds.in_chans)).to(memory_format=torch.channels_last)
        t = time.perf_counter()
        hist, samples = train_stage(model, split, epochs=1, cfg=TrainConfig(), device=torch.device("cpu"), progress=False, resolution=int(sys.argv[3]))
        wall = time.perf_counter() - t
        split_s = {"train_s": hist[0]["train_s"], "val_s": hist[0]["val_s"]}
        out.update(run_added=status("VmHWM") - base, run_over_load=status("VmHWM") - loaded, wall_s=wall, time_split=split_s,
                   train_images=samples, images_per_s=samples / hist[0]["train_s"])
    else:
        r = run_schedule(Schedule(sys.argv[1], [Stage(ds.num_classes, sys.argv[2], 1)], seed=0, train=TrainConfig(batch_size=128)), dataset=ds, progress=False)
        out.update(run_added=status("VmHWM") - base, run_over_load=status("VmHWM") - loaded, wall_s=r.wall_s, time_split=r.time_split,
                   train_images=r.stages[0].samples, images_per_s=r.stages[0].samples / r.time_split["train_s"])
time.sleep(0.02)
out.update(anon_added=peak["RssAnon"] - kinds["RssAnon"], file_added=peak["RssFile"] - kinds["RssFile"])
print("RESULT " + json.dumps(out))
"""


def measure(
    name: str, cache: Path, arch: str | None = None, resolution: int | None = None, budget: str | None = None
) -> dict:
    env = {**os.environ, "GROWSEARCH_CACHE": str(cache), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("GROWSEARCH_MAX_RAM", None)
    if budget:
        env["GROWSEARCH_MAX_RAM"] = budget
    args = [name, *([arch] if arch else []), *([str(resolution)] if resolution else [])]
    proc = subprocess.run([sys.executable, "-c", _LOAD, *args], capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])


def photos(root: Path, train: int, test: int, side: int = 224) -> None:
    """JPEG "photos": smooth colour gradients with texture, 10 classes, wide and tall."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        for i in range(n):
            c, d = i % 10, root / split / f"class_{i % 10}"
            d.mkdir(parents=True, exist_ok=True)
            w, h = side, int(side * rng.uniform(0.6, 1.4))
            w, h = (w, h) if i % 2 else (h, w)
            yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
            img = np.stack([(xx * 255 * (c + 1) / 10), (yy * 255), np.full_like(xx, 25.0 * c)], -1) + rng.normal(
                0, 25, (h, w, 3)
            )
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / f"{i}.jpg", quality=85)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--photos", type=int, default=3000, help="training photos to generate (a fifth as many test photos)"
    )
    ap.add_argument("--no-cifar", action="store_true", help="skip CIFAR-10 even when ../shared/data has it")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="growsearch-bench-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        photos(tmp / "photos", args.photos, args.photos // 5)
        print(f"generated {args.photos + args.photos // 5} photos in {time.perf_counter() - t:.0f} s", flush=True)
        folder = f"imagefolder:{tmp / 'photos'}"
        cases = [
            ("photos ?size=64, decoded into the cache", f"{folder}?size=64", tmp / "cache", None),
            ("photos ?size=64, from the cache", f"{folder}?size=64", tmp / "cache", None),
            ("photos ?size=64, from the cache + 1 epoch vgg11@0.25", f"{folder}?size=64", tmp / "cache", "vgg11@0.25"),
            # the same run on a tenth of the images: what the model and its training take
            (
                "photos ?size=64&train_per_class=30, from the cache + 1 epoch vgg11@0.25",
                f"{folder}?size=64&train_per_class=30",
                tmp / "cache",
                "vgg11@0.25",
            ),
            ("photos at 224 px, decoded into the cache", folder, tmp / "cache", None),
            ("photos at 224 px, from the cache", folder, tmp / "cache", None),
            # a run at 224 px, where the images (542 MB) outweigh the training's own memory, and the
            # same run on a tenth of them: what grows with the data is file-backed pages of the map
            (
                "photos at 224 px, from the cache + 1 epoch resnet18_stem7@0.25",
                folder,
                tmp / "cache",
                "resnet18_stem7@0.25",
            ),
            (
                "photos at 224 px ?train_per_class=30, from the cache + 1 epoch resnet18_stem7@0.25",
                f"{folder}?train_per_class=30",
                tmp / "cache",
                "resnet18_stem7@0.25",
            ),
            (
                "photos ?size=64, no cache folder (decoded into memory)",
                f"{folder}?size=64",
                tmp / "afile" / "cache",
                None,
            ),
            # beyond memory: the 224 px photos (542 MB) under a budget of a third of their size, trained
            # on batches resized to 32 px so that the images, not the network, dominate memory
            (
                "photos at 224 px + 1 epoch of train_stage, vgg11@0.125 on batches resized to 32 px, no budget",
                folder,
                tmp / "cache",
                ("vgg11@0.125", 32, None),
            ),
            (
                "the same, GROWSEARCH_MAX_RAM=180M (a third of the images)",
                folder,
                tmp / "cache",
                ("vgg11@0.125", 32, "180M"),
            ),
        ]
        (tmp / "afile").write_text("a cache cannot be made under a file")
        if SHARED.is_file() and not args.no_cifar:
            cifar = f"imagefolder:{SHARED}"
            cases += [
                ("CIFAR-10, decoded into the cache", cifar, tmp / "cache", None),
                ("CIFAR-10, from the cache", cifar, tmp / "cache", None),
                (
                    "CIFAR-10 ?train_per_class=500, from the cache + 1 epoch vgg11@0.25",
                    f"{cifar}?train_per_class=500",
                    tmp / "cache",
                    "vgg11@0.25",
                ),
            ]
        for label, name, cache, arch in cases:
            arch, res, budget = arch if isinstance(arch, tuple) else (arch, None, None)
            m = measure(name, cache, arch, res, budget)
            m["case"] = label
            rows.append(m)
            run = (
                f"; run adds {m['run_over_load'] / 1e6:.0f} MB over the load (peak +{m['run_added'] / 1e6:.0f} MB), {m['images_per_s']:.0f} images/s, {m['wall_s']:.0f} s"
                if arch
                else ""
            )
            kinds = f"; peaks +{m['anon_added'] / 1e6:.0f} MB anonymous, +{m['file_added'] / 1e6:.0f} MB file-backed"
            print(
                f"{label}: {m['bytes'] / 1e6:.1f} MB of images, peak +{m['added'] / 1e6:.1f} MB ({m['added'] / m['bytes']:.2f}x) in {m['seconds']:.1f} s{run}{kinds}",
                flush=True,
            )
    lines = [
        "# Resident memory of reading datasets (benchmarks/data_memory.py)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. "
        "Peak resident memory (VmHWM) over the interpreter's own once torch and growsearch are imported, each case in a fresh process. "
        '"images" is the uint8 size of the train and test images the dataset holds; the issue\'s bound is 1.5x that for loading. '
        "The kernel keeps no peak per kind of page, so the anonymous (the process's own: arrays, model, batches) and file-backed "
        "(mapped files: the decode cache, and the libraries' code as it is paged in) peaks are sampled every 20 ms over the whole case.",
        "",
        "| case | images (MB) | load: peak added (MB) | x images | load s | run: peak added (MB) | run over load (MB) | peak anonymous added (MB) | peak file-backed added (MB) | run images/s | run wall s | time split (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in rows:
        run = (
            f"{m['run_added'] / 1e6:.0f} | {m['run_over_load'] / 1e6:.0f} | {m.get('anon_added', float('nan')) / 1e6:.0f} | {m.get('file_added', float('nan')) / 1e6:.0f} | "
            f"{m['images_per_s']:.0f} | {m['wall_s']:.1f} | "
            + ", ".join(f"{k[:-2]} {v:.1f}" for k, v in m["time_split"].items())
            if "run_added" in m
            else f" | | {m.get('anon_added', float('nan')) / 1e6:.0f} | {m.get('file_added', float('nan')) / 1e6:.0f} | | | "
        )
        lines.append(
            f"| {m['case']} | {m['bytes'] / 1e6:.1f} | {m['added'] / 1e6:.1f} | {m['added'] / m['bytes']:.2f} | {m['seconds']:.1f} | {run} |"
        )
    save_report("\n".join(lines) + "\n", RESULTS / "data_memory.md")
    (RESULTS / "data_memory.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
