"""Factorized Gaussian NoisyLinear (Fortunato et al. 2018, "Noisy Networks for Exploration", §3.2)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class NoisyLinear(nn.Module):
    """y = (μ_w + σ_w ⊙ ε_w) x + μ_b + σ_b ⊙ ε_b with ε_w = f(ε_out) f(ε_in)ᵀ, f(x) = sign(x)·sqrt|x|.

    Noise is used in training mode and switched off (the mean weights) in eval mode; `reset_noise`
    draws a new ε, shared by every row of the next batches until the next reset, or with `rows` = B
    one independent ε per row of the next [B, in] batches: y_b = μ_w x_b + μ_b + f(ε_out,b) ⊙
    (σ_w (f(ε_in,b) ⊙ x_b) + σ_b), the same factorized noise at two matrix products per layer.
    The noise is not saved with the module: it is redrawn before every noisy use.
    """

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features)  # μ ~ U(-1/sqrt(p), 1/sqrt(p)), σ = σ0/sqrt(p)  (paper §3.2)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 * bound))
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 * bound))
        self.register_buffer("eps_in", torch.zeros(in_features), persistent=False)  # f(ε_in) [in] or [B, in]
        self.register_buffer("eps_out", torch.zeros(out_features), persistent=False)  # f(ε_out) [out] or [B, out]

    @torch.no_grad()
    def reset_noise(self, generator: torch.Generator | None = None, rows: int | None = None) -> None:
        lead = () if rows is None else (rows,)
        f = lambda eps: eps.sign() * eps.abs().sqrt()  # noqa: E731
        device = self.weight_mu.device
        self.eps_in = f(torch.randn(*lead, self.in_features, generator=generator, device=device))
        self.eps_out = f(torch.randn(*lead, self.out_features, generator=generator, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.linear(x, self.weight_mu, self.bias_mu)
        if self.eps_in.dim() == 2:  # one noise sample per row
            return F.linear(x, self.weight_mu, self.bias_mu) + self.eps_out * (
                F.linear(x * self.eps_in, self.weight_sigma, self.bias_sigma))
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.eps_out, self.eps_in)
        return F.linear(x, weight, self.bias_mu + self.bias_sigma * self.eps_out)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def reset_noise(net: nn.Module, generator: torch.Generator | None = None, rows: int | None = None) -> None:
    """Resample the noise of every NoisyLinear inside `net` (no-op for a net without any); `rows`: per row."""
    for module in noisy_layers(net):
        module.reset_noise(generator, rows)


def noisy_layers(net: nn.Module) -> list[NoisyLinear]:
    return [m for m in net.modules() if isinstance(m, NoisyLinear)]


@torch.no_grad()
def noise_scale(net: nn.Module) -> float:
    """Mean σ of the noisy weights in `net`, in units of 1/sqrt(fan_in): σ0 at initialisation, 0 without noise.

    How much exploration the agent has kept (Fortunato et al. track the mean σ the same way, Fig. 3).
    """
    ratios = [m.weight_sigma.abs().mean() * math.sqrt(m.in_features) for m in noisy_layers(net)]
    return torch.stack(ratios).mean().item() if ratios else 0.0
