"""REINFORCE (Williams 1992): Monte-Carlo reward-to-go policy gradient over vector envs.

∇J ≈ mean_t (G_t - b) ∇ log π(a_t | s_t), G_t = Σ_{t'>=t} γ^{t'-t} r_{t'} (seeds eq. 1.8). Only steps
whose episode ends inside the rollout are used (their G_t is complete); the unfinished tail of each
env's last episode waits for no one and is dropped. A time-limit truncation bootstraps from
V(final obs) with the value baseline; without a critic a truncated episode has no complete return
and is dropped too (treating the time limit as termination would teach the policy to fear it).
Baselines b: none, the batch mean of G, or a learned V(s_t) (REINFORCE with baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import torch

from classic_rl import distributed
from classic_rl.agents.base import Transition, annealed_lr
from classic_rl.optim import adam, clip_grad_norm, set_lr
from classic_rl.buffers.rollout import RolloutCollector
from classic_rl.config import ConfigError, non_negative, positive, unit_interval
from classic_rl.envs.base import EnvSpec
from classic_rl.losses import entropy_loss, policy_gradient_loss, value_loss
from classic_rl.nets.policy import Activation, Actor, Critic, unsupported_spaces
from classic_rl.returns import complete_episode_mask, reward_to_go


@dataclass(frozen=True)
class ReinforceConfig:
    name: Literal["reinforce"] = "reinforce"
    baseline: Literal["none", "mean", "value"] = "value"  # b in G_t - b: none, the batch mean, or a learned V(s_t)
    gamma: float = field(default=0.99, metadata=unit_interval("discount factor"))
    lr: float = field(default=1e-3, metadata=positive("Adam learning rate"))
    lr_end: Optional[float] = field(default=None, metadata=non_negative("anneal lr linearly to this"))
    lr_decay_steps: int = field(default=0, metadata=non_negative("env steps of the lr annealing"))
    rollout_steps: int = field(default=500, metadata=positive("vector steps per rollout (T)"))
    normalize_advantage: bool = False  # (G - b) / std(G - b) over the used steps
    vf_coef: float = field(default=0.5, metadata=non_negative("value-loss coefficient (baseline=value)"))
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
        """None if REINFORCE can run on `spec`, else the reason it cannot."""
        return unsupported_spaces(spec.observation_space, spec.action_space)


class Reinforce:
    off_policy = False
    data_parallel = True  # several ranks (torchrun): classic_rl/distributed.py

    def __init__(self, cfg: ReinforceConfig, spec: EnvSpec, seed: int = 0) -> None:
        self.cfg, self.spec, self.device = cfg, spec, spec.device
        torch.manual_seed(seed)  # network initialisation
        self.actor = Actor(spec.observation_space, spec.action_space, cfg.hidden_sizes, cfg.activation,
                           cfg.log_std_init).to(self.device)
        self.critic = None
        if cfg.baseline == "value":
            self.critic = Critic(spec.observation_space, cfg.hidden_sizes, cfg.activation).to(self.device)
        groups = [{"params": list(self.actor.parameters())}]
        if self.critic is not None:
            groups.append({"params": list(self.critic.parameters()), "lr_scale": cfg.critic_lr_scale})
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = adam(groups, cfg.lr)
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed + 1)
        self.rollout_steps = cfg.rollout_steps
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
        returns = reward_to_go(r.reward, r.next_value, r.terminated, r.done, c.gamma)  # [T, N]; V = 0 w/o critic
        # complete returns only; without a critic to bootstrap, an episode cut by the time limit is incomplete too
        used = complete_episode_mask(r.done, r.done if self.critic is not None else r.terminated)  # [T, N]
        obs, action, returns = r.obs[used], r.action[used], returns[used]  # [B, ...] complete returns only
        self.rollout.buffer.clear()
        self.updates += 1
        used_total = int(distributed.all_reduce_sum(torch.tensor([returns.numel()])).item())  # over every rank
        if used_total == 0:  # no episode ended in this rollout
            return {"learning_rate": self.lr, "used_fraction": 0.0}
        stats = {}
        if c.baseline == "value":
            value = self.critic(obs)
            advantage = returns - value.detach()
        elif c.baseline == "mean":
            advantage = returns - distributed.all_reduce_sum(returns.sum()) / used_total
        else:
            advantage = returns
        if c.normalize_advantage and used_total > 1:
            advantage = advantage / (distributed.mean_std(advantage)[1] + 1e-8)
        self.optimizer.zero_grad(set_to_none=True)
        if returns.numel() > 0:  # several ranks: one may have no complete episode this rollout
            dist = self.actor(obs)
            policy_loss = policy_gradient_loss(dist.log_prob(action), advantage)  # seeds eq. 1.8
            entropy = dist.entropy().mean()
            v_loss = value_loss(value, returns) if c.baseline == "value" else 0.0
            loss = policy_loss + c.vf_coef * v_loss + c.ent_coef * entropy_loss(entropy)
            # this rank's share of the mean over every rank's steps, as the ranks' gradients are averaged
            (loss * (returns.numel() * distributed.world_size() / used_total)).backward()
            stats.update(loss=loss, policy_loss=policy_loss, entropy=entropy)
            if c.baseline == "value":
                stats["value_loss"] = v_loss
        distributed.average_gradients(self.params)
        stats["grad_norm"] = clip_grad_norm(self.params, c.max_grad_norm)
        self.optimizer.step()
        return {**{k: v.item() for k, v in stats.items()}, "learning_rate": self.lr,
                "used_fraction": returns.numel() / used.numel()}

    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict() if self.critic is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "counters": (self.env_steps, self.updates),
            **self.rollout.state_dict(include_buffer),  # "buffer" (the partial rollout), normalizers
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.env_steps, self.updates = state["counters"]
        self.rollout.load_state_dict(state)
