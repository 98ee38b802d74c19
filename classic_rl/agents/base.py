"""The Agent protocol the trainer drives, and the transition it hands over after each env step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import torch

from classic_rl.envs.base import EnvSpec


@dataclass(frozen=True)
class Transition:
    """One vector env step, every field with the env batch dimension N first."""

    obs: torch.Tensor  # [N, *obs_shape] observation the action was chosen on
    action: torch.Tensor  # [N, *action_shape]
    reward: torch.Tensor  # [N]
    next_obs: torch.Tensor  # [N, *obs_shape] true next observation (info["final_obs"])
    terminated: torch.Tensor  # [N] bool: no bootstrap from next_obs
    truncated: torch.Tensor  # [N] bool: episode cut; bootstrap from next_obs
    active: torch.Tensor | None = None  # [N] bool, lock-step envs: the row took a real step (info["active"])
    # [N], envs with spec.round_reward, on the step that ends a round: each row's reward for its episode,
    # which belongs to the row's last active step (info["round_reward"], envs/base.py)
    round_reward: torch.Tensor | None = None
    # multi-agent envs (spec.num_agents > 1), where obs is [N, A, ...] and reward [N, A]: the global state
    # [N, *state_shape] the actions were chosen in (info["state"]), and the true next one (info["final_state"])
    state: torch.Tensor | None = None
    next_state: torch.Tensor | None = None


class Agent(Protocol):
    """act -> (env.step) -> observe -> update when ready. The agent owns its storage."""

    def act(self, obs: torch.Tensor, explore: bool = True) -> torch.Tensor:
        """Actions [N, ...] for observations [N, ...]; explore=False is the deterministic policy.

        Multi-agent agents (class attribute `multi_agent = True`) take obs [N, A, ...] and a keyword
        `state` [N, ...], the global state: the trainer passes it while training (centralised critics
        read it); acting never needs it (decentralised execution), so evaluation passes none."""
        ...

    def observe(self, transition: Transition) -> None: ...

    def ready(self) -> bool:
        """True when the agent wants `update()` called now."""
        ...

    def update(self) -> dict[str, float]:
        """Learn from storage; returns named scalar stats (losses, lr, exploration rate...)."""
        ...

    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def unsupported_multi_agent(spec: EnvSpec) -> str | None:
    """None if `spec` is a multi-agent env with Box observations (what mappo and qmix read), else the reason."""
    if spec.num_agents < 2:
        return "needs a multi-agent env (several agents per env)"
    if not isinstance(spec.observation_space, gym.spaces.Box):
        return f"needs Box observations, not {spec.observation_space}"
    return None


def linear_schedule(start: float, end: float, duration: int, t: int) -> float:
    """start -> end linearly over `duration` steps, then end (constant start when duration is 0:
    no annealing, so `lr_end` or `epsilon_end` has no effect without its decay steps)."""
    if duration <= 0:
        return start
    return start + (end - start) * min(t / duration, 1.0)


def annealed_lr(cfg: Any, env_steps: int) -> float:
    """cfg.lr annealed linearly to cfg.lr_end (null: constant) over cfg.lr_decay_steps env steps."""
    return linear_schedule(cfg.lr, cfg.lr if cfg.lr_end is None else cfg.lr_end, cfg.lr_decay_steps, env_steps)


def due_update_rounds(env_steps: int, trained_steps: int, learning_starts: int, train_freq: int,
                      catch_up_warmup: bool = False) -> int:
    """Off-policy agents: update rounds owed now, one per `train_freq` env steps not yet paid for by
    earlier rounds; 0 before `learning_starts`.

    catch_up_warmup=False (SB3, CleanRL): the first round comes at `learning_starts` and the warm-up
    steps are never paid for. True: the first round also pays for the warm-up, learning_starts /
    train_freq rounds at once, a burst of gradient steps on the warm-up data alone."""
    if env_steps < learning_starts:
        return 0
    if not catch_up_warmup:
        trained_steps = max(trained_steps, learning_starts - train_freq)
    return (env_steps - trained_steps) // train_freq


def round_agent_state(agent: Any, include_buffer: bool = True) -> dict[str, Any]:
    """Checkpoint of an agent that learns from lock-step rounds (GRPO, DPO): policy without its frozen
    reference (rebuilt from the model, never saved), optimizer, generator, counters, the round so far."""
    return {
        "policy": {k: v for k, v in agent.policy.state_dict().items() if not k.startswith("reference.")},
        "optimizer": agent.optimizer.state_dict(),
        "generator": agent.generator.get_state(),
        "counters": (agent.env_steps, agent.updates),
        "collector": agent.collector.state_dict(include_buffer),
    }


def load_round_agent_state(agent: Any, state: dict[str, Any]) -> None:
    agent.policy.load_state_dict(state["policy"], strict=False)  # the reference is rebuilt, never saved
    if "optimizer" in state:  # evaluation and export load the policy alone
        agent.optimizer.load_state_dict(state["optimizer"])
    agent.generator.set_state(state["generator"])
    agent.env_steps, agent.updates = state["counters"]
    agent.collector.load_state_dict(state["collector"])


def rollout_shape(cfg: Any, num_envs: int, default_steps: int, default_minibatches: int | None = None
                  ) -> tuple[int, int]:
    """(vector steps per rollout, minibatches per epoch) of an on-policy config, given by steps
    (`rollout_steps`, `minibatches`) or by samples (`batch_size` per rollout, `minibatch_size`), each
    pair at most one of the two; `num_envs`: the envs of all ranks together. A config by samples keeps
    its batch when env.num_envs changes; one by steps keeps its credit horizon (rollout length)."""
    from classic_rl import distributed
    from classic_rl.config import ConfigError

    num_envs *= distributed.world_size()
    rollout_steps, batch_size = one_of(cfg, "rollout_steps", "batch_size", "the rollout")
    if batch_size is not None:
        if batch_size % num_envs:
            raise ConfigError(f"config key 'agent.batch_size' = {batch_size} is not a multiple of env.num_envs = "
                              f"{num_envs}: a rollout is whole vector steps; pass a multiple of {num_envs}")
        steps = batch_size // num_envs
    else:
        steps = default_steps if rollout_steps is None else rollout_steps
    if default_minibatches is None:
        return steps, 1
    samples = steps * num_envs
    minibatches, minibatch_size = one_of(cfg, "minibatches", "minibatch_size", "the minibatches")
    if minibatch_size is not None:
        if samples % minibatch_size:
            raise ConfigError(f"config key 'agent.minibatch_size' = {minibatch_size} does not divide the rollout's "
                              f"{samples} samples ({steps} steps x {num_envs} envs); pass a divisor of {samples}")
        return steps, samples // minibatch_size
    minibatches = default_minibatches if minibatches is None else minibatches
    if minibatches > samples:
        raise ConfigError(f"config key 'agent.minibatches' = {minibatches} exceeds the rollout's {samples} samples "
                          f"(rollout_steps x env.num_envs)")
    return steps, minibatches


def one_of(cfg: Any, by_count: str, by_samples: str, what: str) -> tuple[Any, Any]:
    """(cfg.by_count, cfg.by_samples), at most one of them set: two keys for one quantity (rollouts and
    minibatches by steps or by samples); a config without the second key has it None."""
    from classic_rl.config import ConfigError

    count, samples = getattr(cfg, by_count, None), getattr(cfg, by_samples, None)
    if count is not None and samples is not None:
        raise ConfigError(f"config keys 'agent.{by_count}' = {count} and 'agent.{by_samples}' = {samples} both set "
                          f"{what}; pass one of them and the other =null")
    return count, samples
