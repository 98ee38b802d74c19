"""Proportional prioritized experience replay (Schaul et al. 2016) on a sum tree."""

from __future__ import annotations

from typing import Any

import torch

from classic_rl.buffers.replay import Batch, ReplayBuffer
from classic_rl.buffers.sum_tree import SumTree


class PrioritizedReplayBuffer(ReplayBuffer):
    """Samples transition i with probability P(i) = p_i^α / Σ_k p_k^α, p_i = |δ_i| + ε.

    New transitions enter at the largest priority seen so far, so each is replayed at least once
    soon. `sample` returns importance-sampling weights w_i = (size · P(i))^-β / max_j w_j for the
    current `beta`, which the agent anneals towards 1.
    """

    def __init__(self, *args: Any, alpha: float = 0.6, eps: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alpha, self.eps, self.beta = alpha, eps, 1.0
        self.tree = SumTree(self.capacity, self.device)
        self.max_priority = torch.ones((), dtype=torch.float64, device=self.device)  # max p_i (before ^α)

    def add(self, *values: torch.Tensor) -> slice | torch.Tensor:
        where = super().add(*values)
        if isinstance(where, slice):
            where = torch.arange(where.start, where.stop, device=self.device)
        self.tree.update(where, (self.max_priority**self.alpha).expand(where.shape[0]))
        return where

    def sample_many(self, count: int, batch_size: int, generator: torch.Generator) -> list[Batch]:
        raise NotImplementedError("prioritized batches depend on the priorities each step updates: call sample")

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        # stratified: one uniform draw in each of batch_size equal slices of the total mass (paper App. B.2.1)
        total = self.tree.total
        u = torch.rand(batch_size, device=self.device, generator=generator, dtype=torch.float64)
        mass = (torch.arange(batch_size, device=self.device) + u) * (total / batch_size)
        indices = self.tree.find(mass)
        probs = self.tree.get(indices) / total  # P(i) [B]
        weights = (self.size * probs) ** -self.beta
        return self.gather(indices)._replace(weights=(weights / weights.max()).float())

    def update_priorities(self, indices: torch.Tensor, td_error: torch.Tensor) -> None:
        """p_i = |δ_i| + ε for the sampled `indices` [B] after a gradient step on them."""
        priority = td_error.detach().abs().to(torch.float64) + self.eps
        self.max_priority = torch.maximum(self.max_priority, priority.max())
        self.tree.update(indices, priority**self.alpha)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "tree": self.tree.state_dict(), "max_priority": self.max_priority}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.tree.load_state_dict(state["tree"])
        self.max_priority = state["max_priority"].to(self.device)
