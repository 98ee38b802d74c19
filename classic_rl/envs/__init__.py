"""Batched environments. `make(env_id, num_envs, device, seed, backend)` -> a `VectorEnv`."""

from __future__ import annotations

from typing import Any

import gymnasium
import torch
from gymnasium.vector import AutoresetMode

from classic_rl.config import DiscretizeConfig, UserError, is_text_env
from classic_rl.envs.base import EnvSpec, VectorEnv, as_autoreset_mode
from classic_rl.envs.classic import DYNAMICS
from classic_rl.envs.discretize import DiscretizedVectorEnv
from classic_rl.envs.gym import GymVectorEnv, entry_point_spec, find_spec, import_target
from classic_rl.envs.lockstep import LockstepVectorEnv
from classic_rl.envs.multiagent import MULTI_AGENT_ENVS
from classic_rl.envs.tabular import TabularVectorEnv, is_tabular
from classic_rl.envs.text import TASKS, TextVectorEnv
from classic_rl.envs.text_tasks import TextTask, make_task
from classic_rl.envs.torch_env import TorchVectorEnv

__all__ = ["DYNAMICS", "TASKS", "DiscretizedVectorEnv", "EnvSpec", "GymVectorEnv", "LockstepVectorEnv",
           "TabularVectorEnv", "TextTask", "TextVectorEnv", "TorchVectorEnv", "VectorEnv", "from_object", "make",
           "make_task"]


def make(
    env_id: Any,
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
    entry_point: str | None = None,
    vectorization_mode: str = "sync",
    task: TextTask | None = None,
    autoreset_mode: Any = None,
    **kwargs: Any,
) -> VectorEnv:
    """A batched env (the `VectorEnv` contract, envs/base.py) from:

    - a Gymnasium id: the torch-native env for classic control and the toy-text MDPs (backend=None or
      "torch"), else the Gymnasium adapter; `module:Id` imports the module that registers Id first;
    - `entry_point="pkg.module:ClassName"` (env_id None): an unregistered `gymnasium.Env` class, or a
      torch-native `Dynamics` class (envs/torch_env.py), built with `kwargs`;
    - an object: a function returning a `gymnasium.Env`, a `gymnasium.vector.VectorEnv` (same-step
      auto-reset), a `Dynamics` instance, or a classic_rl `VectorEnv` (returned as it is);
    - a text-generation env (needs the LM's `tokenizer`): a built-in id in `TASKS`, or "text" with
      `task` (envs/text_tasks.py make_task: a dataset and reward functions);
    - a multi-agent env: "simple_spread", or "vmas" with `scenario=NAME` in kwargs (the optional VMAS).

    `discretize` wraps it so that Box observations become Discrete state indices (envs/discretize.py);
    `group_size` > 1 makes a classic env lock-step with groups sharing their start (envs/lockstep.py).
    `autoreset_mode="next_step"` (torch-native classic control only): Gymnasium's default auto-reset, for
    code and wrappers written for it (NormalizeObservation, TransformObservation); classic_rl's agents
    train on the default, same-step envs.
    """
    mode = AutoresetMode.SAME_STEP if autoreset_mode is None else as_autoreset_mode(autoreset_mode)
    if mode != AutoresetMode.SAME_STEP:
        plain = isinstance(env_id, str) and env_id in DYNAMICS and backend != "gymnasium" and not kwargs
        if not plain or discretize is not None or group_size > 1:
            raise UserError(f"autoreset_mode={autoreset_mode!r} is available for the torch-native classic-control "
                            f"envs ({', '.join(DYNAMICS)}) without wrappers; the others auto-reset in the same step")
    if isinstance(env_id, str) and is_text_env(env_id):
        if task is None and env_id not in TASKS:
            raise UserError(f"unknown text env {env_id!r}; built-in: {', '.join(TASKS)}; env=text takes "
                            "env.dataset=PATH and env.reward_funcs")
        return TextVectorEnv(task or env_id, tokenizer, num_envs, device, seed, max_new_tokens, group_size, split,
                             chat_template, reward_model=kwargs.get("reward_model"),
                             missing_eos_penalty=kwargs.get("missing_eos_penalty"))
    if isinstance(env_id, str) and env_id in MULTI_AGENT_ENVS:
        try:
            return MULTI_AGENT_ENVS[env_id](num_envs, device=device, seed=seed, max_cycles=max_episode_steps or 25,
                                            **kwargs)
        except TypeError as err:
            raise UserError(f"env.kwargs {kwargs} not accepted by {env_id}: {err}") from None
    if env_id == "vmas":  # an optional dependency, imported by the adapter
        from classic_rl.envs.multiagent.vmas import VmasVectorEnv

        return VmasVectorEnv(num_envs=num_envs, device=device, seed=seed, max_steps=max_episode_steps or 100, **kwargs)
    if env_id is None and entry_point is not None:
        env = _from_entry_point(entry_point, num_envs, device, seed, max_episode_steps, compile, vectorization_mode,
                                **kwargs)
    elif not isinstance(env_id, str):
        env = from_object(env_id, num_envs, device, seed, max_episode_steps, compile, vectorization_mode)
    else:
        env = _make(env_id, num_envs, device, seed, backend, max_episode_steps, compile, vectorization_mode,
                    autoreset_mode=mode, **kwargs)
    if discretize is not None:
        env = DiscretizedVectorEnv(env, discretize.bins, discretize.low, discretize.high)
    if group_size > 1:
        env = LockstepVectorEnv(env, group_size, seed)
    return env


def is_dynamics(obj: Any) -> bool:
    """A torch-native `Dynamics` (class or instance): the protocol's methods and attributes, not a gymnasium.Env."""
    if isinstance(obj, gymnasium.Env) or isinstance(obj, type) and issubclass(obj, gymnasium.Env):
        return False
    methods = all(callable(getattr(obj, name, None)) for name in ("initial_state", "step", "observe"))
    return methods and (isinstance(obj, type) or all(hasattr(obj, a) for a in ("observation_space", "action_space")))


def is_vector_env(obj: Any) -> bool:
    """A classic_rl `VectorEnv` (envs/base.py): has an `EnvSpec` and the batched reset/step."""
    return isinstance(getattr(obj, "spec", None), EnvSpec) and hasattr(obj, "step") and hasattr(obj, "reset")


def from_object(obj: Any, num_envs: int = 1, device: str | torch.device = "cpu", seed: int = 0,
                max_episode_steps: int | None = None, compile: bool = False,
                vectorization_mode: str = "sync") -> VectorEnv:
    """A `VectorEnv` from an env object the user built (see `make`)."""
    if is_vector_env(obj):
        mode = getattr(obj, "metadata", {}).get("autoreset_mode")
        if mode is not None and as_autoreset_mode(mode) != AutoresetMode.SAME_STEP:
            raise UserError(f"env= is a classic_rl env with autoreset_mode={as_autoreset_mode(mode).value}; "
                            "classic_rl trains on same-step envs: make it without autoreset_mode")
        return obj
    if isinstance(obj, gymnasium.vector.VectorEnv):
        return GymVectorEnv.wrap(obj, device, seed)
    if is_dynamics(obj) and not isinstance(obj, type):
        return TorchVectorEnv(obj, num_envs, device, seed=seed, max_episode_steps=max_episode_steps, compile=compile)
    if isinstance(obj, gymnasium.Env):
        raise UserError(f"env= got a gymnasium.Env instance ({type(obj.unwrapped).__name__}); pass a function that "
                        "returns one, e.g. lambda: MyEnv(): classic_rl makes env.num_envs copies and separate "
                        "evaluation envs")
    if callable(obj):
        return GymVectorEnv.from_factory(obj, num_envs, device, seed, vectorization_mode)
    raise UserError(f"env= got {type(obj).__name__}; pass an env id, a function returning a gymnasium.Env, a "
                    "gymnasium.vector.VectorEnv, a torch-native Dynamics or a classic_rl VectorEnv")


def _from_entry_point(entry_point: str, num_envs: int, device: str | torch.device, seed: int,
                      max_episode_steps: int | None, compile: bool, vectorization_mode: str, **kwargs: Any) -> VectorEnv:
    target = import_target(entry_point, "env.entry_point")
    if is_dynamics(target):
        try:
            dynamics = target(**kwargs)
        except TypeError as err:
            raise UserError(f"env.kwargs {kwargs} not accepted by {entry_point}: {err}") from None
        return TorchVectorEnv(dynamics, num_envs, device, seed=seed, max_episode_steps=max_episode_steps,
                              compile=compile)
    if not (isinstance(target, type) and issubclass(target, gymnasium.Env)):
        raise UserError(f"env.entry_point={entry_point} is neither a gymnasium.Env subclass nor a torch-native "
                        "Dynamics class (classic_rl/envs/torch_env.py)")
    return _gym(entry_point_spec(entry_point, target, max_episode_steps), num_envs, device, seed, None,
                vectorization_mode, **kwargs)


def _gym(spec: Any, num_envs: int, device: Any, seed: int, max_episode_steps: int | None, vectorization_mode: str,
         table: bool = False, **kwargs: Any) -> VectorEnv:
    name = spec if isinstance(spec, str) else spec.id
    try:
        if table:
            return TabularVectorEnv(spec, num_envs, device, seed=seed, max_episode_steps=max_episode_steps, **kwargs)
        return GymVectorEnv(spec, num_envs, device, seed=seed, max_episode_steps=max_episode_steps,
                            vectorization_mode=vectorization_mode, **kwargs)
    except gymnasium.error.DependencyNotInstalled as err:
        raise UserError(f"env={name} needs an extra dependency: {str(err).splitlines()[0]}") from None
    except TypeError as err:  # a gym.make keyword the env does not take
        raise UserError(f"env.kwargs {kwargs} not accepted by {name}: {err}") from None


def _make(env_id, num_envs, device, seed, backend, max_episode_steps, compile, vectorization_mode="sync",
          autoreset_mode: AutoresetMode = AutoresetMode.SAME_STEP, **kwargs) -> VectorEnv:
    """`make` for an id, without the observation wrapper."""
    if backend not in (None, "torch", "gymnasium"):
        raise UserError(f"env.backend={backend!r} is not allowed; allowed values: torch, gymnasium, null")
    if backend == "torch" and env_id not in DYNAMICS and not is_tabular(env_id, kwargs):
        raise UserError(
            f"env.backend=torch has no torch-native {env_id}; torch-native envs: {', '.join(DYNAMICS)} and "
            "Gymnasium's toy-text FrozenLake, Taxi, CliffWalking; use env.backend=gymnasium"
        )
    find_spec(env_id)  # one line for an unknown id or a module that does not register it
    if env_id in DYNAMICS and backend != "gymnasium" and not kwargs:
        return TorchVectorEnv(
            DYNAMICS[env_id](), num_envs, device, seed=seed, max_episode_steps=max_episode_steps, compile=compile,
            autoreset_mode=autoreset_mode,
        )
    table = is_tabular(env_id, kwargs) and backend != "gymnasium"  # toy text: from its transition table
    return _gym(env_id, num_envs, device, seed, max_episode_steps, vectorization_mode, table=table, **kwargs)
