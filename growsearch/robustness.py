"""Robustness of a cumulative run: input noise, unit ablation, FGSM with mutual inference, and
adversarial-input detection with no-decision thresholds.

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
    >>> from growsearch.robustness import mutual_inference
    >>> import torch
    >>> logits = [torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0, 3.0]])]
    >>> mutual_inference(logits, [[4, 7], [4, 7, 1]], [1.0, 0.9], num_classes=8)
    tensor([4])
"""

from __future__ import annotations

import math
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

from growsearch.data import resize
from growsearch.errors import GrowsearchError

__all__ = [
    "RobustnessError",
    "Member",
    "load_members",
    "member_from_checkpoint",
    "member_weights",
    "mutual_inference",
    "no_decision",
    "detection_rates",
    "tnr_at_fnr",
    "pick_threshold",
    "foolbox_model",
    "fgsm_accuracy",
    "robustness_report",
    "DEFAULT_EPS",
]

DEFAULT_EPS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)
DEFAULT_NOISE = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
DEFAULT_ABLATION = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# confidence thresholds δ: dense near 1, where softmax confidences of trained nets crowd
DEFAULT_THRESHOLDS = tuple([0.0] + [round(0.3 + 0.05 * i, 4) for i in range(13)] + [0.96, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999, 0.99999, 1.0])
REPORT_FILE = "robustness.json"


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
    from growsearch.results import load_checkpoint

    model, ckpt = load_checkpoint(path, device=device)
    if "val_acc" not in ckpt:
        raise RobustnessError(
            f"{path} has no validation accuracy (saved by growsearch < 0.2, before the validation split): "
            "re-run its schedule with this version"
        )
    return Member(
        model, [int(c) for c in ckpt["classes"]], int(ckpt.get("stage", stage)), float(ckpt.get("test_acc", 1.0)),
        model.arch_spec.name, ckpt.get("resolution"), float(ckpt["val_acc"]),
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


def _check_members_match(run: Path, members: Sequence[Member], info) -> None:
    """Refuse stage checkpoints that are not the ones ``result.json`` describes (a stale
    ``stage3.pt`` of an earlier, longer run would otherwise vote as the final network)."""
    if len(members) != len(info.stages):
        raise RobustnessError(
            f"{run} holds {len(members)} stage checkpoints but its result.json has {len(info.stages)} stages: "
            "checkpoints of another run are mixed in; re-run the schedule into an empty --out"
        )
    for m, st in zip(members, info.stages):
        if len(m.classes) != st.classes or (st.spec and m.model.arch_spec.to_dict()["widths"] != st.spec["widths"]):
            raise RobustnessError(
                f"{run}/stage{m.stage}.pt does not match stage {m.stage} of its result.json ({len(m.classes)} vs {st.classes} classes "
                f"or other widths): re-run the schedule into an empty --out"
            )


def member_weights(members: Sequence[Member], weights: str | Sequence[float] = "acc") -> list[float]:
    """MI vote weights: ``"acc"`` (each stage's validation accuracy on its own classes, the
    default: weights are a choice, so they never read the test set), ``"uniform"``, or one
    non-negative number per member."""
    if isinstance(weights, str):
        if weights == "acc":
            return [m.val_acc for m in members]
        if weights == "uniform":
            return [1.0] * len(members)
        raise RobustnessError(f"unknown MI weights {weights!r}: use 'acc', 'uniform' or one number per stage")
    w = [float(v) for v in weights]
    if len(w) != len(members):
        raise RobustnessError(f"{len(w)} MI weights for {len(members)} stage networks: give one weight per stage")
    if any(v < 0 or not math.isfinite(v) for v in w) or sum(w) <= 0:
        raise RobustnessError(f"MI weights must be finite, ≥ 0 and not all 0, got {w}")
    return w


def _index(classes: Sequence[int], device: torch.device) -> torch.Tensor:
    return torch.as_tensor(list(classes), dtype=torch.long, device=device)


RULES = ("known", "plain")


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise RobustnessError(f"unknown MI rule {rule!r}: use one of {', '.join(RULES)}")


def _ties(key: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """Positions of ``alive`` where ``key`` is maximal per row (within rounding)."""
    k = torch.where(alive, key, torch.full_like(key, -math.inf))
    return alive & (k >= k.max(1, keepdim=True).values - 1e-9)


def mutual_inference(
    logits: Sequence[torch.Tensor],
    classes: Sequence[Sequence[int]],
    weights: Sequence[float],
    *,
    num_classes: int,
    rule: str = "known",
) -> torch.Tensor:
    """Weighted majority vote (dataset class per sample) of members' ``logits`` (N, k_m).

    Member m votes with weight ``weights[m]`` for ``classes[m][argmax]``. With ``rule="known"``
    (default) a class's vote share counts only the members that know it: score(c) = Σ weight
    voting c ÷ Σ weight of members trained on c, so a stage network never outvotes a class it
    was never shown. ``rule="plain"`` ranks by the raw Σ weight. Ties go to the larger raw vote,
    then to the larger Σ weight × softmax probability.
    """
    _check_rule(rule)
    n, dev = logits[0].shape[0], logits[0].device
    votes = torch.zeros(n, num_classes, dtype=torch.float64, device=dev)
    soft = torch.zeros_like(votes)
    known = torch.zeros(num_classes, dtype=torch.float64, device=dev)
    rows = torch.arange(n, device=dev)
    for lg, cls, w in zip(logits, classes, weights):
        idx = _index(cls, dev)
        p = lg.double().softmax(1)
        votes[rows, idx[p.argmax(1)]] += w
        soft[:, idx] += w * p
        known[idx] += w
    alive = torch.ones_like(votes, dtype=torch.bool)
    if rule == "known":
        alive = _ties(votes / known.clamp_min(1e-300), alive & (known > 0))
    alive = _ties(votes, alive)
    return torch.where(alive, soft, torch.full_like(soft, -1.0)).argmax(1)


def no_decision(
    logits: Sequence[torch.Tensor],
    classes: Sequence[Sequence[int]],
    thresholds: Sequence[float],
    *,
    rule: str = "known",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decisions under no-decision thresholds: (class (N, T), abstained (N, T)) for each δ.

    One member: abstains when its softmax confidence is below δ. Several (MI, the stronger
    notion): the decision is the class named by the member trained on the most classes, and MI
    abstains unless every member that knows that class (``rule="known"``; every member with
    ``rule="plain"``) names it with confidence ≥ δ.
    """
    _check_rule(rule)
    dev = logits[0].device
    deltas = torch.as_tensor(list(thresholds), dtype=torch.float64, device=dev)
    n, t = logits[0].shape[0], len(deltas)
    lead = max(range(len(logits)), key=lambda m: (len(classes[m]), m))
    decided = _index(classes[lead], dev)[logits[lead].argmax(1)]
    abstained = torch.zeros((n, t), dtype=torch.bool, device=dev)
    for lg, cls in zip(logits, classes):
        idx = _index(cls, dev)
        conf, j = lg.double().softmax(1).max(1)
        if rule == "known":
            knows = (decided[:, None] == idx[None, :]).any(1)
        else:
            knows = torch.ones(n, dtype=torch.bool, device=dev)
        objects = knows[:, None] & ((conf[:, None] < deltas[None, :]) | (idx[j] != decided)[:, None])
        abstained |= objects
    return decided[:, None].expand(n, t), abstained


def detection_rates(
    abstained_clean: torch.Tensor, decided_adv: torch.Tensor, abstained_adv: torch.Tensor, y_adv: torch.Tensor
) -> tuple[list[float], list[float]]:
    """(FNR, TNR) per threshold column: FNR = clean inputs abstained on; TNR = adversarial
    inputs with a good decision (abstained or correct)."""
    fnr = abstained_clean.double().mean(0)
    return fnr.tolist(), _good(decided_adv, abstained_adv, y_adv).double().mean(0).tolist()


def _good(decided: torch.Tensor, abstained: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A good decision (the paper's terms): an abstention or the correct class; (N, T)."""
    return abstained | (decided == y[:, None])


def tnr_at_fnr(fnr: Sequence[float], tnr: Sequence[float], target: float) -> float | None:
    """The best TNR among thresholds whose FNR is ≤ ``target`` (None if no threshold gets there).

    This reads both curves from the same data: an oracle choice, for curves drawn on one split.
    The report picks the threshold on validation data instead (:func:`pick_threshold`).
    """
    ok = [b for a, b in zip(fnr, tnr) if a <= target + 1e-12]
    return max(ok) if ok else None


def pick_threshold(val_fnr: Sequence[float], target: float) -> int | None:
    """Index of the largest threshold δ whose FNR on *validation* inputs is ≤ ``target``.

    Abstaining more (a larger δ) can only add good decisions on adversarial inputs, so the
    largest δ the clean-input budget allows is the one to deploy; None if even the smallest
    exceeds it. ``val_fnr`` is per threshold, thresholds ascending.
    """
    ok = [i for i, f in enumerate(val_fnr) if f <= target + 1e-12]
    return max(ok) if ok else None


# --- forward passes in pixel space --------------------------------------------------------


class _Normalized(nn.Module):
    """model((x − mean) / std) for x in [0, 1]: the same input Foolbox's preprocessing builds;
    with ``resolution``, resized to it first as the stage's training batches were."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float], resolution: int | None = None):
        super().__init__()
        self.model, self.resolution = model, resolution
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std)).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        if self.resolution and self.resolution != x.shape[-1]:
            x = resize(x, self.resolution)
        return self.model(x)


def foolbox_model(model: nn.Module, mean: Sequence[float], std: Sequence[float], *, device: torch.device | str | None = None):
    """``foolbox.PyTorchModel`` of ``model`` (put in eval mode) on [0, 1] images, normalised by
    ``preprocessing`` exactly as training normalised them."""
    import foolbox as fb

    model.eval()
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    return fb.PyTorchModel(model, bounds=(0, 1), preprocessing=dict(mean=list(mean), std=list(std), axis=-3), device=dev)


def _check_images(x: torch.Tensor) -> None:
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise RobustnessError(
            f"images lie in [{float(x.min()):.3g}, {float(x.max()):.3g}], outside the models' bounds [0, 1]: "
            "pass uint8 images / 255, not normalised ones (normalisation is the model's preprocessing)"
        )


def _check_levels(name: str, values: Sequence[float], upper: float | None = None) -> list[float]:
    vals = [float(v) for v in values]
    if not vals:
        raise RobustnessError(f"{name}: the list is empty; give at least one value")
    if any(v < 0 or not math.isfinite(v) or (upper is not None and v > upper) for v in vals):
        rng = f"in [0, {upper:g}]" if upper is not None else "≥ 0"
        raise RobustnessError(f"{name}: every value must be {rng}, got {vals}")
    return vals


def _batches(x: torch.Tensor, y: torch.Tensor, size: int, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """[0, 1] float batches on ``device`` from uint8 (÷ 255) or already-[0, 1] images."""
    for i in range(0, len(x), size):
        xb = x[i : i + size].to(device)
        yield (xb.float() / 255.0 if xb.dtype == torch.uint8 else xb.float()), y[i : i + size].to(device)


def _to_index(y: torch.Tensor, classes: Sequence[int], num_classes: int) -> torch.Tensor:
    """Dataset labels → output positions of a model whose output j is ``classes[j]``."""
    lut = torch.full((num_classes,), -1, dtype=torch.long, device=y.device)
    lut[_index(classes, y.device)] = torch.arange(len(classes), device=y.device)
    return lut[y]


def fgsm_accuracy(
    members: Sequence[Member],
    x: torch.Tensor,
    y: torch.Tensor,
    eps: Sequence[float],
    *,
    mean: Sequence[float],
    std: Sequence[float],
    num_classes: int,
    weights: str | Sequence[float] = "acc",
    rule: str = "known",
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> dict[str, list[float]]:
    """FGSM (Foolbox's ``LinfFastGradientAttack``) crafted on the last member, white-box.

    Returns per ε the last member's accuracy (``"final"``) and MI's accuracy on the same
    adversarial images (``"final_mi"``: the attacker knows only the final network).
    ``x``: uint8 or [0, 1] float images (N, C, H, W); ``y``: dataset labels.
    """
    eps = _check_levels("FGSM epsilons", eps, upper=1.0)
    dev = torch.device(device) if device is not None else next(members[-1].model.parameters()).device
    if x.dtype != torch.uint8:
        _check_images(x)
    w = member_weights(members, weights)
    nets = [_Normalized(m.model.eval(), mean, std, m.resolution).to(dev) for m in members]
    fmodel = foolbox_model(members[-1].model, mean, std, device=dev)
    cls = [m.classes for m in members]
    hit = {"final": [0] * len(eps), "final_mi": [0] * len(eps)}
    for xb, yb in _batches(x, y, batch_size, dev):
        for k, (_, final_ok, mi_ok) in enumerate(_attacked(nets, fmodel, cls, w, xb, yb, eps, num_classes, rule)):
            hit["final"][k] += final_ok
            hit["final_mi"][k] += mi_ok
    n = max(1, len(y))
    return {k: [h / n for h in v] for k, v in hit.items()}


def _attacked(nets, fmodel, classes, weights, xb, yb, eps, num_classes: int, rule: str):
    """Per ε: FGSM on the last network, then (every network's logits on the adversarials, how many
    the last network gets right, how many MI gets right)."""
    final_idx = _index(classes[-1], xb.device)
    for adv in _fgsm(fmodel, xb, _to_index(yb, classes[-1], num_classes), eps):
        logits = _forward(nets, adv)
        final_ok = int((final_idx[logits[-1].argmax(1)] == yb).sum())
        mi_ok = int((mutual_inference(logits, classes, weights, num_classes=num_classes, rule=rule) == yb).sum())
        yield logits, final_ok, mi_ok


def _fgsm(fmodel, xb: torch.Tensor, labels: torch.Tensor, eps: Sequence[float]) -> list[torch.Tensor]:
    """Foolbox FGSM adversarials of ``xb`` (clipped to the bounds), one batch per ε."""
    import foolbox as fb

    if (labels < 0).any():
        raise RobustnessError("an FGSM label is not among the attacked network's classes: attack the network trained on all classes")
    _, clipped, _ = fb.attacks.LinfFastGradientAttack()(fmodel, xb, labels, epsilons=list(eps))
    return [c.detach() for c in clipped]


@torch.no_grad()
def _forward(nets: Sequence[nn.Module], x: torch.Tensor) -> list[torch.Tensor]:
    return [net(x).float() for net in nets]


@contextmanager
def ablate(model: nn.Module, fraction: float, generator: torch.Generator) -> Iterator[int]:
    """Zero a random ``fraction`` of every conv layer's output channels (Morcos et al.'s unit
    ablation) while the context is open; yields the number of units zeroed.

    A unit is a channel of a conv layer's BatchNorm output (every conv in the growable
    families is followed by one), so with ReLU next a zeroed unit stays 0 downstream; in a
    residual block, zeroing the branch's last BN channel removes that channel's branch only.
    """
    handles, zeroed = [], 0
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            k = int(round(fraction * c))
            keep = torch.ones(c)
            keep[torch.randperm(c, generator=generator)[:k]] = 0.0
            zeroed += k
            dev = mod.weight.device if mod.weight is not None else torch.device("cpu")
            mask = keep.view(1, -1, 1, 1).to(dev)
            handles.append(mod.register_forward_hook(lambda _m, _i, out, _mask=mask: out * _mask.to(out.dtype)))
    try:
        yield zeroed
    finally:
        for h in handles:
            h.remove()


def _accuracy(pred_fn, x: torch.Tensor, y: torch.Tensor, batch_size: int, dev: torch.device, transform=None) -> float:
    correct = 0
    for xb, yb in _batches(x, y, batch_size, dev):
        if transform is not None:
            xb = transform(xb)
        correct += int((pred_fn(xb) == yb).sum())
    return correct / max(1, len(y))


def _area(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Mean accuracy over the level range: the trapezoid area under the curve ÷ its x span."""
    if len(xs) < 2 or xs[-1] == xs[0]:
        return float(ys[0]) if ys else 0.0
    a = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))
    return a / (xs[-1] - xs[0])


def _summary(rows: list[list[float]]) -> dict:
    t = torch.tensor(rows, dtype=torch.float64)  # (levels, draws)
    return {"mean": t.mean(1).tolist(), "std": (t.std(1, unbiased=False)).tolist(), "draws": t.tolist()}


def _sweep(name: str, key: str, levels: list[float], draws: int, models: list[str], measure, progress: bool) -> dict:
    """``measure(model, level, draw)`` for every level, draw and model: a noise or ablation curve
    (per level: mean, std and every draw), and its mean accuracy over the levels (``area``)."""
    from tqdm.auto import tqdm

    rows: dict[str, list[list[float]]] = {m: [] for m in models}
    with tqdm(total=len(levels) * draws, desc=name, disable=not progress, unit="draw") as bar:
        for level in levels:
            per: dict[str, list[float]] = {m: [] for m in models}
            for d in range(draws):
                for m in models:
                    per[m].append(measure(m, level, d))
                bar.update()
            for m in models:
                rows[m].append(per[m])
    out = {key: list(levels), "draws": draws, **{m: _summary(v) for m, v in rows.items()}}
    out["area"] = {m: _area(levels, out[m]["mean"]) for m in models}
    return out


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
    dataset=None,
    out: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
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

    Returns:
        Everything ``robustness.json`` holds.
    """
    from tqdm.auto import tqdm

    from growsearch.data import TEST_SELECTION_NOTE, create_dataset, with_validation
    from growsearch.loop import resolve_device
    from growsearch.results import RunResult, versions

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
    if out and (run / REPORT_FILE).exists() and not overwrite:
        from growsearch.results import OutputExistsError

        raise OutputExistsError(f"{run / REPORT_FILE} exists: pass --overwrite to replace it")
    info = RunResult.load(run)
    dev = resolve_device(device)
    members = load_members(run, device=dev)
    _check_members_match(run, members, info)
    w = member_weights(members, weights)
    ds_name = info.schedule["dataset"]
    ds = dataset if dataset is not None else create_dataset(ds_name)
    tr = info.schedule.get("train", {})
    ds = with_validation(ds, tr.get("val_fraction", 0.1), tr.get("val_seed", 0))  # the split the run selected on
    C = ds.num_classes
    if sorted(members[-1].classes) != list(range(C)):
        raise RobustnessError(f"{run}'s last stage covers {len(members[-1].classes)} of {C} classes: robustness needs a run whose final network sees all classes")
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

    x, y = ds.x_test, ds.y_test
    if samples is not None and samples < len(y):
        pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:samples].sort().values
        x, y = x[pick], y[pick]
    mean, std = ds.mean, ds.std
    nets = [_Normalized(m.model, mean, std, m.resolution).to(dev) for m in members]
    cls = [m.classes for m in members]
    final_idx = _index(members[-1].classes, dev)
    bnet = _Normalized(base.model, mean, std).to(dev) if base else None
    bidx = _index(base.classes, dev) if base else None

    def final_pred(xb):
        return final_idx[_forward(nets[-1:], xb)[0].argmax(1)]

    def mi_pred(xb):
        return mutual_inference(_forward(nets, xb), cls, w, num_classes=C, rule=rule)

    def base_pred(xb):
        return bidx[_forward([bnet], xb)[0].argmax(1)]

    models = {"final": final_pred, "final_mi": mi_pred} | ({"baseline": base_pred} if base else {})
    t0 = time.perf_counter()
    report: dict = {
        "run_dir": str(run), "baseline_dir": str(baseline_dir) if baseline_dir else None, "dataset": ds_name,
        "test_samples": len(y), "num_classes": C, "device": str(dev), "seed": seed,
        "members": [
            {"stage": m.stage, "arch": m.arch, "classes": len(m.classes), "val_acc": m.val_acc, "test_acc": m.test_acc, "weight": wt}
            for m, wt in zip(members, w)
        ],
        "selection": "test" if ds.val_fraction == 0 else "validation",
        "weights": weights if isinstance(weights, str) else list(w), "rule": rule,
    }

    # --- Gaussian noise (the same draws for every model) and unit ablation -------------------
    def noisy_acc(key: str, level: float, draw: int) -> float:
        g = torch.Generator(device=dev).manual_seed(seed * 100003 + draw)
        return _accuracy(models[key], x, y, batch_size, dev, lambda xb: (xb + level * torch.randn(xb.shape, generator=g, device=xb.device)).clamp(0, 1))

    abl_models = {"final": (members[-1].model, final_pred)} | ({"baseline": (base.model, base_pred)} if base else {})

    def ablated_acc(key: str, frac: float, draw: int) -> float:
        model, fn = abl_models[key]
        with ablate(model, frac, torch.Generator().manual_seed(seed * 100003 + draw)):
            return _accuracy(fn, x, y, batch_size, dev)

    report["noise"] = _sweep("noise", "std", noise, draws, list(models), noisy_acc, progress)
    report["ablation"] = _sweep("ablation", "fraction", ablation, draws, list(abl_models), ablated_acc, progress)

    # --- FGSM and no-decision detection -----------------------------------------------------
    attack_eps = sorted(set(eps) | {detect_eps})
    fm_final = foolbox_model(members[-1].model, mean, std, device=dev)
    fm_base = foolbox_model(base.model, mean, std, device=dev) if base else None
    hits = {k: [0] * len(attack_eps) for k in models}
    T = len(thresholds)
    det = {k: {"clean_abstain": torch.zeros(T, dtype=torch.float64), "adv_good": torch.zeros(T, dtype=torch.float64)} for k in models}
    di = attack_eps.index(detect_eps)

    def count_detection(key, clean_logits, clean_cls, adv_logits, yb):
        _, ab_clean = no_decision(clean_logits, clean_cls, thresholds, rule=rule)
        dec, ab_adv = no_decision(adv_logits, clean_cls, thresholds, rule=rule)
        det[key]["clean_abstain"] += ab_clean.double().sum(0).cpu()
        det[key]["adv_good"] += _good(dec, ab_adv, yb).double().sum(0).cpu()

    bar = tqdm(total=len(y), desc="fgsm", disable=not progress, unit="img")
    for xb, yb in _batches(x, y, batch_size, dev):
        clean = _forward(nets, xb)
        for k, (logits, final_ok, mi_ok) in enumerate(_attacked(nets, fm_final, cls, w, xb, yb, attack_eps, C, rule)):
            hits["final"][k] += final_ok
            hits["final_mi"][k] += mi_ok
            if k == di:
                count_detection("final", clean[-1:], cls[-1:], logits[-1:], yb)
                count_detection("final_mi", clean, cls, logits, yb)
        if base:
            bclean = _forward([bnet], xb)
            for k, adv in enumerate(_fgsm(fm_base, xb, _to_index(yb, base.classes, C), attack_eps)):
                logits = _forward([bnet], adv)
                hits["baseline"][k] += int((bidx[logits[0].argmax(1)] == yb).sum())
                if k == di:
                    count_detection("baseline", bclean, [base.classes], logits, yb)
        bar.update(len(yb))
    bar.close()
    # Thresholds for a target FNR are chosen on clean *validation* inputs, then read on test.
    val_abstain = {k: torch.zeros(T, dtype=torch.float64) for k in models}
    for xb, _ in _batches(ds.x_val, ds.y_val, batch_size, dev):
        clean = _forward(nets, xb)
        val_abstain["final"] += no_decision(clean[-1:], cls[-1:], thresholds, rule=rule)[1].double().sum(0).cpu()
        val_abstain["final_mi"] += no_decision(clean, cls, thresholds, rule=rule)[1].double().sum(0).cpu()
        if base:
            val_abstain["baseline"] += no_decision(_forward([bnet], xb), [base.classes], thresholds, rule=rule)[1].double().sum(0).cpu()
    n = max(1, len(y))
    report["fgsm"] = {"eps": eps, **{k: [hits[k][attack_eps.index(e)] / n for e in eps] for k in models}}
    report["fgsm"]["attack"] = "foolbox LinfFastGradientAttack, white-box on each column's own network; final_mi classifies the final network's adversarials by mutual inference"
    detection = {"eps": detect_eps, "thresholds": thresholds}
    for k in models:
        fnr = (det[k]["clean_abstain"] / n).tolist()
        tnr = (det[k]["adv_good"] / n).tolist()
        val_fnr = (val_abstain[k] / max(1, len(ds.y_val))).tolist()
        detection[k] = {"fnr": fnr, "tnr": tnr, "val_fnr": val_fnr}
        for pct in (5, 10):
            i = pick_threshold(val_fnr, pct / 100)
            detection[k][f"tnr_at_fnr_{pct}"] = None if i is None else tnr[i]  # test TNR at the δ validation chose
            detection[k][f"test_fnr_at_fnr_{pct}"] = None if i is None else fnr[i]  # what that δ costs on clean test inputs
            detection[k][f"delta_at_fnr_{pct}"] = None if i is None else thresholds[i]
    detection["definitions"] = {
        "fnr": "fraction of clean test inputs abstained on (confidence < δ; MI: unless every member that knows the decided class names it with confidence ≥ δ)",
        "tnr": "fraction of FGSM inputs with a good decision: abstained or classified correctly",
        "tnr_at_fnr_X": "test TNR at the largest δ whose FNR on clean validation inputs is ≤ X% (δ chosen on validation, read on test)",
    }
    if ds.val_fraction == 0:
        report["note"] = TEST_SELECTION_NOTE
    report["detection"] = detection
    report["wall_s"] = time.perf_counter() - t0
    report["versions"] = versions()
    if out:
        from growsearch.plots import plot_robustness
        from growsearch.results import write_json_atomic

        plot_robustness(report, run)
        write_json_atomic(run / REPORT_FILE, report)
    return report
