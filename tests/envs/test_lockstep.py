"""Lock-step rounds with groups over a torch-native classic env."""

import pytest
import torch

from classic_rl.envs import make


def test_groups_share_their_start_and_rows_wait_for_the_round():
    env = make("CartPole-v1", num_envs=8, group_size=4, seed=0)
    assert env.spec.lockstep and env.spec.group_size == 4
    obs, _ = env.reset(seed=3)
    assert torch.equal(obs[0], obs[3]) and torch.equal(obs[4], obs[7]) and not torch.equal(obs[0], obs[4])
    ended = torch.zeros(8, dtype=torch.bool)
    generator = torch.Generator().manual_seed(0)
    for _ in range(500):
        before = obs.clone()
        obs, reward, terminated, truncated, info = env.step(torch.randint(0, 2, (8,), generator=generator))
        active = info["active"]
        assert torch.equal(active, ~ended)  # exactly the rows that have not ended take steps
        assert (reward[~active] == 0).all() and not (terminated | truncated)[~active].any()
        if (~active).any() and not (ended | terminated | truncated).all():
            waiting = ~active
            assert torch.equal(obs[waiting], before[waiting])  # a waiting row shows its last observation
        ended |= terminated | truncated
        if ended.all():
            break
    assert ended.all()
    # the next round started: fresh shared starts, every row active again
    assert torch.equal(obs[0], obs[1]) and bool((obs.abs() <= 0.05).all())
    *_, info = env.step(torch.zeros(8, dtype=torch.int64))
    assert info["active"].all()


def test_lockstep_collector_bootstraps_truncation_from_the_true_final_observation():
    from classic_rl.agents.base import Transition
    from classic_rl.buffers.rollout import LockstepCollector
    from classic_rl.nets.policy import Actor, ActorCritic, Critic

    env = make("CartPole-v1", num_envs=4, group_size=2, seed=0, max_episode_steps=5)
    spec = env.spec
    torch.manual_seed(0)
    policy = ActorCritic(Actor(spec.observation_space, spec.action_space, [8]),
                         Critic(spec.observation_space, [8]))
    collector = LockstepCollector.for_spec(spec, policy, torch.Generator().manual_seed(0))
    obs, _ = env.reset(seed=0)
    finals = {}
    while not collector.round_over:
        action = collector.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        t = Transition(obs, action, reward, info["final_obs"], terminated, truncated, info["active"])
        collector.observe(t)
        for row in truncated.nonzero().flatten().tolist():
            finals[(collector.buffer.pos - 1, row)] = policy.critic(info["final_obs"][row:row + 1]).item()
        obs = next_obs
    r = collector.rollout()
    assert finals and r.obs.shape[0] <= 5
    for (step, row), value in finals.items():
        assert r.next_value[step, row].item() == pytest.approx(value, abs=1e-6)
