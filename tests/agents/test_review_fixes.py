"""Lock-step refusals, PPO's KL-penalty objective on rounds, schedules at duration 0, masked losses
that a non-finite masked value cannot poison, single-sample advantage normalisation, and the
off-policy warm-up rounds."""

import dataclasses
import math

import pytest
import torch

from classic_rl import agents, envs
from classic_rl.agents import Transition
from classic_rl.agents.base import annealed_lr, due_update_rounds, linear_schedule
from classic_rl.config import UserError
from classic_rl.losses import aggregate_loss, sequence_log_ratio
from classic_rl.returns import normalize_advantage


def fill(agent, env):
    """Step `env` from a seeded reset until the agent is ready to update."""
    obs, _ = env.reset(seed=0)
    while not agent.ready():
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(Transition(obs, action, reward, info["final_obs"], terminated, truncated, info.get("active")))
        obs = next_obs


# ------------------------------------------------------------------ agents that cannot use lock-step rounds
@pytest.mark.parametrize("name, env_id", [("dqn", "CartPole-v1"), ("rainbow", "CartPole-v1"), ("a2c", "CartPole-v1"),
                                          ("reinforce", "CartPole-v1"), ("ddpg", "Pendulum-v1"),
                                          ("td3", "Pendulum-v1"), ("q_learning", "FrozenLake-v1"),
                                          ("sarsa", "FrozenLake-v1"), ("expected_sarsa", "FrozenLake-v1")])
def test_agents_without_lockstep_support_refuse_groups(name, env_id):
    import yaml

    from tests.conftest import ROOT

    data = yaml.safe_load((ROOT / "conf" / "agent" / f"{name}.yaml").read_text())
    data.pop("defaults", None)
    if "name" not in data:  # a preset of another agent (rainbow, td3): its base file has the name
        data = {**yaml.safe_load((ROOT / "conf" / "agent" / ("dqn" if name == "rainbow" else "ddpg")).with_suffix(
            ".yaml").read_text()), **data}
    cfg = agents.make_config(data)
    if env_id == "FrozenLake-v1":  # no lock-step toy-text env exists yet: a spec that says it is one
        spec = dataclasses.replace(envs.make(env_id, num_envs=4).spec, lockstep=True, group_size=2)
    else:
        spec = envs.make(env_id, num_envs=4, group_size=2).spec
    with pytest.raises(UserError, match=f"agent={cfg.name} cannot learn from lock-step rounds.*ppo, grpo"):
        agents.make(cfg, spec)


def test_ppo_kl_penalty_objective_on_lockstep_rounds():
    """objective=kl_penalty on rounds minimises -ρA + β k3 per real step, and adapts β after each round,
    instead of being replaced by the clipped objective."""
    def run(objective):
        env = envs.make("CartPole-v1", num_envs=4, group_size=2, seed=0)
        cfg = agents.make_config({"name": "ppo", "objective": objective, "lr": 0.05, "epochs": 4,
                                  "kl_beta": 1.0, "kl_target": 1e-6})
        agent = agents.make(cfg, env.spec, seed=0)
        fill(agent, env)
        stats = agent.update()
        return agent, stats

    clip_agent, _ = run("clip")
    kl_agent, stats = run("kl_penalty")
    assert stats["kl_beta"] == 1.0 and stats["approx_kl"] > 1.5e-6 and kl_agent.beta == 2.0  # KL above target: β x 2
    moved = [not torch.equal(a, b) for a, b in zip(clip_agent.policy.parameters(), kl_agent.policy.parameters())]
    assert any(moved)


# ------------------------------------------------------------------ schedules
def test_linear_schedule_with_zero_duration_is_the_constant_start():
    assert linear_schedule(1.0, 0.0, 0, 10) == 1.0
    assert linear_schedule(1.0, 0.0, 10, 5) == 0.5 and linear_schedule(1.0, 0.0, 10, 50) == 0.0

    class Cfg:
        lr, lr_end, lr_decay_steps = 3e-4, 0.0, 0

    assert annealed_lr(Cfg, 1000) == 3e-4  # lr_end without decay steps never trains with lr 0


# ------------------------------------------------------------------ masked losses and normalisation
def test_a_non_finite_value_at_a_masked_token_does_not_reach_the_loss_or_its_gradient():
    per_token = torch.tensor([[1.0, 2.0], [math.inf, 3.0]], requires_grad=True)  # [T, N]; (1, 0) is masked
    mask = torch.tensor([[True, True], [False, True]])
    for mode in ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum"):
        loss = aggregate_loss(per_token, mask, mode)
        (grad,) = torch.autograd.grad(loss, per_token)
        assert torch.isfinite(loss) and torch.isfinite(grad).all() and grad[1, 0] == 0, mode
    assert aggregate_loss(per_token, mask, "token_mean").item() == pytest.approx(2.0)
    log_ratio = torch.tensor([[0.1, 0.2], [-math.inf, 0.4]])
    assert torch.allclose(sequence_log_ratio(log_ratio, mask), torch.tensor([[0.1, 0.3], [0.1, 0.3]]))


def test_advantage_normalisation_of_a_single_sample_is_finite():
    assert normalize_advantage(torch.tensor([2.5])).tolist() == [0.0]
    a = torch.tensor([1.0, 2.0, 3.0, 10.0])
    mask = torch.tensor([True, True, True, False])
    assert torch.allclose(normalize_advantage(a, mask)[:3], torch.tensor([-1.0, 0.0, 1.0]), atol=1e-6)
    assert normalize_advantage(a, torch.tensor([False, True, False, False]))[1] == 0.0
    assert torch.allclose(normalize_advantage(a), (a - a.mean()) / (a.std() + 1e-8))


def test_ppo_with_single_sample_minibatches_stays_finite():
    env = envs.make("CartPole-v1", num_envs=1, seed=0)
    cfg = agents.make_config({"name": "ppo", "rollout_steps": 4, "minibatches": 4, "epochs": 1})
    agent = agents.make(cfg, env.spec, seed=0)
    fill(agent, env)
    stats = agent.update()
    assert math.isfinite(stats["loss"]) and math.isfinite(stats["grad_norm"])
    assert all(torch.isfinite(p).all() for p in agent.actor.parameters())


# ------------------------------------------------------------------ off-policy warm-up rounds
def test_warm_up_rounds_are_paid_for_only_when_asked():
    # learning_starts 1000, train_freq 4: at env step 1000 the burst owes 250 rounds, SB3's schedule 1
    assert due_update_rounds(999, 0, 1000, 4, catch_up_warmup=True) == 0
    assert due_update_rounds(1000, 0, 1000, 4, catch_up_warmup=True) == 250
    assert due_update_rounds(1000, 0, 1000, 4) == 1
    assert due_update_rounds(1003, 1000, 1000, 4) == 0 and due_update_rounds(1004, 1000, 1000, 4) == 1
    assert due_update_rounds(1010, 0, 1000, 4) == 3  # 8 envs x ... : rounds at 1000, 1004, 1008
    assert due_update_rounds(5, 0, 0, 4) == 1


def test_dqn_takes_one_round_at_learning_starts_by_default():
    env = envs.make("CartPole-v1", num_envs=1, seed=0)
    counts = {}
    for catch_up in (False, True):
        cfg = agents.make_config({"name": "dqn", "learning_starts": 100, "train_freq": 4, "batch_size": 8,
                                  "catch_up_warmup": catch_up})
        agent = agents.make(cfg, env.spec, seed=0)
        fill(agent, env)
        agent.update()
        counts[catch_up] = agent.gradient_steps
    assert counts == {False: 1, True: 25}
