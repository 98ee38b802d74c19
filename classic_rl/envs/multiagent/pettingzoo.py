"""Any PettingZoo Parallel API env behind the batched multi-agent contract (envs/multiagent/simple_spread.py).

    env = PettingZooVectorEnv(lambda: simple_tag_v3.parallel_env(), num_envs=8, seed=0)

`num_envs` copies of the env, stepped one after the other in this process (numpy in, torch out once
per step). Agents are `possible_agents` in order. Observations of agents with smaller spaces are
zero-padded to the largest (`info["obs_dim"]` [A] gives each agent's own width); the action spaces
must be one Discrete(n) or one Box shape for all agents. The global state is the env's `state()`
when it has one, else every agent's observation concatenated. An episode ends for the whole env when
every agent has ended (terminated: all terminated; truncated: all ended and not all terminated), with
same-step auto-reset and `info["final_obs"]` / `info["final_state"]`; an agent that ended before the
others gets zero observations and rewards, and `info["agent_active"]` [N, A] is False for it.
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from classic_rl.config import UserError
from classic_rl.envs.base import BatchedEnv, EnvSpec, check_no_options


class PettingZooVectorEnv(BatchedEnv):
    def __init__(self, factory: Callable[[], Any], num_envs: int = 1, device: str | torch.device = "cpu",
                 seed: int = 0, env_id: str | None = None, reward_threshold: float | None = None) -> None:
        self.envs = [factory() for _ in range(num_envs)]
        first = self.envs[0]
        self.agents = list(first.possible_agents)
        self.num_envs, self.num_agents = num_envs, len(self.agents)
        self.device = torch.device(device)
        spaces = [first.observation_space(a) for a in self.agents]
        if not all(isinstance(s, gym.spaces.Box) and len(s.shape) == 1 for s in spaces):
            raise UserError("PettingZoo adapter: every agent's observation space must be a 1-D Box; got "
                            f"{[type(s).__name__ for s in spaces]}")
        self.obs_dims = [s.shape[0] for s in spaces]
        self.obs_dim = max(self.obs_dims)
        actions = [first.action_space(a) for a in self.agents]
        if any(a != actions[0] for a in actions):
            raise UserError(f"PettingZoo adapter: the agents' action spaces differ ({actions}); it needs one "
                            "action space for all agents")
        self.single_action_space = actions[0]
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        try:
            state_dim = int(np.asarray(first.state_space.shape).prod())
        except (AttributeError, NotImplementedError):
            state_dim = self.num_agents * self.obs_dim
        self.state_space = gym.spaces.Box(-np.inf, np.inf, (state_dim,), np.float32)
        name = env_id or getattr(first, "metadata", {}).get("name", type(first).__name__)
        self.spec = EnvSpec(id=name, num_envs=num_envs, observation_space=self.single_observation_space,
                            action_space=self.single_action_space, max_episode_steps=getattr(first, "max_cycles", None),
                            reward_threshold=reward_threshold, device=self.device, num_agents=self.num_agents,
                            state_space=self.state_space)
        self.seed = seed
        self._obs: list[dict[str, Any]] = [{} for _ in range(num_envs)]

    # ------------------------------------------------------------------ the contract
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[torch.Tensor, dict[str, Any]]:
        check_no_options(options, self)
        base = self.seed if seed is None else seed
        for i, env in enumerate(self.envs):
            self._obs[i], _ = env.reset(seed=base + i)
        obs = self._stack([self._observations(i) for i in range(self.num_envs)])
        return obs, {"state": self._stack([self._state(i) for i in range(self.num_envs)]), "obs_dim": self._dims()}

    def step(self, actions: torch.Tensor):
        actions = self.checked_actions(actions).detach().cpu().numpy()
        obs, final_obs, state, final_state = [], [], [], []
        reward = np.zeros((self.num_envs, self.num_agents), np.float32)
        active = np.zeros((self.num_envs, self.num_agents), bool)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        for i, env in enumerate(self.envs):
            live = [a for a in self.agents if a in env.agents]
            self._obs[i], rewards, terms, truncs, _ = env.step({a: actions[i, self.agents.index(a)] for a in live})
            for j, a in enumerate(self.agents):
                reward[i, j] = rewards.get(a, 0.0)
                active[i, j] = a in live
            final_obs.append(self._observations(i))
            final_state.append(self._state(i))
            if not env.agents or all(terms.get(a, True) or truncs.get(a, True) for a in live):
                terminated[i] = all(terms.get(a, False) for a in live)
                truncated[i] = not terminated[i]
                self._obs[i], _ = env.reset()
            obs.append(self._observations(i))
            state.append(self._state(i))
        info = {"state": self._stack(state), "final_obs": self._stack(final_obs), "final_state": self._stack(final_state),
                "agent_active": torch.as_tensor(active, device=self.device), "obs_dim": self._dims()}
        return (self._stack(obs), torch.as_tensor(reward, device=self.device),
                torch.as_tensor(terminated, device=self.device), torch.as_tensor(truncated, device=self.device), info)

    # PettingZoo envs cannot save their worlds: a resumed run starts fresh episodes, re-seeded (as the
    # Gymnasium adapter does)
    restarts_on_resume = True

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def close(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()
        self.closed = True

    # ------------------------------------------------------------------ helpers
    def _observations(self, i: int) -> np.ndarray:
        out = np.zeros((self.num_agents, self.obs_dim), np.float32)
        for j, a in enumerate(self.agents):
            if a in self._obs[i]:
                o = np.asarray(self._obs[i][a], np.float32).reshape(-1)
                out[j, : o.shape[0]] = o
        return out

    def _state(self, i: int) -> np.ndarray:
        try:
            return np.asarray(self.envs[i].state(), np.float32).reshape(-1)
        except (AttributeError, NotImplementedError):
            return self._observations(i).reshape(-1)

    def _stack(self, arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.as_tensor(np.stack(arrays), device=self.device)

    def _dims(self) -> torch.Tensor:
        return torch.tensor(self.obs_dims, device=self.device)
