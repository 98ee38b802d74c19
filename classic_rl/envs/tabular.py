"""Gymnasium's tabular toy-text MDPs (FrozenLake, Taxi, CliffWalking) batched in torch.

Each of these Gymnasium envs is a finite MDP whose whole dynamics are the table `env.unwrapped.P`
(P[s][a] = [(probability, next_state, reward, terminated), ...]) and the start distribution
`initial_state_distrib`: its step draws one outcome of P[s][a] and nothing else. This env reads both
from the Gymnasium env itself (built with the same id and kwargs, so map_name, is_slippery, ... are
honoured) into tensors [S, A, K] and steps N envs with a few gathers, on any device. The dynamics
are Gymnasium's by construction; tests/envs/test_tabular_env.py checks them step by step and in
distribution. What differs is the random stream (a torch generator instead of each env's numpy one).

Left to the Gymnasium adapter: Taxi's `fickle_passenger`, whose step changes the destination
outside P.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch

from classic_rl.envs.base import BatchedEnv, EnvSpec, check_no_options
from classic_rl.registration import TOY_TEXT_ENTRY_POINTS

ENTRY_POINTS = TOY_TEXT_ENTRY_POINTS


def is_tabular(env_id: str, kwargs: dict[str, Any] | None = None) -> bool:
    """True for the registered toy-text ids whose dynamics are all in their table P."""
    spec = gym.registry.get(env_id)
    if spec is None or spec.entry_point not in ENTRY_POINTS:
        return False
    return not (kwargs or {}).get("fickle_passenger", False)


class TabularVectorEnv(BatchedEnv):
    """N copies of a toy-text MDP stepped from its transition table, with a time limit and same-step
    auto-reset (the `VectorEnv` contract of classic_rl/envs/base.py). Observations are state indices
    [N] int64."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        device: str | torch.device = "cpu",
        seed: int = 0,
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.device = torch.device(device)
        self.num_envs = num_envs
        self.kwargs = dict(kwargs)
        source = gym.make(env_id, **kwargs)
        mdp = source.unwrapped
        n_states, n_actions = mdp.observation_space.n, mdp.action_space.n
        width = max(len(mdp.P[s][a]) for s in range(n_states) for a in range(n_actions))
        prob = torch.zeros(n_states, n_actions, width, dtype=torch.float64)
        next_state = torch.zeros(n_states, n_actions, width, dtype=torch.int64)
        reward = torch.zeros(n_states, n_actions, width, dtype=torch.float32)
        terminated = torch.zeros(n_states, n_actions, width, dtype=torch.bool)
        for s in range(n_states):
            for a in range(n_actions):
                for k, (p, s2, r, done) in enumerate(mdp.P[s][a]):
                    prob[s, a, k], next_state[s, a, k], reward[s, a, k], terminated[s, a, k] = p, s2, r, done
        # Outcome k is drawn when cdf[k-1] <= u < cdf[k], as Gymnasium's categorical_sample does.
        self.cdf = prob.cumsum(-1).to(self.device)
        self.next_state = next_state.to(self.device)
        self.reward = reward.to(self.device)
        self.terminated = terminated.to(self.device)
        self.initial_cdf = torch.as_tensor(mdp.initial_state_distrib, dtype=torch.float64).cumsum(0).to(self.device)
        self.mdp = mdp  # the Gymnasium MDP read: its map (desc, shape) for pictures of a policy

        self.single_observation_space = mdp.observation_space
        self.single_action_space = mdp.action_space
        gym_spec = gym.spec(env_id)
        self.max_episode_steps = max_episode_steps or gym_spec.max_episode_steps
        self.spec = EnvSpec(
            id=env_id,
            num_envs=num_envs,
            observation_space=self.single_observation_space,
            action_space=self.single_action_space,
            max_episode_steps=self.max_episode_steps,
            reward_threshold=gym_spec.reward_threshold,
            device=self.device,
        )
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed)
        self.state = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.elapsed = torch.zeros(num_envs, dtype=torch.int64, device=self.device)

    @staticmethod
    def _draw(cdf: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Index of the first cdf entry above u, per row (cdf [N, K] or [K]; u [N]) -> [N] int64."""
        return (cdf <= u[:, None]).sum(-1).clamp_(max=cdf.shape[-1] - 1)

    def _uniform(self, n: int) -> torch.Tensor:
        return torch.rand(n, dtype=torch.float64, device=self.device, generator=self.generator)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[torch.Tensor, dict[str, Any]]:
        check_no_options(options, self)
        if seed is not None:
            self.generator.manual_seed(seed)
        self.state = self._draw(self.initial_cdf, self._uniform(self.num_envs))
        self.elapsed.zero_()
        return self.state.clone(), {}

    def step(self, actions: torch.Tensor):
        actions = self.checked_actions(actions, torch.int64)
        s, u = self.state, self._uniform(2 * self.num_envs)
        k = self._draw(self.cdf[s, actions], u[: self.num_envs])
        next_state = self.next_state[s, actions, k]
        reward = self.reward[s, actions, k]
        terminated = self.terminated[s, actions, k]
        self.elapsed += 1
        truncated = (self.elapsed >= self.max_episode_steps) if self.max_episode_steps else torch.zeros_like(terminated)
        done = terminated | truncated
        restart = self._draw(self.initial_cdf, u[self.num_envs:])
        self.state = torch.where(done, restart, next_state)
        self.elapsed.masked_fill_(done, 0)
        return self.state.clone(), reward, terminated, truncated, {"final_obs": next_state}

    def state_dict(self) -> dict[str, Any]:
        return {"state": self.state.cpu(), "elapsed": self.elapsed.cpu(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = state["state"].to(self.device)
        self.elapsed = state["elapsed"].to(self.device)
        self.generator.set_state(state["generator"])

    def close(self, **kwargs: Any) -> None:
        self.closed = True
