"""Lock-step rounds over a classic batched env, with groups of rows sharing their start state.

GRPO compares the returns of G episodes that start from the same state (a "group"). This wrapper
turns any torch-native `TorchVectorEnv` into a lock-step env (contract in envs/base.py): all N rows
start a round together, rows g*G .. g*G+G-1 start from the state of row g*G, a row that ends waits
(`info["active"]` False, reward 0, its last observation repeated) until every row has ended, and
then all rows start the next round from fresh states. The inner env still steps waiting rows (one
batched kernel either way); their transitions are dropped here.
"""

from __future__ import annotations

from typing import Any

import dataclasses
import torch

from classic_rl.config import UserError
from classic_rl.envs.base import BatchedEnv, check_no_options
from classic_rl.envs.torch_env import TorchVectorEnv


class LockstepVectorEnv(BatchedEnv):
    def __init__(self, inner: Any, group_size: int = 1, seed: int = 0) -> None:
        if not isinstance(inner, TorchVectorEnv):
            raise UserError(f"env.group_size > 1 needs a torch-native env; {inner.spec.id} runs through the "
                            "Gymnasium adapter here (drop env.backend=gymnasium, or use a classic-control env)")
        if inner.num_envs % group_size:
            raise UserError(f"env.num_envs = {inner.num_envs} is not a multiple of env.group_size = {group_size}")
        self.inner, self.group_size = inner, group_size
        self.num_envs, self.device = inner.num_envs, inner.device
        self.single_observation_space = inner.single_observation_space
        self.single_action_space = inner.single_action_space
        self.spec = dataclasses.replace(inner.spec, lockstep=True, group_size=group_size)
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)
        self.active = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        self.obs: torch.Tensor | None = None

    def _start_round(self, seed: int | None = None) -> torch.Tensor:
        if seed is not None:
            self.generator.manual_seed(seed)
        inner_seed = int(torch.randint(0, 2**31 - 1, (), generator=self.generator))
        self.inner.reset(seed=inner_seed)
        leaders = torch.arange(self.num_envs, device=self.device) // self.group_size * self.group_size
        self.inner.state.copy_(self.inner.state[leaders])  # the group shares its leader's start
        self.inner.elapsed.zero_()
        self.active.fill_(True)
        self.obs = self.inner.dynamics.observe(self.inner.state)
        return self.obs

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[torch.Tensor, dict[str, Any]]:
        check_no_options(options, self)
        return self._start_round(seed), {}

    def step(self, actions: torch.Tensor):
        obs, reward, terminated, truncated, info = self.inner.step(actions)
        active = self.active.clone()  # rows taking a real step now
        waiting = ~active
        reward = reward.masked_fill(waiting, 0.0)
        terminated, truncated = terminated & active, truncated & active
        final_obs = torch.where(waiting[:, None], self.obs, info["final_obs"])
        done = terminated | truncated
        self.active &= ~done
        # waiting rows keep showing their last observation; the rest continue
        self.obs = torch.where(self.active[:, None], obs, final_obs)
        if not self.active.any():
            self._start_round()
        return self.obs, reward, terminated, truncated, {"final_obs": final_obs, "active": active}

    @property
    def restarts_on_resume(self) -> bool:
        return getattr(self.inner, "restarts_on_resume", False)

    def state_dict(self) -> dict[str, Any]:
        return {"inner": self.inner.state_dict(), "generator": self.generator.get_state(),
                "active": self.active.clone(), "obs": None if self.obs is None else self.obs.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        self.generator.set_state(state["generator"])
        self.active = state["active"].to(self.device).clone()
        self.obs = None if state["obs"] is None else state["obs"].to(self.device).clone()

    def close(self, **kwargs: Any) -> None:
        self.inner.close()
        self.closed = True
