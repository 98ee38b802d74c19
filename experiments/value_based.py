"""Value-based benchmark: every tabular agent and DQN preset on its environments, several seeds each.

    python experiments/value_based.py                      # the whole suite, 5 seeds, 2 runs at a time
    python experiments/value_based.py --only CartPole --seeds 0 1 2 3 4 --jobs 2
    python experiments/value_based.py --per-timing          # prioritized replay at 1M capacity only
    python experiments/value_based.py --pairs nstep_dqn:MountainCar-v0 --out experiments/results/parts/mc
    python experiments/value_based.py --merge experiments/results/parts/*.json   # parts -> one table

Every run is the plain command line (`python -m classic_rl agent=A env=E ...`, tuned configs
included) in its own process with one torch thread, so CPU-seconds are the run's own. For each
(agent, env) the table gives the final evaluation return (mean ± std over seeds, each the mean of
that run's evaluation episodes), how many seeds reached the target, and the median env steps and
training CPU-seconds to the first evaluation at or above the target (evaluation time excluded).
Writes experiments/results/value_based.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import tempfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import RESULTS, median_reached, run_seed  # noqa: E402

DQN_PRESETS = ["dqn", "double_dqn", "dueling_dqn", "per_dqn", "noisy_dqn", "nstep_dqn", "rainbow"]
TABULAR = ["q_learning", "sarsa", "expected_sarsa"]
# (label, env overrides, target): targets are the figures of the value-based issue
ENVS = {
    "FrozenLake-v1": (["env=FrozenLake-v1"], 0.70),
    "FrozenLake8x8-v1": (["env=FrozenLake8x8-v1"], 0.70),
    "Taxi-v4": (["env=Taxi-v4"], 7.5),
    "CliffWalking-v1": (["env=CliffWalking-v1"], -13.0),
    "CartPole-v1": (["env=CartPole-v1"], 475.0),
    "Acrobot-v1": (["env=Acrobot-v1"], -100.0),
    "MountainCar-v0": (["env=MountainCar-v0"], -110.0),
}
SUITE = [(a, e) for a in TABULAR for e in ("FrozenLake-v1", "FrozenLake8x8-v1", "Taxi-v4", "CliffWalking-v1")]
SUITE += [(a, "CartPole-v1") for a in DQN_PRESETS]
SUITE += [("dqn", "Acrobot-v1"), ("nstep_dqn", "Acrobot-v1"), ("dqn", "MountainCar-v0"), ("nstep_dqn", "MountainCar-v0")]


def first_at_target(summary: dict, target: float) -> dict | None:
    return next((e for e in summary["evaluations"] if e["return_mean"] >= target - 1e-9), None)


def run_or_reuse(seed: int, args: list[str], workdir: Path) -> dict:
    """A finished run's summary.json in workdir/seed<seed> is reused, and a run a signal stopped is
    resumed (a --workdir survives interruptions)."""
    run_dir = workdir / f"seed{seed}"
    if (run_dir / "summary.json").exists():
        summary = json.loads((run_dir / "summary.json").read_text())
        if summary.get("diverged"):
            raise SystemExit(f"{run_dir} diverged ({summary['diverged']}); move it away to run seed {seed} again")
        if not summary.get("interrupted"):
            return summary
        proc = subprocess.run([sys.executable, "-m", "classic_rl", f"resume={run_dir}", "logger.progress=false"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"resuming {run_dir} failed:\n{proc.stderr[-2000:]}")
        return json.loads((run_dir / "summary.json").read_text())
    return run_seed(seed, args, workdir)


def run_pair(agent: str, env: str, seeds: list[int], jobs: int, workdir: Path) -> dict:
    overrides, target = ENVS[env]
    args = [f"agent={agent}", *overrides]
    with ThreadPoolExecutor(jobs) as pool:
        summaries = list(pool.map(lambda s: run_or_reuse(s, args, workdir / f"{agent}_{env}"), seeds))
    rows = []
    for s in summaries:
        hit = first_at_target(s, target)
        final = s["evaluations"][-1]["return_mean"]
        rows.append({
            "seed": s["seed"], "final_return": final, "final_at_target": final >= target - 1e-9,
            "steps_to_target": hit["env_step"] if hit else None,
            "cpu_seconds_to_target": hit["train_cpu_seconds"] if hit else None,
            "train_cpu_seconds": s["train_cpu_seconds"], "env_steps": s["env_steps"],
        })
    reached = [r for r in rows if r["steps_to_target"] is not None]
    finals = [r["final_return"] for r in rows]
    return {
        "agent": agent, "env": env, "target": target, "command": "python -m classic_rl " + " ".join(args),
        "final_return_mean": statistics.fmean(finals),
        "final_return_std": statistics.pstdev(finals),
        "reached": len(reached), "final_at_target": sum(r["final_at_target"] for r in rows), "seeds": len(rows),
        # unreached seeds count as infinitely slow in the median
        "median_steps_to_target": median_reached([r["steps_to_target"] for r in rows]),
        "median_cpu_seconds_to_target": median_reached([r["cpu_seconds_to_target"] for r in rows]),
        "eval_episodes": max(s["eval_episodes"] for s in summaries),  # episodes in each evaluation
        "runs": rows,
    }


def per_timing(capacity: int = 1_000_000, batch: int = 256, repeats: int = 500) -> dict:
    """Wall time of one prioritized sample of `batch` plus its priority update, buffer full, CPU, 1 thread."""
    import torch

    from classic_rl.buffers import PrioritizedReplayBuffer

    torch.set_num_threads(1)
    buf = PrioritizedReplayBuffer(capacity, (4,), torch.float32, (), torch.int64, alpha=0.6)
    chunk = 50_000
    for _ in range(capacity // chunk):
        buf.add(torch.randn(chunk, 4), torch.zeros(chunk, dtype=torch.int64), torch.randn(chunk),
                torch.randn(chunk, 4), torch.zeros(chunk), torch.full((chunk,), 0.99))
    g = torch.Generator().manual_seed(0)
    buf.update_priorities(torch.arange(capacity), torch.rand(capacity))
    times = []
    for i in range(repeats + 50):
        t0 = time.perf_counter()
        b = buf.sample(batch, g)
        buf.update_priorities(b.indices, torch.rand(batch))
        if i >= 50:
            times.append(time.perf_counter() - t0)
    return {"capacity": capacity, "batch": batch, "median_ms": 1e3 * statistics.median(times),
            "p90_ms": 1e3 * sorted(times)[int(0.9 * len(times))]}


def table(results: list[dict], per: dict | None) -> str:
    lines = ["| agent | env | target | final return (mean ± std) | reached | stays | median steps | "
             "median CPU-s | eval episodes |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        steps, cpu = r["median_steps_to_target"], r["median_cpu_seconds_to_target"]
        lines.append(
            f"| {r['agent']} | {r['env']} | {r['target']:g} | {r['final_return_mean']:.2f} ± "
            f"{r['final_return_std']:.2f} | {r['reached']}/{r['seeds']} | {r['final_at_target']}/{r['seeds']} | "
            f"{'—' if steps is None else int(steps)} | {'—' if cpu is None else f'{cpu:.1f}'} | "
            f"{r.get('eval_episodes', '—')} |")  # — : a part run before the count was recorded
    if per:
        lines.append(f"\nPrioritized replay, capacity {per['capacity']:,}, batch {per['batch']}: sample + priority "
                     f"update {per['median_ms']:.3f} ms median, {per['p90_ms']:.3f} ms p90 (CPU, one thread).")
    return "\n".join(lines) + "\n"


def merge(parts: list[Path], out: Path) -> None:
    """Results of several part runs -> one table in SUITE order (a later part wins for a repeated pair)."""
    by_pair, per = {}, None
    for part in parts:
        data = json.loads(part.read_text())
        per = data.get("per_timing") or per
        for r in data["results"]:
            by_pair[(r["agent"], r["env"])] = r
    order = {pair: i for i, pair in enumerate(SUITE)}
    results = sorted(by_pair.values(), key=lambda r: order.get((r["agent"], r["env"]), len(order)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"per_timing": per, "results": results,
                                                    "parts": [str(p) for p in parts]}, indent=2))
    missing = [f"{a} on {e}" for a, e in SUITE if (a, e) not in by_pair]
    note = f"\nMerged from {', '.join(p.name for p in parts)}." + (
        f" Not run: {', '.join(missing)}.\n" if missing else "\n")
    out.with_suffix(".md").write_text(table(results, per) + note)
    print(table(results, per) + note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--only", nargs="*", default=[], help="keep pairs whose agent or env contains one of these")
    parser.add_argument("--pairs", nargs="*", default=[], help="exact agent:env pairs to run (instead of --only)")
    parser.add_argument("--merge", nargs="*", type=Path, default=None,
                        help="combine the results of earlier part runs (their .json) into --out; runs nothing")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (one CPU core each)")
    parser.add_argument("--per-timing", action="store_true", help="only time prioritized replay")
    parser.add_argument("--out", type=Path, default=RESULTS / "value_based")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep run directories here and reuse finished ones (default: a temporary directory)")
    args = parser.parse_args()
    if args.merge is not None:
        return merge(args.merge, args.out)
    per = per_timing() if args.per_timing or not (args.pairs or args.only) else None  # parts skip it
    if per:
        print(f"prioritized replay sample+update at 1M: {per['median_ms']:.3f} ms median", flush=True)
    results = []
    if not args.per_timing:
        if args.pairs:
            pairs = [tuple(p.split(":")) for p in args.pairs]
        else:
            pairs = [(a, e) for a, e in SUITE if not args.only or any(k in a or k in e for k in args.only)]
        with tempfile.TemporaryDirectory() as tmp:
            for agent, env in pairs:
                results.append(run_pair(agent, env, args.seeds, args.jobs, args.workdir or Path(tmp)))
                write(args.out, results, per)  # after every pair, so an interrupted suite keeps its results
                r = results[-1]
                print(f"{agent:>15} {env:<17} final {r['final_return_mean']:8.2f} ± {r['final_return_std']:.2f}  "
                      f"reached {r['reached']}/{r['seeds']}  median cpu-s {r['median_cpu_seconds_to_target']}",
                      flush=True)
    write(args.out, results, per)
    print(table(results, per))


def write(out: Path, results: list[dict], per: dict | None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"per_timing": per, "results": results}, indent=2))
    out.with_suffix(".md").write_text(table(results, per))


if __name__ == "__main__":
    main()
