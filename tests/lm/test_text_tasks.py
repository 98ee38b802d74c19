"""Your own language-model task: env=text with a dataset file (JSONL, CSV, Parquet) or Python rows,
and reward functions with TRL's signature; one-line errors for bad input, before any model loads."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

import classic_rl
from classic_rl.config import UserError
from classic_rl.envs.text_tasks import make_task

USER = Path(__file__).resolve().parent.parent / "userenv"
TINY = ("model=tiny", "env.max_new_tokens=8", "env.chat_template=false", "logger.progress=false",
        "logger.tensorboard=false")


def digit_rows() -> list[dict]:
    return [{"prompt": f"Write some digits ({i}):", "split": "eval" if i >= 8 else "train"} for i in range(12)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(USER), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "classic_rl", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_cli_grpo_on_a_users_dataset_and_reward_function_learns(tmp_path):
    data = write_jsonl(tmp_path / "digits.jsonl", digit_rows())
    proc = cli("agent=grpo", "env=text", f"env.dataset={data}", "env.reward_funcs=[my_rewards:digits]",
               "agent.lr=3e-3", "train.total_steps=2000", "eval.every_steps=2000", "eval.episodes=4",
               "eval.at_start=true", "hydra.run.dir=run", *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    before, after = summary["evaluations"][0]["return_mean"], summary["evaluations"][-1]["return_mean"]
    assert before < 0.2 and after > 0.8, (before, after)
    samples = [json.loads(line) for line in (tmp_path / "run" / "eval_samples.jsonl").open()]
    assert [s["prompt"] for s in samples] == [r["prompt"] for r in digit_rows() if r["split"] == "eval"]


def test_python_api_takes_rows_and_reward_functions(tmp_path):
    seen_columns = set()

    def digits(prompts, completions, **columns):
        seen_columns.update(columns)
        return [sum(ch.isdigit() for ch in c) / len(c) if c else 0.0 for c in completions]

    rows = [{"prompt": r["prompt"], "topic": "digits"} for r in digit_rows()]
    result = classic_rl.train("agent=grpo", "agent.lr=3e-3", "train.total_steps=2000", "eval.every_steps=2000",
                              "eval.episodes=4", *TINY, dataset=rows[:8], eval_dataset=rows[8:],
                              reward_funcs=[digits], run_dir=tmp_path / "run")
    assert result.summary["eval_return_mean"] > 0.8 and {"topic", "completion_ids"} <= seen_columns
    with pytest.raises(UserError, match="Python"):
        classic_rl.load(tmp_path / "run")
    policy = classic_rl.load(tmp_path / "run", dataset=rows[:8], eval_dataset=rows[8:], reward_funcs=[digits])
    assert policy.evaluate(episodes=4)["return_mean"] == pytest.approx(result.summary["eval_return_mean"])


def test_jsonl_csv_and_parquet_give_the_same_rows(tmp_path):
    rows = [{"prompt": f"What is {i} + 1?", "answer": str(i + 1), "split": "eval" if i < 2 else "train"}
            for i in range(6)]
    write_jsonl(tmp_path / "d.jsonl", rows)
    with (tmp_path / "d.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["prompt", "answer", "split"])
        writer.writeheader()
        writer.writerows(rows)
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    tasks = [make_task("text", dataset=str(tmp_path / f"d.{ext}"), reward_funcs=["last_number"])
             for ext in ("jsonl", "csv", "parquet")]
    for task in tasks:
        assert task.rows == tasks[0].rows and len(task.rows["eval"]) == 2 and len(task.rows["train"]) == 4
    assert tasks[0].score(tasks[0].rows["eval"], ["It is 1.", "3"]) == [1.0, 0.0]


@pytest.mark.parametrize("args, message", [
    (("env.dataset=missing.jsonl", "env.reward_funcs=[last_number]"), "env.dataset=missing.jsonl does not exist"),
    (("env.dataset=noprompt.jsonl", "env.reward_funcs=[last_number]"), "row 0 has no 'prompt' column"),
    (("env.dataset=ok.jsonl", "env.reward_funcs=[nosuchmodule:fn]"), "cannot import module 'nosuchmodule'"),
    (("env.dataset=ok.jsonl", "env.reward_funcs=[my_rewards:missing]"), "module 'my_rewards' has no 'missing'"),
    (("env.dataset=ok.jsonl", "env.reward_funcs=[my_rewards:NOT_CALLABLE]"), "is not a function"),
    (("env.dataset=ok.jsonl", "env.reward_funcs=[my_rewards:wrong_length]"), "returned 1 values for 2 completions"),
    (("env.dataset=ok.jsonl", "env.reward_funcs=[my_rewards:not_a_number]"), "returned 'yes' for completion 0"),
    (("env.dataset=ok.jsonl",), "env.reward_funcs is required"),
    (("env.dataset=ok.jsonl", "env.reward_funcs=[last_number]", "env.reward_weights=[1,2]"), "2 weights for 1"),
    (("env.dataset=ok.jsonl", "env.reward_funcs=[format]"), "needs env.format_pattern"),
])
def test_bad_task_input_is_one_line_before_the_model_loads(tmp_path, args, message):
    write_jsonl(tmp_path / "ok.jsonl", [{"prompt": "What is 1 + 1?", "answer": 2}] * 2)
    write_jsonl(tmp_path / "noprompt.jsonl", [{"question": "What is 1 + 1?"}])
    # model=path with a directory that does not exist: the task's error must come first
    proc = cli("agent=grpo", "env=text", *args, "model=path", "model.path=/no/such/model", cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "runs").exists()


def test_reasoning_gym_task_has_a_held_out_set_scored_by_our_parser():
    pytest.importorskip("reasoning_gym")
    task = make_task("text", dataset="reasoning_gym:chain_sum", dataset_size=20, eval_dataset_size=10)
    train, held_out = task.prompts("train"), task.prompts("eval")
    assert len(train) == 20 and len(held_out) == 10 and not set(train) & set(held_out)
    answers = [row["answer"] for row in task.rows["eval"]]
    assert task.score(task.rows["eval"], [f"The sum is {a}." for a in answers]) == [1.0] * 10
    assert task.score(task.rows["eval"], ["no idea"] * 10) == [0.0] * 10


class ScriptedTextEnv:
    """Each round (one step) ends with the scripted completions and their rewards (the answer is 5, then 2)."""

    def __init__(self, rounds: list[list[str]], answers: list[int]) -> None:
        self.rounds, self.answers, self.round = rounds, answers, 0
        self.last_samples = [{"row": 0, "completion": "greedy"}]

    def reset(self, seed=None):
        import torch

        return torch.zeros(len(self.answers), 1), {}

    def step(self, actions):
        import torch

        completions = self.rounds[self.round]
        self.round += 1
        rewards = [float(c.strip(".") == str(a)) for c, a in zip(completions, self.answers)]
        self.last_samples = [{"row": i, "completion": c, "reward": r} for i, (c, r) in
                             enumerate(zip(completions, rewards))]
        n = len(self.answers)
        return (torch.zeros(n, 1), torch.zeros(n), torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool),
                {"round_reward": torch.tensor(rewards)})


def test_pass_at_k_and_majority_vote_known_answers():
    import torch

    from classic_rl.evaluate import evaluate_samples

    class Agent:
        def act(self, obs, explore=True):
            assert explore  # sampled, not greedy
            return torch.zeros(obs.shape[0])

    # prompt 0 (answer 5): "5", "3", "5." -> correct once at least, majority 5 (correct)
    # prompt 1 (answer 2): "2", "7", "it is 7" -> correct once, majority 7 (wrong)
    env = ScriptedTextEnv([["5", "2"], ["3", "7"], ["5.", "it is 7"]], [5, 2])
    result = evaluate_samples(Agent(), env, episodes=2, seed=0, k=3, correct=1.0)
    assert result == {"pass@3": 1.0, "maj@3": 0.5}
    assert env.last_samples == [{"row": 0, "completion": "greedy"}]  # the greedy round's samples are kept
    env = ScriptedTextEnv([["1", "2"], ["5", "7"]], [5, 2])  # a tie goes to the answer seen first: 1 (wrong), 2
    assert evaluate_samples(Agent(), env, episodes=2, seed=0, k=2, correct=1.0) == {"pass@2": 1.0, "maj@2": 0.5}


def test_eval_samples_reports_pass_and_maj_in_the_summary(tmp_path):
    proc = cli("agent=grpo", "env=text-digits", "train.total_steps=64", "eval.every_steps=0", "eval.episodes=4",
               "eval.samples=3", "eval.correct_reward=0.5", "hydra.run.dir=run", *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert 0.0 <= summary["eval_pass@3"] <= 1.0 and 0.0 <= summary["eval_maj@3"] <= summary["eval_pass@3"]
    samples = [json.loads(line) for line in (tmp_path / "run" / "eval_samples.jsonl").open()]
    assert summary["eval_pass@1"] == sum(s["reward"] >= 0.5 for s in samples) / 4  # the greedy completions
    assert "pass@3" in summary["evaluations"][-1]
    proc = cli("agent=dqn", "env=CartPole-v1", "eval.samples=3", cwd=tmp_path)
    assert proc.returncode == 2 and "applies to text envs" in proc.stderr


def test_a_datasets_dataset_and_a_system_prompt(tiny_lm):
    datasets = pytest.importorskip("datasets")
    from classic_rl.envs import make

    rows = datasets.Dataset.from_list([{"prompt": "What is 2 + 2?", "answer": 4}] * 2)
    task = make_task("text", dataset=rows, reward_funcs=["last_number"], system_prompt="Answer with a number.")
    assert task.rows["train"] == [{"prompt": "What is 2 + 2?", "answer": 4}] * 2
    env = make("text", num_envs=1, tokenizer=tiny_lm.tokenizer, chat_template=False, task=task)
    obs, _ = env.reset()
    prompt = obs[0, : env.text.prompt_width]
    text = tiny_lm.tokenizer.decode(prompt[prompt != env.pad_id].tolist())
    assert text == "Answer with a number.\n\nWhat is 2 + 2?"
