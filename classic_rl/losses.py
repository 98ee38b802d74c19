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


# ----------------------------------------------------------------------------------------------
# policy gradients: every loss is minimised; log-probs [B] of the taken actions, advantages [B]


def policy_gradient_loss(log_prob: torch.Tensor, advantage: torch.Tensor) -> torch.Tensor:
    """-mean(A_t log π(a_t | s_t)) [scalar]: REINFORCE / actor-critic (seeds eq. 1.8, 1.23)."""
    return -(advantage.detach() * log_prob).mean()


def clipped_surrogate_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantage: torch.Tensor,
    clip_low: float,
    clip_high: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """-mean(min(ρ A, clip(ρ, 1 - clip_low, 1 + clip_high) A)), ρ = π/π_old (seeds eq. 1.28).

    Separate lower and upper ranges (DAPO's clip-higher when clip_high > clip_low). Stats:
    `clip_fraction` (share of samples whose ratio was clipped), `approx_kl` (see `kl_estimate`).
    """
    advantage, old_log_prob = advantage.detach(), old_log_prob.detach()
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()  # [B]
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss = -torch.min(ratio * advantage, clipped * advantage).mean()
    with torch.no_grad():
        clip_fraction = ((ratio < 1.0 - clip_low) | (ratio > 1.0 + clip_high)).float().mean()
        approx_kl = kl_estimate(log_ratio).mean()
    return loss, {"clip_fraction": clip_fraction, "approx_kl": approx_kl}


def kl_estimate(log_ratio: torch.Tensor) -> torch.Tensor:
    """Per-sample estimate of KL(π_old || π) from a ~ π_old: (ρ - 1) - log ρ >= 0, unbiased (Schulman's k3)."""
    return torch.expm1(log_ratio) - log_ratio


def kl_penalty_loss(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantage: torch.Tensor, beta: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """-mean(ρ A) + β KL(π_old || π): PPO's KL-penalty objective (seeds eq. 1.27), KL by `kl_estimate`."""
    log_ratio = log_prob - old_log_prob.detach()
    kl = kl_estimate(log_ratio).mean()
    loss = -(log_ratio.exp() * advantage.detach()).mean() + beta * kl
    return loss, {"approx_kl": kl.detach()}


def adaptive_kl_beta(beta: float, kl: float, kl_target: float) -> float:
    """Schulman et al. 2017 §4: β x 2 when KL > 1.5 target, β / 2 when KL < target / 1.5, else β."""
    if kl > 1.5 * kl_target:
        return beta * 2.0
    if kl < kl_target / 1.5:
        return beta / 2.0
    return beta


def value_loss(
    value: torch.Tensor,
    target: torch.Tensor,
    old_value: torch.Tensor | None = None,
    clip: float | None = None,
) -> torch.Tensor:
    """0.5 mean((V - target)²) [scalar]; with `clip`, the max with V clipped to old_value ± clip (PPO2)."""
    target = target.detach()
    loss = (value - target).square()
    if clip is not None:
        old_value = old_value.detach()
        clipped = old_value + (value - old_value).clamp(-clip, clip)
        loss = torch.max(loss, (clipped - target).square())
    return 0.5 * loss.mean()


def entropy_loss(entropy: torch.Tensor) -> torch.Tensor:
    """-mean(H(π(· | s))) [scalar]: minimising it with a positive coefficient is the entropy bonus."""
    return -entropy.mean()


# ----------------------------------------------------------------------------------------------
# deterministic actor-critic (DDPG, TD3): K critics' values [K, B]


def smoothed_target_action(
    next_action: torch.Tensor, noise: torch.Tensor, noise_clip: float, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """clip(μ'(s') + clip(ε, -c, c), low, high) [B, D]: TD3's target policy smoothing (Fujimoto 2018 eq. 15)."""
    return torch.max(torch.min(next_action + noise.clamp(-noise_clip, noise_clip), high), low)


def clipped_double_q_target(
    reward: torch.Tensor, next_q: torch.Tensor, terminated: torch.Tensor, gamma: float | torch.Tensor
) -> torch.Tensor:
    """y = r + γ (1 - terminated) min_k Q'_k(s', a') [B] from next_q [K, B] (TD3 eq. 10; K = 1: DDPG eq. 5)."""
    return td_target(reward, next_q.min(dim=0).values, terminated, gamma)


def critic_mse_loss(q: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Σ_k mean((Q_k(s, a) - y)²) [scalar] for q [K, B], a fixed target [B] (DDPG eq. 4, TD3 per critic)."""
    target = target.detach()
    loss = (q - target).square().mean(dim=-1).sum()
    return loss, {"q_mean": q.detach()[0].mean()}


def deterministic_policy_loss(q: torch.Tensor) -> torch.Tensor:
    """-mean(Q(s, μ(s))) [scalar] for q [B]: its gradient is the deterministic policy gradient (Silver 2014; DDPG eq. 6)."""
    return -q.mean()
