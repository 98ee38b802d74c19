"""The Python API: the command line's runs, from Python.

    import classic_rl

    result = classic_rl.train("agent=ppo", "env=CartPole-v1", "train.total_steps=30000")
    policy = classic_rl.load(result.run_dir)          # or result.policy
    action = policy.act(obs)                          # one observation -> one action, a batch -> a batch
    policy.evaluate(episodes=10)["return_mean"]

`train` takes the command line's own override strings and composes exactly the config
`python -m classic_rl OVERRIDES` composes (conf/, tuned configs included), so a run is the same run
from either door, in the same kind of run directory (config.yaml, checkpoint.pt, summary.json,
metrics.jsonl, TensorBoard events). Mistakes raise `ConfigError` / `UserError` with one line.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from classic_rl import checkpoint as ckpt
from classic_rl.callbacks import check_callbacks
from classic_rl.compose import compose, parse_overrides, unique_dir
from classic_rl.config import RunConfig, UserError
from classic_rl.envs.base import EnvSpec

__all__ = ["Policy", "TrainResult", "load", "train"]


@dataclass
class TrainResult:
    """What `train` returns: the run's summary.json as a dict, its directory, and its trained policy."""

    summary: dict[str, Any]
    run_dir: Path
    _env: Any = field(default=None, repr=False)
    _text: dict[str, Any] | None = field(default=None, repr=False)

    @functools.cached_property
    def policy(self) -> "Policy":
        """The trained policy, as `load(run_dir)` returns it."""
        return load(self.run_dir, env=self._env, **(self._text or {}))


def train(*overrides: str, env: Any = None, eval_env: Any = None, callbacks: Sequence[Any] = (),
          run_dir: str | Path | None = None, dataset: Any = None, eval_dataset: Any = None,
          reward_funcs: Sequence[Any] | None = None) -> TrainResult:
    """Train one run, as `python -m classic_rl OVERRIDES` would, and return its result.

    Under torchrun every process calls `train` with the same arguments: one run on all of them, written
    by rank 0, and every process's result holds that run's summary and directory.

    Args:
        overrides: the command line's strings, e.g. "agent=ppo", "env=CartPole-v1", "agent.lr=1e-3",
            "resume=runs/ppo_CartPole-v1/seed0_..." (continue a run in its own directory).
        env: instead of the config's env, an env object: a function returning a `gymnasium.Env`, a
            `gymnasium.vector.VectorEnv` (same-step auto-reset), a torch-native `Dynamics` or a classic_rl
            `VectorEnv`. The config then starts from `env=gymnasium` (no other env's settings, no tuned config).
        eval_env: the evaluation env when `env` is an instance that cannot be copied (at least
            eval.episodes envs); functions and Dynamics are simply called again.
        callbacks: objects with on_update / on_log / on_evaluation (classic_rl.Callback); False stops.
        run_dir: where the run is written; default runs/AGENT_ENV/seedS_TIMESTAMP, as the command line.
        dataset: a text env's training rows as Python objects (a list of dicts with a "prompt", or a
            datasets.Dataset) instead of env.dataset. The config then starts from `env=text`.
        eval_dataset: the held-out rows, instead of env.eval_dataset.
        reward_funcs: functions with TRL's signature, or built-in names, instead of env.reward_funcs.
    """
    overrides = tuple(str(o) for o in overrides)
    text = {"dataset": dataset, "eval_dataset": eval_dataset, "reward_funcs": reward_funcs}
    objects = env is not None or any(v is not None for v in text.values())
    if objects and not any(o.key_or_group == "env" for o in parse_overrides(list(overrides))):
        overrides = ("env=gymnasium" if env is not None else "env=text", *overrides)
    config, default_dir = compose(overrides)
    if objects:
        config["env"] = {**config["env"], "python_object": True}
        if env is not None and config["env"].get("id") is None and config["env"].get("entry_point") is None:
            config["env"]["id"] = object_name(env)
    resuming = config.get("resume") is not None and config.get("mode") == "train"
    target = Path(run_dir) if run_dir is not None else default_dir if resuming else unique_dir(default_dir)
    from classic_rl import distributed
    from classic_rl.run import main as run_main, resolve_device

    if distributed.launched():  # under torchrun: every rank's result names the run rank 0 writes
        distributed.setup(resolve_device(str(config.get("device", "auto"))))
        target = distributed.from_main_object(target)

    summary = run_main(config, target, callbacks=check_callbacks(callbacks), env=env, eval_env=eval_env, text=text)
    return TrainResult(summary, target, env, text)


def object_name(env: Any) -> str:
    """A name for an env object (run directory, summary): its Gymnasium id, Dynamics id or class name."""
    from classic_rl.envs import is_dynamics, is_vector_env

    import gymnasium

    if is_vector_env(env):
        return env.spec.id
    if isinstance(env, gymnasium.vector.VectorEnv):
        spec = getattr(env, "spec", None)
        return spec.id if spec is not None else type(env).__name__
    if is_dynamics(env):
        return str(getattr(env, "id", type(env).__name__))
    if isinstance(env, gymnasium.Env):
        return type(env.unwrapped).__name__
    if callable(env):
        probe = env()
        try:
            if isinstance(probe, gymnasium.Env):
                return probe.spec.id if probe.spec is not None else type(probe.unwrapped).__name__
        finally:
            if hasattr(probe, "close"):
                probe.close()
    return type(env).__name__


class Policy:
    """A trained agent, restored from its checkpoint for acting and evaluation (see `load`)."""

    def __init__(self, agent: Any, spec: EnvSpec, run_config: RunConfig, config: dict[str, Any],
                 device: torch.device, tokenizer: Any = None, env: Any = None, text: dict[str, Any] | None = None) -> None:
        self.agent, self.spec, self.run_config, self.device = agent, spec, run_config, device
        self.config = config  # the config the run was trained with (its config.yaml)
        self._tokenizer, self._env, self._text = tokenizer, env, text

    @torch.no_grad()
    def act(self, obs: Any, deterministic: bool = True) -> Any:
        """The action for one observation, or actions [N, ...] for a batch [N, *obs_shape].

        numpy (or a list, or a number) in -> numpy out (an int for one discrete action); torch in ->
        torch out. deterministic=False samples / explores as in training."""
        as_torch = isinstance(obs, torch.Tensor)
        space = self.spec.observation_space
        dtype = torch.int64 if self.spec.discrete_observations else torch.float32
        batch = torch.as_tensor(obs if as_torch else np.asarray(obs), device=self.device).to(dtype)
        agents = (self.spec.num_agents,) if self.spec.num_agents > 1 else ()  # multi-agent: [A, ...] per env
        shape = agents + tuple(space.shape or ())
        single = tuple(batch.shape) == shape
        if single:
            batch = batch.unsqueeze(0)
        elif batch.dim() != len(shape) + 1 or tuple(batch.shape[1:]) != shape:
            raise UserError(f"act: observation shape {tuple(batch.shape)} fits neither one observation {shape} "
                            f"nor a batch [N, {', '.join(map(str, shape))}] "
                            f"of {self.spec.id}")
        if not deterministic and getattr(self.agent, "noise", None) is not None and batch.shape[0] != self.spec.num_envs:
            raise UserError(f"act(deterministic=False): {self.run_config.agent['name']}'s exploration noise keeps one "
                            f"process per training env; pass a batch of {self.spec.num_envs} observations")
        actions = self.agent.act(batch, explore=not deterministic)
        out = actions[0] if single else actions
        if as_torch:
            return out
        out = out.cpu().numpy()
        return int(out) if single and self.spec.discrete_actions and not agents else out

    def evaluate(self, episodes: int = 10, env: Any = None, seed: int | None = None) -> dict[str, Any]:
        """Mean return (and std, mean length) of `episodes` deterministic episodes, run at once on
        separately seeded envs as the trainer evaluates. env: default the training env; an id or any
        env object `train` accepts (an instance needs at least `episodes` envs)."""
        from classic_rl.evaluate import evaluate
        from classic_rl.run import make_env, make_text_task

        if episodes < 1:
            raise UserError(f"evaluate: episodes = {episodes} must be >= 1")
        seed = self.run_config.eval.seed if seed is None else seed
        source = env if env is not None else self._env
        if isinstance(source, str):
            from classic_rl.envs import make

            eval_env = make(source, num_envs=episodes, device=self.device, seed=seed)
        else:
            task = make_text_task(self.run_config.env, self._text) if source is None else None
            eval_env = make_env(self.run_config.env, self.device, seed, num_envs=episodes, tokenizer=self._tokenizer,
                                evaluation=True, source=source, task=task)
        if eval_env.num_envs < episodes:
            raise UserError(f"evaluate: the env has {eval_env.num_envs} envs; {episodes} episodes run at once "
                            "and need at least that many")
        try:
            returns, lengths = evaluate(self.agent, eval_env, episodes, seed)
        finally:
            if eval_env is not source:  # an env the caller made stays open
                eval_env.close()
        return {"return_mean": float(returns.mean()), "return_std": float(returns.std()),
                "length_mean": float(lengths.mean()), "episodes": episodes, "returns": returns.tolist()}

    def __repr__(self) -> str:
        return f"Policy({self.run_config.agent['name']} on {self.spec.id}, device={self.device})"


def load(run_dir_or_checkpoint: str | Path, device: str | None = None, env: Any = None, dataset: Any = None,
         eval_dataset: Any = None, reward_funcs: Sequence[Any] | None = None) -> Policy:
    """The trained policy of a run: its directory or its checkpoint.pt (read with weights_only=True).

    device: cpu | cuda | auto; default the run's own setting. env (or a text env's dataset,
    eval_dataset, reward_funcs): needed only for runs trained on Python objects (`train(env=...)`),
    which a config cannot rebuild."""
    from classic_rl.run import restore_agent

    text = {"dataset": dataset, "eval_dataset": eval_dataset, "reward_funcs": reward_funcs}
    payload = ckpt.load(run_dir_or_checkpoint)
    agent, spec, saved_cfg, tokenizer = restore_agent(payload, device, env, text)
    return Policy(agent, spec, saved_cfg, payload["config"], spec.device, tokenizer, env, text)
