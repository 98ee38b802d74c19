"""GRPO fine-tuning of SmolLM2-135M-Instruct on text-arith: classic_rl, then TRL's GRPOTrainer on the
same model, prompts, batch, lengths and learning rate, in the same run.

    python experiments/lm_grpo.py                       # classic_rl (the README command), then TRL
    python experiments/lm_grpo.py --trl-steps 8         # how many TRL steps to time
    python experiments/lm_grpo.py --skip-trl -- model.lora.r=16   # extra overrides for classic_rl, after --
    python experiments/lm_grpo.py --agent ppo --skip-trl           # PPO with a value head instead
    python experiments/lm_grpo.py --env text --out experiments/results/lm_chain_sum -- \
        env.dataset=reasoning_gym:chain_sum ...                    # another task (classic_rl only)

classic_rl side: `python -m classic_rl agent=grpo env=text-arith model=smollm2-135m` (conf/tuned/
grpo_text-arith.yaml) in its own process: held-out greedy accuracy before (eval.at_start) and after,
the training-reward curve (metrics.jsonl), seconds per update (training wall seconds, generation
included, evaluation excluded, divided by the number of updates), peak resident memory.
TRL side (needs `pip install trl datasets`): GRPOTrainer for --trl-steps steps with the same
settings (16 completions per step = 2 prompts x 8, 16 new tokens, lr, β = 0, one iteration, the
GRPO loss, constant lr, no gradient checkpointing, fp32, torch threads as classic_rl's), timed per
step by a callback; its accuracy is not measured (it runs only a few steps). TRL is timed twice: as
installed, then with the malloc setting every classic_rl run applies (classic_rl.run.keep_freed_memory).
Writes experiments/results/lm_grpo.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def run_classic(agent: str, overrides: list[str], workdir: Path, threads: int, env: str = "text-arith",
                reuse: bool = False) -> dict:
    """One classic_rl run in workdir/classic_AGENT; `reuse`: a finished run already there is read, not rerun
    (its process wall is then the run's own wall_seconds)."""
    run_dir = workdir / f"classic_{agent}"
    cmd = [sys.executable, "-m", "classic_rl", f"agent={agent}", f"env={env}", "model=smollm2-135m",
           f"hydra.run.dir={run_dir}", "logger.progress=false", f"train.torch_threads={threads}", *overrides]
    if reuse and (run_dir / "summary.json").is_file():
        wall = json.loads((run_dir / "summary.json").read_text())["wall_seconds"]
    else:
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"classic_rl run failed:\n{proc.stderr[-3000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    curve = [(m["step"], m["train/reward_mean"]) for m in map(json.loads, (run_dir / "metrics.jsonl").open())
             if "train/reward_mean" in m]
    evals = summary["evaluations"]
    return {
        "command": " ".join(cmd[1:]),
        "process_wall_seconds": round(wall, 1),
        "train_seconds": summary["train_seconds"],
        "updates": summary["updates"],
        "seconds_per_update": round(summary["train_seconds"] / max(summary["updates"], 1), 2),
        "accuracy_before": round(evals[0]["return_mean"], 2) if evals and evals[0]["env_step"] == 0 else None,
        "accuracy_after": round(summary["eval_return_mean"], 2),
        "accuracy_curve": [(e["env_step"], round(e["train_seconds"], 1), round(e["return_mean"], 2)) for e in evals],
        "solved_at_seconds": summary["solved_at_seconds"],
        "reward_curve": curve,
        "peak_memory_mb": summary["peak_memory_mb"],
    }


# ---------------------------------------------------------------------------------------------- TRL
def trl_worker(steps: int, lr: float, threads: int, seed: int, out: Path, keep_memory: bool = False) -> None:
    """Runs in its own process: TRL GRPOTrainer on the cached SmolLM2, timing every step; `keep_memory`: with
    classic_rl's malloc setting (run.keep_freed_memory), which every classic_rl run applies."""
    import resource

    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from classic_rl.config import ModelConfig
    from classic_rl.envs.text_tasks import arith_rows, last_number
    from classic_rl.lm.model import load

    torch.set_num_threads(threads)
    if keep_memory:
        from classic_rl.run import keep_freed_memory

        keep_freed_memory()
    lm = load(ModelConfig(name="smollm2-135m"), "cpu", seed=seed)
    rows = arith_rows()["train"]  # classic_rl's text-arith training rows, with the same reward function
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}], "answer": r["answer"]}
                              for r in rows])

    def reward(prompts, completions, answer, **_):  # TRL passes chat completions as message lists
        texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
        return last_number(prompts, texts, answer=answer)

    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t0)

    config = GRPOConfig(
        output_dir=str(out.parent / "trl"), use_cpu=True, bf16=False, seed=seed, max_steps=steps,
        per_device_train_batch_size=16, num_generations=8, max_completion_length=16, learning_rate=lr,
        beta=0.0, num_iterations=1, loss_type="grpo", scale_rewards="group", temperature=1.0,
        lr_scheduler_type="constant", warmup_steps=0, gradient_checkpointing=False, logging_steps=1,
        report_to=[], save_strategy="no", dataloader_num_workers=0, max_grad_norm=1.0,
    )
    trainer = GRPOTrainer(model=lm.model, processing_class=lm.tokenizer, reward_funcs=[reward], args=config,
                          train_dataset=data, callbacks=[Timer()])
    trainer.train()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(json.dumps({"step_seconds": times, "peak_memory_mb": round(peak, 1)}))


def run_trl(steps: int, lr: float, threads: int, workdir: Path, keep_memory: bool = False) -> dict:
    out = workdir / f"trl{'_kept' if keep_memory else ''}.json"
    cmd = [sys.executable, __file__, "--trl-worker", "--trl-steps", str(steps), "--lr", str(lr),
           "--threads", str(threads), "--worker-out", str(out)] + (["--keep-freed-memory"] if keep_memory else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"TRL run failed:\n{proc.stderr[-3000:]}")
    record = json.loads(out.read_text())
    times = record["step_seconds"]
    return {"steps": len(times), "seconds_per_update": round(statistics.mean(times), 2),
            "median_seconds_per_update": round(statistics.median(times), 2), "step_seconds": [round(t, 2) for t in times],
            "peak_memory_mb": record["peak_memory_mb"]}


def table(result: dict) -> str:
    c, t = result["classic_rl"], result.get("trl")
    lines = ["| | classic_rl | TRL GRPOTrainer |", "|---|---|---|",
             f"| held-out accuracy before -> after | {c['accuracy_before']} -> {c['accuracy_after']} | not measured |",
             f"| seconds per update (16 completions) | {c['seconds_per_update']} | "
             f"{t['seconds_per_update'] if t else '-'} |",
             f"| peak memory (MB) | {c['peak_memory_mb']} | {t['peak_memory_mb'] if t else '-'} |",
             f"| training wall seconds, updates | {c['train_seconds']}, {c['updates']} | "
             f"{round(sum(t['step_seconds']), 1) if t else '-'}, {t['steps'] if t else '-'} |"]
    if t:
        lines.append(f"\nclassic_rl / TRL seconds per update: **{c['seconds_per_update'] / t['seconds_per_update']:.2f}**")
    if k := result.get("trl_kept_memory"):
        lines.append(f"\nTRL with classic_rl's malloc setting (`classic_rl.run.keep_freed_memory`): "
                     f"{k['seconds_per_update']} s per update, peak memory {k['peak_memory_mb']} MB; classic_rl / that: "
                     f"{c['seconds_per_update'] / k['seconds_per_update']:.2f}")
    lines.append(f"\nheld-out accuracy over training (env step, training seconds, accuracy): {c['accuracy_curve']}")
    lines.append(f"\ncommand: `{c['command']}`")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default="grpo", choices=["grpo", "ppo", "dpo"])
    parser.add_argument("--env", default="text-arith", help="classic_rl's env (TRL runs text-arith only)")
    parser.add_argument("--trl-steps", type=int, default=6)
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-5, help="TRL's learning rate (classic_rl's is in its config)")
    parser.add_argument("--out", type=Path, default=RESULTS / "lm_grpo")
    parser.add_argument("--trl-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keep-freed-memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for classic_rl, after --")
    args = parser.parse_args()
    if args.trl_worker:
        return trl_worker(args.trl_steps, args.lr, args.threads, 0, args.worker_out, args.keep_freed_memory)
    with tempfile.TemporaryDirectory() as tmp:
        result = {"classic_rl": run_classic(args.agent, args.overrides, Path(tmp), args.threads, args.env)}
        print(json.dumps({k: v for k, v in result["classic_rl"].items() if k != "reward_curve"}), flush=True)
        if not args.skip_trl and args.env == "text-arith":
            result["trl"] = run_trl(args.trl_steps, args.lr, args.threads, Path(tmp))
            print(json.dumps(result["trl"]), flush=True)
            # the same TRL run with classic_rl's malloc setting: how much of the ratio is the allocator
            result["trl_kept_memory"] = run_trl(args.trl_steps, args.lr, args.threads, Path(tmp), keep_memory=True)
            print(json.dumps(result["trl_kept_memory"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    args.out.with_suffix(".md").write_text(table(result))
    print(table(result))


if __name__ == "__main__":
    main()
