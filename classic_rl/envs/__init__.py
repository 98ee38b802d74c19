"""Batched environments. `make(env_id, num_envs, device, seed, backend)` -> a `VectorEnv`."""

from __future__ import annotations

from typing import Any

import gymnasium
import torch

from classic_rl.config import DiscretizeConfig, UserError
from classic_rl.envs.base import EnvSpec, VectorEnv
from classic_rl.envs.classic import DYNAMICS
from classic_rl.envs.discretize import DiscretizedVectorEnv
from classic_rl.envs.gym import GymVectorEnv
from classic_rl.envs.lockstep import LockstepVectorEnv
from classic_rl.envs.tabular import TabularVectorEnv, is_tabular
from classic_rl.envs.text import TASKS, TextVectorEnv
from classic_rl.envs.torch_env import TorchVectorEnv

__all__ = ["DYNAMICS", "TASKS", "DiscretizedVectorEnv", "EnvSpec", "GymVectorEnv", "LockstepVectorEnv",
           "TabularVectorEnv", "TextVectorEnv", "TorchVectorEnv", "VectorEnv", "make"]


def make(
    env_id: str,
    num_envs: int = 1,
    device: str | torch.device = "cpu",
    seed: int = 0,
    backend: str | None = None,
    max_episode_steps: int | None = None,
    compile: bool = False,
    discretize: DiscretizeConfig | None = None,
    group_size: int = 1,
    tokenizer: Any = None,
    max_new_tokens: int = 16,
    split: str = "train",
    chat_template: bool = True,
    **kwargs: Any,
) -> VectorEnv:
    """The torch-native env for classic control and the toy-text MDPs (backend=None or "torch"), else the
    Gymnasium adapter;
    a text-generation env for the ids in `TASKS` (needs the LM's `tokenizer`).

    `discretize` wraps it so that Box observations become Discrete state indices (envs/discretize.py);
    `group_size` > 1 makes a classic env lock-step with groups sharing their start (envs/lockstep.py).
    """
    if env_id in TASKS or env_id.startswith("text-"):
        return TextVectorEnv(env_id, tokenizer, num_envs, device, seed, max_new_tokens, group_size, split,
                             chat_template)
    env = _make(env_id, num_envs, device, seed, backend, max_episode_steps, compile, **kwargs)
    if discretize is not None:
        env = DiscretizedVectorEnv(env, discretize.bins, discretize.low, discretize.high)
    if group_size > 1:
        env = LockstepVectorEnv(env, group_size, seed)
    return env


def _make(env_id, num_envs, device, seed, backend, max_episode_steps, compile, **kwargs) -> VectorEnv:
    """`make` without the observation wrapper."""
    if backend not in (None, "torch", "gymnasium"):
        raise UserError(f"env.backend={backend!r} is not allowed; allowed values: torch, gymnasium, null")
    if backend == "torch" and env_id not in DYNAMICS and not is_tabular(env_id, kwargs):
        raise UserError(
            f"env.backend=torch has no torch-native {env_id}; torch-native envs: {', '.join(DYNAMICS)} and "
            "Gymnasium's toy-text FrozenLake, Taxi, CliffWalking; use env.backend=gymnasium"
        )
    if env_id not in gymnasium.registry:
        raise UserError(f"unknown env {env_id!r}: not a Gymnasium id; torch-native envs: {', '.join(DYNAMICS)}")
    if env_id in DYNAMICS and backend != "gymnasium" and not kwargs:
        return TorchVectorEnv(
            DYNAMICS[env_id](), num_envs, device, seed=seed, max_episode_steps=max_episode_steps, compile=compile
        )
    table = is_tabular(env_id, kwargs) and backend != "gymnasium"  # toy text: from its transition table
    try:
        return (TabularVectorEnv if table else GymVectorEnv)(
            env_id, num_envs, device, seed=seed, max_episode_steps=max_episode_steps, **kwargs)
    except gymnasium.error.DependencyNotInstalled as err:
        raise UserError(f"env={env_id} needs an extra dependency: {str(err).splitlines()[0]}") from None
    except TypeError as err:  # a gym.make keyword the env does not take
        raise UserError(f"env.kwargs {kwargs} not accepted by {env_id}: {err}") from None
