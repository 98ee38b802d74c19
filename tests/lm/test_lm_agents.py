"""The same GRPO and PPO classes fine-tune a (tiny) language model; errors name the fix."""

import pytest

pytest.importorskip("transformers")

import pytest
import torch

from classic_rl.config import ConfigError, UserError
from classic_rl.run import main
from tests.conftest import collect_round

QUIET = {"logger": {"tensorboard": False, "progress": False}}


def _run(tmp_path, agent, steps, name="run", **env):
    env = {"id": "text-digits", "num_envs": 16, "group_size": 8, "max_new_tokens": 8, "chat_template": False, **env}
    config = {"agent": agent, "env": env, "model": {"name": "tiny"}, "train": {"total_steps": steps},
              "eval": {"every_steps": steps, "episodes": 4, "at_start": True}, **QUIET}
    return main(config, tmp_path / name)


@pytest.mark.parametrize("variant", [
    {},  # GRPO: group std, per-sequence mean of token means
    {"scale_rewards": "none", "loss_agg": "seq_mean_token_sum"},  # Dr. GRPO
    {"importance_sampling": "sequence", "loss_agg": "token_mean", "epsilon_high": 0.28,
     "num_iterations": 2, "minibatches": 2, "beta": 0.01, "dynamic_sampling": True},  # GSPO + DAPO + KL
])
def test_grpo_raises_the_digit_fraction_from_near_zero(tmp_path, variant):
    summary = _run(tmp_path, {"name": "grpo", "lr": 3e-3, **variant}, 2000)
    before, after = summary["evaluations"][0]["return_mean"], summary["evaluations"][-1]["return_mean"]
    assert before < 0.2 and after > 0.8, (before, after)
    assert summary["updates"] >= 10


def test_ppo_with_a_value_head_and_kl_reward_raises_the_digit_fraction(tmp_path):
    agent = {"name": "ppo", "lr": 1e-3, "gamma": 1.0, "epochs": 2, "minibatches": 2, "kl_reward_coef": 0.01}
    summary = _run(tmp_path, agent, 3000, group_size=1)
    before, after = summary["evaluations"][0]["return_mean"], summary["evaluations"][-1]["return_mean"]
    assert before < 0.2 and after > 0.8, (before, after)


def test_lora_trains_only_adapters_and_the_reference_is_the_base_model(tmp_path):
    from classic_rl.config import LoraConfig, ModelConfig
    from classic_rl.envs import make
    from classic_rl.lm.model import load
    from classic_rl.lm.policy import LMPolicy

    lm = load(ModelConfig(name="tiny", lora=LoraConfig(r=4, target_modules=["c_attn"])), "cpu")
    env = make("text-digits", num_envs=2, tokenizer=lm.tokenizer, max_new_tokens=3, chat_template=False)
    policy = LMPolicy(lm, env.text, reference=True)
    names = [n for n, p in policy.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names) and policy.reference is None
    obs, _ = env.reset()
    actions, observations = [], []
    for _ in range(3):
        logits, _ = policy.act_step(obs)
        a = logits.argmax(-1)
        observations.append(obs.clone())
        actions.append(a)
        obs, *_ = env.step(a)
    obs_t, act_t = torch.stack(observations), torch.stack(actions)
    with torch.no_grad():
        for n, p in policy.model.named_parameters():
            if "lora_B" in n:
                p.add_(0.5)
    assert not torch.allclose(policy.evaluate(obs_t, act_t)[0], policy.reference_log_prob(obs_t, act_t), atol=1e-4)


def test_resume_continues_a_grpo_run(tmp_path):
    first = _run(tmp_path, {"name": "grpo", "lr": 3e-3}, 300, name="a")
    config = {"agent": {"name": "grpo", "lr": 3e-3},
              "env": {"id": "text-digits", "num_envs": 16, "group_size": 8, "max_new_tokens": 8, "chat_template": False},
              "model": {"name": "tiny"}, "train": {"total_steps": 600}, "eval": {"every_steps": 600, "episodes": 4},
              "resume": str(tmp_path / "a"), **QUIET}
    resumed = main(config, tmp_path / "b")
    assert resumed["env_steps"] >= 600 > first["env_steps"] >= 300


def test_user_mistakes_are_one_line_errors(tmp_path):
    base = {"env": {"id": "text-arith"}, **QUIET}
    with pytest.raises(ConfigError, match="needs a language model; pass model="):
        main({**base, "agent": {"name": "grpo"}}, tmp_path / "x")
    with pytest.raises(UserError, match="agent=dqn cannot train a language model.*agents that can: ppo, grpo"):
        main({**base, "agent": {"name": "dqn"}, "model": {"name": "tiny"}}, tmp_path / "y")
    with pytest.raises(UserError, match="does not exist"):
        main({**base, "agent": {"name": "grpo"}, "model": {"name": "path", "path": str(tmp_path / "nope")}},
             tmp_path / "z")
    with pytest.raises(UserError, match="env.group_size >= 2"):
        main({"agent": {"name": "grpo"}, "env": {"id": "CartPole-v1"}, **QUIET}, tmp_path / "w")


def _first_update_gradient(make_agent, group_size):
    """Gradient of an agent's first update on one round of text-digits with the tiny LM (seed 0)."""
    from classic_rl.config import ModelConfig
    from classic_rl.envs import make
    from classic_rl.lm.model import load

    lm = load(ModelConfig(name="tiny"), "cpu", seed=0)
    env = make("text-digits", num_envs=8, group_size=group_size, tokenizer=lm.tokenizer, max_new_tokens=5,
               chat_template=False, seed=0)
    agent = make_agent(env.spec, lm)
    collect_round(agent, env)
    seen = []
    agent.optimizer.step = lambda: seen.append(torch.cat([p.grad.flatten() for p in agent.params]))
    agent.update()
    return seen[0]


def test_micro_batches_give_the_same_update_as_the_whole_batch():
    from classic_rl.agents.grpo import GRPO, GRPOConfig

    params = [_first_update_gradient(
        lambda spec, lm, m=micro: GRPO(GRPOConfig(lr=1e-2, micro_batch_size=m, loss_agg="token_mean"), spec, seed=2,
                                       lm=lm), group_size=4) for micro in (None, 3)]
    assert params[0].abs().max() > 1e-3  # seed 2: a group whose rewards differ (seeds 0 and 1 have none)
    assert torch.allclose(params[0], params[1], atol=1e-5, rtol=1e-4)


def test_ppo_micro_batches_give_the_same_gradient_as_the_whole_minibatch():
    from classic_rl.agents.ppo import PPO, PPOConfig

    grads = [_first_update_gradient(
        lambda spec, lm, m=micro: PPO(PPOConfig(lr=1e-2, epochs=1, minibatches=1, gamma=1.0, micro_batch_size=m,
                                                kl_reward_coef=0.1), spec, seed=0, lm=lm), group_size=1)
        for micro in (None, 3)]
    assert grads[0].abs().max() > 1e-3
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-4)
