"""DPO (Rafailov et al. 2023; the seeds' DPO loss), online or offline, minimising the preference loss
`losses.dpo_loss` (sigmoid: DPO; ipo: IPO; hinge) on pairs' sequence log-probabilities against the
frozen reference (the start model; with LoRA, the base model with adapters off).

Online (as in Guo et al. 2024, "Direct Language Model Alignment from Online AI Feedback"): each round
samples G completions per prompt (a text env with `env.group_size` G), pairs the group's best
completion (chosen) against its worst (rejected) by the env's reward (the task's, or a learned
reward model's with env.reward_model), and drops groups whose best and worst tie.

Offline (`agent.pairs=FILE`, TRL's prompt/chosen/rejected rows): each update takes the next
`batch_size` pairs of the file (epochs in a seeded order) and takes no env steps; the run's step
count counts training pairs. Each pair's reference log-probs are computed once and kept.
Evaluation is the env's as for every LM agent: greedy held-out accuracy on the task.

A pair's two completions share their prompt, which the policy encodes once for both.

Under torchrun (classic_rl/distributed.py) online ranks pair their own groups and weight their loss by
their share of all ranks' pairs; offline ranks each take an equal part of every batch. Either way the
averaged gradient is the one of one process on all the pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

import torch

from classic_rl import distributed
from classic_rl.agents.base import annealed_lr, load_round_agent_state, round_agent_state
from classic_rl.buffers.rollout import LockstepCollector
from classic_rl.config import ConfigError, UserError, non_negative, positive
from classic_rl.envs.base import EnvSpec
from classic_rl.lm.pairs import PairSampler, encode_pairs, read_pairs
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
    # offline DPO on this pair file or list of files (JSONL / CSV / Parquet; rows with split=eval skipped)
    pairs: Union[str, list[str], None] = None
    batch_size: int = field(default=16, metadata=positive("offline: pairs per update"))
    max_completion_tokens: int = field(default=64, metadata=positive("offline: completion tokens kept"))

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
    data_parallel = True  # several ranks (torchrun): classic_rl/distributed.py
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
        self.policy_tokenizer = lm.tokenizer
        self.params = self.policy.trainable_parameters()
        self.optimizer = adam([{"params": self.params}], cfg.lr, weight_decay=cfg.weight_decay)
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed + 1)
        self.collector = LockstepCollector.for_spec(spec, self.policy, self.generator)
        self.env_steps = 0
        self.updates = 0
        self.offline = cfg.pairs is not None  # the trainer calls update() without stepping the env
        self.batch_size = cfg.batch_size  # offline: pairs per update, all ranks together
        if self.offline:
            distributed.check_divides(cfg.batch_size, "agent.batch_size")
        self.sampler = PairSampler(1, seed)
        self._pairs: list[dict[str, Any]] | None = None
        self._reference: torch.Tensor | None = None  # [pairs, 2] log π_ref of chosen, rejected; NaN: not yet

    @property
    def pairs(self) -> list[dict[str, Any]]:
        """Offline: the pair file's training rows, read on first use."""
        if self._pairs is None:
            self._pairs = [r for r in read_pairs(self.cfg.pairs, "agent.pairs") if r.get("split", "train") != "eval"]
            if not self._pairs:
                raise UserError(f"agent.pairs={self.cfg.pairs} has no training pairs (every row is split=eval)")
            self.sampler.size = len(self._pairs)
            self._reference = torch.full((len(self._pairs), 2), float("nan"), device=self.device)
        return self._pairs

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
        if self.offline:
            return self.offline_update()
        c = self.cfg
        set_lr(self.optimizer, self.lr)
        r = self.collector.rollout()
        returns = masked(r.reward, r.active).sum(0)  # [N] each completion's reward
        chosen, rejected = best_and_worst(returns, self.group_size)
        pairs = chosen.numel()  # this rank's; all ranks' below
        all_pairs = int(distributed.all_reduce_sum(torch.tensor([pairs], device=self.device)).item())
        reward_mean, reward_std = distributed.mean_std(returns)
        length = distributed.mean_std(r.active.sum(0).float())[0]
        out = {"reward_mean": reward_mean.item(), "reward_std": reward_std.item(), "sequence_length": length.item(),
               "pairs": float(all_pairs), "learning_rate": self.lr}
        if all_pairs == 0:  # every group tied: nothing to prefer this round
            self.collector.clear()
            return out
        rows = torch.stack([chosen, rejected], dim=1).flatten()  # chosen, rejected side by side: one prompt
        obs, action, mask = r.obs[:, rows], r.action[:, rows], r.active[:, rows]
        if pairs:
            ref = self.sequence_log_prob(self.policy.reference_log_prob(obs, action), mask)  # once per pair
        share = pairs * distributed.world_size() / all_pairs  # this rank's mean, weighted into the global one
        empty = obs.new_zeros(0, dtype=torch.float32)  # the statistics' names, zeros where a rank has no pairs
        stats = {k: torch.zeros(()) for k in ["loss", *dpo_loss(empty, empty, empty, empty, c.beta, c.loss)[1]]}
        for _ in range(c.epochs):
            self.optimizer.zero_grad(set_to_none=True)
            if pairs:  # a rank without pairs still takes part in the gradient average and the step
                log_prob = self.sequence_log_prob(self.policy.evaluate(obs, action, entropy=False)[0], mask)
                loss, stats = dpo_loss(log_prob[0::2], log_prob[1::2], ref[0::2], ref[1::2], c.beta, c.loss)
                (loss * share).backward()
                stats = {"loss": loss.detach(), **stats}
            distributed.average_gradients(self.params)
            grad_norm = clip_grad_norm(self.params, c.max_grad_norm)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        stats = distributed.mean_stats_over_ranks(stats, weight=pairs)
        out.update({k: float(v) for k, v in {**stats, "grad_norm": grad_norm}.items()})
        self.collector.clear()
        self.updates += 1
        return out

    def offline_update(self) -> dict[str, float]:
        """One step on the next `batch_size` pairs of the pair file."""
        c, mean = self.cfg, self.cfg.loss == "ipo"
        index = distributed.shard(self.sampler.next(self.batch_size))  # every rank draws the batch; takes its part
        rows = [self.pairs[i] for i in index.tolist()]
        text = self.spec.text
        batch = encode_pairs(self.policy_tokenizer, rows, text.chat_template, text.system_prompt,
                             c.max_completion_tokens, self.device)
        prompts, completions, mask = batch.interleaved()  # chosen, rejected side by side: one prompt
        missing = self._reference[index.to(self.device)].isnan().any(-1)
        if missing.any():  # each pair's reference log-probs once
            rows2 = missing.repeat_interleave(2)
            ref = self.policy.sequence_log_prob(prompts[rows2], completions[rows2], mask[rows2], reference=True,
                                                mean=mean)
            self._reference[index.to(self.device)[missing]] = ref.view(-1, 2)
        ref = self._reference[index.to(self.device)]  # [B, 2]
        set_lr(self.optimizer, self.lr)
        stats: dict[str, torch.Tensor] = {}
        for _ in range(c.epochs):
            self.optimizer.zero_grad(set_to_none=True)
            log_prob = self.policy.sequence_log_prob(prompts, completions, mask, mean=mean)
            loss, stats = dpo_loss(log_prob[0::2], log_prob[1::2], ref[:, 0], ref[:, 1], c.beta, c.loss)
            loss.backward()
            distributed.average_gradients(self.params)  # several ranks: the step on the whole batch
            grad_norm = clip_grad_norm(self.params, c.max_grad_norm)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.env_steps += self.batch_size
        self.updates += 1
        stats = distributed.mean_stats_over_ranks({"loss": loss.detach(), **stats})
        return {**{k: float(v) for k, v in {**stats, "grad_norm": grad_norm}.items()}, "pairs": float(self.batch_size),
                "learning_rate": self.lr}

    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        return {**round_agent_state(self, include_buffer), "sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_round_agent_state(self, state)
        if "sampler" in state:
            self.sampler.load_state_dict(state["sampler"])
