"""Mutual inference and adversarial-input detection: vote and threshold arithmetic on tensors.

*Mutual inference* (MI) is a weighted majority vote of every stage network of a run. A stage
network trained on the first k classes votes only among those classes: its argmax output j is a
vote for dataset class ``classes[j]``. Ties between classes with equal vote weight go to the
larger weighted sum of the members' softmax probabilities.

*No-decision*: for a threshold δ on the softmax confidence, one model abstains when its
confidence is below δ; MI abstains when no member is confident or the confident members
disagree. FNR(δ) is the fraction of clean inputs abstained on, TNR(δ) the fraction of attacked
inputs with a good decision (caught, or not fooled). Pure functions of logits: no models, no I/O.

Example:
    >>> import torch
    >>> from growsearch.robust.vote import mutual_inference
    >>> logits = [torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0, 3.0]])]
    >>> mutual_inference(logits, [[4, 7], [4, 7, 1]], [1.0, 0.9], num_classes=8)  # class 1: 0.9 of 0.9 known
    tensor([1])
    >>> mutual_inference(logits, [[4, 7], [4, 7, 1]], [1.0, 0.9], num_classes=8, rule="plain")
    tensor([4])
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from growsearch.robust.members import Member, RobustnessError

__all__ = [
    "member_weights",
    "RULES",
    "mutual_inference",
    "no_decision",
    "detection_rates",
    "tnr_at_fnr",
    "pick_threshold",
]


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


def _check_members(
    logits: Sequence[torch.Tensor], classes: Sequence[Sequence[int]], weights: Sequence[float], num_classes: int
) -> None:
    """One member per logits, classes list and weight; finite weights ≥ 0; each
    member's logits as wide as its classes, which lie in [0, num_classes)."""
    if not logits or not len(logits) == len(classes) == len(weights):
        raise RobustnessError(
            f"mutual inference needs one classes list and one weight per member: got {len(logits)} logits, {len(classes)} classes lists "
            f"and {len(weights)} weights"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise RobustnessError(f"num_classes must be a whole number ≥ 1, got {num_classes!r:.40}")
    if any(not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w) or w < 0 for w in weights):
        raise RobustnessError(f"member weights must be finite numbers ≥ 0, got {list(weights)!r:.120}")
    for m, (lg, cls) in enumerate(zip(logits, classes)):
        if lg.ndim != 2 or lg.shape[1] != len(cls) or lg.shape[0] != logits[0].shape[0]:
            raise RobustnessError(
                f"member {m}'s logits are {tuple(lg.shape)}: expected ({logits[0].shape[0]}, {len(cls)}), one column per class it knows"
            )
        if any(not 0 <= int(c) < num_classes for c in cls):
            raise RobustnessError(f"member {m} names classes outside [0, {num_classes}): {list(cls)!r:.120}")


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
    _check_members(logits, classes, weights, num_classes)
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
