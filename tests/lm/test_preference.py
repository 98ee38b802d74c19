"""Preference optimisation building blocks: the DPO / IPO / hinge and Bradley-Terry losses (known
answers), TRL-format pair files, and one-pass sequence log-probabilities against a plain forward."""

from __future__ import annotations

import json
import math

import pytest
import torch

from classic_rl.config import UserError
from classic_rl.losses import bradley_terry_loss, dpo_loss


def test_dpo_losses_known_answers():
    lp = torch.tensor([-3.0, -5.0])
    loss, stats = dpo_loss(lp, lp - 1, lp, lp - 1, beta=0.1)  # π = π_ref: h = 0
    assert loss.item() == pytest.approx(math.log(2)) and stats["rewards/margins"].item() == 0.0
    assert stats["rewards/accuracies"].item() == 0.0
    # h = (−1 − (−3)) − (−4 − (−4)) = 2 on both pairs, β = 0.5: −log σ(1)
    chosen, rejected = torch.tensor([-1.0, -1.0]), torch.tensor([-4.0, -4.0])
    ref_c, ref_r = torch.tensor([-3.0, -3.0]), torch.tensor([-4.0, -4.0])
    loss, stats = dpo_loss(chosen, rejected, ref_c, ref_r, beta=0.5)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1.0)))
    assert stats["rewards/chosen"].item() == pytest.approx(1.0) and stats["rewards/rejected"].item() == 0.0
    assert stats["rewards/margins"].item() == pytest.approx(1.0) and stats["rewards/accuracies"].item() == 1.0
    assert dpo_loss(chosen, rejected, ref_c, ref_r, beta=0.5, loss_type="hinge")[0].item() == 0.0  # β h = 1
    assert dpo_loss(chosen, rejected, ref_c, ref_r, beta=0.25, loss_type="hinge")[0].item() == pytest.approx(0.5)


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_ipo_optimum_margin_is_one_over_two_beta(beta):
    h = torch.tensor([0.0], requires_grad=True)
    zero = torch.zeros(1)
    loss, _ = dpo_loss(h, zero, zero, zero, beta=beta, loss_type="ipo")
    assert loss.item() == pytest.approx(1 / (4 * beta ** 2))
    h = torch.tensor([1 / (2 * beta)], requires_grad=True)
    loss, _ = dpo_loss(h, zero, zero, zero, beta=beta, loss_type="ipo")
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-12) and h.grad.item() == pytest.approx(0.0, abs=1e-9)


def test_bradley_terry_loss_known_answers():
    r = torch.tensor([0.3, -1.2])
    loss, stats = bradley_terry_loss(r, r)
    assert loss.item() == pytest.approx(math.log(2)) and stats["accuracy"].item() == 0.0
    loss, stats = bradley_terry_loss(torch.tensor([2.0, 1.0]), torch.tensor([0.0, 1.5]))
    expected = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(0.5))) / 2
    assert loss.item() == pytest.approx(expected) and stats["accuracy"].item() == 0.5
    assert stats["margin"].item() == pytest.approx(0.75)
    with_margin, _ = bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0]), margin=torch.tensor([2.0]))
    assert with_margin.item() == pytest.approx(math.log(2))  # r_w - r_l - m = 0
    centred, _ = bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0]), center_coef=0.01)
    assert centred.item() == pytest.approx(math.log1p(math.exp(-2.0)) + 0.01 * 4.0)


def test_pair_files_in_trl_format_and_bad_rows(tmp_path):
    from classic_rl.lm.pairs import read_pairs

    rows = [{"prompt": "What is 2 + 3?", "chosen": "5", "rejected": "6", "source": "samples"}]
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n")
    assert read_pairs(str(path)) == rows
    with pytest.raises(UserError, match="row 0 has no 'rejected' column"):
        read_pairs([{"prompt": "p", "chosen": "a"}])
    with pytest.raises(UserError, match="row 1 has an empty 'chosen' completion"):
        read_pairs([{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "p", "chosen": " ", "rejected": "b"}])
    with pytest.raises(UserError, match="does not exist"):
        read_pairs(str(tmp_path / "missing.jsonl"))


def test_one_pass_sequence_log_probs_equal_a_plain_forward_per_completion(tiny_lm):
    pytest.importorskip("transformers")
    from classic_rl.envs import make
    from classic_rl.lm.pairs import encode_pairs
    from classic_rl.lm.policy import LMPolicy

    tok = tiny_lm.tokenizer
    env = make("text-digits", num_envs=2, tokenizer=tok, max_new_tokens=4, chat_template=False)
    policy = LMPolicy(tiny_lm, env.text, reference=True)
    rows = [{"prompt": "What is 2 + 3?", "chosen": "It is 5.", "rejected": "6"},
            {"prompt": "Hi", "chosen": "12", "rejected": "a longer wrong answer"}]
    batch = encode_pairs(tok, rows, chat_template=False)
    assert batch.chosen[0, batch.chosen_mask[0].sum() - 1] == tok.eos_token_id  # EOS ends every completion
    prompts = torch.cat([batch.prompts, batch.prompts])
    completions = torch.cat([batch.chosen, batch.rejected])
    mask = torch.cat([batch.chosen_mask, batch.rejected_mask])
    fast = policy.sequence_log_prob(prompts, completions, mask)
    fast.sum().backward()
    fast_grad = [p.grad.clone() for p in policy.model.parameters()]
    policy.model.zero_grad()
    slow = []
    for i, row in enumerate(rows * 2):  # chosen of both, then rejected of both
        prompt = tok(row["prompt"])["input_ids"]
        completion = completions[i][mask[i]].tolist()
        ids = torch.tensor([prompt + completion])
        logits = policy.model(ids).logits[0, len(prompt) - 1: -1].float()
        logits[:, tok.pad_token_id] = float("-inf")  # the policy never samples pad (pad != EOS here)
        log_probs = torch.log_softmax(logits, dim=-1)
        slow.append(log_probs.gather(-1, torch.tensor(completion)[:, None]).sum())
    slow = torch.stack(slow)
    slow.sum().backward()
    assert torch.allclose(fast, slow, atol=1e-4)
    for a, p in zip(fast_grad, policy.model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-4)
    # at the start π = π_ref: the DPO loss of these pairs is ln 2
    with torch.no_grad():
        ref = policy.sequence_log_prob(prompts, completions, mask, reference=True)
    loss, _ = dpo_loss(fast[:2].detach(), fast[2:].detach(), ref[:2], ref[2:], beta=0.1)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-5)


def test_best_and_worst_pairs_each_group_and_drops_ties():
    from classic_rl.agents.dpo import best_and_worst

    returns = torch.tensor([0.0, 1.0, 0.5, 0.2,   0.3, 0.3, 0.3, 0.3,   1.0, 0.0, 1.0, 0.0])
    chosen, rejected = best_and_worst(returns, 4)
    assert chosen.tolist() == [1, 8] and rejected.tolist() == [0, 9]  # group 2 tied; the first of equals


def _digits_run(tmp_path, agent, steps, **env):
    from classic_rl.run import main

    env = {"id": "text-digits", "num_envs": 16, "group_size": 8, "max_new_tokens": 8, "chat_template": False, **env}
    return main({"agent": agent, "env": env, "model": {"name": "tiny"}, "train": {"total_steps": steps},
                 "eval": {"every_steps": steps, "episodes": 4, "at_start": True},
                 "logger": {"tensorboard": False, "progress": False, "log_every_steps": 1}}, tmp_path / "run")


def test_online_dpo_starts_at_ln2_and_raises_the_digit_fraction(tmp_path):
    pytest.importorskip("transformers")
    summary = _digits_run(tmp_path, {"name": "dpo", "lr": 3e-3, "beta": 0.1}, 2000)
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    first = next(m for m in metrics if "train/loss" in m)
    assert first["train/loss"] == pytest.approx(math.log(2), abs=1e-5)  # π = π_ref at the first update
    assert first["train/rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    before, after = summary["evaluations"][0]["return_mean"], summary["evaluations"][-1]["return_mean"]
    assert before < 0.2 and after > 0.8, (before, after)


def test_dpo_refuses_envs_it_cannot_pair(tmp_path):
    from classic_rl.run import main

    with pytest.raises(UserError, match="agent=dpo cannot run on env=CartPole-v1"):
        main({"agent": {"name": "dpo"}, "env": {"id": "CartPole-v1"}, "logger": {"progress": False}}, tmp_path / "a")
    with pytest.raises(UserError, match="env.group_size >= 2"):
        _digits_run(tmp_path, {"name": "dpo"}, 64, group_size=1)
