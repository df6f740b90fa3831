"""The examples run as users would run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from growsearch.plan.schedule import load_schedule
from growsearch.train.run import run_schedule
from helpers import REPO

EXAMPLES = REPO / "examples"


def test_importing_a_schedule_applies_every_key(npz_data: str, tmp_path: Path) -> None:
    sched = {
        "dataset": npz_data,
        "seed": 0,
        "stages": [
            {"classes": 2, "arch": "vgg11@0.125", "epochs": 1, "resolution": 16},
            {
                "classes": 4,
                "arch": "vgg13@0.125",
                "epochs": 3,
                "prune_ratio": 0.5,
                "zero_mask": True,
                "patience": 1,
                "lr": 0.02,
            },
        ],
    }
    path = tmp_path / "best.json"
    path.write_text(json.dumps(sched))
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "import_best_schedule.py"), "--schedule", str(path)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "at 16 px" in proc.stdout  # the low-resolution first stage
    widths = run_schedule(load_schedule(path), progress=False).stages[-1].spec["widths"]
    # pruned before growth: the imported network has the run's pruned widths, not vgg13@0.125's own
    assert proc.stdout.strip().splitlines()[-1].endswith(str(tuple(tuple(b) for b in widths)))
