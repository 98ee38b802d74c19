"""Run a benchmark suite (conf/suite/NAME.yaml) and aggregate it: tables with IQM and 95% CIs, plots, JSON.

    python experiments/benchmark.py                                  # suite classic, joblib launcher, 2 processes
    python experiments/benchmark.py classic --jobs 2 --seeds 0 1 2   # fewer seeds
    python experiments/benchmark.py classic --envs CartPole-v1 --agents ppo a2c
    python experiments/benchmark.py classic --launcher ray --ray-address auto   # an existing Ray cluster
    python experiments/benchmark.py classic --aggregate-only         # rebuild tables and plots from finished runs

Needs the extra: pip install -e ".[bench]" (and ".[ray]" for --launcher ray).

The whole suite (every cell x seed; a cell is an agent on an env, the groups' agents x envs) is one Hydra
multirun of `python -m classic_rl`, most expensive cells first (by the run times in the last results
JSON) so the processes end together. Each cell is a generated config, RUNS/_conf/cell/AGENT_ENV.yaml (Hydra's
experiment pattern: `+cell=...` picks the agent and env, their tuned config applies, then the suite's
`cell_overrides` for that cell, e.g. a smaller budget). The multirun goes through
Hydra's joblib launcher (`hydra/launcher=joblib`, --jobs processes on this machine) or its Ray launcher
(`hydra/launcher=ray`, --ray-address: `local` starts a Ray instance on this machine, `auto` or
`ray://host:10001` joins a cluster). Every run writes to RUNS/<agent>_<env>/seed<S>/ with
`skip_finished=true` (the multirun's output is appended to RUNS/benchmark.log), so re-running a suite
only runs what is missing and continues runs that a signal stopped; a run that fails or diverges leaves
error.txt there and is listed in the table and on stderr, and the command exits 1 (move such a run
directory away to run it again: a run is never overwritten). Each invocation writes its cell configs to
a directory of its own under RUNS/_conf/, removed when it ends, and a seed given twice runs once.

Aggregation (per env, one row per agent, from each run's summary.json and episodes.csv): the final
evaluation return's IQM over seeds with a 95% stratified-bootstrap confidence interval (rliable), how
many seeds reached the suite's threshold and how many end at or above it, the median env steps and
training CPU-seconds (evaluation excluded) to the first evaluation at or above it (unreached seeds
count as infinitely slow), and the mean training return of each run's last 10 episodes (episodes.csv).
Learning curves: evaluation return against env steps, IQM over seeds with a 95% bootstrap band, one
PNG per env (seeds evaluated at different env steps are interpolated onto a common grid). Writes OUT/<suite>.md, OUT/<suite>.json and OUT/<suite>_<env>.png (OUT defaults to
experiments/results/).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import median_reached  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
SUITES = ROOT / "conf" / "suite"
MISSING_EXTRA = 'benchmark: error: {what} is not installed; install the extra: pip install -e ".[{extra}]"'


# ---------------------------------------------------------------------------------------- the suite
def load_suite(name_or_path: str) -> dict:
    """conf/suite/NAME.yaml (or a path to a suite file), checked: one-line errors."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SUITES / f"{name_or_path}.yaml"
    if not path.is_file():
        options = ", ".join(sorted(p.stem for p in SUITES.glob("*.yaml")))
        raise SystemExit(f"benchmark: error: no suite {name_or_path!r} ({path} does not exist); available: {options}")
    suite = yaml.safe_load(path.read_text()) or {}
    for key in ("name", "seeds", "groups", "thresholds"):
        if key not in suite:
            raise SystemExit(f"benchmark: error: suite file {path} lacks the key '{key}'; see conf/suite/classic.yaml")
    for group in suite["groups"]:
        for env in group["envs"]:
            if env not in suite["thresholds"]:
                raise SystemExit(f"benchmark: error: suite {suite['name']}: env {env} has no entry under 'thresholds'")
    suite.setdefault("overrides", [])
    suite["cell_overrides"] = suite.get("cell_overrides") or {}
    names = {cell_name(a, e) for a, e in cells(suite)}
    for name, extra in suite["cell_overrides"].items():
        if name not in names:
            raise SystemExit(f"benchmark: error: suite {suite['name']}: cell_overrides has {name!r}, not a cell of "
                             "the suite (keys are AGENT_ENV, e.g. ppo_CartPole-v1)")
        if not isinstance(extra, list) or not all(isinstance(o, str) and "=" in o for o in extra):
            raise SystemExit(f"benchmark: error: suite {suite['name']}: cell_overrides.{name} must be a list of "
                             "KEY=VALUE overrides, e.g. [train.total_steps=40000]")
    return suite


def cells(suite: dict) -> list[tuple[str, str]]:
    """(agent, env) pairs of the suite, in group order."""
    return [(a, e) for g in suite["groups"] for e in g["envs"] for a in g["agents"]]


def cell_name(agent: str, env: str) -> str:
    return f"{agent}_{env}"


def run_dir(runs: Path, agent: str, env: str, seed: int) -> Path:
    return runs / cell_name(agent, env) / f"seed{seed}"


def is_plain(override: str) -> bool:
    """KEY.PATH=VALUE, not a config-group choice (a/b=c), an addition (+k=v) or a deletion (~k)."""
    return re.fullmatch(r"[A-Za-z_][\w.]*=.*", override) is not None and "/" not in override.split("=", 1)[0]


def write_cell_configs(suite: dict, pairs: list[tuple[str, str]], root: Path) -> None:
    """One Hydra config per cell in ROOT/cell/AGENT_ENV.yaml (Hydra's experiment pattern: it overrides the
    agent and env choices, so the tuned config of the pair still applies), holding the suite's plain
    overrides and then the cell's own `cell_overrides`, which win."""
    from omegaconf import OmegaConf

    folder = root / "cell"
    folder.mkdir(parents=True, exist_ok=True)
    shared = [o for o in suite["overrides"] if is_plain(o)]
    for agent, env in pairs:
        values = OmegaConf.merge(OmegaConf.from_dotlist(shared),
                                 OmegaConf.from_dotlist(list(suite["cell_overrides"].get(cell_name(agent, env), []))))
        body = OmegaConf.to_yaml(values) if values else ""
        (folder / f"{cell_name(agent, env)}.yaml").write_text(
            f"# @package _global_\n# written by experiments/benchmark.py for suite {suite['name']}\n"
            f"defaults:\n  - override /agent: {agent}\n  - override /env: {env}\n{body}")


def by_cost(pairs: list[tuple[str, str]], previous: Path) -> list[tuple[str, str]]:
    """Most expensive cells first (the mean run wall-seconds of the suite's last results, `previous`; cells
    it lacks count as most expensive), so that the parallel processes finish close together."""
    cost = {}
    if previous.is_file():
        for row in json.loads(previous.read_text()).get("rows", []):
            walls = [r["wall_seconds"] for r in row.get("runs", [])]
            if walls:
                cost[row["agent"], row["env"]] = statistics.fmean(walls)
    return sorted(pairs, key=lambda pair: -cost.get(pair, math.inf))  # stable: suite order among equals


def multirun_command(pairs: list[tuple[str, str]], seeds: list[int], runs: Path, searchpath: Path,
                     overrides: list[str], launcher: str, jobs: int, ray_address: str | None) -> list[str]:
    """One Hydra multirun of `python -m classic_rl` over every cell (in `pairs` order) x seeds."""
    cmd = [sys.executable, "-m", "classic_rl", "--multirun", f"hydra.searchpath=[file://{searchpath}]",
           f"+cell={','.join(cell_name(a, e) for a, e in pairs)}", f"seed={','.join(map(str, seeds))}",
           "skip_finished=true", "logger.progress=false", f"hydra.sweep.dir={runs}",
           "hydra.sweep.subdir='${hydra:runtime.choices.agent}_${env_name:${env.id},${oc.select:env.entry_point,null}}/seed${seed}'"]
    if launcher == "joblib":
        cmd += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]
    elif launcher == "ray":
        cmd += ["hydra/launcher=ray", f"+hydra.launcher.ray.init.address={ray_address}"]
        if ray_address == "local":
            cmd += [f"+hydra.launcher.ray.init.num_cpus={jobs}"]
    return cmd + list(overrides)


def check_launcher(launcher: str) -> None:
    import importlib.util

    module, extra = {"joblib": ("hydra_plugins.hydra_joblib_launcher", "bench"),
                     "ray": ("hydra_plugins.hydra_ray_launcher", "ray")}.get(launcher, (None, None))
    if module and importlib.util.find_spec(module) is None:
        raise SystemExit(MISSING_EXTRA.format(what=f"Hydra's {launcher} launcher", extra=extra))


def run_suite(suite: dict, runs: Path, seeds: list[int], launcher: str, jobs: int, ray_address: str | None,
              pairs: list[tuple[str, str]], previous: Path) -> float:
    """Launch every cell x seed as one multirun, most expensive cells first; returns the wall seconds."""
    check_launcher(launcher)
    start = time.perf_counter()
    (runs / "_conf").mkdir(parents=True, exist_ok=True)
    # this invocation's own cell configs: another invocation on the same runs never sees them change
    searchpath = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=runs / "_conf"))
    write_cell_configs(suite, pairs, searchpath)
    rest = [o for o in suite["overrides"] if not is_plain(o)]  # the plain ones are in the cell configs
    cmd = multirun_command(by_cost(pairs, previous), seeds, runs, searchpath, rest, launcher, jobs, ray_address)
    print("+ " + " ".join(f"'{c}'" if "$" in c or "[" in c else c for c in cmd[1:]), flush=True)
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    finally:
        shutil.rmtree(searchpath, ignore_errors=True)
    with (runs / "benchmark.log").open("a") as f:  # every multirun's output, appended
        f.write(f"+ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}\nexit {proc.returncode}\n")
    if proc.returncode != 0:  # failed jobs are reported from their run dirs below
        last = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:]
        print(f"  multirun exited {proc.returncode}: {last[0] if last else ''}", file=sys.stderr, flush=True)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------- aggregation
def iqm(scores: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (rliable's aggregate_iqm, per column with axis=0)."""
    from scipy.stats import trim_mean

    return trim_mean(scores, proportiontocut=0.25, axis=axis)


def iqm_interval(scores: np.ndarray, reps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scores [runs, points] -> (IQM per point [points], 95% CI [2, points]) by rliable's stratified bootstrap."""
    try:
        from rliable import library as rly
    except ImportError:
        raise SystemExit(MISSING_EXTRA.format(what="rliable", extra="bench")) from None
    np.random.seed(seed)  # rliable's bootstrap draws from numpy's global generator
    point, interval = rly.get_interval_estimates({"x": scores}, lambda x: iqm(x, axis=0), reps=reps)
    return point["x"], interval["x"]


def run_stats(summary: dict, threshold: float, episodes: list[float]) -> dict:
    """One finished run -> first evaluation at/above `threshold`, final evaluation, last training returns."""
    evals = summary["evaluations"]
    hit = next((e for e in evals if e["return_mean"] >= threshold - 1e-9), None)
    final = summary["eval_return_mean"]
    return {
        "seed": summary["seed"],
        "final_return": final,
        "stays_solved": final >= threshold - 1e-9,
        "steps_to_threshold": hit["env_step"] if hit else None,
        "cpu_seconds_to_threshold": hit["train_cpu_seconds"] if hit else None,
        "env_steps": summary["env_steps"],
        "train_cpu_seconds": summary["train_cpu_seconds"],
        "wall_seconds": summary["wall_seconds"],
        "train_return_last10": statistics.fmean(episodes[-10:]) if episodes else None,
        "episodes": len(episodes),
    }


def read_episode_returns(path: Path) -> list[float]:
    if not path.is_file():
        return []
    with path.open() as f:
        return [float(row["return"]) for row in csv.DictReader(f)]


def collect(runs: Path, agent: str, env: str, seeds: list[int]) -> tuple[list[dict], dict[int, str]]:
    """Finished summaries of a cell, and {seed: reason} for runs that failed or are missing."""
    summaries, problems = [], {}
    for seed in seeds:
        d = run_dir(runs, agent, env, seed)
        summary_path = d / "summary.json"
        if summary_path.is_file():
            summary = json.loads(summary_path.read_text())
            if summary.get("diverged"):
                problems[seed] = "diverged: {what} not finite at env step {step}".format(**summary["diverged"])
                continue
            if not summary.get("interrupted"):
                summary["_episodes"] = read_episode_returns(d / "episodes.csv")
                summaries.append(summary)
                continue
            problems[seed] = "interrupted"
        elif (d / "error.txt").is_file():
            lines = [ln for ln in (d / "error.txt").read_text().strip().splitlines() if ln.strip()]
            problems[seed] = "failed: " + (lines[-1] if lines else "?")
        else:
            problems[seed] = "missing"
    return summaries, problems


def curve(summaries: list[dict], reps: int, points: int = 50) -> dict | None:
    """Evaluation curves of the seeds -> IQM and 95% band per point. Seeds evaluated at the same env steps
    share that grid; otherwise (lock-step envs end rounds at different steps) each curve is interpolated
    linearly onto `points` steps over the range every seed covers."""
    grids = [[e["env_step"] for e in s["evaluations"]] for s in summaries]
    if not grids or not all(grids):
        return None
    values = [[e["return_mean"] for e in s["evaluations"]] for s in summaries]
    if all(g == grids[0] for g in grids):
        steps, scores = grids[0], np.array(values)
    else:
        lo, hi = max(g[0] for g in grids), min(g[-1] for g in grids)
        if lo >= hi:
            return None
        steps = np.linspace(lo, hi, points).round().tolist()
        scores = np.array([np.interp(steps, g, v) for g, v in zip(grids, values)])
    point, band = iqm_interval(scores, reps)
    return {"env_step": steps, "iqm": point.tolist(), "low": band[0].tolist(), "high": band[1].tolist()}


def aggregate_cell(agent: str, env: str, threshold: float, summaries: list[dict], problems: dict[int, str],
                   reps: int) -> dict:
    runs = sorted((run_stats(s, threshold, s["_episodes"]) for s in summaries), key=lambda r: r["seed"])
    finals = np.array([r["final_return"] for r in runs], dtype=float)
    row = {"agent": agent, "env": env, "threshold": threshold, "seeds": len(runs) + len(problems),
           "finished": len(runs), "problems": {str(k): v for k, v in problems.items()}, "runs": runs}
    if not runs:
        return row | {"final_iqm": None, "final_ci": None, "reached": 0, "stays": 0,
                      "median_steps_to_threshold": None, "median_cpu_seconds_to_threshold": None, "curve": None}
    point, interval = iqm_interval(finals[:, None], reps)
    unfinished = [None] * len(problems)  # failed or missing runs count as not reaching the threshold
    return row | {
        "final_iqm": float(point[0]),
        "final_ci": [float(interval[0][0]), float(interval[1][0])],
        "reached": sum(r["steps_to_threshold"] is not None for r in runs),
        "stays": sum(r["stays_solved"] for r in runs),
        "median_steps_to_threshold": median_reached([r["steps_to_threshold"] for r in runs] + unfinished),
        "median_cpu_seconds_to_threshold": median_reached([r["cpu_seconds_to_threshold"] for r in runs] + unfinished),
        "train_cpu_seconds": sum(r["train_cpu_seconds"] for r in runs),
        "wall_seconds": sum(r["wall_seconds"] for r in runs),
        "curve": curve(summaries, reps),
    }


def _fmt(v: float | None, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def _return_spec(threshold: float) -> str:
    return ".2f" if abs(threshold) < 20 else ".1f"


def markdown(suite: dict, rows: list[dict], meta: dict) -> str:
    lines = [f"# Suite `{suite['name']}`", "",
             f"`python experiments/benchmark.py {suite['name']}` (experiments/benchmark.py's docstring says how each "
             "figure is computed). Final return: IQM over seeds of the last evaluation, [95% bootstrap CI] "
             "(rliable); reached / stays: seeds whose evaluation reached the threshold at some point / whose final "
             "evaluation is at or above it; steps and CPU-s: median to the first evaluation at or above the "
             "threshold (training CPU-seconds of the process, evaluation excluded; unreached seeds count as "
             "infinitely slow); train return: mean over seeds of each run's last 10 training episodes.", ""]
    lines.append(f"{meta['cells']} cells, {meta['runs_finished']}/{meta['runs_expected']} runs finished; "
                 f"{meta['cells_meeting']}/{meta['cells']} cells reach the threshold and end there in at least "
                 f"{meta['min_seeds']} of {len(meta['seeds'])} seeds. Training CPU-seconds summed over runs: "
                 f"{meta['train_cpu_seconds']:.0f}; run wall-seconds summed: {meta['run_wall_seconds']:.0f}"
                 + (f"; suite wall time {meta['suite_wall_seconds'] / 60:.1f} min with {meta['launcher']} "
                    f"({meta['jobs']} processes)" if meta.get("suite_wall_seconds") else "") + ".")
    for env in dict.fromkeys(r["env"] for r in rows):
        env_rows = [r for r in rows if r["env"] == env]
        spec = _return_spec(env_rows[0]["threshold"])
        lines += ["", f"## {env} (threshold {env_rows[0]['threshold']:g})", "",
                  "| agent | final return IQM [95% CI] | reached | stays | median steps | median CPU-s | train return | run CPU-s |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in env_rows:
            n = r["seeds"]
            ci = r["final_ci"]
            final = "—" if r["final_iqm"] is None else f"{r['final_iqm']:{spec}} [{ci[0]:{spec}}, {ci[1]:{spec}}]"
            train = [x["train_return_last10"] for x in r["runs"] if x["train_return_last10"] is not None]
            lines.append(
                f"| {r['agent']} | {final} | {r['reached']}/{n} | {r['stays']}/{n} | "
                f"{_fmt(r['median_steps_to_threshold'], '.0f')} | {_fmt(r['median_cpu_seconds_to_threshold'], '.2f')} | "
                f"{_fmt(statistics.fmean(train) if train else None, spec)} | "
                f"{_fmt(r.get('train_cpu_seconds') and r['train_cpu_seconds'] / max(r['finished'], 1), '.1f')} |")
        lines.append("")
        lines.append(f"![{env}]({suite['name']}_{env}.png)")
    problems = [(r["agent"], r["env"], seed, why) for r in rows for seed, why in r["problems"].items()]
    if problems:
        lines += ["", "## Runs that did not finish", ""]
        lines += [f"- {a} {e} seed {s}: {why}" for a, e, s, why in problems]
    return "\n".join(lines) + "\n"


def plot_env(env: str, rows: list[dict], path: Path, per_panel: int = 6) -> None:
    """Learning curves of one env: IQM over seeds with its 95% bootstrap band, one line per agent
    (side-by-side panels of at most `per_panel` agents, in suite order)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [rows[i:i + per_panel] for i in range(0, len(rows), per_panel)]
    fig = Figure(figsize=(6.5 * len(panels), 4.2), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        for r in panel:
            c = r["curve"]
            if c is None:
                continue
            line, = ax.plot(c["env_step"], c["iqm"], label=f"{r['agent']} ({r['finished']} seeds)", lw=1.5)
            ax.fill_between(c["env_step"], c["low"], c["high"], color=line.get_color(), alpha=0.2, lw=0)
        ax.axhline(rows[0]["threshold"], color="black", ls="--", lw=0.8, label="threshold")
        ax.set(xlabel="env steps", ylabel="evaluation return (IQM, 95% CI)", title=env)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)


def aggregate(suite: dict, runs: Path, seeds: list[int], out: Path, reps: int, only_agents: set[str] | None,
              only_envs: set[str] | None, suite_wall: float | None, launcher: str, jobs: int) -> dict:
    rows = []
    for agent, env in cells(suite):
        if (only_agents and agent not in only_agents) or (only_envs and env not in only_envs):
            continue
        summaries, problems = collect(runs, agent, env, seeds)
        rows.append(aggregate_cell(agent, env, float(suite["thresholds"][env]), summaries, problems, reps))
    min_seeds = math.ceil(0.8 * len(seeds))
    meta = {
        "suite": suite["name"], "seeds": seeds, "cells": len(rows), "min_seeds": min_seeds,
        "cells_meeting": sum(r["reached"] >= min_seeds and r["stays"] >= min_seeds for r in rows),
        "runs_expected": sum(r["seeds"] for r in rows), "runs_finished": sum(r["finished"] for r in rows),
        "train_cpu_seconds": sum(r.get("train_cpu_seconds", 0.0) for r in rows),
        "run_wall_seconds": sum(r.get("wall_seconds", 0.0) for r in rows),
        "suite_wall_seconds": suite_wall, "launcher": launcher, "jobs": jobs, "bootstrap_reps": reps,
    }
    out.mkdir(parents=True, exist_ok=True)
    name = suite["name"]
    (out / f"{name}.md").write_text(markdown(suite, rows, meta))
    (out / f"{name}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    for env in dict.fromkeys(r["env"] for r in rows):
        plot_env(env, [r for r in rows if r["env"] == env], out / f"{name}_{env}.png")
    return {"meta": meta, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", nargs="?", default="classic", help="conf/suite/NAME.yaml, or a path to a suite file")
    parser.add_argument("--launcher", choices=["joblib", "ray", "basic"], default="joblib")
    parser.add_argument("--jobs", type=int, default=2, help="parallel runs (joblib processes; Ray CPUs with --ray-address local)")
    parser.add_argument("--ray-address", default="local", help="local (start Ray here), auto, or ray://HOST:PORT")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the suite's seeds")
    parser.add_argument("--agents", nargs="+", default=None, help="only these agents")
    parser.add_argument("--envs", nargs="+", default=None, help="only these envs")
    parser.add_argument("--runs", type=Path, default=None, help="run directories (default runs/suite_<name>)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the table, JSON and plots go")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples for the CIs")
    parser.add_argument("--aggregate-only", action="store_true", help="no runs; rebuild from finished runs")
    args = parser.parse_args(argv)
    suite = load_suite(args.suite)
    seeds = list(dict.fromkeys(args.seeds or suite["seeds"]))  # a seed given twice runs once
    runs = (args.runs or ROOT / "runs" / f"suite_{suite['name']}").resolve()
    only_agents = set(args.agents) if args.agents else None
    only_envs = set(args.envs) if args.envs else None
    known = {x for cell in cells(suite) for x in cell}
    unknown = sorted(((only_agents or set()) | (only_envs or set())) - known)
    if unknown:
        raise SystemExit(f"benchmark: error: {', '.join(unknown)} not in suite {suite['name']}; its agents and envs: "
                         f"{', '.join(sorted(known))}")
    pairs = [(a, e) for a, e in cells(suite)
             if (not only_agents or a in only_agents) and (not only_envs or e in only_envs)]
    wall = None
    if not args.aggregate_only:
        wall = run_suite(suite, runs, seeds, args.launcher, args.jobs, args.ray_address, pairs,
                         args.out / f"{suite['name']}.json")
    result = aggregate(suite, runs, seeds, args.out, args.reps, only_agents, only_envs, wall, args.launcher, args.jobs)
    meta = result["meta"]
    print(f"{meta['runs_finished']}/{meta['runs_expected']} runs finished; {meta['cells_meeting']}/{meta['cells']} "
          f"cells solved in >= {meta['min_seeds']} seeds" + (f"; wall {wall / 60:.1f} min" if wall else "")
          + f"; wrote {args.out / suite['name']}.md")
    problems = [(r["agent"], r["env"], s, why) for r in result["rows"] for s, why in r["problems"].items()]
    for agent, env, seed, why in problems:
        print(f"  {agent} {env} seed {seed}: {why}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
