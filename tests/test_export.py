"""mode=export: the acting network as TorchScript (and ONNX) that runs without classic_rl and acts
as `classic_rl.load(...).act` does; a language model as a Hugging Face directory with the same logits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import classic_rl
from classic_rl.run import main as run_main

QUIET = {"logger": {"tensorboard": False, "progress": False}}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "classic_rl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def train(tmp_path: Path, agent: dict, env: dict, steps: int) -> Path:
    run_dir = tmp_path / "run"
    run_main({"agent": agent, "env": env, "train": {"total_steps": steps}, "eval": {"every_steps": 0, "episodes": 2},
              **QUIET}, run_dir)
    return run_dir


def observations(space, n: int = 100) -> np.ndarray:
    space.seed(1)
    return np.stack([np.asarray(space.sample()) for _ in range(n)])


# the run's config -> its acting network: every kind of classic agent and observation
CASES = {
    "ppo-normalized": ({"name": "ppo", "normalize_obs": True, "rollout_steps": 64}, {"id": "CartPole-v1", "num_envs": 4}, 512),
    "rainbow": ({"name": "dqn", "double": True, "dueling": True, "noisy": True, "distributional": True,
                 "prioritized": True, "n_step": 3, "learning_starts": 100, "v_min": 0.0, "v_max": 100.0},
                {"id": "CartPole-v1"}, 400),
    "td3": ({"name": "ddpg", "twin_critics": True, "policy_delay": 2, "target_noise": 0.2,
             "learning_starts": 100}, {"id": "Pendulum-v1"}, 300),
    "a2c-continuous": ({"name": "a2c"}, {"id": "Pendulum-v1", "num_envs": 2}, 200),
    "q_learning-discrete-obs": ({"name": "q_learning"}, {"id": "FrozenLake-v1"}, 300),
}


@pytest.mark.parametrize("case", list(CASES))
def test_exported_policy_acts_like_the_loaded_policy_without_classic_rl(tmp_path, case):
    agent, env, steps = CASES[case]
    run_dir = train(tmp_path, agent, env, steps)
    proc = cli("mode=export", f"checkpoint={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = run_dir / "export"
    info = json.loads((out / "export.json").read_text())
    assert info["files"][0] == "policy.pt" and info["checkpoint"] == str(run_dir / "checkpoint.pt")
    policy = classic_rl.load(run_dir, device="cpu")
    obs = observations(policy.spec.observation_space)
    expected = policy.act(obs)
    np.save(tmp_path / "obs.npy", obs)
    # a fresh interpreter in which classic_rl cannot be imported
    script = ("import sys; sys.modules['classic_rl'] = None\n"
              "import numpy as np, torch\n"
              f"obs = torch.as_tensor(np.load({str(tmp_path / 'obs.npy')!r}))\n"
              f"obs = obs.float() if obs.is_floating_point() else obs.long()\n"
              f"np.save({str(tmp_path / 'actions.npy')!r}, torch.jit.load({str(out / 'policy.pt')!r})(obs).numpy())\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    actions = np.load(tmp_path / "actions.npy")
    assert actions.shape == expected.shape and np.allclose(actions, expected, atol=1e-6)
    if "policy.onnx" in info["files"]:
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(out / "policy.onnx"))
        dtype = np.float32 if obs.dtype.kind == "f" else np.int64
        onnx_actions = session.run(None, {"obs": obs.astype(dtype)})[0]
        assert np.allclose(onnx_actions, expected, atol=1e-5)


def test_export_never_overwrites_and_refuses_bad_input_in_one_line(tmp_path):
    run_dir = train(tmp_path, {"name": "dqn", "learning_starts": 50}, {"id": "CartPole-v1"}, 100)
    assert cli("mode=export", f"checkpoint={run_dir}", "export.dir=out", cwd=tmp_path).returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    for args, message in [(("export.dir=out",), "already exists"),
                          ((), "config key 'checkpoint' is required with mode=export"),
                          (("checkpoint=nowhere",), "nowhere"),
                          ((f"resume={run_dir}",), "pass checkpoint=PATH instead of resume=")]:
        proc = cli("mode=export", *([f"checkpoint={run_dir}"] if args and args[0] == "export.dir=out" else []), *args,
                   cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
            proc.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert not (tmp_path / "runs").exists()  # an export writes no run directory
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("lora", [0, 4])
def test_exported_language_model_loads_in_transformers_and_as_model_path_with_the_same_logits(tmp_path, lora):
    transformers = pytest.importorskip("transformers")
    model = {"name": "tiny", **({"lora": {"r": lora, "target_modules": ["c_attn"]}} if lora else {})}
    run_dir = tmp_path / "run"
    run_main({"agent": {"name": "grpo", "lr": 3e-3}, "model": model,
              "env": {"id": "text-digits", "num_envs": 16, "group_size": 8, "max_new_tokens": 4, "chat_template": False},
              "train": {"total_steps": 128}, "eval": {"every_steps": 0, "episodes": 2}, **QUIET}, run_dir)
    assert cli("mode=export", f"checkpoint={run_dir}", cwd=tmp_path).returncode == 0
    out = run_dir / "export"
    policy = classic_rl.load(run_dir, device="cpu")
    tokens = torch.tensor([[5, 17, 99, 3, 250, 42]])
    with torch.no_grad():
        expected = policy.agent.policy.model(tokens).logits
        hf = transformers.AutoModelForCausalLM.from_pretrained(out)
        assert torch.allclose(hf(tokens).logits, expected, atol=1e-5)
        from classic_rl.config import ModelConfig
        from classic_rl.lm.model import load

        reloaded = load(ModelConfig(name="path", path=str(out)))
        assert torch.allclose(reloaded.model(tokens).logits, expected, atol=1e-5)
    assert transformers.AutoTokenizer.from_pretrained(out).encode("12 + 7") == policy._tokenizer.encode("12 + 7")
    if lora:  # the adapter alone, for peft
        assert cli("mode=export", f"checkpoint={run_dir}", "export.merge_lora=false", "export.dir=adapter",
                   cwd=tmp_path).returncode == 0
        assert (tmp_path / "adapter" / "adapter_config.json").is_file()
