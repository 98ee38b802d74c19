"""classic_rl: reinforcement learning on batched torch environments.

    import classic_rl
    result = classic_rl.train("agent=ppo", "env=CartPole-v1")   # the CLI's overrides, the CLI's config
    policy = classic_rl.load(result.run_dir)
    action = policy.act(obs)

Exports: `train`, `load` (classic_rl/api.py), `make` (envs), `Callback`, the agent config classes,
`ConfigError` / `UserError` (one-line user mistakes) and `__version__`. Imports are lazy: `import
classic_rl` loads torch only when one of these is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"  # the package version (pyproject.toml reads it from here)

_EXPORTS = {
    "train": "classic_rl.api", "load": "classic_rl.api", "Policy": "classic_rl.api", "TrainResult": "classic_rl.api",
    "make": "classic_rl.envs", "Callback": "classic_rl.callbacks",
    "ConfigError": "classic_rl.config", "UserError": "classic_rl.config",
    "DQNConfig": "classic_rl.agents.dqn", "DDPGConfig": "classic_rl.agents.ddpg", "PPOConfig": "classic_rl.agents.ppo",
    "A2CConfig": "classic_rl.agents.a2c", "ReinforceConfig": "classic_rl.agents.reinforce",
    "GRPOConfig": "classic_rl.agents.grpo", "DPOConfig": "classic_rl.agents.dpo",
    "RewardModelConfig": "classic_rl.agents.reward_model", "TabularConfig": "classic_rl.agents.tabular",
    "MAPPOConfig": "classic_rl.agents.mappo", "QMIXConfig": "classic_rl.agents.qmix",
}
__all__ = ["__version__", *_EXPORTS]

from classic_rl.registration import register_envs  # noqa: E402

register_envs()  # gymnasium.make_vec("classic_rl/CartPole-v1", ...): classic_rl/registration.py

if TYPE_CHECKING:
    from classic_rl.agents.a2c import A2CConfig
    from classic_rl.agents.ddpg import DDPGConfig
    from classic_rl.agents.dpo import DPOConfig
    from classic_rl.agents.dqn import DQNConfig
    from classic_rl.agents.grpo import GRPOConfig
    from classic_rl.agents.mappo import MAPPOConfig
    from classic_rl.agents.qmix import QMIXConfig
    from classic_rl.agents.ppo import PPOConfig
    from classic_rl.agents.reinforce import ReinforceConfig
    from classic_rl.agents.reward_model import RewardModelConfig
    from classic_rl.agents.tabular import TabularConfig
    from classic_rl.api import Policy, TrainResult, load, train
    from classic_rl.callbacks import Callback
    from classic_rl.config import ConfigError, UserError
    from classic_rl.envs import make


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'classic_rl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
