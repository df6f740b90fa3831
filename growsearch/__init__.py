"""growsearch: cumulative Net2Net training on timm backbones, with its training cost M.

Grow a small network into a large one while its training data grows to nested supersets of
classes, count the training cost M = Σ samples × MACs, and compare it with a frontier of
from-scratch runs. The package's wings follow the data flow (see docs/ARCHITECTURE.md):
``model`` and ``data`` ← ``plan`` ← ``train`` ← ``robust`` ← ``search`` ← ``cli``.

Example:
    >>> import growsearch
    >>> sched = growsearch.Schedule("digits", [growsearch.Stage(5, "vgg11@0.125", 1), growsearch.Stage(10, "vgg19@0.125", 1)])
    >>> [p.ops for p in growsearch.plan_schedule(sched)]
    [('build',), ('deepen', 'add classes 5→10')]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from growsearch._version import __version__

# The one façade: name -> the module that defines it (each public name has one import path);
# resolved on first use so `import growsearch` does not import torch, timm, Ray or Optuna.
_LAZY = {
    "GrowsearchError": "growsearch.errors",
    "ArchSpec": "growsearch.model.arch",
    "Family": "growsearch.model.arch",
    "create_model": "growsearch.model.arch",
    "build_model": "growsearch.model.arch",
    "list_archs": "growsearch.model.arch",
    "register_family": "growsearch.model.arch",
    "get_family": "growsearch.model.arch",
    "grow": "growsearch.model.ops",
    "register_op": "growsearch.model.ops",
    "macs_per_sample": "growsearch.model.cost",
    "create_dataset": "growsearch.data.dataset",
    "list_sources": "growsearch.data.dataset",
    "register_source": "growsearch.data.dataset",
    "from_arrays": "growsearch.data.dataset",
    "with_validation": "growsearch.data.split",
    "Schedule": "growsearch.plan.schedule",
    "Stage": "growsearch.plan.schedule",
    "TrainConfig": "growsearch.plan.schedule",
    "Shrink": "growsearch.plan.schedule",
    "Subnet": "growsearch.model.elastic",
    "load_schedule": "growsearch.plan.schedule",
    "StagePlan": "growsearch.plan.planner",
    "plan_schedule": "growsearch.plan.planner",
    "RunResult": "growsearch.train.results",
    "load_checkpoint": "growsearch.train.results",
    "run_schedule": "growsearch.train.run",
    "cut_subnet": "growsearch.train.family",
    "family_ratio": "growsearch.train.family",
    "run_baseline": "growsearch.train.baseline",
    "run_frontier": "growsearch.train.baseline",
    "Frontier": "growsearch.train.frontier",
    "load_frontier": "growsearch.train.frontier",
    "merge_frontiers": "growsearch.train.frontier",
    "robustness_report": "growsearch.robust.robustness",
    "mutual_inference": "growsearch.robust.vote",
    "load_space": "growsearch.search.space",
    "run_search": "growsearch.search.driver",
    "load_best": "growsearch.search.best",
    "load_best_network": "growsearch.search.best",
    "export_best": "growsearch.search.best",
    # the plugin routes: your own Optuna study, your own Ray Tune Tuner, your own objective
    "Objective": "growsearch.search.optuna",
    "CostPruner": "growsearch.search.optuna",
    "tune_pieces": "growsearch.search.tune",
    "runtime_env": "growsearch.search.cluster",
    "Cost": "growsearch.search.judge",
    "register_cost": "growsearch.search.judge",
    "Judge": "growsearch.search.judge",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:
    from growsearch.data.dataset import create_dataset, from_arrays, list_sources, register_source
    from growsearch.data.split import with_validation
    from growsearch.errors import GrowsearchError
    from growsearch.model.arch import (
        ArchSpec,
        Family,
        build_model,
        create_model,
        get_family,
        list_archs,
        register_family,
    )
    from growsearch.model.cost import macs_per_sample
    from growsearch.model.elastic import Subnet
    from growsearch.model.ops import grow, register_op
    from growsearch.plan.planner import StagePlan, plan_schedule
    from growsearch.plan.schedule import Schedule, Shrink, Stage, TrainConfig, load_schedule
    from growsearch.robust.robustness import robustness_report
    from growsearch.robust.vote import mutual_inference
    from growsearch.search.best import export_best, load_best, load_best_network
    from growsearch.search.cluster import runtime_env
    from growsearch.search.driver import run_search
    from growsearch.search.judge import Cost, Judge, register_cost
    from growsearch.search.optuna import CostPruner, Objective
    from growsearch.search.space import load_space
    from growsearch.search.tune import tune_pieces
    from growsearch.train.baseline import run_baseline, run_frontier
    from growsearch.train.family import cut_subnet, family_ratio
    from growsearch.train.frontier import Frontier, load_frontier, merge_frontiers
    from growsearch.train.results import RunResult, load_checkpoint
    from growsearch.train.run import run_schedule


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'growsearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
