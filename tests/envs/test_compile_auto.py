"""env.compile = true | false | auto: auto compiles the training env of a run long enough to repay the
compilation (envs/torch_env.compile_pays), never the evaluation env; the compiled step is the eager one."""

import pytest
import torch

from classic_rl import envs
from classic_rl.compose import compose
from classic_rl.config import ConfigError
from classic_rl.envs.torch_env import COMPILE_AUTO_VECTOR_STEPS, compile_pays
from classic_rl.run import build_envs, load_config


def built(*overrides: str):
    config, _ = compose(["agent=ppo", "env=CartPole-v1", "device=cpu", *overrides])
    cfg, _ = load_config(config)
    train, evaluation = build_envs(cfg, torch.device("cpu"))
    return train.compile, evaluation.compile


@pytest.mark.parametrize("overrides, expected", [
    (("env.num_envs=8", f"train.total_steps={8 * COMPILE_AUTO_VECTOR_STEPS}"), (True, False)),     # long: compiled
    (("env.num_envs=8", f"train.total_steps={8 * COMPILE_AUTO_VECTOR_STEPS - 8}"), (False, False)),  # one step short
    (("env.num_envs=4096",), (False, False)),            # the tuned run at 4096 envs: 469 vector steps
    (("env.compile=true", "train.total_steps=1000"), (True, True)),
    (("env.compile=false", f"train.total_steps={10 * COMPILE_AUTO_VECTOR_STEPS}", "env.num_envs=1"), (False, False)),
])
def test_auto_compiles_the_training_env_of_long_runs_only(overrides, expected):
    assert built(*overrides) == expected


def test_compile_pays_past_the_measured_crossover():
    assert not compile_pays(COMPILE_AUTO_VECTOR_STEPS - 1) and compile_pays(COMPILE_AUTO_VECTOR_STEPS)


def test_compile_takes_true_false_or_auto_only():
    config, _ = compose(["agent=ppo", "env=CartPole-v1", "env.compile=sometimes"])
    with pytest.raises(ConfigError, match="env.compile") as err:
        load_config(config)
    assert "\n" not in str(err.value)


def test_the_compiled_training_env_steps_as_the_eager_one():
    eager = envs.make("CartPole-v1", num_envs=64, seed=3)
    fused = envs.make("CartPole-v1", num_envs=64, seed=3, compile=True)
    obs_e, _ = eager.reset(seed=3)
    obs_c, _ = fused.reset(seed=3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):  # many auto-resets
        action = torch.randint(0, 2, (64,), generator=generator)
        out_e, out_c = eager.step(action), fused.step(action)
        for a, b in zip(out_e[:4], out_c[:4]):
            assert torch.equal(a, b)
