"""The rollout of an on-policy agent: T vector steps of N envs, preallocated [T, N] on the device,
and the collector that fills it from the agent's policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import gymnasium as gym
import torch

from classic_rl.config import ConfigError
from classic_rl.envs.base import EnvSpec
from classic_rl.normalize import RewardScaler, RunningMeanStd

if TYPE_CHECKING:
    from classic_rl.agents.base import Transition


class Rollout(NamedTuple):
    """A full rollout; every field is [T, N, ...]."""

    obs: torch.Tensor  # [T, N, *obs_shape] the observation each action was chosen on
    action: torch.Tensor  # [T, N, *action_shape] the sampled action (before any clipping to bounds)
    reward: torch.Tensor  # [T, N]
    terminated: torch.Tensor  # [T, N] bool
    truncated: torch.Tensor  # [T, N] bool
    log_prob: torch.Tensor  # [T, N] log π_old(a_t | s_t) at collection time
    value: torch.Tensor  # [T, N] V(s_t) at collection time (zeros without a critic)
    next_value: torch.Tensor  # [T, N] V(s_{t+1}) of the TRUE next observation (see RolloutBuffer.next_value)
    active: torch.Tensor | None = None  # [T, N] bool: the row took a real step (lock-step envs); None: all did

    @property
    def done(self) -> torch.Tensor:
        return self.terminated | self.truncated


class RolloutBuffer:
    """Fills row by row (one vector step per `add`), is read whole when full, then cleared.

    Besides V(s_t) it keeps `final_value`: V(next_obs) of the true next observation, which the agent
    computes only where it is needed: on truncated rows (the final observation, not the reset one)
    and on the last row (the observation the rollout stops on). Other entries are never read.
    """

    FIELDS = ("obs", "action", "reward", "terminated", "truncated", "log_prob", "value", "final_value", "active")

    def __init__(
        self,
        steps: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        action_shape: tuple[int, ...],
        action_dtype: torch.dtype,
        device: torch.device | str = "cpu",
    ) -> None:
        self.steps, self.num_envs = steps, num_envs
        self.device = torch.device(device)
        def make(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
            return torch.zeros((steps, num_envs, *shape), dtype=dtype, device=self.device)

        self.storage: dict[str, torch.Tensor] = {
            "obs": make(obs_shape, obs_dtype),
            "action": make(action_shape, action_dtype),
            "reward": make((), torch.float32),
            "terminated": make((), torch.bool),
            "truncated": make((), torch.bool),
            "log_prob": make((), torch.float32),
            "value": make((), torch.float32),
            "final_value": make((), torch.float32),
            "active": make((), torch.bool),
        }
        self.pos = 0  # next row to write

    @property
    def full(self) -> bool:
        return self.pos == self.steps

    @property
    def last_row(self) -> bool:
        """True while the row being written is the rollout's last."""
        return self.pos == self.steps - 1

    def add(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        log_prob: torch.Tensor,
        value: torch.Tensor,
        final_value: torch.Tensor | None = None,
        active: torch.Tensor | None = None,
    ) -> None:
        """Write one vector step (each [N, ...]); final_value [N] where V(next_obs) was computed;
        active [N] bool for lock-step envs (rows waiting for the round to end are False)."""
        if self.full:
            raise RuntimeError("rollout buffer is full; read it and clear() it before adding")
        row = self.pos
        values = (obs, action, reward, terminated, truncated, log_prob, value)
        for name, v in zip(self.FIELDS, values):
            self.storage[name][row] = v
        if final_value is not None:
            self.storage["final_value"][row] = final_value
        self.storage["active"][row] = True if active is None else active
        self.pos += 1

    def next_value(self) -> torch.Tensor:
        """V(s_{t+1}) [T, N]: V(s_{t+1}) of the next row, but V(final obs) at truncations and the last row."""
        s = {k: v[: self.pos] for k, v in self.storage.items()}
        shifted = torch.cat([s["value"][1:], s["final_value"][-1:]])  # next row's V(s_t): right unless done
        return torch.where(s["truncated"], s["final_value"], shifted)

    def rollout(self, partial: bool = False) -> Rollout:
        """The full rollout, or with `partial` its first `pos` rows (a lock-step round that ended
        early). Views of the storage: read it before the next add."""
        if not self.full and not partial:
            raise RuntimeError(f"rollout has {self.pos} of {self.steps} rows")
        s = {k: v[: self.pos] for k, v in self.storage.items()}
        return Rollout(s["obs"], s["action"], s["reward"], s["terminated"], s["truncated"], s["log_prob"],
                       s["value"], self.next_value(), s["active"])

    def clear(self) -> None:
        self.pos = 0

    def state_dict(self) -> dict[str, Any]:
        return {"pos": self.pos, "storage": {k: v[: self.pos].clone() for k, v in self.storage.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pos = int(state["pos"])
        for k, v in state["storage"].items():
            self.storage[k][: self.pos] = v.to(self.device)


class RolloutCollector:
    """Acts with an actor (and critic), and stores each vector step of the rollout in a RolloutBuffer.

    `act` caches what the following `observe` stores: the (normalized) observation, the UNCLIPPED
    sampled action, its log-prob and V(s). `observe` adds the env's reward and episode-end flags and,
    where a bootstrap needs it, V(next_obs) of the true next observation (truncated rows, last row).
    Optional observation normalization and reward scaling happen here, on the way into the buffer;
    their running statistics take in every step (`observe`), as SB3's VecNormalize does.
    """

    def __init__(
        self,
        actor: torch.nn.Module,
        critic: torch.nn.Module | None,
        buffer: RolloutBuffer,
        generator: torch.Generator,
        obs_norm: RunningMeanStd | None = None,
        reward_scaler: RewardScaler | None = None,
        obs_clip: float = 10.0,
    ) -> None:
        self.actor, self.critic, self.buffer, self.generator = actor, critic, buffer, generator
        self.obs_norm, self.reward_scaler, self.obs_clip = obs_norm, reward_scaler, obs_clip
        self._zeros = torch.zeros(buffer.num_envs, device=buffer.device)
        self._pending: tuple[torch.Tensor, ...] | None = None

    @classmethod
    def for_spec(
        cls,
        spec: EnvSpec,
        steps: int,
        actor: torch.nn.Module,
        critic: torch.nn.Module | None,
        generator: torch.Generator,
        normalize_obs: bool = False,
        normalize_reward: bool = False,
        gamma: float = 0.99,
    ) -> "RolloutCollector":
        """A collector with a [steps, spec.num_envs] buffer shaped for the env's spaces."""
        obs_shape, action_shape = tuple(spec.observation_space.shape), tuple(spec.action_space.shape)
        obs_dtype = torch.int64 if spec.discrete_observations else torch.float32
        action_dtype = torch.int64 if spec.discrete_actions else torch.float32
        if normalize_obs and spec.discrete_observations:
            raise ConfigError(f"config key 'agent.normalize_obs' = True needs Box observations; {spec.id} has "
                              f"{spec.observation_space}")
        buffer = RolloutBuffer(steps, spec.num_envs, obs_shape, obs_dtype, action_shape, action_dtype, spec.device)
        obs_norm = RunningMeanStd(obs_shape, spec.device) if normalize_obs else None
        scaler = RewardScaler(spec.num_envs, gamma, device=spec.device) if normalize_reward else None
        return cls(actor, critic, buffer, generator, obs_norm, scaler)

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        """The observation the networks see: normalized by running statistics when enabled."""
        return obs if self.obs_norm is None else self.obs_norm.normalize(obs, self.obs_clip)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) [N] of preprocessed observations (zeros without a critic)."""
        return self._zeros if self.critic is None else self.critic(obs)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool = True) -> torch.Tensor:
        raw, obs = obs, self.preprocess(obs)
        dist = self.actor(obs)
        if not explore:
            return self.actor.env_action(dist.mode())
        action = dist.sample(self.generator)
        self._pending = (raw, obs, action, dist.log_prob(action), self.value(obs))
        return self.actor.env_action(action)

    @torch.no_grad()
    def observe(self, t: "Transition") -> None:
        if self._pending is None:
            raise RuntimeError("observe() needs the act(obs, explore=True) of the same step first")
        raw, obs, action, log_prob, value = self._pending
        self._pending = None
        final_value = None  # V(true next obs), never V(reset obs); read on truncated rows and the last row only
        if self.critic is not None and self.buffer.last_row:
            final_value = self.critic(self.preprocess(t.next_obs))
        elif self.critic is not None and bool(t.truncated.any()):
            rows = t.truncated.nonzero().squeeze(-1)  # a few of N: evaluate the critic on those alone
            final_value = value.index_put((rows,), self.critic(self.preprocess(t.next_obs[rows])))
        reward = t.reward
        if self.reward_scaler is not None:
            reward = self.reward_scaler(reward, t.terminated | t.truncated)
        self.buffer.add(obs, action, reward, t.terminated, t.truncated, log_prob, value, final_value)
        if self.obs_norm is not None:
            self.obs_norm.update(raw)

    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        return {
            "buffer": self.buffer.state_dict() if include_buffer else None,
            "obs_norm": self.obs_norm.state_dict() if self.obs_norm is not None else None,
            "reward_scaler": self.reward_scaler.state_dict() if self.reward_scaler is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Without a stored buffer (evaluation, or train.save_buffer=false) the rollout restarts empty."""
        if state.get("buffer") is not None:
            self.buffer.load_state_dict(state["buffer"])
        else:
            self.buffer.clear()
        if self.obs_norm is not None:
            self.obs_norm.load_state_dict(state["obs_norm"])
        if self.reward_scaler is not None:
            self.reward_scaler.load_state_dict(state["reward_scaler"])


class LockstepCollector:
    """One lock-step round (envs/base.py) per rollout, acting with a policy that has the
    `act` / `evaluate` interface (nets/policy.py ActorCritic, lm/policy.py LMPolicy).

    The buffer holds `spec.max_episode_steps` rows, the longest round; `round_over` turns True once
    every row's episode has ended, and the rollout is then the rows filled so far. With a critic
    (`bootstrap`), truncated rows store V(true final obs) as on any env; text envs pass
    bootstrap=False: a completion cut at max_new_tokens is scored whole, there is nothing after it.
    """

    def __init__(self, policy: torch.nn.Module, buffer: RolloutBuffer, generator: torch.Generator,
                 bootstrap: bool = False) -> None:
        self.policy, self.buffer, self.generator, self.bootstrap = policy, buffer, generator, bootstrap
        self.finished = torch.zeros(buffer.num_envs, dtype=torch.bool, device=buffer.device)
        self.last_step = torch.zeros(buffer.num_envs, dtype=torch.int64, device=buffer.device)  # of each row
        self._pending: tuple[torch.Tensor, ...] | None = None

    @classmethod
    def for_spec(cls, spec: EnvSpec, policy: torch.nn.Module, generator: torch.Generator) -> "LockstepCollector":
        if not spec.lockstep:
            raise ConfigError(f"env={spec.id} is not lock-step; set env.group_size > 1 (classic envs) or use a text env")
        obs_shape, action_shape = tuple(spec.observation_space.shape), tuple(spec.action_space.shape)
        obs_dtype = torch.float32 if isinstance(spec.observation_space, gym.spaces.Box) else torch.int64
        action_dtype = torch.int64 if spec.discrete_actions else torch.float32
        buffer = RolloutBuffer(spec.max_episode_steps, spec.num_envs, obs_shape, obs_dtype, action_shape,
                               action_dtype, spec.device)
        bootstrap = spec.text is None and getattr(policy, "critic", None) is not None
        return cls(policy, buffer, generator, bootstrap)

    @property
    def round_over(self) -> bool:
        return bool(self.finished.all()) or self.buffer.full

    def act(self, obs: torch.Tensor, explore: bool = True) -> torch.Tensor:
        env_action, action, log_prob, value = self.policy.act(obs, explore, self.generator)
        self._pending = (obs, action, log_prob, value) if explore else None
        return env_action

    def observe(self, t: "Transition") -> None:
        if self._pending is None:
            raise RuntimeError("observe() needs the act(obs, explore=True) of the same step first")
        obs, action, log_prob, value = self._pending
        self._pending = None
        active = t.active if t.active is not None else torch.ones_like(t.terminated)
        final_value = None  # V(true final obs) where a row was truncated (classic envs with a critic)
        if self.bootstrap and bool(t.truncated.any()):
            rows = t.truncated.nonzero().squeeze(-1)
            with torch.no_grad():
                final_value = value.index_put((rows,), self.policy.critic(t.next_obs[rows]))
        step = self.buffer.pos
        self.buffer.add(obs, action, t.reward, t.terminated, t.truncated, log_prob, value, final_value, active)
        self.finished |= (t.terminated | t.truncated) & active
        self.last_step = torch.where(active, step, self.last_step)
        if t.round_reward is not None:  # each row's reward belongs to its last active step
            rows = torch.arange(self.buffer.num_envs, device=self.buffer.device)
            self.buffer.storage["reward"][self.last_step, rows] += t.round_reward

    def rollout(self) -> Rollout:
        return self.buffer.rollout(partial=True)

    def clear(self) -> None:
        self.buffer.clear()
        self.finished.zero_()
        self.last_step.zero_()

    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict() if include_buffer else None, "finished": self.finished.clone(),
                "last_step": self.last_step.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("buffer") is not None:
            self.buffer.load_state_dict(state["buffer"])
            self.finished = state["finished"].to(self.buffer.device).clone()
            if "last_step" in state:
                self.last_step = state["last_step"].to(self.buffer.device).clone()
        else:
            self.clear()
