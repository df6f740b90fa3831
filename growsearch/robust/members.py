"""A run's stage networks as the members of mutual inference.

Each stage checkpoint of a run folder (``stage{i}.pt``) is one member: its network, the dataset
classes its outputs predict (``classes[j]`` for output ``j``), its validation accuracy (the
default vote weight) and the resolution it was trained at.

Example:
    >>> from growsearch.robust.members import load_members
    >>> [m.stage for m in load_members("runs/demo_run")]  # doctest: +SKIP
    [1, 2, 3]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from growsearch.errors import GrowsearchError

__all__ = ["RobustnessError", "Member", "family_members", "member_from_checkpoint", "load_members"]


class RobustnessError(GrowsearchError, ValueError):
    """A robustness evaluation that cannot run as asked; the message names the fix."""


@dataclass
class Member:
    """One stage network of a run, in eval mode; output ``j`` predicts dataset class ``classes[j]``."""

    model: nn.Module
    classes: list[int]
    stage: int
    test_acc: float  # on its own classes' test samples, after its stage (reported only)
    arch: str = ""
    resolution: int | None = None  # input side it trained at (inputs are resized to it); None: as given
    val_acc: float = 0.0  # on its own classes' validation samples: the default MI weight


def _stage_files(run_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for p in run_dir.glob("stage*.pt"):
        m = re.fullmatch(r"stage(\d+)\.pt", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def member_from_checkpoint(path: str | Path, stage: int, *, device: str | torch.device = "cpu") -> Member:
    """The stage network saved at ``path`` (a ``stage{i}.pt`` or a prefix-cache entry)."""
    from growsearch.train.results import load_checkpoint

    model, ckpt = load_checkpoint(path, device=device)
    if "val_acc" not in ckpt:
        raise RobustnessError(
            f"{path} has no validation accuracy (saved by growsearch < 0.2, before the validation split): "
            "re-run its schedule with this version"
        )
    return Member(
        model,
        [int(c) for c in ckpt["classes"]],
        int(ckpt.get("stage", stage)),
        float(ckpt.get("test_acc", 1.0)),
        model.arch_spec.name,
        ckpt.get("resolution"),
        float(ckpt["val_acc"]),
    )


def load_members(run_dir: str | Path, *, device: str | torch.device = "cpu") -> list[Member]:
    """Every stage network a run saved (``stage{i}.pt``), in stage order."""
    run = Path(run_dir)
    files = _stage_files(run)
    if not files:
        raise RobustnessError(
            f"{run} has no stage checkpoints (stage{{i}}.pt): mutual inference needs every stage's network; "
            "pass the --out directory of a growsearch run"
        )
    return [member_from_checkpoint(path, i, device=device) for i, path in files]


def family_members(
    run_dir: str | Path, result, *, chosen: str = "pareto", device: str | torch.device = "cpu"
) -> list[Member]:
    """A shrink run's subnets as the members of mutual inference: the validation Pareto front
    (``chosen="pareto"``) or every subnet, each cut and recalibrated as the run scored it, from the
    smallest to the full network (the last member, which the final columns report)."""
    from growsearch.train.family import family_networks, family_rows

    rows = family_rows(result, run_dir)
    picked = [
        r for r in rows if chosen == "all" or r["pareto"] or r["subnet"] == rows[-1]["subnet"]
    ]  # the full network always
    classes = list(result.class_order[: result.stages[-1].classes])
    res = result.stages[-1].resolution or None
    return [
        Member(net, classes, k, now["test_acc"], r["subnet"], res, now["val_acc"])
        for k, (r, (net, now)) in enumerate(
            zip(picked, family_networks(run_dir, [r["subnet"] for r in picked], device=device)), 1
        )
    ]


def _check_members_match(run: Path, members: Sequence[Member], info) -> None:
    """Refuse stage checkpoints that are not the ones ``result.json`` describes (a stale
    ``stage3.pt`` of an earlier, longer run would otherwise vote as the final network)."""
    if len(members) != len(info.stages):
        raise RobustnessError(
            f"{run} holds {len(members)} stage checkpoints but its result.json has {len(info.stages)} stages: "
            "checkpoints of another run are mixed in; re-run the schedule into an empty --out"
        )
    from growsearch.train.results import weights_digest

    for m, st in zip(members, info.stages):
        if st.weights_sha256 and weights_digest(m.model) != st.weights_sha256:
            raise RobustnessError(
                f"{run}/stage{m.stage}.pt is not this run's stage {m.stage} network (its weights differ from the digest in "
                "result.json: another run's checkpoint?): re-run the schedule into an empty --out"
            )
        if len(m.classes) != st.classes or (st.spec and m.model.arch_spec.to_dict()["widths"] != st.spec["widths"]):
            raise RobustnessError(
                f"{run}/stage{m.stage}.pt does not match stage {m.stage} of its result.json ({len(m.classes)} vs {st.classes} classes "
                f"or other widths): re-run the schedule into an empty --out"
            )
