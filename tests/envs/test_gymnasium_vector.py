"""classic_rl's batched envs as Gymnasium vector envs: gymnasium.make_vec("classic_rl/ID"), batched spaces,
Gymnasium's vector wrappers, a CleanRL-style PPO loop written against Gymnasium's API alone, and one-line
errors for actions that do not fit."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import classic_rl  # noqa: F401  registers classic_rl/ID
from classic_rl import envs
from classic_rl.config import UserError
from classic_rl.envs.base import ActionError, EnvSpec
from classic_rl.registration import CLASSIC_CONTROL

array_conversion = pytest.importorskip("gymnasium.wrappers.vector.array_conversion",
                                       reason="Gymnasium's ArrayConversion needs array-api-compat")


def make_vec(env_id: str, num_envs: int = 8, **kwargs):
    return gym.make_vec(f"classic_rl/{env_id}", num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


def to_numpy(env):
    """Gymnasium's own conversion: its vector wrappers compute with numpy."""
    return gym.wrappers.vector.ArrayConversion(env, env_xp=torch, target_xp=np)


def test_every_torch_native_env_is_registered_and_is_a_gymnasium_vector_env():
    names = [k for k in gym.registry if k.startswith("classic_rl/")]
    assert {f"classic_rl/{i}" for i in (*CLASSIC_CONTROL, "FrozenLake-v1", "Taxi-v4", "CliffWalking-v1",
                                        "simple_spread")} <= set(names)
    assert set(CLASSIC_CONTROL) == set(envs.DYNAMICS)  # the registration's list is the torch-native one
    for name in names:
        env = gym.make_vec(name, num_envs=3, vectorization_mode="vector_entry_point", seed=0)
        assert isinstance(env, gym.vector.VectorEnv) and env.num_envs == 3
        assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        assert isinstance(env.spec, EnvSpec) and env.registration.id == name  # make_vec's record kept apart
        obs, _ = env.reset(seed=0)
        assert isinstance(obs, torch.Tensor) and env.observation_space.shape == tuple(obs.shape)
        assert env.action_space.shape[0] == 3 and env.render() is None
        actions = torch.as_tensor(np.stack([env.single_action_space.sample() for _ in range(3)]))
        if env.spec.num_agents > 1:
            actions = torch.as_tensor(env.action_space.sample())
        out = env.step(actions)
        assert all(isinstance(x, torch.Tensor) for x in out[:4]) and "final_obs" in out[4]
        env.close()
        assert env.closed


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "FrozenLake-v1"])
def test_make_vec_steps_as_envs_make(env_id):
    """The parity-tested env, bit for bit, through gymnasium.make_vec (device and seed as keywords)."""
    a, b = envs.make(env_id, num_envs=16, seed=5), make_vec(env_id, 16, seed=5, device="cpu")
    oa, ob = a.reset(seed=5)[0], b.reset(seed=5)[0]
    assert torch.equal(oa, ob)
    for _ in range(300):
        action = torch.as_tensor(np.stack([a.single_action_space.sample() for _ in range(16)]))
        for x, y in zip(a.step(action)[:4], b.step(action)[:4]):
            assert torch.equal(x, y)


def test_next_step_autoreset_ends_then_restarts_as_gymnasiums_own_cartpole():
    """autoreset_mode=next_step: the ending step returns the last observation; the next ignores the action
    and returns a new episode's first observation with reward 0 and neither flag."""
    same = envs.make("CartPole-v1", num_envs=32, seed=1)
    nxt = make_vec("CartPole-v1", 32, seed=1, autoreset_mode=AutoresetMode.NEXT_STEP)
    assert nxt.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    same.reset(seed=1), nxt.reset(seed=1)
    generator = torch.Generator().manual_seed(0)
    ended = torch.zeros(32, dtype=torch.bool)
    restarts, first_end = 0, True
    for _ in range(100):
        action = torch.randint(0, 2, (32,), generator=generator)
        obs, reward, terminated, truncated, info = nxt.step(action)
        assert "final_obs" not in info
        if ended.any():
            assert torch.all(reward[ended] == 0) and not (terminated | truncated)[ended].any()
            assert torch.all(obs[ended].abs() <= 0.05)  # CartPole's initial states: U(-0.05, 0.05)
            restarts += int(ended.sum())
        ended = terminated | truncated
        if first_end:  # until the first end, both modes step alike; at it, next-step keeps the last obs
            s_obs, s_reward, s_terminated, _, s_info = same.step(action)
            assert torch.equal(s_terminated, terminated) and torch.equal(s_reward, reward)
            assert torch.equal(s_info["final_obs"], obs)
            first_end = not ended.any()
    assert restarts > 20
    with pytest.raises(UserError, match="autoreset_mode='next_step' is available for the torch-native classic"):
        envs.make("FrozenLake-v1", num_envs=2, autoreset_mode="next_step")
    with pytest.raises(UserError, match="classic_rl trains on same-step envs"):
        envs.from_object(nxt)
    with pytest.raises(UserError, match="autoreset_mode=next_step runs eager: drop one"):
        make_vec("CartPole-v1", 2, compile=True, autoreset_mode="next_step")


def test_gymnasiums_vector_wrappers_run_on_the_torch_envs():
    """RecordEpisodeStatistics, NormalizeObservation (next-step, as Gymnasium's observation wrappers
    require), ClipAction and TransformObservation, over Gymnasium's torch -> numpy conversion."""
    wrappers = gym.wrappers.vector
    stats = wrappers.RecordEpisodeStatistics(to_numpy(make_vec("CartPole-v1", 8, seed=0)))
    stats.reset(seed=0)
    returns = np.zeros(8)
    recorded = []
    rng = np.random.default_rng(0)
    for _ in range(400):
        obs, reward, terminated, truncated, info = stats.step(rng.integers(0, 2, 8))
        returns += reward
        done = terminated | truncated
        if done.any():
            assert np.allclose(info["episode"]["r"][done], returns[done])  # the episodes' own sums
            recorded += list(info["episode"]["r"][done])
            returns[done] = 0
    assert len(recorded) > 50 and 10 < np.mean(recorded) < 40  # random CartPole episodes last ~22 steps

    norm = wrappers.NormalizeObservation(to_numpy(make_vec("CartPole-v1", 64, seed=0, autoreset_mode="next_step")))
    scaled = wrappers.TransformObservation(norm, lambda o: 2.0 * o)
    scaled.reset(seed=0)
    seen = np.concatenate([scaled.step(rng.integers(0, 2, 64))[0] for _ in range(200)])
    assert abs(seen.mean()) < 0.2 and 1.6 < seen.std() < 2.4  # normalised, then doubled

    clipped = wrappers.ClipAction(to_numpy(make_vec("Pendulum-v1", 4, seed=0)))
    free = to_numpy(make_vec("Pendulum-v1", 4, seed=0))
    clipped.reset(seed=0), free.reset(seed=0)
    big, edge = np.full((4, 1), 50.0, np.float32), np.full((4, 1), 2.0, np.float32)
    assert np.array_equal(clipped.step(big)[0], free.step(edge)[0])  # 50 clipped to the bound 2


def test_a_cleanrl_style_ppo_loop_on_the_gymnasium_api_alone_learns_cartpole():
    """PPO written the way CleanRL writes it (numpy envs, torch networks), against gymnasium.make_vec only."""
    torch.manual_seed(0)
    num_envs, num_steps, updates = 8, 128, 30
    env = gym.wrappers.vector.RecordEpisodeStatistics(to_numpy(make_vec("CartPole-v1", num_envs, seed=0)))
    obs_dim, n_actions = env.single_observation_space.shape[0], env.single_action_space.n

    def mlp(out, std):
        layers = [torch.nn.Linear(obs_dim, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
                  torch.nn.Linear(64, out)]
        torch.nn.init.orthogonal_(layers[-1].weight, std)
        return torch.nn.Sequential(*layers)
    actor, critic = mlp(n_actions, 0.01), mlp(1, 1.0)
    optimizer = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=2.5e-3, eps=1e-5)
    obs = torch.as_tensor(env.reset(seed=0)[0])
    done = torch.zeros(num_envs)
    finished = []
    for _ in range(updates):
        buf = {k: [] for k in ("obs", "action", "log_prob", "reward", "done", "value")}
        for _ in range(num_steps):
            with torch.no_grad():
                dist = torch.distributions.Categorical(logits=actor(obs))
                action = dist.sample()
                buf["value"].append(critic(obs).squeeze(-1))
            buf["obs"].append(obs), buf["action"].append(action), buf["log_prob"].append(dist.log_prob(action))
            buf["done"].append(done)
            next_obs, reward, terminated, truncated, info = env.step(action.numpy())
            buf["reward"].append(torch.as_tensor(reward, dtype=torch.float32))
            obs, done = torch.as_tensor(next_obs), torch.as_tensor(terminated | truncated, dtype=torch.float32)
            if "episode" in info:
                finished += list(info["episode"]["r"][info["_episode"]])
        b = {k: torch.stack(v) for k, v in buf.items()}
        with torch.no_grad():  # GAE(0.99, 0.95), CleanRL's done convention
            advantage, last = torch.zeros_like(b["reward"]), 0.0
            next_value, next_done = critic(obs).squeeze(-1), done
            for t in reversed(range(num_steps)):
                nonterminal = 1.0 - next_done
                delta = b["reward"][t] + 0.99 * next_value * nonterminal - b["value"][t]
                last = delta + 0.99 * 0.95 * nonterminal * last
                advantage[t] = last
                next_value, next_done = b["value"][t], b["done"][t]
            returns = advantage + b["value"]
        flat = {k: v.flatten(0, 1) for k, v in {**b, "advantage": advantage, "returns": returns}.items()}
        for _ in range(4):
            for idx in torch.randperm(num_envs * num_steps).split(256):
                dist = torch.distributions.Categorical(logits=actor(flat["obs"][idx]))
                ratio = (dist.log_prob(flat["action"][idx]) - flat["log_prob"][idx]).exp()
                adv = flat["advantage"][idx]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2)).mean()
                value_loss = 0.5 * (critic(flat["obs"][idx]).squeeze(-1) - flat["returns"][idx]).pow(2).mean()
                optimizer.zero_grad()
                (policy_loss + 0.5 * value_loss - 0.01 * dist.entropy().mean()).backward()
                torch.nn.utils.clip_grad_norm_([*actor.parameters(), *critic.parameters()], 0.5)
                optimizer.step()
    assert np.mean(finished[:20]) < 40 and np.mean(finished[-20:]) > 150, (finished[:20], finished[-20:])


@pytest.mark.parametrize("env_id, actions, message", [
    ("CartPole-v1", torch.zeros(3, dtype=torch.int64), "actions have shape (3,), expected (4,) (one integer per env)"),
    ("CartPole-v1", torch.zeros(4), "actions have dtype torch.float32, expected an integer dtype"),
    ("CartPole-v1", torch.tensor([0, 1, 2, 0]), "action 2 is outside the action space Discrete(2)"),
    ("CartPole-v1", torch.tensor([0, -1, 1, 0]), "action -1 is outside the action space Discrete(2)"),
    ("Pendulum-v1", torch.zeros(4), "actions have shape (4,), expected (4, 1) (one (1,) action per env)"),
    ("Pendulum-v1", torch.zeros(4, 1, dtype=torch.int64), "expected a floating dtype (torch.float32)"),
    ("FrozenLake-v1", torch.tensor([0, 1, 4, 0]), "action 4 is outside the action space Discrete(4)"),
])
def test_actions_that_do_not_fit_are_one_line(env_id, actions, message):
    env = envs.make(env_id, num_envs=4)
    env.reset(seed=0)
    with pytest.raises(ActionError) as err:
        env.step(actions)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, UserError) and isinstance(err.value, ValueError)


def test_actions_on_another_device_name_both_devices():
    env = envs.make("CartPole-v1", num_envs=2)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=r"actions are on meta, the env on cpu; move them with actions.to\('cpu'\)"):
        env.step(torch.zeros(2, dtype=torch.int64, device="meta"))
    assert env.step([0, 1])[1].shape == (2,)  # lists and numpy arrays are converted
