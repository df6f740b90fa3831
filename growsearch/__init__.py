"""growsearch: cumulative Net2Net training on timm backbones, with its training cost M.

Grow a small network into a large one while its training data grows to nested supersets of
classes, count the training cost M = Σ samples × MACs, and compare with training the final
network from scratch.

Example:
    >>> import growsearch
    >>> sched = growsearch.Schedule("digits", [growsearch.Stage(5, "vgg11@0.125", 1), growsearch.Stage(10, "vgg19@0.125", 1)])
    >>> sched.validate(num_classes=10)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.2.0"

# name -> module; resolved on first use so `import growsearch` does not import torch or timm.
_LAZY = {
    "GrowsearchError": "growsearch.errors",
    "ArchSpec": "growsearch.backbones",
    "create_model": "growsearch.backbones",
    "build_model": "growsearch.backbones",
    "list_archs": "growsearch.backbones",
    "grow": "growsearch.net2net",
    "create_dataset": "growsearch.data",
    "with_validation": "growsearch.data",
    "Frontier": "growsearch.frontier",
    "run_frontier": "growsearch.baseline",
    "load_frontier": "growsearch.frontier",
    "list_sources": "growsearch.data",
    "register_source": "growsearch.data",
    "from_arrays": "growsearch.data",
    "Family": "growsearch.backbones",
    "register_family": "growsearch.backbones",
    "get_family": "growsearch.backbones",
    "Schedule": "growsearch.schedule",
    "Stage": "growsearch.schedule",
    "TrainConfig": "growsearch.schedule",
    "load_schedule": "growsearch.schedule",
    "StagePlan": "growsearch.plan",
    "plan_schedule": "growsearch.plan",
    "RunResult": "growsearch.results",
    "run_schedule": "growsearch.train",
    "run_baseline": "growsearch.baseline",
    "load_checkpoint": "growsearch.results",
    "macs_per_sample": "growsearch.cost",
    "run_search": "growsearch.search",
    "load_best": "growsearch.best",
    "load_space": "growsearch.space",
    "robustness_report": "growsearch.robustness",
    "mutual_inference": "growsearch.robustness",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:
    from growsearch.backbones import ArchSpec, Family, build_model, create_model, get_family, list_archs, register_family
    from growsearch.cost import macs_per_sample
    from growsearch.errors import GrowsearchError
    from growsearch.data import create_dataset, from_arrays, list_sources, register_source, with_validation
    from growsearch.frontier import Frontier, load_frontier
    from growsearch.net2net import grow
    from growsearch.plan import StagePlan, plan_schedule
    from growsearch.robustness import mutual_inference, robustness_report
    from growsearch.schedule import Schedule, Stage, TrainConfig, load_schedule
    from growsearch.best import load_best
    from growsearch.search import run_search
    from growsearch.space import load_space
    from growsearch.baseline import run_baseline, run_frontier
    from growsearch.results import RunResult, load_checkpoint
    from growsearch.train import run_schedule


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'growsearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
