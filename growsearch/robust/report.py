"""The robustness report: a typed ``robustness.json``.

``growsearch robustness`` and :func:`growsearch.robust.robustness.robustness_report` return one
:class:`RobustnessReport`; it saves to and loads from the same ``robustness.json`` layout as
before (the dataclass fields are the file's keys), so files written by earlier versions load.
Reading it like the dict it replaced (``report["fgsm"]``) still works.

Example:
    >>> from growsearch.robust.report import RobustnessReport
    >>> RobustnessReport.load("runs/demo_run").fgsm["final_mi"]  # doctest: +SKIP
    [0.97, 0.61, 0.35, 0.14, 0.05, 0.04]
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

REPORT_FILE = "robustness.json"

__all__ = ["REPORT_FILE", "RobustnessReport"]


@dataclass
class RobustnessReport:
    """Noise, ablation, FGSM and detection results of one run (against a baseline when given).

    In every section the models are ``final`` (the run's final network), ``final_mi`` (all
    stage networks voting, mutual inference) and, with a baseline, ``baseline``.
    """

    run_dir: str
    baseline_dir: str | None  # the from-scratch run compared with, or None
    dataset: str
    test_samples: int  # test images evaluated (a seeded subset when ``samples`` was given)
    num_classes: int
    device: str
    seed: int
    members: list[
        dict
    ]  # per member: stage (its position), arch (a subnet's name), classes, val_acc, test_acc, weight (its MI vote weight)
    selection: str  # "validation"; "test" when the dataset has no validation split (val_fraction 0)
    weights: str | list[float]  # the MI weights asked for ("acc", "uniform" or the numbers)
    rule: str  # the MI vote rule, "known" or "plain"
    noise: dict = field(default_factory=dict)  # std levels; per model mean and std accuracy per level; area
    ablation: dict = field(default_factory=dict)  # fractions of conv units zeroed; as ``noise`` (MI not ablated)
    fgsm: dict = field(default_factory=dict)  # eps; per model accuracy per eps; attack (how it was run)
    detection: dict = field(
        default_factory=dict
    )  # eps, thresholds; per model fnr/tnr/val_fnr and tnr_at_fnr_5/10; definitions
    wall_s: float = 0.0
    versions: dict = field(default_factory=dict)
    note: str | None = None  # set when selection read the test split
    member_kind: str = "stages"  # what mutual inference's members are: the stage networks, or a shrink run's subnets ("subnets", "all_subnets")

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["note"] is None:  # the file has no "note" unless there is one
            del d["note"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RobustnessReport":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def load(cls, path: str | Path) -> "RobustnessReport":
        """From a ``robustness.json`` or the run folder that holds one."""
        p = Path(path)
        return cls.from_dict(json.loads((p / REPORT_FILE if p.is_dir() else p).read_text()))

    def save(self, path: str | Path) -> Path:
        """Write ``robustness.json`` atomically (into ``path`` when it is a folder)."""
        from growsearch.train.results import write_json_atomic

        p = Path(path)
        p = p / REPORT_FILE if p.is_dir() else p
        write_json_atomic(p, self.to_dict())
        return p

    # dict-style reading, as code written against the dict this replaced does
    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        # the keys robustness.json has: every field, "note" only when set
        return (
            isinstance(key, str) and key in {f.name for f in fields(self)} and not (key == "note" and self.note is None)
        )

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default
