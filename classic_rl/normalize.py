"""Running statistics for observation normalization and reward scaling (state goes in checkpoints)."""

from __future__ import annotations

from typing import Any

import torch

from classic_rl import distributed


class RunningMeanStd:
    """Mean and (population) variance of every sample seen, merged batch by batch.

    Parallel merge of (mean, M2, count) (Chan, Golub & LeVeque 1979), the batch form of Welford's
    update: exact for any split of the stream into batches. State in float64.
    """

    def __init__(self, shape: tuple[int, ...] = (), device: torch.device | str = "cpu", eps: float = 1e-8) -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        self.count = 0
        self.eps = eps
        self._cache()

    def update(self, x: torch.Tensor) -> None:
        """Merge a batch x [B, *shape]."""
        x = x.to(torch.float64)
        n = x.shape[0]
        batch_var, batch_mean = torch.var_mean(x, dim=0, correction=0)
        if distributed.world_size() > 1:  # the batch of every rank: merge counts, sums and squares
            k = batch_mean.numel()
            packed = distributed.all_reduce_sum(torch.cat([x.new_tensor([n]), x.sum(0).reshape(-1),
                                                           x.square().sum(0).reshape(-1)]))
            n = int(packed[0].item())
            batch_mean = (packed[1:1 + k] / n).reshape(batch_mean.shape)
            batch_var = (packed[1 + k:] / n).reshape(batch_var.shape) - batch_mean.square()
        total = self.count + n
        delta = batch_mean - self.mean
        # M2 = M2_a + M2_b + δ² n_a n_b / n  (Chan et al.)
        m2 = self.var * self.count + batch_var * n + delta.square() * (self.count * n / total)
        self.mean = self.mean + delta * (n / total)
        self.var = m2 / total
        self.count = total
        self._cache()

    def _cache(self) -> None:
        self._shift = self.mean.float()
        self._scale = (self.var + self.eps).rsqrt().float()  # 1 / sqrt(var + eps)

    @property
    def std(self) -> torch.Tensor:
        return (self.var + self.eps).sqrt()

    def normalize(self, x: torch.Tensor, clip: float | None = None) -> torch.Tensor:
        """(x - mean) / sqrt(var + eps) in float32, optionally clipped to [-clip, clip]."""
        out = (x - self._shift) * self._scale
        return out if clip is None else out.clamp(-clip, clip)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = state["mean"].to(self.mean.device)
        self.var = state["var"].to(self.var.device)
        self.count = state["count"]
        self._cache()


class RewardScaler:
    """Divides rewards by the std of each env's discounted return (Engstrom et al. 2020).

    The return R_t = γ R_{t-1} + r_t restarts at every episode end; the mean is not subtracted, so
    the sign of rewards (and which states are terminal) keeps its meaning.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, device: torch.device | str = "cpu") -> None:
        self.gamma, self.clip = gamma, clip
        self.ret = torch.zeros(num_envs, device=device)  # [N]
        self.rms = RunningMeanStd((), device)

    def __call__(self, reward: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """Scaled rewards [N] for the rewards [N] and episode ends [N] of one vector step."""
        self.ret = self.ret * self.gamma + reward
        self.rms.update(self.ret)
        self.ret = self.ret.masked_fill(done, 0.0)
        return (reward * self.rms._scale).clamp(-self.clip, self.clip)

    def state_dict(self) -> dict[str, Any]:
        return {"ret": self.ret.clone(), "rms": self.rms.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ret = state["ret"].to(self.ret.device)
        self.rms.load_state_dict(state["rms"])


class DenormalizedValue(torch.nn.Module):
    """A critic trained on standardised returns, read in reward units: V(s) = mean + std * critic(s).

    Value normalisation (MAPPO, Yu et al. 2022): the critic's targets are the returns standardised by
    `stats` (a RunningMeanStd of the returns); rollouts and GAE need its values in reward units."""

    def __init__(self, critic: torch.nn.Module, stats: RunningMeanStd) -> None:
        super().__init__()
        self.critic, self.stats = critic, stats

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs) * self.stats.std.float() + self.stats.mean.float()
