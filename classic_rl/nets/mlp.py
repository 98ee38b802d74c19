"""Multi-layer perceptrons and the observation encoder in front of every network."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import gymnasium as gym
import torch
from torch import nn

from classic_rl.nets.noisy import NoisyLinear


class ObsEncoder(nn.Module):
    """Observation [N, *shape] -> features [N, D]: flattens a Box, one-hot encodes a Discrete.

    `scale`: map each Box dimension with finite bounds [low, high] linearly onto [-1, 1] (dimensions
    with an infinite bound pass unchanged), so that, e.g., MountainCar's velocity (±0.07) reaches the
    first layer on the same scale as its position (-1.2 to 0.6).
    """

    def __init__(self, space: gym.Space, scale: bool = False) -> None:
        super().__init__()
        if isinstance(space, gym.spaces.Discrete):
            self.num_classes, self.out_dim = int(space.n), int(space.n)
        elif isinstance(space, gym.spaces.Box):
            self.num_classes, self.out_dim = None, int(torch.Size(space.shape).numel())
        else:
            raise TypeError(f"unsupported observation space {space}; expected Box or Discrete")
        self.scaled = scale and self.num_classes is None
        if self.scaled:  # x -> (x - mid) / half_width where both bounds are finite, else x
            low = torch.as_tensor(space.low, dtype=torch.float32).flatten()
            high = torch.as_tensor(space.high, dtype=torch.float32).flatten()
            finite = torch.isfinite(low) & torch.isfinite(high) & (high > low)
            mid = torch.where(finite, (high + low) / 2, torch.zeros_like(low))
            half = torch.where(finite, (high - low) / 2, torch.ones_like(low))
            # derived from the space, so not saved: checkpoints stay the same with or without it
            self.register_buffer("mid", mid, persistent=False)
            self.register_buffer("half_width", half, persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.num_classes is not None:
            return nn.functional.one_hot(obs.long(), self.num_classes).float()
        x = obs.float().flatten(1)
        return (x - self.mid) / self.half_width if self.scaled else x


class MLP(nn.Sequential):
    """in_dim -> hidden... -> out_dim with an activation between layers (none after the last).

    `linear` builds each layer (nn.Linear, or NoisyLinear for a noisy network), or is a list with
    one builder per layer; out_dim None ends with the last hidden activation (a trunk for heads).
    `layer_norm`: LayerNorm (Ba et al. 2016) between each hidden layer and its activation.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_sizes: Sequence[int],
        out_dim: int | None,
        activation: type[nn.Module] = nn.ReLU,
        linear: Callable[[int, int], nn.Module] | Sequence[Callable[[int, int], nn.Module]] = nn.Linear,
        layer_norm: bool = False,
    ) -> None:
        num_layers = len(hidden_sizes) + (out_dim is not None)
        builders = list(linear) if isinstance(linear, Sequence) else [linear] * num_layers
        if len(builders) != num_layers:
            raise ValueError(f"{len(builders)} layer builders for {num_layers} layers")
        layers: list[nn.Module] = []
        for width, build in zip(hidden_sizes, builders):
            layers += [build(in_dim, width), *([nn.LayerNorm(width)] if layer_norm else []), activation()]
            in_dim = width
        if out_dim is not None:
            layers.append(builders[-1](in_dim, out_dim))
        super().__init__(*layers)
        self.out_dim = out_dim if out_dim is not None else in_dim


class DuelingHead(nn.Module):
    """Features [N, D] -> Q [N, A] = V(s) + A(s, a) - mean_a A(s, a)  (Wang et al. 2016, eq. 9).

    With num_atoms K > 1 the same aggregation is applied to each atom's logit: [N, A, K] (Rainbow).
    """

    def __init__(
        self, in_dim: int, num_actions: int, linear: Callable[[int, int], nn.Module] = nn.Linear, num_atoms: int = 1
    ) -> None:
        super().__init__()
        self.num_actions, self.num_atoms = num_actions, num_atoms
        self.value = linear(in_dim, num_atoms)
        self.advantage = linear(in_dim, num_actions * num_atoms)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        advantage = self.advantage(features).view(-1, self.num_actions, self.num_atoms)  # [N, A, K]
        value = self.value(features).unsqueeze(1)  # [N, 1, K]
        q = value + advantage - advantage.mean(dim=1, keepdim=True)
        return q.squeeze(-1) if self.num_atoms == 1 else q  # [N, A] or [N, A, K]


class QNetwork(nn.Module):
    """Q(s, ·): observation [N, ...] -> action values [N, A]; optionally dueling, noisy, distributional.

    With a `support` z [K] (C51, Bellemare et al. 2017) the net outputs a categorical distribution over
    the K atoms for each action, `log_probs(obs)` [N, A, K], and Q(s, a) = Σ_k z_k p_k(s, a).
    """

    def __init__(
        self,
        observation_space: gym.Space,
        num_actions: int,
        hidden_sizes: Sequence[int],
        dueling: bool = False,
        noisy_sigma0: float | None = None,
        noisy_layers: int | None = None,
        support: torch.Tensor | None = None,
        scale_obs: bool = False,
        layer_norm: bool = False,
    ) -> None:
        """`noisy_layers`: how many of the last layers are noisy (None: all); the dueling streams count as one.
        `scale_obs`: ObsEncoder's bounds scaling; `layer_norm`: MLP's LayerNorm on the hidden layers."""
        super().__init__()
        self.num_actions = num_actions
        self.num_atoms = 1 if support is None else int(support.numel())
        depth = len(hidden_sizes) + 1
        num_noisy = 0 if noisy_sigma0 is None else depth if noisy_layers is None else noisy_layers
        if not 0 <= num_noisy <= depth:
            raise ValueError(f"noisy_layers = {noisy_layers} must be between 1 and the {depth} layers of the net")
        noisy = partial(NoisyLinear, sigma0=noisy_sigma0)
        linears = [nn.Linear] * (depth - num_noisy) + [noisy] * num_noisy  # one builder per layer
        self.encoder = ObsEncoder(observation_space, scale=scale_obs)
        if dueling:
            trunk = MLP(self.encoder.out_dim, hidden_sizes, None, linear=linears[:-1], layer_norm=layer_norm)
            head = DuelingHead(trunk.out_dim, num_actions, linears[-1], self.num_atoms)
            self.body = nn.Sequential(*trunk, head)
        else:
            self.body = MLP(
                self.encoder.out_dim, hidden_sizes, num_actions * self.num_atoms, linear=linears, layer_norm=layer_norm
            )
        self.register_buffer("support", support)

    def log_probs(self, obs: torch.Tensor) -> torch.Tensor:
        """log p_k(s, a) [N, A, K] of a distributional net."""
        if self.support is None:
            raise RuntimeError("log_probs needs a distributional QNetwork (built with a support)")
        logits = self.body(self.encoder(obs)).view(-1, self.num_actions, self.num_atoms)
        return logits.log_softmax(dim=-1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.support is None:
            return self.body(self.encoder(obs))
        return (self.log_probs(obs).exp() * self.support).sum(dim=-1)  # E[Z(s, a)] [N, A]
