"""Preference pairs for DPO and reward models: TRL's format (`prompt`, `chosen`, `rejected`), read from
JSONL / CSV / Parquet, tokenized the way the text envs feed prompts, and scored in one pass.

    prompts    [B, P]  left-padded prompt tokens (the env's chat template, system prompt)
    chosen     [B, T]  the preferred completion's tokens + EOS, filled with EOS after its end
    rejected   [B, T]  the other completion, likewise
    *_mask     [B, T]  True on a completion's own tokens (its EOS included)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from classic_rl.config import UserError
from classic_rl.envs.text import encode_prompt
from classic_rl.envs.text_tasks import check_rows, read_rows


def read_pairs(source: Any, key: str = "agent.pairs") -> list[dict[str, Any]]:
    """Rows with string `prompt`, `chosen` and `rejected` (non-empty); one-line errors. `source`: a file
    path, a list of paths (their rows one after the other), or rows (a list of dicts, a datasets.Dataset)."""
    if isinstance(source, (list, tuple)) and source and all(isinstance(s, str) for s in source):
        return [row for path in source for row in read_pairs(path, key)]
    rows = read_rows(source, key) if isinstance(source, str) else check_rows(source, key)
    for i, row in enumerate(rows):
        missing = [c for c in ("chosen", "rejected") if not isinstance(row.get(c), str)]
        if missing:
            raise UserError(f"{key}: row {i} has no {' / '.join(repr(c) for c in missing)} column (a string); "
                            "a pair row is {prompt, chosen, rejected}")
        empty = [c for c in ("chosen", "rejected") if not row[c].strip()]
        if empty:
            raise UserError(f"{key}: row {i} has an empty {empty[0]!r} completion")
    return rows


@dataclass(frozen=True)
class PairBatch:
    prompts: torch.Tensor
    chosen: torch.Tensor
    chosen_mask: torch.Tensor
    rejected: torch.Tensor
    rejected_mask: torch.Tensor

    def interleaved(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(prompts [2B, P], completions [2B, T], masks [2B, T]): chosen, rejected, chosen, ... so that a
        pair's two rows share one prompt encoding in `LMPolicy`'s one-pass scoring."""
        completions = torch.stack([self.chosen, self.rejected], dim=1).flatten(0, 1)
        mask = torch.stack([self.chosen_mask, self.rejected_mask], dim=1).flatten(0, 1)
        return self.prompts.repeat_interleave(2, dim=0), completions, mask


def encode_pairs(tokenizer: Any, rows: list[dict[str, Any]], chat_template: bool = True,
                 system_prompt: str | None = None, max_completion_tokens: int | None = None,
                 device: str | torch.device = "cpu") -> PairBatch:
    """Tokenize pairs (see the module docstring); completions longer than `max_completion_tokens`
    (EOS included) are cut."""
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    prompts = [encode_prompt(tokenizer, row["prompt"], chat_template, system_prompt) for row in rows]

    def completion(text: str) -> list[int]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]
        return ids[:max_completion_tokens] if max_completion_tokens else ids

    chosen = [completion(row["chosen"]) for row in rows]
    rejected = [completion(row["rejected"]) for row in rows]
    P, T = max(map(len, prompts)), max(map(len, chosen + rejected))
    prompt_tensor = torch.full((len(rows), P), pad, dtype=torch.int64)
    for i, ids in enumerate(prompts):
        prompt_tensor[i, P - len(ids):] = torch.tensor(ids)

    def right_padded(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.full((len(seqs), T), eos, dtype=torch.int64)
        mask = torch.zeros((len(seqs), T), dtype=torch.bool)
        for i, ids in enumerate(seqs):
            tokens[i, : len(ids)] = torch.tensor(ids)
            mask[i, : len(ids)] = True
        return tokens.to(device), mask.to(device)

    return PairBatch(prompt_tensor.to(device), *right_padded(chosen), *right_padded(rejected))


def split_pairs(rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]] | None, eval_fraction: float,
                seed: int, key: str = "agent.pairs") -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """(training pairs, held-out pairs, a note or None): `eval_rows` when given, else the file's `split`
    column (train | eval), else the pairs of a seeded `eval_fraction` of the distinct prompts (a
    prompt's pairs stay on one side, so held-out accuracy is on prompts training never saw)."""
    if eval_rows is not None:
        return [r for r in rows if r.get("split", "train") != "eval"], eval_rows, None
    if any("split" in r for r in rows):
        bad = sorted({str(r.get("split")) for r in rows} - {"train", "eval"})
        if bad:
            raise UserError(f"{key}: column 'split' holds {bad[0]!r}; it may hold train or eval")
        train, held = [r for r in rows if r.get("split") == "train"], [r for r in rows if r.get("split") == "eval"]
        if train and held:
            return train, held, None
    prompts = sorted({r["prompt"] for r in rows})
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(prompts), generator=generator).tolist()
    held_prompts = {prompts[i] for i in order[: max(1, round(eval_fraction * len(prompts)))]}
    if len(held_prompts) == len(prompts):
        raise UserError(f"{key}: all {len(rows)} pairs share one prompt; held-out pairs need other prompts: pass "
                        "agent.eval_pairs=FILE")
    train = [r for r in rows if r["prompt"] not in held_prompts]
    held = [r for r in rows if r["prompt"] in held_prompts]
    note = (f"{key}: no split column and no agent.eval_pairs: the pairs of {len(held_prompts)} of "
            f"{len(prompts)} prompts ({len(held)} pairs) are held out for evaluation")
    return train, held, note


class PairSampler:
    """Batches of pair indices: passes over the data, each in a fresh seeded order (a data loader's epochs)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.zeros(0, dtype=torch.int64)

    def next(self, batch_size: int) -> torch.Tensor:
        while len(self.order) < batch_size:
            self.order = torch.cat([self.order, torch.randperm(self.size, generator=self.generator)])
        index, self.order = self.order[:batch_size], self.order[batch_size:]
        return index

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self.order.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()


def pair_margins(rows: list[dict[str, Any]], device: str | torch.device = "cpu") -> torch.Tensor | None:
    """The rows' `margin` column [B] (TRL's RewardTrainer and Llama 2's margin), or None when no row has one."""
    if not any("margin" in r for r in rows):
        return None
    return torch.tensor([float(r.get("margin", 0.0)) for r in rows], device=device)
