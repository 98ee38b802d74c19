"""Invariants of GRPO's named choices (losses.py): advantages, aggregation, GSPO ratio, dynamic sampling."""

import math

import pytest
import torch

from classic_rl.losses import (
    aggregate_loss, clipped_surrogate, group_advantages, informative_groups, kl_estimate, kl_penalized_reward,
    sequence_log_ratio,
)


def test_group_advantages_are_standardised_within_each_group():
    returns = torch.tensor([1.0, 0.0, 0.0, 1.0, 3.0, 5.0, 7.0, 9.0])
    adv = group_advantages(returns, 4, "group", eps=0.0)
    grouped = adv.reshape(2, 4)
    assert torch.allclose(grouped.mean(1), torch.zeros(2), atol=1e-6)
    assert torch.allclose(grouped.std(1), torch.ones(2), atol=1e-6)
    # known answer for the first group: mean 0.5, sample std sqrt(1/3)
    assert adv[0].item() == pytest.approx(0.5 / math.sqrt(1 / 3), rel=1e-5)


def test_dr_grpo_only_centres_and_batch_scaling_uses_one_std():
    returns = torch.tensor([1.0, 0.0, 3.0, 7.0])
    assert torch.equal(group_advantages(returns, 2, "none"), torch.tensor([0.5, -0.5, -2.0, 2.0]))
    batch = group_advantages(returns, 2, "batch", eps=0.0)
    assert torch.allclose(batch, torch.tensor([0.5, -0.5, -2.0, 2.0]) / returns.std())


def test_equal_rewards_give_zero_advantage_and_are_dropped_by_dynamic_sampling():
    returns = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    assert torch.equal(group_advantages(returns, 3)[:3], torch.zeros(3))
    assert informative_groups(returns, 3).tolist() == [False] * 3 + [True] * 3


def test_aggregation_modes_weigh_tokens_or_sequences():
    per_token = torch.tensor([[1.0, 4.0], [1.0, 0.0], [1.0, 0.0]])  # [T=3, N=2]
    mask = torch.tensor([[True, True], [True, False], [True, False]])  # lengths 3 and 1
    assert aggregate_loss(per_token, mask, "token_mean").item() == pytest.approx(7 / 4)
    assert aggregate_loss(per_token, mask, "seq_mean_token_mean").item() == pytest.approx((1 + 4) / 2)
    assert aggregate_loss(per_token, mask, "seq_mean_token_sum").item() == pytest.approx((3 + 4) / 2)
    masked_out = per_token.clone()
    masked_out[1:, 1] = 100.0  # values outside the mask never count
    for mode in ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum"):
        assert aggregate_loss(masked_out, mask, mode) == aggregate_loss(per_token, mask, mode)


def test_sequence_log_ratio_is_the_length_normalised_mean():
    log_ratio = torch.tensor([[0.3, 1.0], [0.1, 9.0]])
    mask = torch.tensor([[True, True], [True, False]])
    out = sequence_log_ratio(log_ratio, mask)
    assert torch.allclose(out, torch.tensor([[0.2, 1.0], [0.2, 1.0]]))


def test_clip_higher_lets_ratios_rise_further_for_positive_advantages():
    log_ratio = torch.log(torch.tensor([1.25]))
    advantage = torch.ones(1)
    symmetric = -clipped_surrogate(log_ratio, advantage, 0.2, 0.2)
    higher = -clipped_surrogate(log_ratio, advantage, 0.2, 0.28)
    assert symmetric.item() == pytest.approx(1.2) and higher.item() == pytest.approx(1.25)
    # negative advantages are clipped at 1 - ε_low whatever ε_high is
    low = -clipped_surrogate(torch.log(torch.tensor([0.5])), -advantage, 0.2, 0.28)
    assert low.item() == pytest.approx(-0.8)


def test_k3_matches_the_seeds_formula_and_is_non_negative():
    log_prob, ref_log_prob = torch.tensor([-1.0, -2.0, -0.5]), torch.tensor([-1.5, -2.0, -0.1])
    ratio = torch.exp(ref_log_prob - log_prob)  # π_ref / π (seeds eq. 1.32)
    expected = ratio - torch.log(ratio) - 1
    assert torch.allclose(kl_estimate(ref_log_prob - log_prob), expected)
    assert (expected >= 0).all() and expected[1] == 0


def test_kl_penalized_reward_subtracts_beta_log_ratio():
    reward = torch.tensor([[0.0], [1.0]])
    out = kl_penalized_reward(reward, torch.tensor([[-1.0], [-1.0]]), torch.tensor([[-2.0], [-1.0]]), 0.5)
    assert torch.allclose(out, torch.tensor([[-0.5], [1.0]]))


def test_parts_with_the_batch_denominator_sum_to_the_batch_loss():
    from classic_rl.losses import aggregate_denominator

    generator = torch.Generator().manual_seed(0)
    per_token = torch.randn(5, 6, generator=generator)
    mask = torch.rand(5, 6, generator=generator) > 0.3
    mask[:, 2] = False  # a sequence without tokens
    for mode in ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum"):
        d = aggregate_denominator(mask, mode)
        parts = sum(aggregate_loss(per_token[:, s], mask[:, s], mode, d) for s in (slice(0, 2), slice(2, 5), slice(5, 6)))
        assert torch.allclose(parts, aggregate_loss(per_token, mask, mode))
