"""Acrobot-v1 as a batched torch kernel (Sutton & Barto's 'book' dynamics, Gymnasium 1.4.0 numbers).

State layout (same as Gymnasium's `env.unwrapped.state`): [theta1, theta2, dtheta1, dtheta2].
One step integrates the equations of motion over `dt` with a single classical RK4 step, wraps both
angles into [-pi, pi] and clips both angular velocities.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces

from classic_rl.envs.torch_env import in_float64, stack_columns


def _wrap(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Shift `x` by whole periods (high - low) into [low, high]."""
    period = high - low
    above = torch.ceil((x - high) / period).clamp(min=0)
    below = torch.ceil((low - x) / period).clamp(min=0)
    return x - above * period + below * period


class Acrobot:
    id = "Acrobot-v1"
    state_dim = 4
    max_episode_steps = 500
    reward_threshold: float | None = -100.0

    def __init__(self) -> None:
        self.dt = 0.2
        self.link_length_1 = 1.0
        self.link_mass_1 = 1.0
        self.link_mass_2 = 1.0
        self.link_com_1 = 0.5  # position of each link's centre of mass
        self.link_com_2 = 0.5
        self.link_moi = 1.0  # moment of inertia of both links
        self.gravity = 9.8
        self.max_vel_1 = 4 * math.pi
        self.max_vel_2 = 9 * math.pi
        self.torques = (-1.0, 0.0, 1.0)  # action index -> torque on the joint between the links
        self.reset_bound = 0.1

        high = np.array([1.0, 1.0, 1.0, 1.0, self.max_vel_1, self.max_vel_2], dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space = spaces.Discrete(3)

    def initial_state(self, n: int, generator: torch.Generator, out: torch.Tensor) -> torch.Tensor:
        out = out[:n].uniform_(-self.reset_bound, self.reset_bound, generator=generator)
        # Gymnasium stores the reset state as float32: keep the same support in float64 too.
        return out.copy_(out.to(torch.float32))

    def initial_state_from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        return ((2.0 * u - 1.0) * self.reset_bound).to(torch.float32).to(u.dtype)

    def _derivatives(self, y: torch.Tensor, torque: torch.Tensor) -> torch.Tensor:
        """Time derivative [N, 4] of y = [theta1, theta2, dtheta1, dtheta2] under `torque`."""
        m1, m2 = self.link_mass_1, self.link_mass_2
        l1, lc1, lc2 = self.link_length_1, self.link_com_1, self.link_com_2
        i1 = i2 = self.link_moi
        g = self.gravity
        theta1, theta2, dtheta1, dtheta2 = y.unbind(1)
        cos2, sin2 = in_float64(torch.cos, theta2), in_float64(torch.sin, theta2)
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos2) + i1 + i2
        d2 = m2 * (lc2**2 + l1 * lc2 * cos2) + i2
        phi2 = m2 * lc2 * g * in_float64(torch.cos, theta1 + theta2 - math.pi / 2.0)
        phi1 = (
            -m2 * l1 * lc2 * dtheta2.square() * sin2
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin2
            + (m1 * lc1 + m2 * l1) * g * in_float64(torch.cos, theta1 - math.pi / 2)
            + phi2
        )
        # 'book' version of the second joint's acceleration (includes the dtheta1^2 term)
        ddtheta2 = (torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1.square() * sin2 - phi2) / (
            m2 * lc2**2 + i2 - d2.square() / d1
        )
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return stack_columns((dtheta1, dtheta2, ddtheta1, ddtheta2))

    def step(self, state: torch.Tensor, action: torch.Tensor):
        lo, mid, hi = self.torques  # table lookup, fusable and exact
        torque = torch.where(action == 0, lo, torch.where(action == 1, mid, hi)).to(state.dtype)
        h, h2 = self.dt, self.dt / 2.0
        k1 = self._derivatives(state, torque)
        k2 = self._derivatives(state + h2 * k1, torque)
        k3 = self._derivatives(state + h2 * k2, torque)
        k4 = self._derivatives(state + h * k3, torque)
        theta1, theta2, dtheta1, dtheta2 = (state + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)).unbind(1)
        next_state = stack_columns(
            (
                _wrap(theta1, -math.pi, math.pi),
                _wrap(theta2, -math.pi, math.pi),
                dtheta1.clamp(-self.max_vel_1, self.max_vel_1),
                dtheta2.clamp(-self.max_vel_2, self.max_vel_2),
            )
        )
        theta1, theta2 = next_state[:, 0], next_state[:, 1]
        # the tip is more than one link length above the pivot
        terminated = -in_float64(torch.cos, theta1) - in_float64(torch.cos, theta2 + theta1) > 1.0
        reward = torch.where(terminated, 0.0, -1.0).to(state.dtype)
        return next_state, reward, terminated

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        theta1, theta2, dtheta1, dtheta2 = state.unbind(1)
        angles = stack_columns((theta1, theta2))
        cos, sin = in_float64(torch.cos, angles), in_float64(torch.sin, angles)
        obs = (cos[:, 0], sin[:, 0], cos[:, 1], sin[:, 1], dtheta1, dtheta2)
        return stack_columns(obs).to(torch.float32)
