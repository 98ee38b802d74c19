"""mode=export: a trained run as files that run without classic_rl.

    python -m classic_rl mode=export checkpoint=RUN_DIR [export.dir=DIR]   # default RUN_DIR/export/

Classic agents: the deterministic acting network (what `act(obs, explore=False)` computes,
observation normalization included) traced to TorchScript, `DIR/policy.pt`:
`torch.jit.load(p)(obs_batch)` -> the action batch (multi-agent: observations [N, A, ...] -> joint
actions [N, A, ...], each agent acting on its own observation) (int64 indices for discrete actions, float32 for
continuous ones); and, with the `onnx` extra, the same as `DIR/policy.onnx` (input `obs`, output
`action`, any batch size). Language models: a Hugging Face directory (`save_pretrained`: config,
safetensors weights, tokenizer) that `AutoModelForCausalLM.from_pretrained(DIR)` and
`model=path model.path=DIR` load; with LoRA the adapters are merged into the weights
(`export.merge_lora=true`, default) or saved as a peft adapter directory (false).
Every export writes DIR/export.json (what was exported, from which checkpoint). An existing DIR is
never overwritten; the directory appears complete or not at all.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classic_rl import checkpoint as ckpt
from classic_rl.config import RunConfig, UserError
from classic_rl.logger import console


class ActingNetwork(torch.nn.Module):
    """obs batch -> the agent's deterministic action batch, with the agent's networks as submodules
    (so that tracing stores their weights as parameters)."""

    def __init__(self, agent: Any) -> None:
        super().__init__()
        self.nets = torch.nn.ModuleDict({name: m for name, m in vars(agent).items() if isinstance(m, torch.nn.Module)})
        self.agent = agent

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.agent.act(obs, explore=False)


def example_observations(space: Any, n: int = 3, agents: int = 1) -> torch.Tensor:
    """n observations [n, *shape] of `space`; [n, agents, *shape] for a multi-agent env."""
    space.seed(0)
    batch = np.stack([np.asarray(space.sample()) for _ in range(n * agents)])
    if agents > 1:
        batch = batch.reshape(n, agents, *batch.shape[1:])
    return torch.as_tensor(batch).to(torch.int64 if np.issubdtype(batch.dtype, np.integer) else torch.float32)


def export_run(cfg: RunConfig) -> dict[str, Any]:
    """Export the checkpoint `cfg.checkpoint` into `cfg.export.dir` (default: RUN_DIR/export)."""
    from classic_rl.run import restore_agent

    source = ckpt.resolve(cfg.checkpoint)
    out = Path(cfg.export.dir).expanduser() if cfg.export.dir else source.parent / "export"
    if out.exists():
        raise UserError(f"export.dir={out} already exists; pass another export.dir (an export is never overwritten)")
    payload = ckpt.load(source)
    agent, spec, saved_cfg, tokenizer = restore_agent(payload, "cpu")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=out.parent))
    try:
        if saved_cfg.model is not None:
            files = export_language_model(agent, tokenizer, staging, cfg.export.merge_lora)
        else:
            files = export_policy(agent, spec, staging, cfg.export.onnx)
        info = {"checkpoint": str(source), "agent": saved_cfg.agent["name"], "env": saved_cfg.env.name,
                "env_steps": payload["trainer"]["env_steps"], "files": files}
        (staging / "export.json").write_text(json.dumps(info, indent=2) + "\n")
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    console(f"classic_rl: exported {info['agent']} on {info['env']} to {out}: {', '.join(files)}")
    return {**info, "dir": str(out)}


def export_policy(agent: Any, spec: Any, out: Path, onnx: bool | None) -> list[str]:
    """policy.pt (TorchScript) and, when `onnx` is not False and the onnx package is there, policy.onnx."""
    if spec.text is not None:
        raise UserError("a text env's policy is its language model: export it with a model= run")
    network = ActingNetwork(agent).eval().requires_grad_(False)  # inference only: outputs need no graph
    example = example_observations(spec.observation_space, 3, spec.num_agents)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation notice: TorchScript is what the file is
        traced = torch.jit.trace(network, example,
                                 check_inputs=[example_observations(spec.observation_space, 7, spec.num_agents)])
    traced.save(str(out / "policy.pt"))
    files = ["policy.pt"]
    if onnx is False:
        return files
    try:
        import onnx as _onnx  # noqa: F401
    except ImportError:
        if onnx:
            raise UserError("export.onnx=true needs the onnx package: pip install 'classic_rl[onnx]'") from None
        return files
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (example,), str(out / "policy.onnx"), input_names=["obs"], output_names=["action"],
                          dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}}, dynamo=False)
    return files + ["policy.onnx"]


def export_language_model(agent: Any, tokenizer: Any, out: Path, merge_lora: bool) -> list[str]:
    """The policy's language model as a Hugging Face directory (merged weights, or a LoRA adapter)."""
    policy = agent.policy  # lm/policy.py LMPolicy: the model (peft-wrapped with LoRA)
    model = policy.model
    if policy.lora and merge_lora:
        import copy

        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return sorted(p.name for p in out.iterdir())
