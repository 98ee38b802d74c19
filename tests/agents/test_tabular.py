"""Tabular Q-learning / SARSA / expected SARSA: hand-computed TD steps, batching, acting, runs, resume."""

import gymnasium as gym
import pytest
import torch

from classic_rl import agents, checkpoint as ckpt, envs
from classic_rl.agents import Transition
from classic_rl.agents.tabular import TabularAgent, TabularConfig, batched_td_update
from classic_rl.config import ConfigError, DiscretizeConfig, UserError
from classic_rl.envs.base import EnvSpec
from classic_rl.run import load_config, main
from tests.conftest import small_config

# a 3-state, 2-action table; Q(1, .) = [2, 4] is the next state's row in most tests
Q0 = [[0.0, 1.0], [2.0, 4.0], [3.0, 0.0]]


def make_agent(name="q_learning", num_envs=1, q=Q0, **kw):
    spec = EnvSpec("Fake-v0", num_envs, gym.spaces.Discrete(len(q)), gym.spaces.Discrete(len(q[0])), None, None,
                   torch.device("cpu"))
    cfg = TabularConfig(**{"name": name, "alpha": 0.5, "gamma": 0.9, "epsilon_start": 0.0, "epsilon_end": 0.0, **kw})
    agent = TabularAgent(cfg, spec)
    agent.q.copy_(torch.tensor(q))
    return agent


def transition(obs, action, reward, next_obs, terminated=None, truncated=None):
    n = len(obs)
    flag = lambda v: torch.tensor(v if v is not None else [False] * n)  # noqa: E731
    return Transition(torch.tensor(obs), torch.tensor(action), torch.tensor(reward, dtype=torch.float32),
                      torch.tensor(next_obs), flag(terminated), flag(truncated))


def learn(agent, t, next_obs_to_act_on=None):
    """One trainer iteration after the env step: observe, update when ready, then act on the next obs."""
    agent.observe(t)
    if agent.ready():
        agent.update()
    return agent.act(t.next_obs if next_obs_to_act_on is None else torch.tensor(next_obs_to_act_on))


# ---------------------------------------------------------------------------------------------- one TD step


def test_q_learning_step_by_hand():
    agent = make_agent("q_learning", num_envs=2)
    # row 0: s=0, a=1, r=1 -> s'=1, bootstraps: y = 1 + 0.9 * max(2, 4) = 4.6; Q = 1 + 0.5 * (4.6 - 1) = 2.8
    # row 1: s=2, a=0, r=0.5, terminated: y = 0.5; Q = 3 + 0.5 * (0.5 - 3) = 1.75
    learn(agent, transition([0, 2], [1, 0], [1.0, 0.5], [1, 0], terminated=[False, True]))
    assert torch.allclose(agent.q, torch.tensor([[0.0, 2.8], [2.0, 4.0], [1.75, 0.0]]))


def test_expected_sarsa_step_uses_the_epsilon_greedy_expectation():
    agent = make_agent("expected_sarsa", epsilon_start=0.2, epsilon_end=0.2)
    # V(1) = 0.8 * 4 + 0.2 * mean(2, 4) = 3.8; y = 1 + 0.9 * 3.8 = 4.42; Q = 1 + 0.5 * (4.42 - 1) = 2.71
    learn(agent, transition([0], [1], [1.0], [1]))
    assert agent.q[0, 1].item() == pytest.approx(2.71)


def test_sarsa_step_uses_the_action_actually_taken_next():
    seen = set()
    for seed in range(20):
        agent = make_agent("sarsa", epsilon_start=1.0, epsilon_end=1.0)  # uniform actions: a' is 0 or 1
        agent.generator.manual_seed(seed)
        agent.observe(transition([0], [1], [1.0], [1]))
        agent.update()
        assert agent.q[0, 1].item() == 1.0  # SARSA waits for a'
        next_action = agent.act(torch.tensor([1])).item()
        # y = 1 + 0.9 * Q(1, a'): 2.8 for a' = 0 (Q 1.9), 4.6 for a' = 1 (Q 2.8); max would always give 2.8
        expected = 1 + 0.5 * (1 + 0.9 * Q0[1][next_action] - 1)
        assert agent.q[0, 1].item() == pytest.approx(expected)
        seen.add(next_action)
    assert seen == {0, 1}


def test_sarsa_at_truncation_draws_a_prime_at_the_final_observation():
    agent = make_agent("sarsa")  # ε = 0: a' is greedy
    # the episode was cut in s'=1 and the env reset to state 2, where the agent now acts (greedy: 0);
    # a' must come from the final observation (greedy at 1: action 1, Q 4): y = 1 + 0.9 * 4 = 4.6
    action = learn(agent, transition([0], [1], [1.0], [1], truncated=[True]), next_obs_to_act_on=[2])
    assert action.item() == 0
    assert agent.q[0, 1].item() == pytest.approx(1 + 0.5 * (4.6 - 1))


@pytest.mark.parametrize("name", ["q_learning", "sarsa", "expected_sarsa"])
def test_truncation_bootstraps_and_termination_does_not(name):
    agent = make_agent(name, num_envs=3)
    # three rows from different (s, a), all landing in s'=1 (greedy value 4 for every rule, ε = 0):
    # truncated only -> y = 1 + 3.6; terminated -> 1; terminated on the time-limit step (both) -> 1
    t = transition([0, 2, 1], [1, 0, 0], [1.0, 1.0, 1.0], [1, 1, 1],
                   terminated=[False, True, True], truncated=[True, False, True])
    learn(agent, t, next_obs_to_act_on=[2, 2, 2])  # reset observations, greedy action 0 there (Q(1, 0) = 2)
    assert agent.q[0, 1].item() == pytest.approx(1 + 0.5 * (4.6 - 1))
    assert agent.q[2, 0].item() == pytest.approx(3 + 0.5 * (1 - 3))
    assert agent.q[1, 0].item() == pytest.approx(2 + 0.5 * (1 - 2))


# ---------------------------------------------------------------------------------------------- batching


def test_batched_update_equals_one_row_at_a_time_for_distinct_pairs():
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(10, 3, generator=gen)
    state, action = torch.tensor([0, 1, 2, 3, 9]), torch.tensor([0, 2, 1, 1, 2])
    target = torch.randn(5, generator=gen)
    expected = q.clone()
    for s, a, y in zip(state, action, target):  # the loop reference
        expected[s, a] += 0.3 * (y - expected[s, a])
    batched_td_update(q, state, action, target, 0.3)
    assert torch.allclose(q, expected)


def test_duplicate_pairs_take_k_sequential_steps_toward_their_mean_target():
    alpha = 0.1
    q = torch.zeros(4, 2)
    # pair (1, 0) three times with the same target 2 -> exactly three sequential α-steps: 2 * (1 - 0.9^3)
    # pair (3, 1) twice with targets 1 and 5 -> (1 - 0.9^2) * mean(1, 5) = 0.19 * 3
    td = batched_td_update(q, torch.tensor([1, 3, 1, 1, 3]), torch.tensor([0, 1, 0, 0, 1]),
                           torch.tensor([2.0, 1.0, 2.0, 2.0, 5.0]), alpha)
    sequential = 0.0
    for _ in range(3):
        sequential += alpha * (2.0 - sequential)
    assert q[1, 0].item() == pytest.approx(sequential) == pytest.approx(2 * (1 - 0.9 ** 3))
    assert q[3, 1].item() == pytest.approx(0.19 * 3)
    assert q.count_nonzero() == 2 and td.tolist() == [2.0, 1.0, 2.0, 2.0, 5.0]  # errors before the step
    # 64 envs reset into one state never overshoot: the move stays below the TD error
    q = torch.zeros(1, 1)
    batched_td_update(q, torch.zeros(64, dtype=torch.long), torch.zeros(64, dtype=torch.long), torch.ones(64), 0.5)
    assert 0.99 < q.item() <= 1.0


# ---------------------------------------------------------------------------------------------- acting


def test_acting_greedy_ties_and_epsilon():
    agent = make_agent(q=[[0.0, 0.0, 0.0, 0.0], [0.0, 5.0, 5.0, 1.0]], epsilon_start=1.0, epsilon_end=0.0,
                       epsilon_decay_steps=100)
    obs = torch.ones(4000, dtype=torch.long)
    assert (agent.act(obs, explore=False) == 1).all()  # deterministic: the first maximiser
    counts = torch.bincount(agent.act(obs), minlength=4) / 4000  # ε = 1: uniform
    assert torch.allclose(counts, torch.full((4,), 0.25), atol=0.03)
    agent.env_steps = 50  # ε = 0.5: 0.5 / 4 + 0.5 / 2 on each of the two maximisers
    counts = torch.bincount(agent.act(obs), minlength=4) / 4000
    assert torch.allclose(counts, torch.tensor([0.125, 0.375, 0.375, 0.125]), atol=0.03)
    agent.env_steps = 100  # ε = 0: only maximisers, ties broken at random
    counts = torch.bincount(agent.act(obs), minlength=4) / 4000
    assert counts[0] == counts[3] == 0 and abs(counts[1].item() - 0.5) < 0.03
    constant = make_agent(epsilon_start=0.3, epsilon_end=0.3)  # start = end: constant ε
    constant.env_steps = 10**6
    assert constant.epsilon == 0.3


# ---------------------------------------------------------------------------------------------- config


def test_supports_rejects_box_observations_and_continuous_actions():
    with pytest.raises(UserError, match=r"needs discrete observations.*env\.discretize\.bins="):
        agents.make(TabularConfig(), envs.make("CartPole-v1", 1).spec)
    with pytest.raises(UserError, match="needs discrete actions"):
        agents.make(TabularConfig(name="sarsa"), envs.make("Pendulum-v1", 1).spec)
    env = envs.make("CartPole-v1", 1, discretize=DiscretizeConfig(bins=3))
    assert isinstance(agents.make(TabularConfig(), env.spec), TabularAgent)


@pytest.mark.parametrize("change, key", [({"alpha": 0}, "agent.alpha"), ({"alpha": 1.5}, "agent.alpha"),
                                         ({"alpha_end": 0.0}, "agent.alpha_end"), ({"gamma": 1.1}, "agent.gamma"),
                                         ({"epsilon_end": -0.1}, "agent.epsilon_end"),
                                         ({"q_init": float("inf")}, "agent.q_init"), ({"lr": 0.1}, "agent.lr")])
def test_bad_values_name_the_key(change, key):
    with pytest.raises(ConfigError) as err:
        load_config(tabular_config(agent=change))
    assert f"'{key}'" in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------- runs


def tabular_config(name="q_learning", env=None, agent=None, **sections):
    """tests.conftest.small_config with a tabular agent (FrozenLake, 4 envs, 1000 steps by default)."""
    cfg = small_config(env=env or {"id": "FrozenLake-v1", "num_envs": 4}, **sections)
    cfg["agent"] = {"name": name, "alpha": 0.3, "gamma": 0.99, "epsilon_start": 0.1, "epsilon_end": 0.1,
                    "q_init": 0.5, **(agent or {})}
    return cfg


def cliff_config(name, epsilon, alpha, steps):
    return tabular_config(name, env={"id": "CliffWalking-v1", "num_envs": 16, "max_episode_steps": 200},
                          agent={"alpha": alpha, "q_init": 0.0, "epsilon_start": epsilon, "epsilon_end": epsilon},
                          train={"total_steps": steps}, eval={"every_steps": 0, "episodes": 1})


def test_cliff_walking_q_learning_finds_the_optimal_path(tmp_path):
    summary = main(cliff_config("q_learning", 0.1, 1.0, 5000), tmp_path)
    assert summary["eval_return_mean"] == -13.0  # 13 steps along the cliff edge
    assert (tmp_path / "policy.png").stat().st_size > 10_000


def test_frozen_lake_run_writes_the_policy_picture(tmp_path):
    cfg = tabular_config(env={"id": "FrozenLake-v1", "num_envs": 8, "kwargs": {"is_slippery": False}},
                         train={"total_steps": 4000}, eval={"every_steps": 0, "episodes": 1})
    summary = main(cfg, tmp_path)
    assert summary["eval_return_mean"] == 1.0  # deterministic lake: the goal, greedily
    picture = (tmp_path / "policy.png").read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) > 10_000


def test_no_picture_without_a_grid(tmp_path):
    cfg = tabular_config(env={"id": "CartPole-v1", "num_envs": 4, "discretize": {"bins": [1, 1, 6, 6]}},
                         train={"total_steps": 400}, eval={"every_steps": 0, "episodes": 1})
    main(cfg, tmp_path)
    assert (tmp_path / "summary.json").exists() and not (tmp_path / "policy.png").exists()


def q_table(run_dir):
    return ckpt.load(run_dir / "checkpoint.pt")["agent"]["q"]


def test_seeded_runs_are_identical(tmp_path):
    main(tabular_config("sarsa"), tmp_path / "a")
    main(tabular_config("sarsa"), tmp_path / "b")
    main(tabular_config("sarsa", seed=1), tmp_path / "c")
    assert torch.equal(q_table(tmp_path / "a"), q_table(tmp_path / "b"))
    assert not torch.equal(q_table(tmp_path / "a"), q_table(tmp_path / "c"))


@pytest.mark.parametrize("name, env", [
    ("sarsa", {"id": "FrozenLake-v1", "num_envs": 4}),  # a pending transition in the checkpoint
    ("expected_sarsa", {"id": "CartPole-v1", "num_envs": 4, "discretize": {"bins": [1, 4, 6, 6]}}),
])
def test_resume_equals_uninterrupted(tmp_path, name, env):
    main(tabular_config(name, env, train={"total_steps": 1200}), tmp_path / "full")
    part = main(tabular_config(name, env, train={"total_steps": 600}), tmp_path / "part")
    assert part["env_steps"] == 600
    if name == "sarsa":
        assert ckpt.load(tmp_path / "part")["agent"]["pending"] is not None
    resumed = tabular_config(name, env, train={"total_steps": 1200}, resume=str(tmp_path / "part"))
    assert main(resumed, tmp_path / "resumed")["env_steps"] == 1200
    assert not torch.equal(q_table(tmp_path / "part"), q_table(tmp_path / "full"))
    assert torch.equal(q_table(tmp_path / "full"), q_table(tmp_path / "resumed"))
    full, again = (ckpt.load(tmp_path / d)["agent"] for d in ("full", "resumed"))
    assert full["env_steps"] == again["env_steps"] and torch.equal(full["generator"], again["generator"])
    rows = lambda d: (d / "episodes.csv").read_text().splitlines()  # noqa: E731
    assert [r.split(",")[:3] for r in rows(tmp_path / "full")] == [r.split(",")[:3] for r in rows(tmp_path / "resumed")]


def test_command_line_configs_compose():
    """The tuned configs give env.discretize a key to override, and FrozenLake8x8-v1 its own name."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from classic_rl.__main__ import config_dir

    def composed(*overrides):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return load_config(OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True))

    cfg, agent = composed("agent=q_learning", "env=CartPole-v1", "env.discretize.bins=[6,6,12,12]")
    assert cfg.env.discretize == DiscretizeConfig(bins=[6, 6, 12, 12]) and agent.name == "q_learning"
    cfg, agent = composed("agent=sarsa", "env=FrozenLake8x8-v1")
    assert cfg.env.id == "FrozenLake8x8-v1" and cfg.eval.episodes == 1000 and agent.q_init == 0.5
    cfg, _ = composed("agent=expected_sarsa", "env=FrozenLake-v1", "+env.kwargs.is_slippery=false")
    assert cfg.env.kwargs == {"is_slippery": False} and cfg.train.total_steps == 50_000


def test_cliff_walking_sarsa_takes_the_safe_path_under_epsilon_0_1(tmp_path):
    # Sutton & Barto, Example 6.6: on-policy values price in the ε-greedy falls, so the greedy path
    # keeps a row away from the cliff (15 steps), unlike Q-learning's 13.
    summary = main(cliff_config("sarsa", 0.1, 0.1, 20_000), tmp_path)
    assert summary["eval_return_mean"] == -15.0


def test_cliff_walking_expected_sarsa_with_small_epsilon_finds_the_optimal_path(tmp_path):
    # with ε = 0.002 the expected falls along the edge cost less than the safe path's two extra steps
    summary = main(cliff_config("expected_sarsa", 0.002, 1.0, 30_000), tmp_path)
    assert summary["eval_return_mean"] == -13.0


@pytest.mark.slow
def test_cliff_walking_sarsa_with_small_epsilon_and_alpha_finds_the_optimal_path(tmp_path):
    # conf/tuned/sarsa_CliffWalking-v1.yaml: at ε = 0.002 the ε-greedy values favour the edge, and at
    # α = 0.02 one sampled fall moves Q(edge, right) by about 2, not enough to push the greedy path back
    summary = main(cliff_config("sarsa", 0.002, 0.02, 200_000), tmp_path)
    assert summary["eval_return_mean"] == -13.0
