"""Exploration noise processes for continuous actions, batched over envs: [N, D], in units of the
action's half-range (the agent scales by (high - low) / 2). Each keeps its state for checkpoints.
"""

from __future__ import annotations

import math
from typing import Any

import torch


class GaussianNoise:
    """ε_t ~ N(0, σ²) i.i.d. per step (the TD3 paper's exploration noise)."""

    def __init__(self, shape: tuple[int, ...], std: float, device: torch.device | str = "cpu") -> None:
        self.shape, self.std, self.device = shape, std, torch.device(device)

    def sample(self, generator: torch.Generator) -> torch.Tensor:
        return self.std * torch.randn(self.shape, device=self.device, generator=generator)

    def reset(self, done: torch.Tensor) -> None:
        """Start again where `done` [N] is True (nothing to do: the noise has no memory)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class OrnsteinUhlenbeckNoise:
    """x_{t+1} = x_t + θ (μ - x_t) dt + σ sqrt(dt) ε_t, ε_t ~ N(0, 1): the temporally correlated noise
    of DDPG (Lillicrap et al. 2016 §7: θ = 0.15, σ = 0.2), Euler-Maruyama discretisation.

    Stationary law N(μ, σ² / (2θ)) for small θ dt; rows restart at x = μ when their episode ends.
    """

    def __init__(
        self, shape: tuple[int, ...], std: float, theta: float = 0.15, dt: float = 1e-2, mean: float = 0.0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.std, self.theta, self.dt, self.mean = std, theta, dt, mean
        self.x = torch.full(shape, mean, device=device)  # [N, D]

    def sample(self, generator: torch.Generator) -> torch.Tensor:
        eps = torch.randn(self.x.shape, device=self.x.device, generator=generator)
        self.x += self.theta * (self.mean - self.x) * self.dt + self.std * math.sqrt(self.dt) * eps
        return self.x.clone()

    def reset(self, done: torch.Tensor) -> None:
        self.x[done] = self.mean

    def state_dict(self) -> dict[str, Any]:
        return {"x": self.x.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.x = state["x"].to(self.x.device).clone()  # its own shape: mode=eval builds the agent for other N


def make_noise(kind: str, shape: tuple[int, ...], std: float, theta: float, dt: float,
               device: torch.device | str = "cpu") -> GaussianNoise | OrnsteinUhlenbeckNoise:
    """`kind` = "gaussian" | "ou" (the `agent.exploration_noise` key)."""
    if kind == "gaussian":
        return GaussianNoise(shape, std, device)
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(shape, std, theta, dt, device=device)
    raise ValueError(f"unknown exploration noise {kind!r}; allowed: gaussian, ou")
