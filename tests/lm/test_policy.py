"""The LM policy: KV-cached acting equals uncached acting; one-pass log-probs equal per-token ones."""

import pytest

pytest.importorskip("transformers")

import dataclasses

import torch

from classic_rl.envs import make
from classic_rl.lm.policy import LMPolicy


def _rollout(policy, env, steps, cached):
    obs, _ = env.reset(seed=0)
    observations, actions, logits = [], [], []
    for _ in range(steps):
        if not cached:
            policy.reset_cache()  # every step re-encodes the whole context
        step_logits, _ = policy.act_step(obs)
        action = step_logits.argmax(-1)
        observations.append(obs.clone())
        actions.append(action)
        logits.append(step_logits)
        obs, *_ = env.step(action)
    return torch.stack(observations), torch.stack(actions), torch.stack(logits)


def test_kv_cached_sampler_matches_uncached(tiny_lm):
    env = make("text-arith", num_envs=4, tokenizer=tiny_lm.tokenizer, max_new_tokens=6, chat_template=False)
    policy = LMPolicy(tiny_lm, env.text)
    _, cached_actions, cached_logits = _rollout(policy, env, 6, cached=True)
    _, plain_actions, plain_logits = _rollout(policy, env, 6, cached=False)
    assert torch.equal(cached_actions, plain_actions)
    assert torch.allclose(cached_logits, plain_logits, atol=1e-4)


def test_one_pass_log_probs_equal_token_by_token(tiny_lm):
    env = make("text-arith", num_envs=3, tokenizer=tiny_lm.tokenizer, max_new_tokens=5, chat_template=False)
    policy = LMPolicy(tiny_lm, env.text, temperature=0.7, value_head=True)
    obs, actions, logits = _rollout(policy, env, 5, cached=False)
    per_token = torch.log_softmax(logits, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # [T, N]
    one_pass, entropy, value = policy.evaluate(obs, actions)
    assert one_pass.shape == (5, 3) and value.shape == (5, 3)
    assert torch.allclose(one_pass, per_token, atol=1e-4)
    assert (entropy > 0).all()


def test_reference_is_the_frozen_start(tiny_lm):
    env = make("text-digits", num_envs=2, tokenizer=tiny_lm.tokenizer, max_new_tokens=4, chat_template=False)
    policy = LMPolicy(tiny_lm, env.text, reference=True)
    obs, actions, _ = _rollout(policy, env, 4, cached=True)
    before = policy.reference_log_prob(obs, actions)
    assert torch.allclose(before, policy.evaluate(obs, actions)[0], atol=1e-5)
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    assert torch.allclose(policy.reference_log_prob(obs, actions), before)
    assert not torch.allclose(policy.evaluate(obs, actions)[0], before, atol=1e-3)


def test_pad_is_never_sampled_when_it_is_not_eos(tiny_lm):
    env = make("text-digits", num_envs=2, tokenizer=tiny_lm.tokenizer, chat_template=False)
    assert env.pad_id != env.eos_id
    logits, _ = LMPolicy(tiny_lm, env.text).act_step(env.reset()[0])
    assert torch.isinf(logits[:, env.pad_id]).all()


def test_shared_prompt_pass_equals_one_forward_per_row_values_and_gradients(tiny_lm):
    env = make("text-arith", num_envs=8, group_size=4, tokenizer=tiny_lm.tokenizer, max_new_tokens=5,
               chat_template=False)
    policy = LMPolicy(tiny_lm, env.text, value_head=True)
    torch.nn.init.normal_(policy.value_head.weight)
    obs, actions, _ = _rollout(policy, env, 5, cached=True)
    log_prob, _, value = policy.evaluate(obs, actions)
    shared_grad = torch.autograd.grad((log_prob.sum() + value.sum()), policy.trainable_parameters())
    # reference computation: one plain forward over [prompt; completion] per row
    tokens, mask, positions = policy._sequences(obs, actions)
    out = policy._forward(tokens, mask, positions, keep=6, hidden=True)
    plain = torch.log_softmax(policy._logits(out.logits[:, :-1]), -1).gather(-1, actions.T.unsqueeze(-1)).squeeze(-1).T
    plain_value = policy.value_head(out.hidden_states[-1][:, -6:-1]).squeeze(-1).T
    plain_grad = torch.autograd.grad((plain.sum() + plain_value.sum()), policy.trainable_parameters())
    assert torch.allclose(log_prob, plain, atol=1e-5) and torch.allclose(value, plain_value, atol=1e-5)
    for a, b in zip(shared_grad, plain_grad):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-3)


def test_scoring_in_several_packs_equals_one_pack(tiny_lm):
    """Rows split into packs of whole prompts (here one prompt each, rows of different prompts
    interleaved) give the rows back in their order, with the values and gradients of one pack."""
    env = make("text-arith", num_envs=6, group_size=2, tokenizer=tiny_lm.tokenizer, max_new_tokens=4,
               chat_template=False)
    policy = LMPolicy(tiny_lm, env.text, value_head=True)
    torch.nn.init.normal_(policy.value_head.weight)
    obs, actions, _ = _rollout(policy, env, 4, cached=True)
    order = torch.tensor([0, 2, 4, 1, 3, 5])  # groups interleaved
    obs, actions = obs[:, order], actions[:, order]
    results = []
    for pack_tokens in (10**6, 1):
        policy.pack_tokens = pack_tokens
        log_prob, _, value = policy.evaluate(obs, actions, entropy=False)
        results.append((log_prob, value, torch.autograd.grad(log_prob.sum() + value.sum(), policy.trainable_parameters())))
    (one, one_value, one_grads), (many, many_value, many_grads) = results
    assert torch.allclose(one, many, atol=1e-5) and torch.allclose(one_value, many_value, atol=1e-5)
    for a, b in zip(one_grads, many_grads):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-3)


def test_pad_id_inside_a_prompt_is_attended_to(tiny_lm):
    """SmolLM2 pads with its EOS, which its chat template also puts inside every prompt: a pad id after
    the first real token is a prompt token. Scoring a left-padded row equals an unpadded forward."""
    env = make("text-digits", num_envs=2, tokenizer=tiny_lm.tokenizer, max_new_tokens=3, chat_template=False)
    policy = LMPolicy(tiny_lm, env.text)
    P, pad = env.prompt_width, env.pad_id
    real = torch.tensor([65, pad, 66, pad, 67])  # pad ids inside the prompt, as after a chat turn
    obs = torch.full((1, 2, P + 3), pad)
    obs[0, :, P - len(real):P] = real
    obs[0, 1, P - len(real) - 1] = 68  # row 1: one more real token, so its left padding is shorter
    actions = torch.tensor([[70, 71], [72, 73], [74, 75]])
    obs = obs.expand(3, -1, -1)
    log_prob, _, _ = policy.evaluate(obs, actions)
    for row in range(2):
        start = P - len(real) - row
        tokens = torch.cat([obs[0, row, start:P], actions[:, row]])[None]
        with torch.no_grad():
            logits = policy._logits(tiny_lm.model(input_ids=tokens).logits[0, -4:-1])  # pad banned, as sampled
        expected = torch.log_softmax(logits, -1).gather(-1, actions[:, row, None]).squeeze(-1)
        assert torch.allclose(log_prob[:, row], expected, atol=1e-5)
    # acting with the KV cache reads the prompt the same way
    step_logits, _ = policy.act_step(obs[0])
    with torch.no_grad():
        plain = policy._logits(tiny_lm.model(input_ids=obs[0, 0, P - len(real):P][None]).logits[0, -1])
    assert torch.allclose(step_logits[0], plain, atol=1e-5)


def test_a_new_round_after_every_row_ended_at_once_does_not_reuse_the_cache(tiny_lm):
    """pad == EOS and every row ended at its first token: the next round (here the same prompts) looks
    like the old context plus a column of pads; it must be encoded afresh, not continued."""
    env = make("text-digits", num_envs=2, tokenizer=tiny_lm.tokenizer, max_new_tokens=4, chat_template=False)
    text = dataclasses.replace(env.text, pad_id=env.eos_id)
    policy = LMPolicy(tiny_lm, text)
    P = env.prompt_width
    obs = torch.full((2, P + 4), env.eos_id)
    obs[:, P - 3:P] = torch.tensor([65, 66, 67])
    first, _ = policy.act_step(obs)
    again, _ = policy.act_step(obs.clone())  # every row answered EOS; the next round shows the same prompts
    assert policy._t == 0
    assert torch.allclose(again, first, atol=1e-6)


def test_a_shared_prompt_prefix_is_encoded_once_and_scores_as_one_forward_per_row(tiny_lm):
    """Prompts of different lengths sharing a prefix (a chat template's system turn): scoring packs the
    prefix once, each prompt's rest and each completion into one forward; acting encodes the prefix once
    and each rest after a gap of pads. Every row's log-probs, values, gradients and next-token logits
    equal one plain forward over that row alone."""
    env = make("text-digits", num_envs=3, tokenizer=tiny_lm.tokenizer, max_new_tokens=3, chat_template=False)
    policy = LMPolicy(tiny_lm, env.text, value_head=True)
    torch.nn.init.normal_(policy.value_head.weight)
    P, pad = env.prompt_width, env.pad_id
    head = [83, 89, 83, pad, 58, 32]  # shared by every row, a pad id inside it
    rests = [[49, 43, 50], [55], [52, 52, 32, 43, 49]]
    obs = torch.full((1, 3, P + 3), pad)
    for row, rest in enumerate(rests):
        obs[0, row, P - len(head) - len(rest):P] = torch.tensor(head + rest)
    actions = torch.tensor([[70, 71, 72], [73, 74, 75], [76, 77, 78]])
    obs = obs.expand(3, -1, -1)
    calls = []
    forward = policy._forward
    policy._forward = lambda tokens, *a, **k: calls.append(tokens.shape[:2]) or forward(tokens, *a, **k)
    log_prob, _, value = policy.evaluate(obs, actions, entropy=False)
    assert calls == [(1, len(head) + sum(map(len, rests)) + 3 * 2)]  # one packed forward: prefix once, rests, completions
    grads = torch.autograd.grad(log_prob.sum() + value.sum(), policy.trainable_parameters())
    policy._forward = forward
    policy.min_shared_prefix = 10**6  # the same pass without prefix sharing
    plain_log_prob, _, plain_value = policy.evaluate(obs, actions, entropy=False)
    plain_grads = torch.autograd.grad(plain_log_prob.sum() + plain_value.sum(), policy.trainable_parameters())
    assert torch.allclose(log_prob, plain_log_prob, atol=1e-5) and torch.allclose(value, plain_value, atol=1e-5)
    for a, b in zip(grads, plain_grads):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-3)
    for row, rest in enumerate(rests):  # and one forward over the row alone
        tokens = torch.cat([torch.tensor(head + rest), actions[:, row]])[None]
        with torch.no_grad():
            logits = policy._logits(tiny_lm.model(input_ids=tokens).logits[0, -4:-1])
        expected = torch.log_softmax(logits, -1).gather(-1, actions[:, row, None]).squeeze(-1)
        assert torch.allclose(log_prob[:, row].detach(), expected, atol=1e-5)
    policy.min_shared_prefix = 4
    policy.reset_cache()
    step_logits, _ = policy.act_step(obs[0])  # acting: the first step of a round shares the prefix too
    for row, rest in enumerate(rests):
        with torch.no_grad():
            plain = policy._logits(tiny_lm.model(input_ids=torch.tensor([head + rest])).logits[0, -1])
        assert torch.allclose(step_logits[row], plain, atol=1e-5)
