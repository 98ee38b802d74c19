"""Tune an agent's hyperparameters with Optuna over a search space given in YAML (conf/tune/*.yaml).

    python experiments/tune.py --space conf/tune/ppo_CartPole-v1.yaml --trials 20
    python experiments/tune.py --space conf/tune/ppo_CartPole-v1.yaml --trials 10      # 10 more: resumes
    python experiments/tune.py --space conf/tune/ppo_CartPole-v1.yaml --trials 0       # report + verify only
    python experiments/tune.py --space ... --storage sqlite:///tune.db --study-name mine --seeds 0 1 2

Needs the extra: pip install -e ".[tune]" (Optuna; this script drives it directly, no Hydra sweeper).

Objective (minimized): training CPU-seconds (evaluation excluded) to the first evaluation at or above
the env's reward threshold (the run summary's `solved_at_cpu_seconds`), averaged over the tuning seeds
(`--seeds`, or `seeds:` in the YAML). A seed that never reaches the threshold within the budget
(train.total_steps) scores `objective.unsolved_penalty` CPU-seconds, a constant from the YAML that
should exceed the CPU-seconds of any full-budget run (about 2x the most expensive point of the space),
so an unsolved seed always scores worse than a solved one.

Pruning: every evaluation of every run reports the value the trial would score if it stopped right
there: seeds already run count with their result, the running seed with its solved CPU-seconds once it
has reached the threshold, else the penalty, and seeds not yet run with the penalty. That value only
goes down as training proceeds and its last report is the trial's objective, so it points the same
way as the objective: smaller is better at every step. The step of a report is seed index x (K + 1)
+ k, with k the evaluation's nominal index (env step // eval.every_steps, K the last one of the
budget); after a seed ends early (eval.early_stop) its final value is also reported at the steps it
skipped, so finished trials have a value at every step. Optuna's MedianPruner (`pruner:` in the YAML)
then prunes a trial whose value is above the median of the completed trials' values at the same step,
which here means: its running seed is still below the threshold at an evaluation by which most
completed trials had reached it (or it is behind on the seeds before). A run is only ever pruned
while it is below the threshold; a pruned trial keeps its last reported value.

Storage: a local SQLite file, experiments/results/tune/<study>.db by default (--storage), loaded if it
exists, so running the command again resumes the study: --trials N always runs N MORE trials
(--trials 0 only reports and verifies). A fresh study starts with the default configuration as its
first trial (`enqueue_default: true`). Trials run one after another in this process (run.main with
logger.tensorboard=false, logger.progress=false), run directories under --workdir (a temporary
directory, deleted at the end, when not given).

At the end: prints and writes experiments/results/tune_<study>.md and .json (--out-dir): the best
parameters and value, every trial (complete, pruned, failed), and a verification: the default
configuration and the best one, each on the same fresh seeds (--verify-seeds, `verify_seeds:` in the
YAML; alternated per seed), median CPU-seconds to the threshold (an unsolved seed counts as infinitely
slow) and how many seeds reached it, so "the best is at least as fast as the default" is checked in
the same command (--no-verify skips it).

Bad input (a missing file, an unknown key, a bad distribution) ends with one line naming the problem and
the fix on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
if str(ROOT) not in sys.path:  # run from a source checkout without installing
    sys.path.insert(0, str(ROOT))

FORCED = ["logger.tensorboard=false", "logger.progress=false"]  # every trial and verification run
TOP_KEYS = {"overrides", "objective", "space", "seeds", "verify_seeds", "pruner", "sampler", "enqueue_default"}
DIST_KEYS = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"},
             "categorical": {"type", "choices"}}
SPACE_EXAMPLE = "e.g. agent.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}"


class TuneError(Exception):
    """A user mistake: main() prints it as one line and exits with code 2."""


# ---------------------------------------------------------------------------------------- the space file
def _number(value: Any, integer: bool = False) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if integer else isinstance(value, (int, float))


def check_distribution(key: str, dist: Any, where: str) -> dict[str, Any]:
    """One entry of `space:`, checked; returns it with defaults filled in."""
    if not isinstance(dist, dict):
        raise TuneError(f"{where}: space key '{key}' must be a mapping with a type, {SPACE_EXAMPLE}")
    kind = dist.get("type")
    if kind not in DIST_KEYS:
        raise TuneError(f"{where}: space key '{key}' has type {kind!r}; use type: float, int or categorical")
    extra = sorted(set(dist) - DIST_KEYS[kind])
    if extra:
        raise TuneError(f"{where}: space key '{key}' (type {kind}) has unknown field(s) {', '.join(extra)}; "
                        f"allowed: {', '.join(sorted(DIST_KEYS[kind]))}")
    if kind == "categorical":
        choices = dist.get("choices")
        if not isinstance(choices, list) or not choices:
            raise TuneError(f"{where}: space key '{key}' (categorical) needs a non-empty list, e.g. choices: [8, 16, 32]")
        bad = [c for c in choices if c is not None and not isinstance(c, (bool, int, float, str))]
        if bad:
            raise TuneError(f"{where}: space key '{key}' has choice {bad[0]!r}; choices must be numbers, strings, "
                            "booleans or null (Optuna stores no lists)")
        return {"type": kind, "choices": choices}
    integer = kind == "int"
    low, high, log, step = dist.get("low"), dist.get("high"), dist.get("log", False), dist.get("step")
    what = "integers" if integer else "numbers"
    if not (_number(low, integer) and _number(high, integer)):
        raise TuneError(f"{where}: space key '{key}' (type {kind}) needs low and high {what}, got low={low!r} "
                        f"high={high!r}")
    if low >= high:
        raise TuneError(f"{where}: space key '{key}' has low={low} >= high={high}; low must be below high")
    if not isinstance(log, bool):
        raise TuneError(f"{where}: space key '{key}' has log={log!r}; use log: true or log: false")
    if log and low <= 0:
        raise TuneError(f"{where}: space key '{key}' has log: true with low={low}; a log scale needs low > 0")
    if step is not None:
        if not _number(step, integer) or step <= 0:
            raise TuneError(f"{where}: space key '{key}' has step={step!r}; step must be a positive "
                            f"{'integer' if integer else 'number'}")
        if log:
            raise TuneError(f"{where}: space key '{key}' has both log: true and step; use one of them")
    return {"type": kind, "low": low, "high": high, "log": log, "step": step}


def load_space(path: str | Path) -> dict[str, Any]:
    """Read and check a search-space file (structure only; keys are checked against the config later)."""
    path = Path(path)
    if not path.is_file():
        options = ", ".join(sorted(str(p.relative_to(ROOT)) for p in (ROOT / "conf" / "tune").glob("*.yaml")))
        raise TuneError(f"search-space file {path} does not exist; pass --space PATH"
                        + (f" (available: {options})" if options else ""))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TuneError(f"{path} is not valid YAML ({first}); fix the file's syntax") from None
    where = str(path)
    if not isinstance(data, dict):
        raise TuneError(f"{where}: expected a mapping with overrides, objective and space; see conf/tune/")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise TuneError(f"{where}: unknown top-level key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(TOP_KEYS))}")
    overrides = data.get("overrides", [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
        raise TuneError(f"{where}: overrides must be a list of Hydra overrides, e.g. [agent=ppo, env=CartPole-v1]")
    objective = data.get("objective")
    if not isinstance(objective, dict) or set(objective) != {"unsolved_penalty"}:
        raise TuneError(f"{where}: objective must be {{unsolved_penalty: CPU_SECONDS}} (the score of a seed that "
                        "never reaches the threshold; above any full-budget run's CPU-seconds)")
    penalty = objective["unsolved_penalty"]
    if not _number(penalty) or penalty <= 0:
        raise TuneError(f"{where}: objective.unsolved_penalty = {penalty!r}; give a positive number of CPU-seconds")
    space = data.get("space")
    if not isinstance(space, dict) or not space:
        raise TuneError(f"{where}: space must map config keys to distributions, {SPACE_EXAMPLE}")
    checked = {str(k): check_distribution(str(k), v, where) for k, v in space.items()}
    seeds = {}
    for name, default in (("seeds", [0]), ("verify_seeds", [100, 101, 102, 103, 104])):
        value = data.get(name, default)
        if not isinstance(value, list) or not value or not all(_number(s, integer=True) for s in value):
            raise TuneError(f"{where}: {name} must be a non-empty list of integers, e.g. {name}: {default}")
        seeds[name] = value
    pruner = data.get("pruner", {"type": "median"})
    sampler = data.get("sampler", {"type": "tpe"})
    for name, value, kinds in (("pruner", pruner, PRUNERS), ("sampler", sampler, SAMPLERS)):
        if not isinstance(value, dict) or value.get("type") not in kinds:
            raise TuneError(f"{where}: {name} must be a mapping with type: {' | '.join(kinds)} (and that class's "
                            "keyword arguments)")
    enqueue = data.get("enqueue_default", True)
    if not isinstance(enqueue, bool):
        raise TuneError(f"{where}: enqueue_default must be true or false")
    return {"path": str(path), "overrides": overrides, "unsolved_penalty": float(penalty), "space": checked,
            **seeds, "pruner": pruner, "sampler": sampler, "enqueue_default": enqueue}


PRUNERS = {"median": "MedianPruner", "percentile": "PercentilePruner", "none": "NopPruner"}
SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler"}


def make_component(optuna: Any, kind: str, spec: dict[str, Any], where: str) -> Any:
    """The pruner or sampler named in the YAML, with its keyword arguments."""
    table = PRUNERS if kind == "pruner" else SAMPLERS
    module = optuna.pruners if kind == "pruner" else optuna.samplers
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    cls = getattr(module, table[spec["type"]])
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise TuneError(f"{where}: {kind} {spec['type']} ({cls.__name__}) rejects {kwargs}: {err}; "
                        f"see optuna.{kind}s.{cls.__name__}") from None


# ---------------------------------------------------------------------------------------- configs
def override_value(value: Any) -> str:
    """A Python value as a Hydra override value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][\w.\-/]*", text) and text not in ("null", "true", "false"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def compose(overrides: list[str]) -> dict[str, Any]:
    """The config `python -m classic_rl OVERRIDES` composes (classic_rl.compose), validated; one-line errors."""
    from classic_rl.compose import compose as compose_run
    from classic_rl.config import ConfigError, UserError
    from classic_rl.run import load_config

    try:
        data, _ = compose_run(overrides)
        load_config(data)
    except (ConfigError, UserError) as err:
        raise TuneError(f"{err} (overrides: {' '.join(overrides)})") from None
    return data


def param_overrides(params: dict[str, Any], added: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Hydra overrides for sampled values; keys the composed config lacks (typed keys with a default,
    e.g. env.reward_threshold) are added with '+'."""
    return [f"{'+' if key in added else ''}{key}={override_value(value)}" for key, value in params.items()]


def lookup(data: dict[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def typed_default(base: dict[str, Any], key: str) -> Any:
    """The value of `key` in the validated config (the typed default where the YAML leaves it out)."""
    from classic_rl.run import load_config

    cfg, agent_cfg = load_config(base)
    head, *rest = key.split(".")
    node: Any = agent_cfg if head == "agent" else getattr(cfg, head, None)
    for part in rest:
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
    return node


def check_keys(spec: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Every space key is a config key and every bound (or choice) composes and validates.

    Records in spec["added"] the keys to pass with '+'; returns the default configuration's values."""
    where, defaults, added = spec["path"], {}, set()
    for key, dist in spec["space"].items():
        found, value = lookup(base, key)
        if isinstance(value, dict):
            raise TuneError(f"{where}: space key '{key}' is a config section; tune its leaf keys, {SPACE_EXAMPLE}")
        if not found:
            added.add(key)
        probes = dist["choices"] if dist["type"] == "categorical" else [dist["low"], dist["high"]]
        for probe in probes:
            try:
                compose(spec["overrides"] + FORCED + param_overrides({key: probe}, added))
            except TuneError as err:
                if "unknown config key" in str(err) or not found and "Could not" in str(err):
                    raise TuneError(f"{where}: unknown key '{key}' in space: {err}; fix the key's spelling") from None
                raise TuneError(f"{where}: space key '{key}': value {probe!r} is not allowed ({err}); "
                                "narrow the distribution") from None
        defaults[key] = value if found else typed_default(base, key)
    spec["added"] = added
    return defaults


def contains(dist: dict[str, Any], value: Any) -> bool:
    """Whether the default value lies in the distribution (so trial 0 can be the default)."""
    if dist["type"] == "categorical":
        return any(value == c and type(value) is type(c) or (_number(value) and _number(c) and value == c)
                   for c in dist["choices"])
    if not _number(value, integer=dist["type"] == "int"):
        return False
    if not dist["low"] <= value <= dist["high"]:
        return False
    step = dist["step"]
    return step is None or abs((value - dist["low"]) / step - round((value - dist["low"]) / step)) < 1e-9


def env_threshold(data: dict[str, Any], cache: dict[str, float | None] = {}) -> float | None:  # noqa: B006
    """The reward threshold a run of this config is judged by (env.reward_threshold, else the env's own)."""
    if data["env"].get("reward_threshold") is not None:
        return float(data["env"]["reward_threshold"])
    env_id = data["env"]["id"]
    if env_id not in cache:
        import torch

        from classic_rl.run import load_config, make_env

        cfg, _ = load_config(data)
        env = make_env(cfg.env, torch.device("cpu"), 0, num_envs=1, evaluation=True)
        cache[env_id] = env.spec.reward_threshold
        env.close()
    return cache[env_id]


def run_quiet(data: dict[str, Any], run_dir: Path, callbacks: Any = ()) -> dict[str, Any]:
    """classic_rl.run.main in this process, its console messages swallowed."""
    from classic_rl.run import main as run_main

    with contextlib.redirect_stdout(io.StringIO()):
        return run_main(data, run_dir, callbacks=callbacks)


# ---------------------------------------------------------------------------------------- one trial
class Reporter:
    """A classic_rl callback (classic_rl/callbacks.py) that turns a trial's evaluations into Optuna
    intermediate values (see the module docstring).

    value = (sum of finished seeds' values + the running seed's value-if-stopped-now
             + penalty x seeds not yet run) / number of seeds
    """

    def __init__(self, trial: Any, n_seeds: int, penalty: float, every_steps: int, total_steps: int) -> None:
        if every_steps <= 0:
            raise TuneError("eval.every_steps = 0 leaves nothing to prune on; set eval.every_steps > 0 in the "
                            "space file's overrides")
        self.trial, self.n_seeds, self.penalty, self.every = trial, n_seeds, penalty, every_steps
        self.last_index = math.ceil(total_steps / every_steps)  # K: the nominal index of the budget's last eval
        self.finished: list[float] = []
        self.seed_index, self.k, self.threshold, self.solved_cpu = -1, 0, None, None
        self.last_record: dict[str, Any] | None = None

    def start_seed(self, threshold: float | None) -> None:
        self.seed_index += 1
        self.k, self.threshold, self.solved_cpu = 0, threshold, None

    def value(self) -> float:
        running = [] if self.seed_index < len(self.finished) else [  # a seed is running (not yet ended)
            self.penalty if self.solved_cpu is None else self.solved_cpu]
        waiting = self.n_seeds - len(self.finished) - len(running)
        return (sum(self.finished) + sum(running) + self.penalty * waiting) / self.n_seeds

    def step(self, k: int) -> int:
        return self.seed_index * (self.last_index + 1) + k

    def on_evaluation(self, record: dict[str, Any]) -> None:
        """Report, then prune (raises optuna.TrialPruned, which ends the run) while below the threshold."""
        import optuna

        self.last_record = record
        self.k = max(record["env_step"] // self.every, self.k + 1)
        if self.solved_cpu is None and self.threshold is not None and record["return_mean"] >= self.threshold:
            self.solved_cpu = float(record["train_cpu_seconds"])
        self.trial.report(self.value(), self.step(self.k))
        if self.solved_cpu is None and self.trial.should_prune():
            raise optuna.TrialPruned(f"seed {self.seed_index} at env step {record['env_step']}: return "
                                     f"{record['return_mean']:.1f} < {self.threshold}")

    def end_seed(self, summary: dict[str, Any]) -> float:
        """The seed's value; its skipped steps (early stop) get the final value so every step has one."""
        solved = summary.get("solved_at_cpu_seconds")
        self.solved_cpu = float(solved) if solved is not None else None
        value = self.penalty if self.solved_cpu is None else self.solved_cpu
        for k in range(self.k + 1, self.last_index + 1):
            self.trial.report(self.value(), self.step(k))
        self.finished.append(value)
        return value


class Objective:
    def __init__(self, spec: dict[str, Any], seeds: list[int], workdir: Path, log: Any = print) -> None:
        self.spec, self.seeds, self.workdir, self.log = spec, seeds, workdir, log

    def suggest(self, trial: Any) -> dict[str, Any]:
        params = {}
        for key, d in self.spec["space"].items():
            if d["type"] == "categorical":
                params[key] = trial.suggest_categorical(key, d["choices"])
            elif d["type"] == "int":
                params[key] = trial.suggest_int(key, d["low"], d["high"], step=d["step"] or 1, log=d["log"])
            else:
                params[key] = trial.suggest_float(key, d["low"], d["high"], step=d["step"], log=d["log"])
        return params

    def __call__(self, trial: Any) -> float:
        import optuna

        params = self.suggest(trial)
        try:
            data = compose(self.spec["overrides"] + FORCED + param_overrides(params, self.spec["added"]))
        except TuneError as err:  # e.g. a combination the agent rejects: the trial fails, the study goes on
            trial.set_user_attr("error", str(err))
            self.log(f"trial {trial.number}: failed: {err}")
            raise
        reporter = Reporter(trial, len(self.seeds), self.spec["unsolved_penalty"], data["eval"]["every_steps"],
                            data["train"]["total_steps"])
        values, steps = [], []
        for seed in self.seeds:
            reporter.start_seed(env_threshold(data))
            run_dir = self.workdir / f"trial{trial.number}" / f"seed{seed}"
            try:
                summary = run_quiet({**data, "seed": seed}, run_dir, callbacks=[reporter])
            except optuna.TrialPruned as pruned:
                trial.set_user_attr("pruned_at", str(pruned))
                trial.set_user_attr("seed_values", values)
                self.log(f"trial {trial.number}: pruned ({pruned}); value so far {reporter.value():.3f}  {params}")
                raise
            except Exception as err:
                trial.set_user_attr("error", f"{type(err).__name__}: {err}")
                self.log(f"trial {trial.number}: failed on seed {seed}: {type(err).__name__}: {err}")
                raise
            if summary.get("interrupted"):  # Ctrl-C: the trainer stopped early; stop the study, not score it
                raise KeyboardInterrupt
            values.append(reporter.end_seed(summary))
            steps.append(summary.get("solved_at_step"))
            if summary.get("solved_at_cpu_seconds") is None and summary["train_cpu_seconds"] >= reporter.penalty:
                self.log(f"warning: trial {trial.number} seed {seed} ran {summary['train_cpu_seconds']} CPU-s, above "
                         f"objective.unsolved_penalty = {reporter.penalty}; raise the penalty")
        value = sum(values) / len(values)
        solved = sum(s is not None for s in steps)
        trial.set_user_attr("seed_values", values)
        trial.set_user_attr("solved_at_steps", steps)
        trial.set_user_attr("solved", solved)
        self.log(f"trial {trial.number}: {value:.3f} CPU-s (solved {solved}/{len(self.seeds)})  {params}")
        return value


# ---------------------------------------------------------------------------------------- verification
def median_inf(values: list[float | None]) -> float:
    """Median with unsolved (None) counted as infinitely slow."""
    return statistics.median([math.inf if v is None else v for v in values]) if values else math.inf


def verify(spec: dict[str, Any], best: dict[str, Any], seeds: list[int], workdir: Path, log: Any = print) -> dict:
    """The default configuration and the best one on the same seeds, alternating which runs first."""
    configs = {"default": compose(spec["overrides"] + FORCED),
               "best": compose(spec["overrides"] + FORCED + param_overrides(best, spec["added"]))}
    runs: dict[str, list[dict[str, Any]]] = {"default": [], "best": []}
    for i, seed in enumerate(seeds):
        for name in (("default", "best") if i % 2 == 0 else ("best", "default")):
            s = run_quiet({**configs[name], "seed": seed}, workdir / "verify" / name / f"seed{seed}")
            runs[name].append({"seed": seed, "solved_at_cpu_seconds": s["solved_at_cpu_seconds"],
                               "solved_at_step": s["solved_at_step"], "train_cpu_seconds": s["train_cpu_seconds"],
                               "eval_return_mean": s["eval_return_mean"]})
            log(f"verify {name:7s} seed {seed}: " + (f"solved at {s['solved_at_step']} env steps / "
                f"{s['solved_at_cpu_seconds']} CPU-s" if s["solved_at_step"] is not None else "unsolved"))
    result: dict[str, Any] = {"seeds": seeds}
    for name, rows in runs.items():
        cpu = median_inf([r["solved_at_cpu_seconds"] for r in rows])
        steps = median_inf([r["solved_at_step"] for r in rows])
        result[name] = {"median_solved_at_cpu_seconds": None if math.isinf(cpu) else cpu,
                        "median_solved_at_step": None if math.isinf(steps) else steps,
                        "solved": sum(r["solved_at_cpu_seconds"] is not None for r in rows), "runs": rows}
    b_cpu = median_inf([r["solved_at_cpu_seconds"] for r in runs["best"]])
    d_cpu = median_inf([r["solved_at_cpu_seconds"] for r in runs["default"]])
    result["best_at_least_as_fast"] = bool(result["best"]["solved"] >= result["default"]["solved"] and b_cpu <= d_cpu)
    result["speedup"] = (d_cpu / b_cpu) if math.isfinite(b_cpu) and math.isfinite(d_cpu) and b_cpu > 0 else None
    return result


# ---------------------------------------------------------------------------------------- results
def trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({
            "number": t.number, "state": t.state.name.lower(), "value": t.value, "params": t.params,
            "solved": t.user_attrs.get("solved"), "seed_values": t.user_attrs.get("seed_values"),
            "note": t.user_attrs.get("pruned_at") or t.user_attrs.get("error"),
            "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
        })
    return rows


def fmt(value: Any, digits: int = 3, none: str = "-") -> str:
    if value is None:
        return none
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def write_results(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = report["study"]
    json_path, md_path = out_dir / f"tune_{name}.json", out_dir / f"tune_{name}.md"
    json_path.write_text(json.dumps(report, indent=2))
    counts = report["counts"]
    lines = [
        f"# Tuning study `{name}`", "",
        f"`{report['command']}`", "",
        f"- space: `{report['space_file']}`; base overrides: `{' '.join(report['overrides'])}`",
        f"- storage: `{report['storage']}`; pruner: `{report['pruner']}`; sampler: `{report['sampler']}`",
        f"- objective (minimized): {report['objective']}",
        f"- trials: {counts['total']} ({counts['complete']} complete, {counts['pruned']} pruned, "
        f"{counts['failed']} failed, {counts['other']} other); tuning seeds {report['seeds']}; this command ran "
        f"{report['this_invocation']['trials']} after {report['this_invocation']['earlier_trials']} earlier ones "
        f"in {report['this_invocation']['seconds']} s",
    ]
    if report["best"] is not None:
        best = report["best"]
        lines += [f"- best: trial {best['number']}, value **{fmt(best['value'])}** CPU-s", "",
                  "| key | best | default |", "|---|---|---|"]
        lines += [f"| `{k}` | {fmt(v, 4)} | {fmt(report['defaults'].get(k), 4)} |" for k, v in best["params"].items()]
    v = report.get("verification")
    if v:
        d, b = v["default"], v["best"]
        lines += ["", f"## Verification on seeds {v['seeds']}", "",
                  "| config | solved | median CPU-s to threshold | median env steps to threshold | per seed CPU-s |",
                  "|---|---|---|---|---|"]
        for label, r in (("default", d), ("best", b)):
            per = ", ".join(fmt(x["solved_at_cpu_seconds"], none="unsolved") for x in r["runs"])
            lines.append(f"| {label} | {r['solved']}/{len(v['seeds'])} | "
                         f"{fmt(r['median_solved_at_cpu_seconds'], none='unsolved')} | "
                         f"{fmt(r['median_solved_at_step'], none='unsolved')} | {per} |")
        verdict = "yes" if v["best_at_least_as_fast"] else "no"
        speed = f" ({v['speedup']:.2f}x the default's speed)" if v["speedup"] else ""
        lines += ["", f"Best at least as fast as the default (as many seeds solved, median CPU-s <=): **{verdict}**"
                  f"{speed}. Unsolved seeds count as infinitely slow in the medians."]
    lines += ["", "## Trials", "", "| # | state | value | solved | params | note |", "|---|---|---|---|---|---|"]
    for r in report["trials"]:
        params = ", ".join(f"{k.split('.')[-1]}={fmt(x, 3)}" for k, x in r["params"].items())
        lines.append(f"| {r['number']} | {r['state']} | {fmt(r['value'])} | {fmt(r['solved'])} | {params} | "
                     f"{(r['note'] or '').replace('|', '/')} |")
    md_path.write_text("\n".join(lines) + "\n")
    return md_path, json_path


# ---------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", required=True, help="search-space YAML, e.g. conf/tune/ppo_CartPole-v1.yaml")
    parser.add_argument("--trials", type=int, default=20, help="how many MORE trials to run (0: report only)")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite:///"
                        "experiments/results/tune/<study>.db)")
    parser.add_argument("--study-name", default=None, help="default: the space file's name")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="tuning seeds (default: the YAML's)")
    parser.add_argument("--verify-seeds", type=int, nargs="+", default=None, help="verification seeds")
    parser.add_argument("--no-verify", action="store_true", help="skip the best-vs-default verification")
    parser.add_argument("--workdir", type=Path, default=None, help="keep run directories here (default: temporary)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where tune_<study>.{md,json} go")
    args = parser.parse_args(argv)
    if args.trials < 0:
        parser.error("--trials must be >= 0")
    return args


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    try:
        import optuna
    except ImportError:
        raise TuneError('optuna is not installed; install the extra: pip install -e ".[tune]"') from None
    from classic_rl.config import ConfigError, UserError

    spec = load_space(args.space)
    pruner = make_component(optuna, "pruner", spec["pruner"], spec["path"])
    sampler = make_component(optuna, "sampler", spec["sampler"], spec["path"])
    base = compose(spec["overrides"] + FORCED)
    defaults = check_keys(spec, base)
    if env_threshold(base) is None:
        raise TuneError(f"{spec['path']}: env {base['env']['id']} has no reward threshold to reach; add "
                        "env.reward_threshold=VALUE to overrides")
    if base["eval"]["every_steps"] <= 0:
        raise TuneError(f"{spec['path']}: eval.every_steps = 0 leaves nothing to report or prune on; add "
                        "eval.every_steps=N (N > 0) to overrides")
    seeds = args.seeds or spec["seeds"]
    verify_seeds = args.verify_seeds or spec["verify_seeds"]
    name = args.study_name or Path(args.space).stem
    storage = args.storage
    if storage is None:
        db = RESULTS / "tune" / f"{name}.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{db}"
    elif storage.startswith("sqlite:///"):
        Path(storage[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # this script prints one line per trial itself
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction="minimize", pruner=pruner,
                                    sampler=sampler, load_if_exists=True)
    except ValueError as err:  # e.g. an existing study with another direction
        raise TuneError(f"study {name!r} in {storage}: {err}; pick another --study-name") from None
    previous = len(study.trials)
    print(f"study {name} ({storage}): {previous} earlier trial(s); running {args.trials} more on seeds {seeds}",
          flush=True)
    if previous == 0 and spec["enqueue_default"] and args.trials > 0:  # trial 0 = the default configuration
        outside = [k for k, v in defaults.items() if not contains(spec["space"][k], v)]
        if outside:
            print(f"note: the default's {', '.join(f'{k}={defaults[k]!r}' for k in outside)} lie(s) outside the "
                  "space; trial 0 takes the default's other values and samples these", flush=True)
        study.enqueue_trial({k: v for k, v in defaults.items() if k not in outside})

    tmp = None
    workdir = args.workdir
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="tune_")
        workdir = Path(tmp.name)
    try:
        t0 = time.perf_counter()
        if args.trials:
            log = lambda text: print(text, flush=True)  # noqa: E731
            study.optimize(Objective(spec, seeds, workdir, log), n_trials=args.trials,
                           catch=(ConfigError, UserError, TuneError))
        tuning_seconds = time.perf_counter() - t0
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        best = study.best_trial if complete else None
        verification = None
        if best is not None and not args.no_verify:
            print(f"verification: default vs best (trial {best.number}) on seeds {verify_seeds}", flush=True)
            verification = verify(spec, best.params, verify_seeds, workdir)
    finally:
        if tmp is not None:
            tmp.cleanup()

    rows = trial_rows(study)
    states = [r["state"] for r in rows]
    report = {
        "study": name, "storage": storage.replace(f"sqlite:///{ROOT}/", "sqlite:///"), "space_file": spec["path"],
        "command": "python experiments/tune.py " + " ".join(argv),
        "overrides": spec["overrides"] + FORCED, "seeds": seeds,
        "objective": ("mean over the tuning seeds of the training CPU-seconds to the first evaluation >= the "
                      f"reward threshold ({env_threshold(base)}); an unsolved seed scores "
                      f"{spec['unsolved_penalty']}"),
        "unsolved_penalty": spec["unsolved_penalty"],
        "pruner": spec["pruner"], "sampler": spec["sampler"], "space": spec["space"], "defaults": defaults,
        "counts": {"total": len(rows), "complete": states.count("complete"), "pruned": states.count("pruned"),
                   "failed": states.count("fail"), "other": len(rows) - sum(states.count(s) for s in
                                                                          ("complete", "pruned", "fail"))},
        "this_invocation": {"earlier_trials": previous, "trials": args.trials, "seconds": round(tuning_seconds, 1)},
        "best": None if best is None else {"number": best.number, "value": best.value, "params": best.params,
                                           "seed_values": best.user_attrs.get("seed_values")},
        "verification": verification, "trials": rows,
    }
    for r in rows:  # one word per state in the files: complete | pruned | failed
        r["state"] = "failed" if r["state"] == "fail" else r["state"]
    report["counts"]["failed"] = sum(r["state"] == "failed" for r in rows)
    md, js = write_results(report, args.out_dir)
    c = report["counts"]
    print(f"trials: {c['total']} ({c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed)")
    if best is not None:
        print(f"best: trial {best.number}, {best.value:.3f} CPU-s, params {best.params}")
    if verification:
        d, b = verification["default"], verification["best"]
        print(f"verification on seeds {verify_seeds}: default median {fmt(d['median_solved_at_cpu_seconds'], none='unsolved')} CPU-s "
              f"({d['solved']}/{len(verify_seeds)} solved), best median {fmt(b['median_solved_at_cpu_seconds'], none='unsolved')} "
              f"CPU-s ({b['solved']}/{len(verify_seeds)} solved); best at least as fast: "
              f"{'yes' if verification['best_at_least_as_fast'] else 'no'}")
    print(f"wrote {md} and {js}")
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        return run(args, argv)
    except TuneError as err:
        print(f"tune: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
