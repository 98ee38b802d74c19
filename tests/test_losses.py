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
