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
steps and never terminate. Reset: agent and landmark positions uniform in [-1, 1]^2, velocities 0
(`landmark_range` < 1 draws landmarks from [-range, range]^2: 0.8 is the MAPPO code base's variant).

Partial observability (`observe="nearest"`): agent i sees its velocity, its position, and the
positions relative to it of its nearest landmark and its nearest other agent (8 numbers), while the
global state stays every agent's full observation: a centralised critic (MAPPO) sees the world, a
local one (IPPO) only what its agent sees.

The MAPPO paper's unit (Yu et al. 2022; the `marlbenchmark/on-policy` MPE): each agent's reward is
-sum_l min_a |p_a - l| minus one per agent it touches, itself included (so -1 every step), every agent
receives the sum of those rewards, and "average episode reward" is that shared reward summed over the
25 steps. With local_ratio = 0.5 the env's team return T (its rewards summed over agents and steps) is
half of the same sum without the self-contacts, so R_paper = 2 T - A * max_cycles
(`paper_episode_reward`).

Layout. The world is stored env-last (positions [A, 2, N]) so that every tensor op runs over
contiguous rows of N envs; `agent_pos`, `agent_vel` and `landmark_pos` are [N, A, 2] views of it and
observations [N, A, obs_dim] are views of an [A, obs_dim, N] tensor (use `reshape`, not `view`, to
flatten them). On the CPU a step where no episode ends skips drawing new worlds; on other devices
that check would cost a host sync, so new worlds are drawn every step and kept where episodes ended.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from classic_rl.config import UserError
from classic_rl.envs.base import BatchedEnv, EnvSpec, check_no_options

DT, DAMPING, SENSITIVITY = 0.1, 0.25, 5.0
AGENT_SIZE, MASS = 0.15, 1.0
CONTACT_FORCE, CONTACT_MARGIN = 1e2, 1e-3
# discrete action -> direction of the force: no-op, left, right, down, up (mpe2's _set_action)
DIRECTIONS = ((0.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0))


class SimpleSpread(BatchedEnv):
    """`num_envs` simple_spread worlds stepped as tensors: no Python loop over envs."""

    def __init__(self, num_envs: int, num_agents: int = 3, local_ratio: float = 0.5, max_cycles: int = 25,
                 continuous_actions: bool = False, device: str | torch.device = "cpu", seed: int = 0,
                 dtype: torch.dtype = torch.float32, reward_threshold: float | None = None,
                 landmark_range: float = 1.0, observe: str = "full") -> None:
        if observe not in ("full", "nearest"):
            raise UserError(f"simple_spread: observe={observe!r} is not allowed; full (mpe2's observation) or nearest "
                            "(own velocity and position, nearest landmark and nearest agent)")
        if not 0.0 <= local_ratio <= 1.0:
            raise ValueError(f"local_ratio={local_ratio} must lie in [0, 1]")
        if not 0.0 < landmark_range <= 1.0:
            raise ValueError(f"landmark_range={landmark_range} must lie in (0, 1]")
        self.landmark_range = landmark_range
        self.num_envs, self.num_agents, self.local_ratio = num_envs, num_agents, local_ratio
        self.max_cycles, self.continuous_actions = max_cycles, continuous_actions
        self.device, self.dtype = torch.device(device), dtype
        A = num_agents
        self.nearest = observe == "nearest"
        full_dim = 4 + 2 * A + 4 * (A - 1)
        self.obs_dim = 8 if self.nearest else full_dim
        self.state_dim = A * full_dim  # the global state: every agent's full observation
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        self.single_action_space = (gym.spaces.Box(0.0, 1.0, (5,), np.float32) if continuous_actions
                                    else gym.spaces.Discrete(5))
        self.state_space = gym.spaces.Box(-np.inf, np.inf, (self.state_dim,), np.float32)
        self.spec = EnvSpec(id="simple_spread", num_envs=num_envs, observation_space=self.single_observation_space,
                            action_space=self.single_action_space, max_episode_steps=max_cycles,
                            reward_threshold=reward_threshold, device=self.device, num_agents=A,
                            state_space=self.state_space)
        self._directions = torch.tensor(DIRECTIONS, dtype=dtype, device=self.device) * SENSITIVITY  # [5, 2]
        self._others = torch.tensor([[j for j in range(A) if j != i] for i in range(A)], device=self.device)
        self._pairs = [(i, j) for i in range(A) for j in range(i + 1, A)]  # mpe2's collision pairs
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed)
        self._pos = torch.zeros(A, 2, num_envs, dtype=dtype, device=self.device)
        self._vel = torch.zeros_like(self._pos)
        self._landmarks = torch.zeros_like(self._pos)
        self.elapsed = torch.zeros(num_envs, dtype=torch.int64, device=self.device)

    # [N, A, 2] views of the env-last world
    agent_pos = property(lambda self: self._pos.permute(2, 0, 1),
                         lambda self, value: setattr(self, "_pos", _env_last(value)))
    agent_vel = property(lambda self: self._vel.permute(2, 0, 1),
                         lambda self, value: setattr(self, "_vel", _env_last(value)))
    landmark_pos = property(lambda self: self._landmarks.permute(2, 0, 1),
                            lambda self, value: setattr(self, "_landmarks", _env_last(value)))

    # ------------------------------------------------------------------ the contract
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[torch.Tensor, dict[str, Any]]:
        check_no_options(options, self)
        if seed is not None:
            self.generator.manual_seed(seed)
        self._pos, self._vel, self._landmarks = self._initial()
        self.elapsed.zero_()
        full = self._observe(self._pos, self._vel, self._landmarks)
        return _batch_first(self._seen(full)), {"state": self._state(full)}

    def step(self, actions: torch.Tensor):
        force = self._action_force(self.checked_actions(actions)) + self._contact_force(self._pos)
        pos, vel = self._pos + self._vel * DT, self._vel * (1 - DAMPING) + force / MASS * DT
        reward = self._reward(pos, self._landmarks)
        self.elapsed += 1
        truncated = self.elapsed >= self.max_cycles
        terminated = torch.zeros_like(truncated)
        final_obs = self._observe(pos, vel, self._landmarks)
        obs, landmarks = final_obs, self._landmarks
        if self.device.type != "cpu" or bool(truncated.any()):  # same-step auto-reset of the ended episodes
            new_pos, new_vel, new_landmarks = self._initial()
            pos, vel = torch.where(truncated, new_pos, pos), torch.where(truncated, new_vel, vel)
            landmarks = torch.where(truncated, new_landmarks, landmarks)
            obs = torch.where(truncated, self._observe(pos, vel, landmarks), final_obs)
            self.elapsed = torch.where(truncated, torch.zeros_like(self.elapsed), self.elapsed)
        self._pos, self._vel, self._landmarks = pos, vel, landmarks
        info = {"state": self._state(obs), "final_obs": _batch_first(self._seen(final_obs)),
                "final_state": self._state(final_obs)}
        return _batch_first(self._seen(obs)), _batch_first(reward), terminated, truncated, info

    def close(self, **kwargs: Any) -> None:
        self.closed = True

    def state_dict(self) -> dict[str, Any]:
        return {"agent_pos": self.agent_pos.clone(), "agent_vel": self.agent_vel.clone(),
                "landmark_pos": self.landmark_pos.clone(), "elapsed": self.elapsed.clone(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("agent_pos", "agent_vel", "landmark_pos"):
            setattr(self, key, state[key].to(self.device, self.dtype))
        self.elapsed = state["elapsed"].to(self.device)
        self.generator.set_state(state["generator"])

    def observe(self, pos: torch.Tensor, vel: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Observations [N, A, obs_dim] of worlds given batch-first ([N, A, 2] each)."""
        return _batch_first(self._seen(self._observe(_env_last(pos), _env_last(vel), _env_last(landmarks))))

    # ------------------------------------------------------------------ the world, env-last
    def _initial(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        A = self.num_agents
        u = torch.rand(self.num_envs, 2 * A, 2, generator=self.generator, device=self.device, dtype=self.dtype)
        pos = _env_last(2.0 * u - 1.0)  # [2A, 2, N]: agents, then landmarks (mpe2's draw order)
        landmarks = pos[A:] if self.landmark_range == 1.0 else pos[A:] * self.landmark_range
        return pos[:A], torch.zeros_like(pos[:A]), landmarks

    def _action_force(self, actions: torch.Tensor) -> torch.Tensor:
        """actions [N, A] (or [N, A, 5] continuous) -> force [A, 2, N]."""
        if self.continuous_actions:
            a = actions.to(self.dtype)
            force = SENSITIVITY * torch.stack([a[..., 2] - a[..., 1], a[..., 4] - a[..., 3]], dim=-1)
        else:
            force = self._directions[actions.long()]  # [N, A, 2]
        return _env_last(force)

    def _contact_force(self, pos: torch.Tensor) -> torch.Tensor:
        """Per pair i < j: 100 (p_i - p_j) / d_ij * k softplus(-(d_ij - 0.3) / k), +on i and -on j [A, 2, N]."""
        force = torch.zeros_like(pos)
        k = CONTACT_MARGIN
        for i, j in self._pairs:
            delta = pos[i] - pos[j]  # [2, N]
            dist = torch.sqrt(delta[0] * delta[0] + delta[1] * delta[1])
            push = CONTACT_FORCE * delta * (torch.nn.functional.softplus(-(dist - 2 * AGENT_SIZE) / k) * k / dist)
            force[i] += push
            force[j] -= push
        return force

    def _reward(self, pos: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """[A, N]: the shared coverage term and each agent's collision count, mixed by local_ratio."""
        to_landmarks = landmarks[:, None] - pos[None, :]  # [L, A, 2, N]
        coverage = -torch.sqrt((to_landmarks * to_landmarks).sum(2)).min(dim=1).values.sum(0)  # [N]
        collisions = torch.zeros_like(pos[:, 0])  # [A, N]
        for i, j in self._pairs:
            delta = pos[i] - pos[j]
            hit = (torch.sqrt(delta[0] * delta[0] + delta[1] * delta[1]) < 2 * AGENT_SIZE).to(pos.dtype)
            collisions[i] += hit
            collisions[j] += hit
        return (1 - self.local_ratio) * coverage - self.local_ratio * collisions

    def _observe(self, pos: torch.Tensor, vel: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """[A, obs_dim, N]: own velocity, own position, landmarks and others relative to it, silent comms."""
        A, _, n = pos.shape
        to_landmarks = (landmarks[None] - pos[:, None]).flatten(1, 2)  # [A, 2L, N]
        to_others = (pos[self._others] - pos[:, None]).flatten(1, 2)  # [A, 2(A - 1), N]
        comms = pos.new_zeros(A, 2 * (A - 1), n)
        return torch.cat([vel, pos, to_landmarks, to_others, comms], dim=1)

    def _seen(self, full: torch.Tensor) -> torch.Tensor:
        """What the agents observe of their full observations [A, full_dim, N]: all of it, or (observe=nearest)
        [A, 8, N]: velocity, position, the nearest landmark's and the nearest other agent's relative position."""
        if not self.nearest:
            return full
        A = self.num_agents

        def nearest(rel: torch.Tensor) -> torch.Tensor:  # rel [A, 2K, N] -> the closest of the K [A, 2, N]
            rel = rel.unflatten(1, (-1, 2))  # [A, K, 2, N]
            index = rel.square().sum(2).argmin(1)  # [A, N]
            return rel.gather(1, index[:, None, None].expand(-1, 1, 2, -1)).squeeze(1)
        landmarks, others = full[:, 4: 4 + 2 * A], full[:, 4 + 2 * A: 4 + 2 * A + 2 * (A - 1)]
        return torch.cat([full[:, :4], nearest(landmarks), nearest(others)], dim=1)

    def _state(self, obs: torch.Tensor) -> torch.Tensor:
        """mpe2's state(): every agent's observation, concatenated [N, A * obs_dim]."""
        return obs.flatten(0, 1).T


def paper_episode_reward(team_return: float, num_agents: int = 3, max_cycles: int = 25,
                         local_ratio: float = 0.5) -> float:
    """The MAPPO paper's "average episode reward" of an episode whose team return is `team_return`
    (module docstring): R = 2 T - A * max_cycles. Defined for local_ratio = 0.5 only, where the
    env's reward is half of the paper's without its self-contact term."""
    if local_ratio != 0.5:
        raise ValueError(f"the paper's unit follows from the team return at local_ratio=0.5 only, not {local_ratio}")
    return 2.0 * team_return - num_agents * max_cycles


def team_return_of_paper_reward(paper_reward: float, num_agents: int = 3, max_cycles: int = 25) -> float:
    """The inverse of `paper_episode_reward` (local_ratio = 0.5): T = (R + A * max_cycles) / 2."""
    return (paper_reward + num_agents * max_cycles) / 2.0


def _env_last(x: torch.Tensor) -> torch.Tensor:
    """[N, ...] batch-first -> [..., N] env-last (a view where the data is env-last already)."""
    return x.permute(*range(1, x.dim()), 0)


def _batch_first(x: torch.Tensor) -> torch.Tensor:
    """[..., N] env-last -> [N, ...]: a view."""
    return x.permute(x.dim() - 1, *range(x.dim() - 1))
