"""Environment steps per second: torch-native classic control vs Gymnasium's vector envs.

Backends, for N parallel envs:
  gym-numpy       gym.make_vec("CartPole-v1", N, "vector_entry_point") (CartPoleVectorEnv, CartPole only)
  gym-sync        gym.make_vec(id, N, vectorization_mode="sync")     (SyncVectorEnv, capped at N=4096)
  torch-eager     TorchVectorEnv(DYNAMICS[id](), N)
  torch-compiled  TorchVectorEnv(DYNAMICS[id](), N, compile=True)    (one Inductor-fused step)

Every backend steps through the same bank of pre-drawn random actions (drawn outside the timed
loop), after a warm-up (which also compiles). Measurements of one N are interleaved: each backend
runs `--repeats` blocks of `--seconds / --repeats` in turn and the median block counts, so drifting
machine load hits all backends alike. CartPole ratios are against gym-numpy CartPole of the same N,
the other envs' against their own gym-sync (Gymnasium has no numpy-vectorized version of them).

    python experiments/env_throughput.py                 # 1 thread, CPU (+ CUDA if available)
    python experiments/env_throughput.py --quick         # N = 1, 16, 256 only
    python experiments/env_throughput.py --threads 4 --seconds 2
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classic_rl.envs.classic import DYNAMICS  # noqa: E402
from classic_rl.envs.torch_env import TorchVectorEnv  # noqa: E402

SIZES = [1, 16, 256, 4096, 65536]
QUICK_SIZES = [1, 16, 256]
SYNC_CAP = 4096  # SyncVectorEnv above this is one Python env object per env: minutes to build, GBs
ACTION_BANK = 16


def action_bank(space: gym.Space, n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if isinstance(space, gym.spaces.Discrete):
        return [rng.integers(0, int(space.n), size=n, dtype=np.int64) for _ in range(ACTION_BANK)]
    low, high = space.low.astype(np.float32), space.high.astype(np.float32)
    return [rng.uniform(low, high, size=(n, *space.shape)).astype(np.float32) for _ in range(ACTION_BANK)]


class Runner:
    """One backend at one N: `step_block(k)` runs k steps and returns their wall time."""

    def __init__(self, name: str, env_id: str, n: int, step: Callable[[int], object], sync: Callable[[], None]):
        self.name, self.env_id, self.n, self._step, self._sync = name, env_id, n, step, sync
        self.samples: list[float] = []  # env-steps per second of each block
        self.steps_per_block = 1

    def step_block(self, k: int) -> float:
        self._sync()
        start = time.perf_counter()
        for i in range(k):
            self._step(i % ACTION_BANK)
        self._sync()
        return time.perf_counter() - start

    def warm_up(self, seconds: float, block_seconds: float) -> None:
        self.step_block(3)  # compiles, if it compiles
        k, elapsed = 1, 0.0
        while True:  # grow until a block takes a measurable time, then size blocks from it
            elapsed = self.step_block(k)
            if elapsed > min(0.05, seconds) or k >= 1 << 20:
                break
            k *= 2
        spent = elapsed
        while spent < seconds:
            spent += self.step_block(k)
        self.steps_per_block = max(1, int(k * block_seconds / max(elapsed, 1e-9)))

    def measure(self) -> None:
        elapsed = self.step_block(self.steps_per_block)
        self.samples.append(self.steps_per_block * self.n / elapsed)

    @property
    def sps(self) -> float:
        return statistics.median(self.samples)


def gym_runner(name: str, env_id: str, n: int, mode: str) -> Runner:
    env = gym.make_vec(env_id, num_envs=n, vectorization_mode=mode)
    env.reset(seed=0)
    bank = action_bank(env.single_action_space, n)
    return Runner(name, env_id, n, lambda i: env.step(bank[i]), lambda: None)


def torch_runner(name: str, env_id: str, n: int, device: torch.device, compile: bool) -> Runner:
    env = TorchVectorEnv(DYNAMICS[env_id](), n, device=device, seed=0, compile=compile)
    env.reset(seed=0)
    bank = [torch.as_tensor(a, device=device) for a in action_bank(env.single_action_space, n)]
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    runner = Runner(name, env_id, n, lambda i: env.step(bank[i]), sync)
    runner.env = env
    return runner


def runners_for(n: int, device: torch.device, env_ids: list[str]) -> list[Runner]:
    out = []
    if device.type == "cpu":
        out.append(gym_runner("gym-numpy", "CartPole-v1", n, "vector_entry_point"))
    for env_id in env_ids:
        if device.type == "cpu" and n <= SYNC_CAP:
            out.append(gym_runner("gym-sync", env_id, n, "sync"))
        out.append(torch_runner(f"torch-eager/{device.type}", env_id, n, device, compile=False))
        out.append(torch_runner(f"torch-compiled/{device.type}", env_id, n, device, compile=True))
    return out


def baseline(records: list[dict], record: dict) -> tuple[float | None, str]:
    """(steps/s of the reference backend for this record, its name)."""
    name = "gym-numpy" if record["env"] == "CartPole-v1" else "gym-sync"
    for r in records:
        if r["num_envs"] == record["num_envs"] and r["env"] == record["env"] and r["backend"] == name:
            return r["steps_per_s"], name
    return None, name


def run(args: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available() and not args.cpu_only
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if cuda else [])
    sizes = QUICK_SIZES if args.quick else args.sizes
    block = args.seconds / args.repeats
    records = []
    for device in devices:
        for n in sizes:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Gymnasium's numpy-2 deprecation chatter
                runners = runners_for(n, device, args.envs)
                for r in runners:
                    t0 = time.perf_counter()
                    r.warm_up(args.warmup, block)
                    if getattr(r, "env", None) is not None and r.env.compile and None in r.env._kernels.values():
                        r.name += " (compile failed: eager)"
                    print(f"  warmed {r.name:28s} {r.env_id:26s} N={n:<6d} in {time.perf_counter() - t0:5.1f}s",
                          flush=True)
                for _ in range(args.repeats):  # interleaved blocks
                    for r in runners:
                        r.measure()
            cpu_records = [rec for rec in records if rec["device"] == "cpu"]
            fresh = [{"device": device.type, "num_envs": n, "env": r.env_id, "backend": r.name,
                      "steps_per_s": r.sps, "samples": r.samples} for r in runners]
            for rec in fresh:  # CUDA rows compare with the CPU Gymnasium baselines of the same N
                base, name = baseline(cpu_records + fresh, rec)
                rec["ratio"], rec["ratio_vs"] = (rec["steps_per_s"] / base if base else None), name
                ratio = f"{rec['ratio']:9.2f}x {name}" if base else ""
                print(f"{device.type:4s} N={n:<6d} {rec['backend']:28s} {rec['env']:26s} "
                      f"{rec['steps_per_s']:14,.0f} steps/s {ratio}", flush=True)
            records += fresh
            del runners
    return records


def markdown(records: list[dict], args: argparse.Namespace, meta: dict) -> str:
    lines = [
        "# Environment throughput",
        "",
        "`" + " ".join(["python", "experiments/env_throughput.py", *sys.argv[1:]]) + "`",
        "",
        f"- {meta['cpu']}, {args.threads} thread(s) (`torch.set_num_threads`), device(s): {meta['devices']}",
        f"- torch {meta['torch']}, gymnasium {meta['gymnasium']}, numpy {meta['numpy']}, python {meta['python']}",
        f"- {args.seconds:g} s per measurement in {args.repeats} interleaved blocks (median), "
        f"{args.warmup:g} s warm-up (includes compilation); random actions pre-drawn, same for every backend",
        "- ratio: CartPole over Gymnasium's numpy-vectorized CartPole (`gym-numpy`, `vector_entry_point`) "
        "at the same N; the other envs over their own `gym-sync` at the same N",
        f"- gym-sync (SyncVectorEnv) is measured up to N={SYNC_CAP} only: larger is one Python env per env "
        "(minutes to build, GBs of objects)",
        "",
    ]
    sizes = sorted({r["num_envs"] for r in records})
    envs = list(dict.fromkeys(r["env"] for r in records))
    for env_id in envs:
        rows = [r for r in records if r["env"] == env_id]
        versus = "gym-numpy CartPole" if env_id == "CartPole-v1" else f"gym-sync {env_id}"
        lines += [f"## {env_id}: env steps per second (x {versus})", ""]
        lines.append("| backend | " + " | ".join(f"N={n}" for n in sizes) + " |")
        lines.append("|---|" + "---:|" * len(sizes))
        for backend in dict.fromkeys(r["backend"] for r in rows):
            cells = []
            for n in sizes:
                hit = [r for r in rows if r["num_envs"] == n and r["backend"] == backend]
                if not hit:
                    cells.append(f"capped at {SYNC_CAP}" if backend == "gym-sync" and n > SYNC_CAP else "-")
                    continue
                r = hit[0]
                ratio = f" ({r['ratio']:.2f}x)" if r["ratio"] else ""
                cells.append(f"{r['steps_per_s']:,.0f}{ratio}")
            lines.append(f"| {backend} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per measurement (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved blocks per measurement (default 5)")
    parser.add_argument("--warmup", type=float, default=0.3, help="warm-up seconds after compiling (default 0.3)")
    parser.add_argument("--quick", action="store_true", help=f"N in {QUICK_SIZES} only")
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--envs", nargs="+", default=list(DYNAMICS), choices=list(DYNAMICS))
    parser.add_argument("--cpu-only", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "env_throughput")
    args = parser.parse_args()

    cuda = torch.cuda.is_available() and not args.cpu_only
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    meta = {
        "cpu": cpu, "threads": args.threads, "torch": torch.__version__, "gymnasium": gym.__version__,
        "numpy": np.__version__, "python": platform.python_version(),
        "devices": "cpu" + (", " + torch.cuda.get_device_name() if cuda else ""),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv[1:],
        "seconds": args.seconds, "repeats": args.repeats, "sync_cap": SYNC_CAP,
    }
    records = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": records}, indent=1))
    text = markdown(records, args, meta)
    args.out.with_suffix(".md").write_text(text + "\n")
    print()
    print(text)


if __name__ == "__main__":
    main()
