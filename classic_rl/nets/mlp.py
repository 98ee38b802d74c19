"""Multi-layer perceptrons and the observation encoder in front of every network."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn


class ObsEncoder(nn.Module):
    """Observation [N, *shape] -> features [N, D]: flattens a Box, one-hot encodes a Discrete."""

    def __init__(self, space: gym.Space) -> None:
        super().__init__()
        if isinstance(space, gym.spaces.Discrete):
            self.num_classes, self.out_dim = int(space.n), int(space.n)
        elif isinstance(space, gym.spaces.Box):
            self.num_classes, self.out_dim = None, int(torch.Size(space.shape).numel())
        else:
            raise TypeError(f"unsupported observation space {space}; expected Box or Discrete")

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.num_classes is not None:
            return nn.functional.one_hot(obs.long(), self.num_classes).float()
        return obs.float().flatten(1)


class MLP(nn.Sequential):
    """in_dim -> hidden... -> out_dim with an activation between layers (none after the last)."""

    def __init__(
        self, in_dim: int, hidden_sizes: Sequence[int], out_dim: int, activation: type[nn.Module] = nn.ReLU
    ) -> None:
        layers: list[nn.Module] = []
        for width in hidden_sizes:
            layers += [nn.Linear(in_dim, width), activation()]
            in_dim = width
        layers.append(nn.Linear(in_dim, out_dim))
        super().__init__(*layers)


class QNetwork(nn.Module):
    """Q(s, ·): observation [N, ...] -> action values [N, A]."""

    def __init__(self, observation_space: gym.Space, num_actions: int, hidden_sizes: Sequence[int]) -> None:
        super().__init__()
        self.encoder = ObsEncoder(observation_space)
        self.body = MLP(self.encoder.out_dim, hidden_sizes, num_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(self.encoder(obs))
