"""Robustness of a cumulative run: input noise, unit ablation, FGSM with mutual inference, and
adversarial-input detection with no-decision thresholds.

This module runs the sweeps and writes the report (:class:`growsearch.robust.report.RobustnessReport`,
saved as ``robustness.json``); the pieces it uses live by concern: the vote and threshold
arithmetic in :mod:`growsearch.robust.vote`, the Foolbox adapter in :mod:`growsearch.robust.attack`,
the run's stage networks in :mod:`growsearch.robust.members`, the sweeps in :mod:`growsearch.robust.sweeps`.

Images here are in pixel space, ``[0, 1]`` (uint8 / 255); each network gets them normalised
with the dataset's mean and std, and Foolbox does the same through ``preprocessing``, so the
attack's ε is in pixel units.

*Mutual inference* (MI) is a weighted majority vote of every stage network of a run. A stage
network trained on the first k classes votes only among those classes: its argmax output j is a
vote for dataset class ``classes[j]`` (the checkpoint's mapping). Ties between classes with
equal vote weight go to the larger weighted sum of the members' softmax probabilities.

*No-decision* (adversarial-input detection, the paper's terms): for a threshold δ on the
softmax confidence, one model abstains when its confidence is below δ. MI abstains when no
member is confident (≥ δ) or the confident members do not all name the same class (the
stronger notion). A decision is *good* when it is correct or an abstention and *bad* when it
is a misclassification. Over δ:

- FNR(δ): the fraction of clean test inputs abstained on (clean inputs wrongly flagged);
- TNR(δ): the fraction of FGSM inputs with a good decision (caught, or not fooled).

Example:
    >>> from growsearch.robust.vote import mutual_inference
    >>> import torch
    >>> logits = [torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0, 3.0]])]
    >>> mutual_inference(logits, [[4, 7], [4, 7, 1]], [1.0, 0.9], num_classes=8)  # class 1: 0.9 of 0.9 known
    tensor([1])
    >>> mutual_inference(logits, [[4, 7], [4, 7, 1]], [1.0, 0.9], num_classes=8, rule="plain")
    tensor([4])
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import torch

from growsearch.robust.attack import (
    _attacked,
    _batches,
    _check_levels,
    _fgsm,
    _forward,
    _Normalized,
    _to_index,
    foolbox_model,
)
from growsearch.robust.members import RobustnessError, _check_members_match, family_members, load_members
from growsearch.robust.report import REPORT_FILE, RobustnessReport
from growsearch.robust.sweeps import ablate, accuracy, sweep, unit_norms
from growsearch.robust.vote import (
    _check_rule,
    _good,
    _index,
    member_weights,
    mutual_inference,
    no_decision,
    pick_threshold,
)

__all__ = ["DEFAULT_ABLATION", "DEFAULT_EPS", "DEFAULT_NOISE", "robustness_report"]

DEFAULT_EPS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)
DEFAULT_NOISE = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
DEFAULT_ABLATION = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DEFAULT_THRESHOLDS = tuple(
    [0.0]
    + [round(0.3 + 0.05 * i, 4) for i in range(13)]
    + [0.96, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999, 0.99999, 1.0]
)


def robustness_report(
    run_dir: str | Path,
    baseline_dir: str | Path | None = None,
    *,
    eps: Sequence[float] = DEFAULT_EPS,
    noise: Sequence[float] = DEFAULT_NOISE,
    ablation: Sequence[float] = DEFAULT_ABLATION,
    draws: int = 3,
    weights: str | Sequence[float] = "acc",
    rule: str = "known",
    detect_eps: float = 0.02,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    samples: int | None = None,
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device | None = None,
    dataset: Any = None,
    out: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    members: str = "stages",
) -> RobustnessReport:
    """Noise, ablation, FGSM (with and without MI) and no-decision detection for one run.

    Args:
        run_dir: a ``growsearch run --out`` directory (``result.json`` and ``stage{i}.pt``).
        baseline_dir: a ``growsearch baseline --out`` on the same dataset and classes.
        eps: FGSM ε in pixel units ([0, 1] images).
        noise: Gaussian noise standard deviations, pixel units; noisy images are clipped to [0, 1].
        ablation: fractions of conv units zeroed at random.
        draws: noise/ablation draws per level (seeded from ``seed``).
        weights: MI vote weights (see :func:`member_weights`).
        rule: MI's vote rule, ``"known"`` or ``"plain"`` (see :func:`mutual_inference`).
        detect_eps: the FGSM ε of the detection (TNR/FNR) inputs.
        thresholds: no-decision confidence thresholds δ.
        samples: evaluate on this many test images (a seeded random subset; default all).
        dataset: the run's dataset, already loaded (default: loaded from its name).
        out: write ``robustness.json`` and ``noise.png``, ``ablation.png``, ``fgsm.png``,
            ``tnr_fnr.png`` into ``run_dir`` (atomically); an existing ``robustness.json`` is an
            error unless ``overwrite``.
        members: mutual inference's members: ``"stages"`` (every stage network, the paper's) or,
            for a run with a shrink block, ``"subnets"`` (its validation Pareto front of subnets,
            each cut and recalibrated, the full network last) or ``"all_subnets"``.

    Returns:
        A :class:`growsearch.robust.report.RobustnessReport`: everything ``robustness.json`` holds.
    """
    from growsearch.data.dataset import TEST_SELECTION_NOTE, Rows
    from growsearch.train.loop import resolve_device
    from growsearch.train.results import versions

    run = Path(run_dir)
    eps = _check_levels("FGSM epsilons (--eps)", eps, upper=1.0)
    noise = _check_levels("noise levels (--noise)", noise)
    ablation = _check_levels("ablation fractions (--ablation)", ablation, upper=1.0)
    thresholds = sorted(_check_levels("no-decision thresholds", thresholds, upper=1.0))
    detect_eps = _check_levels("detection epsilon (--detect-eps)", [detect_eps], upper=1.0)[0]
    if draws < 1:
        raise RobustnessError(f"--draws must be ≥ 1, got {draws}")
    if samples is not None and samples < 1:
        raise RobustnessError(f"--samples must be ≥ 1, got {samples}")
    _check_rule(rule)
    if members not in ("stages", "subnets", "all_subnets"):
        raise RobustnessError(f"--members must be stages, subnets or all_subnets, got {members!r}")
    if out:
        _check_report_out(run, overwrite)
    sub = _Subjects.load(run, baseline_dir, resolve_device(device), weights, rule, dataset, members)
    if any(a > 0 for a in ablation):  # before any sweep runs: a family must say what its units are
        unit_norms(sub.members[-1].model), sub.base and unit_norms(sub.base.model)
    x, y = sub.ds.x_test, sub.ds.y_test
    if samples is not None and samples < len(y):
        pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:samples].sort().values
        x, y = x[pick], y[pick]
    elif isinstance(x, Rows):  # rows of a memory-mapped cache: the test split, read once for the report
        x = x.materialize()
    t0 = time.perf_counter()
    report = RobustnessReport(
        run_dir=str(run),
        baseline_dir=str(baseline_dir) if baseline_dir else None,
        dataset=sub.ds.name,
        test_samples=len(y),
        num_classes=sub.C,
        device=str(sub.dev),
        seed=seed,
        members=[
            {
                "stage": m.stage,
                "arch": m.arch,
                "classes": len(m.classes),
                "val_acc": m.val_acc,
                "test_acc": m.test_acc,
                "weight": wt,
            }
            for m, wt in zip(sub.members, sub.w)
        ],
        selection="test" if sub.ds.val_fraction == 0 else "validation",
        weights=weights if isinstance(weights, str) else list(sub.w),
        rule=rule,
        member_kind=members,
    )
    report.noise, report.ablation = _sweeps(sub, x, y, noise, ablation, draws, seed, batch_size, progress)
    report.fgsm, report.detection = _attacks(sub, x, y, eps, detect_eps, thresholds, batch_size, progress)
    if sub.ds.val_fraction == 0:
        report.note = TEST_SELECTION_NOTE
    report.wall_s = time.perf_counter() - t0
    report.versions = versions()
    if out:
        from growsearch._io import held
        from growsearch.robust.plots import plot_robustness
        from growsearch.train.results import OutputExistsError

        # not while another command writes the run's folder; refusals again inside its lock
        with held(run, OutputExistsError, check=lambda: _check_report_out(run, overwrite)):
            plot_robustness(report, run)
            report.save(run / REPORT_FILE)
    return report


def _check_report_out(run: Path, overwrite: bool) -> None:
    """A report replaces only its own earlier report, and only with ``overwrite``; a user's
    file under one of its names (``noise.png``, ...) is never replaced."""
    from growsearch._io import check_owned
    from growsearch.train.results import OutputExistsError

    check_owned(run, OutputExistsError)
    if (run / REPORT_FILE).exists() and not overwrite:
        raise OutputExistsError(f"{run / REPORT_FILE} exists: pass --overwrite to replace it")


class _Subjects:
    """What a report measures: the run's stage networks (the final one, and all of them voting by
    mutual inference), the from-scratch baseline if given, and the data the run selected on."""

    def __init__(self, members: list, base: Any, ds: Any, w: list[float], rule: str, dev: torch.device) -> None:
        self.members, self.base, self.ds, self.w, self.rule, self.dev = members, base, ds, w, rule, dev
        self.C = ds.num_classes
        mean, std = ds.mean, ds.std
        self.nets = [_Normalized(m.model, mean, std, m.resolution).to(dev) for m in members]
        self.cls = [m.classes for m in members]
        self.final_idx = _index(members[-1].classes, dev)
        self.bnet = _Normalized(base.model, mean, std).to(dev) if base else None
        self.bidx = _index(base.classes, dev) if base else None
        # each column's prediction on [0, 1] images, as dataset class indices
        self.models = {"final": self.final_pred, "final_mi": self.mi_pred} | (
            {"baseline": self.base_pred} if base else {}
        )

    @classmethod
    def load(
        cls,
        run: Path,
        baseline_dir: str | Path | None,
        dev: torch.device,
        weights: Any,
        rule: str,
        dataset: Any,
        kind: str = "stages",
    ) -> "_Subjects":
        from growsearch.plan.schedule import TrainConfig, load_split
        from growsearch.train.results import RunResult

        info = RunResult.load(run)
        if kind == "stages":
            members = load_members(run, device=dev)
            _check_members_match(run, members, info)
        else:
            if not info.subnets:
                raise RobustnessError(
                    f"--members {kind}: {run} holds no subnets (its schedule has no shrink block): use --members stages"
                )
            members = family_members(run, info, chosen="all" if kind == "all_subnets" else "pareto", device=dev)
        w = member_weights(members, weights)
        ds_name = info.schedule["dataset"]
        # the split the run selected on (its recipe's, defaults included)
        ds = load_split(ds_name, TrainConfig(**info.schedule.get("train", {})), dataset=dataset)
        C = ds.num_classes
        if sorted(members[-1].classes) != list(range(C)):
            raise RobustnessError(
                f"{run}'s last stage covers {len(members[-1].classes)} of {C} classes: robustness needs a run whose final network sees all classes"
            )
        base = None
        if baseline_dir is not None:
            base_ds = RunResult.load(baseline_dir).schedule["dataset"]
            bmembers = load_members(baseline_dir, device=dev)
            if base_ds != ds_name or sorted(bmembers[-1].classes) != list(range(C)):
                raise RobustnessError(
                    f"baseline {baseline_dir} was trained on {base_ds} ({len(bmembers[-1].classes)} classes), "
                    f"the run on {ds_name} ({C} classes): pass a baseline trained on the run's dataset and classes"
                )
            base = bmembers[-1]
        return cls(members, base, ds, w, rule, dev)

    def final_pred(self, xb: torch.Tensor) -> torch.Tensor:
        return self.final_idx[_forward(self.nets[-1:], xb)[0].argmax(1)]

    def mi_pred(self, xb: torch.Tensor) -> torch.Tensor:
        return mutual_inference(_forward(self.nets, xb), self.cls, self.w, num_classes=self.C, rule=self.rule)

    def base_pred(self, xb: torch.Tensor) -> torch.Tensor:
        return self.bidx[_forward([self.bnet], xb)[0].argmax(1)]


def _sweeps(
    sub: _Subjects,
    x: torch.Tensor,
    y: torch.Tensor,
    noise: list[float],
    ablation: list[float],
    draws: int,
    seed: int,
    batch_size: int,
    progress: bool,
) -> tuple[dict, dict]:
    """Accuracy under Gaussian input noise (the same draws for every column) and under unit
    ablation of the final network and the baseline."""
    dev = sub.dev

    def noisy_acc(key: str, level: float, draw: int) -> float:
        g = torch.Generator(device=dev).manual_seed(seed * 100003 + draw)
        return accuracy(
            sub.models[key],
            x,
            y,
            batch_size,
            dev,
            lambda xb: (xb + level * torch.randn(xb.shape, generator=g, device=xb.device)).clamp(0, 1),
        )

    abl_models = {"final": (sub.members[-1].model, sub.final_pred)} | (
        {"baseline": (sub.base.model, sub.base_pred)} if sub.base else {}
    )

    def ablated_acc(key: str, frac: float, draw: int) -> float:
        model, fn = abl_models[key]
        with ablate(model, frac, torch.Generator().manual_seed(seed * 100003 + draw)):
            return accuracy(fn, x, y, batch_size, dev)

    return (
        sweep("noise", "std", noise, draws, list(sub.models), noisy_acc, progress),
        sweep("ablation", "fraction", ablation, draws, list(abl_models), ablated_acc, progress),
    )


def _attacks(
    sub: _Subjects,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: list[float],
    detect_eps: float,
    thresholds: list[float],
    batch_size: int,
    progress: bool,
) -> tuple[dict, dict]:
    """FGSM accuracy of every column (MI classifies the final network's adversarials), and
    no-decision detection: abstentions on clean and FGSM test inputs, thresholds chosen on
    clean *validation* inputs."""
    from tqdm.auto import tqdm

    dev, rule, cls, C, base = sub.dev, sub.rule, sub.cls, sub.C, sub.base
    attack_eps = sorted(set(eps) | {detect_eps})
    fm_final = foolbox_model(sub.members[-1].model, sub.ds.mean, sub.ds.std, device=dev)
    fm_base = foolbox_model(base.model, sub.ds.mean, sub.ds.std, device=dev) if base else None
    hits = {k: [0] * len(attack_eps) for k in sub.models}
    T = len(thresholds)
    det = {
        k: {"clean_abstain": torch.zeros(T, dtype=torch.float64), "adv_good": torch.zeros(T, dtype=torch.float64)}
        for k in sub.models
    }
    di = attack_eps.index(detect_eps)

    def count_detection(key, clean_logits, clean_cls, adv_logits, yb):
        _, ab_clean = no_decision(clean_logits, clean_cls, thresholds, rule=rule)
        dec, ab_adv = no_decision(adv_logits, clean_cls, thresholds, rule=rule)
        det[key]["clean_abstain"] += ab_clean.double().sum(0).cpu()
        det[key]["adv_good"] += _good(dec, ab_adv, yb).double().sum(0).cpu()

    bar = tqdm(total=len(y), desc="fgsm", disable=not progress, unit="img")
    for xb, yb in _batches(x, y, batch_size, dev):
        clean = _forward(sub.nets, xb)
        for k, (logits, final_ok, mi_ok) in enumerate(
            _attacked(sub.nets, fm_final, cls, sub.w, xb, yb, attack_eps, C, rule)
        ):
            hits["final"][k] += final_ok
            hits["final_mi"][k] += mi_ok
            if k == di:
                count_detection("final", clean[-1:], cls[-1:], logits[-1:], yb)
                count_detection("final_mi", clean, cls, logits, yb)
        if base:
            bclean = _forward([sub.bnet], xb)
            for k, adv in enumerate(_fgsm(fm_base, xb, _to_index(yb, base.classes, C), attack_eps)):
                logits = _forward([sub.bnet], adv)
                hits["baseline"][k] += int((sub.bidx[logits[0].argmax(1)] == yb).sum())
                if k == di:
                    count_detection("baseline", bclean, [base.classes], logits, yb)
        bar.update(len(yb))
    bar.close()
    # Thresholds for a target FNR are chosen on clean *validation* inputs, then read on test.
    val_abstain = {k: torch.zeros(T, dtype=torch.float64) for k in sub.models}
    for xb, _ in _batches(sub.ds.x_val, sub.ds.y_val, batch_size, dev):
        clean = _forward(sub.nets, xb)
        val_abstain["final"] += no_decision(clean[-1:], cls[-1:], thresholds, rule=rule)[1].double().sum(0).cpu()
        val_abstain["final_mi"] += no_decision(clean, cls, thresholds, rule=rule)[1].double().sum(0).cpu()
        if base:
            val_abstain["baseline"] += (
                no_decision(_forward([sub.bnet], xb), [base.classes], thresholds, rule=rule)[1].double().sum(0).cpu()
            )
    n = max(1, len(y))
    fgsm = {"eps": eps, **{k: [hits[k][attack_eps.index(e)] / n for e in eps] for k in sub.models}}
    fgsm["attack"] = (
        "foolbox LinfFastGradientAttack, white-box on each column's own network; final_mi classifies the final network's adversarials by mutual inference"
    )
    return fgsm, _detection(det, val_abstain, n, max(1, len(sub.ds.y_val)), thresholds, detect_eps)


def _detection(det: dict, val_abstain: dict, n: int, n_val: int, thresholds: list[float], detect_eps: float) -> dict:
    """Per model the FNR/TNR curves over δ and the test TNR at the δ whose *validation* FNR is ≤ 5% / 10%."""
    detection = {"eps": detect_eps, "thresholds": thresholds}
    for k in det:
        fnr = (det[k]["clean_abstain"] / n).tolist()
        tnr = (det[k]["adv_good"] / n).tolist()
        val_fnr = (val_abstain[k] / n_val).tolist()
        detection[k] = {"fnr": fnr, "tnr": tnr, "val_fnr": val_fnr}
        for pct in (5, 10):
            i = pick_threshold(val_fnr, pct / 100)
            detection[k][f"tnr_at_fnr_{pct}"] = None if i is None else tnr[i]  # test TNR at the δ validation chose
            detection[k][f"test_fnr_at_fnr_{pct}"] = (
                None if i is None else fnr[i]
            )  # what that δ costs on clean test inputs
            detection[k][f"delta_at_fnr_{pct}"] = None if i is None else thresholds[i]
    detection["definitions"] = {
        "fnr": "fraction of clean test inputs abstained on (confidence < δ; MI: unless every member that knows the decided class names it with confidence ≥ δ)",
        "tnr": "fraction of FGSM inputs with a good decision: abstained or classified correctly",
        "tnr_at_fnr_X": "test TNR at the largest δ whose FNR on clean validation inputs is ≤ X% (δ chosen on validation, read on test)",
    }
    return detection
