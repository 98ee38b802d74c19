"""experiments/lm_pairs.py: pairs from scored samples (correct vs wrong, held-out from held-out prompts)
and minimal pairs (only the final number changed), known answers without a language model."""

import importlib.util
import random
import re

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def lm_pairs():
    spec = importlib.util.spec_from_file_location("lm_pairs", ROOT / "experiments" / "lm_pairs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_change_last_number_changes_only_the_final_number(lm_pairs):
    rng = random.Random(0)
    for _ in range(50):
        changed = lm_pairs.change_last_number("3 + 4 = 7 so 7 it is.", 7.0, rng)
        prefix, number, suffix = re.fullmatch(r"(3 \+ 4 = 7 so )(\d+)( it is\.)", changed).groups()
        assert int(number) != 7 and abs(int(number) - 7) <= 3
    assert lm_pairs.change_last_number("no number here", 7.0, rng) is None
    assert sorted(int(t[2:]) for t in lm_pairs.change_last_number("= 7", 7.0, rng, 6)) == [4, 5, 6, 8, 9, 10]
    assert lm_pairs.change_last_number("1,234", 1234.0, rng) is None
    assert all(int(lm_pairs.change_last_number("0", 0.0, rng)) > 0 for _ in range(20))  # never a negative sum


def test_build_pairs_correct_against_wrong_and_held_out_from_held_out_prompts(lm_pairs):
    from classic_rl.envs.text_tasks import make_task

    task = make_task("text-arith")
    rows = {split: task.rows[split][:3] for split in ("train", "eval")}
    task.rows = rows
    answers = {split: [r["answer"] for r in rows[split]] for split in rows}
    completions = {split: [[f"It is {a}.", f"It is {a + 1}.", "No idea.", f"{a}"] for a in answers[split]]
                   for split in rows}
    completions["train"][2] = ["wrong 99", "wrong 98", "", "x"]  # no correct sample: no pair for this prompt
    natural, minimal, minimal_train, stats, samples = lm_pairs.build(task, completions, 1.0, 4, 0, {"model": "m"},
                                                                     minimal_variants=3)
    for pair in natural:
        split_rows = rows[pair["split"]]
        row = next(r for r in split_rows if r["prompt"] == pair["prompt"])  # a prompt of the pair's own split
        assert pair["chosen"] in (f"It is {row['answer']}.", f"{row['answer']}")
        assert pair["rejected"] in (f"It is {row['answer'] + 1}.", "No idea.")
        assert pair["model"] == "m" and pair["kind"] == "natural"
    assert {p["prompt"] for p in natural if p["split"] == "train"} == {r["prompt"] for r in rows["train"][:2]}
    assert stats["train"]["prompts_with_a_pair"] == 2 and stats["eval"]["prompts_with_a_pair"] == 3
    assert len([p for p in natural if p["prompt"] == rows["eval"][0]["prompt"]]) == 2  # max(2 right, 2 wrong)
    assert {p["split"] for p in minimal} == {"eval"} and {p["split"] for p in minimal_train} == {"train"}
    for pair in minimal + minimal_train:
        same = re.sub(r"\d+", "#", pair["chosen"]) == re.sub(r"\d+", "#", pair["rejected"])
        assert same and pair["chosen"] != pair["rejected"]
    assert stats["train"]["sample_accuracy"] == pytest.approx(4 / 12, abs=1e-3)
    # training minimal pairs: 3 distinct wrong numbers per correct completion (2 prompts x 2 completions)
    assert len(minimal_train) == 12 and len({(p["chosen"], p["rejected"]) for p in minimal_train}) == 12
    assert len(minimal) == 3 * 2  # held-out: one per correct completion
    *_, more_minimal, _, _, _ = lm_pairs.build(task, completions, 1.0, 4, 0, {}, minimal_eval_variants=2)
    assert len(more_minimal) == 3 * 2 * 2 and len({(p["prompt"], p["chosen"], p["rejected"]) for p in more_minimal}) == 12
    assert all(p["split"] == "eval" for p in more_minimal)
    assert len(samples) == 24 and sum(s["reward"] for s in samples if s["split"] == "train") == 4


def test_your_own_dataset_runs_end_to_end_with_the_tiny_model(tmp_path):
    """`lm_pairs.py --env text --dataset rows.jsonl` (the answer column scored by last_number) writes the files."""
    import json
    import subprocess
    import sys

    rows = [{"prompt": f"What is {a} + {b}?", "answer": a + b, "split": "train" if a < 4 else "eval"}
            for a, b in [(1, 2), (2, 3), (3, 4), (5, 1)]]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "lm_pairs.py"), "--env", "text", "--dataset",
                           str(tmp_path / "rows.jsonl"), "--model", "tiny", "--samples", "2", "--max-new-tokens", "4",
                           "--out", str(tmp_path / "out"), "--threads", "1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["train"]["prompts"] == 3 and summary["eval"]["prompts"] == 1
    assert summary["train"]["samples"] == 6
    assert (tmp_path / "out" / "samples.jsonl").read_text().count("\n") == 8


def test_more_reward_model_pairs_keep_only_training_prompts(tmp_path):
    """lm_rlhf.py --rm-more: rows of other pair directories join the training pairs, never the held-out ones."""
    import json

    spec = importlib.util.spec_from_file_location("lm_rlhf", ROOT / "experiments" / "lm_rlhf.py")
    lm_rlhf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lm_rlhf)
    more = tmp_path / "more"
    more.mkdir()
    row = lambda prompt, split: json.dumps({"prompt": prompt, "chosen": "7", "rejected": "8", "split": split})  # noqa: E731
    (more / "pairs.jsonl").write_text(row("a", "train") + "\n" + row("b", "eval") + "\n")
    (more / "minimal_train.jsonl").write_text(row("c", "train") + "\n")
    out = lm_rlhf.training_rows([more], tmp_path / "rows.jsonl")
    assert [json.loads(line)["prompt"] for line in out.read_text().splitlines()] == ["a", "c"]
