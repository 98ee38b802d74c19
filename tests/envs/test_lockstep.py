"""Lock-step rounds with groups over a torch-native classic env."""

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
