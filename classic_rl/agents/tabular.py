"""Tabular TD control: Q-learning, SARSA and expected SARSA on one Q table [S, A] held on the device.

    Q(s, a) <- Q(s, a) + α [r + γ (1 - terminated) V(s') - Q(s, a)]        (seeds §1.3 eq. 1.10*)
        Q-learning       V(s') = max_a' Q(s', a')                           (Sutton & Barto 2018, eq. 6.8)
        SARSA            V(s') = Q(s', a'), a' the action actually taken     (eq. 6.7)
        expected SARSA   V(s') = Σ_a' π_ε(a'|s') Q(s', a')                   (eq. 6.9)
    seeds: shared/seeds/000_b9b9a4ea6be6f723.txt (RL notes). * Its eq. 1.10 as printed,
    (1 - α)Q + α(r + γ max Q' - Q), subtracts Q twice; this is the form its §1.1.3 gives.

One vector step is one batched update over its N transitions, every target read from the table
before the step. Truncated episodes bootstrap from the true final observation; terminated ones do not.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import torch

from classic_rl.agents.base import Transition, linear_schedule
from classic_rl.config import check, non_negative, unit_interval
from classic_rl.envs.base import EnvSpec
from classic_rl.losses import td_target

step_size = check(lambda v: 0 < v <= 1, "a number in (0, 1]")


@dataclass(frozen=True)
class TabularConfig:
    name: Literal["q_learning", "sarsa", "expected_sarsa"] = "q_learning"
    alpha: float = field(default=0.1, metadata=step_size)  # TD step size α
    alpha_end: Optional[float] = field(default=None, metadata=step_size)  # anneal α linearly to this (null: constant)
    alpha_decay_steps: int = field(default=0, metadata=non_negative("env steps of the α annealing"))
    gamma: float = field(default=0.99, metadata=unit_interval("discount factor"))
    epsilon_start: float = field(default=1.0, metadata=unit_interval("ε-greedy: ε at the start"))
    epsilon_end: float = field(default=0.05, metadata=unit_interval())  # = epsilon_start: constant ε
    epsilon_decay_steps: int = field(default=10_000, metadata=non_negative("env steps of ε annealing"))
    q_init: float = field(default=0.0, metadata=check(math.isfinite, "a finite number"))  # optimism explores

    @staticmethod
    def supports(spec: EnvSpec) -> str | None:
        """None if a tabular agent can run on `spec`, else the reason it cannot."""
        if not spec.discrete_actions:
            return f"needs discrete actions, {spec.id} has {spec.action_space}"
        if not spec.discrete_observations:
            return (f"needs discrete observations, {spec.id} has {spec.observation_space}; discretize them with "
                    "+env.discretize.bins=N (N bins per dimension, or one count per dimension: [6,6,12,12])")
        return None


# V(s') [B] from Q(s', .) [B, A], the next action a' [B] (SARSA) and the current ε
NextValue = Callable[[torch.Tensor, Optional[torch.Tensor], float], torch.Tensor]


def q_learning_value(q_next: torch.Tensor, next_action: torch.Tensor | None, epsilon: float) -> torch.Tensor:
    return q_next.max(dim=-1).values  # max_a' Q(s', a')


def sarsa_value(q_next: torch.Tensor, next_action: torch.Tensor | None, epsilon: float) -> torch.Tensor:
    return q_next.gather(1, next_action[:, None]).squeeze(1)  # Q(s', a')


def expected_sarsa_value(q_next: torch.Tensor, next_action: torch.Tensor | None, epsilon: float) -> torch.Tensor:
    # ε-greedy: 1 - ε on a greedy action (whichever maximiser, its value is the max), ε spread uniformly
    return (1.0 - epsilon) * q_next.max(dim=-1).values + epsilon * q_next.mean(dim=-1)


NEXT_VALUE: dict[str, NextValue] = {
    "q_learning": q_learning_value, "sarsa": sarsa_value, "expected_sarsa": expected_sarsa_value,
}


def batched_td_update(q: torch.Tensor, state: torch.Tensor, action: torch.Tensor, target: torch.Tensor,
                      alpha: float) -> torch.Tensor:
    """Q[s_i, a_i] += α (y_i - Q[s_i, a_i]) for a batch [B] in one scatter; returns the TD errors [B].

    A pair (s, a) that k rows share moves by 1 - (1 - α)^k toward the mean of their targets: exactly
    k sequential α-steps when the targets agree, and never past them (a plain scatter-add of the
    k α-steps would move Q by kα times the TD error: 64 envs reset to one start state, α = 0.1, 6.4x).
    """
    q_flat = q.view(-1)  # [S * A]
    pair = state * q.shape[1] + action  # [B] flat index of (s, a)
    td_error = target - q_flat[pair]  # [B]
    k = torch.zeros_like(q_flat).index_add_(0, pair, torch.ones_like(td_error))[pair]  # [B] rows sharing the pair
    q_flat.index_add_(0, pair, (1.0 - (1.0 - alpha) ** k) * td_error / k)  # Σ over the k rows = step · mean δ
    return td_error


class TabularAgent:
    """ε-greedy control with a Q table; `cfg.name` picks the next-state value V(s') of the TD target."""

    def __init__(self, cfg: TabularConfig, spec: EnvSpec, seed: int = 0) -> None:
        self.cfg, self.spec, self.device = cfg, spec, spec.device
        self.num_actions = int(spec.action_space.n)
        num_states = int(spec.observation_space.n)
        self.q = torch.full((num_states, self.num_actions), cfg.q_init, device=self.device)  # [S, A]
        self.next_value = NEXT_VALUE[cfg.name]
        self.learns_in_act = cfg.name == "sarsa"  # SARSA's target needs the action chosen in the next act()
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed + 1)
        self.env_steps = 0  # transitions observed
        self.pending: Transition | None = None  # observed, not yet learned from
        self.q_mean = 0.0  # mean Q(s, a) of the last batch before its update

    # ------------------------------------------------------------------ acting
    @property
    def epsilon(self) -> float:
        c = self.cfg
        return linear_schedule(c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps, self.env_steps)

    @property
    def alpha(self) -> float:
        c = self.cfg
        return linear_schedule(c.alpha, c.alpha if c.alpha_end is None else c.alpha_end, c.alpha_decay_steps,
                               self.env_steps)

    def epsilon_greedy(self, obs: torch.Tensor) -> torch.Tensor:
        """a ~ π_ε(.|s) [N]: uniform with probability ε, else a maximiser of Q(s, .) (ties broken at random)."""
        q_s = self.q[obs]  # [N, A]
        noise = torch.rand(q_s.shape[0], self.num_actions + 1, device=self.device, generator=self.generator)
        tie_noise, coin = noise[:, :-1], noise[:, -1]  # [N, A], [N]
        greedy = tie_noise.masked_fill(q_s < q_s.max(dim=-1, keepdim=True).values, -1.0).argmax(dim=-1)
        uniform = tie_noise.argmax(dim=-1)  # independent of the coin: a uniform action
        return torch.where(coin < self.epsilon, uniform, greedy)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool = True) -> torch.Tensor:
        if not explore:
            return self.q[obs].argmax(dim=-1)  # greedy, first maximiser: deterministic
        action = self.epsilon_greedy(obs)  # [N]
        if self.learns_in_act and self.pending is not None:  # SARSA: a' is the action just chosen
            t, next_action = self.pending, action
            if t.truncated.any():  # obs was auto-reset there: draw a' ~ π_ε at the true final observation
                next_action = torch.where(t.truncated, self.epsilon_greedy(t.next_obs), action)
            self._learn(t, next_action)
        return action

    # ------------------------------------------------------------------ learning
    def observe(self, t: Transition) -> None:
        self.pending = t
        self.env_steps += t.reward.shape[0]

    def ready(self) -> bool:
        return self.pending is not None  # a TD step every vector step

    def update(self) -> dict[str, float]:
        if not self.learns_in_act:
            self._learn(self.pending, next_action=None)
        return {"q_mean": self.q_mean, "epsilon": self.epsilon, "learning_rate": self.alpha}

    @torch.no_grad()
    def _learn(self, t: Transition, next_action: torch.Tensor | None) -> None:
        next_value = self.next_value(self.q[t.next_obs], next_action, self.epsilon)  # V(s') [N]
        target = td_target(t.reward, next_value, t.terminated.float(), self.cfg.gamma)  # [N]
        td_error = batched_td_update(self.q, t.obs, t.action, target, self.alpha)  # [N]
        self.q_mean = (target - td_error).mean().item()  # Q(s, a) before the step
        self.pending = None

    # ------------------------------------------------------------------ checkpoints and pictures
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        pending = None if self.pending is None else dataclasses.asdict(self.pending)
        return {"q": self.q.clone(), "generator": self.generator.get_state(), "env_steps": self.env_steps,
                "pending": pending, "q_mean": self.q_mean}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q.copy_(state["q"])
        self.generator.set_state(state["generator"])
        self.env_steps, self.q_mean = state["env_steps"], state["q_mean"]
        pending = state.get("pending")
        self.pending = None if pending is None else Transition(
            **{k: None if v is None else v.to(self.device) for k, v in pending.items()})

    def save_artifacts(self, run_dir: Path, env: Any) -> None:
        """policy.png: greedy action over the state values, for grid worlds (no-op elsewhere)."""
        from classic_rl import plots  # matplotlib only when a run ends

        plots.save_policy_picture(self.q, env, Path(run_dir) / "policy.png", title=self.cfg.name)
