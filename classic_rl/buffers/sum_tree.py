"""Sum tree over a fixed number of non-negative priorities, batched and on the device.

A k-ary tree (k = `branching`, binary with k = 2): every node holds the sum of its children and the
leaves hold the priorities. Prefix-sum sampling walks from the root to a leaf, `update` rewrites
leaves and recomputes their ancestors. Both take whole batches and cost O(log_k capacity) tensor
operations per batch, not per element; k = 32 keeps a 1M-leaf tree four levels deep.
"""

from __future__ import annotations

import math

import torch


class SumTree:
    def __init__(self, capacity: int, device: torch.device | str = "cpu", branching: int = 32) -> None:
        if capacity < 1 or branching < 2:
            raise ValueError(f"need capacity >= 1 and branching >= 2, got {capacity} and {branching}")
        self.capacity, self.k, self.device = capacity, branching, torch.device(device)
        depth = max(1, math.ceil(math.log(capacity, branching) - 1e-9))
        # levels[0] is the root [1]; levels[d] has k^d nodes; levels[-1] are the (padded) leaves.
        # float64: sums over a million leaves stay exact enough for prefix-sum sampling
        self.levels = [torch.zeros(branching**d, dtype=torch.float64, device=self.device) for d in range(depth + 1)]

    @property
    def total(self) -> torch.Tensor:
        """Sum of all priorities, a 0-d tensor."""
        return self.levels[0][0]

    def get(self, indices: torch.Tensor) -> torch.Tensor:
        """Priorities of leaves `indices` [B] -> [B]."""
        return self.levels[-1].index_select(0, indices)

    def update(self, indices: torch.Tensor, priorities: torch.Tensor) -> None:
        """Set leaves `indices` [B] to `priorities` [B] (repeated indices must carry equal values)."""
        self.levels[-1].index_put_((indices,), priorities.to(torch.float64))
        for parent, children in zip(reversed(self.levels[:-1]), reversed(self.levels[1:])):
            indices = indices // self.k
            parent.index_put_((indices,), children.view(-1, self.k).index_select(0, indices).sum(-1))

    def find(self, mass: torch.Tensor) -> torch.Tensor:
        """Leaf indices [B] whose prefix-sum interval [S_{i-1}, S_i) holds each `mass` [B] in [0, total).

        Mass at or past the total (float round-off) lands on the last leaf with a non-zero priority.
        """
        mass = mass.to(torch.float64)
        node = torch.zeros_like(mass, dtype=torch.int64)
        for children in self.levels[1:]:
            values = children.view(-1, self.k).index_select(0, node)  # [B, k]
            prefix = values.cumsum(-1)  # [B, k] inclusive prefix sums
            # keep the mass strictly inside this node, so round-off never walks onto an empty child
            mass = torch.minimum(mass, prefix[:, -1] * (1 - 2**-40))
            child = torch.searchsorted(prefix, mass[:, None], right=True)  # [B, 1] first prefix > mass
            mass = mass - (prefix - values).gather(1, child).squeeze(1)  # minus the exclusive prefix
            node = node * self.k + child.squeeze(1)
        return node

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"leaves": self.levels[-1][: self.capacity].clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        leaves = self.levels[-1]
        leaves.zero_()
        leaves[: len(state["leaves"])] = state["leaves"].to(self.device, torch.float64)
        for parent, children in zip(reversed(self.levels[:-1]), reversed(self.levels[1:])):
            torch.sum(children.view(-1, self.k), dim=-1, out=parent)  # rebuild every level bottom-up
