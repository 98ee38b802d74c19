"""End-to-end PPO training throughput on CartPole-v1 with thousands of torch-native envs.

    python experiments/ppo_throughput.py                          # 4096 envs, CPU, 2 torch threads
    python experiments/ppo_throughput.py --threads 1 --seeds 0 1 2
    python experiments/ppo_throughput.py --device cuda --num-envs 65536
    python experiments/ppo_throughput.py --seeds 0 1 2 3 4 --sb3       # and Stable-Baselines3's PPO, same run

Each run is the plain command line with the `+experiment=ppo_cartpole_4096` settings (collection,
GAE and the updates all included; evaluation excluded, as in every `train_seconds`), in its own
process. Reports, per run:
- steady-state env steps/s: the median of the trainer's `perf/sps` logs after the first 10% of the
  run (the compiled env step and the first allocations are behind it),
- end-to-end env steps/s: env_steps / train_seconds of the whole run, warm-up and compilation included,
- env steps per CPU-second (train_cpu_seconds: all threads of the process),
- when the run first reached evaluation >= 475, and the final evaluation.
With --sb3, each seed also trains Stable-Baselines3's PPO on CartPole-v1 with rl-baselines3-zoo's tuned
settings (8 envs, experiments/compare_sb3.py ZOO; the zoo's 100k env steps) in its own process with the
same torch threads, and the ratio of the medians is reported: env steps/s of `model.learn`, no evaluation.
Writes experiments/results/ppo_throughput.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def run(seed: int, args: argparse.Namespace, workdir: Path) -> dict:
    run_dir = workdir / f"seed{seed}"
    cmd = [sys.executable, "-m", "classic_rl", "agent=ppo", "env=CartPole-v1", "+experiment=ppo_cartpole_4096",
           f"seed={seed}", f"device={args.device}", f"env.num_envs={args.num_envs}",
           f"train.torch_threads={args.threads}", f"train.total_steps={args.total_steps}",
           f"hydra.run.dir={run_dir}", "logger.progress=false", *args.overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed} failed:\n{proc.stderr[-2000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    logs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    sps = [m["perf/sps"] for m in logs if "perf/sps" in m and m["step"] > 0.1 * summary["env_steps"]]
    return {
        "seed": seed,
        "env_steps": summary["env_steps"],
        "steady_sps": statistics.median(sps) if sps else None,
        "end_to_end_sps": summary["env_steps"] / summary["train_seconds"],
        "sps_per_cpu_second": summary["env_steps"] / summary["train_cpu_seconds"],
        "train_seconds": summary["train_seconds"],
        "solved_at_step": summary["solved_at_step"],
        "solved_at_seconds": summary["solved_at_seconds"],
        "eval_return_mean": summary["eval_return_mean"],
    }


def sb3_worker(seed: int, threads: int, out: Path) -> None:
    """Train SB3's PPO with the zoo's CartPole-v1 settings in this process; write env steps and seconds."""
    import time

    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from compare_sb3 import ZOO, _sb3_kwargs
    from stable_baselines3 import PPO, __version__
    from stable_baselines3.common.env_util import make_vec_env

    spec = ZOO[("ppo", "CartPole-v1")]
    venv = make_vec_env("CartPole-v1", n_envs=spec["n_envs"], seed=seed)
    model = PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **_sb3_kwargs("ppo", spec, None))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=spec["n_timesteps"])
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    out.write_text(json.dumps({"seed": seed, "sb3_version": __version__, "num_envs": spec["n_envs"],
                               "env_steps": model.num_timesteps, "train_seconds": round(wall, 3),
                               "env_steps_per_second": model.num_timesteps / wall,
                               "sps_per_cpu_second": model.num_timesteps / cpu}))


def run_sb3(seed: int, threads: int, workdir: Path) -> dict:
    out = workdir / f"sb3_seed{seed}.json"
    cmd = [sys.executable, __file__, "--sb3-worker", str(seed), "--threads", str(threads), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if proc.returncode != 0:
        raise SystemExit(f"sb3 seed {seed} failed:\n{proc.stderr[-2000:]}")
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2 cores)")
    parser.add_argument("--total-steps", type=int, default=8_000_000)
    parser.add_argument("--out", type=Path, default=RESULTS / "ppo_throughput")
    parser.add_argument("--sb3", action="store_true", help="also Stable-Baselines3's PPO (zoo settings), same run")
    parser.add_argument("--sb3-worker", type=int, metavar="SEED", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, after --")
    args = parser.parse_args()
    if args.sb3_worker is not None:
        return sb3_worker(args.sb3_worker, args.threads, args.out)
    rows, sb3_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            rows.append(run(seed, args, Path(tmp)))
            r = rows[-1]
            print(f"seed {seed}: steady {r['steady_sps']:,.0f} env steps/s, end to end {r['end_to_end_sps']:,.0f}, "
                  f"{r['sps_per_cpu_second']:,.0f} per CPU-s; solved at {r['solved_at_step']} steps "
                  f"({r['solved_at_seconds']} s); final eval {r['eval_return_mean']:.1f}", flush=True)
            if args.sb3:
                sb3_rows.append(run_sb3(seed, args.threads, Path(tmp)))
                print(f"seed {seed}: SB3 {sb3_rows[-1]['env_steps_per_second']:,.0f} env steps/s", flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in ("steady_sps", "end_to_end_sps", "sps_per_cpu_second")}
    sb3 = None
    if sb3_rows:
        sb3_median = statistics.median(r["env_steps_per_second"] for r in sb3_rows)
        sb3 = {"runs": sb3_rows, "median_env_steps_per_second": sb3_median,
               "end_to_end_ratio": med["end_to_end_sps"] / sb3_median}
    setting = {"device": args.device, "num_envs": args.num_envs, "threads": args.threads,
               "total_steps": args.total_steps, "overrides": args.overrides}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"setting": setting, "median": med, "runs": rows, **({"sb3": sb3} if sb3 else {})},
                                                   indent=2))
    lines = [f"PPO CartPole-v1, {args.num_envs} torch-native envs, device={args.device}, {args.threads} torch "
             f"thread(s), `+experiment=ppo_cartpole_4096` {' '.join(args.overrides)}", "",
             "| seed | steady env steps/s | end-to-end env steps/s | env steps per CPU-s | solved at step | "
             "solved at s | final eval |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['steady_sps']:,.0f} | {r['end_to_end_sps']:,.0f} | "
                     f"{r['sps_per_cpu_second']:,.0f} | {r['solved_at_step']} | {r['solved_at_seconds']} | "
                     f"{r['eval_return_mean']:.1f} |")
    lines.append(f"| median | {med['steady_sps']:,.0f} | {med['end_to_end_sps']:,.0f} | "
                 f"{med['sps_per_cpu_second']:,.0f} | | | |")
    if sb3:
        lines += ["", f"Stable-Baselines3 {sb3_rows[0]['sb3_version']} PPO, rl-baselines3-zoo's CartPole-v1 settings "
                  f"({sb3_rows[0]['num_envs']} envs), same run and threads: median "
                  f"{sb3['median_env_steps_per_second']:,.0f} env steps/s; classic_rl end to end / SB3 = "
                  f"{sb3['end_to_end_ratio']:,.0f}x"]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
