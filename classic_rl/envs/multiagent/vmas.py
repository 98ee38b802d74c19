"""VMAS scenarios (Bettini et al. 2022; torch, batched, CPU or CUDA) behind the multi-agent contract.

    env = VmasVectorEnv("balance", num_envs=1024, device="cuda", seed=0, max_steps=200)
    python -m classic_rl agent=mappo env=vmas env.kwargs.scenario=balance

VMAS is GPL-3.0 and an optional dependency (`pip install vmas`): it is imported only when an adapter
is made, and nothing of it is part of classic_rl. The contract is simple_spread's (envs/multiagent/
simple_spread.py): observations [N, A, obs_dim] (agents with smaller spaces zero-padded to the widest,
`info["obs_dim"]` [A] their own widths), rewards [N, A], one episode per env. The global state is every
agent's observation concatenated (VMAS scenarios have no other). An episode is terminated by the
scenario's `done` and truncated at `max_steps`; ended envs are reset in the same step, one index at a
time (VMAS's `reset_at`), with `info["final_obs"]` / `info["final_state"]` as everywhere.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from classic_rl.config import UserError
from classic_rl.envs.base import BatchedEnv, EnvSpec, check_no_options


def _gymnasium_space(space: Any) -> gym.Space:
    """VMAS's (OpenAI gym) space as the Gymnasium space classic_rl's agents read."""
    if hasattr(space, "n"):
        return gym.spaces.Discrete(int(space.n))
    return gym.spaces.Box(np.asarray(space.low, np.float32), np.asarray(space.high, np.float32), tuple(space.shape),
                          np.float32)


class VmasVectorEnv(BatchedEnv):
    # VMAS worlds cannot be saved: a resumed run starts fresh episodes, re-seeded
    restarts_on_resume = True

    def __init__(self, scenario: str = "simple_spread", num_envs: int = 1, device: str | torch.device = "cpu",
                 seed: int = 0, max_steps: int = 100, continuous_actions: bool = False,
                 reward_threshold: float | None = None, **kwargs: Any) -> None:
        try:
            import vmas
        except ImportError:
            raise UserError("env=vmas needs the vmas package (an optional dependency, GPL-3.0): pip install vmas") from None
        self.device = torch.device(device)
        try:
            self.env = vmas.make_env(scenario, num_envs=num_envs, device=self.device, continuous_actions=continuous_actions,
                                     seed=seed, max_steps=max_steps, terminated_truncated=True, **kwargs)
        except (ValueError, TypeError, ModuleNotFoundError, FileNotFoundError) as err:
            raise UserError(f"env=vmas: scenario {scenario!r} with {kwargs}: {err}") from None
        self.num_envs, self.num_agents = num_envs, self.env.n_agents
        observation_spaces = [_gymnasium_space(s) for s in self.env.observation_space]
        if not all(isinstance(s, gym.spaces.Box) and len(s.shape) == 1 for s in observation_spaces):
            raise UserError(f"env=vmas: scenario {scenario!r} has observations other than 1-D Boxes")
        actions = [_gymnasium_space(s) for s in self.env.action_space]
        if any(a != actions[0] for a in actions):
            raise UserError(f"env=vmas: the agents of {scenario!r} have different action spaces ({actions}); "
                            "one action space for all agents is needed")
        self.obs_dims = [s.shape[0] for s in observation_spaces]
        self.obs_dim = max(self.obs_dims)
        self.single_action_space = actions[0]
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        self.state_space = gym.spaces.Box(-np.inf, np.inf, (self.num_agents * self.obs_dim,), np.float32)
        self.spec = EnvSpec(id=f"vmas/{scenario}", num_envs=num_envs, observation_space=self.single_observation_space,
                            action_space=self.single_action_space, max_episode_steps=max_steps,
                            reward_threshold=reward_threshold, device=self.device, num_agents=self.num_agents,
                            state_space=self.state_space)
        self._dims = torch.tensor(self.obs_dims, device=self.device)

    # ------------------------------------------------------------------ the contract
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[torch.Tensor, dict[str, Any]]:
        check_no_options(options, self)
        if seed is not None:
            self.env.seed(seed)
        obs = self._stack(self.env.reset())
        return obs, {"state": obs.flatten(1), "obs_dim": self._dims}

    def step(self, actions: torch.Tensor):
        actions = self.checked_actions(actions)
        observations, rewards, terminated, truncated, _ = self.env.step(list(actions.unbind(1)))
        final_obs = self._stack(observations)
        reward = torch.stack([r.float() for r in rewards], dim=1)  # [N, A]
        terminated, truncated = terminated.bool(), truncated.bool() & ~terminated.bool()
        obs = final_obs
        ended = (terminated | truncated).nonzero().flatten().tolist()
        for index in ended:  # VMAS resets one env at a time; the last call returns every env's observations
            observations = self.env.reset_at(index)
        if ended:
            obs = self._stack(observations)
        info = {"state": obs.flatten(1), "final_obs": final_obs, "final_state": final_obs.flatten(1),
                "obs_dim": self._dims}
        return obs, reward, terminated, truncated, info

    def close(self, **kwargs: Any) -> None:
        self.closed = True

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def _stack(self, observations: list[torch.Tensor]) -> torch.Tensor:
        """Per-agent observations [N, d_i] -> [N, A, obs_dim], zero-padded."""
        out = torch.zeros(self.num_envs, self.num_agents, self.obs_dim, device=self.device)
        for i, o in enumerate(observations):
            out[:, i, : o.shape[-1]] = o.reshape(self.num_envs, -1)
        return out
