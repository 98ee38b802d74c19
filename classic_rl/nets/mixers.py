"""Value-decomposition mixers: the team's Q_tot(s, a) from each agent's Q_i(o_i, a_i) [B, A].

Both are monotonic in every Q_i (∂Q_tot/∂Q_i >= 0), so the joint greedy action is every agent's own
greedy action: decentralised execution picks what the centralised Q_tot would.
"""

from __future__ import annotations

import torch
from torch import nn


class VDNMixer(nn.Module):
    """VDN (Sunehag et al. 2018): Q_tot = sum_i Q_i."""

    def forward(self, q: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        return q.sum(-1)  # [B, A] -> [B]


class QMixer(nn.Module):
    """QMIX (Rashid et al. 2018): Q_tot = w2ᵀ elu(W1ᵀ q + b1) + b2 with the weights made by hypernetworks
    of the global state, kept non-negative by an absolute value (monotonicity, the paper's eq. 5); b2 is
    a small MLP of the state (the paper's V(s)). Two-layer weight hypernetworks, as PyMARL's default."""

    def __init__(self, state_dim: int, num_agents: int, embed_dim: int = 32, hypernet_hidden: int = 64) -> None:
        super().__init__()
        self.num_agents, self.embed_dim = num_agents, embed_dim
        self.hyper_w1 = nn.Sequential(nn.Linear(state_dim, hypernet_hidden), nn.ReLU(),
                                      nn.Linear(hypernet_hidden, num_agents * embed_dim))
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.hyper_w2 = nn.Sequential(nn.Linear(state_dim, hypernet_hidden), nn.ReLU(),
                                      nn.Linear(hypernet_hidden, embed_dim))
        self.hyper_b2 = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """q [B, A], state [B, S] -> Q_tot [B]."""
        w1 = self.hyper_w1(state).abs().view(-1, self.num_agents, self.embed_dim)  # [B, A, E]
        hidden = nn.functional.elu(torch.bmm(q.unsqueeze(1), w1).squeeze(1) + self.hyper_b1(state))  # [B, E]
        w2 = self.hyper_w2(state).abs()  # [B, E]
        return (hidden * w2).sum(-1) + self.hyper_b2(state).squeeze(-1)
