"""Adapter: any Gymnasium id behind the batched torch `VectorEnv` contract (numpy -> torch once per step)."""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec as EnvSpec_
import numpy as np
import torch

from classic_rl.config import UserError
from classic_rl.envs.base import BatchedEnv, EnvSpec, check_no_options


def _to_torch(x: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(x))
    if t.dtype == torch.float64:
        t = t.float()
    elif t.dtype in (torch.int32, torch.int16, torch.int8, torch.uint8) and t.ndim == 1:
        t = t.long()  # Discrete observations
    return t.to(device)


def import_target(target: str, key: str) -> Any:
    """`pkg.module:Name` -> the object, with one-line errors naming `key` and what is missing."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UserError(f"{key}={target}: cannot import module '{module_name}' ({err}); check the name and that "
                        "it is on PYTHONPATH") from None
    if not hasattr(module, attr):
        raise UserError(f"{key}={target}: module '{module_name}' has no '{attr}'")
    return getattr(module, attr)


def find_spec(env_id: str) -> EnvSpec_:
    """A Gymnasium id's spec; `module:Id` imports the module (which registers the id) first, as gymnasium.make."""
    module_name, _, name = env_id.rpartition(":")
    if module_name:
        try:
            importlib.import_module(module_name)
        except ImportError as err:
            raise UserError(f"env.id={env_id}: cannot import module '{module_name}' ({err}); check the name and "
                            "that it is on PYTHONPATH") from None
        if name not in gym.registry:
            raise UserError(f"env.id={env_id}: module '{module_name}' was imported but registers no env '{name}'; "
                            "it must call gymnasium.register(id=...) when imported")
    elif name not in gym.registry:
        raise UserError(f"unknown env {env_id!r}: not a Gymnasium id; for your own env pass env=gymnasium "
                        "env.id=pkg.module:EnvId (the module registers it) or env.entry_point=pkg.module:ClassName")
    return gym.spec(name)


def entry_point_spec(entry_point: str, env_cls: Any, max_episode_steps: int | None) -> EnvSpec_:
    """A Gymnasium spec for an unregistered gymnasium.Env class (env.entry_point=pkg.module:ClassName)."""
    return EnvSpec_(id=entry_point.rpartition(":")[2], entry_point=env_cls, max_episode_steps=max_episode_steps)


def same_step_vector(env_fns: list[Any], vectorization_mode: str) -> gym.vector.VectorEnv:
    """Gymnasium's Sync/AsyncVectorEnv over `env_fns` with the same-step auto-reset the adapter needs."""
    cls = gym.vector.AsyncVectorEnv if vectorization_mode == "async" else gym.vector.SyncVectorEnv
    return cls(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


class GymVectorEnv(BatchedEnv):
    """A Gymnasium vector env (same-step auto-reset) behind the `VectorEnv` contract: torch tensors on `device`.

    Built from a Gymnasium id or spec (`env_id`), or with `GymVectorEnv.wrap` around a vector env the
    user made, or with `GymVectorEnv.from_factory` around a function that returns a `gymnasium.Env`."""

    def __init__(
        self,
        env_id: str | EnvSpec_,
        num_envs: int,
        device: str | torch.device = "cpu",
        seed: int = 0,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        vectorization_mode: str = "sync",
        **kwargs: Any,
    ) -> None:
        gym_spec = find_spec(env_id) if isinstance(env_id, str) else env_id
        make_kwargs = dict(kwargs)
        if max_episode_steps is not None:
            make_kwargs["max_episode_steps"] = max_episode_steps
        if render_mode is not None:
            make_kwargs["render_mode"] = render_mode
        vector = gym.make_vec(
            gym_spec,
            num_envs=num_envs,
            vectorization_mode=vectorization_mode,
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            **make_kwargs,
        )
        self._setup(vector, device, seed, gym_spec.id, max_episode_steps or gym_spec.max_episode_steps,
                    gym_spec.reward_threshold)

    @classmethod
    def wrap(cls, vector: gym.vector.VectorEnv, device: str | torch.device = "cpu", seed: int = 0,
             name: str | None = None) -> "GymVectorEnv":
        """Adapt a Gymnasium vector env the user built; it must auto-reset in the same step."""
        mode = vector.metadata.get("autoreset_mode")
        if mode != gym.vector.AutoresetMode.SAME_STEP:
            raise UserError(f"env= got a Gymnasium vector env with autoreset_mode={getattr(mode, 'value', mode)}; "
                            "classic_rl needs same-step auto-reset: build it with vector_kwargs={'autoreset_mode': "
                            "gymnasium.vector.AutoresetMode.SAME_STEP}, or pass a function that returns one env")
        spec = getattr(vector, "spec", None)
        self = cls.__new__(cls)
        self._setup(vector, device, seed, name or (spec.id if spec is not None else type(vector).__name__),
                    spec.max_episode_steps if spec is not None else None,
                    spec.reward_threshold if spec is not None else None)
        return self

    @classmethod
    def from_factory(cls, env_fn: Any, num_envs: int, device: str | torch.device = "cpu", seed: int = 0,
                     vectorization_mode: str = "sync") -> "GymVectorEnv":
        """`num_envs` envs from `env_fn()` (a function returning a `gymnasium.Env`), stepped sync or async."""
        probe = env_fn()
        if not isinstance(probe, gym.Env):
            raise UserError(f"env= must be a function returning a gymnasium.Env; it returned {type(probe).__name__}")
        name = probe.spec.id if probe.spec is not None else type(probe.unwrapped).__name__
        probe.close()
        return cls.wrap(same_step_vector([env_fn] * num_envs, vectorization_mode), device, seed, name)

    def _setup(self, vector: gym.vector.VectorEnv, device: str | torch.device, seed: int, env_id: str,
               max_episode_steps: int | None, reward_threshold: float | None) -> None:
        self.env = vector
        self.device = torch.device(device)
        self.num_envs = vector.num_envs
        self.single_observation_space = vector.single_observation_space
        self.single_action_space = vector.single_action_space
        self.spec = EnvSpec(
            id=env_id,
            num_envs=self.num_envs,
            observation_space=self.single_observation_space,
            action_space=self.single_action_space,
            max_episode_steps=max_episode_steps,
            reward_threshold=reward_threshold,
            device=self.device,
        )
        self._seed = seed

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[torch.Tensor, dict[str, Any]]:
        check_no_options(options, self)
        obs, info = self.env.reset(seed=self._seed if seed is None else seed)
        self._seed = None  # later resets continue the seeded stream
        return _to_torch(obs, self.device), {}

    def step(self, actions: torch.Tensor):
        obs, reward, terminated, truncated, info = self.env.step(self.checked_actions(actions).cpu().numpy())
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

    def close(self, **kwargs: Any) -> None:
        self.env.close()
        self.closed = True
