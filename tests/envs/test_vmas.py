"""The optional VMAS adapter: VMAS scenarios behind the multi-agent contract (skipped without vmas)."""

import pytest
import torch

from classic_rl import envs
from classic_rl.run import main
from tests.conftest import multi_agent_config

pytest.importorskip("vmas")


def test_vmas_scenarios_follow_the_multi_agent_contract():
    env = envs.make("vmas", num_envs=6, seed=0, max_episode_steps=5, scenario="simple_spread")
    assert env.spec.id == "vmas/simple_spread" and env.spec.num_agents == env.num_agents >= 2
    obs, info = env.reset(seed=0)
    A, D = env.num_agents, env.obs_dim
    assert obs.shape == (6, A, D) and torch.equal(info["state"], obs.flatten(1))
    generator = torch.Generator().manual_seed(0)
    for t in range(5):
        actions = torch.randint(0, env.single_action_space.n, (6, A), generator=generator)
        obs, reward, terminated, truncated, info = env.step(actions)
        assert reward.shape == (6, A) and obs.shape == (6, A, D)
        assert truncated.all() == (t == 4) and not terminated.any()
    # same-step reset: the ended episodes' last observations are in final_obs, the new ones in obs
    assert not torch.equal(info["final_obs"], obs) and torch.equal(info["state"], obs.flatten(1))
    assert torch.equal(info["final_state"], info["final_obs"].flatten(1))
    twin = envs.make("vmas", num_envs=6, seed=0, max_episode_steps=5, scenario="simple_spread")
    assert torch.equal(twin.reset(seed=0)[0], env.reset(seed=0)[0])  # seeded


def test_mappo_trains_on_a_vmas_scenario(tmp_path):
    cfg = multi_agent_config({"name": "mappo", "hidden_sizes": [16], "rollout_steps": 10},
                             env={"id": "vmas", "num_envs": 8, "max_episode_steps": 20,
                                  "kwargs": {"scenario": "simple_spread"}}, train={"total_steps": 400})
    summary = main(cfg, tmp_path)
    assert summary["env_steps"] == 400 and summary["updates"] == 5 and summary["eval_episodes"] == 4
