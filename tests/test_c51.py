"""C51 (Bellemare et al. 2017): the categorical projection, the cross-entropy loss, the distributional
Q network and the agent's target, against hand-computed values."""

import gymnasium as gym
import pytest
import torch

from classic_rl import agents, envs
from classic_rl.agents.dqn import DQNConfig
from classic_rl.buffers import Batch
from classic_rl.config import ConfigError, from_dict
from classic_rl.losses import categorical_loss, categorical_projection
from classic_rl.nets import QNetwork
from tests.conftest import collect

SUPPORT = torch.linspace(0.0, 4.0, 5)  # atoms 0, 1, 2, 3, 4


def one_hot(atom: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor([atom]), 5).float()


@pytest.mark.parametrize("atom, reward, discount, expected", [
    (2, 0.5, 1.0, [0, 0, 0.5, 0.5, 0]),      # 2.5: halfway between atoms 2 and 3
    (2, 1.0, 1.0, [0, 0, 0, 1.0, 0]),        # lands on atom 3 exactly: all of it there
    (4, 0.0, 0.5, [0, 0, 1.0, 0, 0]),        # 0.5 * 4 = 2
    (3, 1.2, 0.0, [0, 0.8, 0.2, 0, 0]),      # terminal (discount 0): all mass at r = 1.2
    (4, 3.0, 1.0, [0, 0, 0, 0, 1.0]),        # 7 clipped to v_max
    (0, -2.0, 1.0, [1.0, 0, 0, 0, 0]),       # -2 clipped to v_min
    (1, 0.25, 0.9, [0, 0.85, 0.15, 0, 0]),   # 0.25 + 0.9 = 1.15
])
def test_projection_of_a_single_atom(atom, reward, discount, expected):
    m = categorical_projection(one_hot(atom), torch.tensor([reward]), torch.tensor([discount]), SUPPORT)
    assert torch.allclose(m, torch.tensor([expected]), atol=1e-6)


def test_projection_keeps_mass_and_mean_inside_the_support():
    g = torch.Generator().manual_seed(0)
    support = torch.linspace(-10.0, 10.0, 51)
    probs = torch.rand(64, 51, generator=g).softmax(-1)
    reward = torch.rand(64, generator=g) * 2 - 1
    discount = torch.full((64,), 0.5)  # r + 0.5 z stays inside [-10, 10]: nothing is clipped
    m = categorical_projection(probs, reward, discount, support)
    assert torch.allclose(m.sum(-1), torch.ones(64), atol=1e-6)
    # the split between neighbours is linear interpolation, so the mean is exact: E[m] = r + γ E[z]
    assert torch.allclose((m * support).sum(-1), reward + 0.5 * (probs * support).sum(-1), atol=1e-5)


def test_categorical_loss_is_the_cross_entropy_and_weights_scale_it():
    log_p = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]]).log().requires_grad_()
    target = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    loss, stats = categorical_loss(log_p, target)
    per_sample = torch.tensor([-torch.log(torch.tensor(0.3)), -0.5 * (torch.log(torch.tensor(0.6)) + torch.log(torch.tensor(0.2)))])
    assert torch.allclose(stats["cross_entropy"], per_sample)
    assert torch.isclose(loss, per_sample.mean())
    weighted, _ = categorical_loss(log_p, target, torch.tensor([2.0, 0.0]))
    assert torch.isclose(weighted, per_sample[0])
    loss.backward()
    assert log_p.grad is not None and target.grad is None


@pytest.mark.parametrize("dueling", [False, True])
def test_distributional_q_network_gives_probabilities_and_their_mean(dueling):
    torch.manual_seed(0)
    support = torch.linspace(-5.0, 5.0, 11)
    net = QNetwork(gym.spaces.Box(-1, 1, (4,)), 3, [16], dueling=dueling, support=support)
    obs = torch.randn(7, 4)
    log_p = net.log_probs(obs)
    assert log_p.shape == (7, 3, 11)
    assert torch.allclose(log_p.exp().sum(-1), torch.ones(7, 3), atol=1e-6)
    assert torch.allclose(net(obs), (log_p.exp() * support).sum(-1), atol=1e-6)
    if dueling:  # the aggregation acts on each atom's logit: mean over actions of the logits is V
        features = net.body[:-1](net.encoder(obs))
        head = net.body[-1]
        logits = head(features)
        assert torch.allclose(logits.mean(dim=1), head.value(features), atol=1e-5)


def make_c51(env, **kw):
    cfg = {"buffer_size": 1000, "batch_size": 8, "learning_starts": 0, "distributional": True,
           "num_atoms": 5, "v_min": 0.0, "v_max": 4.0, "hidden_sizes": [8], **kw}
    return agents.make(DQNConfig(**cfg), env.spec)


@pytest.mark.parametrize("double", [False, True])
def test_c51_target_takes_the_greedy_next_action_of_the_right_net(double):
    env = envs.make("CartPole-v1", 2)
    agent = make_c51(env, double=double)
    next_obs = torch.randn(2, 4)
    batch = Batch(obs=next_obs, action=torch.zeros(2, dtype=torch.int64), reward=torch.tensor([0.5, 1.0]),
                  next_obs=next_obs, terminated=torch.tensor([0.0, 1.0]), discount=torch.tensor([1.0, 1.0]),
                  indices=torch.arange(2))
    online, target = agent.q.body[-1], agent.q_target.body[-1]  # logits [A * K] = bias (weights zeroed)
    with torch.no_grad():
        online.weight.zero_()
        online.bias.copy_(torch.tensor([0, 0, 0, 0, 9.0, 9.0, 0, 0, 0, 0]))  # online: a=0 near z=4, a=1 near 0
        target.weight.zero_()
        target.bias.copy_(torch.tensor([9.0, 0, 0, 0, 0, 0, 0, 9.0, 0, 0]))  # target: a=0 near z=0, a=1 near 2
    target_probs = torch.softmax(target.bias.detach().view(2, 5), -1)  # [A, K]
    chosen = 0 if double else 1  # double: the online net's argmax; else the target net's own
    m = agent.target_distribution(batch)
    expected = categorical_projection(target_probs[chosen][None], batch.reward[:1], batch.discount[:1], agent.q.support)
    other = categorical_projection(target_probs[1 - chosen][None], batch.reward[:1], batch.discount[:1], agent.q.support)
    assert torch.allclose(m[0], expected[0], atol=1e-6) and not torch.allclose(m[0], other[0], atol=1e-2)
    assert torch.allclose(m[1], torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0]))  # terminal: all mass at r = 1


def test_c51_with_every_other_component_learns_a_step():
    env = envs.make("CartPole-v1", 4)
    agent = make_c51(env, double=True, dueling=True, prioritized=True, noisy=True, n_step=3,
                     v_max=100.0, num_atoms=11, batch_size=16, train_freq=16, gradient_steps=4)
    collect(agent, env, 20)
    before = [p.detach().clone() for p in agent.q.parameters()]
    stats = agent.update()
    assert stats["loss"] > 0 and 0 <= stats["q_mean"] <= 100
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.q.parameters()))
    stored = agent.buffer.tree.get(torch.arange(len(agent.buffer)))
    assert len(set(stored.tolist())) > 1  # sampled rows left max priority for their cross-entropy


def test_c51_config_errors_name_the_keys():
    with pytest.raises(ConfigError, match="v_min"):
        DQNConfig(distributional=True, v_min=1.0, v_max=1.0)
    with pytest.raises(ConfigError, match="num_atoms"):
        from_dict(DQNConfig, {"distributional": True, "num_atoms": 1})


def test_c51_learns_deterministic_frozen_lake(tmp_path):
    from classic_rl.run import main
    from tests.conftest import small_config

    cfg = small_config(
        env={"id": "FrozenLake-v1", "num_envs": 4, "kwargs": {"is_slippery": False}},
        agent={"learning_starts": 500, "epsilon_decay_steps": 3000, "lr": 0.003, "target_update_interval": 100,
               "train_freq": 4, "gamma": 0.95, "distributional": True, "num_atoms": 21, "v_min": 0.0, "v_max": 1.0},
        train={"total_steps": 20000}, eval={"every_steps": 1000, "episodes": 2, "early_stop": True},
    )
    summary = main(cfg, tmp_path)
    assert summary["eval_return_mean"] == 1.0  # reaches the goal
    assert summary["solved_at_step"] == summary["env_steps"] < 20000


def test_c51_rainbow_runs_are_seeded_and_resume_exactly(tmp_path):
    from classic_rl.run import main
    from tests.conftest import small_config

    agent = {"double": True, "dueling": True, "prioritized": True, "noisy": True, "n_step": 3,
             "distributional": True, "num_atoms": 11, "v_min": 0.0, "v_max": 50.0}
    cfg = lambda steps, **kw: small_config(agent=agent, train={"total_steps": steps}, **kw)  # noqa: E731
    main(cfg(1200), tmp_path / "a")
    main(cfg(1200), tmp_path / "b")
    main(cfg(600), tmp_path / "part")
    main(cfg(1200, resume=str(tmp_path / "part")), tmp_path / "resumed")
    load = lambda d: torch.load(d / "checkpoint.pt", weights_only=False)["agent"]["q"]  # noqa: E731
    a = load(tmp_path / "a")
    assert torch.equal(a["support"], torch.linspace(0.0, 50.0, 11))
    for other in ("b", "resumed"):
        assert all(torch.equal(v, load(tmp_path / other)[k]) for k, v in a.items()), other
