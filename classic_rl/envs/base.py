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

Lock-step envs (`spec.lockstep`: the text envs, and classic envs with `env.group_size` > 1) start all N
episodes together and reset them together: a row whose episode ended waits, and `info["active"]` [N]
bool says which rows took a real step (a row's last step is active; its waiting steps are not, with
reward 0 and both flags False). Once every row has ended, the next `obs` starts a new round.
`spec.group_size` G: rows g*G .. g*G+G-1 of a round start from the same state (GRPO's groups).
`spec.round_reward` (the text envs): every step's reward is 0 and the step that ends a round carries
info["round_reward"] [N], each row's reward for its episode, scored for the whole round at once; it
belongs to the row's last active step (the trainer, the evaluation and the lock-step collector put it
there).
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
    lockstep: bool = False  # episodes start and reset together; info["active"] masks waiting rows
    group_size: int = 1  # G consecutive rows of a round share their start (lock-step envs)
    text: Any = None  # TextSpec of a text-generation env (classic_rl/envs/text.py), else None
    round_reward: bool = False  # rewards come for the whole round in info["round_reward"] (see above)
    num_agents: int = 1  # > 1: a multi-agent env (envs/multiagent): obs [N, A, ...], reward [N, A]
    state_space: gym.Space | None = None  # multi-agent: the global state info["state"] [N, ...] of centralised critics

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
