"""Torch simple_spread vs mpe2's simple_spread_v3: the same world, observations, rewards and episodes.

One float64 torch env runs beside mpe2's parallel env: mpe2's initial state is copied in at each
episode's start (the two draw worlds from different generators), then both take the same actions
and every observation, reward, global state and flag is compared at every step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classic_rl.envs import make
from classic_rl.envs.multiagent import SimpleSpread

simple_spread_v3 = pytest.importorskip("mpe2.simple_spread_v3")


def copy_in(env: SimpleSpread, world) -> None:
    """mpe2's world state into row 0 of the torch env."""
    f64 = lambda xs: torch.tensor(np.array(xs), dtype=env.dtype)  # noqa: E731
    env.agent_pos[0] = f64([a.state.p_pos for a in world.agents])
    env.agent_vel[0] = f64([a.state.p_vel for a in world.agents])
    env.landmark_pos[0] = f64([lm.state.p_pos for lm in world.landmarks])
    env.elapsed.zero_()


def actions_for(rng: np.random.Generator, continuous: bool, agents: list[str]) -> dict[str, np.ndarray]:
    if continuous:
        return {a: rng.uniform(0, 1, 5).astype(np.float32) for a in agents}
    return {a: int(rng.integers(5)) for a in agents}


@pytest.mark.parametrize("continuous", [False, True])
def test_steps_match_mpe2(continuous):
    reference = simple_spread_v3.parallel_env(N=3, local_ratio=0.5, max_cycles=25, continuous_actions=continuous)
    env = SimpleSpread(1, continuous_actions=continuous, dtype=torch.float64)
    rng = np.random.default_rng(0)
    collisions = 0
    for episode in range(4):
        observations, _ = reference.reset(seed=episode)
        world = reference.unwrapped.world
        if episode == 0:  # agents start in contact: the contact force and the collision penalty are exercised
            for agent, xy in zip(world.agents, ([0.0, 0.0], [0.2, 0.05], [-0.1, 0.2])):
                agent.state.p_pos = np.array(xy)
            observations = {a: reference.unwrapped.observe(a) for a in reference.agents}
        copy_in(env, world)
        agents = list(reference.agents)
        obs = env.observe(env.agent_pos, env.agent_vel, env.landmark_pos)
        np.testing.assert_allclose(obs[0].numpy(), np.stack([observations[a] for a in agents]), atol=1e-6)
        for t in range(25):
            actions = actions_for(rng, continuous, agents)
            observations, rewards, terminations, truncations, _ = reference.step(actions)
            batch = torch.as_tensor(np.stack([actions[a] for a in agents]))[None]
            obs, reward, terminated, truncated, info = env.step(batch)
            last = obs if t < 24 else info["final_obs"]  # mpe2 keeps the last step's observation
            np.testing.assert_allclose(last[0].numpy(), np.stack([observations[a] for a in agents]), atol=1e-5,
                                       err_msg=f"episode {episode} step {t}")
            np.testing.assert_allclose(reward[0].numpy(), [rewards[a] for a in agents], atol=1e-9)
            state = info["state"] if t < 24 else info["final_state"]
            np.testing.assert_allclose(state[0].numpy(), reference.state(), atol=1e-5)
            assert bool(truncated[0]) == all(truncations.values()) == (t == 24)
            assert not terminated[0] and not any(terminations.values())
            collisions += sum(r != reward[0, 0].item() for r in rewards.values()) + (min(rewards.values()) < -2.5)
    assert collisions > 0


def test_batched_auto_reset_and_seeding():
    env = make("simple_spread", num_envs=64, seed=3)
    assert env.spec.num_agents == 3 and env.spec.state_space.shape == (54,)
    obs, info = env.reset(seed=3)
    assert obs.shape == (64, 3, 18) and info["state"].shape == (64, 54)
    twin = make("simple_spread", num_envs=64, seed=3)
    assert torch.equal(twin.reset(seed=3)[0], obs)
    generator = torch.Generator().manual_seed(0)
    for t in range(25):
        actions = torch.randint(0, 5, (64, 3), generator=generator)
        obs, reward, terminated, truncated, info = env.step(actions)
        twin_out = twin.step(actions)
        assert torch.equal(twin_out[0], obs) and torch.equal(twin_out[1], reward)
        assert reward.shape == (64, 3) and truncated.all() == (t == 24) and not terminated.any()
    # the ended episodes' last observations differ from the new episodes' first ones (velocity 0 again)
    assert (obs[..., :2] == 0).all() and not torch.equal(info["final_obs"], obs)
    assert torch.equal(info["final_state"], info["final_obs"].flatten(1)) and torch.equal(info["state"], obs.flatten(1))
    # each env is its own world: row i of a batch equals the same world stepped alone
    single = SimpleSpread(1)
    for key in ("agent_pos", "agent_vel", "landmark_pos"):
        getattr(single, key)[0] = getattr(env, key)[5]
    actions = torch.randint(0, 5, (64, 3), generator=generator)
    batched = env.step(actions)
    alone = single.step(actions[5:6])
    assert torch.allclose(batched[0][5], alone[0][0]) and torch.allclose(batched[1][5], alone[1][0])


def test_state_dict_resumes_the_same_stream():
    env = make("simple_spread", num_envs=8, seed=1)
    env.reset(seed=1)
    for _ in range(30):  # past an auto-reset
        env.step(torch.randint(0, 5, (8, 3)))
    saved = env.state_dict()
    actions = torch.randint(0, 5, (40, 8, 3))
    first = [env.step(a)[0] for a in actions]
    env.load_state_dict(saved)
    again = [env.step(a)[0] for a in actions]
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_a_single_agent_agent_is_refused_in_one_line(tmp_path):
    from classic_rl.agents import make as make_agent
    from classic_rl.agents import make_config
    from classic_rl.config import UserError
    from classic_rl.run import main

    env = make("simple_spread", num_envs=2)
    with pytest.raises(UserError, match="agent=ppo controls one agent; env=simple_spread has 3 agents"):
        make_agent(make_config({"name": "ppo"}), env.spec)
    with pytest.raises(UserError, match="agent=dqn controls one agent"):  # the command line's path
        main({"agent": {"name": "dqn"}, "env": {"id": "simple_spread", "num_envs": 4},
              "logger": {"progress": False, "tensorboard": False}}, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing written for a refused run


def copy_row(env: SimpleSpread, row: int, world) -> None:
    as_tensor = lambda xs: torch.tensor(np.array(xs), dtype=env.dtype)  # noqa: E731
    env.agent_pos[row] = as_tensor([a.state.p_pos for a in world.agents])
    env.agent_vel[row] = as_tensor([a.state.p_vel for a in world.agents])
    env.landmark_pos[row] = as_tensor([lm.state.p_pos for lm in world.landmarks])


def test_pettingzoo_adapter_runs_mpe2_as_the_torch_env_does():
    """mpe2 through the PettingZoo Parallel adapter (3 envs, across an auto-reset) against the torch env
    holding the same worlds: same observations, rewards, global states and episode flags."""
    from classic_rl.envs.multiagent import PettingZooVectorEnv

    adapter = PettingZooVectorEnv(lambda: simple_spread_v3.parallel_env(max_cycles=25), num_envs=3, seed=0)
    assert adapter.spec.num_agents == 3 and adapter.state_space.shape == (54,)
    env = SimpleSpread(3, dtype=torch.float64)
    obs, info = adapter.reset(seed=0)
    for row, sub in enumerate(adapter.envs):
        copy_row(env, row, sub.unwrapped.world)
    torch_obs = env.observe(env.agent_pos, env.agent_vel, env.landmark_pos)
    assert obs.shape == (3, 3, 18) and torch.allclose(obs.double(), torch_obs, atol=1e-6)
    generator = torch.Generator().manual_seed(0)
    for t in range(30):
        actions = torch.randint(0, 5, (3, 3), generator=generator)
        obs, reward, terminated, truncated, info = adapter.step(actions)
        t_obs, t_reward, t_terminated, t_truncated, t_info = env.step(actions)
        assert torch.equal(truncated, t_truncated) and torch.equal(terminated, t_terminated)
        assert torch.allclose(info["final_obs"].double(), t_info["final_obs"], atol=1e-5)
        assert torch.allclose(info["final_state"].double(), t_info["final_state"], atol=1e-5)
        assert torch.allclose(reward.double(), t_reward, atol=1e-5)
        assert info["agent_active"].all()
        if truncated.any():  # both drew new worlds: give the torch env mpe2's
            assert t == 24
            for row, sub in enumerate(adapter.envs):
                copy_row(env, row, sub.unwrapped.world)
            t_obs = env.observe(env.agent_pos, env.agent_vel, env.landmark_pos)
        assert torch.allclose(obs.double(), t_obs, atol=1e-5)
        assert torch.allclose(info["state"].double(), t_obs.flatten(1), atol=1e-5)


def test_pettingzoo_adapter_pads_smaller_observations():
    """simple_tag: 3 adversaries (16 numbers) chase one agent (14): the agent's row is zero-padded."""
    from mpe2 import simple_tag_v3

    from classic_rl.envs.multiagent import PettingZooVectorEnv

    adapter = PettingZooVectorEnv(lambda: simple_tag_v3.parallel_env(max_cycles=10), num_envs=2, seed=1)
    obs, info = adapter.reset()
    assert obs.shape == (2, 4, 16) and info["obs_dim"].tolist() == [16, 16, 16, 14]
    raw, _ = simple_tag_v3.parallel_env(max_cycles=10).reset(seed=1)  # env 0 of the adapter, seeded alike
    assert np.allclose(obs[0, 3, :14].numpy(), raw["agent_0"]) and (obs[:, 3, 14:] == 0).all()
    for t in range(10):
        obs, reward, terminated, truncated, info = adapter.step(torch.randint(0, 5, (2, 4)))
        assert reward.shape == (2, 4) and truncated.all() == (t == 9)


@pytest.mark.skipif(__import__("importlib.util").util.find_spec("vmas") is not None, reason="vmas is installed")
def test_env_vmas_without_the_optional_package_is_one_line():
    from classic_rl.config import UserError

    with pytest.raises(UserError, match=r"env=vmas needs the vmas package .*: pip install vmas"):
        make("vmas", num_envs=2)


def test_partially_observable_variant_sees_the_nearest_landmark_and_agent_and_keeps_the_full_state():
    """observe=nearest: [velocity, position, nearest landmark, nearest other agent] relative to the agent,
    picked from the full observation; the global state, rewards and dynamics are the full variant's."""
    from classic_rl.config import UserError

    partial, full = make("simple_spread", num_envs=16, seed=3, observe="nearest"), make("simple_spread", num_envs=16, seed=3)
    obs, info = partial.reset(seed=3)
    full_obs, full_info = full.reset(seed=3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):  # an episode end (25 steps) included
        assert obs.shape == (16, 3, 8) and torch.equal(info["state"], full_info["state"])
        landmarks = full_obs[..., 4:10].reshape(16, 3, 3, 2)
        others = full_obs[..., 10:14].reshape(16, 3, 2, 2)
        for rel, seen in ((landmarks, obs[..., 4:6]), (others, obs[..., 6:8])):
            distance = rel.norm(dim=-1)  # [N, A, K]
            picked = (seen[:, :, None] - rel).abs().sum(-1).argmin(-1)  # which one the agent sees
            assert torch.equal(distance.gather(2, picked[..., None]).squeeze(2), distance.min(-1).values)
        assert torch.equal(obs[..., :4], full_obs[..., :4])
        actions = torch.randint(0, 5, (16, 3), generator=generator)
        obs, reward, _, truncated, info = partial.step(actions)
        full_obs, full_reward, _, _, full_info = full.step(actions)
        assert torch.equal(reward, full_reward) and info["final_obs"].shape == (16, 3, 8)
    assert partial.spec.observation_space.shape == (8,) and partial.spec.state_space.shape == (54,)
    with pytest.raises(UserError, match="observe='some' is not allowed; full"):
        make("simple_spread", num_envs=2, observe="some")


def test_mappo_trains_on_the_partially_observable_variant_from_the_command_line(tmp_path):
    from classic_rl.compose import compose
    from classic_rl.run import main

    config, _ = compose(["agent=mappo", "env=simple_spread", "+env.kwargs.observe=nearest", "env.num_envs=8",
                         "train.total_steps=800", "eval.every_steps=400", "eval.episodes=4", "device=cpu",
                         "logger.progress=false", "logger.tensorboard=false", "agent.rollout_steps=25"])
    summary = main(config, tmp_path / "run")
    assert summary["env_steps"] >= 800 and summary["updates"] >= 3
