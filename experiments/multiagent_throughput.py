"""Joint env steps per second of simple_spread: classic_rl's batched torch env vs mpe2's own.

A joint step moves every agent of one env once. Backends, for N parallel envs:
  mpe2           mpe2's simple_spread_v3.parallel_env stepped in a Python loop (one env; N copies
                 would take N times as long, so its rate is per env and the same at every N)
  torch          classic_rl.envs.make("simple_spread", num_envs=N) on the CPU (and CUDA when present)

Actions come from a bank drawn before timing. Each backend runs `--repeats` blocks in turn and the
median block counts, so drifting machine load hits both alike. One torch thread unless --threads.

    python experiments/multiagent_throughput.py                # N = 1 .. 16384, results/multiagent_throughput.*
    python experiments/multiagent_throughput.py --quick
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classic_rl.envs import make  # noqa: E402
from classic_rl.files import atomic_write_text  # noqa: E402

RESULTS = ROOT / "experiments" / "results"


def mpe2_block(seconds: float, seed: int = 0) -> float:
    """Joint steps per second of one mpe2 simple_spread env (auto-reset by hand, as a vector env would)."""
    from mpe2 import simple_spread_v3

    env = simple_spread_v3.parallel_env(N=3, max_cycles=25)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    bank = rng.integers(0, 5, (1000, 3))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for row in bank[:100]:
            env.step({a: int(row[j]) for j, a in enumerate(env.possible_agents)})
            if not env.agents:
                env.reset()
        steps += 100
    return steps / (time.perf_counter() - start)


def torch_block(env, bank: torch.Tensor, seconds: float, sync) -> float:
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for actions in bank:
            env.step(actions)
        sync()
        steps += len(bank)
    return steps * env.num_envs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1, 64, 1024, 4096, 16384])
    parser.add_argument("--quick", action="store_true", help="N = 1, 64, 4096 and shorter blocks")
    parser.add_argument("--seconds", type=float, default=6.0, help="per backend and N, split into --repeats blocks")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "multiagent_throughput")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.seconds = [1, 64, 4096], 1.5
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    block = args.seconds / args.repeats
    records = []
    for n in args.sizes:
        envs = {}
        for device in devices:
            env = make("simple_spread", num_envs=n, device=device, seed=0)
            env.reset(seed=0)
            bank = torch.randint(0, 5, (50, n, 3), generator=torch.Generator().manual_seed(0)).to(device)
            sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
            torch_block(env, bank, min(block, 0.5), sync)  # warm-up
            envs[f"torch-{device.type}"] = (env, bank, sync)
        rates: dict[str, list[float]] = {name: [] for name in ["mpe2", *envs]}
        for _ in range(args.repeats):
            rates["mpe2"].append(mpe2_block(block))
            for name, (env, bank, sync) in envs.items():
                rates[name].append(torch_block(env, bank, block, sync))
        for name, values in rates.items():
            sps = statistics.median(values)
            records.append({"backend": name, "num_envs": n, "joint_steps_per_s": round(sps),
                            "ratio_to_mpe2": round(sps / statistics.median(rates["mpe2"]), 1)})
            print(json.dumps(records[-1]), flush=True)
    meta = {"command": " ".join(["python", *sys.argv]), "machine": f"{platform.machine()}, {torch.get_num_threads()} "
            f"torch thread(s), {platform.processor() or 'cpu'}", "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"meta": meta, "records": records}, indent=1))
    lines = ["# simple_spread: joint env steps per second", "", f"`{meta['command']}` ({meta['machine']}, torch "
             f"{meta['torch']}{', ' + meta['cuda'] if meta['cuda'] else ''}). A joint step moves the 3 agents of one "
             "env once; mpe2 steps one env in a Python loop, so its rate is the same at every N.", "",
             "| N | backend | joint steps/s | x mpe2 |", "|---:|---|---:|---:|"]
    lines += [f"| {r['num_envs']} | {r['backend']} | {r['joint_steps_per_s']:,} | {r['ratio_to_mpe2']} |" for r in records]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
