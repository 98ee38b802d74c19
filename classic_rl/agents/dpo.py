"""Online DPO (Rafailov et al. 2023; the seeds' DPO loss; online as in Guo et al. 2024, "Direct
Language Model Alignment from Online AI Feedback"): each round samples G completions per prompt
(a text env with `env.group_size` G), pairs the group's best completion (chosen) against its worst
(rejected) by the task's reward, drops groups whose best and worst tie, and minimises the preference
loss `losses.dpo_loss` (sigmoid: DPO; ipo: IPO; hinge) on the pairs' sequence log-probabilities
against the frozen reference (the start model; with LoRA, the base model with adapters off).

A pair's two completions share their prompt, which the policy encodes once for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import torch

from classic_rl.agents.base import annealed_lr, load_round_agent_state, round_agent_state
from classic_rl.buffers.rollout import LockstepCollector
from classic_rl.config import ConfigError, non_negative, positive
from classic_rl.envs.base import EnvSpec
from classic_rl.losses import dpo_loss, masked
from classic_rl.optim import adam, clip_grad_norm, set_lr


@dataclass(frozen=True)
class DPOConfig:
    name: Literal["dpo"] = "dpo"
    lr: float = field(default=1e-6, metadata=positive("Adam learning rate"))
    lr_end: Optional[float] = field(default=None, metadata=non_negative("anneal lr linearly to this"))
    lr_decay_steps: int = field(default=0, metadata=non_negative("env steps of the lr annealing"))
    beta: float = field(default=0.1, metadata=positive("β: strength of the pull to the reference"))
    loss: Literal["sigmoid", "ipo", "hinge"] = "sigmoid"  # DPO | IPO (per-token mean log-probs) | hinge
    epochs: int = field(default=1, metadata=positive("gradient steps on each round's pairs"))
    max_grad_norm: float = field(default=1.0, metadata=positive("gradient clipping by global norm"))
    weight_decay: float = field(default=0.0, metadata=non_negative("AdamW weight decay"))

    @staticmethod
    def supports(spec: EnvSpec) -> str | None:
        if spec.text is None:
            return "trains a language model on a text env (env=text-arith, env=text, ...; needs model=...)"
        if spec.group_size < 2:
            return "pairs completions of the same prompt: set env.group_size >= 2"
        return None


def best_and_worst(returns: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (chosen [k], rejected [k]) of each group's highest and lowest return, groups whose two tie
    dropped; returns [N] with N = groups x group_size (the first of equal rows wins)."""
    grouped = returns.view(-1, group_size)
    base = torch.arange(grouped.shape[0], device=returns.device) * group_size
    best, worst = grouped.argmax(dim=1), grouped.argmin(dim=1)
    keep = grouped.max(dim=1).values > grouped.min(dim=1).values
    return (base + best)[keep], (base + worst)[keep]


class DPO:
    off_policy = False
    accepts_lm = True
    accepts_lockstep = True

    def __init__(self, cfg: DPOConfig, spec: EnvSpec, seed: int = 0, lm: Any = None) -> None:
        from classic_rl.lm.policy import LMPolicy

        if lm is None:
            raise ConfigError(f"agent=dpo on env={spec.id} needs a language model: pass model=NAME")
        self.cfg, self.spec, self.device = cfg, spec, spec.device
        self.group_size = spec.group_size
        torch.manual_seed(seed)
        self.policy = LMPolicy(lm, spec.text, lm.temperature, value_head=False, reference=True)
        self.params = self.policy.trainable_parameters()
        self.optimizer = adam([{"params": self.params}], cfg.lr, weight_decay=cfg.weight_decay)
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed + 1)
        self.collector = LockstepCollector.for_spec(spec, self.policy, self.generator)
        self.env_steps = 0
        self.updates = 0

    def act(self, obs: torch.Tensor, explore: bool = True) -> torch.Tensor:
        return self.collector.act(obs, explore)

    def observe(self, t: Any) -> None:
        self.env_steps += int(t.active.sum()) if t.active is not None else t.reward.shape[0]
        self.collector.observe(t)

    def ready(self) -> bool:
        return self.collector.round_over

    @property
    def lr(self) -> float:
        return annealed_lr(self.cfg, self.env_steps)

    def sequence_log_prob(self, log_prob: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-token log-probs [T, n] -> each completion's [n]: summed, or averaged for IPO."""
        total = masked(log_prob, mask).sum(0)
        return total / mask.sum(0).clamp(min=1) if self.cfg.loss == "ipo" else total

    def update(self) -> dict[str, float]:
        c = self.cfg
        set_lr(self.optimizer, self.lr)
        r = self.collector.rollout()
        returns = masked(r.reward, r.active).sum(0)  # [N] each completion's reward
        chosen, rejected = best_and_worst(returns, self.group_size)
        out = {"reward_mean": returns.mean().item(), "reward_std": returns.std().item(),
               "sequence_length": r.active.sum(0).float().mean().item(), "pairs": float(chosen.numel()),
               "learning_rate": self.lr}
        if chosen.numel() == 0:  # every group tied: nothing to prefer this round
            self.collector.clear()
            return out
        rows = torch.stack([chosen, rejected], dim=1).flatten()  # chosen, rejected side by side: one prompt
        obs, action, mask = r.obs[:, rows], r.action[:, rows], r.active[:, rows]
        ref = self.sequence_log_prob(self.policy.reference_log_prob(obs, action), mask)  # once per pair
        stats: dict[str, torch.Tensor] = {}
        for _ in range(c.epochs):
            self.optimizer.zero_grad(set_to_none=True)
            log_prob = self.sequence_log_prob(self.policy.evaluate(obs, action, entropy=False)[0], mask)
            loss, stats = dpo_loss(log_prob[0::2], log_prob[1::2], ref[0::2], ref[1::2], c.beta, c.loss)
            loss.backward()
            stats = {"loss": loss.detach(), **stats, "grad_norm": clip_grad_norm(self.params, c.max_grad_norm)}
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        out.update({k: float(v) for k, v in stats.items()})
        self.collector.clear()
        self.updates += 1
        return out

    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        return round_agent_state(self, include_buffer)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_round_agent_state(self, state)
