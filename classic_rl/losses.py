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


def categorical_projection(
    next_probs: torch.Tensor, reward: torch.Tensor, discount: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """Target distribution [B, K]: r + discount·z projected onto the fixed support (Bellemare et al. 2017, Alg. 1).

    next_probs [B, K] = p(s', a*); reward [B]; discount [B] = γ^n (1 - terminated), so a terminal
    target puts all its mass at r; support [K] evenly spaced from v_min to v_max. Each shifted atom
    r + discount·z_j is clipped to [v_min, v_max] and its mass split between the two nearest atoms in
    proportion to closeness (all of it to one atom when it lands exactly on it).
    """
    num_atoms = support.shape[0]
    v_min, v_max = support[0].item(), support[-1].item()
    delta = (v_max - v_min) / (num_atoms - 1)
    shifted = (reward[:, None] + discount[:, None] * support[None, :]).clamp(v_min, v_max)  # [B, K]
    position = (shifted - v_min) / delta  # [B, K] in [0, K - 1]
    lower = position.floor()
    upper_weight = position - lower  # 0 when the atom lands on a support point (always at v_max)
    lower = lower.long()
    upper = (lower + 1).clamp(max=num_atoms - 1)
    target = torch.zeros_like(next_probs)
    target.scatter_add_(1, lower, next_probs * (1.0 - upper_weight))
    target.scatter_add_(1, upper, next_probs * upper_weight)
    return target


def categorical_loss(
    log_probs_taken: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy -Σ_k m_k log p_k(s, a) between the projected target m [B, K] and log p [B, K].

    Returns the (optionally importance-weighted) mean and, per sample, the cross-entropy [B] that
    Rainbow uses as the replay priority (Hessel et al. 2018, §2).
    """
    per_sample = -(target.detach() * log_probs_taken).sum(dim=-1)  # [B]
    loss = per_sample.mean() if weights is None else (weights * per_sample).mean()
    return loss, {"cross_entropy": per_sample.detach()}


# ----------------------------------------------------------------------------------------------
# policy gradients: every loss is minimised; log-probs [B] of the taken actions, advantages [B]


def policy_gradient_loss(log_prob: torch.Tensor, advantage: torch.Tensor) -> torch.Tensor:
    """-mean(A_t log π(a_t | s_t)) [scalar]: REINFORCE / actor-critic (seeds eq. 1.8, 1.23)."""
    return -(advantage.detach() * log_prob).mean()


def clipped_surrogate(
    log_ratio: torch.Tensor, advantage: torch.Tensor, clip_low: float, clip_high: float
) -> torch.Tensor:
    """Per-sample -min(ρ A, clip(ρ, 1 - clip_low, 1 + clip_high) A), ρ = exp(log_ratio) (seeds eq. 1.28).

    Any shape ([B], or [T, N] tokens); reduce with a mean or `aggregate_loss`.
    """
    advantage = advantage.detach()
    ratio = log_ratio.exp()
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    return -torch.min(ratio * advantage, clipped * advantage)


def clipped_surrogate_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantage: torch.Tensor,
    clip_low: float,
    clip_high: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """mean of `clipped_surrogate` over samples [B], ρ = π/π_old (seeds eq. 1.28).

    Separate lower and upper ranges (DAPO's clip-higher when clip_high > clip_low). Stats:
    `clip_fraction` (share of samples whose ratio was clipped), `approx_kl` (see `kl_estimate`).
    """
    log_ratio = log_prob - old_log_prob.detach()
    loss = clipped_surrogate(log_ratio, advantage, clip_low, clip_high).mean()
    return loss, clip_stats(log_ratio, clip_low, clip_high)


def clip_stats(log_ratio: torch.Tensor, clip_low: float | None = None, clip_high: float | None = None,
               mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """approx_kl (k3 of KL(π_old || π)) and, with the clip range, clip_fraction, over `mask` if given."""
    with torch.no_grad():
        mask = torch.ones_like(log_ratio, dtype=torch.bool) if mask is None else mask
        stats = {"approx_kl": kl_estimate(log_ratio)[mask].mean()}
        if clip_low is not None:
            ratio = log_ratio.exp()
            stats["clip_fraction"] = ((ratio < 1.0 - clip_low) | (ratio > 1.0 + clip_high))[mask].float().mean()
    return stats


def kl_estimate(log_ratio: torch.Tensor) -> torch.Tensor:
    """Per-sample estimate of KL(π_old || π) from a ~ π_old: (ρ - 1) - log ρ >= 0, unbiased (Schulman's k3)."""
    return torch.expm1(log_ratio) - log_ratio


def kl_penalty_surrogate(log_ratio: torch.Tensor, advantage: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-sample -(ρ A) + β k3(ρ), ρ = exp(log_ratio): PPO's KL-penalty objective (seeds eq. 1.27)
    before its mean, any shape ([B], or [T, N] tokens, reduced with `aggregate_loss`)."""
    return -(log_ratio.exp() * advantage.detach()) + beta * kl_estimate(log_ratio)


def kl_penalty_loss(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantage: torch.Tensor, beta: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """-mean(ρ A) + β KL(π_old || π): PPO's KL-penalty objective (seeds eq. 1.27), KL by `kl_estimate`."""
    log_ratio = log_prob - old_log_prob.detach()
    loss = kl_penalty_surrogate(log_ratio, advantage, beta).mean()
    return loss, {"approx_kl": kl_estimate(log_ratio).mean().detach()}


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
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """0.5 mean((V - target)²) [scalar]; with `clip`, the max with V clipped to old_value ± clip (PPO2);
    the mean runs over `mask` (bool, same shape) when given."""
    target = target.detach()
    loss = (value - target).square()
    if clip is not None:
        old_value = old_value.detach()
        clipped = old_value + (value - old_value).clamp(-clip, clip)
        loss = torch.max(loss, (clipped - target).square())
    return 0.5 * (loss.mean() if mask is None else loss[mask].mean())


def entropy_loss(entropy: torch.Tensor) -> torch.Tensor:
    """-mean(H(π(· | s))) [scalar]: minimising it with a positive coefficient is the entropy bonus."""
    return -entropy.mean()


# ----------------------------------------------------------------------------------------------
# GRPO and its variants (seeds 001): outcome rewards per sequence, losses over the tokens of rounds
# [T, N] (time, sequence) with a bool mask [T, N] of real tokens


def group_advantages(returns: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4,
                     batch_std: torch.Tensor | None = None) -> torch.Tensor:
    """A_i [N] from returns [N] in groups of `group_size` consecutive rows (GRPO, Shao et al. 2024):
    scale="group": (r - mean_group) / (std_group + eps); "batch": the std of the whole batch instead
    (Hu et al. 2025, REINFORCE++; `batch_std` when the batch is wider than `returns`, as over several
    ranks); "none": r - mean_group (Dr. GRPO, Liu et al. 2025). Sample std."""
    grouped = returns.reshape(-1, group_size)
    centered = grouped - grouped.mean(dim=1, keepdim=True)
    if scale == "group":
        centered = centered / (grouped.std(dim=1, keepdim=True) + eps)
    elif scale == "batch":
        centered = centered / ((returns.std() if batch_std is None else batch_std) + eps)
    elif scale != "none":
        raise ValueError(f"scale={scale!r}; expected group, batch or none")
    return centered.reshape(-1)


def informative_groups(returns: torch.Tensor, group_size: int) -> torch.Tensor:
    """[N] bool: the row's group has rewards that are not all equal (DAPO's dynamic sampling keeps
    only these: a group of equal rewards has zero advantage everywhere and no gradient)."""
    grouped = returns.reshape(-1, group_size)
    varied = (grouped != grouped[:, :1]).any(dim=1)
    return varied.repeat_interleave(group_size)


def masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x where mask holds, 0 elsewhere (torch.where, not x * mask: inf * 0 is NaN, and a masked
    position's value, however wild, must not reach the loss or its gradient)."""
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))


def sequence_log_ratio(log_ratio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """GSPO (Zheng et al. 2025): the sequence's length-normalised log-ratio (1/|y|) Σ_t log ρ_t of each
    column of log_ratio [T, N], broadcast back to its tokens [T, N]; one ratio, and one clip, per sequence."""
    m = mask.to(log_ratio.dtype)
    per_sequence = masked(log_ratio, mask).sum(0) / m.sum(0).clamp(min=1.0)  # [N]
    return per_sequence.expand_as(log_ratio)


def aggregate_loss(per_token: torch.Tensor, mask: torch.Tensor, mode: str = "token_mean",
                   denominator: torch.Tensor | float | None = None) -> torch.Tensor:
    """Reduce a per-token loss [T, N] over the real tokens (mask [T, N] bool) to a scalar:
    token_mean            Σ_i Σ_t l / Σ_i |y_i|         every token weighs the same (DAPO)
    seq_mean_token_mean   (1/N) Σ_i (1/|y_i|) Σ_t l     every sequence weighs the same (GRPO)
    seq_mean_token_sum    (1/N) Σ_i Σ_t l               no length normalisation (Dr. GRPO)
    Sequences without a real token are left out of the sequence means. `denominator`: that of a
    larger batch (`aggregate_denominator`), so that the losses of its parts add up to the batch's."""
    m = mask.to(per_token.dtype)
    total = masked(per_token, mask)
    if denominator is None:
        denominator = aggregate_denominator(mask, mode)
    if mode == "token_mean":
        return total.sum() / denominator
    per_sequence = total.sum(0)  # [N]
    if mode == "seq_mean_token_mean":
        per_sequence = per_sequence / m.sum(0).clamp(min=1.0)
    elif mode != "seq_mean_token_sum":
        raise ValueError(f"mode={mode!r}; expected token_mean, seq_mean_token_mean or seq_mean_token_sum")
    return per_sequence.sum() / denominator  # a sequence without tokens adds 0


def aggregate_denominator(mask: torch.Tensor, mode: str) -> torch.Tensor:
    """What `aggregate_loss` divides by: the number of real tokens (token_mean) or of sequences
    holding one (the sequence means), at least 1."""
    if mode == "token_mean":
        return mask.sum().clamp(min=1).to(torch.float32)
    return (mask.sum(0) > 0).sum().clamp(min=1).to(torch.float32)


def kl_penalized_reward(reward: torch.Tensor, log_prob: torch.Tensor, ref_log_prob: torch.Tensor,
                        coef: float) -> torch.Tensor:
    """r_t - β log(π(a_t|s_t) / π_ref(a_t|s_t)) [T, N]: RLHF PPO's per-token KL penalty (seeds eq. 1.29)."""
    return reward - coef * (log_prob - ref_log_prob).detach()


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


# ----------------------------------------------------------------------------------------------
# preference optimisation (DPO and relatives)


def dpo_loss(chosen_log_prob: torch.Tensor, rejected_log_prob: torch.Tensor, ref_chosen_log_prob: torch.Tensor,
             ref_rejected_log_prob: torch.Tensor, beta: float, loss_type: str = "sigmoid"
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Preference loss on pairs, every input [B] (a completion's log-probability under π and π_ref).

    h = log π(y_w|x)/π_ref(y_w|x) - log π(y_l|x)/π_ref(y_l|x)
    sigmoid: -log σ(β h)             DPO (Rafailov et al. 2023, eq. 7; the seeds' DPO loss)
    ipo:     (h - 1/(2β))^2           IPO (Azar et al. 2023; TRL averages log-probs per token for it)
    hinge:   max(0, 1 - β h)          SLiC-style hinge
    Stats (TRL's names): rewards/chosen = β log π/π_ref of y_w, rewards/rejected of y_l, their
    margins and accuracies (chosen > rejected), logps/chosen, logps/rejected."""
    chosen_ratio = chosen_log_prob - ref_chosen_log_prob
    rejected_ratio = rejected_log_prob - ref_rejected_log_prob
    h = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        per_pair = -torch.nn.functional.logsigmoid(beta * h)
    elif loss_type == "ipo":
        per_pair = (h - 1.0 / (2.0 * beta)) ** 2
    elif loss_type == "hinge":
        per_pair = torch.relu(1.0 - beta * h)
    else:
        raise ValueError(f"unknown loss_type {loss_type!r}; sigmoid, ipo or hinge")
    chosen_reward, rejected_reward = (beta * chosen_ratio).detach(), (beta * rejected_ratio).detach()
    stats = {"rewards/chosen": chosen_reward.mean(), "rewards/rejected": rejected_reward.mean(),
             "rewards/accuracies": (chosen_reward > rejected_reward).float().mean(),
             "rewards/margins": (chosen_reward - rejected_reward).mean(),
             "logps/chosen": chosen_log_prob.detach().mean(), "logps/rejected": rejected_log_prob.detach().mean()}
    return per_pair.mean(), stats


def bradley_terry_loss(chosen_reward: torch.Tensor, rejected_reward: torch.Tensor, margin: torch.Tensor | None = None,
                       center_coef: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Reward-model loss on pairs, rewards [B]: -log σ(r_w - r_l - m) (the seeds' RM loss, Bradley-Terry;
    optional margin m [B] as in Llama 2), plus center_coef * mean((r_w + r_l)^2), which keeps the
    rewards centred on 0 (TRL's RewardTrainer center_rewards_coefficient)."""
    diff = chosen_reward - rejected_reward
    loss = -torch.nn.functional.logsigmoid(diff - (margin if margin is not None else 0.0)).mean()
    if center_coef:
        loss = loss + center_coef * ((chosen_reward + rejected_reward) ** 2).mean()
    stats = {"accuracy": (diff > 0).float().mean().detach(), "margin": diff.mean().detach(),
             "reward_mean": torch.cat([chosen_reward, rejected_reward]).mean().detach(),
             "reward_std": torch.cat([chosen_reward, rejected_reward]).std().detach()}
    return loss, stats
