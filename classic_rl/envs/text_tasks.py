"""Text tasks: prompts (rows of a dataset) and reward functions, for the text envs (envs/text.py).

A task is rows, each a dict with a `prompt` and any other columns (`answer`, ...), split into
`train` and `eval`, and reward functions with TRL's signature:

    fn(prompts: list[str], completions: list[str], **columns) -> list[float | None]

called once per lock-step round on the whole batch; `columns` are the batch's dataset columns
(lists, one entry per row) plus `completion_ids` (the generated token ids) and `max_new_tokens`. Several functions are
combined as sum_i w_i * r_i over the ones that give a number: None means "no opinion" (TRL's rule;
a row with no opinion at all scores 0).

Sources of rows: a file (`env.dataset=PATH`: JSONL, CSV or Parquet, with a `prompt` column and an
optional `split` column of train/eval, or `env.eval_dataset=PATH` for the held-out rows), a Python
list of dicts or a `datasets.Dataset` (classic_rl.train(dataset=...)), a procedural generator of
the optional `reasoning-gym` package (`env.dataset=reasoning_gym:NAME`, `env.dataset_size`,
`env.dataset_seed`), or a built-in task (`text-arith`, `text-arith-concise`, `text-digits`).
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classic_rl.config import UserError

RewardFunc = Callable[..., list]
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


# ------------------------------------------------------------------------------------------------
# built-in reward functions (TRL's signature)


def parse_number(text: str) -> float | None:
    """The last number in `text` (commas in 1,234 dropped), or None."""
    numbers = _NUMBER.findall(text.replace(",", ""))
    return float(numbers[-1]) if numbers else None


def same_number(a: Any, b: Any) -> bool:
    try:
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    except (TypeError, ValueError):
        return False


def last_number(prompts: list[str], completions: list[str], answer: list[Any] | None = None, **_: Any) -> list[float]:
    """1 when the completion's last number equals the row's `answer` column, else 0."""
    if answer is None:
        raise UserError("reward last_number needs an 'answer' column in the dataset")
    return [float(same_number(parse_number(c), a)) for c, a in zip(completions, answer)]


def exact_match(prompts: list[str], completions: list[str], answer: list[Any] | None = None, **_: Any) -> list[float]:
    """1 when the completion is the `answer` column and nothing else (surrounding whitespace and a
    final period allowed), else 0."""
    if answer is None:
        raise UserError("reward exact_match needs an 'answer' column in the dataset")
    return [float(c.strip().rstrip(".").strip() == str(a).strip()) for c, a in zip(completions, answer)]


def format_reward(pattern: str) -> RewardFunc:
    """1 when the whole completion (stripped) matches the regular expression `pattern` (env.format_pattern)."""
    compiled = re.compile(pattern, re.DOTALL)

    def format(prompts: list[str], completions: list[str], **_: Any) -> list[float]:
        return [float(compiled.fullmatch(c.strip()) is not None) for c in completions]

    return format


def length_penalty(prompts: list[str], completions: list[str], completion_ids: list[list[int]] | None = None,
                   max_new_tokens: int = 1, **_: Any) -> list[float]:
    """-(tokens generated) / env.max_new_tokens, in [-1, 0]: weigh it to prefer short completions."""
    lengths = [len(ids) for ids in completion_ids] if completion_ids is not None else [len(c) for c in completions]
    return [-n / max(max_new_tokens, 1) for n in lengths]


def digit_fraction(prompts: list[str], completions: list[str], **_: Any) -> list[float]:
    """The fraction of the completion's characters that are digits (0 when empty): text-digits' toy reward."""
    return [sum(ch.isdigit() for ch in c) / len(c) if c else 0.0 for c in completions]


BUILTIN_REWARDS: dict[str, RewardFunc] = {"last_number": last_number, "exact_match": exact_match,
                                           "length_penalty": length_penalty, "digit_fraction": digit_fraction}
# `format` is built from env.format_pattern


# ------------------------------------------------------------------------------------------------
# the task


@dataclass
class TextTask:
    """Rows per split and the reward functions that score a batch of completions."""

    name: str
    rows: dict[str, list[dict[str, Any]]]  # "train" / "eval" -> rows with a "prompt"
    reward_funcs: list[RewardFunc]
    reward_weights: list[float]
    system_prompt: str | None = None
    max_new_tokens: int = 16
    notes: list[str] = field(default_factory=list)

    def prompts(self, split: str) -> list[str]:
        return [row["prompt"] for row in self.rows[split]]

    def score(self, rows: Sequence[dict[str, Any]], completions: list[str],
              completion_ids: list[list[int]] | None = None) -> list[float]:
        """The combined reward of each completion (one call per reward function for the whole batch)."""
        n = len(completions)
        columns = {key: [row.get(key) for row in rows] for key in sorted({k for row in rows for k in row}) if
                   key != "prompt"}
        prompts = [row["prompt"] for row in rows]
        total = [0.0] * n
        for fn, weight in zip(self.reward_funcs, self.reward_weights):
            name = getattr(fn, "__name__", repr(fn))
            values = fn(prompts, completions, completion_ids=completion_ids, max_new_tokens=self.max_new_tokens,
                        **columns)
            if not isinstance(values, (list, tuple)) or len(values) != n:
                got = f"{len(values)} values" if isinstance(values, (list, tuple)) else type(values).__name__
                raise UserError(f"reward function {name} returned {got} for {n} completions; it must return a list "
                                "with one float (or None) per completion")
            for i, value in enumerate(values):
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
                    raise UserError(f"reward function {name} returned {value!r} for completion {i}; rewards must be "
                                    "finite numbers or None")
                total[i] += weight * float(value)
        return total

    def check(self) -> None:
        """Call every reward function once on two training rows with empty completions: a wrong
        signature, length or type is one line before any model is loaded."""
        rows = self.rows["train"][:2]
        try:
            self.score(rows, [""] * len(rows), [[] for _ in rows])
        except UserError:
            raise
        except Exception as err:
            raise UserError(f"a reward function failed on empty completions of the first rows: "
                            f"{type(err).__name__}: {err}") from None


# ------------------------------------------------------------------------------------------------
# rows


def read_rows(path: str, key: str) -> list[dict[str, Any]]:
    """Rows of a JSONL, CSV or Parquet file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"{key}={path} does not exist; pass a JSONL, CSV or Parquet file")
    suffix = file.suffix.lower()
    try:
        if suffix in (".jsonl", ".json"):
            with file.open() as f:
                rows = [json.loads(line) for line in f if line.strip()]
        elif suffix == ".csv":
            with file.open(newline="") as f:
                rows = list(csv.DictReader(f))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(file).to_pylist()
        else:
            raise UserError(f"{key}={path}: unknown format '{suffix}'; use .jsonl, .csv or .parquet")
    except (json.JSONDecodeError, csv.Error, OSError) as err:
        raise UserError(f"{key}={path} could not be read: {err}") from None
    except ImportError:
        raise UserError(f"{key}={path}: reading Parquet needs pyarrow: pip install pyarrow") from None
    return check_rows(rows, f"{key}={path}")


def check_rows(rows: Any, what: str) -> list[dict[str, Any]]:
    if hasattr(rows, "to_list") and hasattr(rows, "column_names"):  # a datasets.Dataset
        rows = rows.to_list()
    rows = list(rows)
    if not rows:
        raise UserError(f"{what} has no rows")
    if not all(isinstance(row, dict) for row in rows):
        raise UserError(f"{what}: every row must be a mapping with a 'prompt'")
    missing = next((i for i, row in enumerate(rows) if not isinstance(row.get("prompt"), str)), None)
    if missing is not None:
        columns = ", ".join(sorted(rows[missing])) or "none"
        raise UserError(f"{what}: row {missing} has no 'prompt' column (a string); its columns: {columns}")
    return [dict(row) for row in rows]


def split_rows(rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]] | None, what: str,
               notes: list[str]) -> dict[str, list[dict[str, Any]]]:
    """{"train", "eval"}: a `split` column, else `eval_rows`, else the training rows are also evaluated."""
    if eval_rows is not None:
        return {"train": [r for r in rows if r.get("split", "train") != "eval"], "eval": eval_rows}
    if any("split" in row for row in rows):
        bad = sorted({str(r.get("split")) for r in rows} - {"train", "eval"})
        if bad:
            raise UserError(f"{what}: the split column may hold train or eval, not {', '.join(bad)}")
        split = {name: [r for r in rows if r.get("split") == name] for name in ("train", "eval")}
        if not split["train"] or not split["eval"]:
            raise UserError(f"{what}: the split column must name at least one train and one eval row")
        return split
    notes.append(f"{what} has no held-out rows (no split column, no env.eval_dataset): evaluation scores "
                 "training prompts")
    return {"train": rows, "eval": rows}


def reasoning_gym_rows(name: str, size: int, seed: int, options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """`size` rows of reasoning-gym's procedural task `name` (its config `options`, env.kwargs):
    prompt = its question, answer = its answer."""
    try:
        import reasoning_gym
    except ImportError:
        raise UserError(f"env.dataset=reasoning_gym:{name} needs the reasoning extra: pip install "
                        "'classic_rl[reasoning]'") from None
    try:
        data = reasoning_gym.create_dataset(name, size=size, seed=seed, **(options or {}))
    except Exception as err:
        raise UserError(f"env.dataset=reasoning_gym:{name}: {err}") from None
    return [{"prompt": entry["question"], "answer": entry["answer"]} for entry in data]


# the built-in tasks: their rows, generated in code
def arith_rows() -> dict[str, list[dict[str, Any]]]:
    """'What is a + b?' for single digits a, b: the 100 pairs split once, by a fixed shuffle, into 75
    training and 25 held-out rows."""
    pairs = [(a, b) for a in range(10) for b in range(10)]
    random.Random(1234).shuffle(pairs)
    rows = [{"prompt": f"What is {a} + {b}?", "answer": a + b} for a, b in pairs]
    return {"train": rows[25:], "eval": rows[:25]}


def digits_rows() -> dict[str, list[dict[str, Any]]]:
    return {split: [{"prompt": f"Write some digits ({i}):"} for i in range(n)] for split, n in (("train", 8), ("eval", 4))}


BUILTIN_TASKS: dict[str, tuple[Callable[[], dict[str, list[dict[str, Any]]]], list[str]]] = {
    "text-arith": (arith_rows, ["last_number"]),
    "text-arith-concise": (arith_rows, ["exact_match"]),
    "text-digits": (digits_rows, ["digit_fraction"]),
}


# ------------------------------------------------------------------------------------------------
# building a task from the env's keys (and the Python API's objects)


def resolve_reward(spec: Any, format_pattern: str | None) -> RewardFunc:
    from classic_rl.envs.gym import import_target

    if callable(spec):
        return spec
    if spec == "format":
        if not format_pattern:
            raise UserError("reward format needs env.format_pattern=REGEX (the whole completion must match it)")
        return format_reward(format_pattern)
    if spec in BUILTIN_REWARDS:
        return BUILTIN_REWARDS[spec]
    if isinstance(spec, str) and ":" in spec:
        fn = import_target(spec, "env.reward_funcs")
        if not callable(fn):
            raise UserError(f"env.reward_funcs: {spec} is not a function")
        return fn
    raise UserError(f"unknown reward function {spec!r}; built-in: {', '.join([*BUILTIN_REWARDS, 'format'])}, or "
                    "pkg.module:function")


def make_task(env_id: str, dataset: Any = None, eval_dataset: Any = None, reward_funcs: Sequence[Any] | None = None,
              reward_weights: Sequence[float] | None = None, system_prompt: str | None = None,
              format_pattern: str | None = None, dataset_size: int = 1000, dataset_seed: int = 0,
              eval_dataset_size: int = 50, max_new_tokens: int = 16,
              generator_options: dict[str, Any] | None = None) -> TextTask:
    """The task of a text env: a built-in id's rows and rewards, or `dataset` (+ `eval_dataset`)
    with `reward_funcs` (names, module:function strings or callables)."""
    notes: list[str] = []
    if dataset is None:
        if env_id not in BUILTIN_TASKS:
            raise UserError(f"env={env_id} needs env.dataset=PATH (JSONL, CSV or Parquet with a 'prompt' column); "
                            f"built-in text tasks: {', '.join(BUILTIN_TASKS)}")
        make_rows, default_rewards = BUILTIN_TASKS[env_id]
        rows = make_rows()
        name = env_id
    elif isinstance(dataset, str) and dataset.startswith("reasoning_gym:"):
        task = dataset.split(":", 1)[1]
        train = reasoning_gym_rows(task, dataset_size, dataset_seed, generator_options)
        held_out = (check_rows(eval_dataset, "eval_dataset") if not isinstance(eval_dataset, str) else
                    read_rows(eval_dataset, "env.eval_dataset")) if eval_dataset is not None else \
            reasoning_gym_rows(task, eval_dataset_size, dataset_seed + 1_000_003, generator_options)  # other problems
        rows, name, default_rewards = {"train": train, "eval": held_out}, task, ["last_number"]
    else:
        what = f"env.dataset={dataset}" if isinstance(dataset, str) else "dataset"
        train = read_rows(dataset, "env.dataset") if isinstance(dataset, str) else check_rows(dataset, "dataset")
        held_out = None
        if eval_dataset is not None:
            held_out = read_rows(eval_dataset, "env.eval_dataset") if isinstance(eval_dataset, str) else \
                check_rows(eval_dataset, "eval_dataset")
        rows = split_rows(train, held_out, what, notes)
        name, default_rewards = Path(dataset).stem if isinstance(dataset, str) else "dataset", []
    specs = list(reward_funcs) if reward_funcs else default_rewards
    if not specs:
        raise UserError("env.reward_funcs is required with env.dataset: e.g. env.reward_funcs=[last_number] (the "
                        "'answer' column), or [pkg.module:function] with TRL's signature")
    funcs = [resolve_reward(spec, format_pattern) for spec in specs]
    weights = list(reward_weights) if reward_weights is not None else [1.0] * len(funcs)
    if len(weights) != len(funcs):
        raise UserError(f"env.reward_weights has {len(weights)} weights for {len(funcs)} reward functions")
    task = TextTask(name, rows, funcs, weights, system_prompt, max_new_tokens, notes)
    task.check()
    return task
