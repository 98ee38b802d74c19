"""Multi-layer perceptrons and the observation encoder in front of every network."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import gymnasium as gym
import torch
from torch import nn

from classic_rl.nets.noisy import NoisyLinear


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
    """in_dim -> hidden... -> out_dim with an activation between layers (none after the last).

    `linear` builds each layer (nn.Linear, or NoisyLinear for a noisy network); out_dim None ends
    with the last hidden activation (a trunk for heads to sit on).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_sizes: Sequence[int],
        out_dim: int | None,
        activation: type[nn.Module] = nn.ReLU,
        linear: Callable[[int, int], nn.Module] = nn.Linear,
    ) -> None:
        layers: list[nn.Module] = []
        for width in hidden_sizes:
            layers += [linear(in_dim, width), activation()]
            in_dim = width
        if out_dim is not None:
            layers.append(linear(in_dim, out_dim))
        super().__init__(*layers)
        self.out_dim = out_dim if out_dim is not None else in_dim


class DuelingHead(nn.Module):
    """Features [N, D] -> Q [N, A] = V(s) + A(s, a) - mean_a A(s, a)  (Wang et al. 2016, eq. 9)."""

    def __init__(self, in_dim: int, num_actions: int, linear: Callable[[int, int], nn.Module] = nn.Linear) -> None:
        super().__init__()
        self.value = linear(in_dim, 1)
        self.advantage = linear(in_dim, num_actions)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        advantage = self.advantage(features)  # [N, A]
        return self.value(features) + advantage - advantage.mean(dim=-1, keepdim=True)


class QNetwork(nn.Module):
    """Q(s, ·): observation [N, ...] -> action values [N, A]; optionally dueling and/or noisy."""

    def __init__(
        self,
        observation_space: gym.Space,
        num_actions: int,
        hidden_sizes: Sequence[int],
        dueling: bool = False,
        noisy_sigma0: float | None = None,
    ) -> None:
        super().__init__()
        linear = nn.Linear if noisy_sigma0 is None else partial(NoisyLinear, sigma0=noisy_sigma0)
        self.encoder = ObsEncoder(observation_space)
        if dueling:
            trunk = MLP(self.encoder.out_dim, hidden_sizes, None, linear=linear)
            self.body = nn.Sequential(*trunk, DuelingHead(trunk.out_dim, num_actions, linear))
        else:
            self.body = MLP(self.encoder.out_dim, hidden_sizes, num_actions, linear=linear)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(self.encoder(obs))
