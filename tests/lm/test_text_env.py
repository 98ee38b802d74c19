"""The text env's contract: layout, EOS termination, length truncation, rewards, groups, held-out split."""

import pytest

pytest.importorskip("transformers")

import torch

from classic_rl.envs import make
from classic_rl.envs.text_tasks import arith_rows, digit_fraction, exact_match, last_number


def test_last_number_reads_the_last_number_and_exact_match_wants_nothing_else():
    completions = ["3 + 4 = 7", "The answer is 7.", "7, no wait, 8", "seven", " 7.", "7.0", "-7"]
    assert last_number([""] * 7, completions, answer=[7] * 7) == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    assert exact_match([""] * 3, [" 7.", "3 + 4 = 7", "7"], answer=[7, 7, "7"]) == [1.0, 0.0, 1.0]


def test_held_out_split_is_disjoint_from_training():
    rows = arith_rows()
    train, held_out = {r["prompt"] for r in rows["train"]}, {r["prompt"] for r in rows["eval"]}
    assert len(held_out) == 25 and len(train) == 75 and not train & held_out
    assert all(r["answer"] == sum(map(int, r["prompt"][8:-1].split(" + "))) for r in rows["train"])


def test_digits_reward_is_the_fraction_of_digits():
    assert digit_fraction(["p", "p"], ["a1b2", ""]) == [0.5, 0.0]


def test_episode_ends_at_eos_or_length_and_the_round_is_scored_at_its_end(tiny_lm):
    tok = tiny_lm.tokenizer
    env = make("text-digits", num_envs=2, tokenizer=tok, max_new_tokens=3, chat_template=False)
    assert env.spec.round_reward
    obs, _ = env.reset(seed=0)
    P = env.text.prompt_width
    assert obs.shape == (2, P + 3) and bool((obs[:, P:] == env.pad_id).all())
    one = tok.convert_tokens_to_ids("1")
    # row 0 writes "1" then EOS (terminated); row 1 writes "1", "a", "1" (truncated at 3 tokens)
    a_tok = tok.convert_tokens_to_ids("a")
    obs, r, term, trunc, info = env.step(torch.tensor([one, one]))
    assert not term.any() and not trunc.any() and r.sum() == 0 and obs[0, P] == one
    obs, r, term, trunc, info = env.step(torch.tensor([env.eos_id, a_tok]))
    assert term.tolist() == [True, False] and r.sum() == 0 and info["active"].all() and "round_reward" not in info
    obs, r, term, trunc, info = env.step(torch.tensor([one, one]))
    assert info["active"].tolist() == [False, True]  # row 0 waits for the round
    assert trunc.tolist() == [False, True] and not term[1] and r.sum() == 0
    assert torch.allclose(info["round_reward"], torch.tensor([1.0, 2 / 3]))  # "1" and "1a1", scored together
    assert bool((obs[:, P:] == env.pad_id).all())  # every row ended: a new round started
    assert info["final_obs"][1, P + 2] == one


def test_reward_functions_are_called_once_per_round_with_the_dataset_columns(tiny_lm):
    from classic_rl.envs.text_tasks import make_task

    calls = []

    def judge(prompts, completions, answer, completion_ids, **columns):
        calls.append((list(prompts), list(completions), list(answer), sorted(columns)))
        return [None if c == "" else float(c == str(a)) for c, a in zip(completions, answer)]

    rows = [{"prompt": f"Say {i}", "answer": i, "source": "test"} for i in range(4)]
    task = make_task("text", dataset=rows, reward_funcs=[judge, "length_penalty"], reward_weights=[1.0, 0.5],
                     max_new_tokens=2)
    env = make("text", num_envs=2, tokenizer=tiny_lm.tokenizer, max_new_tokens=2, chat_template=False, task=task,
               split="eval")
    calls.clear()  # make_task checked the functions once on empty completions
    env.reset(seed=0)
    tok = tiny_lm.tokenizer
    zero, one = tok.convert_tokens_to_ids("0"), tok.convert_tokens_to_ids("1")
    env.step(torch.tensor([zero, env.eos_id]))
    assert calls == []  # not per row: row 1 ended, row 0 is still writing
    *_, info = env.step(torch.tensor([env.eos_id, one]))
    assert calls == [(["Say 0", "Say 1"], ["0", ""], [0, 1], ["max_new_tokens", "source"])]
    # row 0: judge 1 + 0.5 x (-1 token / 2); row 1: judge has no opinion, 0.5 x 0
    assert info["round_reward"].tolist() == [1.0 - 0.25, 0.0]


def test_groups_share_a_prompt_and_eval_split_is_fixed(tiny_lm):
    env = make("text-arith", num_envs=8, tokenizer=tiny_lm.tokenizer, group_size=4, chat_template=False)
    obs, _ = env.reset(seed=1)
    assert torch.equal(obs[0], obs[3]) and torch.equal(obs[4], obs[7])
    ev = make("text-arith", num_envs=25, tokenizer=tiny_lm.tokenizer, split="eval", chat_template=False)
    a, _ = ev.reset(seed=1)
    b, _ = ev.reset(seed=2)
    assert torch.equal(a, b) and len({tuple(r.tolist()) for r in a}) == 25


def test_training_prompts_come_once_per_pass_in_a_fresh_order(tiny_lm):
    env = make("text-arith", num_envs=10, tokenizer=tiny_lm.tokenizer, group_size=2, chat_template=False)
    n = len(env.prompts)  # 75 training prompts, 5 groups (prompts) per round, so 15 rounds a pass

    def prompts_of_rounds(k):
        seen = []
        for _ in range(k):
            env._start_round()
            groups = env.prompt_index[:: env.group_size]
            assert torch.equal(env.prompt_index, groups.repeat_interleave(env.group_size))
            seen += groups.tolist()
        return seen

    env.reset(seed=3)
    first = env.prompt_index[:: env.group_size].tolist() + prompts_of_rounds(n // 5 - 1)
    assert sorted(first) == list(range(n))  # every training prompt exactly once in the first pass
    state = env.state_dict()
    second = prompts_of_rounds(n // 5)
    assert sorted(second) == list(range(n)) and second != first  # the next pass is reshuffled
    env.load_state_dict(state)
    assert prompts_of_rounds(n // 5) == second  # the order survives a checkpoint
    env.reset(seed=3)
    assert env.prompt_index[:: env.group_size].tolist() == first[:5]  # seeded


def test_chat_template_wraps_the_prompt():
    from classic_rl.lm.tiny import byte_tokenizer

    tok = byte_tokenizer()
    tok.chat_template = "{% for m in messages %}<{{ m['content'] }}>{% endfor %}"
    env = make("text-arith", num_envs=1, tokenizer=tok, split="eval")
    obs, _ = env.reset()
    text = tok.decode(obs[0, : env.text.prompt_width][obs[0, : env.text.prompt_width] != env.pad_id].tolist())
    assert text.startswith("<What is") and text.endswith("?>")


def test_the_last_rounds_completions_are_kept_in_row_order(tiny_lm):
    tok = tiny_lm.tokenizer
    env = make("text-digits", num_envs=2, tokenizer=tok, max_new_tokens=2, chat_template=False)
    env.reset(seed=0)
    one, two = tok.convert_tokens_to_ids("1"), tok.convert_tokens_to_ids("2")
    env.step(torch.tensor([env.eos_id, one]))
    assert env.last_samples == []  # the round is not over
    env.step(torch.tensor([one, two]))
    assert [(s["row"], s["completion"], s["reward"]) for s in env.last_samples] == [(0, "", 0.0), (1, "12", 1.0)]
    env.step(torch.tensor([one, one]))
    assert len(env.last_samples) == 2 and env.samples == []  # a new round is running, the old one stays readable
