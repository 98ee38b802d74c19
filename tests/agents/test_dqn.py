"""DQN: the stored transitions respect termination vs truncation, the TD target, acting, learning."""

import pytest
import torch

from classic_rl import agents, envs
from classic_rl.agents import Transition
from classic_rl.agents.dqn import DQNConfig
from classic_rl.run import main
from tests.conftest import small_config


def make_dqn(env, **kw):
    return agents.make(DQNConfig(**{"buffer_size": 1000, "batch_size": 8, "learning_starts": 0, **kw}), env.spec)


def test_truncation_is_stored_as_bootstrap_and_termination_is_not():
    env = envs.make("CartPole-v1", 8, seed=0, max_episode_steps=12)
    agent = make_dqn(env)
    obs, _ = env.reset()
    saw = {"terminated": 0, "truncated": 0}
    for t in range(60):
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(Transition(obs, action, reward, info["final_obs"], terminated, truncated))
        rows = slice(t * 8, t * 8 + 8)
        stored = agent.buffer.storage
        assert torch.equal(stored["terminated"][rows], terminated.float())  # truncation is NOT terminal
        done = terminated | truncated
        assert torch.equal(stored["next_obs"][rows][~done], next_obs[~done])
        # at an episode end the stored next state is the true final state, not the reset state
        assert torch.equal(stored["next_obs"][rows][done], info["final_obs"][done])
        assert not torch.equal(stored["next_obs"][rows][done], next_obs[done]) or not done.any()
        saw["terminated"] += int(terminated.sum())
        saw["truncated"] += int((truncated & ~terminated).sum())
        obs = next_obs
    assert saw["terminated"] > 0 and saw["truncated"] > 0


def test_update_matches_hand_computed_td_loss():
    env = envs.make("CartPole-v1", 2)
    agent = make_dqn(env, hidden_sizes=[], gamma=0.5, batch_size=2, lr=1e-9, train_freq=2,
                     target_update_interval=10**6)
    with torch.no_grad():  # linear Q-functions with zero weights: Q(s, .) = bias
        for net, bias in ((agent.q, [0.0, 0.0]), (agent.q_target, [1.0, 3.0])):
            net.body[0].weight.zero_()
            net.body[0].bias.copy_(torch.tensor(bias))
    obs = torch.zeros(2, 4)
    agent.observe(Transition(obs, torch.tensor([0, 1]), torch.tensor([1.0, 1.0]), obs,
                             torch.tensor([True, False]), torch.tensor([False, True])))
    sampled = []
    sample = agent.buffer.sample
    agent.buffer.sample = lambda *a: sampled.append(sample(*a)) or sampled[-1]
    assert agent.ready()
    stats = agent.update()
    # targets: terminated row -> 1; truncated row -> 1 + 0.5 * max(1, 3) = 2.5; Q(s, a) = 0
    # Huber (delta 1) per row: 0.5 * 1^2 = 0.5 and 2.5 - 0.5 = 2.0
    per_row = torch.tensor([0.5, 2.0])
    expected = per_row[sampled[0].indices].mean().item()
    assert stats["loss"] == pytest.approx(expected)
    assert stats["q_mean"] == pytest.approx(0.0)


def test_target_network_hard_and_polyak_updates():
    env = envs.make("CartPole-v1", 1)
    for tau in (1.0, 0.25):
        agent = make_dqn(env, tau=tau)
        before = [p.clone() for p in agent.q_target.parameters()]
        with torch.no_grad():
            for p in agent.q.parameters():
                p.add_(1.0)
        agent._update_target()
        for b, p_t, p in zip(before, agent.q_target.parameters(), agent.q.parameters()):
            assert torch.allclose(p_t, tau * p + (1 - tau) * b)


def test_acting_greedy_and_epsilon():
    env = envs.make("CartPole-v1", 4000)
    obs, _ = env.reset(seed=0)
    agent = make_dqn(env, epsilon_start=1.0, epsilon_end=0.0, epsilon_decay_steps=100)
    greedy = agent.q(obs).argmax(-1)
    assert torch.equal(agent.act(obs, explore=False), greedy)
    random_actions = agent.act(obs)  # ε = 1: uniform over both actions
    assert abs(random_actions.float().mean().item() - 0.5) < 0.05
    agent.env_steps = 100  # ε annealed to 0
    assert agent.epsilon == 0.0 and torch.equal(agent.act(obs), greedy)


def test_dqn_learns_deterministic_frozen_lake(tmp_path):
    cfg = small_config(
        env={"id": "FrozenLake-v1", "num_envs": 4, "kwargs": {"is_slippery": False}},
        agent={"learning_starts": 500, "epsilon_decay_steps": 3000, "lr": 0.003, "target_update_interval": 100,
               "train_freq": 4, "gamma": 0.95},
        train={"total_steps": 20000}, eval={"every_steps": 1000, "episodes": 2, "early_stop": True},
    )
    summary = main(cfg, tmp_path)
    assert summary["eval_return_mean"] == 1.0  # reaches the goal
    # early stop at the first evaluation at or above FrozenLake's threshold (0.7)
    assert summary["solved_at_step"] == summary["env_steps"] < 20000
