"""MAPPO, IPPO, QMIX and VDN on simple_spread: learning curves, final team returns in two units.

    python experiments/multiagent_agents.py --seeds 0 1 2 --workdir runs/multiagent
    python experiments/multiagent_agents.py --agents mappo --seeds 0 1 2 3 4 --confirm-episodes 2000 \
        --out experiments/results/multiagent_20m -- eval.early_stop=true    # stop at the paper's level

Each agent trains with its tuned config (conf/tuned/AGENT_simple_spread.yaml: budget, envs, schedule)
from `python -m classic_rl agent=AGENT env=simple_spread seed=S`, evaluated on 200 episodes of the
deterministic policy (each agent acting on its own observation). Returns are given two ways:

  team return    the env's rewards summed over agents and steps (classic_rl's episode return)
  paper unit     the MAPPO paper's "average episode reward" (Yu et al. 2022): 2 * team - 75 at
                 local_ratio 0.5 (`paper_episode_reward` in classic_rl/envs/multiagent/simple_spread.py)

beside the reference policies of experiments/multiagent_reference.py (random, hand-coded assignment)
and the env's `reward_threshold` (the paper's -120, converted): seeds at it, env steps and seconds to it,
the final return's IQM with a 95% bootstrap CI (experiments/benchmark.py's rliable helper), and with
--confirm-episodes each final policy on that many fresh episodes. Writes
experiments/results/multiagent_agents.{json,md,png}; --reuse reads finished runs in --workdir.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))  # benchmark.py's statistics

from classic_rl.envs.multiagent.simple_spread import paper_episode_reward  # noqa: E402
from classic_rl.files import atomic_write_text  # noqa: E402

RESULTS = ROOT / "experiments" / "results"
CONFIRM_SEED = 12345


def run(agent: str, seed: int, workdir: Path, reuse: bool, extra: list[str]) -> dict[str, Any]:
    """One training run (or, with `reuse`, its finished summary); the summary of summary.json."""
    run_dir = workdir / agent / f"seed{seed}"
    if not (reuse and (run_dir / "summary.json").is_file()):
        from classic_rl import train

        train(f"agent={agent}", "env=simple_spread", f"seed={seed}", "logger.progress=false", *extra, run_dir=run_dir)
    return json.loads((run_dir / "summary.json").read_text())


def confirm(agent: str, seed: int, workdir: Path, episodes: int) -> float:
    """The final policy's team return on `episodes` fresh evaluation episodes (another seed than the
    training run's evaluations): the level without the selection of an early stop."""
    from classic_rl import load

    return load(workdir / agent / f"seed{seed}").evaluate(episodes=episodes, seed=CONFIRM_SEED)["return_mean"]


def report(agent: str, summaries: list[dict[str, Any]], reps: int, confirmed: list[float] | None = None
           ) -> dict[str, Any]:
    """One agent's seeds: final team return (mean, IQM with a 95% stratified-bootstrap CI through
    experiments/benchmark.py's rliable helper), seeds at the threshold, env steps and seconds to reach it."""
    import numpy as np

    from benchmark import iqm_interval

    finals = [s["eval_return_mean"] for s in summaries]
    solved = [s for s in summaries if s["solved_at_step"] is not None]
    mean = statistics.fmean(finals)
    point, interval = iqm_interval(np.array(finals)[:, None], reps)
    return {
        "agent": agent, "seeds": len(summaries), "env_steps_by_seed": [s["env_steps"] for s in summaries],
        "team_return": round(mean, 2),
        "team_return_seed_std": round(statistics.pstdev(finals), 2),
        "team_return_iqm": round(float(point[0]), 2),
        "team_return_iqm_ci": [round(float(interval[0, 0]), 2), round(float(interval[1, 0]), 2)],
        "team_return_by_seed": [round(f, 2) for f in finals],
        "best_eval_by_seed": [round(max(e["return_mean"] for e in s["evaluations"]), 2) for s in summaries],
        "paper_unit": round(paper_episode_reward(mean), 1),
        "solved_seeds": len(solved),
        "solved_at_step_by_seed": [s["solved_at_step"] for s in summaries],
        "solved_at_seconds_by_seed": [s["solved_at_seconds"] for s in summaries],
        "train_seconds": round(statistics.fmean(s["train_seconds"] for s in summaries), 1),
        "env_steps_per_second": round(statistics.fmean(s["env_steps"] / s["train_seconds"] for s in summaries)),
        "curves": [[(e["env_step"], round(e["return_mean"], 2)) for e in s["evaluations"]] for s in summaries],
        **({"confirmed_by_seed": [round(c, 2) for c in confirmed],
            "confirmed_mean": round(statistics.fmean(confirmed), 2)} if confirmed else {}),
    }


def plot(records: list[dict[str, Any]], references: list[dict[str, Any]], threshold: float, path: Path) -> None:
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for color, r in zip(("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"), records):
        for i, curve in enumerate(r["curves"]):  # one line per seed (early-stopped seeds end early)
            steps, values = np.array(curve).T
            ax.plot(steps, values, color=color, linewidth=1, alpha=0.7,
                    label=f"{r['agent']} ({len(r['curves'])} seeds)" if i == 0 else None)
    for ref, style in zip(references, (":", "--")):
        ax.axhline(ref["team_return"], color="grey", linestyle=style, label=f"{ref['policy']} policy")
    ax.axhline(threshold, color="black", linewidth=0.8, label="MAPPO paper level (-120 → team -22.5)")
    ax.set_xlabel("env steps")
    ax.set_ylabel("team return (200 evaluation episodes)")
    ax.set_title("simple_spread, 3 agents")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", nargs="+", default=["mappo", "ippo", "qmix", "vdn"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--workdir", type=Path, default=Path("runs/multiagent"))
    parser.add_argument("--reuse", action="store_true", help="report runs already finished in --workdir")
    parser.add_argument("--finished-only", action="store_true",
                        help="with --reuse: report the seeds finished in --workdir, run no others")
    parser.add_argument("--threads", type=int, default=1, help="train.torch_threads of every run")
    parser.add_argument("--confirm-episodes", type=int, default=0,
                        help="also evaluate each final policy on this many fresh episodes (0: no)")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples of the IQM's CI")
    parser.add_argument("--out", type=Path, default=RESULTS / "multiagent_agents")
    parser.add_argument("--note", default="", help="a sentence for the results page (how the runs shared the machine)")
    parser.add_argument("--title", default="simple_spread: MAPPO, IPPO, QMIX, VDN", help="the results page's title")
    parser.add_argument("overrides", nargs="*", help="more overrides for every run (after --)")
    args = parser.parse_args()
    extra = [f"train.torch_threads={args.threads}", *args.overrides]
    records = []
    for agent in args.agents:
        seeds = [seed for seed in args.seeds if not (args.reuse and args.finished_only)
                 or (args.workdir / agent / f"seed{seed}" / "summary.json").is_file()]
        summaries = [run(agent, seed, args.workdir, args.reuse, extra) for seed in seeds]
        confirmed = [confirm(agent, seed, args.workdir, args.confirm_episodes) for seed in seeds] \
            if args.confirm_episodes else None
        records.append(report(agent, summaries, args.reps, confirmed))
        print(json.dumps({k: v for k, v in records[-1].items() if k != "curves"}))
    references = json.loads((RESULTS / "multiagent_reference.json").read_text())["records"]
    threshold = -22.5
    meta = {"command": "python " + shlex.join(sys.argv), "machine": platform.machine(), "torch": torch.__version__,
            "threads": args.threads, "reward_threshold": threshold, "note": args.note}
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"meta": meta, "records": records,
                                                                 "references": references}, indent=1))
    plot(records, references, threshold, args.out.with_suffix(".png"))
    lines = [f"# {args.title}", "",
             f"`{meta['command']}` ({meta['machine']} CPU, {args.threads} torch thread per run, tuned configs "
             "conf/tuned/AGENT_simple_spread.yaml). Team return: the env's rewards summed over 3 agents and 25 "
             "steps, mean of 200 deterministic evaluation episodes at the end of training, averaged over seeds. "
             "Paper unit: the MAPPO paper's average episode reward, 2 × team − 75. Threshold: the paper's −120 "
             f"for MAPPO, team −22.5. {args.note}".rstrip(), "",
             "| policy | env steps | team return | ± over seeds | IQM [95% CI] | paper unit | final eval per seed "
             "| seeds at threshold | env steps to threshold | seconds to threshold | train s | env steps/s |",
             "|---|---:|---:|---:|---|---:|---|---:|---|---|---:|---:|"]
    lines += [f"| {r['agent']} | {max(r['env_steps_by_seed']):,} | {r['team_return']} | {r['team_return_seed_std']} | "
              f"{r['team_return_iqm']} [{r['team_return_iqm_ci'][0]}, {r['team_return_iqm_ci'][1]}] | "
              f"{r['paper_unit']} | {', '.join(map(str, r['team_return_by_seed']))} | {r['solved_seeds']}/{r['seeds']} | "
              f"{', '.join('—' if v is None else f'{v:,}' for v in r['solved_at_step_by_seed'])} | "
              f"{', '.join('—' if v is None else f'{v:.0f}' for v in r['solved_at_seconds_by_seed'])} | "
              f"{r['train_seconds']} | {r['env_steps_per_second']:,} |" for r in records]
    lines += [f"| {r['policy']} (reference) | | {r['team_return']} | | | {round(paper_episode_reward(r['team_return']), 1)} "
              "| | | | | | |" for r in references]
    for r in records:
        if "confirmed_by_seed" in r:
            lines += ["", f"{r['agent']}: the final policies on {args.confirm_episodes} fresh episodes (evaluation seed "
                      f"{CONFIRM_SEED}): team return {r['confirmed_mean']} (paper unit "
                      f"{round(paper_episode_reward(r['confirmed_mean']), 1)}); per seed "
                      f"{', '.join(map(str, r['confirmed_by_seed']))}."]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
