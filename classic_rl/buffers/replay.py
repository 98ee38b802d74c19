"""Uniform experience replay, preallocated on the device: the base of the replay-buffer family."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import torch


class Batch(NamedTuple):
    """A sampled minibatch; every field has batch dimension B first."""

    obs: torch.Tensor  # [B, *obs_shape]
    action: torch.Tensor  # [B, *action_shape]
    reward: torch.Tensor  # [B]
    next_obs: torch.Tensor  # [B, *obs_shape]  true next observation (final obs at episode ends)
    terminated: torch.Tensor  # [B] float, 1.0 where next_obs is terminal: no bootstrap
    discount: torch.Tensor  # [B] γ^k for the k rewards summed in `reward` (γ for 1-step transitions)
    indices: torch.Tensor  # [B] positions in the buffer
    weights: Optional[torch.Tensor] = None  # [B] importance-sampling weights (prioritized replay)


class ReplayBuffer:
    """Circular buffer of transitions (s, a, r, s', terminated, discount) as tensors on one device.

    Truncated transitions are stored with terminated = 0 and s' = the true final observation, so
    targets bootstrap through time limits and never through terminal states. The target of a stored
    transition is r + discount * (1 - terminated) * V(s'), whether it spans one step or n.
    """

    FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "discount")

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        action_shape: tuple[int, ...],
        action_dtype: torch.dtype,
        device: torch.device | str = "cpu",
    ) -> None:
        self.capacity = capacity
        self.device = torch.device(device)
        make = lambda shape, dtype: torch.zeros((capacity, *shape), dtype=dtype, device=self.device)  # noqa: E731
        self.storage: dict[str, torch.Tensor] = {
            "obs": make(obs_shape, obs_dtype),
            "action": make(action_shape, action_dtype),
            "reward": make((), torch.float32),
            "next_obs": make(obs_shape, obs_dtype),
            "terminated": make((), torch.float32),
            "discount": make((), torch.float32),
        }
        self.pos = 0  # next write position
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        next_obs: torch.Tensor,
        terminated: torch.Tensor,
        discount: torch.Tensor,
    ) -> slice | torch.Tensor:
        """Append a batch of B transitions, overwriting the oldest once full; returns where they went."""
        n = obs.shape[0]
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions to a buffer of capacity {self.capacity}")
        values = (obs, action, reward, next_obs, terminated, discount)
        if self.pos + n <= self.capacity:  # contiguous write, the common case
            indices = slice(self.pos, self.pos + n)
        else:
            indices = (self.pos + torch.arange(n, device=self.device)) % self.capacity
        for name, value in zip(self.FIELDS, values):
            store = self.storage[name]
            store[indices] = value.reshape(n, *store.shape[1:]).to(store.dtype)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        return indices

    def sample_indices(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(0, self.size, (batch_size,), device=self.device, generator=generator)

    def gather(self, indices: torch.Tensor) -> Batch:
        s = self.storage  # index_select: a fraction of advanced indexing's per-call overhead
        return Batch(*(s[name].index_select(0, indices) for name in self.FIELDS), indices=indices)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """Uniform sample with replacement of `batch_size` stored transitions."""
        return self.gather(self.sample_indices(batch_size, generator))

    def sample_many(self, count: int, batch_size: int, generator: torch.Generator) -> list[Batch]:
        """`count` independent uniform batches, drawn and gathered at once (one draw and one gather per
        field instead of `count`): the same distribution as `count` calls of `sample` while the buffer
        does not change in between."""
        whole = self.gather(self.sample_indices(count * batch_size, generator))
        parts = [field.split(batch_size) if field is not None else [None] * count for field in whole]
        return [Batch(*fields) for fields in zip(*parts)]

    def state_dict(self) -> dict[str, Any]:
        return {
            "pos": self.pos,
            "size": self.size,
            "storage": {k: v[: self.size].clone() for k, v in self.storage.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pos, self.size = int(state["pos"]), int(state["size"])
        for k, v in state["storage"].items():
            self.storage[k][: self.size] = v.to(self.device)
