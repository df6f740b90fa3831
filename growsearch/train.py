"""Stage trainer, ``run_schedule`` and ``run_baseline``.

Each stage: take the first k classes of the class order, grow the previous stage's network
into the stage's architecture (function-preserving Net2Net ops, new classifier rows), then
train it with SGD (Nesterov momentum) and a linear warm-up followed by cosine decay, or to
saturation with ``patience``. Every epoch is scored on the validation split (what the plateau
rule reads); the test split is read once, at the end of each stage, for the report. The
optimizer and its schedule are rebuilt after every growth: growth replaces the parameter
tensors, and the momentum buffers of the old, smaller tensors have no meaning for the new ones.

Example:
    >>> from growsearch import Schedule, Stage, run_schedule
    >>> sched = Schedule("digits", [Stage(5, "vgg11@0.125", 1), Stage(10, "vgg13@0.125", 1)])
    >>> result = run_schedule(sched, progress=False)
    >>> len(result.stages), result.M == sum(s.M for s in result.stages)
    (2, True)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F
from torch import nn

from growsearch._io import atomic_path
from growsearch.backbones import ArchSpec, build_model, get_family, parse_arch, spec_for
from growsearch.cost import count_params, macs_per_sample, stage_cost
from growsearch.data import BatchLoader, Dataset, DataError, create_dataset, subset, with_validation
from growsearch.errors import GrowsearchError
from growsearch.net2net import grow, rescale_stem, stem_kernel_at
from growsearch.plan import _plans
from growsearch.prune import apply_masks, identity_masks, nonzero_macs_per_sample, prune
from growsearch.schedule import Schedule, ScheduleError, Stage, TrainConfig

if TYPE_CHECKING:
    from growsearch.frontier import Frontier

__all__ = [
    "StageResult",
    "RunResult",
    "OutputExistsError",
    "CheckpointError",
    "run_schedule",
    "run_baseline",
    "train_stage",
    "evaluate",
    "load_checkpoint",
]

RESULT_FILE = "result.json"


class CheckpointError(GrowsearchError, ValueError):
    """A file that is not a growsearch stage checkpoint (or one that would need code to load)."""


class OutputExistsError(GrowsearchError, FileExistsError):
    """The output directory already holds results; growsearch never overwrites them silently."""


@dataclass
class StageResult:
    """What one stage cost and reached (a ``result.json`` ``stages`` entry)."""

    classes: int  # classes trained on
    arch: str  # arch name the stage asked for
    epochs: int  # epochs actually trained
    samples: int  # training samples processed (epochs × subset size)
    macs_per_sample: int  # forward MACs of the grown network, one input
    M: int  # samples × macs_per_sample
    test_acc: float  # on the stage's classes' test samples, after training (reported, never used to choose)
    wall_s: float  # training and per-epoch evaluation
    params: int = 0  # parameters of the grown network
    spec: dict = field(default_factory=dict)  # the grown network's ArchSpec
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, val_acc, lr, samples, train_s, cum_M
    nonzero_macs_per_sample: int = 0  # MACs with zero weights skipped, at the end of the stage
    M_nonzero: int = 0  # samples × nonzero_macs_per_sample
    zero_mask: bool = False  # identity-kernel zeros were kept at zero while training
    prune: dict | None = None  # before growth: ratio, params/MACs before and after, val/test accuracy right after pruning
    resolution: int = 0  # input side (pixels) the stage trained and was tested at
    val_acc: float = 0.0  # on the stage's classes' validation samples, after training (what selection reads)


@dataclass
class RunResult:
    """A run or a baseline: the ``result.json`` contract plus provenance."""

    M: int  # total forward MACs of training, Σ stage M
    test_acc: float  # final network, all classes, test split (reported only)
    wall_s: float
    macs_per_sample: int  # final network's inference MACs
    stages: list[StageResult]
    params: int = 0  # final network's parameters
    M_nonzero: int = 0  # Σ stage M counted with zero weights skipped (what a zero-skipping accelerator does)
    nonzero_macs_per_sample: int = 0  # final network's inference MACs with zero weights skipped
    spent_M: int = 0  # M of the stages this call trained (< M when a cached prefix was reused)
    reused_stages: int = 0  # leading stages loaded from the prefix cache instead of trained
    schedule: dict = field(default_factory=dict)
    class_order: list[int] = field(default_factory=list)
    device: str = "cpu"
    versions: dict = field(default_factory=dict)
    threads: int = 0  # torch intra-op threads it trained with: CPU results are bit-identical only at the same count
    val_acc: float = 0.0  # final network, all classes, validation split: what selection and the iso ratio read
    selection: str = "validation"  # "validation", or "test" when val_fraction is 0 (the paper's protocol)
    iso_M_ratio: float | None = None  # M / M_scratch(val_acc) on the frontier given (None: no frontier)
    beyond_frontier: bool | None = None  # more accurate than every budget: iso_M_ratio is then an upper bound
    iso: dict | None = None  # the ratio's details and the frontier it used (see growsearch.frontier.Frontier.iso)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunResult":
        stages = [StageResult(**s) for s in d["stages"]]
        return cls(**{**d, "stages": stages})

    @classmethod
    def load(cls, run_dir: str | Path) -> "RunResult":
        path = Path(run_dir) / RESULT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: is {run_dir} the --out of a growsearch run or baseline?")
        return cls.from_dict(json.loads(path.read_text()))


def _versions() -> dict:
    import timm

    from growsearch import __version__

    return {"growsearch": __version__, "torch": torch.__version__, "timm": timm.__version__, "python": platform.python_version()}


class DeviceError(GrowsearchError, ValueError):
    """A device that does not exist here (``--device cuda`` without a GPU, a misspelt name)."""


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"--device {device!r} is not a device: use cpu or cuda (cuda:N for GPU N)") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise DeviceError(f"--device {device} asked for a GPU this machine does not have ({torch.cuda.device_count()} visible): use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"--device {device!r}: growsearch trains on cpu or cuda")
    return dev


def _optimizer(model: nn.Module, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]  # BN affine and biases
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=True)


@torch.no_grad()
def evaluate(model: nn.Module, loader: BatchLoader, *, autocast: bool = False) -> float:
    """Top-1 accuracy (fraction) over ``loader``; leaves the model in eval mode."""
    model.eval()
    correct = total = 0
    for xb, yb in loader:
        with torch.autocast(loader.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(xb)
        correct += int((logits.argmax(1) == yb).sum())
        total += len(yb)
    return correct / max(total, 1)


def _eval_loader(
    data: Dataset, cfg: TrainConfig, device: torch.device, resolution: int | None = None, *, split: str = "test"
) -> BatchLoader:
    """An evaluation loader over ``split`` ("val" or "test") of ``data``."""
    x, y = (data.x_val, data.y_val) if split == "val" else (data.x_test, data.y_test)
    if x is None:
        raise DataError(f"{data.name} has no validation split: pass it through growsearch.data.with_validation first")
    return BatchLoader(
        x, y, batch_size=cfg.eval_batch_size, mean=data.mean, std=data.std,
        train=False, device=device, channels_last=True, resolution=resolution,
    )


def train_stage(
    model: nn.Module,
    data: Dataset,
    *,
    epochs: int,
    cfg: TrainConfig,
    lr: float | None = None,
    patience: int | None = None,
    seed: int = 0,
    device: torch.device,
    masks: dict[str, torch.Tensor] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    progress: bool = True,
    desc: str = "",
    resolution: int | None = None,
) -> tuple[list[dict], int]:
    """Train ``model`` on ``data`` in place; returns (per-epoch history, samples processed).

    ``data`` must hold a validation split (:func:`growsearch.data.with_validation`); every
    epoch is scored on it, and nothing here reads the test split.
    Fixed-length stages warm up linearly for ``cfg.warmup_epochs`` then decay with a cosine
    to zero. With ``patience`` (train to saturation), the LR stays at its peak after warm-up
    and drops 10x when the validation accuracy has not improved for ``patience`` epochs
    (``ReduceLROnPlateau``); the stage stops at the next such plateau, or at ``epochs``.
    ``masks`` (parameter name → keep-mask) are re-applied after every optimizer step.
    ``resolution`` resizes train and test batches to that side (antialiased).
    """
    from tqdm.auto import tqdm

    cuda = device.type == "cuda"
    peak = float(lr or cfg.lr)
    train_loader = BatchLoader(
        data.x_train, data.y_train, batch_size=cfg.batch_size, mean=data.mean, std=data.std,
        train=True, flip=data.flip, seed=seed, device=device, channels_last=True, resolution=resolution,
    )
    val_loader = _eval_loader(data, cfg, device, resolution, split="val")
    masks = {k: v.to(device) for k, v in (masks or {}).items()}
    opt = _optimizer(model, cfg, peak)
    steps_per_epoch = len(train_loader)
    warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    total = epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return 0.1 + 0.9 * step / warmup
        if patience is not None:
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=patience) if patience else None
    history: list[dict] = []
    samples, best, since_best = 0, -1.0, 0
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=True, unit="ep", dynamic_ncols=True)
    for epoch in bar:
        model.train()
        t_epoch = time.perf_counter()
        for xb, yb in train_loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(xb), yb, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if masks:
                apply_masks(model, masks)
            if plateau is None or sched.last_epoch < warmup:
                sched.step()
            samples += len(yb)
        if cuda:
            torch.cuda.synchronize()
        train_s = time.perf_counter() - t_epoch
        acc = evaluate(model, val_loader, autocast=cuda)
        lr_now = opt.param_groups[0]["lr"]
        row = {"epoch": epoch + 1, "val_acc": acc, "lr": lr_now, "samples": samples, "train_s": train_s}
        history.append(row)
        bar.set_postfix(acc=f"{acc:.3f}", lr=f"{lr_now:.3g}")
        if on_epoch is not None:
            on_epoch(row)
        if plateau is not None:
            since_best = 0 if acc > best else since_best + 1
            best = max(best, acc)
            plateau.step(acc)
            if lr_now <= peak * 0.1 * (1 + 1e-6) and since_best >= patience:
                break
    bar.close()
    return history, samples


def _check_out_dir(out_dir: Path | None, overwrite: bool) -> None:
    if out_dir is None:
        return
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"--out {out_dir} is a file, not a folder: choose a folder path")
    if (out_dir / RESULT_FILE).exists() and not overwrite:
        raise OutputExistsError(
            f"{out_dir} already holds {RESULT_FILE}: choose another --out, or pass --overwrite to replace it"
        )
    probe = out_dir if out_dir.exists() else next((p for p in out_dir.parents if p.exists()), Path("."))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputExistsError(f"--out {out_dir}: {probe} is not writable: choose a folder you can write to")


_TMP = re.compile(r".+\.\d+\.tmp(\.[^.]+)?$")  # what atomic_path leaves behind when a write is killed


def _prepare_out(out: Path, overwrite: bool) -> Path:
    """The folder to train into. A fresh ``out`` is used as it is (leftovers of killed writes
    removed). Overwriting a folder that holds anything builds the new run in a hidden sibling
    that replaces ``out`` only when the run has finished (:func:`_swap_in`), so the earlier
    run stays whole until then and none of its files (a longer run's stage3.pt, say) survive."""
    for stale in out.parent.glob(f".{out.name}.growsearch-*") if out.parent.exists() else []:
        shutil.rmtree(stale, ignore_errors=True)  # a killed earlier overwrite or swap
    if overwrite and out.is_dir() and any(out.iterdir()):
        work = out.with_name(f".{out.name}.growsearch-new-{os.getpid()}")
        work.mkdir(parents=True)
        return work
    out.mkdir(parents=True, exist_ok=True)
    for p in out.iterdir():
        if p.is_file() and _TMP.fullmatch(p.name):
            p.unlink(missing_ok=True)
    return out


def _swap_in(work: Path, out: Path) -> None:
    """Replace ``out`` by the finished run in ``work`` (two renames; the old folder is then removed)."""
    if work == out:
        return
    old = out.with_name(f".{out.name}.growsearch-old-{os.getpid()}")
    out.rename(old)
    work.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _write_json_atomic(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def save_checkpoint(
    path: Path, model: nn.Module, *, classes: list[int], stage: int, test_acc: float, val_acc: float, **extra
) -> None:
    """Weights plus arch spec, loadable with ``torch.load(weights_only=True)``; ``extra`` must be plain data."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {"spec": model.arch_spec.to_dict(), "state_dict": state, "classes": classes, "stage": stage, "test_acc": test_acc, "val_acc": val_acc}
    with atomic_path(path) as tmp:
        torch.save({**ckpt, **extra}, tmp)


def prefix_key(schedule: Schedule, upto: int, order: list[int]) -> str:
    """Content hash of everything that determines the network after stage ``upto``."""
    from growsearch import __version__

    payload = {
        "dataset": schedule.dataset, "seed": schedule.seed, "class_order": order, "train": asdict(schedule.train),
        "stages": [asdict(st) for st in schedule.stages[:upto]], "growsearch": __version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _find_prefix(schedule: Schedule, order: list[int], cache: Path) -> tuple[int, Path | None]:
    """The deepest cached prefix of ``schedule`` in ``cache``: (stages covered, file)."""
    for upto in range(len(schedule.stages), 0, -1):
        path = cache / f"{prefix_key(schedule, upto, order)}.pt"
        if path.is_file():
            return upto, path
    return 0, None


def _find_resume(schedule: Schedule, order: list[int], out: Path) -> tuple[int, Path | None]:
    """The last stage this run's folder already finished: (stages done, its checkpoint).

    Raises:
        OutputExistsError: the folder's checkpoints were trained by another schedule, dataset,
            seed, recipe or growsearch version (their content key differs), or the run finished.
    """
    for upto in range(len(schedule.stages), 0, -1):
        path = out / f"stage{upto}.pt"
        if not path.is_file():
            continue
        ckpt = _read_checkpoint(path, "cpu")
        if ckpt.get("key") != prefix_key(schedule, upto, order) or not all((out / f"stage{j}.pt").is_file() for j in range(1, upto)):
            raise OutputExistsError(
                f"{path} was not trained by this schedule (another schedule, dataset, seed, recipe or growsearch version): "
                "resume with the schedule file that started it, or pass --overwrite to start again"
            )
        return upto, path
    return 0, None


def _read_checkpoint(path: str | Path, device: str | torch.device) -> dict:
    """A checkpoint's plain contents (``weights_only=True``), or one line saying why not."""
    import pickle

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        # weights_only=True refuses anything that would run code on load; say so in one line
        # rather than show torch's advice to turn that protection off
        raise CheckpointError(
            f"{path} is not a loadable growsearch checkpoint ({type(e).__name__}); growsearch only loads plain weights "
            "(weights_only=True): re-create it with growsearch run"
        ) from None


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a stage network from its checkpoint; returns (model in eval mode, checkpoint dict).

    ``ckpt["classes"][j]`` is the dataset class that output ``j`` predicts.
    """
    ckpt = _read_checkpoint(path, device)
    try:
        model = build_model(ArchSpec.from_dict(ckpt["spec"]))
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a growsearch stage checkpoint ({type(e).__name__}: missing or mismatched spec/weights)") from None
    return model.to(device).eval(), ckpt


@contextmanager
def _torch_threads(n: int | None):
    """Run with ``n`` intra-op threads (restored afterwards); None leaves torch's setting."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _schedule_threads(fn):
    """Train with ``schedule.threads`` torch threads when the schedule names them: results are
    bit-reproducible only at equal thread counts (reductions run in another order otherwise)."""
    import functools

    @functools.wraps(fn)
    def wrapper(schedule: Schedule, **kwargs):
        if not isinstance(schedule, Schedule):
            raise ScheduleError(f"expected a growsearch.Schedule (e.g. growsearch.load_schedule(path)), got {type(schedule).__name__}")
        if schedule.threads is not None:
            schedule.validate()  # a bad thread count is a one-line error, not torch's
        with _torch_threads(schedule.threads):
            return fn(schedule, **kwargs)

    return wrapper


@_schedule_threads
def run_schedule(
    schedule: Schedule,
    *,
    dataset: Dataset | None = None,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    on_stage: Callable[[StageResult, nn.Module], None] | None = None,
    prefix_cache: str | Path | None = None,
    frontier: "Frontier | str | Path | None" = None,
    init_spec: ArchSpec | None = None,
    resume: bool = False,
) -> RunResult:
    """Train a cumulative Net2Net schedule stage by stage.

    Args:
        schedule: the stages to train; validated before any training.
        dataset: the loaded dataset (default: ``create_dataset(schedule.dataset)``); its
            validation split is carved here from ``schedule.train.val_fraction``/``val_seed``.
        out_dir: if given, writes ``stage{i}.pt`` after each stage and ``result.json`` and
            ``curve.png`` at the end (atomically; an existing result is an error unless
            ``overwrite``).
        device: ``"cuda"``/``"cpu"``; default CUDA when available. Training uses channels_last
            memory format; CUDA runs also use bf16 autocast.
        progress: show a progress bar per stage.
        on_epoch: called after every epoch with stage, epoch, val_acc, lr and cumulative M.
        on_stage: called after every trained stage with its result and the trained model (and
            once for the deepest stage loaded from ``prefix_cache``).
        prefix_cache: a directory of trained stage prefixes. Stages whose whole prefix (data,
            seed, recipe and every earlier stage) is cached are loaded instead of trained;
            each newly trained stage is added. ``result.M`` still charges every stage (what a
            user re-running the schedule pays); ``result.spent_M`` is what this call trained.
        frontier: a from-scratch frontier (a :class:`growsearch.frontier.Frontier` or its
            folder): checked against the dataset and validation split before training; the
            result then carries ``iso_M_ratio`` (M / M_scratch at the run's validation accuracy)
            and ``curve.png`` draws the run over the frontier.
        init_spec: build stage 1 from this exact spec (e.g. a run's pruned final network)
            instead of from its arch name; the frontier's ``--spec-from`` reference uses it.
        resume: continue a killed run in ``out_dir`` after its last finished stage (its
            checkpoints carry a content key of schedule, data, seed, recipe and version, and
            one that differs is refused). The result equals an uninterrupted run's (at the same
            thread count) apart from wall times.

    Returns:
        The run's costs and accuracies; ``result.M`` is Σ over stages of samples × MACs.

    Raises:
        ScheduleError: the schedule cannot run on this dataset (before training starts).
        DataError: the validation split cannot be made (e.g. a class with too few samples).
        FrontierError: ``frontier`` was measured on another dataset, class set or split.
        OutputExistsError: ``out_dir`` already holds a result and ``overwrite`` is false.
    """
    from growsearch.frontier import Frontier, load_frontier

    out = Path(out_dir) if out_dir is not None else None
    if resume and (out is None or overwrite):
        raise OutputExistsError("resume continues a run in its --out folder: give --out, and not --overwrite (which starts again)")
    if resume and (out / RESULT_FILE).exists():
        raise OutputExistsError(f"{out} holds a finished run ({RESULT_FILE}): nothing to resume")
    _check_out_dir(out, overwrite)
    dev = _device(device)  # before anything is written
    schedule.validate()
    ds = dataset if dataset is not None else create_dataset(schedule.dataset)
    schedule.validate(num_classes=ds.num_classes, image_size=ds.image_size)
    ds = with_validation(ds, schedule.train.val_fraction, schedule.train.val_seed)
    front = frontier if isinstance(frontier, Frontier) or frontier is None else load_frontier(frontier)
    if front is not None:
        front.check_compatible(ds)
    fam = get_family(spec_for(schedule.stages[0].arch, 1).family)
    plans = _plans(schedule, ds, init_spec)  # every stage's network and cost, before training
    if ds.image_size < fam.min_input:
        raise ScheduleError(f"{fam.name} needs inputs of at least {fam.min_input}px; {schedule.dataset} images are {ds.image_size}px")
    final_out = out
    if out is not None:
        out = _prepare_out(out, overwrite)
    order = schedule.resolved_class_order(ds.num_classes)
    native = ds.image_size

    model: nn.Module | None = None
    prev_data: Dataset | None = None
    stages: list[StageResult] = []
    masked: list[tuple[int, int]] = []  # (block, layer) of identity layers whose zeros are kept
    cum_M, t_run = 0, time.perf_counter()
    prev_res = native
    n = len(schedule.stages)
    cache = Path(prefix_cache) if prefix_cache is not None else None
    # Where to start: after the stages this run's own folder already finished (resume), or after
    # the deepest prefix in the cache; either way the same kind of keyed stage checkpoint.
    start, path = _find_resume(schedule, order, out) if resume else (0, None)
    resumed = start
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        c_start, c_path = _find_prefix(schedule, order, cache)
        if c_start > start:
            start, path = c_start, c_path
    if path is not None:
        model, ckpt = load_checkpoint(path, device=dev)
        model.train()
        stages = [StageResult(**d) for d in ckpt["stages"]]
        masked = [tuple(p) for p in ckpt["masked"]]
        cum_M = sum(s.M for s in stages)
        prev_data = subset(ds, order[: schedule.stages[start - 1].classes])
        prev_res = stages[-1].resolution or native
        if out is not None:  # every stage network of the run lands in its folder, reused ones too
            for j in range(resumed + 1, start + 1):
                shutil.copyfile(cache / f"{prefix_key(schedule, j, order)}.pt", out / f"stage{j}.pt")
        if on_stage is not None:
            on_stage(stages[-1], model)
    for i, st in enumerate(schedule.stages, 1):
        if i <= start:
            continue
        t0 = time.perf_counter()
        torch.manual_seed(schedule.seed * 1000 + i)  # per stage, so a resumed prefix continues identically
        data = subset(ds, order[: st.classes])
        prune_info = None
        plan = plans[i - 1]
        res = plan.resolution
        input_shape = (ds.in_chans, res, res)
        fam = parse_arch(st.arch)[0]
        rescale = fam.stem_kernel > 3 and schedule.train.rescale_kernels
        kernel = stem_kernel_at(fam.stem_kernel, res / native) if rescale else fam.stem_kernel
        if model is None:
            spec = replace(init_spec, num_classes=st.classes) if init_spec is not None else spec_for(st.arch, st.classes, ds.in_chans)
            model = build_model(replace(spec, stem_kernel=kernel) if kernel != fam.stem_kernel else spec)
        else:
            if st.prune_ratio > 0:
                prev_shape = (ds.in_chans, prev_res, prev_res)
                before = (count_params(model), macs_per_sample(model, prev_shape))
                model = prune(model, st.prune_ratio, input_shape=prev_shape)
                after = {
                    f"{split}_acc_after_prune": evaluate(
                        model, _eval_loader(prev_data, schedule.train, dev, prev_res, split=split), autocast=dev.type == "cuda"
                    )
                    for split in ("val", "test")
                }
                prune_info = {
                    "ratio": st.prune_ratio,
                    "params_before": before[0], "params_after": count_params(model),
                    "macs_before": before[1], "macs_after": macs_per_sample(model, prev_shape),
                    **after, "widths_after": [list(b) for b in model.arch_spec.widths],
                }
            old_depths = model.arch_spec.depths
            model = grow(model, to=st.arch, num_classes=st.classes, seed=schedule.seed * 1000 + i)
            inserted = [(b, l) for b, (o, d) in enumerate(zip(old_depths, model.arch_spec.depths)) for l in range(o, d)]
            masked = masked + inserted if st.zero_mask else []
            if rescale and res != prev_res:  # the stem's large kernels follow the image scale
                model = rescale_stem(model, kernel, res / prev_res)
        if model.arch_spec != plan.spec:  # the plan and its execution must agree; a mismatch is a growsearch bug
            raise RuntimeError(f"stage {i}: trained network {model.arch_spec} differs from its plan {plan.spec}")
        masks = identity_masks(model, masked) if masked else None
        # channels_last on CUDA (tensor cores) and on CPU too: oneDNN's NHWC convolutions trained
        # VGG19@0.25 on digits 18% faster than NCHW here (benchmarks/results/throughput.md).
        model = model.to(dev, memory_format=torch.channels_last)
        macs = plan.macs_per_sample  # counted on the planned network, which the check above says this is
        base_M = cum_M

        def epoch_cb(row: dict, *, _i=i, _macs=macs, _base=base_M) -> None:
            row["cum_M"] = _base + row["samples"] * _macs
            if on_epoch is not None:
                on_epoch({"stage": _i, **row})

        history, samples = train_stage(
            model, data, epochs=st.epochs, cfg=schedule.train, lr=st.lr, patience=st.patience,
            seed=schedule.seed * 1000 + i, device=dev, masks=masks, on_epoch=epoch_cb, progress=progress,
            desc=f"stage {i}/{n} {st.arch} {st.classes} cls" + (f" {res}px" if res != native else ""), resolution=res,
        )
        M = stage_cost(samples, macs)
        nz = nonzero_macs_per_sample(model, input_shape)
        cum_M += M
        val_acc = history[-1]["val_acc"]
        # The stage's one read of its test split: reported, never used to choose anything.
        acc = evaluate(model, _eval_loader(data, schedule.train, dev, res), autocast=dev.type == "cuda")
        result_i = StageResult(
            classes=st.classes, arch=st.arch, epochs=len(history), samples=samples, macs_per_sample=macs, M=M,
            test_acc=acc, wall_s=time.perf_counter() - t0, params=count_params(model),
            spec=model.arch_spec.to_dict(), history=history, nonzero_macs_per_sample=nz,
            M_nonzero=stage_cost(samples, nz), zero_mask=bool(masks), prune=prune_info, resolution=res, val_acc=val_acc,
        )
        stages.append(result_i)
        prev_data, prev_res = data, res
        # a keyed checkpoint: the stage network plus everything needed to continue after it
        key = prefix_key(schedule, i, order)
        ck = dict(
            classes=order[: st.classes], stage=i, test_acc=acc, val_acc=val_acc, resolution=res, key=key,
            stages=[asdict(r) for r in stages], masked=[list(p) for p in masked],
        )
        if out is not None:
            save_checkpoint(out / f"stage{i}.pt", model, **ck)
        if cache is not None:
            save_checkpoint(cache / f"{key}.pt", model, **ck)
        if on_stage is not None:
            on_stage(result_i, model)

    last = stages[-1]
    result = RunResult(
        M=cum_M, test_acc=last.test_acc, wall_s=time.perf_counter() - t_run, macs_per_sample=last.macs_per_sample,
        stages=stages, params=last.params, M_nonzero=sum(s.M_nonzero for s in stages),
        nonzero_macs_per_sample=last.nonzero_macs_per_sample, spent_M=cum_M - sum(s.M for s in stages[resumed:start]),
        reused_stages=start - resumed, schedule=schedule.to_dict(), class_order=order, device=str(dev),
        versions=_versions(), val_acc=last.val_acc, selection="test" if ds.val_fraction == 0 else "validation",
        threads=torch.get_num_threads(),
    )
    if front is not None:
        result.iso = front.iso(result.M, result.val_acc)
        result.iso_M_ratio, result.beyond_frontier = result.iso["iso_M_ratio"], result.iso["beyond_frontier"]
    if out is not None:
        _write_json_atomic(out / RESULT_FILE, result.to_dict())
        from growsearch.plots import plot_curve

        plot_curve(result, out / "curve.png", frontier=front)
        _swap_in(out, final_out)
    return result


def run_baseline(
    data: str,
    arch: str,
    *,
    epochs: int,
    patience: int | None = None,
    seed: int = 0,
    train: TrainConfig | None = None,
    dataset: Dataset | None = None,
    lr: float | None = None,
    spec: ArchSpec | None = None,
    **kwargs,
) -> RunResult:
    """Train ``arch`` from scratch on all classes with the same recipe: one budget of a frontier.

    With fixed ``epochs`` the LR warms up and decays to zero at the end of *this* budget (never a
    truncated longer schedule), as the from-scratch frontier requires.

    Args:
        data: dataset name (``"digits"``, ``"cifar100:/data"``, ...).
        arch: the final architecture of the schedules it is compared with.
        epochs, patience, seed, train, lr: as in a schedule's stage and recipe.
        dataset: the already-loaded ``data``, to skip loading it again.
        spec: train this exact network (e.g. a run's pruned final one) instead of ``arch``'s.
        **kwargs: the keyword options of :func:`run_schedule` (``out_dir``, ``device``, ...).

    Example:
        >>> r = run_baseline("digits", "vgg11@0.125", epochs=1, progress=False)
        >>> len(r.stages), r.stages[0].classes
        (1, 10)
    """
    ds = dataset if dataset is not None else create_dataset(data)
    sched = baseline_schedule(data, arch, ds.num_classes, epochs=epochs, patience=patience, seed=seed, train=train, lr=lr)
    return run_schedule(sched, dataset=ds, init_spec=spec, **kwargs)


def baseline_schedule(
    data: str, arch: str, num_classes: int, *, epochs: int, patience: int | None = None, seed: int = 0,
    train: TrainConfig | None = None, lr: float | None = None,
) -> Schedule:
    """The one-stage schedule :func:`run_baseline` trains (and a resumed frontier compares with)."""
    stage = Stage(classes=num_classes, arch=arch, epochs=epochs, patience=patience, lr=lr)
    return Schedule(dataset=data, stages=[stage], seed=seed, train=train or TrainConfig())
