"""DDPG (Lillicrap et al. 2016): a deterministic actor μ(s) trained through a Q(s, a) critic, experience
replay, Polyak-averaged target networks, Gaussian or Ornstein-Uhlenbeck exploration noise.

TD3's three changes (Fujimoto et al. 2018) are separate options that compose freely: `twin_critics`
(clipped double Q: the target takes the min of two critics), `policy_delay` (the actor and the target
networks move once every d critic steps) and `target_noise` (target policy smoothing). Preset `td3`
turns on all three.

Actions live in the Box [low, high]; every noise scale (noise_std, target_noise, target_noise_clip)
is in units of the half-range (high - low) / 2, so 0.1 means 10% of the way from centre to bound.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import gymnasium as gym
import numpy as np
import torch

from classic_rl.agents.base import Transition, due_update_rounds, linear_schedule
from classic_rl.buffers import Batch, NStepWindow, ReplayBuffer
from classic_rl.config import ConfigError, check, non_negative, positive, unit_interval
from classic_rl.envs.base import EnvSpec
from classic_rl.losses import (
    clipped_double_q_target, critic_mse_loss, deterministic_policy_loss, smoothed_target_action,
)
from classic_rl.nets import DeterministicActor, QCritic
from classic_rl.noise import make_noise
from classic_rl.optim import adam, clip_grad_norm, set_lr


@dataclass(frozen=True)
class DDPGConfig:
    name: Literal["ddpg"] = "ddpg"
    gamma: float = field(default=0.99, metadata=unit_interval("discount factor"))
    actor_lr: float = field(default=1e-3, metadata=positive("Adam learning rate of the actor"))
    critic_lr: float = field(default=1e-3, metadata=positive("Adam learning rate of the critic(s)"))
    lr_end_fraction: float = field(default=1.0, metadata=non_negative("both lrs anneal linearly to lr x this"))
    lr_decay_steps: int = field(default=0, metadata=non_negative("env steps of the lr annealing"))
    batch_size: int = field(default=256, metadata=positive("transitions per gradient step"))
    buffer_size: int = field(default=1_000_000, metadata=positive("replay capacity in transitions"))
    learning_starts: int = field(default=10_000, metadata=non_negative("env steps of uniform random actions"))
    train_freq: int = field(default=1, metadata=positive("env steps between update rounds"))
    gradient_steps: int = field(default=1, metadata=positive("critic gradient steps per update round"))
    # true: the first round after learning_starts also runs the warm-up's learning_starts / train_freq
    # rounds (a burst on the warm-up data); false: rounds start at learning_starts, as SB3 and CleanRL
    catch_up_warmup: bool = False
    # while env steps < gradient_steps_until, rounds run `gradient_steps_early` steps instead (high early UTD)
    gradient_steps_early: Optional[int] = field(default=None, metadata=positive("gradient steps per early round"))
    gradient_steps_until: int = field(default=0, metadata=non_negative("env steps of the early phase"))
    tau: float = field(default=0.005, metadata=check(lambda v: 0 < v <= 1, "a number in (0, 1]",
                                                                "Polyak target update: θ' ← τ θ + (1 - τ) θ'"))
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])  # actor and each critic
    n_step: int = field(default=1, metadata=positive("steps summed in each return"))
    twin_critics: bool = False  # TD3: y uses min(Q1', Q2'); both critics regress on it
    policy_delay: int = field(default=1, metadata=positive("critic steps per actor and target update"))
    target_noise: float = field(default=0.0, metadata=non_negative("σ of the target-action smoothing noise"))
    target_noise_clip: float = field(default=0.5, metadata=non_negative("the smoothing noise is clipped to ±this"))
    exploration_noise: Literal["gaussian", "ou"] = "gaussian"  # acting noise: Gaussian or Ornstein-Uhlenbeck
    noise_std: float = field(default=0.1, metadata=non_negative("σ of the exploration noise"))
    noise_std_end: Optional[float] = field(default=None, metadata=non_negative("anneal noise_std linearly to this"))
    noise_decay_steps: int = field(default=0, metadata=non_negative("env steps of the noise annealing"))
    ou_theta: float = field(default=0.15, metadata=positive("OU mean-reversion rate θ"))
    ou_dt: float = field(default=1e-2, metadata=positive("OU time step dt"))
    max_grad_norm: Optional[float] = field(default=None, metadata=positive("gradient clipping (null: none)"))

    def __post_init__(self) -> None:
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"config key 'batch_size' = {self.batch_size} is larger than 'buffer_size' = "
                f"{self.buffer_size}; allowed: batch_size <= buffer_size"
            )
        if any(h <= 0 for h in self.hidden_sizes):
            raise ConfigError(f"config key 'hidden_sizes' = {self.hidden_sizes} must hold positive widths")

    @staticmethod
    def supports(spec: EnvSpec) -> str | None:
        """None if DDPG can run on `spec`, else the reason it cannot."""
        if not isinstance(spec.action_space, gym.spaces.Box):
            return (f"needs continuous (Box) actions for its deterministic actor, {spec.id} has "
                    f"{spec.action_space}")
        if not (np.isfinite(spec.action_space.low).all() and np.isfinite(spec.action_space.high).all()):
            return f"needs bounded actions (tanh actor), {spec.id} has {spec.action_space}"
        if not isinstance(spec.observation_space, (gym.spaces.Box, gym.spaces.Discrete)):
            return f"needs Box or Discrete observations, not {spec.observation_space}"
        return None


class DDPG:
    off_policy = True

    def __init__(self, cfg: DDPGConfig, spec: EnvSpec, seed: int = 0) -> None:
        self.cfg, self.spec, self.device = cfg, spec, spec.device
        torch.manual_seed(seed)  # network initialisation
        self.actor = DeterministicActor(spec.observation_space, spec.action_space, cfg.hidden_sizes).to(self.device)
        self.critic = QCritic(spec.observation_space, spec.action_space, cfg.hidden_sizes,
                              num_critics=2 if cfg.twin_critics else 1).to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_params, self.critic_params = list(self.actor.parameters()), list(self.critic.parameters())
        self.online_params = self.actor_params + self.critic_params
        self.target_params = list(self.actor_target.parameters()) + list(self.critic_target.parameters())
        self.actor_optimizer = adam(self.actor_params, cfg.actor_lr)
        self.critic_optimizer = adam(self.critic_params, cfg.critic_lr)
        obs_dtype = torch.int64 if spec.discrete_observations else torch.float32
        action_shape = tuple(spec.action_space.shape)
        self.buffer = ReplayBuffer(cfg.buffer_size, tuple(spec.observation_space.shape), obs_dtype,
                                   action_shape, torch.float32, self.device)
        self.nstep = NStepWindow(cfg.n_step, cfg.gamma)
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed + 1)
        self.noise = make_noise(cfg.exploration_noise, (spec.num_envs, *action_shape), cfg.noise_std,
                                cfg.ou_theta, cfg.ou_dt, self.device)
        self.low, self.high, self.scale = self.actor.low, self.actor.high, self.actor.scale  # [D]
        self.target_std, self.target_clip = cfg.target_noise * self.scale, cfg.target_noise_clip * self.scale  # [D]
        self.env_steps = 0  # transitions observed
        self.trained_steps = 0  # env steps already paid for by update rounds
        self.gradient_steps = 0  # critic steps
        self.actor_steps = 0  # actor (and target) updates

    # ------------------------------------------------------------------ acting
    @property
    def noise_std(self) -> float:
        c = self.cfg
        end = c.noise_std if c.noise_std_end is None else c.noise_std_end
        return linear_schedule(c.noise_std, end, c.noise_decay_steps, self.env_steps)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool = True) -> torch.Tensor:
        n = obs.shape[0]
        if explore and self.env_steps < self.cfg.learning_starts:  # warm-up: uniform over the Box
            u = torch.rand((n, *self.actor.action_shape), device=self.device, generator=self.generator)
            return self.low + (self.high - self.low) * u.flatten(1)
        action = self.actor(obs)  # [N, D]
        if not explore:
            return action
        self.noise.std = self.noise_std
        action = action + self.scale * self.noise.sample(self.generator).flatten(1)
        return torch.max(torch.min(action, self.high), self.low)

    # ------------------------------------------------------------------ storage
    def observe(self, t: Transition) -> None:
        self.env_steps += t.reward.shape[0]
        self.noise.reset(t.terminated | t.truncated)
        self.nstep.push_into(t, self.buffer)  # stores the n-step transition that started n-1 steps ago

    def ready(self) -> bool:
        return self._due_rounds() > 0

    def _due_rounds(self) -> int:
        c = self.cfg
        return due_update_rounds(self.env_steps, self.trained_steps, c.learning_starts, c.train_freq,
                                 c.catch_up_warmup)

    # ------------------------------------------------------------------ learning
    @property
    def lr_fraction(self) -> float:
        c = self.cfg
        return linear_schedule(1.0, c.lr_end_fraction, c.lr_decay_steps, self.env_steps)

    @property
    def steps_per_round(self) -> int:
        c = self.cfg
        early = c.gradient_steps_early is not None and self.env_steps < c.gradient_steps_until
        return c.gradient_steps_early if early else c.gradient_steps

    @torch.no_grad()
    def target(self, batch: Batch) -> torch.Tensor:
        """y = r + γ^n (1 - terminated) min_k Q'_k(s', ã) [B], ã = μ'(s') (+ clipped noise: TD3 smoothing)."""
        c = self.cfg
        next_action = self.actor_target(batch.next_obs)  # [B, D]
        if c.target_noise > 0:
            noise = torch.randn(next_action.shape, device=self.device, generator=self.generator) * self.target_std
            next_action = smoothed_target_action(next_action, noise, self.target_clip, self.low, self.high)
        return clipped_double_q_target(batch.reward, self.critic_target(batch.next_obs, next_action),
                                       batch.terminated, batch.discount)

    def update(self) -> dict[str, float]:
        c = self.cfg
        rounds = self._due_rounds()
        self.trained_steps += rounds * c.train_freq
        set_lr(self.actor_optimizer, c.actor_lr * self.lr_fraction)
        set_lr(self.critic_optimizer, c.critic_lr * self.lr_fraction)
        stats: dict[str, float] = {}
        for _ in range(rounds * self.steps_per_round):
            batch = self.buffer.sample(c.batch_size, self.generator)
            critic_loss, critic_stats = critic_mse_loss(self.critic(batch.obs, batch.action), self.target(batch))
            self.critic_optimizer.zero_grad(set_to_none=True)
            critic_loss.backward()
            if c.max_grad_norm is not None:
                clip_grad_norm(self.critic_params, c.max_grad_norm)
            self.critic_optimizer.step()
            self.gradient_steps += 1
            if self.gradient_steps % c.policy_delay == 0:  # TD3 §5.2: delayed actor and target updates
                actor_loss = self._actor_step(batch.obs)
                self._update_targets()
                stats["actor_loss"] = actor_loss
            stats["critic_loss"], stats["q_mean"] = critic_loss.detach(), critic_stats["q_mean"]
        out = {k: float(v) for k, v in stats.items()}
        if "critic_loss" in out:
            out["loss"] = out["critic_loss"]
        return {**out, "noise_std": self.noise_std, "learning_rate": c.actor_lr * self.lr_fraction}

    def _actor_step(self, obs: torch.Tensor) -> torch.Tensor:
        """One step on -Q_1(s, μ(s)); gradients for the actor only (the critic's weights get none)."""
        loss = deterministic_policy_loss(self.critic.q1(obs, self.actor(obs)))
        grads = torch.autograd.grad(loss, self.actor_params)
        for p, g in zip(self.actor_params, grads):
            p.grad = g
        if self.cfg.max_grad_norm is not None:
            clip_grad_norm(self.actor_params, self.cfg.max_grad_norm)
        self.actor_optimizer.step()
        self.actor_steps += 1
        return loss.detach()

    @torch.no_grad()
    def _update_targets(self) -> None:
        # Polyak: θ' <- τ θ + (1 - τ) θ' (DDPG §3), actor and critics at once
        torch._foreach_lerp_(self.target_params, self.online_params, self.cfg.tau)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "noise": self.noise.state_dict(),
            "counters": (self.env_steps, self.trained_steps, self.gradient_steps, self.actor_steps),
            "nstep": self.nstep.state_dict(),
            "buffer": self.buffer.state_dict() if include_buffer else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("actor", "critic", "actor_target", "critic_target", "actor_optimizer", "critic_optimizer"):
            getattr(self, name).load_state_dict(state[name])
        self.generator.set_state(state["generator"])
        self.noise.load_state_dict(state["noise"])
        self.env_steps, self.trained_steps, self.gradient_steps, self.actor_steps = state["counters"]
        self.nstep.load_state_dict(state["nstep"])
        if state.get("buffer") is not None:
            self.buffer.load_state_dict(state["buffer"])
