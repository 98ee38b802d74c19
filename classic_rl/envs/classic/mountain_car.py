"""MountainCar-v0 and MountainCarContinuous-v0 as batched torch kernels (Moore 1990; Gymnasium 1.4.0).

State layout (same as Gymnasium's `env.unwrapped.state`): [position, velocity].
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from classic_rl.envs.torch_env import in_float64, stack_columns


class _MountainCarBase:
    state_dim = 2

    def __init__(self) -> None:
        self.min_position = -1.2
        self.max_position = 0.6
        self.max_speed = 0.07
        self.goal_velocity = 0.0
        self.hill_gravity = 0.0025  # velocity change per step from the slope: -g cos(3 x)
        self.reset_low = -0.6
        self.reset_high = -0.4
        low = np.array([self.min_position, -self.max_speed], dtype=np.float32)
        high = np.array([self.max_position, self.max_speed], dtype=np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

    def initial_state(self, n: int, generator: torch.Generator, out: torch.Tensor) -> torch.Tensor:
        out = out[:n]
        out[:, 0].uniform_(self.reset_low, self.reset_high, generator=generator)
        out[:, 1].zero_()
        return out

    def initial_state_from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        position = self.reset_low + (self.reset_high - self.reset_low) * u[:, 0]
        return stack_columns((position, torch.zeros_like(position)))

    def _move(self, position: torch.Tensor, velocity: torch.Tensor):
        """Clip speed, integrate position, clip position; the left wall is inelastic."""
        velocity = velocity.clamp(-self.max_speed, self.max_speed)
        position = (position + velocity).clamp(self.min_position, self.max_position)
        velocity = torch.where((position <= self.min_position) & (velocity < 0), 0.0, velocity)
        terminated = (position >= self.goal_position) & (velocity >= self.goal_velocity)
        return position, velocity, terminated

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        return state.to(torch.float32, copy=True)


class MountainCar(_MountainCarBase):
    id = "MountainCar-v0"
    max_episode_steps = 200
    reward_threshold: float | None = -110.0

    def __init__(self) -> None:
        super().__init__()
        self.goal_position = 0.5
        self.force = 0.001  # actions 0, 1, 2 -> push left, none, right
        self.action_space = spaces.Discrete(3)

    def step(self, state: torch.Tensor, action: torch.Tensor):
        position, velocity = state.unbind(1)
        push = (action - 1).to(state.dtype) * self.force
        velocity = velocity + (push + in_float64(torch.cos, 3 * position) * (-self.hill_gravity))
        position, velocity, terminated = self._move(position, velocity)
        reward = torch.full_like(position, -1.0)
        return stack_columns((position, velocity)), reward, terminated


class MountainCarContinuous(_MountainCarBase):
    id = "MountainCarContinuous-v0"
    max_episode_steps = 999
    reward_threshold: float | None = 90.0

    def __init__(self) -> None:
        super().__init__()
        self.goal_position = 0.45
        self.power = 0.0015
        self.min_action = -1.0
        self.max_action = 1.0
        self.goal_reward = 100.0
        self.action_cost = 0.1  # reward -= 0.1 * action**2 (of the action as given, before clipping)
        self.action_space = spaces.Box(self.min_action, self.max_action, shape=(1,), dtype=np.float32)

    def step(self, state: torch.Tensor, action: torch.Tensor):
        a = action.reshape(-1).to(torch.float32)
        push = a.clamp(self.min_action, self.max_action) * self.power  # float32, as in Gymnasium
        if state.dtype == torch.float32:
            next_state, terminated = self._integrate(state, push)
        else:
            # Gymnasium resets to a float64 state, stores a float32 one after every step, and
            # NumPy computes in the stored dtype: float32 arithmetic where the state is float32.
            single = state.to(torch.float32)
            stored_single = (single.to(state.dtype) == state).all(dim=1)
            next_single, terminated_single = self._integrate(single, push)
            next_double, terminated_double = self._integrate(state, push)
            next_state = torch.where(stored_single[:, None], next_single.to(state.dtype), next_double)
            terminated = torch.where(stored_single, terminated_single, terminated_double)
        reward = terminated.to(state.dtype) * self.goal_reward - a.to(state.dtype).square() * self.action_cost
        return next_state.to(torch.float32).to(state.dtype), reward, terminated

    def _integrate(self, state: torch.Tensor, push: torch.Tensor):
        """One step in the dtype of `state`; `push` is float32 and the hill term float64, rounded
        to float32 before they meet (Python floats are float64, NumPy float32 scalars stay float32)."""
        position, velocity = state.unbind(1)
        hill = self.hill_gravity * torch.cos((3 * position).to(torch.float64))
        velocity = velocity + (push - hill.to(torch.float32)).to(state.dtype)
        position, velocity, terminated = self._move(position, velocity)
        return stack_columns((position, velocity)), terminated
