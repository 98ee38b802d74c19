"""DQN: the stored transitions respect termination vs truncation, the TD target, acting, learning."""

import pytest
import torch

from classic_rl import agents, envs
from classic_rl.agents import Transition
from classic_rl.agents.dqn import DQNConfig
from classic_rl.run import main
from tests.conftest import collect, small_config


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
    sample_many = agent.buffer.sample_many  # uniform replay: the update draws its batches at once
    agent.buffer.sample_many = lambda *a: sampled.extend(sample_many(*a)) or sampled
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


def set_linear_q(net, bias):
    """A Q-network with no hidden layers and zero weights: Q(s, .) = bias for every s."""
    with torch.no_grad():
        net.body[0].weight.zero_()
        net.body[0].bias.copy_(torch.tensor(bias))


@pytest.mark.parametrize("double", [False, True])
def test_double_dqn_target_lets_the_online_net_pick_the_action(double):
    env = envs.make("CartPole-v1", 1)
    agent = make_dqn(env, hidden_sizes=[], gamma=0.5, double=double)
    set_linear_q(agent.q, [0.0, 1.0])  # online argmax: action 1
    set_linear_q(agent.q_target, [4.0, 2.0])  # target argmax: action 0
    obs = torch.zeros(2, 4)
    batch = agent.buffer.gather(torch.tensor([0, 1]))._replace(
        obs=obs, next_obs=obs, reward=torch.tensor([1.0, 1.0]), terminated=torch.tensor([0.0, 1.0]),
        discount=torch.tensor([0.5, 0.5]))
    # double: 1 + 0.5 * Q_target(s', argmax_a Q(s', a) = 1) = 2; vanilla: 1 + 0.5 * max Q_target = 3
    assert agent.target(batch).tolist() == ([2.0, 1.0] if double else [3.0, 1.0])


def test_prioritized_update_writes_td_errors_back_as_priorities():
    env = envs.make("CartPole-v1", 4)
    agent = make_dqn(env, prioritized=True, priority_alpha=0.5, priority_eps=0.01, batch_size=16,
                     train_freq=16, gradient_steps=1, lr=1e-12)
    collect(agent, env, 4)
    assert torch.equal(agent.buffer.tree.get(torch.arange(16)), torch.ones(16, dtype=torch.float64))
    sampled = []
    sample = agent.buffer.sample
    agent.buffer.sample = lambda *a: sampled.append(sample(*a)) or sampled[-1]
    agent.update()
    batch = sampled[0]
    q = agent.q(batch.obs).gather(1, batch.action[:, None]).squeeze(1)
    td = agent.target(batch) - q  # lr ~ 0: the network is unchanged by the step
    expected = (td.abs().double() + 0.01) ** 0.5
    assert torch.allclose(agent.buffer.tree.get(batch.indices), expected, atol=1e-5)
    assert batch.weights is not None and float(batch.weights.max()) == pytest.approx(1.0)


def test_noisy_dqn_explores_with_noise_not_epsilon():
    env = envs.make("CartPole-v1", 256)
    obs, _ = env.reset(seed=0)
    agent = make_dqn(env, noisy=True, epsilon_start=1.0, hidden_sizes=[16])
    assert agent.epsilon == 0.0
    greedy = agent.act(obs, explore=False)
    assert torch.equal(agent.act(obs, explore=False), greedy)  # evaluation: the mean network
    noisy_actions = [agent.act(obs) for _ in range(10)]
    assert any(not torch.equal(a, greedy) for a in noisy_actions)  # noise changes the decisions
    assert agent.q.training  # acting in evaluation leaves the network ready to learn


RAINBOW = {"double": True, "dueling": True, "prioritized": True, "noisy": True, "n_step": 3}


def test_rainbow_runs_are_seeded_and_resume_exactly(tmp_path):
    from tests.conftest import small_config

    def cfg(**kw):
        return small_config(agent=RAINBOW, **kw)

    main(cfg(train={"total_steps": 1200}), tmp_path / "full")
    main(cfg(train={"total_steps": 1200}), tmp_path / "again")
    main(cfg(train={"total_steps": 600}), tmp_path / "part")
    main(cfg(train={"total_steps": 1200}, resume=str(tmp_path / "part")), tmp_path / "resumed")
    load = lambda d: torch.load(d / "checkpoint.pt", weights_only=False)["agent"]  # noqa: E731
    full = load(tmp_path / "full")
    for other in ("again", "resumed"):
        state = load(tmp_path / other)
        for k, v in full["q"].items():
            assert torch.equal(v, state["q"][k]), (other, k)
        assert torch.equal(full["buffer"]["tree"]["leaves"], state["buffer"]["tree"]["leaves"])


def test_noisy_dqn_resamples_noise_every_gradient_step_and_evaluates_the_mean_net(monkeypatch):
    from classic_rl.nets import NoisyLinear

    env = envs.make("CartPole-v1", 4)
    agent = make_dqn(env, noisy=True, hidden_sizes=[16], batch_size=8, train_freq=8, gradient_steps=3)
    collect(agent, env, 2)
    seen = []  # the online net's first-layer noise at each forward pass on a sampled batch
    forward = agent.q.forward
    monkeypatch.setattr(agent.q, "forward", lambda x: seen.append(agent.q.body[0].eps_in.clone()) or forward(x))
    resets = {"q": 0, "q_target": 0}
    for name in resets:
        layer = getattr(agent, name).body[0]
        reset = layer.reset_noise
        monkeypatch.setattr(layer, "reset_noise", lambda g=None, rows=None, n=name, r=reset: resets.__setitem__(n, resets[n] + 1) or r(g, rows))
    agent.update()
    assert resets == {"q": 3, "q_target": 3}  # fresh, independent noise for both nets at each of 3 steps
    assert all(not torch.equal(a, b) for a, b in zip(seen, seen[1:]))
    # evaluation acts greedily on the mean weights μ, whatever the current noise
    monkeypatch.undo()
    wide = envs.make("CartPole-v1", 512).reset(seed=1)[0]
    with torch.no_grad():
        for layer in agent.q.body.modules():
            if isinstance(layer, NoisyLinear):
                layer.weight_sigma.fill_(1.0)  # noise large enough to flip many greedy actions
        h = wide
        for layer in agent.q.body:
            h = torch.nn.functional.linear(h, layer.weight_mu, layer.bias_mu) if isinstance(layer, NoisyLinear) else layer(h)
    mean_greedy = h.argmax(-1)
    assert not torch.equal(agent.act(wide), mean_greedy)  # training acts on a noisy net
    assert torch.equal(agent.act(wide, explore=False), mean_greedy)
    assert agent.q.training


def test_noisy_per_sample_draws_one_noise_per_env_and_per_sampled_transition():
    env = envs.make("CartPole-v1", 4)
    agent = make_dqn(env, noisy=True, noisy_per_sample=True, hidden_sizes=[16], batch_size=8, train_freq=8)
    obs, _ = env.reset(seed=0)
    for _ in range(2):
        action = agent.act(obs)
        assert agent.q.body[0].eps_in.shape == (4, 4)  # [envs, in]
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.observe(Transition(obs, action, reward, info["final_obs"], terminated, truncated))
        obs = next_obs
    agent.update()
    for net in (agent.q, agent.q_target):
        assert net.body[-1].eps_out.shape == (8, 2)  # [batch, actions]


def test_noisy_target_off_evaluates_targets_on_the_mean_weights():
    from classic_rl.nets import NoisyLinear

    env = envs.make("CartPole-v1", 4)
    agent = make_dqn(env, noisy=True, noisy_target=False, hidden_sizes=[16])
    assert agent.q.training and not agent.q_target.training
    obs = env.reset(seed=0)[0]
    with torch.no_grad():
        for layer in agent.q_target.modules():
            if isinstance(layer, NoisyLinear):
                layer.weight_sigma.fill_(1.0)
                layer.reset_noise()
        first = agent.q_target(obs)
        for layer in agent.q_target.modules():
            if isinstance(layer, NoisyLinear):
                layer.reset_noise()
        assert torch.equal(first, agent.q_target(obs))  # no noise enters the target


def test_noisy_layers_puts_noise_on_the_last_layers_only_and_rejects_too_many():
    from classic_rl.config import ConfigError
    from classic_rl.nets import NoisyLinear

    env = envs.make("CartPole-v1", 2)
    agent = make_dqn(env, noisy=True, noisy_layers=1, hidden_sizes=[16, 16])
    noisy = [m for m in agent.q.modules() if isinstance(m, NoisyLinear)]
    assert noisy == [agent.q.body[-1]]  # the output layer only
    with pytest.raises(ConfigError, match="noisy_layers"):
        DQNConfig(noisy=True, noisy_layers=4, hidden_sizes=[16, 16])


def test_dqn_presets_compose_their_components_and_every_flag_overrides():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from classic_rl.__main__ import config_dir
    from classic_rl.run import load_config

    def agent(*overrides):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return load_config(OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True))[1]

    flags = lambda a: {k: getattr(a, k) for k in ("double", "dueling", "prioritized", "noisy", "distributional")}  # noqa: E731
    off = dict.fromkeys(["double", "dueling", "prioritized", "noisy", "distributional"], False)
    assert flags(agent("agent=dqn", "env=Acrobot-v1")) == off
    for preset, flag in [("double_dqn", "double"), ("dueling_dqn", "dueling"), ("per_dqn", "prioritized"),
                         ("noisy_dqn", "noisy")]:
        assert flags(agent(f"agent={preset}", "env=Acrobot-v1")) == {**off, flag: True}
    assert agent("agent=nstep_dqn", "env=Acrobot-v1").n_step == 3
    rainbow = agent("agent=rainbow", "env=Acrobot-v1")
    assert flags(rainbow) == dict.fromkeys(off, True) and rainbow.n_step == 3
    # every component is a plain override on agent=dqn (no '+' needed)
    mixed = agent("agent=dqn", "env=Acrobot-v1", "agent.double=true", "agent.noisy=true", "agent.noisy_layers=1",
                  "agent.distributional=true", "agent.v_min=-100", "agent.priority_alpha=0.5", "agent.n_step=5")
    assert mixed.double and mixed.noisy and mixed.noisy_layers == 1 and mixed.v_min == -100 and mixed.n_step == 5


def test_clip_target_clamps_td_targets_to_the_return_range():
    from classic_rl.config import ConfigError

    env = envs.make("CartPole-v1", 1)
    obs = torch.zeros(3, 4)
    for clip, expected in ((False, [-2.0, 3.0, 11.0]), (True, [0.0, 3.0, 10.0])):
        agent = make_dqn(env, hidden_sizes=[], gamma=0.5, clip_target=clip, v_min=0.0, v_max=10.0)
        set_linear_q(agent.q_target, [4.0, 20.0])  # max_a Q_target(s', a) = 20
        batch = agent.buffer.gather(torch.tensor([0, 1, 2]))._replace(
            obs=obs, next_obs=obs, reward=torch.tensor([-2.0, 3.0, 1.0]),
            terminated=torch.tensor([1.0, 1.0, 0.0]), discount=torch.tensor([0.5, 0.5, 0.5]))
        # terminal rows keep r (-2 is below v_min, so clipped to 0); 1 + 0.5 * 20 = 11 is above v_max
        assert agent.target(batch).tolist() == expected
    with pytest.raises(ConfigError, match="v_min"):
        DQNConfig(clip_target=True, v_min=1.0, v_max=1.0)


def test_drawing_an_updates_batches_at_once_trains_exactly_as_one_draw_per_step():
    """Uniform replay: `sample_many` takes the indices one draw per gradient step would, so the
    update, and the whole run after it, is the same bit for bit."""
    env = envs.make("CartPole-v1", 4)
    trained = []
    for at_once in (True, False):
        torch.manual_seed(0)
        agent = make_dqn(env, train_freq=16, gradient_steps=5, batch_size=8, lr=1e-2)
        if not at_once:  # the reference: a separate draw for every gradient step
            agent.buffer.sample_many = lambda count, size, g, b=agent.buffer: [b.sample(size, g) for _ in range(count)]
        collect(agent, env, 4)
        agent.update()
        trained.append([p.detach().clone() for p in agent.q.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*trained))
    assert not all(torch.equal(a, b) for a, b in zip(trained[0], agents.make(
        DQNConfig(buffer_size=1000, batch_size=8, learning_starts=0), env.spec).q.parameters()))  # it did train
