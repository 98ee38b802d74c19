"""CartPole-v1 as a batched torch kernel (Barto, Sutton & Anderson 1983; Gymnasium 1.4.0 numbers).

State layout (same as Gymnasium's `env.unwrapped.state`): [x, x_dot, theta, theta_dot].
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces

from classic_rl.envs.torch_env import in_float64, stack_columns


class CartPole:
    id = "CartPole-v1"
    state_dim = 4
    max_episode_steps = 500
    reward_threshold: float | None = 475.0

    def __init__(self) -> None:
        self.gravity = 9.8
        self.mass_cart = 1.0
        self.mass_pole = 0.1
        self.half_length = 0.5  # half the pole's length
        self.force_mag = 10.0
        self.tau = 0.02  # explicit Euler step [s]
        self.x_threshold = 2.4
        self.theta_threshold = 12 * 2 * math.pi / 360  # 12 degrees in radians
        self.reset_bound = 0.05  # every state variable ~ U(-0.05, 0.05) at reset

        obs_high = np.array(
            [2 * self.x_threshold, np.inf, 2 * self.theta_threshold, np.inf], dtype=np.float32
        )
        self.observation_space = spaces.Box(-obs_high, obs_high, dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    def initial_state(self, n: int, generator: torch.Generator, out: torch.Tensor) -> torch.Tensor:
        return out[:n].uniform_(-self.reset_bound, self.reset_bound, generator=generator)

    def initial_state_from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        return (2.0 * u - 1.0) * self.reset_bound

    def step(self, state: torch.Tensor, action: torch.Tensor):
        total_mass = self.mass_pole + self.mass_cart
        pole_moment = self.mass_pole * self.half_length
        x, x_dot, theta, theta_dot = state.unbind(1)
        force = (action.to(state.dtype) * 2.0 - 1.0) * self.force_mag  # 0 -> left, 1 -> right
        cos, sin = in_float64(torch.cos, theta), in_float64(torch.sin, theta)
        temp = (force + pole_moment * theta_dot.square() * sin) / total_mass
        theta_acc = (self.gravity * sin - cos * temp) / (
            self.half_length * (4.0 / 3.0 - self.mass_pole * cos.square() / total_mass)
        )
        x_acc = temp - pole_moment * theta_acc * cos / total_mass
        next_state = stack_columns(
            (
                x + self.tau * x_dot,
                x_dot + self.tau * x_acc,
                theta + self.tau * theta_dot,
                theta_dot + self.tau * theta_acc,
            )
        )
        x, theta = next_state[:, 0], next_state[:, 2]
        terminated = (
            (x < -self.x_threshold)
            | (x > self.x_threshold)
            | (theta < -self.theta_threshold)
            | (theta > self.theta_threshold)
        )
        reward = torch.ones_like(x)  # +1 every step, the terminating one included
        return next_state, reward, terminated

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        return state.to(torch.float32, copy=True)
