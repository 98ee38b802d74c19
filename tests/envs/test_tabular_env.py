"""The torch toy-text envs (classic_rl/envs/tabular.py) against Gymnasium's own: step-by-step parity on
the deterministic MDPs, transition and start frequencies on the stochastic ones, the time limit."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from classic_rl import envs
from classic_rl.envs import TabularVectorEnv
from classic_rl.envs.gym import GymVectorEnv

DETERMINISTIC = [("Taxi-v4", {}), ("CliffWalking-v1", {}), ("FrozenLake-v1", {"is_slippery": False}),
                 ("FrozenLake8x8-v1", {"is_slippery": False})]


@pytest.mark.parametrize("env_id,kwargs", DETERMINISTIC)
def test_deterministic_mdps_step_like_gymnasium(env_id, kwargs):
    """Same start states and actions: the same next states, rewards, terminations and truncations as
    Gymnasium's env under its TimeLimit, over many episodes (auto-resets included)."""
    n, steps = 8, 600
    env = TabularVectorEnv(env_id, n, seed=0, max_episode_steps=50, **kwargs)
    twins = [gym.make(env_id, max_episode_steps=50, **kwargs) for _ in range(n)]
    obs, _ = env.reset(seed=3)
    for i, twin in enumerate(twins):
        twin.reset(seed=i)
        twin.unwrapped.s = int(obs[i])
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(steps):
        actions = rng.integers(0, env.single_action_space.n, n)
        obs, reward, terminated, truncated, info = env.step(torch.as_tensor(actions))
        for i, twin in enumerate(twins):
            s2, r, term, trunc, _ = twin.step(int(actions[i]))
            assert (int(info["final_obs"][i]), float(reward[i]), bool(terminated[i]), bool(truncated[i])) == \
                (s2, r, term, trunc)
            if term or trunc:
                episodes += 1
                twin.reset()
                twin.unwrapped.s = int(obs[i])  # the start state this env drew
            else:
                assert int(obs[i]) == s2
    assert episodes > 20


def test_slippery_frozenlake_transition_frequencies_match_the_table():
    """FrozenLake's slip (1/3 each: the intended move and the two perpendicular ones), sampled 30k times
    from one state and action, against P[s][a]'s probabilities."""
    n = 30000
    env = TabularVectorEnv("FrozenLake-v1", n, seed=0)
    env.reset()
    env.state.fill_(6)   # row 1, column 2; action 1 (down): to 10, or slips left into 5 or right into 7 (holes)
    _, _, _, _, info = env.step(torch.full((n,), 1))
    P = gym.make("FrozenLake-v1").unwrapped.P[6][1]
    expected = {}
    for p, s2, _, _ in P:
        expected[s2] = expected.get(s2, 0.0) + p
    counts = torch.bincount(info["final_obs"], minlength=16).double() / n
    for s2, p in expected.items():
        assert abs(counts[s2].item() - p) < 0.015, (s2, counts[s2].item(), p)
    assert counts.sum().item() == pytest.approx(1.0)
    assert sum(counts[s].item() for s in range(16) if s not in expected) == 0.0


def test_taxi_start_states_follow_gymnasiums_distribution():
    n = 60000
    env = TabularVectorEnv("Taxi-v4", n, seed=1)
    obs, _ = env.reset()
    distrib = gym.make("Taxi-v4").unwrapped.initial_state_distrib
    support = np.flatnonzero(distrib)
    assert set(obs.unique().tolist()) <= set(support.tolist())     # never a start Gymnasium cannot draw
    freq = torch.bincount(obs, minlength=500).double().numpy() / n
    assert np.abs(freq[support] - distrib[support]).max() < 0.004   # 300 starts of 1/300 each


def test_time_limit_truncates_without_terminating():
    env = TabularVectorEnv("CliffWalking-v1", 4, seed=0, max_episode_steps=5)
    env.reset()
    for t in range(5):
        obs, _, terminated, truncated, info = env.step(torch.zeros(4, dtype=torch.int64))  # 0 = up: never ends
    assert truncated.all() and not terminated.any()
    assert (info["final_obs"] == 0).all() and (obs == 36).all()   # up x5 from 36: truncated at the top-left, restarted at 36


def test_make_routes_toy_text_to_torch_unless_asked_for_gymnasium():
    assert isinstance(envs.make("Taxi-v4", 2), TabularVectorEnv)
    assert isinstance(envs.make("FrozenLake-v1", 2, is_slippery=False), TabularVectorEnv)
    assert isinstance(envs.make("Taxi-v4", 2, backend="gymnasium"), GymVectorEnv)
    assert isinstance(envs.make("Taxi-v4", 2, fickle_passenger=True), GymVectorEnv)  # dynamics outside P


def test_resume_continues_the_same_stream():
    a = TabularVectorEnv("FrozenLake-v1", 16, seed=0)
    a.reset()
    for _ in range(7):
        a.step(torch.randint(0, 4, (16,)))
    b = TabularVectorEnv("FrozenLake-v1", 16, seed=99)
    b.load_state_dict(a.state_dict())
    actions = torch.randint(0, 4, (16,))
    for x, y in zip(a.step(actions)[:4], b.step(actions)[:4]):
        assert torch.equal(x, y)
