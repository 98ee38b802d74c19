"""Agents by config name. `make_config` validates an agent's YAML; `make` builds it for an env."""

from __future__ import annotations

from typing import Any

from classic_rl import distributed
from classic_rl.agents.base import Agent, Transition
from classic_rl.agents.ddpg import DDPG, DDPGConfig
from classic_rl.agents.dpo import DPO, DPOConfig
from classic_rl.agents.dqn import DQN, DQNConfig
from classic_rl.agents.grpo import GRPO, GRPOConfig
from classic_rl.agents.a2c import A2C, A2CConfig
from classic_rl.agents.mappo import MAPPO, MAPPOConfig
from classic_rl.agents.ppo import PPO, PPOConfig
from classic_rl.agents.qmix import QMIX, QMIXConfig
from classic_rl.agents.reinforce import Reinforce, ReinforceConfig
from classic_rl.agents.reward_model import RewardModel, RewardModelConfig
from classic_rl.agents.tabular import TabularAgent, TabularConfig
from classic_rl.config import ConfigError, UserError, from_dict
from classic_rl.envs.base import EnvSpec

# one dict per package: config name -> (config class, agent class)
AGENTS: dict[str, tuple[type, type]] = {
    "dqn": (DQNConfig, DQN),
    "reinforce": (ReinforceConfig, Reinforce),
    "a2c": (A2CConfig, A2C),
    "ppo": (PPOConfig, PPO),
    "grpo": (GRPOConfig, GRPO),
    "dpo": (DPOConfig, DPO),
    "reward_model": (RewardModelConfig, RewardModel),
    "ddpg": (DDPGConfig, DDPG),
    "mappo": (MAPPOConfig, MAPPO),
    "qmix": (QMIXConfig, QMIX),
    "q_learning": (TabularConfig, TabularAgent),
    "sarsa": (TabularConfig, TabularAgent),
    "expected_sarsa": (TabularConfig, TabularAgent),
}

__all__ = ["AGENTS", "Agent", "Transition", "make", "make_config"]


def make_config(data: dict[str, Any]) -> Any:
    name = data.get("name")
    if name not in AGENTS:
        raise ConfigError(f"config key 'agent.name' = {name!r} is not allowed; allowed values: {', '.join(AGENTS)}")
    config_cls, _ = AGENTS[name]
    return from_dict(config_cls, data, prefix="agent")


def make(cfg: Any, spec: EnvSpec, seed: int = 0, lm: Any = None) -> Agent:
    """Build the agent named by `cfg.name` for `spec`, failing early if it cannot handle the env.

    `lm` (lm/model.py LanguageModel) is the policy's language model on text envs."""
    config_cls, agent_cls = AGENTS[cfg.name]
    if spec.text is not None and not getattr(agent_cls, "accepts_lm", False):
        lm_agents = [name for name, (_, a) in AGENTS.items() if getattr(a, "accepts_lm", False)]
        raise UserError(f"agent={cfg.name} cannot train a language model on env={spec.id}; "
                        f"agents that can: {', '.join(lm_agents)}")
    if spec.lockstep and spec.text is None and not getattr(agent_cls, "accepts_lockstep", False):
        fits = [name for name, (_, a) in AGENTS.items() if getattr(a, "accepts_lockstep", False)]
        raise UserError(f"agent={cfg.name} cannot learn from lock-step rounds (env.group_size = {spec.group_size}): "
                        f"it would store the waiting rows as real steps; use env.group_size=1, or an agent that can: "
                        f"{', '.join(fits)}")
    if spec.num_agents > 1 and not getattr(agent_cls, "multi_agent", False):
        fits = [name for name, (_, a) in AGENTS.items() if getattr(a, "multi_agent", False)]
        raise UserError(f"agent={cfg.name} controls one agent; env={spec.id} has {spec.num_agents} agents per env; "
                        f"multi-agent agents: {', '.join(fits) if fits else 'none in this version'}")
    check_data_parallel(cfg)
    reason = config_cls.supports(spec)
    if reason is not None:
        fits = [name for name, (c, _) in AGENTS.items() if c.supports(spec) is None]
        raise UserError(
            f"agent={cfg.name} cannot run on env={spec.id}: it {reason}; "
            f"agents that can: {', '.join(fits) if fits else 'none in this version'}"
        )
    if getattr(agent_cls, "accepts_lm", False):
        return agent_cls(cfg, spec, seed=seed, lm=lm)
    return agent_cls(cfg, spec, seed=seed)


def check_data_parallel(cfg: Any) -> None:
    """Several processes (torchrun) and an agent that runs in one: one line naming those that can."""
    if distributed.world_size() > 1 and not getattr(AGENTS[cfg.name][1], "data_parallel", False):
        fits = [name for name, (_, a) in AGENTS.items() if getattr(a, "data_parallel", False)]
        raise UserError(f"agent={cfg.name} runs in one process; {distributed.world_size()} processes started "
                        f"(torchrun): start it without torchrun, or use an agent that can: {', '.join(fits)}")
