"""Losses and targets as pure tensor functions: inputs are never modified, stats come back named."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def td_target(
    reward: torch.Tensor, next_value: torch.Tensor, terminated: torch.Tensor, gamma: float | torch.Tensor
) -> torch.Tensor:
    """y = r + gamma * (1 - terminated) * V(s')  [B]; truncation still bootstraps (seeds eq. 1.11).

    `gamma` is a float or a per-sample discount [B] (γ^n for an n-step return in `reward`).
    """
    return reward + gamma * (1.0 - terminated) * next_value


def q_learning_loss(
    q_taken: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Huber loss between Q(s, a) [B] and a fixed target [B]; optional per-sample weights [B]."""
    target = target.detach()
    per_sample = F.smooth_l1_loss(q_taken, target, reduction="none")  # Huber, delta = 1 (Mnih et al. 2015)
    loss = per_sample.mean() if weights is None else (weights * per_sample).mean()
    td_error = target - q_taken.detach()
    return loss, {"td_error": td_error, "q_mean": q_taken.detach().mean()}
