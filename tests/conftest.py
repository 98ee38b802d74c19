import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def load_experiment(name: str):
    """experiments/<name>.py as a module (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def step(agent, env, obs):
    """One vector step: act, step `env`, give the agent the transition; (next_obs, action, terminated, truncated, info)."""
    from classic_rl.agents import Transition

    action = agent.act(obs)
    next_obs, reward, terminated, truncated, info = env.step(action)
    agent.observe(Transition(obs, action, reward, info["final_obs"], terminated, truncated))
    return next_obs, action, terminated, truncated, info


def collect(agent, env, num_steps: int, seed: int = 0):
    """Reset `env` with `seed` and feed the agent `num_steps` vector steps; returns the last observation."""
    obs, _ = env.reset(seed=seed)
    for _ in range(num_steps):
        obs = step(agent, env, obs)[0]
    return obs


def collect_round(agent, env, seed: int = 0) -> None:
    """Reset a lock-step `env` with `seed` and feed the agent one whole round (rows' active flags and
    the round's rewards included), until it is ready to update."""
    from classic_rl.agents import Transition

    obs, _ = env.reset(seed=seed)
    while not agent.ready():
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(Transition(obs, action, reward, info["final_obs"], terminated, truncated, info["active"],
                                 info.get("round_reward")))
        obs = next_obs


def small_config(**sections) -> dict:
    """A composed-config dict for fast in-process runs (no Hydra)."""
    cfg = {
        "agent": {"name": "dqn", "learning_starts": 200, "train_freq": 4, "batch_size": 32,
                  "buffer_size": 5000, "target_update_interval": 50, "epsilon_decay_steps": 1000,
                  "hidden_sizes": [32, 32]},
        "env": {"id": "CartPole-v1", "num_envs": 2},
        "seed": 0,
        "device": "cpu",
        "train": {"total_steps": 1000},
        "eval": {"every_steps": 500, "episodes": 2},
        "logger": {"progress": False, "tensorboard": False, "log_every_steps": 100},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            cfg[key] = {**cfg.get(key, {}), **value}
        else:
            cfg[key] = value
    return cfg


def cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


CLI = [sys.executable, "-m", "classic_rl"]


@pytest.fixture
def tiny_lm():
    """A fresh random 2-layer GPT-2 with the byte-level tokenizer (no download); needs transformers."""
    pytest.importorskip("transformers")
    from classic_rl.config import ModelConfig
    from classic_rl.lm.model import load

    return load(ModelConfig(name="tiny"), "cpu", seed=0)


def multi_agent_config(agent: dict, **sections) -> dict:
    """A config dict for a short in-process run of a multi-agent agent on 8 simple_spread envs."""
    cfg = {
        "agent": agent, "env": {"id": "simple_spread", "num_envs": 8}, "seed": 0, "device": "cpu",
        "train": {"total_steps": 1000}, "eval": {"every_steps": 0, "episodes": 4},
        "logger": {"progress": False, "tensorboard": False, "log_every_steps": 100},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg
