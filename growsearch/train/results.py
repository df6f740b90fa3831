"""What a run leaves behind: the ``result.json`` types, stage checkpoints and the run folder.

A run folder holds ``stage{i}.pt`` after each stage and, once the run has finished,
``result.json`` and ``curve.png``. Writes are atomic and an overwritten folder is replaced only
when the new run has finished (:func:`prepare_out`, :func:`finish_run`), so a killed run never
leaves a half-written or mixed result. Checkpoints hold plain data only: they load with
``torch.load(weights_only=True)``.

Example:
    >>> from growsearch.train.results import RunResult
    >>> RunResult.load("runs/demo_run").M  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from growsearch._io import atomic_path, check_owned, owned
from growsearch.errors import GrowsearchError
from growsearch.model.arch import ArchSpec, build_model

__all__ = [
    "RESULT_FILE",
    "CheckpointError",
    "OutputExistsError",
    "RunResult",
    "StageResult",
    "load_checkpoint",
    "save_checkpoint",
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
    M: int  # samples × macs_per_sample, plus M_shrink
    test_acc: float  # on the stage's classes' test samples, after training (reported, never used to choose)
    wall_s: float  # the stage from growth to its checkpoint: training, per-epoch validation, its test
    params: int = 0  # parameters of the grown network
    spec: dict = field(default_factory=dict)  # the grown network's ArchSpec
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, val_acc, lr, samples, train_s, cum_M
    nonzero_macs_per_sample: int = 0  # MACs with zero weights skipped, at the end of the stage
    M_nonzero: int = 0  # samples × nonzero_macs_per_sample
    zero_mask: bool = False  # identity-kernel zeros were kept at zero while training
    prune: dict | None = (
        None  # before growth: ratio, params/MACs before and after, val/test accuracy right after pruning
    )
    resolution: int = 0  # input side (pixels) the stage trained and was tested at
    val_acc: float = 0.0  # on the stage's classes' validation samples, after training (what selection reads)
    stage: int = 0  # its position in the schedule, from 1 (0: written before growsearch 0.4 recorded it)
    fraction: float = 1.0  # the share of its classes' training images it saw (data_growth samples; else 1)
    M_shrink: int = 0  # of M, the shrink phase's subnet passes and BatchNorm recalibration (the last stage of a schedule with a shrink block)
    time_split: dict = field(
        default_factory=dict
    )  # where wall_s went: data_s, grow_s, train_s, val_s, family_s (a shrink phase), test_s and the rest, other_s
    weights_sha256: str = ""  # digest of the stage network's weights (weights_digest): its checkpoint is this run's own, not one swapped in


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
    iso_M_ratio: float | None = (
        None  # M / M_scratch(val_acc) on the frontier given, its cheapest network of any arch (None: no frontier)
    )
    iso_M_ratio_same: float | None = (
        None  # the same against the final arch's own references alone (None: the frontier trained none)
    )
    iso_M_ratio_ci: list[float] | None = (
        None  # 95 % interval of iso_M_ratio over the frontier's seeds (Frontier.ratio_interval)
    )
    beyond_frontier: bool | None = None  # more accurate than every budget: iso_M_ratio is then an upper bound
    iso: dict | None = None  # the ratio's details and the frontier it used (see growsearch.train.frontier.Frontier.iso)
    subnets: list[dict] | None = (
        None  # a shrink block's family: per subnet its spec, params, MACs, val/test accuracy after BN recalibration, pareto
    )
    shrink: dict | None = (
        None  # what the shrink phase cost: M_train (subnet passes), M_recal, passes, start_step, ramp_steps
    )
    time_split: dict = field(
        default_factory=dict
    )  # where the time went: load_s (reading the dataset, before wall_s) and wall_s's parts summed over the stages trained here, other_s the rest

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


def versions() -> dict:
    import timm

    from growsearch._version import __version__

    return {
        "growsearch": __version__,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
    }


def check_out_dir(out_dir: Path | None, overwrite: bool, *, replaces: bool | None = None) -> None:
    """Refuse an ``--out`` that cannot hold a run, before anything is written: a file, a folder
    that holds a run (unless ``overwrite``), a user's file under one of growsearch's output
    names, any file growsearch did not write when the command would replace the folder
    (``replaces``, default ``overwrite``), or a folder that cannot be written. Commands call it
    again inside their folder's lock (``held(..., check=...)``), so two on one folder never both pass."""
    if out_dir is None:
        return
    # one look at the folder: a user's file under an output name, or any when it is replaced whole
    check_owned(out_dir, OutputExistsError, replace_all=overwrite if replaces is None else replaces)
    if (out_dir / RESULT_FILE).exists() and not overwrite:
        raise OutputExistsError(
            f"{out_dir} already holds {RESULT_FILE}: choose another --out, or pass --overwrite to replace it"
        )
    probe = out_dir if out_dir.exists() else next((p for p in out_dir.parents if p.exists()), Path("."))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputExistsError(f"--out {out_dir}: {probe} is not writable: choose a folder you can write to")


_TMP = re.compile(r".+\.\d+\.tmp(\.[^.]+)?$")  # what atomic_path leaves behind when a write is killed


def prepare_out(out: Path, overwrite: bool) -> Path:
    """The folder to train into. A fresh ``out`` is used as it is (leftovers of killed writes
    removed). Overwriting a folder that holds anything builds the new run in a hidden sibling
    that replaces ``out`` only when the run has finished (:func:`swap_in`), so the earlier
    run stays whole until then and none of its files (a longer run's stage3.pt, say) survive.
    A symlinked ``out`` is followed: the folder it points to is the one replaced."""
    out = out.resolve()
    for stale in out.parent.glob(f".{out.name}.growsearch-*") if out.parent.exists() else []:
        shutil.rmtree(stale, ignore_errors=True)  # a killed earlier overwrite or swap
    if overwrite and out.is_dir() and any(out.iterdir()):
        work = out.with_name(f".{out.name}.growsearch-new-{os.getpid()}")
        work.mkdir(parents=True)
        return work
    out.mkdir(parents=True, exist_ok=True)
    mine = owned(out)
    for p in out.iterdir():
        if p.is_file() and _TMP.fullmatch(p.name) and p.name in mine:
            p.unlink(missing_ok=True)
    return out


def swap_in(work: Path, out: Path) -> None:
    """Replace ``out`` by the finished run in ``work`` (two renames; the old folder is then removed)."""
    out = out.resolve()
    if work.resolve() == out:
        return
    old = out.with_name(f".{out.name}.growsearch-old-{os.getpid()}")
    out.rename(old)
    work.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def write_json_atomic(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def finish_run(result: RunResult, work: Path, out: Path) -> None:
    """Write a finished run's ``result.json`` into ``work``, then put ``work`` in place of
    ``out`` (:func:`prepare_out`'s counterpart). Figures are the caller's (it reports the run)."""
    write_json_atomic(work / RESULT_FILE, result.to_dict())
    swap_in(work, out)


def weights_digest(model: nn.Module) -> str:
    """A SHA-256 of a network's state (every tensor's name, dtype, shape and bytes, on the CPU):
    what ``result.json`` records per stage, so a checkpoint of another run of the same shape is
    told apart from the run's own."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(
    path: Path, model: nn.Module, *, classes: list[int], stage: int, test_acc: float, val_acc: float, **extra
) -> None:
    """Weights plus arch spec, loadable with ``torch.load(weights_only=True)``; ``extra`` must be plain data."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {
        "spec": model.arch_spec.to_dict(),
        "state_dict": state,
        "classes": classes,
        "stage": stage,
        "test_acc": test_acc,
        "val_acc": val_acc,
    }
    with atomic_path(path) as tmp:
        torch.save({**ckpt, **extra}, tmp)


def read_checkpoint(path: str | Path, device: str | torch.device) -> dict:
    """A checkpoint's plain contents (``weights_only=True``), or one line saying why not."""
    import pickle

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint: is the run's folder complete?") from None
    except (pickle.UnpicklingError, Exception) as e:  # noqa: BLE001 - whatever torch raises (a KeyError for a text file) is one line
        # weights_only=True refuses anything that would run code on load; say so in one line
        # rather than show torch's advice to turn that protection off
        raise CheckpointError(
            f"{path} is not a loadable growsearch checkpoint ({type(e).__name__}); growsearch only loads plain weights "
            "(weights_only=True): re-create it with growsearch run"
        ) from None


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a stage network from its checkpoint; returns (model in eval mode, checkpoint dict).

    ``ckpt["classes"][j]`` is the dataset class that output ``j`` predicts and
    ``ckpt["class_names"][j]`` its name; ``ckpt["mean"]``/``ckpt["std"]`` are the per-channel
    normalisation of [0, 1] inputs the network trained with, so inference needs no dataset:
    ``model((x - mean) / std)`` for images ``x`` in [0, 1] at ``ckpt["resolution"]``.
    """
    ckpt = read_checkpoint(path, device)
    try:
        model = build_model(ArchSpec.from_dict(ckpt["spec"]))
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{path} is not a growsearch stage checkpoint ({type(e).__name__}: missing or mismatched spec/weights)"
        ) from None
    return model.to(device).eval(), ckpt
