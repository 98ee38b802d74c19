"""A causal LM as the policy of a text env: π(next token | context), with a KV cache for acting and
one forward pass for the log-probs of every token of stored completions.

Observation layout: envs/text.py (left-padded prompt in columns [0, P), the t-th action in column
P + t). A prompt's real tokens are everything after its left padding (`prompt_mask`), so a pad id
inside a prompt is attended to: SmolLM2 pads with its EOS, `<|im_end|>`, which the chat template
also puts after each turn. Positions count real tokens only (`position_ids` = cumsum(attention
mask) - 1), so a left-padded prompt sees the positions it would see alone.

Acting (`act_step`): the first call of a round encodes the prompts once and keeps the KV cache;
each later call feeds only the token chosen last (the context grows by one column a step). If the
observation is not the cached context plus one token (an evaluation ran in between, or a resume),
the cache is rebuilt from the whole context. Training (`evaluate`): the log-probs of every token of
the round's completions in one batched pass (`_score`: each distinct prompt encoded once, then all
completions on top of its cache); logits at column P - 1 + t score action t. An optional value head (a linear layer on the last hidden
state, zero-initialised) gives V(context) for PPO.
"""

from __future__ import annotations

import copy
import inspect
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from classic_rl.envs.text import TextSpec
from classic_rl.lm.model import LanguageModel
from classic_rl.nets.policy import Categorical


def prompt_mask(prompts: torch.Tensor, pad_id: int) -> torch.Tensor:
    """[n, P] bool: True from each row's first non-pad token on (the left padding is False).

    Built from the left-pad length, not from `token != pad_id`: a pad id after the first real token
    is part of the prompt (SmolLM2's chat template ends every turn with its pad token)."""
    return (prompts != pad_id).long().cumsum(dim=-1) > 0


def positions_of(mask: torch.Tensor) -> torch.Tensor:
    """Position ids [n, W] counting real tokens only: a left-padded row sees the positions it would alone."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def _hidden_size(model: nn.Module) -> int:
    config = model.config
    return getattr(config, "hidden_size", None) or config.n_embd


class LMPolicy(nn.Module):
    def __init__(self, lm: LanguageModel, text: TextSpec, temperature: float = 1.0, value_head: bool = False,
                 reference: bool = False) -> None:
        super().__init__()
        self.model, self.lora, self.text, self.temperature = lm.model, lm.lora, text, temperature
        self.value_head = nn.Linear(_hidden_size(lm.model), 1) if value_head else None
        if self.value_head is not None:
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)
        # KL terms need π_ref: with LoRA the base model (adapters off), else a frozen copy of the start
        self.reference = None
        if reference and not self.lora:
            self.reference = copy.deepcopy(lm.model).requires_grad_(False).eval()
        # the token that may never be sampled: pad, when it is not EOS
        self._banned = text.pad_id if text.pad_id != text.eos_id else None
        base = lm.model.get_base_model() if hasattr(lm.model, "get_base_model") else lm.model
        # transformers 5 renamed past_key_values to cache; take whichever this version's forward has
        self._cache_kw = "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"
        self._cache: Any = None
        self._context: torch.Tensor | None = None  # the observation the cache holds (columns < P + t)
        self._t = 0
        self.min_shared_prefix = 4  # prompts sharing at least this many leading tokens encode them once
        self.pack_tokens = 1024  # tokens per scoring forward (attention within one costs their square)

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        return params + ([] if self.value_head is None else list(self.value_head.parameters()))

    def _logits(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()  # no copy at temperature 1 with nothing banned: [n, T, V] is large
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if self._banned is not None:
            logits = logits.index_fill(-1, torch.tensor([self._banned], device=logits.device), float("-inf"))
        return logits

    # ------------------------------------------------------------------ acting with a KV cache
    def prompt_width(self, obs: torch.Tensor) -> int:
        """Columns of the prompt in a text env's obs [..., W]: W minus the completion's max_new_tokens
        (the envs of one task, training and held-out, may pad their prompts to different widths)."""
        return obs.shape[-1] - self.text.max_new_tokens

    def _forward(self, tokens: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any = None,
                 keep: int = 1, hidden: bool = False, model: nn.Module | None = None):
        """One forward of token ids [n, w]; `mask` is the 2-D padding mask [n, W] or a 4-D additive one."""
        mask = mask if mask.dim() == 4 else mask.long()
        return (model or self.model)(input_ids=tokens, attention_mask=mask, position_ids=positions,
                                     use_cache=cache is not None, logits_to_keep=keep, output_hidden_states=hidden,
                                     **({self._cache_kw: cache} if cache is not None else {}))

    @torch.no_grad()
    def act_step(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Next-token logits [N, V] (temperature applied) and V(context) [N] or None, for obs [N, W]."""
        P, pad, t = self.prompt_width(obs), self.text.pad_id, self._t
        hidden = self.value_head is not None
        # the cache holds columns [0, P + t) of the last observation; this one should add column P + t.
        # A round goes on only while some row is active, and an active row's new token is never pad
        # (pad is banned, or it is EOS and ends the row): a column of pads is a new round, even one
        # whose prompts equal the last round's (pad == EOS, every row ended at its first token)
        continues = (self._cache is not None and self._context.shape == obs.shape and P + t < obs.shape[1]
                     and torch.equal(obs[:, : P + t], self._context[:, : P + t])
                     and bool((obs[:, P + t] != pad).any()) and bool((obs[:, P + t + 1:] == pad).all()))
        if continues:
            token = obs[:, P + t: P + t + 1]
            self._mask = torch.cat([self._mask, torch.ones_like(token, dtype=torch.bool)], dim=1)
            self._positions = self._positions + 1
            out = self._forward(token, self._mask, self._positions[:, None], self._cache, hidden=hidden)
            t += 1
        else:  # a new round (or an unknown context): encode the whole context once
            from transformers import DynamicCache

            filled = (obs[:, P:] != pad).any(0).nonzero()  # generated columns holding a token
            t = int(filled.max()) + 1 if filled.numel() else 0
            context = obs[:, : P + t]
            if t == 0:  # a new round: encode each distinct prompt once, copy its cache to its rows
                prompts, rows = torch.unique(context, dim=0, return_inverse=True)
                out, self._cache, mask, last = self._encode_prompts(prompts, hidden=hidden)
                self._cache.reorder_cache(rows)
                self._mask, self._positions = mask[rows], last[rows]
                out.logits = out.logits[rows]
                if hidden:
                    out.hidden_states = (out.hidden_states[-1][rows],)
            else:
                self._mask = torch.cat([prompt_mask(context[:, :P], pad),
                                        torch.ones_like(context[:, P:], dtype=torch.bool)], 1)
                positions = positions_of(self._mask)
                self._positions = positions[:, -1]
                self._cache = DynamicCache()
                out = self._forward(context, self._mask, positions, self._cache, hidden=hidden)
        self._context, self._t = obs.clone(), t
        value = None
        if hidden:
            value = self.value_head(out.hidden_states[-1][:, -1].float()).squeeze(-1)
        return self._logits(out.logits[:, -1]), value

    def reset_cache(self) -> None:
        self._cache, self._context, self._t = None, None, 0

    def act(self, obs: torch.Tensor, explore: bool, generator: torch.Generator | None = None):
        """-> (action [N], log π(action) [N], V [N] or zeros): sampled, or greedy when explore=False."""
        logits, value = self.act_step(obs)
        dist = Categorical(logits)
        action = dist.sample_by_cdf(generator) if explore else dist.mode()  # one uniform per row, not per token
        if value is None:
            value = torch.zeros(obs.shape[0], device=obs.device)
        return action, action, dist.log_prob(action), value

    # ------------------------------------------------------------------ one pass over stored rounds
    def _sequences(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """obs [T, n, W], action [T, n] -> tokens [n, P + T], attention mask, position ids."""
        P = self.prompt_width(obs)
        tokens = torch.cat([obs[0, :, :P], action.T.long()], dim=1)
        mask = torch.cat([prompt_mask(obs[0, :, :P], self.text.pad_id), torch.ones_like(action.T, dtype=torch.bool)],
                         dim=1)
        return tokens, mask, positions_of(mask)

    def _shared_prefix(self, prompts: torch.Tensor, real: torch.Tensor) -> int:
        """Length of the longest common prefix of real tokens of distinct left-padded prompts [u, P] (a chat
        template's system turn), short of each prompt's last token; 0 below `min_shared_prefix`."""
        u, P = prompts.shape
        length = real.sum(-1)
        shortest = int(length.min())
        if u == 1 or shortest < 2:
            return 0
        aligned = prompts.gather(1, (P - length)[:, None] + torch.arange(shortest, device=prompts.device))
        same = (aligned == aligned[:1]).all(0)
        prefix = min(int(same.long().cumprod(0).sum()), shortest - 1)  # every row keeps a token of its own
        return prefix if prefix >= self.min_shared_prefix else 0

    def _encode_prompts(self, prompts: torch.Tensor, hidden: bool = False):
        """Encode distinct left-padded prompts [u, P] into a new KV cache (acting) -> (output, cache,
        attention mask [u, W] of the cache's columns, position of each prompt's last token [u]).

        The prompts' shared prefix is encoded once and its cache copied to every row; each row's rest
        follows, left-padded, so that a row's columns are [prefix, pad, rest]. The attention mask hides
        those pads and positions count real tokens, so every row computes what it would alone. The
        output's logits and hidden states are the rest's (their last column is each prompt's last token).
        """
        from transformers import DynamicCache

        u, P = prompts.shape
        real = prompt_mask(prompts, self.text.pad_id)
        length = real.sum(-1)  # [u]
        cache = DynamicCache()
        prefix = self._shared_prefix(prompts, real)
        if prefix == 0:
            out = self._forward(prompts, real, positions_of(real), cache, hidden=hidden)
            return out, cache, real, length - 1
        start = int(P - length[0])
        head = prompts[:1, start: start + prefix]  # [1, prefix]
        ones = torch.ones_like(head, dtype=torch.bool)
        width = int(length.max()) - prefix  # columns of the longest rest
        columns = torch.arange(width, device=prompts.device)
        rest_real = columns >= (width - (length - prefix))[:, None]  # [u, width], left-padded
        rest = torch.where(rest_real, prompts[:, P - width:], torch.full_like(prompts[:, :width], self.text.pad_id))
        mask = torch.cat([ones.expand(u, prefix), rest_real], dim=1)
        self._forward(head, ones, positions_of(ones), cache)
        cache.reorder_cache(torch.zeros(u, dtype=torch.long, device=prompts.device))
        out = self._forward(rest, mask, positions_of(mask)[:, prefix:], cache, hidden=hidden)
        return out, cache, mask, length - 1

    def _pack(self, prompts: torch.Tensor, rows: torch.Tensor, completion: torch.Tensor):
        """One sequence holding distinct left-padded prompts [u, P] and the completions [n, C] of rows whose
        prompt is `rows` [n], with the attention that makes each row see only [prompt; its completion]:
        -> (tokens [L], positions [L], additive attention mask [L, L], index [n, C + 1] of the token
        whose next-token logits score each of the row's C + 1 actions).

        Layout: [shared prefix | rest of prompt 0 | ... | rest of prompt u-1 | completion 0 | ... | n-1],
        pads dropped; a prompt's rest sees the prefix and itself, a completion the prefix, its prompt's
        rest and itself, each causally; positions count the row's own tokens. Every weight is then used
        by one forward over (prefix + rests + n x C) tokens, with no KV-cache copies.
        """
        u, P = prompts.shape
        n, C = completion.shape
        device = prompts.device
        real = prompt_mask(prompts, self.text.pad_id)
        length = real.sum(-1)  # [u]
        prefix = self._shared_prefix(prompts, real)
        position = positions_of(real)  # [u, P]
        in_rest = real & (position >= prefix)
        start = int(P - length[0])
        rest_length = length - prefix  # [u], each >= 1
        tokens = torch.cat([prompts[0, start: start + prefix], prompts[in_rest], completion.reshape(-1)])
        positions = torch.cat([torch.arange(prefix, device=device), position[in_rest],
                               (length[rows, None] + torch.arange(C, device=device)).reshape(-1)])
        none = torch.full((prefix,), -1, device=device)
        group = torch.cat([none, torch.arange(u, device=device).repeat_interleave(rest_length),
                           rows.repeat_interleave(C)])  # whose prompt a token belongs to; -1: everyone's
        row = torch.cat([none, torch.full((int(rest_length.sum()),), -1, device=device),
                         torch.arange(n, device=device).repeat_interleave(C)])  # whose completion; -1: a prompt's
        index = torch.arange(tokens.shape[0], device=device)
        sees = ((index[None, :] <= index[:, None]) & ((group[None, :] == -1) | (
            (group[None, :] == group[:, None]) & ((row[None, :] == -1) | (row[None, :] == row[:, None])))))
        dtype = self.model.get_input_embeddings().weight.dtype
        mask = torch.zeros(sees.shape, dtype=dtype, device=device).masked_fill_(~sees, torch.finfo(dtype).min)
        last = prefix + rest_length.cumsum(0) - 1  # [u] each prompt's last token
        first = prefix + int(rest_length.sum())
        scoring = torch.cat([last[rows, None], first + torch.arange(n * C, device=device).view(n, C)], dim=1)
        return tokens, positions, mask, scoring

    def _score(self, obs: torch.Tensor, action: torch.Tensor, model: nn.Module | None = None,
               hidden: bool = False, all_logits: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits [n, T, V] scoring action t from context t (and the last hidden states [n, T, H]).

        Rows are scored in packs (`_pack`): each distinct prompt (and their shared prefix) is encoded
        once and every completion attends to its own prompt, in one forward per pack of at most
        `pack_tokens` tokens; the same computation as one forward over [prompt; completion] per row,
        at (distinct prompts x P + n x T) tokens instead of n x (P + T). With gradient checkpointing
        it is that plain forward instead. `all_logits=False` (hidden states only, a reward model): the
        LM head runs on one position alone and the logits returned are not the scores.
        """
        T, P = action.shape[0], self.prompt_width(obs)
        checkpointing = getattr(self.model, "is_activation_checkpointing", None)  # transformers >= 5's name
        if checkpointing is None:
            checkpointing = getattr(self.model, "is_gradient_checkpointing", False)
        if checkpointing and torch.is_grad_enabled():
            tokens, mask, positions = self._sequences(obs, action)
            out = self._forward(tokens, mask, positions, keep=T + 1 if all_logits else 1, hidden=hidden, model=model)
            states = out.hidden_states[-1][:, -T - 1: -1] if hidden else None
            return out.logits[:, :-1], states
        prompts, rows = torch.unique(obs[0, :, :P], dim=0, return_inverse=True)  # [u, P], [n]
        completion = action.T[:, :-1].long()  # [n, T - 1]: actions 0 .. T-2, the context of 1 .. T-1
        # packs of whole prompts (with all their rows): attention over a pack costs L², the weights L
        real_length = prompt_mask(prompts, self.text.pad_id).sum(-1)
        cost = real_length + torch.bincount(rows, minlength=prompts.shape[0]) * (T - 1)  # [u] tokens per prompt
        pack_of = torch.div(cost.cumsum(0) - cost, self.pack_tokens, rounding_mode="floor")  # [u]
        logits, states, order = [], [], []
        for pack in torch.unique(pack_of).tolist():
            members = (pack_of == pack).nonzero().squeeze(-1)  # the pack's prompts
            mine = torch.isin(rows, members).nonzero().squeeze(-1)  # and their rows
            tokens, positions, mask, scoring = self._pack(prompts[members], torch.searchsorted(members, rows[mine]),
                                                          completion[mine])
            keep = scoring.reshape(-1) if all_logits else scoring.reshape(-1)[-1:]
            out = self._forward(tokens[None], mask[None, None], positions[None], keep=keep, hidden=hidden, model=model)
            # a view of [1, L', V], not out.logits[0]: a select's backward would zero-fill a second copy
            logits.append(out.logits.view(*scoring.shape, -1) if all_logits else out.logits)
            states.append(out.hidden_states[-1][0, scoring] if hidden else None)
            order.append(mine)
        if len(order) == 1:
            return logits[0], states[0]
        back = torch.argsort(torch.cat(order))  # rows in their original order
        return (torch.cat(logits)[back] if all_logits else logits[0]), (torch.cat(states)[back] if hidden else None)

    def evaluate(self, obs: torch.Tensor, action: torch.Tensor, entropy: bool = True):
        """-> (log π(a_t | context_t) [T, n], entropy [T, n] or None, V(context_t) [T, n] or None)."""
        hidden = self.value_head is not None
        logits, states = self._score(obs, action, hidden=hidden)
        log_probs = torch.log_softmax(self._logits(logits), dim=-1)  # [n, T, V]
        log_prob = log_probs.gather(-1, action.T.long().unsqueeze(-1)).squeeze(-1).T  # [T, n]
        ent = None
        if entropy:
            ent = -(log_probs.exp() * log_probs.nan_to_num(neginf=0.0)).sum(-1).T
        value = self.value_head(states.float()).squeeze(-1).T if hidden else None  # [T, n]
        return log_prob, ent, value

    def sequence_log_prob(self, prompts: torch.Tensor, completions: torch.Tensor, mask: torch.Tensor,
                          reference: bool = False, mean: bool = False) -> torch.Tensor:
        """log π(completion | prompt) [n], summed over the completion's tokens (`mask` [n, T]; `mean`:
        averaged), for left-padded prompts [n, P] and completions [n, T], in one pass that encodes
        each distinct prompt once (a pair's two completions share it). `reference`: under π_ref."""
        n, P = prompts.shape
        obs = torch.cat([prompts, torch.full((n, self.text.max_new_tokens), self.text.pad_id, dtype=prompts.dtype,
                                             device=prompts.device)], dim=1)[None]  # [1, n, P + max_new_tokens]
        action = completions.T  # [T, n]
        per_token = (self.reference_log_prob(obs, action) if reference else
                     self.evaluate(obs, action, entropy=False)[0]).T  # [n, T]
        total = torch.where(mask, per_token, torch.zeros_like(per_token)).sum(-1)
        return total / mask.sum(-1).clamp(min=1) if mean else total

    def sequence_score(self, prompts: torch.Tensor, completions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """A reward model's r(prompt, completion) [n]: the value head on the last hidden state at the
        completion's last real token (`mask` [n, T], EOS included), for left-padded prompts [n, P]."""
        n, T = completions.shape
        obs = torch.cat([prompts, torch.full((n, self.text.max_new_tokens), self.text.pad_id, dtype=prompts.dtype,
                                             device=prompts.device)], dim=1)[None]
        # one column more than the completion: state t is the context prompt + completion[:t], so the
        # state after the last real token is t = its length
        action = torch.cat([completions, completions[:, -1:]], dim=1).T  # [T + 1, n]
        _, states = self._score(obs, action, hidden=True, all_logits=False)  # [n, T + 1, H]
        last = states.gather(1, mask.sum(-1).view(n, 1, 1).expand(n, 1, states.shape[-1])).squeeze(1)
        return self.value_head(last.float()).squeeze(-1)

    @torch.no_grad()
    def reference_log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log π_ref(a_t | context_t) [T, n] under the reference model."""
        if self.lora:
            context, model = self.model.disable_adapter(), self.model
        else:
            context, model = nullcontext(), self.reference
        with context:
            logits, _ = self._score(obs, action, model=model)
        log_probs = torch.log_softmax(self._logits(logits), dim=-1)
        return log_probs.gather(-1, action.T.long().unsqueeze(-1)).squeeze(-1).T
