"""Extending growsearch from outside the package: a new backbone family and a new dataset source."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import growsearch
from growsearch import (
    Schedule,
    Stage,
    from_arrays,
    get_family,
    plan_schedule,
    register_family,
    register_source,
    run_schedule,
)


@register_source("stripes")
def _stripes(arg: str | None):
    """Four classes of 24x24 RGB stripes at different periods, with noise."""
    rng = np.random.default_rng(int(arg or 0))
    y = np.arange(96) % 4
    cols = np.arange(24)
    x = np.stack([np.broadcast_to(((cols // (c + 1)) % 2)[None, :, None] * 180.0, (24, 24, 3)) for c in y])
    x = np.clip(x + rng.normal(0, 25, x.shape), 0, 255).astype(np.uint8)
    return from_arrays("stripes", x[:64], y[:64], x[64:], y[64:])


# a family of its own: VGG's builder with other depths, base widths and names
SLIM = register_family(
    replace(
        get_family("vgg"),
        name="slimvgg",
        depths={"slim5": (1, 1, 1, 1, 1), "slim7": (1, 1, 2, 2, 1)},
        base_widths=(16, 32, 64, 64, 64),
    )
)


def test_a_registered_family_and_source_run_a_schedule_end_to_end(tmp_path) -> None:
    assert "stripes" in growsearch.list_sources() and "slim7" in " ".join(growsearch.list_archs())
    sched = Schedule(
        "stripes:3", [Stage(2, "slim5@0.5", 2), Stage(4, "slim7@1.0", 2, prune_ratio=0.25, zero_mask=True)]
    )
    plans = plan_schedule(sched)
    assert plans[1].ops == ("prune R=0.25", "deepen", "widen", "add classes 2→4", "zero mask")
    result = run_schedule(sched, out_dir=tmp_path / "run", progress=False)
    assert result.M == sum(p.M for p in plans)
    # slim5@0.5 = 8/16/32/32/32, pruned by a quarter to 6/12/24/24/24, then doubled (@0.5 → @1.0); new layers copy their block's width
    assert result.stages[-1].spec["family"] == "slimvgg" and result.stages[-1].spec["widths"] == [
        [12],
        [24],
        [48, 48],
        [48, 48],
        [48],
    ]
    assert (tmp_path / "run" / "stage2.pt").is_file() and 0 <= result.val_acc <= 1


def test_bad_registrations_are_one_line_errors() -> None:
    with pytest.raises(growsearch.GrowsearchError, match="already belong to 'vgg'"):
        register_family(replace(get_family("vgg"), name="copycat"))
    with pytest.raises(growsearch.GrowsearchError, match="without ':'"):
        register_source("bad:name")
    with pytest.raises(growsearch.GrowsearchError, match="no training images"):
        from_arrays(
            "broken",
            np.zeros((4, 8, 8, 3), np.uint8),
            np.array([0, 0, 2, 2]),
            np.zeros((2, 8, 8, 3), np.uint8),
            np.array([0, 1]),
        )
