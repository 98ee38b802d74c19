"""The Python API (classic_rl.train / load / make, callbacks) and a user's own environments, from
Python and from the command line (env=gymnasium env.id=module:Id | env.entry_point=module:Class)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import classic_rl
from classic_rl.compose import compose

USER_ENVS = Path(__file__).resolve().parent / "userenv"
FAST = ("logger.progress=false", "logger.tensorboard=false")


@pytest.fixture
def goright(monkeypatch):
    """The user's module tests/userenv/goright_envs.py, importable by name as from an installed package."""
    monkeypatch.syspath_prepend(str(USER_ENVS))
    import goright_envs

    return goright_envs


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(USER_ENVS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "classic_rl", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


# ------------------------------------------------------------------------------ the same config as the CLI
@pytest.mark.parametrize("pair", [("agent=ppo", "env=CartPole-v1"), ("agent=dqn", "env=CartPole-v1"),
                                  ("agent=td3", "env=Pendulum-v1", "agent.actor_lr=0.0005")])
def test_compose_equals_the_command_lines_config(pair, tmp_path):
    printed = yaml.safe_load(cli(*pair, "--cfg", "job", "--resolve", cwd=tmp_path).stdout)
    config, run_dir = compose(pair)
    assert config == printed  # tuned configs included (ppo_CartPole-v1, dqn_CartPole-v1, td3_Pendulum-v1)
    assert run_dir.parts[:2] == ("runs", f"{pair[0].split('=')[1]}_{pair[1].split('=')[1]}")


# ------------------------------------------------------------------------------ quickstarts as in the README
def readme_python_blocks(docs: bool = False) -> list[str]:
    """The Python code blocks of the README (and with `docs`, of every docs page)."""
    root = Path(__file__).resolve().parent.parent
    pages = [root / "README.md", *(sorted((root / "docs").rglob("*.md")) if docs else [])]
    text = "\n".join(p.read_text() for p in pages)
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


@pytest.mark.slow
def test_readme_python_quickstart_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (block,) = [b for b in readme_python_blocks() if 'classic_rl.train("agent=ppo", "env=CartPole-v1")' in b]
    scope: dict = {}
    exec(block, scope)  # train -> load -> act, as the README shows it
    result, policy, env = scope["result"], scope["policy"], scope["env"]
    assert result.summary["eval_return_mean"] >= 475  # solved
    assert result.run_dir.parent == Path("runs/ppo_CartPole-v1") and (result.run_dir / "checkpoint.pt").is_file()
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:  # the loaded policy in Gymnasium's own CartPole
        obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
        total, done = total + reward, terminated or truncated
    assert total >= 475


def test_readme_torch_dynamics_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (block,) = [b for b in readme_python_blocks(docs=True) if "class GoRightDynamics" in b]
    scope: dict = {}
    exec(block, scope)
    assert scope["result"].summary["eval_return_mean"] == pytest.approx(0.4)  # the corridor's optimum
    assert scope["result"].summary["env"] == "GoRightTorch-v0"


@pytest.mark.slow
def test_readme_cli_quickstart_runs_as_written(tmp_path):
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "&& python -m classic_rl agent=dqn env=CartPole-v1   # install and train" in text  # the README's command
    cli("agent=dqn", "env=CartPole-v1", cwd=tmp_path)
    (run_dir,) = (tmp_path / "runs" / "dqn_CartPole-v1").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["eval_return_mean"] >= 475 and summary["solved_at_step"] is not None  # solved, and stays


def test_loaded_policy_acts_on_one_observation_or_a_batch_and_reproduces_the_evaluation(tmp_path):
    result = classic_rl.train("agent=dqn", "env=CartPole-v1", "train.total_steps=3000", "eval.episodes=4", *FAST,
                              run_dir=tmp_path / "run")
    policy = classic_rl.load(tmp_path / "run" / "checkpoint.pt", device="cpu")
    assert policy.config == yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    batch = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    actions = policy.act(batch)
    assert isinstance(actions, np.ndarray) and actions.shape == (5,)
    one = policy.act(batch[2])
    assert isinstance(one, int) and one == actions[2]
    torch_actions = policy.act(torch.from_numpy(batch))
    assert isinstance(torch_actions, torch.Tensor) and torch_actions.tolist() == actions.tolist()
    greedy = policy.agent.q(torch.from_numpy(batch)).argmax(-1)  # the Q-network's greedy action
    assert actions.tolist() == greedy.tolist()
    # the same deterministic episodes as the run's last evaluation: the same return
    assert policy.evaluate(episodes=4)["return_mean"] == result.summary["eval_return_mean"]
    with pytest.raises(classic_rl.UserError, match="fits neither one observation"):
        policy.act(np.zeros(3))


# ------------------------------------------------------------------------------ your own environment
def test_cli_trains_a_users_registered_env_through_module_id(tmp_path, goright):
    cli("agent=ppo", "env=gymnasium", "env.id=goright_envs:GoRight-v0", "train.total_steps=4000",
        "eval.every_steps=2000", "eval.at_start=true", "hydra.run.dir=run", *FAST, cwd=tmp_path)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["evaluations"][0]["return_mean"] < goright.OPTIMAL_RETURN - 1  # untrained: walks into the wall
    assert summary["eval_return_mean"] == pytest.approx(goright.OPTIMAL_RETURN)
    assert summary["env"] == "GoRight-v0" and summary["reward_threshold"] == pytest.approx(goright.OPTIMAL_RETURN)
    assert not list((tmp_path / "run").glob("*.log"))  # no empty Hydra job log


@pytest.mark.parametrize("entry_point", ["goright_envs:GoRight", "goright_envs:GoRightDynamics"])
def test_cli_trains_an_unregistered_class_through_entry_point(tmp_path, goright, entry_point):
    cli("agent=ppo", "env=gymnasium", f"env.entry_point={entry_point}", "env.max_episode_steps=30",
        "train.total_steps=4000", "eval.every_steps=0", "hydra.run.dir=run", *FAST, cwd=tmp_path)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["eval_return_mean"] == pytest.approx(goright.OPTIMAL_RETURN)
    assert summary["env"] == entry_point.split(":")[1]


@pytest.mark.parametrize("args, message", [
    (("env.id=no_such_module:GoRight-v0",), "cannot import module 'no_such_module'"),
    (("env.id=goright_envs:Missing-v0",), "module 'goright_envs' was imported but registers no env 'Missing-v0'"),
    (("env.entry_point=goright_envs:Missing",), "module 'goright_envs' has no 'Missing'"),
    (("env.entry_point=goright_envs",), "must be module:ClassName"),
    ((), "set exactly one of config key 'env.id' and config key 'env.entry_point'"),
])
def test_a_bad_user_env_is_one_line_naming_what_is_missing(tmp_path, args, message):
    proc = cli("agent=ppo", "env=gymnasium", *args, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("kind", ["factory", "vector", "dynamics", "classic_rl-vector"])
def test_python_trains_on_env_objects_and_load_needs_the_object_again(tmp_path, goright, kind):
    from classic_rl.envs import TorchVectorEnv

    same_step = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}
    env, eval_env = {
        "factory": (lambda: gym.wrappers.TimeLimit(goright.GoRight(), 30), None),
        "vector": (gym.make_vec("GoRight-v0", num_envs=4, vector_kwargs=same_step),
                   gym.make_vec("GoRight-v0", num_envs=10, vector_kwargs=same_step)),
        "dynamics": (goright.GoRightDynamics(), None),
        "classic_rl-vector": (TorchVectorEnv(goright.GoRightDynamics(), 4), TorchVectorEnv(goright.GoRightDynamics(), 10)),
    }[kind]
    result = classic_rl.train("agent=ppo", "train.total_steps=4000", "eval.every_steps=0", *FAST, env=env,
                              eval_env=eval_env, run_dir=tmp_path / "run")
    assert result.summary["eval_return_mean"] == pytest.approx(goright.OPTIMAL_RETURN)
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["env"]["python_object"] is True
    with pytest.raises(classic_rl.UserError, match="pass it again"):
        classic_rl.load(tmp_path / "run")
    policy = classic_rl.load(tmp_path / "run", env=env)
    obs = np.eye(goright.LENGTH, dtype=np.float32)
    assert policy.act(obs)[:-1].tolist() == [1] * (goright.LENGTH - 1)  # right from every cell
    assert policy.evaluate(episodes=3, env=lambda: goright.GoRight())["return_mean"] == pytest.approx(
        goright.OPTIMAL_RETURN)
    # the command line cannot rebuild it
    proc = cli(f"resume={tmp_path / 'run'}", "train.total_steps=5000", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Python env object" in proc.stderr


def test_an_env_instance_without_an_eval_env_is_one_line(goright, tmp_path):
    vector = goright.GoRightDynamics()
    from classic_rl.envs import TorchVectorEnv

    with pytest.raises(classic_rl.UserError, match="pass eval_env= too"):
        classic_rl.train("agent=ppo", *FAST, env=TorchVectorEnv(vector, 2), run_dir=tmp_path / "run")
    with pytest.raises(classic_rl.UserError, match="same-step auto-reset"):
        classic_rl.train("agent=ppo", *FAST, env=gym.make_vec("GoRight-v0", num_envs=2), run_dir=tmp_path / "r2")
    with pytest.raises(classic_rl.UserError, match="pass a function that returns one"):
        classic_rl.train("agent=ppo", *FAST, env=goright.GoRight(), run_dir=tmp_path / "r3")
    assert not any(tmp_path.iterdir())


def test_async_vectorization_steps_like_sync(goright):
    envs = [classic_rl.make("goright_envs:GoRight-v0", num_envs=3, seed=0, vectorization_mode=mode)
            for mode in ("sync", "async")]
    assert type(envs[1].env).__name__ == "AsyncVectorEnv"
    first = [env.reset(seed=0)[0] for env in envs]
    assert torch.equal(*first)
    for t in range(40):  # right, right, left, ... : goal reached, auto-reset, time limit
        action = torch.tensor([1, t % 3 != 2, t % 2])
        out = [env.step(action) for env in envs]
        for a, b in zip(out[0][:4], out[1][:4]):
            assert torch.equal(a, b)
        assert torch.equal(out[0][4]["final_obs"], out[1][4]["final_obs"])
    for env in envs:
        env.close()


# ------------------------------------------------------------------------------ callbacks
class Recorder(classic_rl.Callback):
    def __init__(self, stop_at_evaluation: int | None = None) -> None:
        self.updates, self.logs, self.evaluations, self.stop_at = [], [], [], stop_at_evaluation

    def on_update(self, env_step, stats):
        self.updates.append((env_step, dict(stats)))

    def on_log(self, env_step, scalars):
        self.logs.append(env_step)

    def on_evaluation(self, record):
        self.evaluations.append(record)
        return False if len(self.evaluations) == self.stop_at else None


def test_callbacks_see_updates_logs_and_evaluations_and_can_stop_the_run(tmp_path):
    seen = Recorder()  # tuned PPO on CartPole: 128 envs x 32 steps = one update per 4096 env steps
    result = classic_rl.train("agent=ppo", "env=CartPole-v1", "train.total_steps=8192", "eval.every_steps=4096",
                              "logger.log_every_steps=2048", "eval.episodes=2", *FAST, callbacks=[seen],
                              run_dir=tmp_path / "a")
    assert seen.evaluations == result.summary["evaluations"]
    assert seen.logs == [2048, 4096, 6144, 8192]
    assert [step for step, _ in seen.updates] == [4096, 8192] and result.summary["updates"] == 2
    assert "policy_loss" in seen.updates[0][1]
    stopper = Recorder(stop_at_evaluation=1)
    stopped = classic_rl.train("agent=ppo", "env=CartPole-v1", "train.total_steps=16384", "eval.every_steps=4096",
                               "eval.episodes=2", *FAST, callbacks=[stopper], run_dir=tmp_path / "b")
    assert stopped.summary["stopped_by_callback"] is True and stopped.summary["env_steps"] == 4096
    assert not stopped.summary["interrupted"] and (tmp_path / "b" / "checkpoint.pt").is_file()
    with pytest.raises(classic_rl.UserError, match="none of the hooks"):
        classic_rl.train("agent=ppo", *FAST, callbacks=[object()], run_dir=tmp_path / "c")


# ------------------------------------------------------------------------------ command-line conventions
def test_version_and_help(tmp_path):
    assert cli("--version", cwd=tmp_path).stdout.strip() == f"classic_rl {classic_rl.__version__}"
    text = cli("--help", cwd=tmp_path).stdout
    for group in ("agent:", "env:", "model:", "+experiment:", "train.total_steps=", "device="):
        assert group in text
    for internal in ("tuned:", "suite:", "tune:"):
        assert internal not in text


def test_top_level_exports():
    from classic_rl.agents import AGENTS

    for name in classic_rl.__all__:
        assert getattr(classic_rl, name) is not None
    assert {cls.__name__ for cls, _ in AGENTS.values()} <= set(classic_rl.__all__)
    assert (Path(classic_rl.__file__).parent / "py.typed").is_file()
