"""A Bradley-Terry reward model (the seeds' RLHF reward model; Ouyang et al. 2022, Stiennon et al. 2020):
the language model with a scalar head on the last hidden state of the completion's last real token,

    r(x, y) = w^T h_last(x, y) + b,       loss = -log σ(r(x, y_w) - r(x, y_l) - m)  (+ centring)

trained offline on preference pairs (`agent.pairs`, TRL's `prompt, chosen, rejected` format), full
or LoRA (model.lora.r). It takes no env steps: each update draws the next `batch_size` pairs, and the
run's step count counts training pairs; under torchrun each rank takes its equal part of every
batch. Evaluation is pairwise accuracy on held-out pairs (the
summary's eval_return_mean) and, with `agent.minimal_pairs`, on those too. A trained run is a reward
function for text envs: `env.reward_model=RUN_DIR` (lm/reward_model.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

import torch

from classic_rl import distributed
from classic_rl.agents.base import annealed_lr
from classic_rl.config import ConfigError, UserError, non_negative, positive
from classic_rl.envs.base import EnvSpec
from classic_rl.losses import bradley_terry_loss
from classic_rl.optim import adam, clip_grad_norm, set_lr


@dataclass(frozen=True)
class RewardModelConfig:
    name: Literal["reward_model"] = "reward_model"
    # JSONL / CSV / Parquet of prompt, chosen, rejected (+ split, margin), or a list of such files; required
    pairs: Union[str, list[str], None] = None
    eval_pairs: Optional[str] = None  # held-out pairs; null: the split column, else eval_fraction of the prompts
    minimal_pairs: Optional[str] = None  # more held-out pairs, scored as eval/minimal_pair_accuracy
    eval_fraction: float = field(default=0.1, metadata=positive("share of prompts held out when nothing else is"))
    batch_size: int = field(default=16, metadata=positive("pairs per update"))
    lr: float = field(default=1e-5, metadata=positive("Adam learning rate"))
    lr_end: Optional[float] = field(default=None, metadata=non_negative("anneal lr linearly to this"))
    lr_decay_steps: int = field(default=0, metadata=non_negative("training pairs of the lr annealing"))
    center_coef: float = field(default=0.0, metadata=non_negative("reward centring, TRL's center_rewards_coefficient"))
    max_completion_tokens: int = field(default=64, metadata=positive("completion tokens kept (EOS included)"))
    # the score head starts as N(0, head_init_std²) weights and a zero bias (TRL's sequence-classification
    # head: the model's initializer_range, 0.02); 0: all zeros, every pair a tie until it moves
    head_init_std: float = field(default=0.02, metadata=non_negative("std of the score head's initial weights"))
    max_grad_norm: float = field(default=1.0, metadata=positive("gradient clipping by global norm"))
    weight_decay: float = field(default=0.0, metadata=non_negative("AdamW weight decay"))
    eval_batch_size: int = field(default=64, metadata=positive("pairs per forward in evaluation"))

    @staticmethod
    def supports(spec: EnvSpec) -> str | None:
        if spec.text is None:
            return "scores completions of a language model: use a text env (env=text-arith, env=text, ...; model=...)"
        return None


class RewardModel:
    off_policy = False
    accepts_lm = True
    accepts_lockstep = True
    offline = True  # the trainer calls update() without stepping the env
    data_parallel = True  # several ranks (torchrun), each with its part of every batch: classic_rl/distributed.py

    def __init__(self, cfg: RewardModelConfig, spec: EnvSpec, seed: int = 0, lm: Any = None) -> None:
        from classic_rl.lm.pairs import PairSampler
        from classic_rl.lm.policy import LMPolicy

        if lm is None:
            raise ConfigError(f"agent=reward_model on env={spec.id} needs a language model: pass model=NAME")
        self.cfg, self.spec, self.device = cfg, spec, spec.device
        self.tokenizer, self.seed = lm.tokenizer, seed
        torch.manual_seed(seed)
        self.policy = LMPolicy(lm, spec.text, value_head=True, reference=False)
        if cfg.head_init_std > 0:
            torch.nn.init.normal_(self.policy.value_head.weight, std=cfg.head_init_std)
        self.params = self.policy.trainable_parameters()
        self.optimizer = adam([{"params": self.params}], cfg.lr, weight_decay=cfg.weight_decay)
        self.sampler = PairSampler(1, seed)
        self.batch_size = cfg.batch_size  # env steps (training pairs) per update, all ranks together
        distributed.check_divides(cfg.batch_size, "agent.batch_size")
        self.env_steps = 0
        self.updates = 0
        self.notes: list[str] = []
        self._data: tuple[list, list, list] | None = None  # read on first use: a restored model needs no pairs

    # ------------------------------------------------------------------ data
    @property
    def data(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """(training pairs, held-out pairs, minimal pairs)."""
        if self._data is None:
            self._data = load_pair_data(self.cfg, self.seed, self.notes)
            self.sampler.size = len(self._data[0])
        return self._data

    def encode(self, rows: list[dict[str, Any]]):
        from classic_rl.lm.pairs import encode_pairs

        text = self.spec.text
        return encode_pairs(self.tokenizer, rows, text.chat_template, text.system_prompt,
                            self.cfg.max_completion_tokens, self.device)

    def rewards(self, rows: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(r(x, y_w) [B], r(x, y_l) [B]); the pair's prompt is encoded once for both."""
        r = self.policy.sequence_score(*self.encode(rows).interleaved())
        return r[0::2], r[1::2]

    # ------------------------------------------------------------------ the agent contract
    def act(self, obs: torch.Tensor, explore: bool = True) -> torch.Tensor:
        raise UserError("agent=reward_model scores completions and takes no actions; use it as a reward: "
                        "env.reward_model=RUN_DIR")

    def observe(self, t: Any) -> None:
        pass

    def ready(self) -> bool:
        return True

    @property
    def lr(self) -> float:
        return annealed_lr(self.cfg, self.env_steps)

    def update(self) -> dict[str, float]:
        from classic_rl.lm.pairs import pair_margins

        train, _, _ = self.data
        index = self.sampler.next(self.batch_size)  # the same on every rank; each takes its part
        rows = [train[i] for i in distributed.shard(index).tolist()]
        set_lr(self.optimizer, self.lr)
        self.policy.train()
        chosen, rejected = self.rewards(rows)
        loss, stats = bradley_terry_loss(chosen, rejected, pair_margins(rows, self.device), self.cfg.center_coef)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(self.params)  # several ranks: the step on the whole batch
        grad_norm = clip_grad_norm(self.params, self.cfg.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.env_steps += self.batch_size
        self.updates += 1
        stats = distributed.mean_stats_over_ranks({"loss": loss.detach(), **stats})
        return {**{k: float(v) for k, v in stats.items()}, "grad_norm": float(grad_norm), "learning_rate": self.lr}

    @torch.no_grad()
    def accuracy(self, rows: list[dict[str, Any]]) -> torch.Tensor:
        """[B] 1.0 where r(chosen) > r(rejected), else 0.0."""
        self.policy.eval()
        out = []
        for i in range(0, len(rows), self.cfg.eval_batch_size):
            chosen, rejected = self.rewards(rows[i: i + self.cfg.eval_batch_size])
            out.append((chosen > rejected).float())
        return torch.cat(out)

    def evaluation(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """The trainer's evaluation of a reward model: (per held-out pair correct [B], lengths [B] (ones),
        extra scalars: minimal_pair_accuracy)."""
        _, held, minimal = self.data
        correct = self.accuracy(held)
        extra = {"minimal_pair_accuracy": float(self.accuracy(minimal).mean())} if minimal else {}
        return correct, torch.ones_like(correct), extra

    @torch.no_grad()
    def score(self, prompts: list[str], completions: list[str]) -> list[float]:
        """r(prompt, completion) for text pairs, in eval_batch_size chunks."""
        self.policy.eval()
        out: list[float] = []
        for i in range(0, len(prompts), self.cfg.eval_batch_size):
            rows = [{"prompt": p, "chosen": c, "rejected": c}
                    for p, c in zip(prompts[i: i + self.cfg.eval_batch_size], completions[i: i + self.cfg.eval_batch_size])]
            batch = self.encode(rows)
            out += self.policy.sequence_score(batch.prompts, batch.chosen, batch.chosen_mask).tolist()
        return out

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "sampler": self.sampler.state_dict(), "counters": (self.env_steps, self.updates)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        if "sampler" in state:
            self.sampler.load_state_dict(state["sampler"])
        self.env_steps, self.updates = state["counters"]


def load_pair_data(cfg: Any, seed: int, notes: list[str]) -> tuple[list, list, list]:
    """(training, held-out, minimal) pairs of an offline agent's config (`pairs`, `eval_pairs`,
    `minimal_pairs`, `eval_fraction`); one-line errors naming the key."""
    from classic_rl.lm.pairs import read_pairs, split_pairs

    if cfg.pairs is None:
        raise UserError(f"agent={cfg.name} trains on preference pairs: pass agent.pairs=FILE.jsonl (rows of "
                        "prompt, chosen, rejected)")
    rows = read_pairs(cfg.pairs, "agent.pairs")
    eval_rows = read_pairs(cfg.eval_pairs, "agent.eval_pairs") if getattr(cfg, "eval_pairs", None) else None
    train, held, note = split_pairs(rows, eval_rows, getattr(cfg, "eval_fraction", 0.1), seed)
    if note:
        notes.append(note)
    if not train:
        raise UserError(f"agent.pairs={cfg.pairs} leaves no training pairs (every row is split=eval)")
    minimal = read_pairs(cfg.minimal_pairs, "agent.minimal_pairs") if getattr(cfg, "minimal_pairs", None) else []
    return train, held, minimal
