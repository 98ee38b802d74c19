"""The one batched environment contract every agent talks to.

Contract (Gymnasium's vector API, same-step auto-reset, everything a torch tensor on `env.device`):

    obs, info = env.reset(seed=None)                      # obs [N, *obs_shape]
    obs, reward, terminated, truncated, info = env.step(actions)
        actions    [N] (discrete, int64) or [N, *act_shape] (continuous, float32)
        obs        [N, *obs_shape]  the observation to act on NEXT (already reset where an episode ended)
        reward     [N] float32
        terminated [N] bool  the episode reached a terminal state: never bootstrap from it
        truncated  [N] bool  the episode was cut (time limit): bootstrap from info["final_obs"]
        info["final_obs"] [N, *obs_shape] the true last observation of episodes that just ended,
                          equal to `obs` where no episode ended.

As in Gymnasium, `terminated` and `truncated` can both be True (a terminal state reached on the
time-limit step); every bootstrap mask uses `terminated` alone, so such a step is not bootstrapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import torch


@dataclass(frozen=True)
class EnvSpec:
    """What an agent needs to know about an environment before it sees it."""

    id: str
    num_envs: int
    observation_space: gym.Space  # single environment
    action_space: gym.Space  # single environment
    max_episode_steps: int | None
    reward_threshold: float | None
    device: torch.device

    @property
    def discrete_actions(self) -> bool:
        return isinstance(self.action_space, gym.spaces.Discrete)

    @property
    def discrete_observations(self) -> bool:
        return isinstance(self.observation_space, gym.spaces.Discrete)


class VectorEnv(Protocol):
    """Batched environment: see the module docstring for the exact contract."""

    spec: EnvSpec
    num_envs: int
    device: torch.device
    single_observation_space: gym.Space
    single_action_space: gym.Space

    def reset(self, seed: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]: ...

    def step(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]: ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the exact same stream of episodes."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def close(self) -> None: ...
