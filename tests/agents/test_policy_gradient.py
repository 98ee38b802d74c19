"""REINFORCE, A2C and PPO: storage at episode ends, hand-computed updates, configs, learning, exact resume."""

import math

import pytest
import torch

from classic_rl import agents, checkpoint as ckpt, envs
from classic_rl.agents import Transition
from classic_rl.config import ConfigError
from classic_rl.losses import adaptive_kl_beta
from classic_rl.normalize import RewardScaler, RunningMeanStd
from classic_rl.run import main
from tests.conftest import small_config, step

PG = ("reinforce", "a2c", "ppo")


def make(name, env, **kw):
    return agents.make(agents.make_config({"name": name, **kw}), env.spec, seed=0)


def zero_networks(agent):
    """Uniform policy (log π = -log 2 on CartPole) and V = 0 everywhere."""
    with torch.no_grad():
        for net in (agent.actor, agent.critic):
            for p in (net.parameters() if net is not None else ()):
                p.zero_()


# ------------------------------------------------------------------ configuration


def test_configs_validate_with_one_line_errors():
    with pytest.raises(ConfigError, match=r"^config key 'agent.clip_range' = 1.5 is out of range"):
        agents.make_config({"name": "ppo", "clip_range": 1.5})
    with pytest.raises(ConfigError, match="allowed values: none, mean, value"):
        agents.make_config({"name": "reinforce", "baseline": "median"})
    with pytest.raises(ConfigError, match="allowed values: clip, kl_penalty"):
        agents.make_config({"name": "ppo", "objective": "trpo"})
    with pytest.raises(ConfigError, match="unknown config key 'agent.n_steps'"):
        agents.make_config({"name": "a2c", "n_steps": 5})
    with pytest.raises(ConfigError, match="'agent.minibatches' = 64 exceeds the rollout's 32 samples"):
        make("ppo", envs.make("CartPole-v1", 2), rollout_steps=16, minibatches=64)
    for name in PG:
        assert "\n" not in str(pytest.raises(ConfigError, agents.make_config, {"name": name, "gamma": 2}).value)


@pytest.mark.parametrize("name", PG)
def test_discrete_and_continuous_actions_are_supported(name):
    for env_id in ("CartPole-v1", "Pendulum-v1", "FrozenLake-v1"):
        env = envs.make(env_id, 2, backend="gymnasium" if env_id == "FrozenLake-v1" else None)
        agent = make(name, env)
        obs, _ = env.reset(seed=0)
        action = agent.act(obs)
        assert action.shape == (2, *env.spec.action_space.shape)
        assert env.spec.action_space.contains(action[0].cpu().numpy() if not env.spec.discrete_actions
                                              else int(action[0]))


# ------------------------------------------------------------------ storage at episode ends


def test_truncated_rows_store_the_value_of_the_true_final_observation():
    env = envs.make("CartPole-v1", 4, seed=0, max_episode_steps=5)
    agent = make("ppo", env, rollout_steps=12, minibatches=1)
    agent.rollout.critic = lambda o: o.sum(-1) * 10  # a known V(s)
    obs, _ = env.reset(seed=0)
    saw_truncation = False
    for t in range(12):
        next_obs, _, terminated, truncated, info = step(agent, env, obs)
        last_final_obs = info["final_obs"]
        rows = truncated & ~terminated
        if rows.any():
            saw_truncation = True
            stored = agent.rollout.buffer.storage["final_value"][t]
            assert torch.allclose(stored[rows], info["final_obs"][rows].sum(-1) * 10)
            assert not torch.allclose(stored[rows], next_obs[rows].sum(-1) * 10)  # not V(reset obs)
        obs = next_obs
    assert saw_truncation and agent.ready()
    r = agent.rollout.buffer.rollout()
    value = r.obs.sum(-1) * 10  # [T, N] V(s_t)
    trunc = r.truncated
    assert torch.allclose(r.next_value[trunc], agent.rollout.buffer.storage["final_value"][trunc])
    inside = ~r.done[:-1]  # within an episode the bootstrap is the next row's V(s)
    assert torch.allclose(r.next_value[:-1][inside], value[1:][inside])
    assert torch.allclose(r.next_value[-1], last_final_obs.sum(-1) * 10)  # the true next obs of the last row


def test_gaussian_policy_stores_the_unclipped_sample_and_the_env_gets_the_clipped_one():
    env = envs.make("Pendulum-v1", 64, seed=0)
    agent = make("ppo", env, rollout_steps=4, minibatches=1, log_std_init=math.log(4.0))
    obs, _ = env.reset(seed=0)
    sent = []
    for _ in range(4):
        obs, action, *_ = step(agent, env, obs)
        sent.append(action)
    stored = agent.rollout.buffer.storage["action"]  # [T, N, 1]
    sent = torch.stack(sent)
    assert sent.abs().max() <= 2.0 and stored.abs().max() > 2.0  # σ = 4: many samples beyond ±2
    assert torch.equal(sent, stored.clamp(-2.0, 2.0))
    r = agent.rollout.buffer.rollout()
    with torch.no_grad():
        log_prob = agent.actor(r.obs.flatten(0, 1)).log_prob(r.action.flatten(0, 1))  # [T * N]
        assert torch.allclose(log_prob, r.log_prob.flatten(), atol=1e-5)


# ------------------------------------------------------------------ hand-computed updates


def fill_cartpole(agent, rewards, terminated, truncated):
    """Write a hand-made rollout [T, N] into the agent's buffer through act/observe."""
    n = rewards.shape[1]
    obs = torch.zeros(n, 4)
    for t in range(rewards.shape[0]):
        action = agent.act(obs)
        agent.observe(Transition(obs, action, rewards[t], obs, terminated[t], truncated[t]))


REWARDS = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
TERMINATED = torch.tensor([[False, False], [True, False], [False, False]])
NONE = torch.zeros(3, 2, dtype=torch.bool)


@pytest.mark.parametrize("baseline", ["none", "mean"])
def test_reinforce_uses_complete_episodes_only(baseline):
    env = envs.make("CartPole-v1", 2)
    agent = make("reinforce", env, rollout_steps=3, gamma=0.5, baseline=baseline)
    zero_networks(agent)
    fill_cartpole(agent, REWARDS, TERMINATED, NONE)
    stats = agent.update()
    # only column 0's first episode ends inside the rollout: G = [1 + 0.5 * 1, 1] = [1.5, 1]
    assert stats["used_fraction"] == pytest.approx(2 / 6)
    expected = math.log(2) * (1.25 if baseline == "none" else 0.0)  # -mean((G - b) log π), log π = -log 2
    assert stats["policy_loss"] == pytest.approx(expected, abs=1e-6)


def test_a2c_update_matches_hand_computed_n_step_returns():
    env = envs.make("CartPole-v1", 2)
    agent = make("a2c", env, rollout_steps=3, gamma=0.5, gae_lambda=1.0, lr=1e-9)
    zero_networks(agent)  # V = 0: A = n-step return, bootstraps are 0
    fill_cartpole(agent, REWARDS, TERMINATED, NONE)
    stats = agent.update()
    # column 0: [1.5, 1, 1]; column 1: [1.75, 1.5, 1]  (no bootstrap: V = 0)
    returns = torch.tensor([1.5, 1.0, 1.0, 1.75, 1.5, 1.0])
    assert stats["policy_loss"] == pytest.approx(math.log(2) * returns.mean().item(), rel=1e-5)
    assert stats["value_loss"] == pytest.approx(0.5 * returns.square().mean().item(), rel=1e-5)
    assert stats["entropy"] == pytest.approx(math.log(2), rel=1e-5)


def test_ppo_kl_penalty_adapts_beta_and_target_kl_stops_early():
    env = envs.make("CartPole-v1", 16, seed=0)
    agent = make("ppo", env, objective="kl_penalty", rollout_steps=16, minibatches=2, epochs=4, lr=0.01,
                 kl_beta=1.0, kl_target=1e-6)
    obs, _ = env.reset(seed=0)
    for _ in range(16):
        obs, *_ = step(agent, env, obs)
    stats = agent.update()
    assert stats["kl_beta"] == 1.0 and stats["approx_kl"] > 1.5e-6
    assert agent.beta == adaptive_kl_beta(1.0, stats["approx_kl"], 1e-6) == 2.0
    agent = make("ppo", env, rollout_steps=16, minibatches=4, epochs=4, lr=0.01, target_kl=1e-9)
    for _ in range(16):
        obs, *_ = step(agent, env, obs)
    stats = agent.update()
    steps = [int(s["step"]) for s in agent.optimizer.state.values()]
    # the first minibatch starts at π = π_old (KL 0) and steps; the second already sees KL > 1e-9
    assert stats["early_stop"] == 1.0 and set(steps) == {1}


def test_ppo_annealing_of_lr_and_asymmetric_clip_range():
    env = envs.make("CartPole-v1", 2)
    agent = make("ppo", env, lr=1e-3, lr_end=0.0, lr_decay_steps=100, clip_range=0.2, clip_range_high=0.3,
                 clip_range_end=0.1, clip_decay_steps=100)
    assert agent.lr == 1e-3 and agent.clip_range == (0.2, 0.3)
    agent.env_steps = 50
    assert agent.lr == pytest.approx(5e-4) and agent.clip_range == pytest.approx((0.15, 0.225))
    agent.env_steps = 1000
    assert agent.lr == 0.0 and agent.clip_range == pytest.approx((0.1, 0.15))


# ------------------------------------------------------------------ normalization


def test_running_mean_std_merges_batches_exactly():
    g = torch.Generator().manual_seed(0)
    data = torch.randn(1000, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.1]) + 7.0
    rms = RunningMeanStd((3,))
    for chunk in data.split([1, 10, 300, 689]):
        rms.update(chunk)
    assert rms.count == 1000
    assert torch.allclose(rms.mean, data.mean(0)) and torch.allclose(rms.var, data.var(0, unbiased=False))
    out = rms.normalize(data.float())
    assert torch.allclose(out.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(out.std(0), torch.ones(3), atol=1e-3)
    assert rms.normalize(torch.full((1, 3), 1e6), clip=5.0).max() == 5.0


def test_reward_scaler_divides_by_the_std_of_discounted_returns():
    scaler = RewardScaler(num_envs=2, gamma=0.5)
    reward = torch.tensor([2.0, 6.0])
    # returns so far [2, 6]: population variance 4
    assert torch.allclose(scaler(reward, torch.tensor([False, True])), reward / 2.0, rtol=1e-6)
    # returns now [0.5 * 2 + 2, 6] = [3, 6] (env 1 restarted); variance of [2, 6, 3, 6]
    var = torch.tensor([2.0, 6.0, 3.0, 6.0]).var(unbiased=False)
    assert torch.allclose(scaler(reward, torch.tensor([False, False])), reward / var.sqrt(), rtol=1e-5)


# ------------------------------------------------------------------ learning, determinism, resume


def with_agent(cfg, **agent):
    """small_config's sections are merged into DQN defaults; replace the agent section whole."""
    return {**cfg, "agent": agent}


def test_ppo_learns_cartpole(tmp_path):
    cfg = with_agent(
        small_config(env={"num_envs": 128}, train={"total_steps": 24576}, eval={"every_steps": 0, "episodes": 10}),
        name="ppo", rollout_steps=32, epochs=4, minibatches=8, lr=0.0015, gae_lambda=0.99, normalize_obs=True,
        normalize_reward=True)
    summary = main(cfg, tmp_path)
    assert summary["eval_return_mean"] >= 200  # a uniform random policy averages ~22


def pg_config(name, **kw):
    extra = {"ppo": {"minibatches": 2}, "reinforce": {"baseline": "value"}, "a2c": {}}[name]
    return with_agent(small_config(env={"num_envs": 4, "max_episode_steps": 40}, **kw), name=name, rollout_steps=24,
                      normalize_obs=True, normalize_reward=True, hidden_sizes=[16], **extra)


def actor_params(run_dir):
    return ckpt.load(run_dir / "checkpoint.pt")["agent"]["actor"]


@pytest.mark.parametrize("name", PG)
def test_seeded_runs_repeat_and_resume_exactly(tmp_path, name):
    main(pg_config(name, train={"total_steps": 1200}), tmp_path / "full")
    main(pg_config(name, train={"total_steps": 1200}), tmp_path / "again")
    main(pg_config(name, train={"total_steps": 600}), tmp_path / "part")  # 150 vector steps: mid-rollout
    assert ckpt.load(tmp_path / "part" / "checkpoint.pt")["agent"]["buffer"]["pos"] == 150 % 24
    main(pg_config(name, train={"total_steps": 1200}, resume=str(tmp_path / "part")), tmp_path / "resumed")
    main(pg_config(name, train={"total_steps": 1200}, seed=1), tmp_path / "other")
    full = actor_params(tmp_path / "full")
    for run in ("again", "resumed"):
        for k, v in actor_params(tmp_path / run).items():
            assert torch.equal(v, full[k]), (run, k)
    assert not all(torch.equal(v, full[k]) for k, v in actor_params(tmp_path / "other").items())
    rows = [(tmp_path / d / "episodes.csv").read_text().splitlines() for d in ("full", "resumed")]
    assert [r.split(",")[:3] for r in rows[0]] == [r.split(",")[:3] for r in rows[1]]


def test_eval_mode_loads_a_ppo_checkpoint(tmp_path):
    main(pg_config("ppo", train={"total_steps": 300}), tmp_path / "train")
    result = main(pg_config("ppo", mode="eval", checkpoint=str(tmp_path / "train"), eval={"episodes": 3}),
                  tmp_path / "eval")
    assert result["eval_episodes"] == 3
