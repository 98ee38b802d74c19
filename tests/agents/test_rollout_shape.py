"""On-policy rollouts and minibatches by steps or by samples (agents/base.rollout_shape), budgets in
vector steps (${vector_steps:K}), and the tuned CartPole PPO run at 4096 envs."""

import json

import pytest
import torch

from classic_rl import agents, envs
from classic_rl.agents.base import rollout_shape
from classic_rl.compose import compose
from classic_rl.config import ConfigError
from classic_rl.run import main
from tests.conftest import collect


def ppo(num_envs: int, **keys):
    return agents.make(agents.make_config({"name": "ppo", "hidden_sizes": [16], **keys}),
                       envs.make("CartPole-v1", num_envs=num_envs).spec, seed=0)


@pytest.mark.parametrize("keys, num_envs, expected", [
    ({}, 8, (128, 4)),                                              # the defaults: by steps
    ({"rollout_steps": 32, "minibatches": 8}, 8, (32, 8)),
    ({"batch_size": 4096, "minibatch_size": 512}, 128, (32, 8)),    # the same run by samples
    ({"batch_size": 4096, "minibatch_size": 512}, 4096, (1, 8)),    # the same batch at 4096 envs
    ({"batch_size": 256, "minibatches": 2}, 16, (16, 2)),
    ({"rollout_steps": 4, "minibatch_size": 16}, 8, (4, 2)),
])
def test_rollouts_and_minibatches_by_steps_or_by_samples(keys, num_envs, expected):
    agent = ppo(num_envs, **keys)
    assert (agent.rollout_steps, agent.minibatches) == expected
    assert agent.rollout.buffer.storage["reward"].shape[0] == expected[0]  # the collector's rollout length


@pytest.mark.parametrize("keys, num_envs, message", [
    ({"rollout_steps": 32, "batch_size": 4096}, 8, "'agent.rollout_steps' = 32 and 'agent.batch_size' = 4096 both set"),
    ({"minibatches": 4, "minibatch_size": 64}, 8, "'agent.minibatches' = 4 and 'agent.minibatch_size' = 64 both set"),
    ({"batch_size": 100}, 8, "'agent.batch_size' = 100 is not a multiple of env.num_envs = 8"),
    ({"batch_size": 2048}, 4096, "'agent.batch_size' = 2048 is not a multiple of env.num_envs = 4096"),
    ({"rollout_steps": 4, "minibatch_size": 24}, 8, "'agent.minibatch_size' = 24 does not divide the rollout's 32"),
    ({"rollout_steps": 2, "minibatches": 17}, 8, "'agent.minibatches' = 17 exceeds the rollout's 16 samples"),
])
def test_bad_rollout_shapes_are_one_line(keys, num_envs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        ppo(num_envs, **keys)
    assert "\n" not in str(err.value)


def test_a2c_takes_its_rollout_by_samples_too():
    a2c = agents.make(agents.make_config({"name": "a2c", "batch_size": 80}), envs.make("CartPole-v1", num_envs=16).spec)
    assert a2c.rollout_steps == 5 and rollout_shape(a2c.cfg, 16, 5) == (5, 1)
    default = agents.make(agents.make_config({"name": "a2c"}), envs.make("CartPole-v1", num_envs=16).spec)
    assert default.rollout_steps == 5


def test_a_config_by_samples_updates_as_the_same_config_by_steps():
    by_steps, by_samples = ppo(8, rollout_steps=16, minibatches=4), ppo(8, batch_size=128, minibatch_size=32)
    for agent in (by_steps, by_samples):
        collect(agent, envs.make("CartPole-v1", num_envs=8, seed=0), 16)
        agent.update()
    for (name, a), b in zip(by_steps.actor.state_dict().items(), by_samples.actor.state_dict().values()):
        assert torch.equal(a, b), name


def test_tuned_budget_and_cadence_are_in_vector_steps():
    """conf/tuned/ppo_CartPole-v1.yaml: ${vector_steps:K} = K x env.num_envs, so a run at 4096 envs keeps
    the tuned number of updates; an override of the key itself still wins."""
    small, _ = compose(["agent=ppo", "env=CartPole-v1"])
    large, _ = compose(["agent=ppo", "env=CartPole-v1", "env.num_envs=4096"])
    for config, n in ((small, 128), (large, 4096)):
        assert config["train"]["total_steps"] == 469 * n == config["agent"]["lr_decay_steps"]
        assert config["eval"]["every_steps"] == 32 * n
    fixed, _ = compose(["agent=ppo", "env=CartPole-v1", "env.num_envs=4096", "train.total_steps=300000"])
    assert fixed["train"]["total_steps"] == fixed["agent"]["lr_decay_steps"] == 300000


def test_a_budget_shorter_than_one_rollout_is_one_line_and_writes_nothing(tmp_path):
    with pytest.raises(ConfigError, match=r"'train.total_steps' = 60000 is less than one rollout of agent=ppo "
                                          r"\(32 steps x 4096 envs = 131072 env steps\)"):
        main({"agent": {"name": "ppo", "rollout_steps": 32}, "env": {"id": "CartPole-v1", "num_envs": 4096},
              "train": {"total_steps": 60000}, "logger": {"tensorboard": False, "progress": False}}, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_tuned_cartpole_ppo_solves_at_4096_envs_without_other_changes(tmp_path):
    """`python -m classic_rl agent=ppo env=CartPole-v1 env.num_envs=4096`: 14 updates of 131,072 samples."""
    config, _ = compose(["agent=ppo", "env=CartPole-v1", "env.num_envs=4096", "seed=1", "device=cpu",
                         "logger.progress=false", "logger.tensorboard=false"])
    summary = main(config, tmp_path / "run")
    assert summary["updates"] == 14 and summary["env_steps"] == 469 * 4096
    assert summary["solved_at_step"] is not None and summary["eval_return_mean"] >= 475, summary["evaluations"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["solved_at_step"] == summary["solved_at_step"]
