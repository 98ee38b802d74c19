"""Adapter: any Gymnasium id behind the batched torch `VectorEnv` contract (numpy -> torch once per step)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from classic_rl.envs.base import EnvSpec


def _to_torch(x: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(x))
    if t.dtype == torch.float64:
        t = t.float()
    elif t.dtype in (torch.int32, torch.int16, torch.int8, torch.uint8) and t.ndim == 1:
        t = t.long()  # Discrete observations
    return t.to(device)


class GymVectorEnv:
    """Gymnasium `SyncVectorEnv` with same-step auto-reset, returning torch tensors on `device`."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        device: str | torch.device = "cpu",
        seed: int = 0,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.device = torch.device(device)
        self.num_envs = num_envs
        make_kwargs = dict(kwargs)
        if max_episode_steps is not None:
            make_kwargs["max_episode_steps"] = max_episode_steps
        if render_mode is not None:
            make_kwargs["render_mode"] = render_mode
        self.env = gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            **make_kwargs,
        )
        self.single_observation_space = self.env.single_observation_space
        self.single_action_space = self.env.single_action_space
        gym_spec = gym.spec(env_id)
        self.spec = EnvSpec(
            id=env_id,
            num_envs=num_envs,
            observation_space=self.single_observation_space,
            action_space=self.single_action_space,
            max_episode_steps=max_episode_steps or gym_spec.max_episode_steps,
            reward_threshold=gym_spec.reward_threshold,
            device=self.device,
        )
        self._seed = seed

    def reset(self, seed: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        obs, info = self.env.reset(seed=self._seed if seed is None else seed)
        self._seed = None  # later resets continue the seeded stream
        return _to_torch(obs, self.device), {}

    def step(self, actions: torch.Tensor):
        obs, reward, terminated, truncated, info = self.env.step(actions.cpu().numpy())
        obs_t = _to_torch(obs, self.device)
        final_obs = obs_t
        if "final_obs" in info:  # same-step auto-reset puts the true last observations here
            ended = info["_final_obs"]
            final = np.array(obs, copy=True)
            final[ended] = np.stack(list(info["final_obs"][ended]))
            final_obs = _to_torch(final, self.device)
        return (
            obs_t,
            _to_torch(reward.astype(np.float32), self.device),
            torch.from_numpy(terminated).to(self.device),
            torch.from_numpy(truncated).to(self.device),
            {"final_obs": final_obs},
        )

    # Checkpoints hold tensors and plain values only (checkpoint.py), so a Gymnasium env's Python
    # state is not stored: on resume the trainer resets these envs with a seed derived from the run's
    # seed and env step, and the episodes that were running at the checkpoint start over.
    restarts_on_resume = True

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._seed = None

    def close(self) -> None:
        self.env.close()
