"""Deterministic actor (tanh scaled to the bounds) and the ensemble Q critic."""

import math

import gymnasium as gym
import numpy as np
import torch

from classic_rl.nets import MLP, DeterministicActor, EnsembleLinear, QCritic

OBS = gym.spaces.Box(-np.ones(3, np.float32), np.ones(3, np.float32))
ACT = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([3.0, 0.5], np.float32))


def test_actor_is_tanh_scaled_to_the_bounds():
    actor = DeterministicActor(OBS, ACT, [])
    with torch.no_grad():
        actor.body[0].weight.zero_()
        actor.body[0].bias.copy_(torch.tensor([math.atanh(0.5), math.atanh(-1.0 + 1e-7)]))
    a = actor(torch.randn(4, 3))
    # centre (1, 0.25) + half-range (2, 0.25) x tanh: (1 + 2 x 0.5, 0.25 - 0.25)
    assert torch.allclose(a, torch.tensor([[2.0, 0.0]]).expand(4, 2), atol=1e-5)


def test_actor_output_never_leaves_the_box():
    torch.manual_seed(0)
    actor = DeterministicActor(OBS, ACT, [32])
    with torch.no_grad():
        for p in actor.parameters():
            p.mul_(50)
    a = actor(torch.randn(5000, 3) * 10)
    low, high = torch.tensor([-1.0, 0.0]), torch.tensor([3.0, 0.5])
    assert ((a >= low) & (a <= high)).all()
    assert (a[:, 0] > 2.9).any() and (a[:, 0] < -0.9).any()  # saturated at both ends, still inside


def test_ensemble_linear_is_k_independent_linears():
    layer = EnsembleLinear(3, 5, 2)
    x = torch.randn(7, 5)
    out = layer(x)
    assert out.shape == (3, 7, 2)
    for k in range(3):
        assert torch.allclose(out[k], x @ layer.weight[k] + layer.bias[k], atol=1e-6)
    xs = torch.randn(3, 7, 5)  # one input per member
    assert torch.allclose(layer(xs)[1], xs[1] @ layer.weight[1] + layer.bias[1], atol=1e-6)


def test_q_critic_members_are_independent_and_q1_is_member_zero():
    torch.manual_seed(0)
    critic = QCritic(OBS, ACT, [16, 16], num_critics=2)
    obs, act = torch.randn(6, 3), torch.randn(6, 2)
    q = critic(obs, act)
    assert q.shape == (2, 6) and not torch.allclose(q[0], q[1])
    assert torch.allclose(critic.q1(obs, act), q[0], atol=1e-6)
    q[0].sum().backward()  # member 0's output has no gradient into member 1's weights
    for layer in (m for m in critic.body if isinstance(m, EnsembleLinear)):
        assert layer.weight.grad[1].abs().max() == 0 and layer.weight.grad[0].abs().max() > 0
    # and each member is the MLP it claims to be: Q_k(s, a) = MLP_k([s, a])
    ref = MLP(5, [16, 16], 1)
    with torch.no_grad():
        for lin, ens in zip((m for m in ref if isinstance(m, torch.nn.Linear)),
                            (m for m in critic.body if isinstance(m, EnsembleLinear))):
            lin.weight.copy_(ens.weight[1].T)
            lin.bias.copy_(ens.bias[1, 0])
    assert torch.allclose(ref(torch.cat([obs, act], 1)).squeeze(-1), q[1].detach(), atol=1e-5)
