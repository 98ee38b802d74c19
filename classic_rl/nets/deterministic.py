"""The deterministic actor μ(s) and the action-value critic Q(s, a) of DDPG / TD3 (Box actions).

`QCritic` holds K independent critics (K = 2 for TD3's clipped double Q) as one ensemble: each layer
is a batched matmul over the K weight sets, so two critics cost about one call's overhead, not two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn

from classic_rl.nets.mlp import MLP, ObsEncoder


class DeterministicActor(nn.Module):
    """μ(s): observation [B, ...] -> action [B, D] = center + scale * tanh(MLP(s)), inside [low, high]."""

    def __init__(self, observation_space: gym.Space, action_space: gym.spaces.Box, hidden_sizes: Sequence[int]) -> None:
        super().__init__()
        if not isinstance(action_space, gym.spaces.Box):
            raise TypeError(f"a deterministic actor needs Box actions, not {action_space}")
        low = torch.as_tensor(action_space.low, dtype=torch.float32).reshape(-1)
        high = torch.as_tensor(action_space.high, dtype=torch.float32).reshape(-1)
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("scale", (high - low) / 2)
        self.action_shape = tuple(action_space.shape)
        self.encoder = ObsEncoder(observation_space)
        self.body = MLP(self.encoder.out_dim, hidden_sizes, int(math.prod(action_space.shape)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.center + self.scale * torch.tanh(self.body(self.encoder(obs)))  # [B, D]


class EnsembleLinear(nn.Module):
    """K independent linear layers applied at once: x [K, B, in] (or [B, in], shared) -> [K, B, out]."""

    def __init__(self, num_members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features)  # nn.Linear's default initialisation, per member
        self.weight = nn.Parameter(torch.empty(num_members, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # the same input for every member
            x = x.expand(self.weight.shape[0], *x.shape)
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"num_members={self.weight.shape[0]}, in_features={self.in_features}, out_features={self.out_features}"


class QCritic(nn.Module):
    """Q_k(s, a) for k < K: observation [B, ...], action [B, ...] -> values [K, B]."""

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.spaces.Box,
        hidden_sizes: Sequence[int],
        num_critics: int = 1,
    ) -> None:
        super().__init__()
        self.num_critics = num_critics
        self.encoder = ObsEncoder(observation_space)
        in_dim = self.encoder.out_dim + int(math.prod(action_space.shape))
        self.body = MLP(in_dim, hidden_sizes, 1, linear=lambda i, o: EnsembleLinear(num_critics, i, o))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.body(self._input(obs, action)).squeeze(-1)  # [K, B]

    def q1(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q_1(s, a) [B] alone (the actor's objective in TD3): member 0's weights, plain matmuls."""
        x = self._input(obs, action)
        for layer in self.body:
            x = torch.addmm(layer.bias[0], x, layer.weight[0]) if isinstance(layer, EnsembleLinear) else layer(x)
        return x.squeeze(-1)

    def _input(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.encoder(obs), action.float().flatten(1)], dim=-1)  # [B, obs_dim + act_dim]
