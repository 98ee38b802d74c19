"""When compiling a torch-native env's step pays: compilation seconds against the seconds it saves per
vector step, on this machine.

    python experiments/compile_crossover.py                       # CPU, 1 thread
    python experiments/compile_crossover.py --device cuda --sizes 1 4096 65536

For each env and N: the seconds of the first compiled step (tracing + Inductor), in a fresh process
with an empty Inductor cache (cold) and again in a fresh process with that cache filled (warm: torch
caches compiled kernels on disk, TORCHINDUCTOR_CACHE_DIR); the seconds per vector step eager and
compiled (median of interleaved blocks, random actions pre-drawn); and the crossover, compilation
seconds / seconds saved per vector step: a run of more vector steps than that (train.total_steps /
env.num_envs) gets its compilation back. `env.compile=auto` compiles the training env past
`classic_rl.envs.torch_env.COMPILE_AUTO_VECTOR_STEPS`, set from this table.
Writes experiments/results/compile_crossover.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"

CHILD = r"""
import json, statistics, sys, time, torch
from classic_rl.envs import make
env_id, n, device, mode, seconds, blocks = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(1)
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
out = {}
envs = {"eager": make(env_id, num_envs=n, device=device, seed=0)}
if mode == "compile":
    env = make(env_id, num_envs=n, device=device, seed=0, compile=True)
    env.reset(seed=0)
    space = env.single_action_space
    bank = [torch.as_tensor([space.sample() for _ in range(n)], device=device) for _ in range(4)]
    start = time.perf_counter(); env.step(bank[0]); sync()
    out["compile_seconds"] = time.perf_counter() - start
    print(json.dumps(out)); sys.exit(0)
envs["compiled"] = make(env_id, num_envs=n, device=device, seed=0, compile=True)
space = envs["eager"].single_action_space
bank = [torch.as_tensor([space.sample() for _ in range(n)], device=device) for _ in range(16)]
for env in envs.values():
    env.reset(seed=0)
    for i in range(20):
        env.step(bank[i % 16])
    sync()
per = {name: [] for name in envs}
for _ in range(blocks):
    for name, env in envs.items():
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / blocks:
            for i in range(16):
                env.step(bank[i])
            steps += 16
        sync()
        per[name].append((time.perf_counter() - start) / steps)
print(json.dumps({f"{k}_step_seconds": statistics.median(v) for k, v in per.items()}))
"""


def child(args: list[str], cache: str) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"measurement {args} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "Acrobot-v1", "Pendulum-v1"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 128, 4096])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per backend and N")
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "compile_crossover")
    args = parser.parse_args()
    rows = []
    for env_id in args.envs:
        for n in args.sizes:
            with tempfile.TemporaryDirectory() as cache:
                base = [env_id, str(n), args.device]
                cold = child([*base, "compile", "0", "1"], cache)["compile_seconds"]
                warm = child([*base, "compile", "0", "1"], cache)["compile_seconds"]
                steps = child([*base, "steps", str(args.seconds), str(args.blocks)], cache)
            saved = steps["eager_step_seconds"] - steps["compiled_step_seconds"]
            row = {"env": env_id, "num_envs": n, "compile_seconds_cold": cold, "compile_seconds_warm": warm, **steps,
                   "crossover_vector_steps_cold": cold / saved if saved > 0 else None,
                   "crossover_vector_steps_warm": warm / saved if saved > 0 else None}
            rows.append(row)
            print(json.dumps(row), flush=True)
    import torch

    meta = {"command": "python experiments/compile_crossover.py " + " ".join(sys.argv[1:]), "device": args.device,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": 1}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = ["# When compiling the env step pays", "", f"`{meta['command']}`", "",
             f"- {meta['cpu']}, {meta['cores']} cores, 1 torch thread, device {args.device}, torch {meta['torch']}",
             "- compile: seconds of the first compiled step in a fresh process, with an empty Inductor cache (cold) "
             "and with the cache the cold run filled (warm)",
             "- step: seconds per vector step (median of interleaved blocks); crossover: compile seconds / seconds "
             "saved per vector step, the run length in vector steps past which compiling pays", "",
             "| env | N | compile cold (s) | compile warm (s) | eager step (ms) | compiled step (ms) | "
             "crossover cold (vector steps) | crossover warm (vector steps) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def count(x):
        return "never" if x is None else f"{x:,.0f}"
    for r in rows:
        lines.append(f"| {r['env']} | {r['num_envs']} | {r['compile_seconds_cold']:.2f} | {r['compile_seconds_warm']:.2f} | "
                     f"{r['eager_step_seconds'] * 1e3:.3f} | {r['compiled_step_seconds'] * 1e3:.3f} | "
                     f"{count(r['crossover_vector_steps_cold'])} | {count(r['crossover_vector_steps_warm'])} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
