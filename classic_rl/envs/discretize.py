"""Discretized observations: a Box observation [N, D] becomes one Discrete state index [N] (int64).

Each dimension d is cut into bins[d] uniform bins over [low[d], high[d]]; bin i holds
low + i·w <= x < low + (i + 1)·w (w the bin width), values below low / at or above high go to the
edge bins. The state index is row-major over the per-dimension bins (the first dimension varies
slowest). Bounds, first found wins: the config's low/high, BOUNDS below, the Box's own bounds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import gymnasium as gym
import torch

from classic_rl.config import UserError
from classic_rl.envs.base import BatchedEnv, check_no_options

# Documented bounds where the Box is unbounded (or too wide to be useful), per env id.
BOUNDS: dict[str, tuple[list[float], list[float]]] = {
    # [x, x_dot, theta, theta_dot]: x and theta at their termination limits (2.4, 12°); the
    # velocities at ±3 m/s and ±3.5 rad/s, which random and balancing policies rarely leave
    "CartPole-v1": ([-2.4, -3.0, -0.2095, -3.5], [2.4, 3.0, 0.2095, 3.5]),
}


def bin_edges(low: list[float], high: list[float], bins: list[int]) -> list[torch.Tensor]:
    """Inner bin edges per dimension: low + (high - low) i / bins for i = 1 .. bins - 1 (computed in float64)."""
    fraction = lambda b: torch.arange(1, b, dtype=torch.float64) / b  # noqa: E731  (exact 1/2 for the middle edge)
    return [(lo + (hi - lo) * fraction(b)).float() for lo, hi, b in zip(low, high, bins)]


def discretize(obs: torch.Tensor, edges: list[torch.Tensor], bins: list[int]) -> torch.Tensor:
    """obs [N, D] -> state index [N] int64, row-major over the per-dimension bin indices."""
    index = torch.zeros(obs.shape[0], dtype=torch.int64, device=obs.device)
    for d, (e, b) in enumerate(zip(edges, bins)):
        index = index * b + torch.bucketize(obs[:, d].contiguous(), e, right=True)  # e[i-1] <= x < e[i] -> i
    return index


class DiscretizedVectorEnv(BatchedEnv):
    """Wraps a VectorEnv with 1-D Box observations; observations and info["final_obs"] become indices [N]."""

    def __init__(
        self,
        env: Any,
        bins: int | list[int],
        low: list[float] | None = None,
        high: list[float] | None = None,
    ) -> None:
        box = env.single_observation_space
        env_id = env.spec.id
        if not isinstance(box, gym.spaces.Box) or len(box.shape) != 1:
            raise UserError(f"env.discretize needs a 1-D Box observation space; {env_id} has {box}")
        dims = box.shape[0]
        bins = [bins] * dims if isinstance(bins, int) else list(bins)
        default_low, default_high = BOUNDS.get(env_id, (box.low.tolist(), box.high.tolist()))
        low = list(default_low if low is None else low)
        high = list(default_high if high is None else high)
        for key, values in (("bins", bins), ("low", low), ("high", high)):
            if len(values) != dims:
                raise UserError(f"env.discretize.{key} has {len(values)} values; {env_id} observations have {dims}")
        unbounded = [d for d in range(dims) if not (math.isfinite(low[d]) and math.isfinite(high[d]))]
        if unbounded:
            raise UserError(f"env.discretize: {env_id} dimensions {unbounded} are unbounded; "
                            f"pass env.discretize.low=[...] and env.discretize.high=[...] ({dims} values each)")
        if any(lo >= hi for lo, hi in zip(low, high)):
            raise UserError(f"env.discretize.low {low} must be below env.discretize.high {high} in every dimension")
        self.env, self.bins, self.low, self.high = env, bins, low, high
        self.edges = [e.to(env.device) for e in bin_edges(low, high, bins)]
        self.num_envs, self.device = env.num_envs, env.device
        self.single_observation_space = gym.spaces.Discrete(math.prod(bins))
        self.single_action_space = env.single_action_space
        self.spec = dataclasses.replace(env.spec, observation_space=self.single_observation_space)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[torch.Tensor, dict[str, Any]]:
        check_no_options(options, self)
        obs, info = self.env.reset(seed=seed)
        return discretize(obs, self.edges, self.bins), info

    def step(self, actions: torch.Tensor):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        info = {**info, "final_obs": discretize(info["final_obs"], self.edges, self.bins)}
        return discretize(obs, self.edges, self.bins), reward, terminated, truncated, info

    @property
    def restarts_on_resume(self) -> bool:
        return getattr(self.env, "restarts_on_resume", False)

    def state_dict(self) -> dict[str, Any]:
        return self.env.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env.load_state_dict(state)

    def close(self, **kwargs: Any) -> None:
        self.env.close()
        self.closed = True
