"""Pendulum-v1 as a batched torch kernel (Gymnasium 1.4.0 numbers).

State layout (same as Gymnasium's `env.unwrapped.state`): [theta, theta_dot], theta = 0 upright,
never wrapped (only the cost uses the angle normalised to [-pi, pi)).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces

from classic_rl.envs.torch_env import in_float64, stack_columns


class Pendulum:
    id = "Pendulum-v1"
    state_dim = 2
    max_episode_steps = 200
    reward_threshold: float | None = None

    def __init__(self) -> None:
        self.max_speed = 8.0
        self.max_torque = 2.0
        self.dt = 0.05
        self.g = 10.0
        self.m = 1.0
        self.l = 1.0
        self.reset_theta = math.pi  # theta ~ U(-pi, pi), theta_dot ~ U(-1, 1)
        self.reset_theta_dot = 1.0

        high = np.array([1.0, 1.0, self.max_speed], dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space = spaces.Box(-self.max_torque, self.max_torque, shape=(1,), dtype=np.float32)

    def initial_state(self, n: int, generator: torch.Generator, out: torch.Tensor) -> torch.Tensor:
        out = out[:n]
        out[:, 0].uniform_(-self.reset_theta, self.reset_theta, generator=generator)
        out[:, 1].uniform_(-self.reset_theta_dot, self.reset_theta_dot, generator=generator)
        return out

    def initial_state_from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        theta = (2.0 * u[:, 0] - 1.0) * self.reset_theta
        theta_dot = (2.0 * u[:, 1] - 1.0) * self.reset_theta_dot
        return stack_columns((theta, theta_dot))

    def step(self, state: torch.Tensor, action: torch.Tensor):
        theta, theta_dot = state.unbind(1)
        # The action is float32 and NumPy keeps float32 * python-float in float32: Gymnasium
        # computes the action's terms in float32 and the rest in float64. So does this.
        u = action.reshape(-1).to(torch.float32).clamp(-self.max_torque, self.max_torque)
        angle = in_float64(lambda x: torch.remainder(x + math.pi, 2 * math.pi), theta) - math.pi
        cost = angle.square() + 0.1 * theta_dot.square() + (0.001 * u.square()).to(state.dtype)
        torque_acc = (3.0 / (self.m * self.l**2) * u).to(state.dtype)
        gravity_acc = 3 * self.g / (2 * self.l) * in_float64(torch.sin, theta)
        theta_dot = theta_dot + (gravity_acc + torque_acc) * self.dt
        theta_dot = theta_dot.clamp(-self.max_speed, self.max_speed)
        theta = theta + theta_dot * self.dt
        terminated = torch.zeros_like(theta, dtype=torch.bool)
        return stack_columns((theta, theta_dot)), -cost, terminated

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        theta, theta_dot = state.unbind(1)
        cos, sin = in_float64(torch.cos, theta), in_float64(torch.sin, theta)
        return stack_columns((cos, sin, theta_dot)).to(torch.float32)
