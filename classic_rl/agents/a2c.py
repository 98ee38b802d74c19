"""A2C (Mnih et al. 2016, synchronous): n-step rollouts over vector envs, one actor-critic step each.

The advantage is GAE(λ) over the rollout; λ = 1 (the default) gives the classic n-step return
bootstrapped from V at the rollout's end, minus V(s_t) (seeds eq. 1.16-1.18 for n = 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import torch

from classic_rl import distributed
from classic_rl.agents.base import Transition, annealed_lr, rollout_shape
from classic_rl.optim import adam, clip_grad_norm, set_lr
from classic_rl.buffers.rollout import RolloutCollector
from classic_rl.config import ConfigError, non_negative, positive, unit_interval
from classic_rl.envs.base import EnvSpec
from classic_rl.losses import entropy_loss, policy_gradient_loss, value_loss
from classic_rl.nets.policy import Activation, Actor, Critic, unsupported_spaces
from classic_rl.returns import gae, normalize_advantage


@dataclass(frozen=True)
class A2CConfig:
    name: Literal["a2c"] = "a2c"
    gamma: float = field(default=0.99, metadata=unit_interval("discount factor"))
    gae_lambda: float = field(default=1.0, metadata=unit_interval("GAE λ (1: n-step returns)"))
    lr: float = field(default=7e-4, metadata=positive("Adam learning rate"))
    lr_end: Optional[float] = field(default=None, metadata=non_negative("anneal lr linearly to this"))
    lr_decay_steps: int = field(default=0, metadata=non_negative("env steps of the lr annealing"))
    # the rollout by steps (n of the n-step return; null and no batch_size: 5) or by samples (n x env.num_envs)
    rollout_steps: Optional[int] = field(default=None, metadata=positive("vector steps per rollout"))
    batch_size: Optional[int] = field(default=None, metadata=positive("samples per rollout, all envs"))
    normalize_advantage: bool = False  # (A - mean) / std over the rollout
    vf_coef: float = field(default=0.5, metadata=non_negative("value-loss coefficient"))
    ent_coef: float = field(default=0.0, metadata=non_negative("entropy-bonus coefficient"))
    max_grad_norm: float = field(default=0.5, metadata=positive("gradient clipping by global norm"))
    # the critic learns at lr x this: with Adam and separate networks vf_coef barely sets its pace
    critic_lr_scale: float = field(default=1.0, metadata=positive("critic lr / actor lr"))
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])  # actor's and critic's hidden widths
    activation: Activation = "tanh"  # hidden-layer activation (nets/mlp.py)
    log_std_init: float = 0.0  # initial log σ of the Gaussian policy (Box actions)
    normalize_obs: bool = False  # running mean/std of observations
    normalize_reward: bool = False  # divide rewards by the running std of the discounted return

    def __post_init__(self) -> None:
        if any(h <= 0 for h in self.hidden_sizes):
            raise ConfigError(f"config key 'hidden_sizes' = {self.hidden_sizes} must hold positive widths")

    @staticmethod
    def supports(spec: EnvSpec) -> str | None:
        """None if A2C can run on `spec`, else the reason it cannot."""
        return unsupported_spaces(spec.observation_space, spec.action_space)


class A2C:
    data_parallel = True  # several ranks (torchrun): classic_rl/distributed.py
    off_policy = False

    def __init__(self, cfg: A2CConfig, spec: EnvSpec, seed: int = 0) -> None:
        self.cfg, self.spec, self.device = cfg, spec, spec.device
        torch.manual_seed(seed)  # network initialisation
        self.actor = Actor(spec.observation_space, spec.action_space, cfg.hidden_sizes, cfg.activation,
                           cfg.log_std_init).to(self.device)
        self.critic = Critic(spec.observation_space, cfg.hidden_sizes, cfg.activation).to(self.device)
        self.params = [*self.actor.parameters(), *self.critic.parameters()]
        self.optimizer = adam([{"params": list(self.actor.parameters())},
                                {"params": list(self.critic.parameters()), "lr_scale": cfg.critic_lr_scale}], cfg.lr)
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed + 1)
        self.rollout_steps = rollout_shape(cfg, spec.num_envs, 5)[0]
        self.rollout = RolloutCollector.for_spec(spec, self.rollout_steps, self.actor, self.critic, self.generator,
                                                 cfg.normalize_obs, cfg.normalize_reward, cfg.gamma)
        self.env_steps = 0
        self.updates = 0

    def act(self, obs: torch.Tensor, explore: bool = True) -> torch.Tensor:
        return self.rollout.act(obs, explore)

    def observe(self, t: Transition) -> None:
        self.env_steps += t.reward.shape[0]
        self.rollout.observe(t)

    def ready(self) -> bool:
        return self.rollout.buffer.full

    @property
    def lr(self) -> float:
        return annealed_lr(self.cfg, self.env_steps)

    def update(self) -> dict[str, float]:
        c = self.cfg
        set_lr(self.optimizer, self.lr)
        r = self.rollout.buffer.rollout()
        advantage, returns = gae(r.reward, r.value, r.next_value, r.terminated, r.done, c.gamma, c.gae_lambda)
        obs, action = r.obs.flatten(0, 1), r.action.flatten(0, 1)  # [B = T * N, ...]
        advantage, returns = advantage.flatten(), returns.flatten()
        if c.normalize_advantage:
            advantage = normalize_advantage(advantage)
        dist = self.actor(obs)
        policy_loss = policy_gradient_loss(dist.log_prob(action), advantage)  # seeds eq. 1.23
        v_loss = value_loss(self.critic(obs), returns)
        entropy = dist.entropy().mean()
        loss = policy_loss + c.vf_coef * v_loss + c.ent_coef * entropy_loss(entropy)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(self.params)  # several ranks: the step on all ranks' rollouts
        grad_norm = clip_grad_norm(self.params, c.max_grad_norm)
        self.optimizer.step()
        self.rollout.buffer.clear()
        self.updates += 1
        return {"loss": loss.item(), "policy_loss": policy_loss.item(), "value_loss": v_loss.item(),
                "entropy": entropy.item(), "grad_norm": grad_norm.item(), "learning_rate": self.lr}

    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "counters": (self.env_steps, self.updates),
            **self.rollout.state_dict(include_buffer),  # "buffer" (the partial rollout), normalizers
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.env_steps, self.updates = state["counters"]
        self.rollout.load_state_dict(state)
