"""classic_rl against Stable-Baselines3 on the same envs and seeds, in one run.

    python experiments/compare_sb3.py                                   # every pair, seeds 0-4
    python experiments/compare_sb3.py --pairs ppo:CartPole-v1 a2c:CartPole-v1 --seeds 0 1 2 3 4
    python experiments/compare_sb3.py --skip-sb3 --skip-classic         # only rebuild the table from cached runs
    python experiments/compare_sb3.py --pairs dqn:Acrobot-v1 --jobs 2   # a pair outside the default list

Needs the optional extra: pip install -e ".[sb3]".

classic_rl side: the plain `python -m classic_rl agent=A env=E seed=S` with its default (tuned) config,
through experiments/seeds.py's run_seed. SB3 side: rl-baselines3-zoo's published hyperparameters for
the pair (ZOO below), evaluated the way classic_rl's trainer evaluates: every eval.every_steps env
steps of the classic_rl config, eval.episodes deterministic episodes on separately seeded envs, the
training CPU-seconds (time.process_time) banked before each evaluation so they exclude it, one torch
thread. Same budget: SB3 trains for the classic_rl config's train.total_steps (--budget classic, the
default), with the zoo's schedules (stretched when the budget is longer than the zoo's n_timesteps, the
zoo's run stopped early when shorter); --budget zoo trains SB3 for the zoo's n_timesteps.
Every (library, agent, env, seed) runs in its own process, --jobs at a time (default 1), and writes experiments/results/compare_sb3_runs/<library>_<agent>_<env>_seed<S>.json; a run whose file
exists (with the same evaluation settings) is not run again, so an interrupted comparison resumes.

A threshold (CartPole-v1 475, Acrobot-v1 -100, Pendulum-v1 -200) counts as reached at the first
evaluation at or above it; "stays" counts runs whose final evaluation is still at or above it.
Medians count unreached seeds as infinitely slow. Ratios are SB3 / classic_rl.
Writes experiments/results/compare_sb3.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import RESULTS, median_reached, run_seed  # noqa: E402

RUNS = RESULTS / "compare_sb3_runs"
SB3_MISSING = 'compare_sb3: error: Stable-Baselines3 is not installed; install the extra: pip install -e ".[sb3]"'
PAIRS = [("ppo", "CartPole-v1"), ("a2c", "CartPole-v1"), ("dqn", "CartPole-v1"),
         ("ppo", "Acrobot-v1"), ("a2c", "Acrobot-v1"), ("dqn", "Acrobot-v1"),
         ("ddpg", "Pendulum-v1"), ("td3", "Pendulum-v1")]
# the default run: every agent both libraries have on its envs; dqn on Acrobot-v1 is known but left out of
# the default (100k DQN steps on each side cost about as much CPU as all the other pairs together)
DEFAULT_PAIRS = [p for p in PAIRS if p != ("dqn", "Acrobot-v1")]
THRESHOLDS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "Pendulum-v1": -200.0}
# evaluation settings for SB3 when the classic_rl config of a pair cannot be composed (agent not there yet)
FALLBACK_EVAL = {"every_steps": 1000, "episodes": 10, "seed": 1000003}

# rl-baselines3-zoo's published hyperparameters (github.com/DLR-RM/rl-baselines3-zoo, hyperparams/<algo>.yml,
# master). "lin_X" is the zoo's linear schedule X * progress_remaining; n_envs, n_timesteps, normalize
# (VecNormalize on observations and rewards), noise_type/noise_std and policy_kwargs.net_arch are the
# zoo's own keys; everything else goes to the SB3 constructor.
_PENDULUM_OFF_POLICY = {  # hyperparams/ddpg.yml and td3.yml, Pendulum-v1 (identical entries)
    "n_envs": 1, "n_timesteps": 20_000, "noise_type": "normal", "noise_std": 0.1,
    "kwargs": {"gamma": 0.98, "buffer_size": 200_000, "learning_starts": 10_000, "gradient_steps": 1,
               "train_freq": 1, "learning_rate": 1e-3, "policy_kwargs": {"net_arch": [400, 300]}},
}
ZOO = {
    ("ppo", "CartPole-v1"): {  # hyperparams/ppo.yml CartPole-v1 ("Tuned")
        "n_envs": 8, "n_timesteps": 100_000,
        "kwargs": {"n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20,
                   "ent_coef": 0.0, "learning_rate": "lin_0.001", "clip_range": "lin_0.2"},
    },
    ("a2c", "CartPole-v1"): {  # hyperparams/a2c.yml CartPole-v1
        "n_envs": 8, "n_timesteps": 500_000, "kwargs": {"ent_coef": 0.0},
    },
    ("dqn", "CartPole-v1"): {  # hyperparams/dqn.yml CartPole-v1 ("Almost Tuned")
        "n_envs": 1, "n_timesteps": 50_000,
        "kwargs": {"learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1000,
                   "gamma": 0.99, "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128,
                   "exploration_fraction": 0.16, "exploration_final_eps": 0.04,
                   "policy_kwargs": {"net_arch": [256, 256]}},
    },
    ("ppo", "Acrobot-v1"): {  # hyperparams/ppo.yml Acrobot-v1
        "n_envs": 16, "n_timesteps": 1_000_000, "normalize": True,
        "kwargs": {"n_steps": 256, "gae_lambda": 0.94, "gamma": 0.99, "n_epochs": 4, "ent_coef": 0.0},
    },
    ("a2c", "Acrobot-v1"): {  # hyperparams/a2c.yml Acrobot-v1
        "n_envs": 16, "n_timesteps": 500_000, "normalize": True, "kwargs": {"ent_coef": 0.0},
    },
    ("dqn", "Acrobot-v1"): {  # hyperparams/dqn.yml Acrobot-v1 ("Tuned")
        "n_envs": 1, "n_timesteps": 100_000,
        "kwargs": {"learning_rate": 6.3e-4, "batch_size": 128, "buffer_size": 50_000, "learning_starts": 0,
                   "gamma": 0.99, "target_update_interval": 250, "train_freq": 4, "gradient_steps": -1,
                   "exploration_fraction": 0.12, "exploration_final_eps": 0.1,
                   "policy_kwargs": {"net_arch": [256, 256]}},
    },
    ("ddpg", "Pendulum-v1"): _PENDULUM_OFF_POLICY,
    ("td3", "Pendulum-v1"): _PENDULUM_OFF_POLICY,
}


# ---------------------------------------------------------------------------------------- aggregation
def run_stats(record: dict, threshold: float) -> dict:
    """One run's record -> time to the first evaluation at/above `threshold` and its final evaluation."""
    evals = record["evaluations"]
    hit = next((e for e in evals if e["return_mean"] >= threshold), None)
    final = evals[-1]["return_mean"]
    return {
        "seed": record["seed"],
        "env_steps": record["env_steps"],
        "train_cpu_seconds": record["train_cpu_seconds"],
        "steps_to_threshold": hit["env_step"] if hit else None,
        "cpu_seconds_to_threshold": hit["train_cpu_seconds"] if hit else None,
        "final_return": final,
        "stays_solved": final >= threshold,
    }


def aggregate(records: list[dict], threshold: float) -> dict:
    """Per-run records of one (library, agent, env) -> the table's figures for that side."""
    runs = sorted((run_stats(r, threshold) for r in records), key=lambda r: r["seed"])
    finals = [r["final_return"] for r in runs]
    return {
        "seeds": len(runs),
        "solved": sum(r["steps_to_threshold"] is not None for r in runs),
        "stays_solved": sum(r["stays_solved"] for r in runs),
        "median_steps_to_threshold": median_reached([r["steps_to_threshold"] for r in runs]),
        "median_cpu_seconds_to_threshold": median_reached([r["cpu_seconds_to_threshold"] for r in runs]),
        "final_return_mean": statistics.fmean(finals) if finals else None,
        "final_return_std": statistics.pstdev(finals) if finals else None,
        "env_steps": median_reached([r["env_steps"] for r in runs]),
        "train_cpu_seconds_per_1k_steps": median_reached([1000 * r["train_cpu_seconds"] / r["env_steps"] for r in runs]),
        "runs": runs,
    }


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den == 0 else num / den


def compare(agent: str, env: str, classic: list[dict], sb3: list[dict], threshold: float,
            note: str = "") -> dict:
    """One table row: both sides aggregated, and SB3 / classic_rl ratios of the medians."""
    c = aggregate(classic, threshold) if classic else None
    s = aggregate(sb3, threshold) if sb3 else None
    ratios = {}
    for key in ("median_steps_to_threshold", "median_cpu_seconds_to_threshold", "train_cpu_seconds_per_1k_steps"):
        ratios[key] = _ratio(s and s[key], c and c[key])
    return {"agent": agent, "env": env, "threshold": threshold, "classic_rl": c, "sb3": s,
            "ratio_sb3_over_classic": ratios, "note": note}


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)


def markdown(rows: list[dict]) -> str:
    head = ("| agent | env | threshold | library | solved | stays | median steps | median CPU-s | "
            "final return (mean ± std) | budget (env steps) | CPU-s / 1k steps |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for row in rows:
        for lib in ("classic_rl", "sb3"):
            side = row[lib]
            if side is None:
                lines.append(f"| {row['agent']} | {row['env']} | {row['threshold']:g} | {lib} | not run | | | | | | |")
                continue
            n = side["seeds"]
            lines.append(
                f"| {row['agent']} | {row['env']} | {row['threshold']:g} | {lib} | {side['solved']}/{n} | "
                f"{side['stays_solved']}/{n} | {_fmt(side['median_steps_to_threshold'], '.0f')} | "
                f"{_fmt(side['median_cpu_seconds_to_threshold'])} | {_fmt(side['final_return_mean'], '.1f')} ± "
                f"{_fmt(side['final_return_std'], '.1f')} | {_fmt(side['env_steps'], '.0f')} | "
                f"{_fmt(side['train_cpu_seconds_per_1k_steps'], '.3f')} |")
        r = row["ratio_sb3_over_classic"]
        c, s = row["classic_rl"], row["sb3"]
        diff = None if c is None or s is None else c["final_return_mean"] - s["final_return_mean"]
        lines.append(f"| {row['agent']} | {row['env']} | | **SB3 / classic_rl** | | | "
                     f"**{_fmt(r['median_steps_to_threshold'])}** | **{_fmt(r['median_cpu_seconds_to_threshold'])}** "
                     f"| classic_rl − SB3: {_fmt(diff, '+.1f')} | | {_fmt(r['train_cpu_seconds_per_1k_steps'])} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- classic_rl side
def classic_config(agent: str, env: str) -> dict | None:
    """The composed config of `python -m classic_rl agent=A env=E` (None if it does not compose)."""
    proc = subprocess.run([sys.executable, "-m", "classic_rl", f"agent={agent}", f"env={env}", "--cfg", "job"],
                          capture_output=True, text=True)
    return yaml.safe_load(proc.stdout) if proc.returncode == 0 else None


def classic_available(agent: str, env: str) -> tuple[bool, str]:
    """Whether a short classic_rl run of the pair works; else the last line of its error."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, "-m", "classic_rl", f"agent={agent}", f"env={env}",
                               "train.total_steps=2000", f"hydra.run.dir={tmp}", "logger.progress=false",
                               "logger.tensorboard=false"], capture_output=True, text=True)
    if proc.returncode == 0:
        return True, ""
    lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
    return False, lines[0] if lines else f"exit code {proc.returncode}"


def eval_settings(cfg: dict | None) -> dict:
    if cfg is None:
        return dict(FALLBACK_EVAL)
    return {"every_steps": cfg["eval"]["every_steps"], "episodes": cfg["eval"]["episodes"], "seed": cfg["eval"]["seed"]}


def run_classic(agent: str, env: str, seed: int, path: Path) -> dict:
    overrides = [f"agent={agent}", f"env={env}"]
    with tempfile.TemporaryDirectory() as tmp:
        s = run_seed(seed, overrides, Path(tmp))
        cfg = yaml.safe_load((Path(tmp) / f"seed{seed}" / "config.yaml").read_text())
    record = {
        "library": "classic_rl", "agent": agent, "env": env, "seed": seed,
        "command": f"python -m classic_rl {' '.join(overrides)} seed={seed}",
        "eval": eval_settings(cfg), "env_steps": s["env_steps"], "train_cpu_seconds": s["train_cpu_seconds"],
        "train_seconds": s["train_seconds"], "wall_seconds": s["wall_seconds"], "evaluations": s["evaluations"],
    }
    _write(path, record)
    return record


# ---------------------------------------------------------------------------------------- SB3 side
def _sb3_kwargs(agent: str, spec: dict, action_dim: int | None) -> dict:
    """The zoo entry -> SB3 constructor arguments (schedules and action noise built)."""
    import numpy as np
    from stable_baselines3.common.noise import NormalActionNoise

    def value(v):
        if isinstance(v, str) and v.startswith("lin_"):
            start = float(v[4:])
            return lambda progress_remaining: progress_remaining * start
        return v

    kwargs = {k: value(v) for k, v in spec["kwargs"].items()}
    if spec.get("noise_type") == "normal":
        kwargs["action_noise"] = NormalActionNoise(np.zeros(action_dim), spec["noise_std"] * np.ones(action_dim))
    return kwargs


def _sb3_evaluate(model, envs: list, seed: int, normalize) -> list[float]:
    """The first episode of each env (env i reset with seed + i), deterministic actions, stepped in a batch."""
    import numpy as np

    obs = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(envs)])
    returns = np.zeros(len(envs))
    running = np.ones(len(envs), dtype=bool)
    while running.any():
        idx = np.flatnonzero(running)
        batch = obs[idx] if normalize is None else normalize(obs[idx])
        actions, _ = model.predict(batch, deterministic=True)
        for j, i in enumerate(idx):
            o, r, terminated, truncated, _ = envs[i].step(actions[j])
            obs[i] = o
            returns[i] += r
            running[i] = not (terminated or truncated)
    return returns.tolist()


def sb3_worker(agent: str, env_id: str, seed: int, ev: dict, budget: int | None, out: Path) -> None:
    """Train one SB3 run in this process and write its record to `out`."""
    import torch

    torch.set_num_threads(1)
    try:
        import gymnasium as gym
        import stable_baselines3 as sb3
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import VecNormalize
    except ImportError:
        raise SystemExit(SB3_MISSING) from None

    spec = ZOO[(agent, env_id)]
    # schedules (lin_, DQN's exploration_fraction) follow the zoo's n_timesteps, stretched to the budget when
    # that is longer; a shorter budget stops the zoo's run early
    total = spec["n_timesteps"] if budget is None else max(spec["n_timesteps"], budget)
    stop_at = total if budget is None else budget
    venv = make_vec_env(env_id, n_envs=spec["n_envs"], seed=seed)
    if spec.get("normalize"):
        venv = VecNormalize(venv, gamma=spec["kwargs"].get("gamma", 0.99))
    action_dim = venv.action_space.shape[0] if venv.action_space.shape else None
    model = getattr(sb3, agent.upper())("MlpPolicy", venv, seed=seed, device="cpu", verbose=0,
                                        **_sb3_kwargs(agent, spec, action_dim))
    eval_envs = [gym.make(env_id) for _ in range(ev["episodes"])]
    normalize = venv.normalize_obs if spec.get("normalize") else None

    class Clock(BaseCallback):
        """Banks training CPU/wall time before each evaluation (so it is excluded), like classic_rl's trainer."""

        def _on_training_start(self) -> None:
            self.cpu = self.wall = 0.0
            self.evaluations: list[dict] = []
            self.next_eval = ev["every_steps"] if ev["every_steps"] > 0 else math.inf
            self._restart()

        def _restart(self) -> None:
            self.cpu0, self.wall0 = time.process_time(), time.perf_counter()

        def bank(self) -> None:
            self.cpu += time.process_time() - self.cpu0
            self.wall += time.perf_counter() - self.wall0

        def evaluate(self) -> None:
            returns = _sb3_evaluate(self.model, eval_envs, ev["seed"], normalize)
            self.evaluations.append({
                "env_step": self.num_timesteps, "return_mean": statistics.fmean(returns),
                "return_std": statistics.pstdev(returns), "train_seconds": round(self.wall, 3),
                "train_cpu_seconds": round(self.cpu, 3)})

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_eval:
                self.bank()
                self.evaluate()
                self.next_eval = (self.num_timesteps // ev["every_steps"] + 1) * ev["every_steps"]
                self._restart()
            return self.num_timesteps < stop_at

        def _on_training_end(self) -> None:
            self.bank()

    clock = Clock()
    model.learn(total_timesteps=total, callback=clock)
    if not clock.evaluations or clock.evaluations[-1]["env_step"] != model.num_timesteps:
        clock.evaluate()
    record = {
        "library": "sb3", "agent": agent, "env": env_id, "seed": seed, "eval": ev,
        "sb3_version": sb3.__version__, "torch_threads": torch.get_num_threads(),
        "zoo": {k: v for k, v in spec.items()}, "total_timesteps": total,
        "budget": budget,
        "env_steps": model.num_timesteps, "train_cpu_seconds": round(clock.cpu, 3),
        "train_seconds": round(clock.wall, 3), "evaluations": clock.evaluations,
    }
    _write(out, record)


def run_sb3(agent: str, env: str, seed: int, ev: dict, budget: int | None, path: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", agent, env, str(seed), json.dumps(ev),
           str(budget or 0), str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"sb3 {agent} {env} seed {seed} failed:\n{proc.stderr[-2000:]}")
    return json.loads(path.read_text())


def sb3_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("stable_baselines3") is not None


# ---------------------------------------------------------------------------------------- driver
def _write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)


def run_path(library: str, agent: str, env: str, seed: int) -> Path:
    return RUNS / f"{library}_{agent}_{env}_seed{seed}.json"


def cached(path: Path, ev: dict | None, budget: int | None = None) -> dict | None:
    """A finished run's record if it exists, was evaluated with `ev` and (SB3) trained for `budget` env steps
    (any finished run when ev is None: the --skip-* modes)."""
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    if ev is not None and record.get("eval") != ev:
        return None
    if ev is not None and record["library"] == "sb3" and record.get("budget", -1) != budget:
        return None
    return record


def run_pair(agent: str, env: str, seeds: list[int], args, pool: ThreadPoolExecutor) -> dict:
    threshold = THRESHOLDS[env]
    note = ""
    classic: list[dict] = []
    cfg = classic_config(agent, env)
    ev = eval_settings(cfg)
    zoo_steps = ZOO[(agent, env)]["n_timesteps"]
    budget = cfg["train"]["total_steps"] if args.budget == "classic" and cfg is not None else None
    todo_runs = []  # (seed, library order, function, arguments): submitted seed by seed, both libraries
    if args.skip_classic:
        classic = [r for s in seeds if (r := cached(run_path("classic_rl", agent, env, s), None))]
    else:
        todo = [s for s in seeds if args.force or not cached(run_path("classic_rl", agent, env, s), ev)]
        ok, why = classic_available(agent, env) if todo else (True, "")
        if not ok:
            note = f"classic_rl agent={agent} not available: {why}"
            print(f"skipping classic_rl {agent} {env}: {why}", flush=True)
        else:
            for s in seeds:
                path = run_path("classic_rl", agent, env, s)
                if s in todo:
                    todo_runs.append((s, 0, run_classic, (agent, env, s, path)))
                else:
                    classic.append(cached(path, ev))
    sb3_runs: list[dict] = []
    if args.skip_sb3:
        sb3_runs = [r for s in seeds if (r := cached(run_path("sb3", agent, env, s), None))]
    else:
        for s in seeds:
            path = run_path("sb3", agent, env, s)
            if not args.force and (r := cached(path, ev, budget)):
                sb3_runs.append(r)
            else:
                todo_runs.append((s, 1, run_sb3, (agent, env, s, ev, budget, path)))
    tasks = [pool.submit(fn, *fn_args) for _, _, fn, fn_args in sorted(todo_runs, key=lambda t: t[:2])]
    for t in tasks:
        r = t.result()
        (classic if r["library"] == "classic_rl" else sb3_runs).append(r)
        final = r["evaluations"][-1]["return_mean"]
        print(f"  {r['library']:>10} {agent} {env} seed {r['seed']}: final {final:.1f}, "
              f"{r['train_cpu_seconds']:.1f} train CPU-s for {r['env_steps']} env steps", flush=True)
    if not classic and not note:
        note = "no cached classic_rl runs"
    budgets = sorted({r["budget"] for r in sb3_runs if r.get("budget")})
    for b in budgets:
        how = (f"stopped there, the zoo's schedules as for its {zoo_steps}" if b < zoo_steps else
               f"the zoo's schedules stretched from its {zoo_steps}" if b > zoo_steps else "the zoo's own budget")
        note = (note + "; " if note else "") + f"SB3 trained for classic_rl's budget of {b} env steps ({how})"
    row = compare(agent, env, classic, sb3_runs, threshold, note)
    row["eval"] = ev
    return row


def write_table(rows: list[dict], name: str = "compare_sb3", seeds: list[int] | None = None) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"rows": rows, **({"seeds": seeds} if seeds else {})}, indent=2))
    notes = [f"- {r['agent']} {r['env']}: {r['note']}" for r in rows if r["note"]]
    evals = [f"{r['agent']} {r['env']}: every {r['eval']['every_steps']} env steps, {r['eval']['episodes']} episodes"
             for r in rows]
    text = ("# classic_rl vs Stable-Baselines3\n\n"
            "`python experiments/compare_sb3.py` (see its docstring). classic_rl: `python -m classic_rl agent=A "
            "env=E seed=S`, default tuned config. SB3: rl-baselines3-zoo's hyperparameters for the pair (ZOO in "
            "the script). Both evaluated with the deterministic policy on separately seeded envs at the same "
            "interval; median steps / CPU-s: to the first evaluation at or above the threshold (training CPU "
            "time of the process, evaluation excluded; unreached seeds count as infinitely slow); stays: final "
            "evaluation still at or above it; final return: mean ± std over seeds of the last evaluation. One "
            "torch thread, each run its own process. CPU-seconds depend on the machine and its load; compare the ratios, "
            f"measured in one run (load average over the last 15 minutes when this table was written: "
            f"{os.getloadavg()[2]:.1f} on {os.cpu_count()} CPUs).\n\n"
            "Evaluation (both libraries): " + "; ".join(evals) + ".\n\n"
            + markdown(rows) + ("\n" + "\n".join(notes) + "\n" if notes else ""))
    (RESULTS / f"{name}.md").write_text(text)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        agent, env, seed, ev, budget, out = sys.argv[2:8]
        return sb3_worker(agent, env, int(seed), json.loads(ev), int(budget) or None, Path(out))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=[f"{a}:{e}" for a, e in DEFAULT_PAIRS], help="agent:env ...")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each its own process")
    parser.add_argument("--skip-sb3", action="store_true", help="run no SB3 training; use cached SB3 runs")
    parser.add_argument("--skip-classic", action="store_true", help="run no classic_rl training; use cached runs")
    parser.add_argument("--force", action="store_true", help="rerun runs that are cached")
    parser.add_argument("--budget", choices=["classic", "zoo"], default="classic",
                        help="classic (default): SB3 trains for the classic_rl config's train.total_steps, the "
                             "same budget (the zoo's schedules kept, stretched when the budget is longer); "
                             "zoo: SB3 trains for the zoo's n_timesteps")
    parser.add_argument("--out", default="compare_sb3", help="results name: experiments/results/OUT.{md,json} "
                                                                 "(e.g. compare_sb3_heldout for seeds not used in tuning)")
    args = parser.parse_args()
    pairs = []
    for p in args.pairs:
        agent, _, env = p.partition(":")
        if (agent, env) not in ZOO:
            parser.error(f"unknown pair {p!r}; known: {' '.join(f'{a}:{e}' for a, e in PAIRS)}")
        pairs.append((agent, env))
    if not args.skip_sb3 and not sb3_installed():
        raise SystemExit(SB3_MISSING)
    # rows of pairs not in this run are kept from the previous table
    old = RESULTS / f"{args.out}.json"
    rows = {(r["agent"], r["env"]): r for r in json.loads(old.read_text())["rows"]} if old.exists() else {}
    order = {pair: i for i, pair in enumerate(PAIRS)}
    with ThreadPoolExecutor(args.jobs) as pool:
        for agent, env in pairs:
            print(f"{agent} {env}", flush=True)
            rows[(agent, env)] = run_pair(agent, env, args.seeds, args, pool)
            write_table(sorted(rows.values(), key=lambda r: order[(r["agent"], r["env"])]), args.out, args.seeds)
        # classic_rl agents that were missing may have landed while the others ran
        for agent, env in pairs:
            if rows[(agent, env)]["classic_rl"] is None and not args.skip_classic and classic_available(agent, env)[0]:
                print(f"{agent} {env}: classic_rl agent now available, running it", flush=True)
                rows[(agent, env)] = run_pair(agent, env, args.seeds, args, pool)
                write_table(sorted(rows.values(), key=lambda r: order[(r["agent"], r["env"])]), args.out, args.seeds)
    print((RESULTS / f"{args.out}.md").read_text())


if __name__ == "__main__":
    main()
