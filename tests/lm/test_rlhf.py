"""RLHF on the tiny GPT-2: a Bradley-Terry reward model trained from a pair file, GRPO against it
(env.reward_model) with the task's true reward logged beside it, offline DPO on a pair file, and
the one-line errors of their inputs."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

pytest.importorskip("transformers")

from classic_rl.config import UserError
from classic_rl.envs import make
from classic_rl.run import main

QUIET = {"tensorboard": False, "progress": False, "log_every_steps": 1}


def digit_pairs(path, prompts, seed=0, minimal=False):
    """Pairs preferring a digit string over letters (text-digits' reward is the digit fraction); with
    `minimal` the two completions differ in their last character only (digit vs letter)."""
    rng = random.Random(seed)
    rows = []
    for prompt in prompts:
        for _ in range(4):
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 6)))
            rejected = digits[:-1] + rng.choice("xyz") if minimal else "".join(
                rng.choice("abcdefgh ") for _ in range(rng.randint(3, 6)))
            rows.append({"prompt": prompt, "chosen": digits, "rejected": rejected})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def train_prompts():
    return [f"Write some digits ({i}):" for i in range(8)]


def eval_prompts():
    return [f"Write some digits ({i}):" for i in range(100, 104)]


def run(tmp_path, name, agent, steps, eval_every=None, **env):
    env = {"id": "text-digits", "num_envs": 16, "group_size": 8, "max_new_tokens": 8, "chat_template": False, **env}
    return main({"agent": agent, "env": env, "model": {"name": "tiny"}, "train": {"total_steps": steps},
                 "eval": {"every_steps": eval_every or steps, "episodes": 4, "at_start": True},
                 "logger": QUIET}, tmp_path / name)


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]


def test_sequence_score_is_the_value_head_on_the_last_real_token(tiny_lm):
    from classic_rl.lm.pairs import encode_pairs
    from classic_rl.lm.policy import LMPolicy

    tok = tiny_lm.tokenizer
    env = make("text-digits", num_envs=2, tokenizer=tok, max_new_tokens=4, chat_template=False)
    policy = LMPolicy(tiny_lm, env.text, value_head=True)
    torch.nn.init.normal_(policy.value_head.weight)
    rows = [{"prompt": "What is 2 + 3?", "chosen": "It is 5.", "rejected": "6"},
            {"prompt": "Hi", "chosen": "12", "rejected": "a longer wrong answer"}]
    batch = encode_pairs(tok, rows, chat_template=False)
    prompts = torch.cat([batch.prompts, batch.prompts])
    completions, mask = torch.cat([batch.chosen, batch.rejected]), torch.cat([batch.chosen_mask, batch.rejected_mask])
    fast = policy.sequence_score(prompts, completions, mask)
    for i, row in enumerate(rows * 2):  # a plain forward over [prompt; completion], no padding
        ids = torch.tensor([tok(row["prompt"])["input_ids"] + completions[i][mask[i]].tolist()])
        hidden = policy.model(ids, output_hidden_states=True).hidden_states[-1][0, -1]
        assert fast[i].item() == pytest.approx(policy.value_head(hidden).item(), abs=1e-4)


def test_reward_model_score_head_starts_as_trls(tiny_lm):
    """Default: weights ~ N(0, 0.02²) and a zero bias, as TRL's sequence-classification head, so the
    scores differ from the first step; head_init_std=0 keeps every pair a tie until the head moves."""
    from classic_rl.agents import make as make_agent
    from classic_rl.agents import make_config

    env = make("text-digits", num_envs=2, tokenizer=tiny_lm.tokenizer, max_new_tokens=4, chat_template=False)
    head = make_agent(make_config({"name": "reward_model"}), env.spec, lm=tiny_lm).policy.value_head
    assert abs(head.weight.std().item() - 0.02) < 0.005 and not head.bias.any()
    scores = make_agent(make_config({"name": "reward_model"}), env.spec, lm=tiny_lm).score(["Hi", "Hi"], ["12", "ab"])
    assert scores[0] != scores[1]
    zero = make_agent(make_config({"name": "reward_model", "head_init_std": 0.0}), env.spec, lm=tiny_lm)
    assert not zero.policy.value_head.weight.any()


def test_reward_model_learns_held_out_pairs_and_scores_a_grpo_run(tmp_path):
    pairs = digit_pairs(tmp_path / "pairs.jsonl", train_prompts())
    held = digit_pairs(tmp_path / "held.jsonl", eval_prompts(), seed=1)
    minimal = digit_pairs(tmp_path / "minimal.jsonl", eval_prompts(), seed=2, minimal=True)
    rm = {"name": "reward_model", "pairs": pairs, "eval_pairs": held, "minimal_pairs": minimal, "lr": 1e-3,
          "batch_size": 8, "head_init_std": 0.0}
    summary = run(tmp_path, "rm", rm, 480, eval_every=480)
    before, after = summary["evaluations"][0], summary["evaluations"][-1]
    assert before["return_mean"] == 0.0  # the zero-initialised head scores every pair a tie
    assert after["return_mean"] >= 0.9 and summary["eval_return_mean"] == after["return_mean"]
    assert "eval_minimal_pair_accuracy" in summary and summary["eval_episodes"] == 16  # held-out pairs scored
    assert summary["env_steps"] == 480 and summary["updates"] == 60  # a step is a training pair
    logged = metrics(tmp_path / "rm")
    first = next(m for m in logged if "train/loss" in m)
    assert first["train/loss"] == pytest.approx(math.log(2), abs=1e-6) and first["train/margin"] == 0.0
    assert {"train/accuracy", "train/reward_mean", "train/reward_std"} <= set(first)
    accuracy = [m["train/accuracy"] for m in logged if "train/accuracy" in m]
    assert sum(accuracy[-5:]) / 5 >= 0.8, accuracy[-5:]

    # mode=eval on the reward model scores the same held-out pairs
    result = main({"agent": rm, "env": {"id": "text-digits", "chat_template": False}, "model": {"name": "tiny"},
                   "mode": "eval", "checkpoint": str(tmp_path / "rm"), "logger": QUIET}, tmp_path / "rm_eval")
    assert result["eval_return_mean"] == pytest.approx(summary["eval_return_mean"])

    # GRPO against the learned reward: its score is the reward, the digit fraction is logged beside it
    # 3000 tokens: 7 of seeds 0-7 reach 1.0 (at 1500, about half do)
    summary = run(tmp_path, "grpo", {"name": "grpo", "lr": 3e-3}, 3000, reward_model=str(tmp_path / "rm"))
    logged = metrics(tmp_path / "grpo")
    both = [(m["train/reward_mean"], m["train/true_reward_mean"]) for m in logged
            if "train/true_reward_mean" in m and "train/reward_mean" in m]
    assert both and all(0.0 <= true <= 1.0 for _, true in both)
    assert any(abs(score - true) > 1e-3 for score, true in both)  # the reward is the model's score, not the task's
    before, after = summary["evaluations"][0]["return_mean"], summary["evaluations"][-1]["return_mean"]
    assert before < 0.2 and after > 0.6, (before, after)  # evaluation is the true digit fraction


def test_offline_dpo_on_a_pair_file_raises_the_digit_fraction(tmp_path):
    pairs = digit_pairs(tmp_path / "pairs.jsonl", train_prompts())
    summary = run(tmp_path, "dpo", {"name": "dpo", "pairs": pairs, "lr": 3e-3, "beta": 0.1, "batch_size": 8}, 320)
    logged = metrics(tmp_path / "dpo")
    first = next(m for m in logged if "train/loss" in m)
    assert first["train/loss"] == pytest.approx(math.log(2), abs=1e-5)  # π = π_ref at the first update
    assert summary["env_steps"] == 320 and summary["updates"] == 40 and summary["episodes"] == 0
    before, after = summary["evaluations"][0]["return_mean"], summary["evaluations"][-1]["return_mean"]
    assert before < 0.2 and after > 0.8, (before, after)


def test_offline_runs_resume_where_they_stopped(tmp_path):
    pairs = digit_pairs(tmp_path / "pairs.jsonl", train_prompts())
    rm = {"name": "reward_model", "pairs": pairs, "lr": 1e-3, "batch_size": 8}
    whole = run(tmp_path, "whole", rm, 64)
    run(tmp_path, "part", rm, 32)
    config = {"agent": rm, "env": {"id": "text-digits", "num_envs": 16, "group_size": 8, "max_new_tokens": 8,
                                   "chat_template": False},
              "model": {"name": "tiny"}, "train": {"total_steps": 64}, "resume": str(tmp_path / "part"),
              "eval": {"every_steps": 64, "episodes": 4, "at_start": True}, "logger": QUIET}
    resumed = main(config, tmp_path / "part")
    assert resumed["eval_return_mean"] == whole["eval_return_mean"]
    a, b = metrics(tmp_path / "whole"), metrics(tmp_path / "part")
    loss = lambda rows: [m["train/loss"] for m in rows if "train/loss" in m]  # noqa: E731
    assert loss(a) == pytest.approx(loss(b), abs=1e-6)


def test_bad_rlhf_input_is_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "a"}) + "\n")
    with pytest.raises(UserError, match="row 0 has no 'rejected' column"):
        run(tmp_path, "a", {"name": "reward_model", "pairs": str(bad)}, 16)
    with pytest.raises(UserError, match="pass agent.pairs=FILE.jsonl"):
        run(tmp_path, "b", {"name": "reward_model"}, 16)
    not_rm = tmp_path / "not_rm"
    not_rm.mkdir()
    with pytest.raises(UserError, match="is not a reward-model run"):
        run(tmp_path, "c", {"name": "grpo"}, 16, reward_model=str(not_rm))
    run(tmp_path, "grpo_run", {"name": "grpo"}, 16)
    with pytest.raises(UserError, match="is an agent=grpo run, not a reward model"):
        run(tmp_path, "d", {"name": "grpo"}, 16, reward_model=str(tmp_path / "grpo_run"))
    with pytest.raises(UserError, match="env=CartPole-v1 is not a text env"):
        main({"agent": {"name": "ppo"}, "env": {"id": "CartPole-v1", "reward_model": str(not_rm)},
              "logger": QUIET}, tmp_path / "e")
    with pytest.raises(UserError, match="agent=reward_model cannot run on env=CartPole-v1"):
        main({"agent": {"name": "reward_model", "pairs": digit_pairs(tmp_path / "good.jsonl", train_prompts())},
              "env": {"id": "CartPole-v1"}, "logger": QUIET},
             tmp_path / "f")
    with pytest.raises(UserError, match="env=CartPole-v1 is not a text env: leave env.missing_eos_penalty unset"):
        main({"agent": {"name": "ppo"}, "env": {"id": "CartPole-v1", "missing_eos_penalty": 1.0},
              "logger": QUIET}, tmp_path / "g")
    assert not any((tmp_path / name).exists() for name in "abcdefg")  # nothing written for a refused run


def test_missing_eos_penalty_lowers_the_training_reward_of_cut_off_completions_only(tiny_lm):
    tok = tiny_lm.tokenizer
    score = lambda prompts, completions, **_: [1.0] * len(completions)  # noqa: E731  a learned reward's signature
    rounds = {}
    for penalty in (None, 0.25):
        env = make("text-digits", num_envs=4, tokenizer=tok, max_new_tokens=3, chat_template=False,
                   reward_model=score, missing_eos_penalty=penalty)
        env.reset(seed=0)
        # rows 0 and 2 end with EOS at their 2nd token; rows 1 and 3 run to max_new_tokens
        plan = [[5, 5, 5, 5], [tok.eos_token_id, 6, tok.eos_token_id, 6], [7, 7, 7, 7]]
        for actions in plan:  # a finished row's later tokens are ignored
            _, _, _, _, info = env.step(torch.tensor(actions))
        rounds[penalty] = info
    assert rounds[None]["round_reward"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert rounds[0.25]["round_reward"].tolist() == [1.0, 0.75, 1.0, 0.75]
    assert torch.equal(rounds[0.25]["true_reward"], rounds[None]["true_reward"])  # the task's reward is not penalised
