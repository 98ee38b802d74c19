"""Run one configuration over several seeds and report time-to-threshold and final evaluation.

    python experiments/seeds.py --seeds 0 1 2 3 4 -- agent=dqn env=CartPole-v1

Each seed runs in its own process (clean CPU-time accounting, one torch thread), one after another.
Prints a table and writes experiments/results/seeds_<agent>_<env>.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def median_reached(values: list) -> float | None:
    """Median with None (not reached) as +inf; None when the median itself is not reached."""
    if not values:
        return None
    m = statistics.median([math.inf if v is None else v for v in values])
    return None if m == math.inf else m


def run_seed(seed: int, overrides: list[str], workdir: Path) -> dict:
    run_dir = workdir / f"seed{seed}"
    cmd = [sys.executable, "-m", "classic_rl", f"seed={seed}", f"hydra.run.dir={run_dir}",
           "logger.progress=false", *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed} failed:\n{proc.stderr[-2000:]}")
    return json.loads((run_dir / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, after --")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            s = run_seed(seed, args.overrides, Path(tmp))
            stays = s["solved_at_step"] is not None and all(
                e["return_mean"] >= s["reward_threshold"] for e in s["evaluations"] if e["env_step"] >= s["env_steps"]
            )
            rows.append({k: s[k] for k in ("seed", "env_steps", "train_cpu_seconds", "solved_at_step",
                                           "solved_at_cpu_seconds", "eval_return_mean")} | {"final_solved": stays})
            r = rows[-1]
            print(f"seed {seed}: solved at step {r['solved_at_step']} / {r['solved_at_cpu_seconds']} cpu-s; "
                  f"final eval {r['eval_return_mean']:.1f}; train cpu-s {r['train_cpu_seconds']:.1f}", flush=True)
    solved = [r["solved_at_cpu_seconds"] for r in rows if r["solved_at_cpu_seconds"] is not None]
    n_unsolved = len(rows) - len(solved)
    median = statistics.median(solved + [float("inf")] * n_unsolved) if rows else None
    summary = {
        "overrides": args.overrides,
        "seeds": args.seeds,
        "median_solved_at_cpu_seconds": median,
        "solved_runs": len(solved),
        "final_solved_runs": sum(r["final_solved"] for r in rows),
        "runs": rows,
    }
    print(f"median cpu-seconds to threshold: {median}; solved {len(solved)}/{len(rows)}; "
          f"still solved at the end {summary['final_solved_runs']}/{len(rows)}")
    out = args.out or RESULTS / f"seeds_{'_'.join(o.replace('=', '-') for o in args.overrides) or 'default'}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
