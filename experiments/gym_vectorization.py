"""Env steps per second of a Gymnasium env through classic_rl's adapter, sync against async.

    python experiments/gym_vectorization.py                          # LunarLander-v3 (pip install box2d)
    python experiments/gym_vectorization.py --env CartPole-v1 --num-envs 2 8

`env.vectorization_mode=sync` steps the N envs one after another in this process (SyncVectorEnv);
`async` steps each in its own subprocess (AsyncVectorEnv). For each N both modes are measured in
interleaved blocks (median over blocks), random actions drawn beforehand, the same for both, through
`classic_rl.envs.make(...)`: torch tensors in and out, as the trainer sees them.
Writes experiments/results/gym_vectorization.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from classic_rl.envs import make

RESULTS = Path(__file__).resolve().parent / "results"


def steps_per_second(env, actions: list[torch.Tensor], seconds: float) -> float:
    """Env steps per second over `seconds` of stepping (cycling through the pre-drawn actions)."""
    steps, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        env.step(actions[i % len(actions)])
        steps += env.num_envs
        i += 1
    return steps / (time.perf_counter() - start)


def measure(env_id: str, num_envs: int, blocks: int, seconds: float) -> dict[str, float]:
    envs = {mode: make(env_id, num_envs=num_envs, seed=0, backend="gymnasium", vectorization_mode=mode)
            for mode in ("sync", "async")}
    space = envs["sync"].single_action_space
    space.seed(0)
    actions = [torch.as_tensor(np.stack([space.sample() for _ in range(num_envs)])) for _ in range(256)]
    rates: dict[str, list[float]] = {mode: [] for mode in envs}
    for env in envs.values():
        env.reset(seed=0)
        steps_per_second(env, actions, 0.3)  # warm-up
    for _ in range(blocks):
        for mode, env in envs.items():
            rates[mode].append(steps_per_second(env, actions, seconds))
    for env in envs.values():
        env.close()
    return {mode: statistics.median(r) for mode, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="LunarLander-v3")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 2, 8])
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for n in args.num_envs:
        rate = measure(args.env, n, args.blocks, args.seconds)
        rows.append({"num_envs": n, **{k: round(v) for k, v in rate.items()},
                     "async_over_sync": round(rate["async"] / rate["sync"], 2)})
        print(rows[-1], flush=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result = {"env": args.env, "machine": machine, "load_average_1min_at_end": load, "rows": rows,
              "command": f"python experiments/gym_vectorization.py --env {args.env} --num-envs "
                         f"{' '.join(map(str, args.num_envs))}"}
    lines = [f"# {args.env}: env steps per second, sync against async", "",
             f"`{result['command']}` ({machine}; load average {load:.2f} at the end; median of "
             f"{args.blocks} interleaved blocks of {args.seconds} s; random actions)", "",
             "| env.num_envs | sync | async | async / sync |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['num_envs']} | {r['sync']:,} | {r['async']:,} | {r['async_over_sync']:.2f} |" for r in rows]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gym_vectorization.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "gym_vectorization.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
