import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


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
