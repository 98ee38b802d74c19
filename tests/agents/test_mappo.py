"""MAPPO / IPPO: per-agent rows, what each network reads, per-agent networks, value normalisation,
the paper's reward unit, learning on simple_spread, exact resume, the command line."""

import pytest
import torch

from classic_rl import agents, checkpoint as ckpt, envs
from classic_rl.agents import Transition
from classic_rl.config import ConfigError, UserError
from classic_rl.envs.multiagent.simple_spread import (
    AGENT_SIZE, SimpleSpread, paper_episode_reward, team_return_of_paper_reward,
)
from classic_rl.normalize import DenormalizedValue, RunningMeanStd
from classic_rl.run import main
from tests.conftest import multi_agent_config


def make(env, **kw):
    return agents.make(agents.make_config({"name": "mappo", "hidden_sizes": [16], **kw}), env.spec, seed=0)


def test_rows_hold_observation_agent_id_and_state():
    env = envs.make("simple_spread", num_envs=4, seed=0)
    obs, info = env.reset(seed=0)
    agent = make(env)
    rows = agent.rows(obs, info["state"])  # [N * A, D + A + S]
    assert rows.shape == (12, 18 + 3 + 54)
    for n in range(4):
        for i in range(3):
            row = rows[n * 3 + i]
            assert torch.equal(row[:18], obs[n, i]) and torch.equal(row[21:], info["state"][n])
            assert torch.equal(row[18:21], torch.eye(3)[i])
    assert (agent.rows(obs, None)[:, 21:] == 0).all()  # acting alone: no state


@pytest.mark.parametrize("critic", ["central", "local"])
def test_actor_reads_its_own_observation_and_the_critic_what_its_key_says(critic):
    env = envs.make("simple_spread", num_envs=4, seed=0)
    obs, info = env.reset(seed=0)
    agent = make(env, critic=critic)
    rows = agent.rows(obs, info["state"])
    other_state = rows.clone()
    other_state[:, 21:] += 1.0
    other_obs = rows.clone()
    other_obs[:, :18] += 1.0
    actor, value = agent.ppo.actor, agent.ppo.critic
    assert torch.equal(actor(rows).log_probs, actor(other_state).log_probs)  # decentralised execution
    assert not torch.equal(actor(rows).log_probs, actor(other_obs).log_probs)
    reads_state = not torch.equal(value(rows), value(other_state))
    reads_obs = not torch.equal(value(rows), value(other_obs))
    assert (reads_state, reads_obs) == ((True, False) if critic == "central" else (False, True))
    other_id = rows.clone()
    other_id[:, 18:21] = other_id[:, 18:21].roll(1, dims=1)
    assert not torch.equal(actor(rows).log_probs, actor(other_id).log_probs)  # agent_id: the id is an input


def test_separate_parameters_route_each_row_to_its_agents_network():
    env = envs.make("simple_spread", num_envs=5, seed=0)
    obs, info = env.reset(seed=0)
    agent = make(env, share_parameters=False)
    rows = agent.rows(obs, info["state"])
    body = agent.ppo.actor.body  # PerAgent: one (Columns, MLP) per agent
    assert len(body.nets) == 3
    weights = [list(net.parameters())[0] for net in body.nets]
    assert not torch.equal(weights[0], weights[1])
    logits = agent.ppo.actor.body(rows)
    order = torch.randperm(15, generator=torch.Generator().manual_seed(0))  # a shuffled minibatch
    assert torch.equal(agent.ppo.actor.body(rows[order]), logits[order])
    for r in range(15):
        assert torch.allclose(logits[r], body.nets[r % 3](rows[r:r + 1])[0])


def test_observe_repeats_episode_flags_per_agent_and_team_reward_sums():
    env = envs.make("simple_spread", num_envs=2, seed=0)
    for team in (False, True):
        agent = make(env, team_reward=team, rollout_steps=25)
        obs, info = env.reset(seed=0)
        rewards = []
        for _ in range(25):
            state = info["state"]
            action = agent.act(obs, state=state)
            assert action.shape == (2, 3) and action.dtype == torch.int64
            next_obs, reward, terminated, truncated, info = env.step(action)
            agent.observe(Transition(obs, action, reward, info["final_obs"], terminated, truncated,
                                     state=state, next_state=info["final_state"]))
            rewards.append(reward)
            obs = next_obs
        stored = agent.ppo.rollout.buffer.rollout()
        expected = torch.stack(rewards)  # [T, N, A]
        if team:
            expected = expected.sum(-1, keepdim=True).expand(-1, -1, 3)
        assert torch.allclose(stored.reward, expected.flatten(1))
        assert stored.truncated[-1].all() and not stored.truncated[:-1].any()  # 25-step episodes, every agent
        assert agent.env_steps == agent.ppo.env_steps == 50  # env steps, not rows


def test_value_normalisation_standardises_the_critics_targets():
    stats = RunningMeanStd(())
    returns = torch.tensor([1.0, 5.0, -3.0, 9.0])
    stats.update(returns)
    critic = torch.nn.Linear(1, 1)
    with torch.no_grad():
        critic.weight.zero_()
        critic.bias.fill_(0.5)
    value = DenormalizedValue(lambda x: critic(x).squeeze(-1), stats)(torch.zeros(3, 1))
    mean, std = returns.mean(), returns.std(correction=0)
    assert torch.allclose(value, mean + 0.5 * std)  # reward units for GAE
    assert torch.allclose(stats.normalize(mean + 0.5 * std), torch.tensor(0.5), atol=1e-6)
    # in PPO: after an update the statistics hold exactly that rollout's returns
    env = envs.make("CartPole-v1", num_envs=4, seed=0)
    ppo = agents.make(agents.make_config({"name": "ppo", "normalize_value": True, "rollout_steps": 8,
                                          "hidden_sizes": [8]}), env.spec, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(8):
        action = ppo.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        ppo.observe(Transition(obs, action, reward, info["final_obs"], terminated, truncated))
        obs = next_obs
    from classic_rl.returns import gae
    r = ppo.rollout.buffer.rollout()
    _, target = gae(r.reward, r.value, r.next_value, r.terminated, r.done, 0.99, 0.95)
    ppo.update()
    assert ppo.value_norm.count == 32
    assert torch.allclose(ppo.value_norm.mean.float(), target.mean())
    assert torch.allclose(ppo.value_norm.var.float(), target.var(correction=0), rtol=1e-5)


def test_paper_unit_conversion_matches_the_mappo_reward_computed_from_the_world():
    """The MAPPO code base's reward, per agent and step: -sum_l min_a |p_a - l| - #{agents it touches, itself
    included}; every agent gets the sum over agents; the paper's episode reward sums it over the episode."""
    env = SimpleSpread(16, seed=4)
    env.reset(seed=4)
    with torch.no_grad():  # crowd the agents so that contacts happen
        env.agent_pos = env.agent_pos * 0.2
    generator = torch.Generator().manual_seed(0)
    team, paper, contacts = torch.zeros(16), torch.zeros(16), 0
    for _ in range(25):
        reward, info = env.step(torch.randint(0, 5, (16, 3), generator=generator))[1:5:3]
        final = info["final_state"].reshape(16, 3, 18)
        pos = final[:, :, 2:4]  # the world the reward was computed on (before any reset)
        landmarks = pos[:, :1] + final[:, :1, 4:10].reshape(16, 3, 2)
        coverage = -torch.cdist(landmarks, pos).min(dim=2).values.sum(1)  # [N]
        touching = (torch.cdist(pos, pos) < 2 * AGENT_SIZE).sum(2)  # [N, A], itself included
        paper += (coverage[:, None] - touching).sum(1)
        team += reward.sum(1)
        contacts += int((touching > 1).sum())
    assert contacts > 0  # the collision terms are exercised
    for t, r in zip(team.tolist(), paper.tolist()):
        assert paper_episode_reward(t) == pytest.approx(r, abs=1e-3)
        assert team_return_of_paper_reward(r) == pytest.approx(t, abs=1e-3)
    with pytest.raises(ValueError, match="local_ratio=0.5 only"):
        paper_episode_reward(-30.0, local_ratio=0.2)


def test_configs_and_pairings_are_checked_in_one_line():
    with pytest.raises(ConfigError, match="agent.critic"):
        agents.make_config({"name": "mappo", "critic": "global"})
    with pytest.raises(UserError, match="agent=mappo cannot run on env=CartPole-v1: it needs a multi-agent env"):
        agents.make(agents.make_config({"name": "mappo"}), envs.make("CartPole-v1", num_envs=2).spec)


def mappo_config(**kw):
    agent = {"name": "mappo", "hidden_sizes": [32], "rollout_steps": 25, "epochs": 4, "minibatches": 2}
    return multi_agent_config({**agent, **kw.pop("agent", {})}, **kw)


def test_mappo_learns_simple_spread(tmp_path):
    cfg = mappo_config(agent={"hidden_sizes": [64, 64], "epochs": 10, "minibatches": 4, "lr": 7e-4, "ent_coef": 0.01,
                              "vf_coef": 1.0, "max_grad_norm": 10.0, "activation": "relu"},
                       env={"num_envs": 128}, train={"total_steps": 80_000}, eval={"episodes": 100})
    summary = main(cfg, tmp_path)
    assert summary["eval_return_mean"] > -65  # uniform random actions: -80 (experiments/results/multiagent_reference)


@pytest.mark.parametrize("critic", ["central", "local"])
def test_seeded_runs_repeat_and_resume_exactly(tmp_path, critic):
    agent = {"critic": critic}
    main(mappo_config(agent=agent, train={"total_steps": 1000}), tmp_path / "full")
    main(mappo_config(agent=agent, train={"total_steps": 504}), tmp_path / "part")  # 63 vector steps: mid-rollout
    assert ckpt.load(tmp_path / "part" / "checkpoint.pt")["agent"]["ppo"]["buffer"]["pos"] == 63 % 25
    main(mappo_config(agent=agent, train={"total_steps": 1000}, resume=str(tmp_path / "part")), tmp_path / "resumed")
    full = ckpt.load(tmp_path / "full" / "checkpoint.pt")["agent"]["ppo"]
    resumed = ckpt.load(tmp_path / "resumed" / "checkpoint.pt")["agent"]["ppo"]
    for k, v in full["actor"].items():
        assert torch.equal(v, resumed["actor"][k]), k
    assert full["value_norm"]["count"] == resumed["value_norm"]["count"] > 0
    rows = [(tmp_path / d / "episodes.csv").read_text().splitlines() for d in ("full", "resumed")]
    assert len(rows[0]) > 1 and [r.split(",")[:3] for r in rows[0]] == [r.split(",")[:3] for r in rows[1]]


def test_eval_mode_scores_the_team_return(tmp_path):
    main(mappo_config(train={"total_steps": 400}), tmp_path / "train")
    result = main(mappo_config(mode="eval", checkpoint=str(tmp_path / "train"), eval={"episodes": 3}), tmp_path / "eval")
    assert result["eval_episodes"] == 3 and result["eval_return_mean"] < 0


def test_load_and_export_act_on_each_agents_observation(tmp_path):
    import classic_rl

    main(mappo_config(train={"total_steps": 400}), tmp_path / "train")
    policy = classic_rl.load(tmp_path / "train")
    obs, _ = envs.make("simple_spread", num_envs=5, seed=2).reset(seed=2)
    actions = policy.act(obs)
    assert actions.shape == (5, 3) and torch.equal(policy.act(obs[1]), actions[1])
    from classic_rl.export import export_policy
    from classic_rl.run import restore_agent

    agent, spec, _, _ = restore_agent(ckpt.load(tmp_path / "train" / "checkpoint.pt"), "cpu")
    (tmp_path / "x").mkdir()
    assert export_policy(agent, spec, tmp_path / "x", onnx=False) == ["policy.pt"]
    exported = torch.jit.load(str(tmp_path / "x" / "policy.pt"))
    assert torch.equal(exported(obs), actions)


@pytest.mark.parametrize("name", ["mappo", "qmix"])
def test_multi_agent_agents_train_on_a_pettingzoo_env_through_the_python_api(tmp_path, name):
    import classic_rl
    from classic_rl.envs.multiagent import PettingZooVectorEnv

    simple_spread_v3 = pytest.importorskip("mpe2.simple_spread_v3")
    factory = lambda: simple_spread_v3.parallel_env(N=3, max_cycles=25)  # noqa: E731
    extra = ["agent.learning_starts=100"] if name == "qmix" else ["agent.rollout_steps=25"]
    result = classic_rl.train(f"agent={name}", "train.total_steps=600", "eval.episodes=2", "logger.progress=false",
                              *extra, env=PettingZooVectorEnv(factory, 4), eval_env=PettingZooVectorEnv(factory, 2),
                              run_dir=tmp_path / "run")
    assert result.summary["env_steps"] == 600
    state = ckpt.load(tmp_path / "run" / "checkpoint.pt")["agent"]
    assert (state["ppo"]["counters"][1] if name == "mappo" else state["counters"][2]) > 0  # updates, gradient steps


@pytest.mark.parametrize("preset, expected", [("ippo", {"name": "mappo", "critic": "local"}),
                                              ("vdn", {"name": "qmix", "mixer": "vdn", "double": True})])
def test_the_presets_compose_from_the_command_lines_config(tmp_path, preset, expected):
    import yaml

    import classic_rl

    classic_rl.train(f"agent={preset}", "env=simple_spread", "train.total_steps=64", "env.num_envs=8",
                     "eval.episodes=2", "logger.progress=false", run_dir=tmp_path / "run")
    agent = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["agent"]
    assert {k: agent[k] for k in expected} == expected
