"""MAPPO and IPPO (Yu et al. 2022; de Witt et al. 2020): PPO on every agent's own observation,
trained centrally, acting on its own (the seeds' CTDE).

Each (env, agent) pair is one row of a PPO rollout: the multi-agent step [N, A] becomes N * A rows,
and the PPO agent (agents/ppo.py) collects, computes GAE and takes its clipped-surrogate steps on
them unchanged. A row holds

    [ agent's observation (D) | one-hot agent id (A) | global state (S, central critic only) ]

and the networks read their columns of it:
    actor    π(a_i | o_i, i): the observation (and the id, with agent_id); one network for all agents
             (share_parameters) or one per agent, picked by the row's id
    critic   central (MAPPO): V(s, i) on the global state info["state"] (and the id); or
             local (IPPO): V(o_i, i) on the agent's own observation, as the actor sees it
Acting needs the observation alone (decentralised execution); the state only feeds the critic while
training. `normalize_value` (on by default, as MAPPO) standardises the critic's targets.
`team_reward`: every agent learns from the sum of all agents' rewards (MAPPO's shared reward on MPE).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from classic_rl.agents.base import Transition, unsupported_multi_agent
from classic_rl.agents.ppo import PPO, PPOConfig
from classic_rl.config import ConfigError
from classic_rl.envs.base import EnvSpec
from classic_rl.nets.policy import Actor, Critic, unsupported_spaces


@dataclass(frozen=True)
class MAPPOConfig(PPOConfig):
    """Every PPO key (agents/ppo.py), plus how the agents share and what the critic sees."""

    name: Literal["mappo"] = "mappo"  # type: ignore[assignment]
    critic: Literal["central", "local"] = "central"  # central: MAPPO (global state); local: IPPO
    share_parameters: bool = True  # one actor (and critic) for all agents; false: one per agent
    agent_id: bool = True  # shared networks also read the one-hot agent id
    team_reward: bool = False  # every agent learns from the sum of the agents' rewards
    normalize_value: bool = True

    @staticmethod
    def supports(spec: EnvSpec) -> str | None:
        return unsupported_multi_agent(spec) or unsupported_spaces(spec.observation_space, spec.action_space)


class Columns(nn.Module):
    """x [B, F] -> x[:, columns] [B, len(columns)]: the part of a row a network reads."""

    def __init__(self, columns: list[int]) -> None:
        super().__init__()
        self.register_buffer("index", torch.tensor(columns), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.index)


class PerAgent(nn.Module):
    """One network per agent; each row goes through its agent's (the argmax of its one-hot id columns).

    Every network runs on every row and the row's own output is gathered: no data-dependent shapes,
    so no host sync on an accelerator (A times the arithmetic of one network; A is small)."""

    def __init__(self, nets: list[nn.Module], id_columns: list[int]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.ids = Columns(id_columns)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        agent = self.ids(x).argmax(-1)  # [B]
        out = torch.stack([net(x) for net in self.nets], dim=1)  # [B, A, ...]
        return out[torch.arange(x.shape[0], device=x.device), agent]


class MAPPO:
    off_policy = False
    multi_agent = True

    def __init__(self, cfg: MAPPOConfig, spec: EnvSpec, seed: int = 0) -> None:
        if cfg.critic == "central" and spec.state_space is None:
            raise ConfigError(f"config key 'agent.critic' = 'central' needs the env's global state; env={spec.id} "
                              "has none (spec.state_space); use agent.critic=local (IPPO)")
        self.cfg, self.spec, self.device = cfg, spec, spec.device
        self.num_agents = A = spec.num_agents
        self.obs_dim = D = int(np.prod(spec.observation_space.shape))
        self.state_dim = S = int(np.prod(spec.state_space.shape)) if cfg.critic == "central" else 0
        ids = list(range(D, D + A))
        id_input = ids if cfg.agent_id and cfg.share_parameters else []  # a network of its own knows its agent
        own = list(range(D)) + id_input
        critic_columns = (id_input + list(range(D + A, D + A + S))) if S else own
        torch.manual_seed(seed)  # network initialisation
        actor = self._network(lambda n: Actor(self._box(n), spec.action_space, cfg.hidden_sizes, cfg.activation,
                                              cfg.log_std_init), own, ids)
        critic = self._network(lambda n: Critic(self._box(n), cfg.hidden_sizes, cfg.activation), critic_columns, ids)
        rows = dataclasses.replace(spec, num_envs=spec.num_envs * A, observation_space=self._box(D + A + S),
                                   num_agents=1, state_space=None)
        self.ppo = PPO(cfg, rows, seed, actor=actor, critic=critic)
        self.networks = nn.ModuleDict({"actor": self.ppo.actor, "critic": self.ppo.critic})  # for export's tracing
        self.env_steps = 0
        self._one_hot = torch.eye(A, device=self.device)
        self._rows: torch.Tensor | None = None  # the rows of the last act(explore=True)

    @staticmethod
    def _box(dim: int) -> gym.spaces.Box:
        return gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)

    def _network(self, build: Any, columns: list[int], ids: list[int]) -> nn.Module:
        """An Actor or Critic whose body reads `columns` of a row: one shared, or one per agent."""
        net = build(len(columns))
        if self.cfg.share_parameters:
            net.body = nn.Sequential(Columns(columns), net.body)
        else:
            bodies = [net.body] + [build(len(columns)).body for _ in range(self.num_agents - 1)]
            net.body = PerAgent([nn.Sequential(Columns(columns), b) for b in bodies], ids)
        return net

    # ------------------------------------------------------------------ rows
    def rows(self, obs: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """obs [N, A, D] and state [N, S] -> rows [N * A, D + A + S], row n * A + i is agent i of env n.
        Without a state (acting only) its columns are zeros: the actor never reads them."""
        N, A = obs.shape[:2]
        parts = [obs.reshape(N, A, -1).float(), self._one_hot.expand(N, A, A)]
        if self.state_dim:
            s = state.reshape(N, 1, -1).float() if state is not None else obs.new_zeros(N, 1, self.state_dim)
            parts.append(s.expand(N, A, self.state_dim))
        return torch.cat(parts, dim=-1).flatten(0, 1)

    # ------------------------------------------------------------------ the Agent protocol
    @property
    def updates(self) -> int:
        return self.ppo.updates

    @property
    def actor(self) -> nn.Module:
        return self.ppo.actor

    def act(self, obs: torch.Tensor, explore: bool = True, state: torch.Tensor | None = None) -> torch.Tensor:
        """Joint actions [N, A] (or [N, A, d] for Box actions) for observations [N, A, D]."""
        N, A = obs.shape[:2]
        rows = self.rows(obs, state)
        if explore:
            if self.state_dim and state is None:
                raise ValueError("MAPPO with a central critic acts while training on the global state: pass state=")
            self._rows = rows
        return self.ppo.act(rows, explore).unflatten(0, (N, A))

    def observe(self, t: Transition) -> None:
        N, A = t.reward.shape
        reward = t.reward.sum(-1, keepdim=True).expand(N, A) if self.cfg.team_reward else t.reward
        per_row = lambda x: x.repeat_interleave(A)  # noqa: E731 -- an env's flags, for each of its agents
        self.ppo.observe(Transition(self._rows, t.action.flatten(0, 1), reward.reshape(-1),
                                    self.rows(t.next_obs, t.next_state), per_row(t.terminated),
                                    per_row(t.truncated)))
        self.env_steps += N
        self.ppo.env_steps = self.env_steps  # schedules run on env steps, not on rows (N * A per vector step)

    def ready(self) -> bool:
        return self.ppo.ready()

    def update(self) -> dict[str, float]:
        return self.ppo.update()

    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        return {"ppo": self.ppo.state_dict(include_buffer), "env_steps": self.env_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ppo.load_state_dict(state["ppo"])
        self.env_steps = state["env_steps"]
