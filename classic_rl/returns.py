"""Return and advantage estimators: pure functions of rollout tensors shaped [T, N] (time, env).

Contract shared by every function here, for step t of env n:
    reward[t]      r_t, the reward of the step
    value[t]       V(s_t), the critic's value of the observation the action was chosen on
    next_value[t]  V(s_{t+1}) of the TRUE next observation: at a truncation the final observation's
                   value (never the reset observation's); at the rollout's last row the value of the
                   observation the rollout stopped on
    terminated[t]  s_{t+1} is terminal: zeroes the bootstrap γ V(s_{t+1})
    done[t]        terminated | truncated: an episode ended, the recursion does not cross it
"""

from __future__ import annotations

import torch

from classic_rl import distributed


def gae(
    reward: torch.Tensor,
    value: torch.Tensor,
    next_value: torch.Tensor,
    terminated: torch.Tensor,
    done: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE(γ, λ) (Schulman et al. 2016) -> (advantage [T, N], return [T, N] = advantage + value).

    λ = 1 gives the bootstrapped Monte-Carlo return minus V; λ = 0 the one-step TD error.
    """
    # δ_t = r_t + γ (1 - terminated_t) V(s_{t+1}) - V(s_t)  (notes 003 §2.1, TD error)
    delta = reward + gamma * (~terminated).to(reward.dtype) * next_value - value  # [T, N]
    carry = gamma * lam * (~done).to(reward.dtype)  # [T, N] no recursion across an episode end
    advantage = torch.empty_like(delta)
    last = torch.zeros_like(delta[0])  # [N] A_{T} = 0
    for t in range(delta.shape[0] - 1, -1, -1):
        last = delta[t] + carry[t] * last  # A_t = δ_t + γλ A_{t+1}  (notes 003 §2.1, recursive form)
        advantage[t] = last
    return advantage, advantage + value


def reward_to_go(
    reward: torch.Tensor,
    next_value: torch.Tensor,
    terminated: torch.Tensor,
    done: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """G_t = Σ_{t'>=t} γ^{t'-t} r_{t'} within the episode [T, N] (seeds eq. 1.8, 1.14).

    Where the episode is cut (truncation, or the rollout's last row) the tail is γ V(s_{t+1}) from
    `next_value`; pass zeros for the plain sum of the rewards seen. Equals `gae(..., lam=1)`'s return.
    """
    not_terminal = (~terminated).to(reward.dtype)  # [T, N]
    returns = torch.empty_like(reward)
    last = next_value[-1]  # [N] the value the rollout stopped on
    for t in range(reward.shape[0] - 1, -1, -1):
        tail = torch.where(done[t], next_value[t], last)  # the episode ended: its own final value
        last = reward[t] + gamma * not_terminal[t] * tail
        returns[t] = last
    return returns


def complete_episode_mask(done: torch.Tensor, ends: torch.Tensor | None = None) -> torch.Tensor:
    """[T, N] bool: step t's episode ends within the rollout (at t or later), so its reward-to-go is complete.

    With `ends` [T, N] (e.g. terminated), only episodes whose end is flagged there count as complete.
    """
    ends = done if ends is None else ends
    mask = torch.empty_like(done)
    last = torch.zeros_like(done[0])  # [N] the episode running at the rollout's end is incomplete
    for t in range(done.shape[0] - 1, -1, -1):
        last = torch.where(done[t], ends[t], last)
        mask[t] = last
    return mask


def normalize_advantage(advantage: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
    """(A - mean) / (std + eps) [any shape], the mean and std over the elements where `mask` (bool,
    same shape) holds, or over all. A single sample is only centred: its sample std is undefined
    (NaN) and would poison the whole update."""
    real = advantage if mask is None else advantage[mask]
    if distributed.world_size() > 1:  # over every rank's batch, as one process on the concatenated batch
        mean, std = distributed.mean_std(real)
        return (advantage - mean) / (std + eps)
    centered = advantage - real.mean()
    return centered if real.numel() < 2 else centered / (real.std() + eps)
