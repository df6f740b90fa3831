"""The attack adapter: growsearch's networks under Foolbox's FGSM, one member or all of them voting.

Images are in pixel space, ``[0, 1]``; Foolbox normalises them with the dataset's mean and std
through ``preprocessing``, so ε is in pixel units. The attack sees only the final network; the
vote (``growsearch.robust.vote``) then reads every member on the attacked images.

Example:
    >>> from growsearch.robust.attack import fgsm_accuracy  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from torch import nn

from growsearch.data.loader import resize
from growsearch.robust.members import Member, RobustnessError
from growsearch.robust.vote import _index, member_weights, mutual_inference

__all__ = ["foolbox_model", "fgsm_accuracy"]


def _check_levels(name: str, values: Sequence[float], upper: float | None = None) -> list[float]:
    vals = [float(v) for v in values]
    if not vals:
        raise RobustnessError(f"{name}: the list is empty; give at least one value")
    if any(v < 0 or not math.isfinite(v) or (upper is not None and v > upper) for v in vals):
        rng = f"in [0, {upper:g}]" if upper is not None else "≥ 0"
        raise RobustnessError(f"{name}: every value must be {rng}, got {vals}")
    return vals


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


def foolbox_model(
    model: nn.Module, mean: Sequence[float], std: Sequence[float], *, device: torch.device | str | None = None
):
    """``foolbox.PyTorchModel`` of ``model`` (put in eval mode) on [0, 1] images, normalised by
    ``preprocessing`` exactly as training normalised them."""
    try:
        import foolbox as fb
    except ImportError:  # an optional dependency: the extra that brings it
        raise RobustnessError('FGSM needs Foolbox, which is optional: pip install "growsearch[robustness]"') from None

    model.eval()
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    return fb.PyTorchModel(
        model, bounds=(0, 1), preprocessing=dict(mean=list(mean), std=list(std), axis=-3), device=dev
    )


def _check_images(x: torch.Tensor) -> None:
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise RobustnessError(
            f"images lie in [{float(x.min()):.3g}, {float(x.max()):.3g}], outside the models' bounds [0, 1]: "
            "pass uint8 images / 255, not normalised ones (normalisation is the model's preprocessing)"
        )


def _batches(
    x: torch.Tensor, y: torch.Tensor, size: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
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
        raise RobustnessError(
            "an FGSM label is not among the attacked network's classes: attack the network trained on all classes"
        )
    _, clipped, _ = fb.attacks.LinfFastGradientAttack()(fmodel, xb, labels, epsilons=list(eps))
    return [c.detach() for c in clipped]


@torch.no_grad()
def _forward(nets: Sequence[nn.Module], x: torch.Tensor) -> list[torch.Tensor]:
    return [net(x).float() for net in nets]
