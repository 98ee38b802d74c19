"""QMIX / VDN: the mixers (sum, monotonic, greedy joint action = each agent's greedy action), the joint
replay rows, the TD target on Q_tot, learning on simple_spread, exact resume, one-line refusals."""

import itertools

import pytest
import torch

from classic_rl import agents, checkpoint as ckpt, envs
from classic_rl.agents import Transition
from classic_rl.buffers import Batch
from classic_rl.config import ConfigError, UserError
from classic_rl.nets import QMixer, VDNMixer
from classic_rl.run import main
from tests.conftest import multi_agent_config


def make(env, **kw):
    return agents.make(agents.make_config({"name": "qmix", "hidden_sizes": [16], "batch_size": 8,
                                           "learning_starts": 0, **kw}), env.spec, seed=0)


def test_vdn_sums_and_qmix_is_monotonic_in_every_agents_utility():
    q, state = torch.randn(64, 3), torch.randn(64, 10)
    assert torch.allclose(VDNMixer()(q, state), q.sum(-1))
    mixer = QMixer(10, 3, embed_dim=8, hypernet_hidden=16)
    q.requires_grad_(True)
    total = mixer(q, state)
    assert total.shape == (64,)
    grad, = torch.autograd.grad(total.sum(), q)
    assert (grad >= 0).all() and (grad > 0).any()


def test_the_joint_greedy_action_is_every_agents_own_greedy_action():
    torch.manual_seed(0)
    mixer = QMixer(6, 3, embed_dim=8, hypernet_hidden=16)
    utilities, state = torch.randn(20, 3, 5), torch.randn(20, 6)  # Q_i(o_i, ·) of 20 worlds
    joint = torch.tensor(list(itertools.product(range(5), repeat=3)))  # the 125 joint actions
    chosen = utilities[:, torch.arange(3), joint]  # [20, 125, 3]: Q_i(o_i, a_i) of every joint action
    q_tot = mixer(chosen.reshape(-1, 3), state.repeat_interleave(125, 0)).view(20, 125)
    best = joint[q_tot.argmax(1)]
    assert torch.equal(best, utilities.argmax(-1))


def test_replay_rows_hold_every_agents_observation_the_state_and_the_team_reward():
    env = envs.make("simple_spread", num_envs=4, seed=0)
    agent = make(env, learning_starts=100)
    obs, info = env.reset(seed=0)
    action = agent.act(obs, state=info["state"])
    assert action.shape == (4, 3) and action.dtype == torch.int64
    next_obs, reward, terminated, truncated, step_info = env.step(action)
    agent.observe(Transition(obs, action, reward, step_info["final_obs"], terminated, truncated,
                             state=info["state"], next_state=step_info["final_state"]))
    stored = agent.buffer.storage
    assert stored["obs"].shape[1] == 3 * 18 + 54
    row_obs, row_state = agent._split(stored["obs"][:4])
    assert torch.equal(row_obs, obs) and torch.equal(row_state, info["state"])
    assert torch.equal(agent._split(stored["next_obs"][:4])[0], step_info["final_obs"])
    assert torch.equal(stored["action"][:4], action)
    assert torch.allclose(stored["reward"][:4], reward.sum(-1))
    assert agent.env_steps == 4


@pytest.mark.parametrize("double", [False, True])
def test_target_is_the_mixed_greedy_utilities_of_the_next_step(double):
    env = envs.make("simple_spread", num_envs=4, seed=0)
    agent = make(env, mixer="vdn", double=double, gamma=0.9)
    obs, info = env.reset(seed=0)
    rows = agent.joint(obs, info["state"])
    batch = Batch(rows, torch.zeros(4, 3, dtype=torch.int64), torch.tensor([1.0, 2.0, 3.0, 4.0]), rows,
                  torch.tensor([0.0, 1.0, 0.0, 0.0]), torch.full((4,), 0.9), torch.arange(4))
    with torch.no_grad():
        agent.q_target.body[-1].bias.add_(torch.arange(5.0))  # the target's favourite: the last action
    pick = agent.utilities(agent.q if double else agent.q_target, obs).argmax(-1, keepdim=True)
    next_value = agent.utilities(agent.q_target, obs).gather(-1, pick).squeeze(-1).sum(-1)
    expected = batch.reward + 0.9 * (1 - batch.terminated) * next_value
    assert torch.allclose(agent.target(batch), expected)
    loss, td_error, q_mean = agent.loss(batch)
    q_tot = agent.utilities(agent.q, obs)[..., 0].sum(-1)
    assert torch.allclose(td_error, expected - q_tot.detach(), atol=1e-6)
    assert torch.allclose(loss, torch.nn.functional.smooth_l1_loss(q_tot, expected))


def test_configs_and_pairings_are_checked_in_one_line():
    with pytest.raises(ConfigError, match="'agent.noisy' = True is not supported by agent=qmix"):
        agents.make_config({"name": "qmix", "noisy": True})
    with pytest.raises(ConfigError, match="agent.mixer"):
        agents.make_config({"name": "qmix", "mixer": "sum"})
    with pytest.raises(UserError, match="agent=qmix cannot run on env=CartPole-v1: it needs a multi-agent env"):
        agents.make(agents.make_config({"name": "qmix"}), envs.make("CartPole-v1", num_envs=2).spec)
    spec = envs.make("simple_spread", num_envs=2).spec
    import dataclasses
    stateless = dataclasses.replace(spec, state_space=None)
    with pytest.raises(ConfigError, match="use agent.mixer=vdn"):
        agents.make(agents.make_config({"name": "qmix"}), stateless)
    assert agents.make(agents.make_config({"name": "qmix", "mixer": "vdn"}), stateless).state_dim == 0


def qmix_config(**kw):
    agent = {"name": "qmix", "hidden_sizes": [32], "batch_size": 32, "learning_starts": 200, "train_freq": 8,
             "buffer_size": 2000, "target_update_interval": 20, "epsilon_decay_steps": 1000, "double": True}
    return multi_agent_config({**agent, **kw.pop("agent", {})}, **kw)


@pytest.mark.parametrize("mixer", ["qmix", "vdn"])
def test_learns_simple_spread(tmp_path, mixer):
    cfg = qmix_config(agent={"mixer": mixer, "hidden_sizes": [64, 64], "lr": 5e-4, "batch_size": 128,
                             "buffer_size": 50_000, "learning_starts": 2000, "train_freq": 64,
                             "target_update_interval": 200, "epsilon_decay_steps": 30_000},
                      env={"num_envs": 64}, train={"total_steps": 60_000}, eval={"episodes": 100})
    summary = main(cfg, tmp_path)
    assert summary["eval_return_mean"] > -70  # uniform random actions: -80 (experiments/results/multiagent_reference)


def test_seeded_runs_repeat_and_resume_exactly(tmp_path):
    main(qmix_config(train={"total_steps": 1000}), tmp_path / "full")
    main(qmix_config(train={"total_steps": 504}), tmp_path / "part")
    main(qmix_config(train={"total_steps": 1000}, resume=str(tmp_path / "part")), tmp_path / "resumed")
    full, resumed = (ckpt.load(tmp_path / d / "checkpoint.pt")["agent"] for d in ("full", "resumed"))
    for key in ("q", "mixer", "mixer_target"):
        for k, v in full[key].items():
            assert torch.equal(v, resumed[key][k]), (key, k)
    assert full["counters"] == resumed["counters"] and full["counters"][2] > 0  # gradient steps were taken
