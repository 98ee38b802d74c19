"""Dueling aggregation and noisy layers."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from classic_rl.nets import DuelingHead, NoisyLinear, QNetwork, noise_scale, reset_noise


def test_dueling_head_is_value_plus_centred_advantage():
    head = DuelingHead(3, 4)
    x = torch.randn(5, 3)
    v, a = head.value(x), head.advantage(x)
    q = head(x)
    assert torch.allclose(q, v + a - a.mean(dim=1, keepdim=True))
    assert torch.allclose(q.mean(dim=1, keepdim=True), v, atol=1e-6)  # mean over actions recovers V


def test_noisy_linear_noise_on_in_training_and_off_in_eval():
    torch.manual_seed(0)
    layer = NoisyLinear(6, 3, sigma0=0.5)
    assert torch.allclose(layer.weight_sigma, torch.full((3, 6), 0.5 / 6**0.5))
    x = torch.randn(4, 6)
    mean_out = torch.nn.functional.linear(x, layer.weight_mu, layer.bias_mu)
    g = torch.Generator().manual_seed(1)
    layer.reset_noise(g)
    noisy_a = layer(x)
    assert not torch.allclose(noisy_a, mean_out)
    assert torch.equal(layer(x), noisy_a)  # the same noise until the next reset
    eps_w = torch.outer(layer.eps_out, layer.eps_in)
    expected = x @ (layer.weight_mu + layer.weight_sigma * eps_w).T + layer.bias_mu + layer.bias_sigma * layer.eps_out
    assert torch.allclose(noisy_a, expected, atol=1e-6)
    layer.reset_noise(g)
    assert not torch.allclose(layer(x), noisy_a)
    layer.eval()
    assert torch.allclose(layer(x), mean_out)
    # factorized: f(x) = sign(x) sqrt|x| applied to standard normals -> E[f(x)^2] = E|x| = sqrt(2/pi)
    big = NoisyLinear(20000, 1)
    big.reset_noise(torch.Generator().manual_seed(2))
    assert abs(big.eps_in.pow(2).mean().item() - (2 / torch.pi) ** 0.5) < 0.02


def test_noisy_dueling_q_network_gets_noise_everywhere():
    net = QNetwork(gym.spaces.Box(-1, 1, (4,)), 2, [8, 8], dueling=True, noisy_sigma0=0.5)
    noisy = [m for m in net.modules() if isinstance(m, NoisyLinear)]
    assert len(noisy) == 4  # two hidden layers, value and advantage streams
    reset_noise(net, torch.Generator().manual_seed(0))
    assert all(m.eps_in.abs().sum() > 0 for m in noisy)


def test_noisy_layers_makes_only_the_last_layers_noisy():
    space = gym.spaces.Box(-1, 1, (4,))
    kinds = lambda net: [type(m).__name__ for m in net.modules() if isinstance(m, (torch.nn.Linear, NoisyLinear))]  # noqa: E731
    plain = QNetwork(space, 2, [8, 8], noisy_sigma0=0.5, noisy_layers=2)
    assert kinds(plain) == ["Linear", "NoisyLinear", "NoisyLinear"]  # deterministic torso, noisy head
    dueling = QNetwork(space, 2, [8, 8], dueling=True, noisy_sigma0=0.5, noisy_layers=1)
    assert kinds(dueling) == ["Linear", "Linear", "NoisyLinear", "NoisyLinear"]  # both streams are the last layer
    assert kinds(QNetwork(space, 2, [8, 8], noisy_sigma0=0.5)) == ["NoisyLinear"] * 3  # None: all
    assert kinds(QNetwork(space, 2, [8, 8], noisy_layers=2)) == ["Linear"] * 3  # no σ0: not noisy at all
    with pytest.raises(ValueError, match="noisy_layers"):
        QNetwork(space, 2, [8, 8], noisy_sigma0=0.5, noisy_layers=4)


def test_noisy_linear_initialisation_follows_the_factorized_recipe():
    # μ ~ U(-1/sqrt(p), 1/sqrt(p)), σ = σ0/sqrt(p) for weights and biases (Fortunato et al. 2018, §3.2)
    torch.manual_seed(0)
    p, sigma0 = 400, 0.3
    layer = NoisyLinear(p, 300, sigma0=sigma0)
    bound = 1 / p**0.5
    for mu in (layer.weight_mu, layer.bias_mu):
        assert mu.abs().max() <= bound
        assert abs(mu.std().item() - bound / 3**0.5) < 0.05 * bound  # the std of a uniform on [-b, b]
    assert torch.allclose(layer.weight_sigma, torch.full((300, p), sigma0 * bound))
    assert torch.allclose(layer.bias_sigma, torch.full((300,), sigma0 * bound))


def test_noise_scale_is_sigma0_at_init_and_follows_the_learned_sigma():
    space = gym.spaces.Box(-1, 1, (4,))
    net = QNetwork(space, 2, [16, 8], noisy_sigma0=0.4, noisy_layers=2)  # fan-ins 16 and 8
    assert noise_scale(net) == pytest.approx(0.4)
    last = [m for m in net.modules() if isinstance(m, NoisyLinear)][-1]
    with torch.no_grad():
        last.weight_sigma.mul_(0.5)  # one layer's σ halved: the mean over the two layers is 0.75 σ0
    assert noise_scale(net) == pytest.approx(0.3)
    assert noise_scale(QNetwork(space, 2, [16, 8])) == 0.0


def test_noisy_linear_noise_is_f_of_standard_normals():
    layer = NoisyLinear(5, 3)
    layer.reset_noise(torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    raw_in, raw_out = torch.randn(5, generator=g), torch.randn(3, generator=g)
    f = lambda x: x.sign() * x.abs().sqrt()  # noqa: E731
    assert torch.allclose(layer.eps_in, f(raw_in)) and torch.allclose(layer.eps_out, f(raw_out))


def test_noisy_linear_per_row_noise_is_the_factorized_layer_of_each_row():
    torch.manual_seed(0)
    layer = NoisyLinear(5, 3, sigma0=0.7)
    x = torch.randn(4, 5)
    layer.reset_noise(torch.Generator().manual_seed(3), rows=4)
    assert layer.eps_in.shape == (4, 5) and layer.eps_out.shape == (4, 3)
    y = layer(x)
    for b in range(4):  # row b sees the weights μ + σ ⊙ f(ε_out,b) f(ε_in,b)ᵀ of its own draw
        w = layer.weight_mu + layer.weight_sigma * torch.outer(layer.eps_out[b], layer.eps_in[b])
        bias = layer.bias_mu + layer.bias_sigma * layer.eps_out[b]
        assert torch.allclose(y[b], w @ x[b] + bias, atol=1e-6)
    assert not torch.allclose(layer.eps_in[0], layer.eps_in[1])  # independent draws
    layer.eval()
    assert torch.allclose(layer(x), torch.nn.functional.linear(x, layer.weight_mu, layer.bias_mu))
    layer.train()
    layer.reset_noise(torch.Generator().manual_seed(3))  # back to one draw shared by the batch
    assert layer.eps_in.shape == (5,)


def test_obs_encoder_scales_finite_bounds_onto_unit_interval():
    from classic_rl.nets.mlp import ObsEncoder

    space = gym.spaces.Box(np.array([-1.2, -0.07, -np.inf], np.float32), np.array([0.6, 0.07, np.inf], np.float32))
    enc = ObsEncoder(space, scale=True)
    obs = torch.tensor([[-1.2, -0.07, 5.0], [0.6, 0.07, -3.0], [-0.3, 0.0, 0.0]])
    expected = torch.tensor([[-1.0, -1.0, 5.0], [1.0, 1.0, -3.0], [0.0, 0.0, 0.0]])  # infinite bounds pass through
    torch.testing.assert_close(enc(obs), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(ObsEncoder(space)(obs), obs)  # off by default
    assert "mid" not in enc.state_dict()  # derived from the space, not saved


def test_layer_norm_normalises_each_hidden_layer_before_its_activation():
    torch.manual_seed(0)
    space = gym.spaces.Box(-1, 1, (4,))
    net = QNetwork(space, 2, [16, 8], dueling=True, layer_norm=True)
    pre_activations = []
    for module in net.modules():
        if isinstance(module, torch.nn.ReLU):
            module.register_forward_hook(lambda m, inputs, out: pre_activations.append(inputs[0]))
    net(torch.randn(5, 4) * 100)  # a badly scaled input: the hidden layers still see unit scale
    assert [x.shape[-1] for x in pre_activations] == [16, 8]
    for x in pre_activations:  # LayerNorm's affine starts at (1, 0): zero mean, unit variance per row
        assert torch.allclose(x.mean(-1), torch.zeros(5), atol=1e-5)
        assert torch.allclose(x.var(-1, unbiased=False), torch.ones(5), atol=1e-3)
    plain = QNetwork(space, 2, [16, 8])
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in plain.modules())
