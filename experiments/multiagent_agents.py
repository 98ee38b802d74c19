"""MAPPO, IPPO, QMIX and VDN on simple_spread: learning curves, final team returns in two units.

    python experiments/multiagent_agents.py --seeds 0 1 2 --workdir runs/multiagent

Each agent trains with its tuned config (conf/tuned/AGENT_simple_spread.yaml: budget, envs, schedule)
from `python -m classic_rl agent=AGENT env=simple_spread seed=S`, evaluated on 200 episodes of the
deterministic policy (each agent acting on its own observation). Returns are given two ways:

  team return    the env's rewards summed over agents and steps (classic_rl's episode return)
  paper unit     the MAPPO paper's "average episode reward" (Yu et al. 2022): 2 * team - 75 at
                 local_ratio 0.5 (`paper_episode_reward` in classic_rl/envs/multiagent/simple_spread.py)

beside the reference policies of experiments/multiagent_reference.py (random, hand-coded assignment)
and the env's `reward_threshold` (the paper's -120, converted). Writes
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

from classic_rl.envs.multiagent.simple_spread import paper_episode_reward  # noqa: E402
from classic_rl.files import atomic_write_text  # noqa: E402

RESULTS = ROOT / "experiments" / "results"


def run(agent: str, seed: int, workdir: Path, reuse: bool, extra: list[str]) -> dict[str, Any]:
    """One training run (or, with `reuse`, its finished summary); the summary of summary.json."""
    run_dir = workdir / agent / f"seed{seed}"
    if not (reuse and (run_dir / "summary.json").is_file()):
        from classic_rl import train

        train(f"agent={agent}", "env=simple_spread", f"seed={seed}", "logger.progress=false", *extra, run_dir=run_dir)
    return json.loads((run_dir / "summary.json").read_text())


def report(agent: str, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    finals = [s["eval_return_mean"] for s in summaries]
    solved = [s["solved_at_step"] for s in summaries if s["solved_at_step"] is not None]
    mean = statistics.fmean(finals)
    return {
        "agent": agent, "seeds": len(summaries), "env_steps": summaries[0]["env_steps"],
        "team_return": round(mean, 2),
        "team_return_seed_std": round(statistics.pstdev(finals), 2),
        "team_return_by_seed": [round(f, 2) for f in finals],
        "best_eval_by_seed": [round(max(e["return_mean"] for e in s["evaluations"]), 2) for s in summaries],
        "paper_unit": round(paper_episode_reward(mean), 1),
        "solved_seeds": len(solved),
        "train_seconds": round(statistics.fmean(s["train_seconds"] for s in summaries), 1),
        "env_steps_per_second": round(statistics.fmean(s["env_steps"] / s["train_seconds"] for s in summaries)),
        "curves": [[(e["env_step"], round(e["return_mean"], 2)) for e in s["evaluations"]] for s in summaries],
    }


def plot(records: list[dict[str, Any]], references: list[dict[str, Any]], threshold: float, path: Path) -> None:
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for r in records:
        steps = np.array([s for s, _ in r["curves"][0]])
        values = np.array([[v for _, v in curve] for curve in r["curves"] if len(curve) == len(steps)])
        ax.plot(steps, values.mean(0), label=f"{r['agent']} ({values.shape[0]} seeds)")
        if values.shape[0] > 1:
            ax.fill_between(steps, values.min(0), values.max(0), alpha=0.2)
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
    parser.add_argument("--threads", type=int, default=1, help="train.torch_threads of every run")
    parser.add_argument("--out", type=Path, default=RESULTS / "multiagent_agents")
    parser.add_argument("--note", default="", help="a sentence for the results page (how the runs shared the machine)")
    parser.add_argument("--title", default="simple_spread: MAPPO, IPPO, QMIX, VDN", help="the results page's title")
    parser.add_argument("overrides", nargs="*", help="more overrides for every run (after --)")
    args = parser.parse_args()
    extra = [f"train.torch_threads={args.threads}", *args.overrides]
    records = []
    for agent in args.agents:
        summaries = [run(agent, seed, args.workdir, args.reuse, extra) for seed in args.seeds]
        records.append(report(agent, summaries))
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
             "| policy | env steps | team return | ± over seeds | paper unit | best eval per seed | seeds at threshold "
             "| train s | env steps/s |", "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    lines += [f"| {r['agent']} | {r['env_steps']:,} | {r['team_return']} | {r['team_return_seed_std']} | "
              f"{r['paper_unit']} | {', '.join(map(str, r['best_eval_by_seed']))} | {r['solved_seeds']}/{r['seeds']} | "
              f"{r['train_seconds']} | {r['env_steps_per_second']:,} |" for r in records]
    lines += [f"| {r['policy']} (reference) | | {r['team_return']} | | {round(paper_episode_reward(r['team_return']), 1)} "
              "| | | | |" for r in references]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
