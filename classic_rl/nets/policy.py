"""Stochastic actors (categorical, diagonal Gaussian) and the state-value critic of the policy-gradient agents.

Action bounds (Box actions): the Gaussian is sampled unbounded; the env receives the sample clipped
to [low, high] (`Actor.env_action`) while the agent stores and scores the UNCLIPPED sample, so
log-probs and ratios are those of the distribution that was actually sampled (as SB3 and CleanRL do).
Tanh squashing would need a log-det correction and breaks the Gaussian's closed-form entropy; clipping
needs neither, at the price of a policy that may put mass beyond the bounds (the env sees the edge).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Literal

import gymnasium as gym
import torch
from torch import nn

from classic_rl.nets.mlp import MLP, ObsEncoder

# hardtanh is bounded like tanh at relu's price: torch's CPU tanh costs ~25x a relu here
Activation = Literal["tanh", "relu", "hardtanh", "leaky_relu"]
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh, "relu": nn.ReLU, "hardtanh": nn.Hardtanh, "leaky_relu": nn.LeakyReLU,
}


class Categorical:
    """π(a | s) over A discrete actions from logits [B, A]; samples with an explicit generator."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.log_probs = torch.log_softmax(logits, dim=-1)  # [B, A] log π(· | s)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.multinomial(self.log_probs.exp(), 1, generator=generator).squeeze(-1)  # [B]

    def sample_by_cdf(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A sample [B] by inverting the CDF with one uniform per row: O(A) work, no A random draws (a language
        model's vocabulary). A distribution, not a stream: the same generator gives other actions than sample()."""
        cdf = self.log_probs.exp().cumsum(-1)  # [B, A]
        total = cdf[:, -1:]
        u = torch.rand(total.shape, generator=generator, device=total.device, dtype=total.dtype) * total
        # right=True: the first action whose CDF exceeds u, never one of probability 0 (its CDF equals the one before)
        index = torch.searchsorted(cdf, torch.minimum(u, total.nextafter(torch.zeros_like(total))), right=True)
        return index.squeeze(-1)

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        return self.log_probs.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)  # [B]

    def entropy(self) -> torch.Tensor:
        return -(self.log_probs.exp() * self.log_probs).sum(-1)  # [B]

    def mode(self) -> torch.Tensor:
        return self.log_probs.argmax(-1)  # [B]


class DiagGaussian:
    """π(a | s) = N(mean [B, D], diag(exp(log_std [D]))²); log-probs and entropy summed over D."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor) -> None:
        self.mean, self.log_std = mean, log_std.expand_as(mean)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.log_std.exp() * noise  # [B, D]

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        z = (action - self.mean) * torch.exp(-self.log_std)
        return (-0.5 * z.square() - self.log_std - 0.5 * math.log(2 * math.pi)).sum(-1)  # [B]

    def entropy(self) -> torch.Tensor:
        return (self.log_std + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)  # [B]

    def mode(self) -> torch.Tensor:
        return self.mean


def _init(layer: nn.Linear, gain: float) -> nn.Linear:
    """Orthogonal weights, zero bias: the usual PPO initialisation (Andrychowicz et al. 2021)."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _body(observation_space: gym.Space, hidden_sizes: Sequence[int], out_dim: int | None, activation: str,
          out_gain: float) -> nn.Sequential:
    encoder = ObsEncoder(observation_space)
    mlp = MLP(encoder.out_dim, hidden_sizes, out_dim, ACTIVATIONS[activation])
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    for layer in linears:
        _init(layer, math.sqrt(2))
    if out_dim is not None:
        _init(linears[-1], out_gain)
    return nn.Sequential(encoder, *mlp)


class Actor(nn.Module):
    """Observation [B, ...] -> a Categorical (Discrete actions) or a DiagGaussian (Box actions).

    The Gaussian's log-std is a free parameter [D], independent of the state. The last layer starts
    at 0.01 gain, so the initial policy is near uniform (or near zero-mean).
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_sizes: Sequence[int],
        activation: str = "tanh",
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if self.discrete:
            out_dim = int(action_space.n)
        elif isinstance(action_space, gym.spaces.Box):
            out_dim = int(math.prod(action_space.shape))
            self.log_std = nn.Parameter(torch.full((out_dim,), float(log_std_init)))
            self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32).reshape(-1))
            self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32).reshape(-1))
        else:
            raise TypeError(f"unsupported action space {action_space}; expected Discrete or Box")
        self.body = _body(observation_space, hidden_sizes, out_dim, activation, out_gain=0.01)

    def forward(self, obs: torch.Tensor) -> Categorical | DiagGaussian:
        out = self.body(obs)
        return Categorical(out) if self.discrete else DiagGaussian(out, self.log_std)

    def env_action(self, action: torch.Tensor) -> torch.Tensor:
        """The action the env receives: discrete as is, continuous clipped to the Box bounds."""
        return action if self.discrete else torch.clamp(action, self.low, self.high)


class Critic(nn.Module):
    """V(s): observation [B, ...] -> state value [B]."""

    def __init__(self, observation_space: gym.Space, hidden_sizes: Sequence[int], activation: str = "tanh") -> None:
        super().__init__()
        self.body = _body(observation_space, hidden_sizes, 1, activation, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(obs).squeeze(-1)


def unsupported_spaces(observation_space: gym.Space, action_space: gym.Space) -> str | None:
    """None if Actor and Critic can be built for these spaces, else the reason (for agents' `supports`)."""
    if not isinstance(action_space, (gym.spaces.Discrete, gym.spaces.Box)):
        return f"needs Discrete or Box actions, not {action_space}"
    if not isinstance(observation_space, (gym.spaces.Discrete, gym.spaces.Box)):
        return f"needs Discrete or Box observations, not {observation_space}"
    return None


class ActorCritic(nn.Module):
    """An Actor (and optional Critic) behind the policy interface of lock-step rollouts, the one an
    LM policy (lm/policy.py) also has: `act` for one vector step, `evaluate` for a stored round
    [T, n, ...] at once, `reference_log_prob` under a frozen copy of the starting actor (KL terms)."""

    def __init__(self, actor: Actor, critic: Critic | None = None, reference: bool = False) -> None:
        super().__init__()
        self.actor, self.critic = actor, critic
        self.reference = copy.deepcopy(actor).requires_grad_(False) if reference else None

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool, generator: torch.Generator | None = None):
        """-> (env action, stored action, log π(action) [N], V [N] (zeros without a critic))."""
        dist = self.actor(obs)
        action = dist.sample(generator) if explore else dist.mode()
        value = self.critic(obs) if self.critic is not None else torch.zeros(obs.shape[0], device=obs.device)
        return self.actor.env_action(action), action, dist.log_prob(action), value

    def evaluate(self, obs: torch.Tensor, action: torch.Tensor, entropy: bool = True):
        """obs [T, n, ...], action [T, n, ...] -> (log-prob [T, n], entropy [T, n] or None, V [T, n] or None)."""
        T, n = action.shape[:2]
        flat_obs = obs.flatten(0, 1)
        dist = self.actor(flat_obs)
        log_prob = dist.log_prob(action.flatten(0, 1)).reshape(T, n)
        ent = dist.entropy().reshape(T, n) if entropy else None
        value = self.critic(flat_obs).reshape(T, n) if self.critic is not None else None
        return log_prob, ent, value

    @torch.no_grad()
    def reference_log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        T, n = action.shape[:2]
        return self.reference(obs.flatten(0, 1)).log_prob(action.flatten(0, 1)).reshape(T, n)
