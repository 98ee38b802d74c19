"""Categorical and Gaussian policy heads, action bounds, and the value critic."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from classic_rl.nets import Actor, Categorical, Critic, DiagGaussian

BOX = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)


def test_categorical_matches_torch_distribution():
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]])
    ours, ref = Categorical(logits), torch.distributions.Categorical(logits=logits)
    action = torch.tensor([2, 1])
    assert torch.allclose(ours.log_prob(action), ref.log_prob(action))
    assert torch.allclose(ours.entropy(), ref.entropy())
    assert ours.mode().tolist() == [2, 0]
    # uniform logits: log π = -log 3, entropy log 3
    uniform = Categorical(torch.zeros(1, 3))
    assert uniform.log_prob(torch.tensor([1])).item() == pytest.approx(-math.log(3))
    assert uniform.entropy().item() == pytest.approx(math.log(3))


def test_categorical_samples_follow_probabilities_and_the_generator():
    dist = Categorical(torch.log(torch.tensor([[0.1, 0.6, 0.3]])).expand(20000, 3))
    a = dist.sample(torch.Generator().manual_seed(0))
    freq = torch.bincount(a, minlength=3).float() / a.numel()
    assert torch.allclose(freq, torch.tensor([0.1, 0.6, 0.3]), atol=0.015)
    assert torch.equal(a, dist.sample(torch.Generator().manual_seed(0)))  # seeded: reproducible


def test_inverse_cdf_samples_follow_probabilities_and_skip_impossible_actions():
    probs = torch.tensor([0.0, 0.1, 0.0, 0.6, 0.3, 0.0])  # impossible first, middle and last actions
    dist = Categorical(torch.log(probs).expand(40000, 6))
    a = dist.sample_by_cdf(torch.Generator().manual_seed(0))
    freq = torch.bincount(a, minlength=6).float() / a.numel()
    assert torch.allclose(freq, probs, atol=0.01)
    assert freq[[0, 2, 5]].sum() == 0
    assert torch.equal(a, dist.sample_by_cdf(torch.Generator().manual_seed(0)))  # seeded: reproducible
    # a one-hot row always gives its action, even at the top of the uniform's range
    assert Categorical(torch.log(torch.tensor([[0.0, 0.0, 1.0, 0.0]]))).sample_by_cdf().item() == 2


def test_gaussian_log_prob_known_answer_and_entropy():
    dist = DiagGaussian(torch.zeros(1, 2), torch.zeros(2))
    # N(0, 1) per dimension at a = (1, 0): -0.5 * 1 - 0.5 log 2π, plus -0.5 log 2π
    assert dist.log_prob(torch.tensor([[1.0, 0.0]])).item() == pytest.approx(-0.5 - math.log(2 * math.pi))
    assert dist.entropy().item() == pytest.approx(math.log(2 * math.pi * math.e))
    mean, log_std = torch.tensor([[0.5, -1.0]]), torch.tensor([math.log(2.0), math.log(0.5)])
    ours = DiagGaussian(mean, log_std)
    ref = torch.distributions.Normal(mean, log_std.exp())
    a = torch.tensor([[1.5, -2.0]])
    assert torch.allclose(ours.log_prob(a), ref.log_prob(a).sum(-1))
    assert torch.allclose(ours.entropy(), ref.entropy().sum(-1))
    samples = DiagGaussian(mean.expand(20000, 2), log_std).sample(torch.Generator().manual_seed(0))
    assert torch.allclose(samples.mean(0), mean[0], atol=0.05)
    assert torch.allclose(samples.std(0), log_std.exp(), atol=0.05)


def test_gaussian_actor_samples_unbounded_and_clips_what_the_env_gets():
    actor = Actor(BOX, gym.spaces.Box(-2.0, 2.0, shape=(1,), dtype=np.float32), [8], log_std_init=math.log(3.0))
    assert actor.log_std.requires_grad and actor.log_std.shape == (1,)  # state-independent, learned
    obs = torch.zeros(5000, 3)
    dist = actor(obs)
    action = dist.sample(torch.Generator().manual_seed(0))  # [B, 1], σ = 3: often outside [-2, 2]
    env_action = actor.env_action(action)
    assert (action.abs() > 2).any()
    assert env_action.min() >= -2 and env_action.max() <= 2
    inside = action.abs() <= 2
    assert torch.equal(env_action[inside], action[inside])
    # the log-prob is that of the unclipped sample under the Gaussian
    ref = torch.distributions.Normal(dist.mean, torch.full_like(dist.mean, 3.0))
    assert torch.allclose(dist.log_prob(action), ref.log_prob(action).sum(-1), atol=1e-5)
    assert torch.equal(actor.env_action(dist.mode()), dist.mean.clamp(-2, 2))


def test_initial_policy_is_near_uniform_and_critic_shapes():
    torch.manual_seed(0)
    actor = Actor(BOX, gym.spaces.Discrete(4), [64, 64])
    probs = actor(torch.randn(32, 3)).log_probs.exp()
    assert torch.allclose(probs, torch.full_like(probs, 0.25), atol=0.02)  # last layer at gain 0.01
    critic = Critic(BOX, [16])
    assert critic(torch.randn(7, 3)).shape == (7,)
    one_hot = Actor(gym.spaces.Discrete(5), gym.spaces.Discrete(2), [8])  # Discrete observations
    assert one_hot(torch.tensor([0, 4])).log_prob(torch.tensor([1, 0])).shape == (2,)


def test_actor_rejects_other_action_spaces():
    with pytest.raises(TypeError, match="Discrete or Box"):
        Actor(BOX, gym.spaces.MultiBinary(3), [8])
