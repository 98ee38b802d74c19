"""Batched torch simple_spread: A agents cover A landmarks, mpe2's `simple_spread_v3` dynamics.

The multi-agent form of the env contract (envs/base.py), every tensor on `env.device`:

    obs, info = env.reset(seed=None)           obs [N, A, obs_dim]; info["state"] [N, state_dim]
    obs, reward, terminated, truncated, info = env.step(actions)
        actions    [N, A] int64 (discrete) or [N, A, 5] float in [0, 1] (continuous_actions=True)
        reward     [N, A] float: each agent's own reward
        terminated, truncated [N] bool: one episode for all agents of an env
        info["state"]      [N, state_dim] the global state after the step (of the new episode where one ended)
        info["final_obs"]  [N, A, obs_dim] and info["final_state"] [N, state_dim]: the ended episode's last ones

World (mpe2 1.1.1, `_mpe_utils/core.py` and `simple_spread.py`): agents of size 0.15 and mass 1,
landmarks that neither move nor collide, dt 0.1, damping 0.25, action force 5 (mpe2's
`sensitivity`), contact force 100 with margin 1e-3 (softplus penetration) between every pair of
agents. Per step: v' = (1 - damping) v + F dt / m after p' = p + v dt (the old velocity moves the
agent). Rewards, from the positions after the step:

    r_i = (1 - local_ratio) * (-sum_l min_a |p_a - l|) + local_ratio * (-#{j != i : |p_i - p_j| < 0.3})

Observation of agent i (mpe2's order): its velocity, its position, each landmark's position relative
to it, each other agent's relative position, and the other agents' communication (silent: zeros,
2 per other agent), so 4 + 2A + 2(A - 1) + 2(A - 1) = 18 for A = 3. The global state is mpe2's
`state()`: every agent's observation, concatenated. Episodes are truncated after `max_cycles` = 25
steps and never terminate. Reset: agent and landmark positions uniform in [-1, 1]^2, velocities 0.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from classic_rl.envs.base import EnvSpec

DT, DAMPING, SENSITIVITY = 0.1, 0.25, 5.0
AGENT_SIZE, MASS = 0.15, 1.0
CONTACT_FORCE, CONTACT_MARGIN = 1e2, 1e-3
# discrete action -> direction of the force: no-op, left, right, down, up (mpe2's _set_action)
DIRECTIONS = ((0.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0))


class SimpleSpread:
    """`num_envs` simple_spread worlds stepped as tensors: no Python loop over envs or agents."""

    def __init__(self, num_envs: int, num_agents: int = 3, local_ratio: float = 0.5, max_cycles: int = 25,
                 continuous_actions: bool = False, device: str | torch.device = "cpu", seed: int = 0,
                 dtype: torch.dtype = torch.float32, reward_threshold: float | None = None) -> None:
        if not 0.0 <= local_ratio <= 1.0:
            raise ValueError(f"local_ratio={local_ratio} must lie in [0, 1]")
        self.num_envs, self.num_agents, self.local_ratio = num_envs, num_agents, local_ratio
        self.max_cycles, self.continuous_actions = max_cycles, continuous_actions
        self.device, self.dtype = torch.device(device), dtype
        A = num_agents
        self.obs_dim = 4 + 2 * A + 4 * (A - 1)
        self.state_dim = A * self.obs_dim
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        self.single_action_space = (gym.spaces.Box(0.0, 1.0, (5,), np.float32) if continuous_actions
                                    else gym.spaces.Discrete(5))
        self.state_space = gym.spaces.Box(-np.inf, np.inf, (self.state_dim,), np.float32)
        self.spec = EnvSpec(id="simple_spread", num_envs=num_envs, observation_space=self.single_observation_space,
                            action_space=self.single_action_space, max_episode_steps=max_cycles,
                            reward_threshold=reward_threshold, device=self.device, num_agents=A,
                            state_space=self.state_space)
        self._directions = torch.tensor(DIRECTIONS, dtype=dtype, device=self.device) * SENSITIVITY
        others = torch.tensor([[j for j in range(A) if j != i] for i in range(A)], dtype=torch.long)
        self._others = others.to(self.device)  # [A, A - 1]: the other agents of each, in mpe2's order
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed)
        self.agent_pos = torch.zeros(num_envs, A, 2, dtype=dtype, device=self.device)
        self.agent_vel = torch.zeros_like(self.agent_pos)
        self.landmark_pos = torch.zeros(num_envs, A, 2, dtype=dtype, device=self.device)
        self.elapsed = torch.zeros(num_envs, dtype=torch.int64, device=self.device)

    # ------------------------------------------------------------------ the contract
    def reset(self, seed: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        if seed is not None:
            self.generator.manual_seed(seed)
        self.agent_pos, self.agent_vel, self.landmark_pos = self._initial(self.num_envs)
        self.elapsed.zero_()
        obs = self.observe(self.agent_pos, self.agent_vel, self.landmark_pos)
        return obs, {"state": self.global_state(obs)}

    def step(self, actions: torch.Tensor):
        force = self.action_force(torch.as_tensor(actions, device=self.device))
        pos, vel = self.integrate(self.agent_pos, self.agent_vel, force + self.contact_force(self.agent_pos))
        reward = self.reward(pos, self.landmark_pos)
        self.elapsed += 1
        truncated = self.elapsed >= self.max_cycles
        terminated = torch.zeros_like(truncated)
        final_obs = self.observe(pos, vel, self.landmark_pos)
        # same-step auto-reset: a fresh world is drawn for every env, kept where an episode ended
        new_pos, new_vel, new_landmarks = self._initial(self.num_envs)
        done = truncated[:, None, None]
        self.agent_pos = torch.where(done, new_pos, pos)
        self.agent_vel = torch.where(done, new_vel, vel)
        self.landmark_pos = torch.where(done, new_landmarks, self.landmark_pos)
        self.elapsed = torch.where(truncated, torch.zeros_like(self.elapsed), self.elapsed)
        obs = torch.where(done, self.observe(self.agent_pos, self.agent_vel, self.landmark_pos), final_obs)
        info = {"state": self.global_state(obs), "final_obs": final_obs, "final_state": self.global_state(final_obs)}
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"agent_pos": self.agent_pos.clone(), "agent_vel": self.agent_vel.clone(),
                "landmark_pos": self.landmark_pos.clone(), "elapsed": self.elapsed.clone(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("agent_pos", "agent_vel", "landmark_pos", "elapsed"):
            setattr(self, key, state[key].to(self.device))
        self.generator.set_state(state["generator"])

    # ------------------------------------------------------------------ the world, as pure functions
    def _initial(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        A = self.num_agents
        u = torch.rand(n, 2 * A, 2, generator=self.generator, device=self.device, dtype=self.dtype)
        pos = 2.0 * u - 1.0
        return pos[:, :A], torch.zeros_like(pos[:, :A]), pos[:, A:]

    def action_force(self, actions: torch.Tensor) -> torch.Tensor:
        """actions [N, A] (or [N, A, 5] continuous) -> force [N, A, 2]."""
        if self.continuous_actions:
            a = actions.to(self.dtype)
            return SENSITIVITY * torch.stack([a[..., 2] - a[..., 1], a[..., 4] - a[..., 3]], dim=-1)
        return self._directions[actions.long()]

    def contact_force(self, pos: torch.Tensor) -> torch.Tensor:
        """Sum over the other agents j of 100 (p_i - p_j) / d_ij * k softplus(-(d_ij - 0.3) / k) [N, A, 2]."""
        delta = pos[:, :, None, :] - pos[:, None, :, :]  # [N, A, A, 2]: p_i - p_j
        delta = delta[:, torch.arange(self.num_agents, device=self.device)[:, None], self._others]  # j != i
        dist = delta.norm(dim=-1, keepdim=True)
        k = CONTACT_MARGIN
        penetration = torch.nn.functional.softplus(-(dist - 2 * AGENT_SIZE) / k) * k
        return (CONTACT_FORCE * delta / dist * penetration).sum(dim=2)

    @staticmethod
    def integrate(pos: torch.Tensor, vel: torch.Tensor, force: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return pos + vel * DT, vel * (1 - DAMPING) + force / MASS * DT

    def reward(self, pos: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """[N, A]: the shared coverage term and each agent's collision count, mixed by local_ratio."""
        coverage = -(landmarks[:, :, None, :] - pos[:, None, :, :]).norm(dim=-1).min(dim=2).values.sum(-1)  # [N]
        between = (pos[:, :, None, :] - pos[:, None, :, :]).norm(dim=-1)  # [N, A, A]
        eye = torch.eye(self.num_agents, dtype=torch.bool, device=self.device)
        collisions = ((between < 2 * AGENT_SIZE) & ~eye).sum(-1).to(pos.dtype)  # [N, A]
        return (1 - self.local_ratio) * coverage[:, None] - self.local_ratio * collisions

    def observe(self, pos: torch.Tensor, vel: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """[N, A, obs_dim]: own velocity, own position, landmarks and others relative to it, silent comms."""
        n, A = pos.shape[:2]
        to_landmarks = (landmarks[:, None, :, :] - pos[:, :, None, :]).flatten(2)  # [N, A, 2A]
        to_others = (pos[:, self._others] - pos[:, :, None, :]).flatten(2)  # [N, A, 2(A - 1)]
        comms = pos.new_zeros(n, A, 2 * (A - 1))
        return torch.cat([vel, pos, to_landmarks, to_others, comms], dim=-1)

    def global_state(self, obs: torch.Tensor) -> torch.Tensor:
        """mpe2's state(): every agent's observation, concatenated [N, A * obs_dim]."""
        return obs.flatten(1)
