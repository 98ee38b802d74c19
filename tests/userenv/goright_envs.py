"""A user's own environments, as a user package would define them (tests/test_api.py imports this
module by name, the way `env.id=goright_envs:GoRight-v0` does).

GoRight: a corridor of LENGTH cells, start at cell 0, goal at the last cell. Action 1 moves right,
0 moves left (a wall at 0). Each step costs STEP_COST; reaching the goal pays GOAL and terminates.
The optimal return walks straight right: GOAL - STEP_COST * (LENGTH - 2) = 0.4 for LENGTH 8.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

LENGTH, STEP_COST, GOAL = 8, 0.1, 1.0
OPTIMAL_RETURN = GOAL - STEP_COST * (LENGTH - 2)


class GoRight(gym.Env):
    """The Gymnasium version: observation = one-hot cell (float32), Discrete(2) actions."""

    def __init__(self, length: int = LENGTH) -> None:
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (length,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.position = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length, np.float32)
        obs[self.position] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = 0
        return self._obs(), {}

    def step(self, action):
        self.position = max(0, self.position + (1 if int(action) == 1 else -1))
        terminated = self.position == self.length - 1
        return self._obs(), GOAL if terminated else -STEP_COST, terminated, False, {}


gym.register(id="GoRight-v0", entry_point=GoRight, max_episode_steps=30, reward_threshold=OPTIMAL_RETURN)


class GoRightDynamics:
    """The same corridor as a torch-native Dynamics (classic_rl/envs/torch_env.py): state [N, 1] = the cell."""

    id = "GoRightTorch-v0"
    state_dim = 1
    max_episode_steps = 30
    reward_threshold = OPTIMAL_RETURN

    def __init__(self, length: int = LENGTH) -> None:
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (length,), np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def initial_state(self, n: int, generator: torch.Generator, out: torch.Tensor) -> torch.Tensor:
        out[:n] = 0.0  # every episode starts at cell 0
        return out[:n]

    def step(self, state: torch.Tensor, action: torch.Tensor):
        move = torch.where(action == 1, 1.0, -1.0).to(state.dtype)
        cell = (state[:, 0] + move).clamp(min=0.0)
        terminated = cell >= self.length - 1
        reward = torch.where(terminated, GOAL, -STEP_COST).to(torch.float32)
        return cell[:, None], reward, terminated

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(state[:, 0].long(), self.length).to(torch.float32)
