"""GRPO (Shao et al. 2024; seeds eq. 1.30-1.33): no critic; each sequence's advantage is its outcome
reward standardised within its group of G rollouts from the same start, broadcast to its tokens.

Works on any lock-step env (envs/base.py): a text env, where a group is G completions of one
prompt and a token is an action, or a classic env with `env.group_size` G, where a group is G
episodes from the same start state. One rollout = one round; the variants are named functions in
losses.py: `group_advantages` (scale_rewards), `aggregate_loss` (loss_agg), `sequence_log_ratio`
(importance_sampling=sequence, GSPO), `informative_groups` (dynamic sampling, DAPO), the k3 KL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import torch

from classic_rl import distributed
from classic_rl.buffers.rollout import LockstepCollector
from classic_rl.config import ConfigError, UserError, non_negative, positive
from classic_rl.envs.base import EnvSpec
from classic_rl.losses import (
    aggregate_denominator, aggregate_loss, clip_stats, clipped_surrogate, group_advantages, informative_groups, kl_estimate,
    masked, sequence_log_ratio,
)
from classic_rl.nets.policy import Activation, Actor, ActorCritic, unsupported_spaces
from classic_rl.agents.base import annealed_lr, load_round_agent_state, round_agent_state
from classic_rl.optim import adam, clip_grad_norm, micro_batch_backward, set_lr


@dataclass(frozen=True)
class GRPOConfig:
    name: Literal["grpo"] = "grpo"
    lr: float = field(default=1e-5, metadata=positive("Adam learning rate"))
    lr_end: Optional[float] = field(default=None, metadata=non_negative("anneal lr linearly to this"))
    lr_decay_steps: int = field(default=0, metadata=non_negative("env steps of the lr annealing"))
    scale_rewards: Literal["group", "batch", "none"] = "group"  # none: Dr. GRPO
    epsilon_low: float = field(default=0.2, metadata=positive("ratio clipped below at 1 - ε_low"))
    epsilon_high: float = field(default=0.2, metadata=positive("ratio clipped above at 1 + ε_high (DAPO: 0.28)"))
    # how token losses average: over all tokens, per sequence then over sequences, or summed per sequence
    loss_agg: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum"] = "seq_mean_token_mean"
    importance_sampling: Literal["token", "sequence"] = "token"  # sequence: GSPO
    beta: float = field(default=0.0, metadata=non_negative("k3 KL-to-reference coefficient; 0: no reference"))
    num_iterations: int = field(default=1, metadata=positive("passes (μ) over each round"))
    minibatches: int = field(default=1, metadata=positive("gradient steps per pass, sequences split evenly"))
    # forward/backward this many sequences at a time, gradients summed into the same step: less memory
    micro_batch_size: Optional[int] = field(default=None, metadata=positive("sequences per forward (null: all)"))
    dynamic_sampling: bool = False  # drop groups whose rewards are all equal (DAPO)
    max_grad_norm: float = field(default=1.0, metadata=positive("gradient clipping by global norm"))
    ent_coef: float = field(default=0.0, metadata=non_negative("entropy-bonus coefficient"))
    weight_decay: float = field(default=0.0, metadata=non_negative("AdamW weight decay"))
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])  # classic envs: the MLP policy
    activation: Activation = "tanh"  # classic envs: hidden-layer activation

    def __post_init__(self) -> None:
        if self.epsilon_low >= 1:
            raise ConfigError(f"config key 'epsilon_low' = {self.epsilon_low} is out of range; allowed: (0, 1)")

    @staticmethod
    def supports(spec: EnvSpec) -> str | None:
        if not spec.lockstep or spec.group_size < 2:
            return ("needs groups of rollouts from the same start: set env.group_size >= 2 "
                    "(e.g. env.group_size=8 env.num_envs=64)")
        if spec.text is not None:
            return None
        return unsupported_spaces(spec.observation_space, spec.action_space)


class GRPO:
    off_policy = False
    accepts_lm = True
    accepts_lockstep = True  # rounds of a lock-step env: every mean over the active rows only
    data_parallel = True  # several ranks (torchrun), each with its own groups: classic_rl/distributed.py

    def __init__(self, cfg: GRPOConfig, spec: EnvSpec, seed: int = 0, lm: Any = None) -> None:
        self.cfg, self.spec, self.device = cfg, spec, spec.device
        self.group_size = spec.group_size
        if cfg.dynamic_sampling and distributed.world_size() > 1:
            raise UserError("agent.dynamic_sampling=true keeps a different number of groups on each process; "
                            "set it to false to train on several processes (torchrun)")
        torch.manual_seed(seed)
        if spec.text is not None:
            from classic_rl.lm.policy import LMPolicy

            if lm is None:
                raise ConfigError(f"agent=grpo on env={spec.id} needs a language model: pass model=NAME")
            self.policy = LMPolicy(lm, spec.text, lm.temperature, value_head=False, reference=cfg.beta > 0)
        else:
            actor = Actor(spec.observation_space, spec.action_space, cfg.hidden_sizes, cfg.activation)
            self.policy = ActorCritic(actor, None, reference=cfg.beta > 0).to(self.device)
        self.params = self.policy.trainable_parameters()
        self.optimizer = adam([{"params": self.params}], cfg.lr, weight_decay=cfg.weight_decay)
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed + 1)
        self.collector = LockstepCollector.for_spec(spec, self.policy, self.generator)
        self.env_steps = 0
        self.updates = 0

    # ------------------------------------------------------------------ acting and storage
    def act(self, obs: torch.Tensor, explore: bool = True) -> torch.Tensor:
        return self.collector.act(obs, explore)

    def observe(self, t: Any) -> None:
        self.env_steps += int(t.active.sum()) if t.active is not None else t.reward.shape[0]
        self.collector.observe(t)

    def ready(self) -> bool:
        return self.collector.round_over

    # ------------------------------------------------------------------ learning
    @property
    def lr(self) -> float:
        return annealed_lr(self.cfg, self.env_steps)

    def update(self) -> dict[str, float]:
        c = self.cfg
        set_lr(self.optimizer, self.lr)
        r = self.collector.rollout()
        mask = r.active  # [T, N] real tokens / steps
        returns = masked(r.reward, mask).sum(0)  # [N] each sequence's outcome
        batch_mean, batch_std = distributed.mean_std(returns)  # over every rank's rows
        advantage = group_advantages(returns, self.group_size, c.scale_rewards, batch_std=batch_std)  # [N] (eq. 1.33)
        rows = torch.arange(returns.shape[0], device=self.device)
        if c.dynamic_sampling:
            rows = rows[informative_groups(returns, self.group_size)]
        out = {"reward_mean": batch_mean.item(), "reward_std": batch_std.item(),
               "sequence_length": mask.sum(0).float().mean().item(), "groups_kept": rows.numel() / self.group_size,
               "learning_rate": self.lr}
        if rows.numel() == 0:  # every group had equal rewards: no gradient this round
            self.collector.clear()
            return out
        obs, action, old_log_prob = r.obs[:, rows], r.action[:, rows], r.log_prob[:, rows]
        mask, advantage = mask[:, rows], advantage[rows]
        ref_log_prob = self.policy.reference_log_prob(obs, action) if c.beta > 0 else None
        stats: dict[str, torch.Tensor] = {}
        for _ in range(c.num_iterations):
            order = torch.randperm(rows.numel(), generator=self.generator, device=self.device)
            for part in order.tensor_split(min(c.minibatches, rows.numel())):
                part = part.sort().values  # a group's rows side by side: micro-batches share their prompt
                stats = self._gradient_step(obs[:, part], action[:, part], old_log_prob[:, part], advantage[part],
                                            mask[:, part], None if ref_log_prob is None else ref_log_prob[:, part])
        out.update({k: v.item() for k, v in stats.items()})
        self.collector.clear()
        self.updates += 1
        return out

    def _gradient_step(self, obs, action, old_log_prob, advantage, mask, ref_log_prob) -> dict[str, torch.Tensor]:
        """One step on the sequences of a minibatch: tokens [T, n], advantages [n]; computed in
        micro-batches of sequences whose losses share the minibatch's denominator, so they sum to it."""
        c = self.cfg
        # several ranks: the denominator of every rank's minibatch together, scaled so that the mean of
        # the ranks' gradients is the gradient of one process on the concatenated minibatch
        denominator = distributed.all_reduce_sum(aggregate_denominator(mask, c.loss_agg)) / distributed.world_size()
        self.optimizer.zero_grad(set_to_none=True)
        sums = micro_batch_backward(mask, c.micro_batch_size, lambda part: self._loss(
            obs[:, part], action[:, part], old_log_prob[:, part], advantage[part], mask[:, part],
            None if ref_log_prob is None else ref_log_prob[:, part], denominator))
        distributed.average_gradients(self.params)
        sums["grad_norm"] = clip_grad_norm(self.params, c.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)  # no gradients held while generating
        return sums

    def _loss(self, obs, action, old_log_prob, advantage, mask, ref_log_prob, denominator):
        """The GRPO objective of sequences [T, n] (negated, to minimise) and its stats."""
        c = self.cfg
        log_prob, entropy, _ = self.policy.evaluate(obs, action, entropy=c.ent_coef > 0)
        log_ratio = log_prob - old_log_prob
        if c.importance_sampling == "sequence":
            log_ratio = sequence_log_ratio(log_ratio, mask)
        per_token = clipped_surrogate(log_ratio, advantage.expand_as(log_ratio), c.epsilon_low, c.epsilon_high)
        stats = clip_stats(log_ratio, c.epsilon_low, c.epsilon_high, mask)
        if ref_log_prob is not None:
            kl = kl_estimate(ref_log_prob - log_prob)  # k3 of KL(π || π_ref), a ~ π (seeds eq. 1.32)
            per_token = per_token + c.beta * kl
            stats["kl_ref"] = kl.detach()[mask].mean()
        if entropy is not None:
            per_token = per_token - c.ent_coef * entropy
            stats["entropy"] = entropy.detach()[mask].mean()
        return aggregate_loss(per_token, mask, c.loss_agg, denominator), stats

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        return round_agent_state(self, include_buffer)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_round_agent_state(self, state)
