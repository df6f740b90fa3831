"""The epoch loop: one stage's training, and the evaluation it reads.

SGD with Nesterov momentum, a linear warm-up, then a cosine decay to zero at the stage's end,
or, with ``patience``, training to saturation (the LR drops 10x at each plateau of the
validation accuracy). Every epoch is scored on the validation split; nothing here reads the
test split. CUDA runs use bf16 autocast; both devices train in channels_last.

Example:
    >>> import torch
    >>> from growsearch.train.loop import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

import functools
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from growsearch.data.dataset import DataError, Dataset
from growsearch.data.loader import BatchLoader
from growsearch.errors import GrowsearchError
from growsearch.model.prune import apply_masks
from growsearch.plan.schedule import Schedule, ScheduleError, TrainConfig

__all__ = [
    "Carry",
    "DeviceError",
    "DivergedError",
    "RunLR",
    "evaluate",
    "eval_loader",
    "lr_factor",
    "optimizer_for",
    "resolve_device",
    "schedule_threads",
    "torch_threads",
    "train_stage",
]


class DivergedError(GrowsearchError, ArithmeticError):
    """Training diverged (the loss became NaN or infinite): nothing it produced is a result."""


class DeviceError(GrowsearchError, ValueError):
    """A device that does not exist here (``--device cuda`` without a GPU, a misspelt name)."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"--device {device!r} is not a device: use cpu or cuda (cuda:N for GPU N)") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise DeviceError(
            f"--device {device} asked for a GPU this machine does not have ({torch.cuda.device_count()} visible): use --device cpu"
        )
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"--device {device!r}: growsearch trains on cpu or cuda")
    return dev


def optimizer_for(model: nn.Module, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """The stage's optimizer: torch's SGD (Nesterov; weight decay on conv/linear weights only),
    or :class:`~growsearch.train.ssgd.SSGD` with ``cfg.optimizer == "ssgd"``. SSGD's filter
    variant reweights each output channel of the family's channel graph as one group, and decays
    the channel's bias and BatchNorm γ and β with its filter (the ridge on the scaled variables
    covers the whole channel: without it a channel whose filter has gone to zero still emits β)."""
    from growsearch.model.prune import channel_groups
    from growsearch.train.ssgd import SSGD

    channels = (
        list(channel_groups(model).values()) if cfg.optimizer == "ssgd" and cfg.ssgd_structure == "filters" else None
    )
    in_channel = {id(p) for g in channels or [] for p in g}
    decay = [p for p in model.parameters() if p.dim() > 1 or id(p) in in_channel]
    no_decay = [p for p in model.parameters() if p.dim() <= 1 and id(p) not in in_channel]  # BN affine and biases
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "ssgd":
        return SSGD(
            groups,
            lr=lr,
            momentum=cfg.momentum,
            nesterov=cfg.momentum > 0,
            strength=cfg.ssgd_strength,
            eps=cfg.ssgd_eps,
            channels=channels,
        )
    return torch.optim.SGD(
        groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0
    )  # torch refuses Nesterov without momentum


def lr_factor(step: int, *, warmup: int, total: int, plateau: bool) -> float:
    """The LR multiplier at optimizer step ``step``: linear warm-up from 0.1 over ``warmup``
    steps, then a cosine to zero at ``total`` (or the peak held, for a plateau rule to lower)."""
    if step < warmup:
        return 0.1 + 0.9 * step / warmup
    if plateau:
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


@dataclass(frozen=True)
class RunLR:
    """One LR schedule over a whole run (``train.lr_schedule: global``), in optimizer steps from
    the run's start: the linear warm-up and the cosine to zero of :func:`lr_factor` stretched
    over all stages, so growth happens inside one schedule instead of restarting it. With
    ``rewarm``, the LR after each growth climbs from a tenth of the global value to ``peak``
    times it over that many steps, then returns onto the global schedule over as many again.

    Example:
        >>> lr = RunLR(warmup=10, total=100, starts=(50,), rewarm=(0,))
        >>> lr.factor(49) > lr.factor(50) > lr.factor(51)  # no restart at the growth at step 50
        True
        >>> RunLR(warmup=10, total=100, starts=(50,), rewarm=(5,)).factor(50) == 0.1 * lr.factor(50)
        True
    """

    warmup: int  # warm-up steps at the run's start
    total: int  # optimizer steps of the whole run: the LR reaches zero at the last
    starts: tuple[int, ...] = ()  # the first step of every stage after the first (a growth happened just before)
    rewarm: tuple[int, ...] = ()  # re-warm-up steps after each of those growths (0: none)
    peak: float = 1.0  # the re-warm-up's peak, a multiple of the global LR

    def factor(self, step: int) -> float:
        """The LR multiplier at the run's optimizer step ``step``."""
        f = lr_factor(step, warmup=self.warmup, total=self.total, plateau=False)
        for start, n in zip(reversed(self.starts), reversed(self.rewarm)):
            if step >= start:
                t = step - start
                if n and t < n:
                    f *= 0.1 + (self.peak - 0.1) * t / n
                elif n and t < 2 * n:
                    f *= self.peak + (1 - self.peak) * (t - n) / n
                break
        return f


@dataclass
class Carry:
    """What one stage's training hands to the next, read and written by :func:`train_stage`: the
    run's optimizer step count (where a :class:`RunLR` stands), the SGD momentum by parameter name
    (growth ops map it onto the grown network: ``growsearch.model.ops.Op.carry``), and the state
    of the batch-order generator (one stream of batches over the whole run)."""

    step: int = 0
    momentum: dict[str, torch.Tensor] | None = None
    batches: torch.Tensor | None = None


@functools.lru_cache(maxsize=None)
def check_compile(device_type: str, mode: bool | str = True) -> None:
    """Refuse ``train.compile`` in one line where ``torch.compile`` cannot work (no C++ compiler
    for CPU code, an unsupported Python or platform; CUDA graphs without CUDA), by compiling a
    tiny network once per process before anything is written."""
    if mode == "reduce-overhead" and device_type != "cuda":
        raise ScheduleError(
            "train.compile reduce-overhead captures CUDA graphs and needs --device cuda: set train.compile true or false on the CPU"
        )
    try:
        probe = torch.compile(nn.Linear(2, 2).to(device_type))
        probe(torch.zeros(1, 2, device=device_type)).sum().backward()
    except Exception as e:  # noqa: BLE001 - torch.compile fails in many ways (backend, compiler, platform): any one refuses the key
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ScheduleError(
            f"train.compile: torch.compile does not work here ({type(e).__name__}: {first}): set train.compile false"
        ) from None


def compiled(model: nn.Module, mode: bool | str) -> nn.Module:
    """``model`` as a stage trains it under ``train.compile``: itself (false), ``torch.compile``d
    (true), or compiled with CUDA graphs ("reduce-overhead": each step replays the recorded
    forward and backward kernels with one launch, where eager PyTorch launches several hundred; on
    an H100 VGG19 at batch 512 went from 63,000 to 99,000 images/s, benchmarks/gpu_step.py)."""
    if not mode:
        return model
    return torch.compile(model, mode="reduce-overhead" if mode == "reduce-overhead" else None)


def autotuned(fn):
    """Run ``fn`` (a function with a ``device`` keyword) with cuDNN autotuning on CUDA: cuDNN times
    its convolution algorithms for each new shape once and keeps the fastest (cudnn.benchmark). On
    an H100 the trainer's VGG19 step at batch 512 went from 45,000 to 63,000 images/s with it
    (benchmarks/gpu_step.py). It is switched on only for the call and restored after, so a user's
    own setting outside growsearch is left alone; CUDA runs are not bit-reproducible either way."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        dev = kwargs.get("device")
        if dev is None or torch.device(dev).type != "cuda":
            return fn(*args, **kwargs)
        before = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            return fn(*args, **kwargs)
        finally:
            torch.backends.cudnn.benchmark = before

    return wrapper


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


def eval_loader(
    data: Dataset, cfg: TrainConfig, device: torch.device, resolution: int | None = None, *, split: str = "test"
) -> BatchLoader:
    """An evaluation loader over ``split`` ("val" or "test") of ``data``."""
    x, y = (data.x_val, data.y_val) if split == "val" else (data.x_test, data.y_test)
    if x is None:
        raise DataError(
            f"{data.name} has no validation split: pass it through growsearch.data.split.with_validation first"
        )
    return BatchLoader(
        x,
        y,
        batch_size=cfg.eval_batch_size,
        mean=data.mean,
        std=data.std,
        train=False,
        device=device,
        channels_last=True,
        resolution=resolution,
    )


@autotuned
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
    run_lr: RunLR | None = None,
    carry: Carry | None = None,
    lr_scale: dict[str, torch.Tensor] | None = None,
    shrinker: Callable[[nn.Module, torch.Tensor, torch.Tensor, int], None] | None = None,
) -> tuple[list[dict], int]:
    """Train ``model`` on ``data`` in place; returns (per-epoch history, samples processed).

    ``data`` must hold a validation split (:func:`growsearch.data.split.with_validation`); every
    epoch is scored on it, and nothing here reads the test split.
    Fixed-length stages warm up linearly for ``cfg.warmup_epochs`` then decay with a cosine
    to zero. With ``patience`` (train to saturation), the LR stays at its peak after warm-up
    and drops 10x when the validation accuracy has not improved for ``patience`` epochs
    (``ReduceLROnPlateau``); the stage stops at the next such plateau, or at ``epochs``.
    ``masks`` (parameter name → keep-mask) are re-applied after every optimizer step.
    ``resolution`` resizes train and test batches to that side (antialiased).
    ``run_lr``: the stage's LR follows the run's one schedule from step ``carry.step`` (no
    warm-up or decay of its own). ``carry``: momentum and batch order to continue from (when
    set) and, at the end, where this stage left them. ``lr_scale`` (parameter name → a tensor
    of its shape): each step's update of that parameter is multiplied elementwise by it, an LR
    multiplier for some of its entries (``train.new_param_lr``). ``shrinker(model, batch,
    logits, step)``: called after each step's backward pass with the full network's (detached)
    logits and the stage's step index, to add the subnets' gradients before the optimizer steps
    (``growsearch.train.shrink.Shrinker``; each row then records ``subnet_lr``).
    """
    from tqdm.auto import tqdm

    cuda = device.type == "cuda"
    peak = cfg.peak_lr(lr)
    train_loader = BatchLoader(
        data.x_train,
        data.y_train,
        batch_size=cfg.batch_size,
        mean=data.mean,
        std=data.std,
        train=True,
        flip=data.flip,
        seed=seed,
        device=device,
        channels_last=True,
        resolution=resolution,
    )
    val_loader = eval_loader(data, cfg, device, resolution, split="val")
    # train.compile: this stage's network compiled once (a grown network is another graph, so
    # every stage compiles its own); the module itself is what is stepped, masked and saved
    fwd = compiled(model, cfg.compile)
    masks = {k: v.to(device) for k, v in (masks or {}).items()}
    opt = optimizer_for(model, cfg, peak)
    if carry is not None:
        _continue(model, opt, train_loader, carry)
    steps_per_epoch = len(train_loader)
    warmup = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    total = epochs * steps_per_epoch
    params = dict(model.named_parameters())
    scaled = [(params[k], v.to(params[k])) for k, v in (lr_scale or {}).items()]

    if run_lr is not None:
        step0 = carry.step if carry is not None else 0
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: run_lr.factor(step0 + step))
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: lr_factor(step, warmup=warmup, total=total, plateau=patience is not None)
        )
    plateau = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=patience) if patience else None
    )
    history: list[dict] = []
    samples, best, since_best, steps = 0, -1.0, 0, 0
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=True, unit="ep", dynamic_ncols=True)
    for epoch in bar:
        fwd.train()  # the module, or its compiled wrapper and the module with it
        t_epoch = time.perf_counter()
        loss_sum = torch.zeros((), device=device)  # summed on the device: one host sync per epoch, not per step
        for xb, yb in train_loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                logits = fwd(xb)
                loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
            loss_sum += loss.detach().float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if shrinker is not None:
                shrinker(model, xb, logits.detach(), steps)
            if scaled:
                before = [p.detach().clone() for p, _ in scaled]
            opt.step()
            if scaled:
                with (
                    torch.no_grad()
                ):  # the update scaled entry by entry: a per-entry LR multiplier (SGD's update is linear in the LR)
                    for (p, s), b in zip(scaled, before):
                        p.copy_(b + (p - b) * s)
            if masks:
                apply_masks(model, masks)
            if plateau is None or sched.last_epoch < warmup:
                sched.step()
            samples += len(yb)
            steps += 1
        if cuda:
            torch.cuda.synchronize()
        if not torch.isfinite(loss_sum):  # NaN or inf: every later number would be garbage, and reported as a result
            raise DivergedError(
                f"{desc or 'training'} diverged in epoch {epoch + 1} (the loss became {float(loss_sum):g}): "
                "lower the learning rate (lr) or the weight decay"
            )
        train_s = time.perf_counter() - t_epoch
        acc = evaluate(
            model, val_loader, autocast=cuda
        )  # eager: compiling the eval graph too would cost more than it saves
        lr_now = opt.param_groups[0]["lr"]
        row = {
            "epoch": epoch + 1,
            "val_acc": acc,
            "lr": lr_now,
            "samples": samples,
            "train_s": train_s,
            "val_s": time.perf_counter() - t_epoch - train_s,
        }
        if shrinker is not None:
            row["subnet_lr"] = lr_now * shrinker.last_factor
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
    if carry is not None:
        carry.step += steps
        carry.momentum = {
            k: opt.state[p]["momentum_buffer"].detach().clone()
            for k, p in params.items()
            if "momentum_buffer" in opt.state[p]
        }
        carry.batches = train_loader.generator.get_state()
    return history, samples


def _continue(model: nn.Module, opt: torch.optim.Optimizer, loader: BatchLoader, carry: Carry) -> None:
    """Start from where the last stage left off: its momentum (mapped onto this network by the
    growth ops) and its batch order."""
    for k, p in model.named_parameters():
        buf = (carry.momentum or {}).get(k)
        if buf is None:
            continue
        if buf.shape != p.shape:  # an op mapped the weights one way and their momentum another: a bug
            raise RuntimeError(f"carried momentum of {k} has shape {tuple(buf.shape)}, the parameter {tuple(p.shape)}")
        opt.state[p]["momentum_buffer"] = buf.to(p).clone()
    if carry.batches is not None:
        loader.generator.set_state(carry.batches)


@contextmanager
def torch_threads(n: int | None):
    """Run with ``n`` intra-op threads (restored afterwards); None leaves torch's setting."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def schedule_threads(fn):
    """Train with ``schedule.threads`` torch threads when the schedule names them: results are
    bit-reproducible only at equal thread counts (reductions run in another order otherwise)."""

    @functools.wraps(fn)
    def wrapper(schedule: Schedule, **kwargs):
        if not isinstance(schedule, Schedule):
            raise ScheduleError(
                f"expected a growsearch.Schedule (e.g. growsearch.load_schedule(path)), got {type(schedule).__name__}"
            )
        if schedule.threads is not None:
            schedule.validate()  # a bad thread count is a one-line error, not torch's
        with torch_threads(schedule.threads):
            return fn(schedule, **kwargs)

    return wrapper
