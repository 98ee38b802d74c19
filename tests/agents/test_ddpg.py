"""DDPG / TD3: config errors, the TD3 target by hand, storage at episode ends, acting within bounds,
Polyak and delayed updates, OU noise, exact resume, and a short learning run on Pendulum."""

import math
import subprocess

import gymnasium as gym
import numpy as np
import pytest
import torch

from classic_rl import agents, checkpoint as ckpt, envs
from classic_rl.agents import Transition
from classic_rl.agents.ddpg import DDPGConfig
from classic_rl.config import ConfigError, UserError
from classic_rl.envs.base import EnvSpec
from classic_rl.noise import GaussianNoise, OrnsteinUhlenbeckNoise
from classic_rl.run import main
from tests.conftest import CLI, ROOT, cli_env, small_config, step

TD3 = {"twin_critics": True, "policy_delay": 2, "target_noise": 0.2, "target_noise_clip": 0.5}


def make_ddpg(env, **kw):
    cfg = {"buffer_size": 1000, "batch_size": 8, "learning_starts": 0, "hidden_sizes": [16], **kw}
    return agents.make(agents.make_config({"name": "ddpg", **cfg}), env.spec)


def box_spec(low, high, num_envs=4):
    box = gym.spaces.Box(np.array(low, np.float32), np.array(high, np.float32))
    obs = gym.spaces.Box(-np.ones(3, np.float32), np.ones(3, np.float32))
    return EnvSpec("Box-test", num_envs, obs, box, 100, None, torch.device("cpu"))


# ------------------------------------------------------------------ configuration


def test_config_errors_are_one_line_and_name_the_key():
    for change, pattern in (
        ({"exploration_noise": "pink"}, r"^config key 'agent.exploration_noise' = 'pink' is not allowed; "
                                        r"allowed values: gaussian, ou$"),
        ({"tau": 0.0}, r"^config key 'agent.tau' = 0.0 is out of range"),
        ({"policy_delay": 0}, r"^config key 'agent.policy_delay' = 0 is out of range"),
        ({"target_noise": -0.1}, r"^config key 'agent.target_noise' = -0.1 is out of range"),
        ({"batch_size": 500, "buffer_size": 100}, r"^config key 'agent.batch_size' = 500 is larger"),
        ({"twin_critic": True}, r"^unknown config key 'agent.twin_critic'"),
    ):
        with pytest.raises(ConfigError, match=pattern) as err:
            agents.make_config({"name": "ddpg", **change})
        assert "\n" not in str(err.value)


def test_discrete_actions_are_refused_with_the_reason():
    spec = envs.make("CartPole-v1", 1).spec
    assert "continuous (Box) actions" in DDPGConfig.supports(spec)
    assert DDPGConfig.supports(envs.make("Pendulum-v1", 1).spec) is None
    with pytest.raises(UserError, match=r"agent=ddpg cannot run on env=CartPole-v1: it needs continuous .*"
                                        r"agents that can: dqn"):
        agents.make(DDPGConfig(), spec)
    assert "ddpg" in [n for n, (c, _) in agents.AGENTS.items() if c.supports(envs.make("Pendulum-v1", 1).spec) is None]


def test_cli_refuses_cartpole_in_one_line(tmp_path):
    proc = subprocess.run([*CLI, "agent=ddpg", "env=CartPole-v1", f"hydra.run.dir={tmp_path}/run"],
                          capture_output=True, text=True, env=cli_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "agent=ddpg cannot run on env=CartPole-v1" in lines[0], proc.stderr


# ------------------------------------------------------------------ the target, by hand


def set_linear(layer, weight, bias):
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float32).reshape(layer.weight.shape))
        layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32).reshape(layer.bias.shape))


def linear_agent(env, **kw):
    """Linear nets: μ'(s) = 2 tanh(atanh(0.95)) = 1.9 for every s; Q1'(s, a) = a, Q2'(s, a) = 1.5."""
    agent = make_ddpg(env, hidden_sizes=[], gamma=0.5, **kw)
    set_linear(agent.actor_target.body[0], torch.zeros(1, 3), [math.atanh(0.95)])
    k = agent.critic_target.num_critics
    set_linear(agent.critic_target.body[0], [[0, 0, 0, 1.0], [0, 0, 0, 0]][:k], [0.0, 1.5][:k])
    return agent


def hand_batch(agent):
    obs = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, -2.0], [0.5, 0.5, 1.0], [1.0, 1.0, 3.0]])
    return agent.buffer.gather(torch.arange(4))._replace(
        obs=obs, next_obs=obs.flip(0), reward=torch.tensor([1.0, 1.0, -2.0, 0.5]),
        terminated=torch.tensor([0.0, 1.0, 0.0, 0.0]), discount=torch.full((4,), 0.5))


def test_td3_target_matches_hand_computation():
    env = envs.make("Pendulum-v1", 1)
    # σ = 1000 half-ranges: every ε is clipped to ±c = ±0.25 x 2 = ±0.5, so ã = clip(1.9 ± 0.5, -2, 2)
    agent = linear_agent(env, twin_critics=True, target_noise=1000.0, target_noise_clip=0.25)
    batch = hand_batch(agent)
    agent.generator.manual_seed(0)  # its first four normal draws have signs +, -, -, +
    y = agent.target(batch)
    # ã = clip(1.9 + 0.5, -2, 2) = 2.0 (+) or 1.9 - 0.5 = 1.4 (-); min(Q1', Q2') = min(ã, 1.5) = 1.5 or 1.4
    expected = [1.0 + 0.5 * 1.5, 1.0, -2.0 + 0.5 * 1.4, 0.5 + 0.5 * 1.5]
    assert y.tolist() == pytest.approx(expected, abs=1e-6)


def test_ddpg_target_uses_one_critic_and_no_smoothing():
    env = envs.make("Pendulum-v1", 1)
    agent = linear_agent(env)  # one critic Q1'(s, a) = a, no target noise: ã = μ'(s') = 1.9
    y = agent.target(hand_batch(agent))
    assert y.tolist() == pytest.approx([1.0 + 0.95, 1.0, -2.0 + 0.95, 0.5 + 0.95], abs=1e-6)


def test_update_regresses_every_critic_on_the_target():
    env = envs.make("Pendulum-v1", 2)
    agent = make_ddpg(env, hidden_sizes=[], batch_size=4, train_freq=4, critic_lr=1e-9, actor_lr=1e-9,
                      twin_critics=True, target_noise=0.0)
    obs = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, -2.0]])
    for _ in range(2):
        agent.observe(Transition(obs, torch.tensor([[0.5], [-1.0]]), torch.tensor([1.0, -1.0]), obs,
                                 torch.tensor([False, False]), torch.tensor([False, True])))
    sampled = []
    sample = agent.buffer.sample
    agent.buffer.sample = lambda *a: sampled.append(sample(*a)) or sampled[-1]
    with torch.no_grad():
        q_before = agent.critic(*[agent.buffer.storage[k][:4] for k in ("obs", "action")])
    stats = agent.update()
    b = sampled[0]
    y = agent.target(b)  # lr ~ 0 and no target noise: the same target the update used
    q = agent.critic(b.obs, b.action).detach()  # [2, B]
    assert torch.allclose(q, q_before[:, b.indices], atol=1e-5)
    assert stats["critic_loss"] == pytest.approx(((q - y) ** 2).mean(1).sum().item(), rel=1e-4)


# ------------------------------------------------------------------ storage


def test_transitions_store_termination_not_truncation():
    env = envs.make("Pendulum-v1", 3)
    agent = make_ddpg(env, gamma=0.9)
    obs = torch.arange(9.0).reshape(3, 3)
    final = -obs  # the true last observations; the env would hand back reset observations in `obs`
    action = torch.tensor([[0.1], [0.2], [0.3]])
    agent.observe(Transition(obs, action, torch.tensor([1.0, 2.0, 3.0]), final,
                             torch.tensor([True, False, True]), torch.tensor([False, True, True])))
    s = agent.buffer.storage
    assert s["terminated"][:3].tolist() == [1.0, 0.0, 1.0]  # truncated alone bootstraps; both: no bootstrap
    assert torch.equal(s["next_obs"][:3], final) and torch.equal(s["action"][:3], action)
    assert s["action"].dtype == torch.float32 and s["action"].shape == (1000, 1)
    assert s["discount"][:3].tolist() == pytest.approx([0.9] * 3)


def test_pendulum_time_limits_bootstrap_from_the_final_observation():
    env = envs.make("Pendulum-v1", 4, seed=0, max_episode_steps=10)
    agent = make_ddpg(env, learning_starts=10**6)
    obs, _ = env.reset()
    truncations = 0
    for t in range(25):
        next_obs, _, terminated, truncated, info = step(agent, env, obs)
        rows = slice(4 * t, 4 * t + 4)
        stored = agent.buffer.storage
        assert torch.equal(stored["terminated"][rows], terminated.float())
        assert torch.equal(stored["next_obs"][rows], info["final_obs"])
        if truncated.any():
            truncations += int(truncated.sum())
            assert not torch.equal(stored["next_obs"][rows][truncated], next_obs[truncated])
        obs = next_obs
    assert truncations == 8 and float(agent.buffer.storage["terminated"][:100].sum()) == 0.0


# ------------------------------------------------------------------ acting


def test_actions_stay_within_asymmetric_bounds():
    spec = box_spec([-1.0, 0.0], [3.0, 0.5], num_envs=2000)
    agent = agents.make(DDPGConfig(learning_starts=100, noise_std=5.0, hidden_sizes=[8], buffer_size=10, batch_size=2),
                        spec)
    obs = torch.randn(2000, 3) * 10
    low, high = torch.tensor([-1.0, 0.0]), torch.tensor([3.0, 0.5])
    warmup = agent.act(obs)  # uniform over the Box before learning_starts
    assert ((warmup >= low) & (warmup <= high)).all()
    assert torch.allclose(warmup.mean(0), (low + high) / 2, atol=0.06)
    assert torch.allclose(warmup.std(0), (high - low) / math.sqrt(12), rtol=0.06)
    agent.env_steps = 100
    with torch.no_grad():
        for p in agent.actor.parameters():
            p.mul_(100)  # saturate tanh
    greedy = agent.act(obs, explore=False)
    assert torch.equal(greedy, agent.actor(obs)) and ((greedy >= low) & (greedy <= high)).all()
    noisy = agent.act(obs)
    assert ((noisy >= low) & (noisy <= high)).all() and not torch.equal(noisy, greedy)
    assert ((noisy == low) | (noisy == high)).float().mean() > 0.3  # σ = 5 half-ranges: mostly at the edges


# ------------------------------------------------------------------ target networks, policy delay


def test_polyak_update_arithmetic():
    env = envs.make("Pendulum-v1", 1)
    agent = make_ddpg(env, tau=0.25, twin_critics=True)
    before = [p.clone() for p in agent.target_params]
    with torch.no_grad():
        for p in agent.online_params:
            p.add_(1.0)
    agent._update_targets()
    assert len(agent.target_params) == len(agent.online_params) == 4 + 4  # actor [16] net, critic [16] net
    for b, p_t, p in zip(before, agent.target_params, agent.online_params):
        assert torch.allclose(p_t, 0.25 * p + 0.75 * b)


def test_policy_delay_moves_actor_and_targets_every_d_critic_steps():
    env = envs.make("Pendulum-v1", 1, seed=0)
    agent = make_ddpg(env, policy_delay=3, train_freq=1, gradient_steps=1, batch_size=4, tau=0.5)
    obs, _ = env.reset()
    for _ in range(8):
        obs, *_ = step(agent, env, obs)
    agent.trained_steps = agent.env_steps  # nothing owed yet
    snapshot = lambda params: [p.clone() for p in params]  # noqa: E731
    moved = lambda old, params: any(not torch.equal(a, b) for a, b in zip(old, params))  # noqa: E731
    for k in range(1, 8):
        actor, critic, targets = (snapshot(x) for x in (agent.actor_params, agent.critic_params, agent.target_params))
        obs, *_ = step(agent, env, obs)
        assert agent.ready()
        agent.update()
        assert agent.gradient_steps == k and agent.actor_steps == k // 3
        assert moved(critic, agent.critic_params)  # the critic moves every step
        assert moved(actor, agent.actor_params) == (k % 3 == 0)
        assert moved(targets, agent.target_params) == (k % 3 == 0)


def test_early_gradient_steps_raise_the_update_to_data_ratio():
    env = envs.make("Pendulum-v1", 2, seed=0)
    agent = make_ddpg(env, train_freq=2, gradient_steps=1, gradient_steps_early=3, gradient_steps_until=6)
    obs, _ = env.reset()
    counts = []
    for _ in range(5):
        obs, *_ = step(agent, env, obs)
        agent.update()
        counts.append(agent.gradient_steps)
    assert counts == [3, 6, 7, 8, 9]  # 3 per round while env steps < 6 (rounds at 2, 4), then 1


# ------------------------------------------------------------------ noise


def test_ou_noise_reverts_to_the_mean_at_rate_theta():
    noise = OrnsteinUhlenbeckNoise((2, 1), std=0.0, theta=0.5, dt=0.1)
    noise.x.fill_(2.0)
    g = torch.Generator().manual_seed(0)
    for t in range(1, 11):  # no diffusion: x_t = (1 - θ dt)^t x_0
        assert noise.sample(g)[0, 0].item() == pytest.approx(2.0 * 0.95**t, rel=1e-5)
    noise.reset(torch.tensor([True, False]))
    assert noise.x[0, 0].item() == 0.0 and noise.x[1, 0].item() == pytest.approx(2.0 * 0.95**10, rel=1e-5)


def test_ou_noise_statistics_with_a_fixed_seed():
    theta, dt, std = 0.15, 0.1, 0.3
    noise = OrnsteinUhlenbeckNoise((20000, 1), std=std, theta=theta, dt=dt)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):  # (1 - θ dt)^600 ~ 1e-4: stationary by now
        noise.sample(g)
    a = noise.sample(g)
    b = noise.sample(g)
    # stationary law of x' = (1 - θ dt) x + σ sqrt(dt) ε: mean 0, variance σ² dt / (1 - (1 - θ dt)²)
    variance = std**2 * dt / (1 - (1 - theta * dt) ** 2)
    assert abs(a.mean().item()) < 4 * math.sqrt(variance / 20000)
    assert a.var().item() == pytest.approx(variance, rel=0.04)
    assert torch.corrcoef(torch.stack([a[:, 0], b[:, 0]]))[0, 1].item() == pytest.approx(1 - theta * dt, abs=0.01)


def test_gaussian_noise_is_iid_with_the_given_std():
    noise = GaussianNoise((50000, 1), std=0.3)
    g = torch.Generator().manual_seed(0)
    a, b = noise.sample(g), noise.sample(g)
    assert a.std().item() == pytest.approx(0.3, rel=0.02)
    assert abs(torch.corrcoef(torch.stack([a[:, 0], b[:, 0]]))[0, 1].item()) < 0.02


def test_agent_resets_ou_noise_where_episodes_end():
    env = envs.make("Pendulum-v1", 3, seed=0, max_episode_steps=5)
    agent = make_ddpg(env, exploration_noise="ou", noise_std=0.5, ou_dt=0.5)
    obs, _ = env.reset()
    for t in range(5):
        obs, _, _, truncated, _ = step(agent, env, obs)
        assert bool(truncated.all()) == (t == 4)
        assert (agent.noise.x.abs() > 0).all() == (t < 4)  # all three rows restart at 0 on the last step


# ------------------------------------------------------------------ runs: determinism, resume, learning


def ddpg_config(**kw):
    agent = {"name": "ddpg", "learning_starts": 200, "batch_size": 32, "buffer_size": 5000, "hidden_sizes": [16],
             "train_freq": 2, "gradient_steps": 1, **TD3, "exploration_noise": "ou", "noise_std": 0.3}
    return {**small_config(env={"id": "Pendulum-v1", "num_envs": 2}, **kw), "agent": agent}


def agent_state(run_dir):
    return ckpt.load(run_dir / "checkpoint.pt")["agent"]


def test_seeded_runs_repeat_and_resume_exactly(tmp_path):
    main(ddpg_config(train={"total_steps": 1200}), tmp_path / "full")
    main(ddpg_config(train={"total_steps": 1200}), tmp_path / "again")
    main(ddpg_config(train={"total_steps": 602}), tmp_path / "part")
    part = agent_state(tmp_path / "part")  # 301 critic steps: mid-policy-delay; OU noise mid-episode
    assert part["counters"][2] == 301 and (part["noise"]["x"] != 0).all()
    main(ddpg_config(train={"total_steps": 1200}, resume=str(tmp_path / "part")), tmp_path / "resumed")
    main(ddpg_config(train={"total_steps": 1200}, seed=1), tmp_path / "other")
    full = agent_state(tmp_path / "full")
    for run in ("again", "resumed"):
        state = agent_state(tmp_path / run)
        for net in ("actor", "critic", "actor_target", "critic_target"):
            for k, v in full[net].items():
                assert torch.equal(v, state[net][k]), (run, net, k)
        assert torch.equal(full["noise"]["x"], state["noise"]["x"]) and full["counters"] == state["counters"]
    assert not torch.equal(full["actor"]["body.0.weight"], agent_state(tmp_path / "other")["actor"]["body.0.weight"])


def test_eval_mode_loads_a_ddpg_checkpoint(tmp_path):
    main(ddpg_config(train={"total_steps": 300}), tmp_path / "train")
    result = main({**ddpg_config(mode="eval", checkpoint=str(tmp_path / "train"), eval={"episodes": 3})},
                  tmp_path / "eval")
    assert result["eval_episodes"] == 3 and result["eval_return_mean"] < 0


def test_ddpg_learns_pendulum(tmp_path):
    """A short seeded run from far below to near the -200 threshold (a random policy scores ~ -1200)."""
    cfg = {**small_config(env={"id": "Pendulum-v1", "num_envs": 4}, train={"total_steps": 3000},
                          eval={"every_steps": 0, "episodes": 10}),
           "agent": {"name": "ddpg", "gamma": 0.98, "n_step": 3, "batch_size": 128, "buffer_size": 10000,
                     "learning_starts": 1000, "train_freq": 4, "gradient_steps": 4, "hidden_sizes": [64, 64]}}
    summary = main(cfg, tmp_path)
    assert summary["eval_return_mean"] >= -300, summary["eval_return_mean"]
