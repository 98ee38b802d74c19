"""The Gymnasium adapter: same contract as the torch-native envs, same episodes as Gymnasium."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from classic_rl import envs
from classic_rl.config import UserError


def test_make_routes_backends():
    assert isinstance(envs.make("CartPole-v1", 2), envs.TorchVectorEnv)
    assert isinstance(envs.make("CartPole-v1", 2, backend="gymnasium"), envs.GymVectorEnv)
    assert isinstance(envs.make("FrozenLake-v1", 2), envs.TabularVectorEnv)   # toy text: from its table P
    assert isinstance(envs.make("FrozenLake-v1", 2, backend="gymnasium"), envs.GymVectorEnv)
    with pytest.raises(UserError, match="torch-native"):
        envs.make("Blackjack-v1", 2, backend="torch")
    with pytest.raises(UserError, match="not a Gymnasium id"):
        envs.make("NoSuchEnv-v0", 2)


@pytest.mark.parametrize("env_id, kwargs", [("FrozenLake-v1", {}), ("Taxi-v4", {}), ("CliffWalking-v1", {}),
                                            ("FrozenLake-v1", {"map_name": "8x8", "is_slippery": False})])
def test_adapter_matches_gymnasium_episodes(env_id, kwargs):
    n, seed = 3, 7
    env = envs.make(env_id, n, seed=seed, max_episode_steps=25, backend="gymnasium", **kwargs)
    reference = [gym.make(env_id, max_episode_steps=25, **kwargs) for _ in range(n)]
    obs, _ = env.reset()
    ref_obs = [r.reset(seed=seed + i)[0] for i, r in enumerate(reference)]  # make_vec seeds env i with seed + i
    assert obs.dtype == torch.int64 and obs.tolist() == ref_obs
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(300):
        actions = rng.integers(env.single_action_space.n, size=n)
        obs, reward, terminated, truncated, info = env.step(torch.as_tensor(actions))
        for i, r in enumerate(reference):
            o, rew, term, trunc, _ = r.step(int(actions[i]))
            assert info["final_obs"][i].item() == o and reward[i].item() == pytest.approx(rew)
            assert (terminated[i].item(), truncated[i].item()) == (term, trunc)
            if term or trunc:
                ends += 1
                o, _ = r.reset()
            assert obs[i].item() == o
    assert ends > 0


def test_adapter_box_obs_final_obs():
    env = envs.make("CartPole-v1", 4, backend="gymnasium", seed=0)
    obs, _ = env.reset()
    assert obs.shape == (4, 4) and obs.dtype == torch.float32
    seen_end = False
    for _ in range(60):
        obs, reward, terminated, truncated, info = env.step(torch.zeros(4, dtype=torch.int64))
        done = terminated | truncated
        assert torch.equal(info["final_obs"][~done], obs[~done])
        if done.any():
            seen_end = True
            assert (info["final_obs"][done, 2].abs() > 0.2095).all()  # terminal pole angle, not a reset state
            assert (obs[done].abs() <= 0.05).all()  # already reset
    assert seen_end
