"""Bad configuration gets ONE clear line naming the key; good configuration is typed."""

import subprocess

import pytest

from classic_rl.__main__ import precheck
from classic_rl.config import ConfigError, UserError
from classic_rl.run import load_config
from tests.conftest import CLI, ROOT, cli_env, small_config


def test_good_config_is_typed():
    cfg, agent = load_config(small_config(agent={"lr": 1, "buffer_size": 1e5}))
    assert isinstance(agent.lr, float) and agent.lr == 1.0
    assert isinstance(agent.buffer_size, int) and agent.buffer_size == 100_000
    assert cfg.env.num_envs == 2 and cfg.device == "cpu"


@pytest.mark.parametrize(
    "section, change, key",
    [
        ("agent", {"lr": -0.1}, "agent.lr"),
        ("agent", {"gamma": 1.5}, "agent.gamma"),
        ("agent", {"batch_size": 10_000, "buffer_size": 100}, "agent.batch_size"),
        ("agent", {"lr": "fast"}, "agent.lr"),
        ("agent", {"hidden_sizes": [64, "x"]}, "agent.hidden_sizes[1]"),
        ("agent", {"learning_rate": 0.1}, "agent.learning_rate"),
        ("env", {"num_envs": 0}, "env.num_envs"),
        ("env", {"backend": "jax"}, "env.backend"),
        ("train", {"total_steps": 0}, "train.total_steps"),
        ("eval", {"episodes": True}, "eval.episodes"),
        ("device", "gpu", "device"),
        ("mode", "play", "mode"),
    ],
)
def test_bad_values_name_the_key(section, change, key):
    with pytest.raises(ConfigError) as err:
        load_config(small_config(**{section: change}))
    message = str(err.value)
    assert f"'{key}'" in message and "\n" not in message


def test_eval_mode_needs_a_checkpoint():
    with pytest.raises(ConfigError, match="checkpoint"):
        load_config(small_config(mode="eval"))


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["agent.lr=-1"], "'agent.lr'"),
        (["agent.gamma=2"], "'agent.gamma'"),
        (["agent.lerning_rate=0.1"], "'agent.lerning_rate'"),
        (["+agent.lerning_rate=0.1"], "'agent.lerning_rate'"),
        (["env.num_envs=0"], "'env.num_envs'"),
        (["agent=dqnn"], "unknown agent 'dqnn'; available: a2c,"),
        (["env=CartPol-v1"], "unknown env 'CartPol-v1'"),
        (["agent.batch_size=1000", "agent.buffer_size=10"], "'agent.batch_size'"),
        (["device=tpu"], "'device'"),
        (["seed=abc"], "'seed'"),
    ],
)
def test_precheck_one_line(overrides, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        precheck(overrides)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err


def test_cli_bad_override_exits_with_one_line_and_no_traceback(tmp_path):
    for args, expected in (
        (["agent.lr=-0.5"], "agent.lr"),
        (["env=Pendulum-v1"], "agents that can"),
        (["mode=eval", f"checkpoint={tmp_path}/nope.pt"], "checkpoint not found"),
    ):
        proc = subprocess.run([*CLI, *args, f"hydra.run.dir={tmp_path}/run"], capture_output=True, text=True,
                              env=cli_env(), cwd=ROOT, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr


def test_incompatible_agent_names_agents_that_fit():
    from classic_rl import agents, envs

    env = envs.make("Pendulum-v1", 1)
    _, agent_cfg = load_config(small_config())
    with pytest.raises(UserError, match="agent=dqn cannot run on env=Pendulum-v1.*agents that can"):
        agents.make(agent_cfg, env.spec)
