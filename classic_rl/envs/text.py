"""Text generation as a batched, lock-step environment: the observation is the token context, the
action is the next token, the reward comes at the end of the completion from the task.

    obs      [N, W] int64, W = prompt_width + max_new_tokens: the prompt left-padded to prompt_width,
             then the tokens generated so far, then pad. Column prompt_width + t holds the t-th action.
    action   [N] int64 token id
    episode  ends at EOS (terminated) or after max_new_tokens tokens (truncated).
    reward   0 on every step; the task's reward functions (envs/text_tasks.py) score the whole round
             in one call once its last row has ended, and that step's info["round_reward"] [N] holds
             each row's reward, which belongs to that row's last step (`spec.round_reward`, envs/base.py).
             With a learned reward model (env.reward_model) its score is the reward and the task's own
             is info["true_reward"] [N].

Lock-step (envs/base.py): a round gives every row a prompt, rows g*G .. g*G+G-1 share one
(`group_size` G, GRPO's groups); finished rows wait (`info["active"]` False) until all are done,
then the next round starts. That is what batched generation with a KV cache needs, and it keeps
one rollout row = one completion. The `eval` split holds prompts the `train` split never shows,
one per row in a fixed order, so `eval.episodes` = the split's size scores the whole held-out set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from classic_rl.config import UserError
from classic_rl.envs.base import BatchedEnv, EnvSpec, check_no_options
from classic_rl.envs.text_tasks import BUILTIN_TASKS, TextTask, make_task


TASKS = BUILTIN_TASKS  # the built-in text env ids (envs/text_tasks.py); env=text takes a dataset


def encode_prompt(tokenizer: Any, prompt: str, chat_template: bool = True, system_prompt: str | None = None) -> list[int]:
    """A prompt's token ids as the text envs feed them: in the tokenizer's chat template (when it has
    one and `chat_template`) with the generation prompt, else the plain text; `system_prompt` first."""
    if chat_template and getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + \
            [{"role": "user", "content": prompt}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        return list(ids)
    return tokenizer(f"{system_prompt}\n\n{prompt}" if system_prompt else prompt)["input_ids"]


@dataclass(frozen=True)
class TextSpec:
    """What an LM policy needs to read a text env's observations."""

    prompt_width: int
    max_new_tokens: int
    pad_id: int
    eos_id: int
    vocab_size: int
    chat_template: bool = True  # how prompts were encoded (encode_prompt): pair files are encoded the same way
    system_prompt: str | None = None


class TextVectorEnv(BatchedEnv):
    def __init__(
        self,
        task: TextTask | str,
        tokenizer: Any,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        seed: int = 0,
        max_new_tokens: int = 16,
        group_size: int = 1,
        split: str = "train",
        chat_template: bool = True,
        reward_model: Any = None,
        missing_eos_penalty: float | None = None,
    ) -> None:
        if isinstance(task, str):
            task = make_task(task, max_new_tokens=max_new_tokens)
        if tokenizer is None:
            raise UserError(f"env={task.name} needs a language model for its tokenizer; pass model=NAME "
                            "(e.g. model=smollm2-135m or model=tiny)")
        if num_envs % group_size:
            raise UserError(f"env.num_envs = {num_envs} is not a multiple of env.group_size = {group_size}")
        self.task, self.tokenizer = task, tokenizer
        # a learned reward (agents/reward_model.py, TRL's reward-function signature) in place of the task's;
        # the task's own reward is still computed, as info["true_reward"]
        self.reward_model = reward_model
        self.missing_eos_penalty = missing_eos_penalty  # minus this for a completion cut off without EOS
        self.rows = task.rows[split]
        self.num_envs, self.device = num_envs, torch.device(device)
        self.max_new_tokens, self.group_size, self.split = max_new_tokens, group_size, split
        self.prompts = task.prompts(split)
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        encoded = [self._encode(p, chat_template) for p in self.prompts]
        self.prompt_width = max(len(ids) for ids in encoded)
        table = torch.full((len(encoded), self.prompt_width), self.pad_id, dtype=torch.int64)
        for i, ids in enumerate(encoded):  # left padding: every prompt ends at column prompt_width - 1
            table[i, self.prompt_width - len(ids):] = torch.tensor(ids)
        self.prompt_tokens = table.to(self.device)  # [num_prompts, prompt_width]
        width = self.prompt_width + max_new_tokens
        vocab = len(tokenizer)
        self.single_observation_space = gym.spaces.MultiDiscrete(np.full(width, vocab, dtype=np.int64))
        self.single_action_space = gym.spaces.Discrete(vocab)
        self.text = TextSpec(self.prompt_width, max_new_tokens, self.pad_id, self.eos_id, vocab, chat_template,
                             task.system_prompt)
        self.spec = EnvSpec(
            id=task.name, num_envs=num_envs, observation_space=self.single_observation_space,
            action_space=self.single_action_space, max_episode_steps=max_new_tokens, reward_threshold=None,
            device=self.device, lockstep=True, group_size=group_size, text=self.text, round_reward=True,
        )
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)
        self.obs = torch.full((num_envs, width), self.pad_id, dtype=torch.int64, device=self.device)
        self.prompt_index = torch.zeros(num_envs, dtype=torch.int64)
        self.order = torch.zeros(0, dtype=torch.int64)  # training prompts still to come in this pass
        self.active = torch.ones(num_envs, dtype=torch.bool, device=self.device)
        self.t = 0  # tokens generated in this round
        self.samples: list[dict[str, Any]] = []  # this round's finished completions (row, prompt, completion)
        self.last_samples: list[dict[str, Any]] = []  # the last finished round's, with their rewards, in row order

    def _encode(self, prompt: str, chat_template: bool) -> list[int]:
        return encode_prompt(self.tokenizer, prompt, chat_template, self.task.system_prompt)

    # ------------------------------------------------------------------ the vector-env contract
    def _start_round(self) -> torch.Tensor:
        if self.split == "eval":  # the whole held-out set in order, every round the same
            index = torch.arange(self.num_envs) % len(self.prompts)
        else:
            index = self._next_prompts(self.num_envs // self.group_size).repeat_interleave(self.group_size)
        self.prompt_index = index
        self.samples = []
        self.obs.fill_(self.pad_id)
        self.obs[:, : self.prompt_width] = self.prompt_tokens[index.to(self.device)]
        self.active.fill_(True)
        self.t = 0
        return self.obs.clone()

    def _next_prompts(self, groups: int) -> torch.Tensor:
        """The next `groups` training prompts: passes over the whole split, each in a fresh random order
        (every prompt once per pass, as a data loader's epochs), not draws with replacement."""
        while len(self.order) < groups:
            self.order = torch.cat([self.order, torch.randperm(len(self.prompts), generator=self.generator)])
        index, self.order = self.order[:groups], self.order[groups:]
        return index

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[torch.Tensor, dict[str, Any]]:
        check_no_options(options, self)
        if seed is not None:
            self.generator.manual_seed(seed)
            self.order = self.order[:0]  # a new seed starts a new pass
        return self._start_round(), {}

    def step(self, actions: torch.Tensor):
        actions = self.checked_actions(actions, torch.long)
        active = self.active.clone()
        column = self.prompt_width + self.t
        self.obs[:, column] = torch.where(active, actions, torch.full_like(actions, self.pad_id))
        self.t += 1
        terminated = active & (actions == self.eos_id)
        truncated = active & ~terminated & (self.t >= self.max_new_tokens)
        done = terminated | truncated
        # truncation happens only at the last token: read it back to the host then, not every step
        cut_off = truncated.tolist() if self.t >= self.max_new_tokens else [False] * self.num_envs
        for row in done.nonzero().flatten().tolist():
            ids = self.completion_ids(row)
            self.samples.append({"row": row, "prompt": self.prompts[self.prompt_index[row]],
                                 "completion": self.tokenizer.decode(ids, skip_special_tokens=True), "ids": ids,
                                 "truncated": cut_off[row]})
        self.active &= ~done
        final_obs = self.obs.clone()
        info = {"final_obs": final_obs, "active": active}
        if not self.active.any():  # the round is over: score all of it in one call
            samples = sorted(self.samples, key=lambda sample: sample["row"])
            rows = [self.rows[self.prompt_index[s["row"]]] for s in samples]
            completions = [s["completion"] for s in samples]
            rewards = self.task.score(rows, completions, [s.pop("ids") for s in samples])
            if self.reward_model is not None:
                info["true_reward"] = torch.tensor(rewards, dtype=torch.float32, device=self.device)
                rewards = self.reward_model([row["prompt"] for row in rows], completions)
            if self.missing_eos_penalty:
                rewards = [r - self.missing_eos_penalty if s["truncated"] else r for r, s in zip(rewards, samples)]
            for sample, value in zip(samples, rewards):
                sample["reward"] = value
            self.last_samples = samples
            info["round_reward"] = torch.tensor(rewards, dtype=torch.float32, device=self.device)
        obs = self._start_round() if not self.active.any() else final_obs
        reward = torch.zeros(self.num_envs, device=self.device)
        return obs, reward, terminated, truncated, info

    def completion_ids(self, row: int) -> list[int]:
        """The token ids generated so far in `row` (EOS and pad dropped)."""
        tokens = self.obs[row, self.prompt_width: self.prompt_width + self.t]
        return tokens[(tokens != self.eos_id) & (tokens != self.pad_id)].tolist()

    def completion(self, row: int) -> str:
        """The text generated so far in `row`."""
        return self.tokenizer.decode(self.completion_ids(row), skip_special_tokens=True)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "obs": self.obs.clone(), "active": self.active.clone(),
                "prompt_index": self.prompt_index.clone(), "t": self.t, "order": self.order.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.obs = state["obs"].to(self.device).clone()
        self.active = state["active"].to(self.device).clone()
        self.prompt_index, self.t = state["prompt_index"].clone(), int(state["t"])
        self.order = state.get("order", self.order[:0]).clone()

    def close(self, **kwargs: Any) -> None:
        self.closed = True
