"""The stage-prefix cache: trained stage networks keyed by everything that made them.

Two schedules that share their first stages (same data, seed, class order, recipe, stages and
growsearch version) share those stages' networks: a search's later trials load them instead of
training them again, and a killed run resumes from its own folder's checkpoints the same way.

Example:
    >>> from growsearch.plan.schedule import Schedule, Stage
    >>> from growsearch.train.prefix import prefix_key
    >>> s = Schedule("digits", [Stage(5, "vgg11@0.125", 1), Stage(10, "vgg13@0.125", 1)])
    >>> prefix_key(s, 1, list(range(10))) == prefix_key(s, 1, list(range(10)))
    True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from growsearch._extensions import digest
from growsearch.model.arch import get_family, parse_arch
from growsearch.model.ops import first_ops, transition_ops
from growsearch.plan.schedule import OPTIMIZER_KEYS, SPEED_KEYS, STAGE_OPTIMIZER_KEYS, Schedule
from growsearch.train.results import CheckpointError, OutputExistsError, read_checkpoint

__all__ = ["find_prefix", "find_resume", "prefix_key"]


def _without(d: dict, defaults: dict) -> dict:
    """``d`` less the keys at their defaults: keys added later leave the networks trained before them found."""
    return {k: v for k, v in d.items() if k not in defaults or v != defaults[k]}


def prefix_key(schedule: Schedule, upto: int, order: list[int]) -> str:
    """Content hash of everything that determines the network after stage ``upto``: the data,
    seed, class order, recipe, the stages so far, growsearch's version, and the definitions of
    the ops and families those stages use (so a family or op changed under the same name is
    never served a network the old one trained); with ``lr_schedule: global``, also every later
    stage's data and epochs (they set the LR of every step so far)."""
    from growsearch._version import __version__

    stages = schedule.stages[:upto]
    families = sorted({parse_arch(st.arch)[0].name for st in stages})
    payload = {
        "dataset": schedule.dataset,
        "seed": schedule.seed,
        "class_order": order,
        "train": _without(asdict(schedule.train), {**OPTIMIZER_KEYS, **SPEED_KEYS}),
        "stages": [_without(asdict(st), STAGE_OPTIMIZER_KEYS) for st in stages],
        "growsearch": __version__,
        "definitions": digest(first_ops(), transition_ops(), [get_family(f) for f in families]),
        "data_growth": schedule.data_growth,
        "deepen_init": schedule.deepen_init,
    }
    if schedule.shrink is not None and upto == len(schedule.stages):  # the shrink phase trains inside the last stage
        payload["shrink"] = asdict(schedule.shrink)
    if schedule.train.one_schedule:
        # the LR at every step depends on the whole run's length: a prefix is shared only by
        # schedules with the same stages' data and epochs from here to the end
        payload["run"] = [[st.classes, st.epochs, st.fraction] for st in schedule.stages]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def find_prefix(
    schedule: Schedule, order: list[int], cache: Path, *, upto: int | None = None
) -> tuple[int, Path | None]:
    """The deepest cached prefix of ``schedule`` in ``cache`` (of at most ``upto`` stages): (stages
    covered, file). A file is trusted by the key stored inside it, not by its name: one whose
    stored key is another (planted, or written by another version), or that cannot be read as
    plain weights, is passed over and its stages trained again."""
    deepest = len(schedule.stages) if upto is None else min(upto, len(schedule.stages))
    for upto in range(deepest, 0, -1):
        key = prefix_key(schedule, upto, order)
        path = cache / f"{key}.pt"
        if path.is_file():
            try:
                if read_checkpoint(path, "cpu").get("key") == key:
                    return upto, path
            except CheckpointError:
                pass
    return 0, None


def find_resume(schedule: Schedule, order: list[int], out: Path) -> tuple[int, Path | None]:
    """The last stage this run's folder already finished: (stages done, its checkpoint).

    Raises:
        OutputExistsError: the folder's checkpoints were trained by another schedule, dataset,
            seed, recipe or growsearch version (their content key differs), or the run finished.
    """
    for upto in range(len(schedule.stages), 0, -1):
        path = out / f"stage{upto}.pt"
        if not path.is_file():
            continue
        ckpt = read_checkpoint(path, "cpu")
        if ckpt.get("key") != prefix_key(schedule, upto, order) or not all(
            (out / f"stage{j}.pt").is_file() for j in range(1, upto)
        ):
            raise OutputExistsError(
                f"{path} was not trained by this schedule (another schedule, dataset, seed, recipe or growsearch version): "
                "resume with the schedule file that started it, or pass --overwrite to start again"
            )
        return upto, path
    return 0, None
