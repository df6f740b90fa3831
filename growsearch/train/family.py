"""A shrink run's family after training: cut a subnet out of the run folder, and price the
family against each member's own from-scratch frontier.

:func:`cut_subnet` rebuilds the last stage's network from its checkpoint, cuts the subnet with
the channel ranks frozen during training, recalibrates its BatchNorm on the same fixed sample of
training images the run used, and scores it again: the accuracy ``result.json`` recorded for it
is reproduced. :func:`family_ratio` is the honest cost of the family: the run's whole M divided
by the sum, over the chosen subnets, of what training each one from scratch costs to reach its
validation accuracy, read off a frontier of that subnet's own architecture
(``growsearch baseline --arch`` of its arch name, or ``--spec-from`` a cut subnet's folder).

Example:
    >>> from growsearch.train.family import cut_subnet
    >>> net, row, now = cut_subnet("runs/family", subnet="vgg11:0.5")  # doctest: +SKIP
    >>> now["val_acc"] == row["val_acc"]  # the run's recorded accuracy, reproduced  # doctest: +SKIP
    True
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from growsearch._io import held
from growsearch.data.split import stage_data
from growsearch.errors import GrowsearchError
from growsearch.model.arch import ArchSpec, spec_for
from growsearch.model.elastic import Subnet
from growsearch.plan.planner import plan_schedule
from growsearch.plan.schedule import Schedule, load_split
from growsearch.train.loop import eval_loader, evaluate, resolve_device
from growsearch.train.results import (
    OutputExistsError,
    RunResult,
    StageResult,
    check_out_dir,
    finish_run,
    load_checkpoint,
    prepare_out,
    save_checkpoint,
    versions,
)
from growsearch.train.shrink import cut_member, recal_loader

if TYPE_CHECKING:
    from growsearch.train.frontier import Frontier

__all__ = [
    "FamilyError",
    "SUBNET_FILE",
    "choose_subnet",
    "cut_subnet",
    "family_networks",
    "family_ratio",
    "family_rows",
    "matches",
    "own_reference",
    "write_subnet",
]

SUBNET_FILE = "subnet.pt"


class FamilyError(GrowsearchError, ValueError):
    """A run folder without a family, or a subnet the family does not hold."""


def family_rows(result: RunResult, run_dir: str | Path) -> list[dict]:
    """The run's subnets table, or ``FamilyError`` when its schedule had no shrink block."""
    if not result.subnets:
        raise FamilyError(
            f'{run_dir} holds no subnets: its schedule has no shrink block (add one, see README "Grow, then shrink")'
        )
    return result.subnets


def _network(run_dir: str | Path, n: int) -> Path:
    """The family's network: a run folder's last ``stage{n}.pt``, or the ``network.pt`` that
    ``growsearch export -o DIR`` fetched from a study (the best trial's last stage)."""
    for name in (f"stage{n}.pt", "network.pt"):
        if (Path(run_dir) / name).is_file():
            return Path(run_dir) / name
    raise FamilyError(
        f"{run_dir} holds no stage{n}.pt (nor an exported network.pt): pass the --out of the run, or an export folder"
    )


def choose_subnet(
    result: RunResult, *, subnet: str | None = None, max_macs: float | None = None, run_dir: str | Path = "the run"
) -> dict:
    """The row of ``subnet`` (``"vgg13:0.5"``), or of the most accurate subnet on validation whose
    inference MACs are at most ``max_macs``."""
    rows = family_rows(result, run_dir)
    if (subnet is None) == (max_macs is None):
        raise FamilyError("name one subnet: give --spec DEPTH:WIDTH (e.g. vgg13:0.5) or --max-macs X")
    if subnet is not None:
        name = Subnet.parse(subnet).name
        hit = next((r for r in rows if r["subnet"] == name), None)
        if hit is None:
            raise FamilyError(f"the family has no subnet {name}: choose one of {', '.join(r['subnet'] for r in rows)}")
        return hit
    fits = [r for r in rows if r["macs_per_sample"] <= max_macs]
    if not fits:
        smallest = min(r["macs_per_sample"] for r in rows)
        raise FamilyError(
            f"no subnet needs at most {max_macs:.4g} MACs per image (the smallest needs {smallest}): raise --max-macs"
        )
    return max(fits, key=lambda r: (r["val_acc"], -r["macs_per_sample"]))  # chosen on validation, never test


@dataclass
class _Opened:
    """A shrink run's last network, data, plan and frozen ranks, loaded once; cuts any of its subnets."""

    run_dir: str | Path
    result: RunResult
    ckpt: dict
    model: nn.Module
    plan: Any  # the last stage's StagePlan
    data: Any  # the last stage's data view
    train: Any  # the run's TrainConfig
    device: torch.device

    @classmethod
    def load(cls, run_dir: str | Path, device: str | torch.device | None) -> "_Opened":
        result = RunResult.load(run_dir)
        family_rows(result, run_dir)
        dev = resolve_device(device)
        schedule = Schedule.from_dict(result.schedule, source=f"{run_dir}/result.json")
        model, ckpt = load_checkpoint(_network(run_dir, len(schedule.stages)), device=dev)
        ds = load_split(schedule.dataset, schedule.train)
        last = schedule.stages[-1]
        data = stage_data(ds, result.class_order[: last.classes], last.fraction, schedule.seed)
        return cls(run_dir, result, ckpt, model, plan_schedule(schedule, dataset=ds)[-1], data, schedule.train, dev)

    def cut(self, names: list[str]) -> list[tuple[nn.Module, dict]]:
        """Each named subnet cut, recalibrated on the run's sample, and scored again (``val_acc``, ``test_acc``)."""
        rows = {r["subnet"]: r for r in self.result.subnets}
        ranks = {g: torch.tensor(r, dtype=torch.long) for g, r in self.ckpt["shrink"]["ranks"].items()}
        res, ac = self.plan.resolution, self.device.type == "cuda"
        recal = recal_loader(self.data, self.plan.shrink, self.train, self.device, res)
        out = []
        for name in names:
            sub = next(s for s in self.plan.shrink.subnets if s.subnet.name == name)
            if sub.spec.to_dict() != rows[name]["spec"]:
                raise FamilyError(
                    f"{self.run_dir}: subnet {name} plans as another network than the run recorded: the run was made by another growsearch version"
                )
            net = cut_member(self.model, sub, ranks, recal)
            now = {
                f"{split}_acc": evaluate(
                    net, eval_loader(self.data, self.train, self.device, res, split=split), autocast=ac
                )
                for split in ("val", "test")
            }
            out.append((net, now))
        return out


def cut_subnet(
    run_dir: str | Path,
    *,
    subnet: str | None = None,
    max_macs: float | None = None,
    device: str | torch.device | None = None,
) -> tuple[nn.Module, dict, dict]:
    """The subnet of a shrink run as a standalone network (eval mode, BatchNorm recalibrated as the
    run did); returns (network, its recorded row, the accuracies it reaches now: ``val_acc``,
    ``test_acc``)."""
    opened = _Opened.load(run_dir, device)
    return _cut_one(opened, subnet, max_macs)


def _cut_one(opened: _Opened, subnet: str | None, max_macs: float | None) -> tuple[nn.Module, dict, dict]:
    row = choose_subnet(opened.result, subnet=subnet, max_macs=max_macs, run_dir=opened.run_dir)
    ((net, now),) = opened.cut([row["subnet"]])
    return net, row, now


def family_networks(
    run_dir: str | Path, names: list[str], *, device: str | torch.device | None = None
) -> list[tuple[nn.Module, dict]]:
    """The subnets ``names`` of a shrink run, each cut and recalibrated as the run did, with the
    accuracies each reaches now (``val_acc``, ``test_acc``): the last stage's network, data and
    plan are loaded once for all of them."""
    return _Opened.load(run_dir, device).cut(names)


def write_subnet(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    subnet: str | None = None,
    max_macs: float | None = None,
    device: str | torch.device | None = None,
    overwrite: bool = False,
) -> tuple[RunResult, dict, dict]:
    """:func:`cut_subnet` into ``out_dir``: ``subnet.pt`` (a growsearch checkpoint,
    ``growsearch.load_checkpoint`` reads it) and a ``result.json`` whose one stage is the subnet
    (its ``spec``, so ``growsearch baseline --spec-from OUT_DIR`` trains it from scratch), M the
    whole run's. Returns (that result, the recorded row, the accuracies reached now)."""
    out = Path(out_dir)
    check_out_dir(out, overwrite)
    t0 = time.perf_counter()
    opened = _Opened.load(run_dir, device)
    net, row, now = _cut_one(opened, subnet, max_macs)
    run, ckpt = opened.result, opened.ckpt
    last = run.stages[-1]
    stage = StageResult(
        classes=last.classes,
        arch=row["arch"],
        epochs=last.epochs,
        samples=last.samples,
        macs_per_sample=row["macs_per_sample"],
        M=run.M,
        test_acc=now["test_acc"],
        val_acc=now["val_acc"],
        wall_s=time.perf_counter() - t0,
        params=row["params"],
        spec=row["spec"],
        resolution=last.resolution,
        stage=1,
        nonzero_macs_per_sample=row["macs_per_sample"],
        M_nonzero=run.M,
    )
    result = RunResult(
        M=run.M,
        test_acc=now["test_acc"],
        val_acc=now["val_acc"],
        wall_s=stage.wall_s,
        macs_per_sample=row["macs_per_sample"],
        stages=[stage],
        params=row["params"],
        M_nonzero=run.M,
        nonzero_macs_per_sample=row["macs_per_sample"],
        schedule=run.schedule,
        class_order=run.class_order,
        device=str(opened.device),
        versions=versions(),
        selection=run.selection,
        threads=torch.get_num_threads(),
        subnets=[row],
    )
    with held(out, OutputExistsError, check=lambda: check_out_dir(out, overwrite)):
        work = prepare_out(out, overwrite)
        save_checkpoint(
            work / SUBNET_FILE,
            net,
            classes=ckpt["classes"],
            stage=len(run.stages),
            test_acc=now["test_acc"],
            val_acc=now["val_acc"],
            resolution=last.resolution,
            subnet=row["subnet"],
            mean=ckpt.get("mean", []),
            std=ckpt.get("std", []),
            class_names=ckpt.get("class_names", []),
        )
        finish_run(result, work, out)
    return result, row, now


def matches(ref, spec: dict, num_classes: int) -> bool:
    """Whether frontier reference ``ref`` trained exactly the architecture ``spec``."""
    want = ArchSpec.from_dict(spec)
    have = ArchSpec.from_dict(ref.spec) if ref.spec else spec_for(ref.arch, num_classes, want.in_chans)
    strip = dict(name="", width_mult=1.0)
    return replace(have, **strip) == replace(want, **strip)


def own_reference(frontiers: "list[Frontier]", spec: dict) -> "tuple[Frontier, Any] | None":
    """(frontier, reference) of the first plain (not progressively resized) reference among
    ``frontiers`` that trained exactly ``spec``: what a subnet is priced on; None when none did."""
    for front in frontiers:
        ref = next((r for r in front.references if r.resolutions is None and matches(r, spec, front.num_classes)), None)
        if ref is not None:
            return front, ref
    return None


def family_ratio(result: RunResult, frontiers: list["Frontier"], *, chosen: str = "pareto") -> dict:
    """The family's cost against training each chosen subnet from scratch.

    Each subnet is priced on a frontier reference of its own architecture: ``M_scratch`` (the
    least M from scratch that reaches its validation accuracy, with the frontier's bounds rules)
    and its own ratio (the run's M over it). ``family_ratio`` = the run's M / Σ M_scratch over the
    chosen subnets (``"pareto"``: the validation Pareto front; ``"all"``), None while one of them
    has no frontier (``missing`` names them). ``bound`` is ``"upper"`` when a subnet beat every
    budget of its frontier (its M_scratch is then a lower bound), ``"lower"`` when one is below the
    cheapest budget, ``"mixed"`` for both, None when every M_scratch is exact.
    """
    rows = family_rows(result, "the run")
    picked = [r for r in rows if chosen == "all" or r["pareto"]]
    per, missing, bounds = [], [], set()
    for r in rows:
        own = own_reference(frontiers, r["spec"])
        hit = None if own is None else replace(own[0], references=[own[1]]).m_scratch(r["val_acc"])
        entry = {
            "subnet": r["subnet"],
            "arch": r["arch"],
            "val_acc": r["val_acc"],
            "test_acc": r["test_acc"],
            "chosen": r in picked,
        }
        if hit is None:
            entry.update(M_scratch=None)
            if r in picked:
                missing.append(r["subnet"])
        else:
            entry.update(
                M_scratch=hit["M"],
                reference=hit["reference"],
                beyond_frontier=hit["beyond"],
                below_frontier=hit["below"],
                ratio=result.M / hit["M"],
            )
            if r in picked:
                bounds |= {"upper"} if hit["beyond"] else set()
                bounds |= {"lower"} if hit["below"] else set()
        per.append(entry)
    total = sum(e["M_scratch"] for e in per if e["chosen"] and e["M_scratch"] is not None)
    ratio = result.M / total if not missing and total else None
    bound = "mixed" if len(bounds) == 2 else (bounds.pop() if bounds else None)
    return {
        "family_ratio": ratio,
        "M": result.M,
        "M_scratch_sum": total if not missing else None,
        "chosen": chosen,
        "subnets": per,
        "missing": missing,
        "bound": bound,
    }
