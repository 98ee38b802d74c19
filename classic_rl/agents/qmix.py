"""Value decomposition from the DQN parts: QMIX (Rashid et al. 2018) and VDN (Sunehag et al. 2018).

Every agent has a utility Q_i(o_i, a_i) on its own observation (one network for all agents, reading
the one-hot agent id with `agent_id`); a mixer turns the chosen utilities into the team's value,

    Q_tot(s, a) = mixer(Q_1(o_1, a_1), ..., Q_A(o_A, a_A); s)    vdn: the sum; qmix: a monotonic network of s

and Q_tot learns DQN's TD target on the team reward (the agents' rewards summed):

    y = r + γ^n (1 - terminated) Q_tot^target(s', a'),   a'_i = argmax_a Q_i(o'_i, a)   (the online Q_i with `double`)

Monotonic mixing makes each agent's greedy action the joint greedy action: agents act on their own
observations (decentralised execution), ε-greedy each. The rest is agents/dqn.py's: the update loop,
replay (uniform or prioritized), n-step returns, Huber loss, target updates, schedules. A replay row is
one joint transition: [every agent's observation | global state], the A actions, the team reward.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

from classic_rl.agents.base import Transition, unsupported_multi_agent
from classic_rl.agents.dqn import DQN, DQNConfig
from classic_rl.buffers import Batch
from classic_rl.config import ConfigError, positive
from classic_rl.envs.base import EnvSpec
from classic_rl.losses import q_learning_loss, td_target
from classic_rl.nets import QMixer, VDNMixer
from classic_rl.optim import adam


@dataclass(frozen=True)
class QMIXConfig(DQNConfig):
    """Every DQN key (agents/dqn.py) but noisy and distributional, plus the mixer."""

    name: Literal["qmix"] = "qmix"  # type: ignore[assignment]
    mixer: Literal["qmix", "vdn"] = "qmix"  # qmix: monotonic network of the state; vdn: the sum
    mixing_embed_dim: int = field(default=32, metadata=positive("QMIX's mixing layer width"))
    hypernet_hidden: int = field(default=64, metadata=positive("hidden width of QMIX's weight hypernetworks"))
    agent_id: bool = True  # the shared utility network also reads the one-hot agent id

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("noisy", "distributional"):
            if getattr(self, key):
                raise ConfigError(f"config key '{key}' = True is not supported by agent=qmix (a mixer of scalar "
                                  f"utilities, ε-greedy); set it to false")

    @staticmethod
    def supports(spec: EnvSpec) -> str | None:
        if (reason := unsupported_multi_agent(spec)) is not None:
            return reason
        return None if spec.discrete_actions else f"needs discrete actions, {spec.id} has {spec.action_space}"


class QMIX(DQN):
    multi_agent = True

    def __init__(self, cfg: QMIXConfig, spec: EnvSpec, seed: int = 0) -> None:
        if cfg.mixer == "qmix" and spec.state_space is None:
            raise ConfigError(f"config key 'agent.mixer' = 'qmix' mixes on the env's global state; env={spec.id} has "
                              "none (spec.state_space); use agent.mixer=vdn")
        A, D = spec.num_agents, int(np.prod(spec.observation_space.shape))
        self.num_agents, self.obs_dim = A, D
        self.state_dim = int(np.prod(spec.state_space.shape)) if spec.state_space is not None else 0
        inputs = D + (A if cfg.agent_id else 0)
        per_agent = dataclasses.replace(spec, num_envs=spec.num_envs * A, num_agents=1, state_space=None,
                                        observation_space=gym.spaces.Box(-np.inf, np.inf, (inputs,), np.float32))
        super().__init__(cfg, per_agent, seed)  # self.q: the utility network Q_i, its target, optimizer, counters
        self.spec = spec
        self.mixer = (QMixer(self.state_dim, A, cfg.mixing_embed_dim, cfg.hypernet_hidden) if cfg.mixer == "qmix"
                      else VDNMixer()).to(self.device)
        self.mixer_target = copy.deepcopy(self.mixer).requires_grad_(False)
        self.params = [*self.q.parameters(), *self.mixer.parameters()]
        self.target_params = [*self.q_target.parameters(), *self.mixer_target.parameters()]
        self.optimizer = adam(self.params, cfg.lr, eps=cfg.adam_eps)
        self.buffer = self.make_buffer((A * D + self.state_dim,), torch.float32, (A,))
        self._one_hot = torch.eye(A, device=self.device)

    # ------------------------------------------------------------------ the joint rows
    def joint(self, obs: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """obs [N, A, D], state [N, S] -> one replay row [N, A * D + S]."""
        parts = [obs.reshape(obs.shape[0], -1).float()]
        if self.state_dim:
            parts.append(state.reshape(state.shape[0], -1).float())
        return torch.cat(parts, dim=-1)

    def utilities(self, net: torch.nn.Module, obs: torch.Tensor) -> torch.Tensor:
        """Q_i(o_i, ·) [B, A, num_actions] of observations [B, A, D] (with the agent id when agent_id)."""
        B, A = obs.shape[:2]
        x = obs.reshape(B, A, -1).float()
        if self.cfg.agent_id:
            x = torch.cat([x, self._one_hot.expand(B, A, A)], dim=-1)
        return net(x.flatten(0, 1)).unflatten(0, (B, A))

    def _split(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Replay rows [B, A * D + S] -> observations [B, A, D] and states [B, S]."""
        cut = self.num_agents * self.obs_dim
        return rows[:, :cut].unflatten(1, (self.num_agents, self.obs_dim)), rows[:, cut:]

    # ------------------------------------------------------------------ acting and storage
    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool = True, state: torch.Tensor | None = None) -> torch.Tensor:
        """Joint actions [N, A]: each agent's greedy action on its own observation, ε-greedy while exploring."""
        greedy = self.utilities(self.q, obs).argmax(dim=-1)  # [N, A]
        if not explore:
            return greedy
        random_action = torch.randint(self.num_actions, greedy.shape, device=self.device, generator=self.generator)
        explore_mask = torch.rand(greedy.shape, device=self.device, generator=self.generator) < self.epsilon
        return torch.where(explore_mask, random_action, greedy)

    def observe(self, t: Transition) -> None:
        if self.state_dim and (t.state is None or t.next_state is None):
            raise ValueError("agent=qmix stores the global state: the transition needs state and next_state")
        team = Transition(self.joint(t.obs, t.state), t.action, t.reward.sum(-1), self.joint(t.next_obs, t.next_state),
                          t.terminated, t.truncated)
        super().observe(team)

    # ------------------------------------------------------------------ learning
    @torch.no_grad()
    def target(self, batch: Batch) -> torch.Tensor:
        """y = r + γ^n (1 - terminated) Q_tot^target(s', a') [B], a'_i the greedy action of each agent."""
        next_obs, next_state = self._split(batch.next_obs)
        next_q = self.utilities(self.q_target, next_obs)  # [B, A, num_actions]
        if self.cfg.double:
            best = self.utilities(self.q, next_obs).argmax(dim=-1, keepdim=True)
            next_chosen = next_q.gather(-1, best).squeeze(-1)
        else:
            next_chosen = next_q.max(dim=-1).values  # [B, A]
        target = td_target(batch.reward, self.mixer_target(next_chosen, next_state), batch.terminated, batch.discount)
        return target.clamp(self.cfg.v_min, self.cfg.v_max) if self.cfg.clip_target else target

    def loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Huber TD loss of Q_tot(s, a) [B]; the per-sample TD error; the mean Q_tot of the batch."""
        obs, state = self._split(batch.obs)
        chosen = self.utilities(self.q, obs).gather(-1, batch.action.unsqueeze(-1)).squeeze(-1)  # Q_i(o_i, a_i) [B, A]
        loss, stats = q_learning_loss(self.mixer(chosen, state), self.target(batch), batch.weights)
        return loss, stats["td_error"], stats["q_mean"]

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        return {**super().state_dict(include_buffer), "mixer": self.mixer.state_dict(),
                "mixer_target": self.mixer_target.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.mixer.load_state_dict(state["mixer"])
        self.mixer_target.load_state_dict(state["mixer_target"])
