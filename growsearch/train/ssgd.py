"""SSGD: sparsity-promoting stochastic gradient descent by affine scaling (``train.optimizer: ssgd``).

Lee, Fedorov, Rao and Garudadri, "SSGD: sparsity-promoting stochastic gradient descent
algorithm for unbiased DNN pruning" (ICASSP 2020), after Fedorov et al., "Re-weighted learning
for sparsifying deep neural networks" (arXiv 1802.01616, the affine scaling transformation, AST).
The derivation, in the papers' terms:

1. Sparsity is sought through a separable *diversity measure* ``G(θ) = Σ g(θ_i)``, concave in
   ``θ_i²``, ``g(u) = f(u²)``: the log-sum measure ``g(u) = log(u² + ε)`` (SSGD's choice) or the
   p-norm measure ``g(u) = |u|^p``, 0 < p < 2. The iteratively reweighted ℓ2 framework minimises
   ``J(θ) + λ Σ θ_i² / ω_i²`` with the weights refreshed from the last iterate,
   ``ω_i² = (f'(θ_i²))⁻¹``: ``θ_i² + ε`` for log-sum, ``∝ |θ_i|^(2−p)`` for the p-norm.
2. The affine scaling transformation substitutes ``θ = Ω q`` with ``Ω = diag(ω)`` and takes the
   gradient step in ``q``: ``∇_q J(Ωq) = Ω ∇_θ J``, so mapped back to θ the step is
   ``θ ← θ − η Ω² ∇_θ J(θ)`` (no penalty term is added to the loss, which is what the SSGD
   paper calls *unbiased*). Large weights take large steps and small
   ones small steps: the descent concentrates on a few weights, as the affine-scaling methods of
   sparse signal recovery (FOCUSS) do, and the weights it does not use decay under the recipe's
   weight decay (a ridge ``λ‖q‖²`` on the scaled variables, applied unscaled to θ).

Implemented as one family of scalings, ``ω_i² = (θ_i² + ε)^s``: ``s = 1`` is SSGD's log-sum
measure, ``s = 1 − p/2`` the p-norm measure, and ``s = 0`` is plain SGD (the neutral setting: the
step equals :class:`torch.optim.SGD`'s to float tolerance; tested). ``s`` is ``ssgd_strength``.
Three choices are ours, not the papers': (a) ``θ_i²`` is taken relative to its tensor's mean
square and ``Ω²`` is divided by its mean over the tensor, so the scaling is free of the weights'
units and the recipe's learning rate keeps its meaning (a constant factor in Ω only rescales
η in the derivation; ``ε`` is therefore relative too); (b) the *filter* variant reweights whole
output channels: one ω per channel from the channel's mean square over every tensor that writes
it (the conv filter, its bias, the BatchNorm's γ and β), so what SSGD drives to zero is
what filter pruning removes; (c) no entry's ``Ω²`` exceeds ``MAX_SCALE`` (after (a), the last
weights of a nearly sparse tensor would otherwise step many times the LR and diverge).
Everything else (momentum, Nesterov, weight decay, the LR schedule, the zero mask applied after
each step) is torch's SGD: this class scales the gradients in place and then calls
:meth:`torch.optim.SGD.step`.

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([[1.0, 0.1]]))
    >>> opt = SSGD([w], lr=0.1, strength=1.0)
    >>> w.grad = torch.ones(1, 2)
    >>> _ = opt.step()
    >>> bool(1.0 - w[0, 0] > 0.1 - w[0, 1])  # the large weight moved further
    True
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

from growsearch.model.prune import channel_norms

__all__ = ["SSGD"]

# Ω² is divided by its mean, so when most of a tensor has gone to zero the few weights left would
# take steps many times the recipe's LR (16x with 3 of 48 left, which diverged on a least-squares test):
# no entry's step exceeds this multiple of plain SGD's.
MAX_SCALE = 4.0


class SSGD(torch.optim.SGD):
    """SGD whose gradient is scaled by ``Ω² = diag((θ² + ε)^s)`` before each step (relative to each
    tensor or channel group, normalised to mean 1 and capped: see the module).

    Args:
        params: as :class:`torch.optim.SGD` (parameter groups, each with its own weight decay).
        strength: ``s`` ≥ 0, the reweighting exponent (1: SSGD's log-sum measure; 0: plain SGD).
        eps: ``ε`` > 0, added to each relative squared magnitude (keeps zeroed weights trainable).
        channels: the filter variant: groups of tensors that write the same output channels (dim 0
            of each); every tensor of a group is reweighted by its channel's ω. ``None``: the
            per-weight variant, every parameter of two or more dimensions reweighted entry by entry.
        lr, momentum, weight_decay, nesterov: torch's SGD.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        *,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        strength: float = 1.0,
        eps: float = 1e-3,
        channels: Sequence[Sequence[torch.Tensor]] | None = None,
    ) -> None:
        if not strength >= 0:
            raise ValueError(f"SSGD strength must be >= 0, got {strength}")
        if not eps > 0:
            raise ValueError(f"SSGD eps must be > 0, got {eps}")
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        self.strength, self.eps = float(strength), float(eps)
        self.channels = [list(g) for g in channels] if channels is not None else None

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:  # the gradients must exist before they are scaled
            with torch.enable_grad():
                loss = closure()
        if self.strength > 0:
            if self.channels is None:
                for group in self.param_groups:
                    for p in group["params"]:
                        if p.grad is not None and p.dim() > 1:
                            p.grad.mul_(self._omega2(p.float().square()).to(p.grad.dtype))
            else:
                for members in self.channels:
                    w2 = self._omega2(channel_norms(members))
                    for p in members:
                        if p.grad is not None:
                            p.grad.mul_(w2.view(-1, *([1] * (p.dim() - 1))).to(p.grad.dtype))
        super().step()
        return loss

    def _omega2(self, sq: torch.Tensor) -> torch.Tensor:
        """``(sq/mean(sq) + ε)^s``, divided by its mean: the scaling of one tensor or channel group."""
        rel = sq / sq.mean().clamp_min(torch.finfo(sq.dtype).tiny)
        w2 = (rel + self.eps).pow(self.strength)
        return (w2 / w2.mean()).clamp_max(MAX_SCALE)
