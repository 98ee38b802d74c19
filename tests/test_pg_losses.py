"""Policy-gradient losses: known answers and gradients for the surrogate, KL penalty, value and entropy terms."""

import math

import pytest
import torch

from classic_rl.losses import (
    adaptive_kl_beta, clipped_surrogate_loss, entropy_loss, kl_estimate, kl_penalty_loss, policy_gradient_loss,
    value_loss,
)


def test_policy_gradient_loss_and_gradient():
    log_prob = torch.tensor([-1.0, -2.0], requires_grad=True)
    advantage = torch.tensor([2.0, -1.0])
    loss = policy_gradient_loss(log_prob, advantage)
    assert loss.item() == pytest.approx(-(2 * -1 + -1 * -2) / 2)  # = 0
    loss.backward()
    assert torch.allclose(log_prob.grad, torch.tensor([-1.0, 0.5]))  # -A / B


def surrogate(ratios, advantage, clip_low, clip_high):
    log_prob = torch.log(torch.tensor(ratios)).requires_grad_()
    loss, stats = clipped_surrogate_loss(log_prob, torch.zeros(len(ratios)), torch.tensor(advantage), clip_low,
                                         clip_high)
    loss.backward()
    return loss.item(), stats, log_prob.grad


def test_clipped_surrogate_known_answer_with_separate_ranges():
    # ratio range [0.8, 1.3]:   ρ A       clip(ρ) A   min
    #   ρ = 0.5, A = +1:        0.5       0.8         0.5   (unclipped term: gradient flows)
    #   ρ = 1.5, A = +1:        1.5       1.3         1.3   (clipped: no gradient)
    #   ρ = 1.1, A = -1:       -1.1      -1.1        -1.1   (inside the range)
    #   ρ = 0.7, A = -1:       -0.7      -0.8        -0.8   (clipped: no gradient)
    loss, stats, grad = surrogate([0.5, 1.5, 1.1, 0.7], [1.0, 1.0, -1.0, -1.0], 0.2, 0.3)
    assert loss == pytest.approx(-(0.5 + 1.3 - 1.1 - 0.8) / 4)
    assert stats["clip_fraction"].item() == pytest.approx(0.75)
    # d(-ρ A / 4)/d log ρ = -ρ A / 4 where the unclipped term is the minimum, else 0
    assert torch.allclose(grad, torch.tensor([-0.5 / 4, 0.0, 1.1 / 4, 0.0]))
    # a wider upper range lets ρ = 1.5 through: the two ranges are used separately
    loss_high, _, grad_high = surrogate([0.5, 1.5, 1.1, 0.7], [1.0, 1.0, -1.0, -1.0], 0.2, 0.6)
    assert loss_high == pytest.approx(-(0.5 + 1.5 - 1.1 - 0.8) / 4)
    assert grad_high[1].item() == pytest.approx(-1.5 / 4)
    # and a narrower lower range clips ρ = 0.7 earlier only when A < 0 (ρ = 0.5, A > 0 stays unclipped)
    loss_low, _, _ = surrogate([0.5, 1.5, 1.1, 0.7], [1.0, 1.0, -1.0, -1.0], 0.1, 0.3)
    assert loss_low == pytest.approx(-(0.5 + 1.3 - 1.1 - 0.9) / 4)


def test_clipped_surrogate_at_ratio_one_is_the_policy_gradient():
    log_prob = torch.tensor([-0.3, -1.2, -0.7], requires_grad=True)
    advantage = torch.tensor([1.0, -2.0, 0.5])
    loss, stats = clipped_surrogate_loss(log_prob, log_prob.detach(), advantage, 0.2, 0.2)
    loss.backward()
    assert loss.item() == pytest.approx(-advantage.mean().item())
    assert torch.allclose(log_prob.grad, -advantage / 3)  # same gradient as -mean(A log π)
    assert stats["approx_kl"].item() == 0.0 and stats["clip_fraction"].item() == 0.0


def test_kl_estimate_is_exact_in_expectation_under_old_policy():
    old, new = torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.2, 0.5, 0.3])
    per_action = kl_estimate(new.log() - old.log())
    assert (per_action >= 0).all()
    exact = (old * (old.log() - new.log())).sum()  # KL(old || new)
    assert (old * per_action).sum().item() == pytest.approx(exact.item(), rel=1e-5)
    assert kl_estimate(torch.tensor(math.log(2.0))).item() == pytest.approx(1.0 - math.log(2.0))


def test_kl_penalty_loss_known_answer():
    log_prob = torch.tensor([math.log(2.0), 0.0], requires_grad=True)
    loss, stats = kl_penalty_loss(log_prob, torch.zeros(2), torch.tensor([1.0, 2.0]), beta=0.5)
    kl = (1.0 - math.log(2.0)) / 2  # mean of (ρ - 1 - log ρ) over ρ = 2, 1
    assert stats["approx_kl"].item() == pytest.approx(kl)
    assert loss.item() == pytest.approx(-(2.0 * 1.0 + 1.0 * 2.0) / 2 + 0.5 * kl)
    loss.backward()
    # d/d log ρ: -ρ A / 2 + β (ρ - 1) / 2
    assert torch.allclose(log_prob.grad, torch.tensor([-1.0 + 0.25, -1.0]))


def test_adaptive_kl_beta():
    assert adaptive_kl_beta(1.0, kl=0.02, kl_target=0.01) == 2.0  # > 1.5 target
    assert adaptive_kl_beta(1.0, kl=0.005, kl_target=0.01) == 0.5  # < target / 1.5
    assert adaptive_kl_beta(1.0, kl=0.012, kl_target=0.01) == 1.0


def test_value_loss_plain_and_clipped():
    value = torch.tensor([2.4, 1.0], requires_grad=True)
    target, old = torch.tensor([2.0, 2.0]), torch.tensor([1.0, 1.2])
    assert value_loss(value, target).item() == pytest.approx(0.5 * (0.16 + 1.0) / 2)
    # clip 0.5: V clipped to [0.5, 1.5] and [0.7, 1.7] -> 1.5, 1.0; squared errors max(0.16, 0.25), max(1, 1)
    loss = value_loss(value, target, old, clip=0.5)
    assert loss.item() == pytest.approx(0.5 * (0.25 + 1.0) / 2)
    loss.backward()
    assert torch.allclose(value.grad, torch.tensor([0.0, (1.0 - 2.0) / 2]))  # the clipped branch has no gradient


def test_entropy_loss():
    assert entropy_loss(torch.tensor([0.5, 1.5])).item() == pytest.approx(-1.0)
