"""n-step returns over a sliding window of vector env steps (Sutton & Barto §7.1; Rainbow's multi-step)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

if TYPE_CHECKING:
    from classic_rl.agents.base import Transition


def nstep_return(
    reward: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor, gamma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards [n, N] of n consecutive steps -> (G [N], steps [N]).

    G = Σ_{k<m} γ^k r_k where m <= n stops at the first episode end (terminated or truncated) in the
    window, which is still counted; `steps` is m, so the bootstrap term is γ^m · V(s_m).
    """
    done = (terminated | truncated).float()  # [n, N]
    # alive[k] = 1 while no episode end happened strictly before step k
    alive = torch.cumprod(torch.cat([torch.ones_like(done[:1]), 1.0 - done[:-1]]), dim=0)  # [n, N]
    powers = gamma ** torch.arange(reward.shape[0], device=reward.device, dtype=reward.dtype)  # [n]
    return (powers[:, None] * alive * reward).sum(0), alive.sum(0).long()


class NStepTransition(NamedTuple):
    obs: torch.Tensor  # [N, *obs_shape] s_t
    action: torch.Tensor  # [N, ...] a_t
    reward: torch.Tensor  # [N] discounted sum of up to n rewards
    next_obs: torch.Tensor  # [N, *obs_shape] s_{t+m}, the true final observation at an episode end
    terminated: torch.Tensor  # [N] float: s_{t+m} is terminal, no bootstrap
    discount: torch.Tensor  # [N] γ^m


class NStepWindow:
    """Feed 1-step vector transitions in order; get back the n-step transition of the step n-1 earlier.

    Every step is emitted exactly once, n-1 steps late; its window stops at its episode's end, so the
    return never crosses into the next episode and truncation still bootstraps while termination does not.
    """

    def __init__(self, n: int, gamma: float) -> None:
        self.n, self.gamma = n, gamma
        self.window: deque["Transition"] = deque(maxlen=n)

    def push(self, t: Transition) -> NStepTransition | None:
        self.window.append(t)
        if len(self.window) < self.n:
            return None
        if self.n == 1:
            discount = torch.full_like(t.reward, self.gamma)
            return NStepTransition(t.obs, t.action, t.reward, t.next_obs, t.terminated.float(), discount)
        steps = list(self.window)
        terminated = torch.stack([s.terminated for s in steps])  # [n, N]
        truncated = torch.stack([s.truncated for s in steps])
        ret, m = nstep_return(torch.stack([s.reward for s in steps]), terminated, truncated, self.gamma)
        last = (m - 1)[None]  # [1, N] index of the step whose next_obs we bootstrap from
        next_obs = torch.stack([s.next_obs for s in steps])  # [n, N, *obs_shape]
        next_obs = next_obs.gather(0, last.view(1, -1, *[1] * (next_obs.dim() - 2)).expand(1, *next_obs.shape[1:]))[0]
        first = steps[0]
        return NStepTransition(
            first.obs, first.action, ret, next_obs, terminated.gather(0, last)[0].float(), self.gamma ** m.float()
        )

    def push_into(self, t: Transition, buffer: Any) -> None:
        """push(t), and add the n-step transition it completes (if any) to a replay buffer."""
        ready = self.push(t)
        if ready is not None:
            buffer.add(*ready)

    def state_dict(self) -> dict[str, Any]:
        return {"window": [vars(t).copy() for t in self.window]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from classic_rl.agents.base import Transition  # agents import buffers: import here, not at the top

        self.window = deque((Transition(**t) for t in state["window"]), maxlen=self.n)
