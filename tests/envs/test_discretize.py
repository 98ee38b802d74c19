"""env.discretize: uniform bins with known edges, row-major state indices, the wrapper keeps the contract."""

import gymnasium as gym
import pytest
import torch

from classic_rl import envs
from classic_rl.config import ConfigError, DiscretizeConfig, UserError
from classic_rl.envs import discretize as disc
from classic_rl.envs.discretize import DiscretizedVectorEnv, bin_edges, discretize
from classic_rl.run import load_config
from tests.conftest import small_config


def test_bin_edges_and_indices_known_answers():
    (edges,) = bin_edges([0.0], [1.0], [4])
    assert edges.tolist() == [0.25, 0.5, 0.75]
    x = torch.tensor([[-1.0], [0.0], [0.24], [0.25], [0.5], [0.74], [0.75], [0.99], [1.0], [7.0]])
    # bin i holds [low + i w, low + (i + 1) w); outside the bounds -> the edge bins
    assert discretize(x, [edges], [4]).tolist() == [0, 0, 0, 1, 2, 2, 3, 3, 3, 3]
    (edges,) = bin_edges([-2.4], [2.4], [6])  # CartPole's x: edges every 0.8
    assert torch.allclose(edges, torch.tensor([-1.6, -0.8, 0.0, 0.8, 1.6]))
    assert discretize(torch.tensor([[-0.81], [-0.79], [0.0], [2.39]]), [edges], [6]).tolist() == [1, 2, 3, 5]


def test_index_is_row_major_over_dimensions():
    bins = [2, 3]
    edges = bin_edges([0.0, 0.0], [1.0, 3.0], bins)  # edges: [0.5] and [1, 2]
    obs = torch.tensor([[0.2, 0.5], [0.2, 1.5], [0.2, 2.5], [0.7, 0.5], [0.7, 2.5]])
    assert discretize(obs, edges, bins).tolist() == [0, 1, 2, 3, 5]  # index = i0 * 3 + i1
    one_bin = bin_edges([0.0, 0.0], [1.0, 3.0], [2, 1])  # one bin: the dimension is ignored
    assert one_bin[1].numel() == 0 and discretize(obs, one_bin, [2, 1]).tolist() == [0, 0, 0, 1, 1]


def test_bounds_config_then_documented_then_box():
    cart = envs.make("CartPole-v1", 2, discretize=DiscretizeConfig(bins=[1, 2, 3, 4]))
    assert (cart.low, cart.high) == disc.BOUNDS["CartPole-v1"]  # the Box's velocities are unbounded
    assert cart.single_observation_space == gym.spaces.Discrete(24) == cart.spec.observation_space
    car = envs.make("MountainCar-v0", 2, discretize=DiscretizeConfig(bins=5))
    assert car.bins == [5, 5] and car.low == pytest.approx([-1.2, -0.07]) and car.high == pytest.approx([0.6, 0.07])
    custom = envs.make("MountainCar-v0", 2, discretize=DiscretizeConfig(bins=2, low=[-1.0, -1.0], high=[1.0, 1.0]))
    assert custom.low == [-1.0, -1.0] and custom.edges[0].tolist() == [0.0]


def test_unusable_settings_are_one_line_user_errors(monkeypatch):
    with pytest.raises(UserError, match="env.discretize.bins has 3 values; CartPole-v1 observations have 4"):
        envs.make("CartPole-v1", 1, discretize=DiscretizeConfig(bins=[2, 2, 2]))
    with pytest.raises(UserError, match="needs a 1-D Box"):
        envs.make("FrozenLake-v1", 1, discretize=DiscretizeConfig(bins=2))
    with pytest.raises(UserError, match="below"):
        envs.make("MountainCar-v0", 1, discretize=DiscretizeConfig(bins=2, low=[0.0, 0.0], high=[1.0, 0.0]))
    monkeypatch.setattr(disc, "BOUNDS", {})  # CartPole's own Box: infinite velocity bounds
    with pytest.raises(UserError, match=r"dimensions \[1, 3\] are unbounded; pass env.discretize.low"):
        envs.make("CartPole-v1", 1, discretize=DiscretizeConfig(bins=2))


@pytest.mark.parametrize("value", [0, [3, 0], [], "many"])
def test_bad_bins_name_the_key(value):
    with pytest.raises(ConfigError, match="'env.discretize.bins'"):
        load_config(small_config(env={"discretize": {"bins": value}}))
    cfg, _ = load_config(small_config(env={"discretize": {"bins": [6, 6, 12, 12], "low": [-1, -1, -1, -1]}}))
    assert cfg.env.discretize == DiscretizeConfig(bins=[6, 6, 12, 12], low=[-1.0, -1.0, -1.0, -1.0])


@pytest.mark.parametrize("backend", ["torch", "gymnasium"])
def test_wrapper_discretizes_obs_and_final_obs_of_the_same_episodes(backend):
    n, cfg = 8, DiscretizeConfig(bins=[3, 4, 5, 6])
    raw = envs.make("CartPole-v1", n, seed=3, backend=backend, max_episode_steps=30)
    wrapped = envs.make("CartPole-v1", n, seed=3, backend=backend, max_episode_steps=30, discretize=cfg)
    assert isinstance(wrapped, DiscretizedVectorEnv)
    obs, _ = wrapped.reset()
    raw_obs, _ = raw.reset()
    assert obs.dtype == torch.int64 and obs.shape == (n,)
    assert torch.equal(obs, discretize(raw_obs, wrapped.edges, wrapped.bins))
    gen, ended = torch.Generator().manual_seed(0), 0
    for _ in range(80):
        action = torch.randint(2, (n,), generator=gen)
        obs, reward, terminated, truncated, info = wrapped.step(action)
        raw_obs, raw_reward, raw_terminated, raw_truncated, raw_info = raw.step(action)
        assert torch.equal(obs, discretize(raw_obs, wrapped.edges, wrapped.bins))
        assert torch.equal(info["final_obs"], discretize(raw_info["final_obs"], wrapped.edges, wrapped.bins))
        assert torch.equal(terminated, raw_terminated) and torch.equal(truncated, raw_truncated)
        assert torch.equal(reward, raw_reward)
        ended += int((terminated | truncated).sum())
    assert ended > 0 and obs.max() < 360
