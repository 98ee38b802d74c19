import torch

from classic_rl.losses import q_learning_loss, td_target


def test_td_target_bootstraps_unless_terminated():
    reward = torch.tensor([1.0, 1.0, 0.5])
    next_value = torch.tensor([10.0, 10.0, 2.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    y = td_target(reward, next_value, terminated, gamma=0.9)
    assert torch.allclose(y, torch.tensor([1.0 + 9.0, 1.0, 0.5 + 1.8]))


def test_q_learning_loss_is_huber_and_does_not_touch_inputs():
    q = torch.tensor([0.0, 0.0, 0.0], requires_grad=True)
    target = torch.tensor([0.5, 3.0, -2.0])
    before = target.clone()
    loss, stats = q_learning_loss(q, target)
    # Huber with delta 1: 0.5 * 0.5^2, 3 - 0.5, 2 - 0.5
    expected = (0.125 + 2.5 + 1.5) / 3
    assert abs(loss.item() - expected) < 1e-6
    assert torch.equal(target, before)
    assert torch.allclose(stats["td_error"], target)
    loss.backward()
    assert torch.allclose(q.grad, torch.tensor([-0.5, -1.0, 1.0]) / 3)


def test_weighted_loss():
    q = torch.zeros(2)
    loss, _ = q_learning_loss(q, torch.tensor([0.5, 0.5]), weights=torch.tensor([2.0, 0.0]))
    assert abs(loss.item() - 0.125) < 1e-6


# ------------------------------------------------------------------ DDPG / TD3


def test_clipped_double_q_target_takes_the_min_over_critics():
    from classic_rl.losses import clipped_double_q_target

    next_q = torch.tensor([[1.0, 5.0, 2.0], [3.0, 4.0, -1.0]])  # [K = 2, B = 3]
    y = clipped_double_q_target(torch.tensor([1.0, 1.0, 0.0]), next_q, torch.tensor([0.0, 1.0, 0.0]), 0.5)
    assert torch.allclose(y, torch.tensor([1.0 + 0.5 * 1.0, 1.0, 0.5 * -1.0]))
    y1 = clipped_double_q_target(torch.zeros(3), next_q[:1], torch.zeros(3), torch.tensor([1.0, 0.5, 0.25]))
    assert torch.allclose(y1, torch.tensor([1.0, 2.5, 0.5]))  # one critic: plain DDPG target, per-sample γ


def test_smoothed_target_action_clips_noise_then_action():
    from classic_rl.losses import smoothed_target_action

    mu = torch.tensor([[0.0], [1.8], [-1.0], [0.5]])
    noise = torch.tensor([[0.3], [0.3], [-5.0], [-0.1]])
    a = smoothed_target_action(mu, noise, torch.tensor([0.5]), torch.tensor([-2.0]), torch.tensor([2.0]))
    # noise clipped to ±0.5 first, then the action to [-2, 2]
    assert torch.allclose(a, torch.tensor([[0.3], [2.0], [-1.5], [0.4]]))
    assert torch.equal(noise, torch.tensor([[0.3], [0.3], [-5.0], [-0.1]]))  # inputs untouched


def test_critic_mse_loss_sums_critics_and_detaches_the_target():
    from classic_rl.losses import critic_mse_loss

    q = torch.tensor([[0.0, 2.0], [1.0, 1.0]], requires_grad=True)
    target = torch.tensor([1.0, 1.0], requires_grad=True)
    loss, stats = critic_mse_loss(q, target)
    assert abs(loss.item() - ((1 + 1) / 2 + 0)) < 1e-6 and stats["q_mean"].item() == 1.0
    loss.backward()
    assert torch.allclose(q.grad, torch.tensor([[-1.0, 1.0], [0.0, 0.0]])) and target.grad is None


def test_deterministic_policy_loss_gradient_is_minus_dq_da_dmu():
    from classic_rl.losses import deterministic_policy_loss

    theta = torch.tensor([0.5, -1.0], requires_grad=True)  # μ(s) = θ (one action per sample)
    q = -(theta - torch.tensor([2.0, 0.0])) ** 2  # Q(s, a) = -(a - a*)², maximised at a*
    deterministic_policy_loss(q).backward()
    # d/dθ of -mean(Q) = mean over B of 2 (θ - a*) / B per sample
    assert torch.allclose(theta.grad, torch.tensor([2 * (0.5 - 2.0), 2 * (-1.0 - 0.0)]) / 2)
