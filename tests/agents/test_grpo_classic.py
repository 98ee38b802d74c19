"""GRPO on classic control: a group is G episodes from the same start state."""

import pytest

from classic_rl.run import main


@pytest.mark.slow
def test_grpo_learns_cartpole(tmp_path):
    config = {"agent": {"name": "grpo", "lr": 3e-3}, "env": {"id": "CartPole-v1", "num_envs": 32, "group_size": 8},
              "seed": 0, "train": {"total_steps": 200_000}, "eval": {"every_steps": 20_000, "episodes": 10},
              "logger": {"tensorboard": False, "progress": False}}
    summary = main(config, tmp_path)
    assert summary["eval_return_mean"] >= 475, [e["return_mean"] for e in summary["evaluations"]]


def test_ppo_runs_on_lockstep_groups(tmp_path):
    config = {"agent": {"name": "ppo", "lr": 1e-3}, "env": {"id": "CartPole-v1", "num_envs": 8, "group_size": 4},
              "train": {"total_steps": 4000}, "eval": {"every_steps": 4000, "episodes": 4},
              "logger": {"tensorboard": False, "progress": False}}
    summary = main(config, tmp_path)
    assert summary["updates"] >= 2 and summary["env_steps"] >= 4000
