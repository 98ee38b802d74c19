"""The Benchmarks pages of the documentation site, generated from the committed data in experiments/results/.

`pages()` maps a site path ("benchmarks/classic.md", ...) to the Markdown of that page. Every figure on a
page is read from the results JSON the experiment script wrote (the scripts' own Markdown renderers are
reused where they have one), so the site shows the numbers in the data. Each page names the command that
reproduces it and the hardware it ran on: from the JSON where the JSON records them, else from the small
`COMMANDS` / `HARDWARE` tables below (taken from the Markdown the script wrote beside its JSON, or from the
script's docstring).

Every top-level experiments/results/*.json must be claimed by a page (`PAGES`' patterns): a new result
without a page makes `pages()` raise. Pictures are referenced as `../results/NAME.png` (the site serves
experiments/results/*.png under results/), only when the file exists.

    python experiments/results_pages.py --out DIR      # write every page under DIR to read them
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import importlib.util
import json
import math
import re
import shlex
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, NamedTuple

EXPERIMENTS = Path(__file__).resolve().parent
ROOT = EXPERIMENTS.parent
RESULTS = EXPERIMENTS / "results"
SITE_DIR = "benchmarks"

# Hardware of the results whose JSON does not record it, as the Markdown written beside the JSON, the
# experiment script's docstring or the README's measurement notes give it. Every figure still comes from the JSON.
CPU_2 = "x86_64 CPU, 2 cores"
HARDWARE = {
    "classic": f"{CPU_2}; one torch thread per run, each run in its own process",
    "catch_up_off": f"{CPU_2}; one torch thread per run, each run in its own process",
    "compare_sb3": f"{CPU_2}; one torch thread per run, each run (either library) in its own process",
    "value_based": f"{CPU_2}; one torch thread per run, each run in its own process",
    "seeds": f"{CPU_2}; one torch thread per run, each seed in its own process, one after another",
    "tune": f"{CPU_2}; trials one after another in one process, one torch thread",
    "ppo_throughput": CPU_2,
    "lm": f"{CPU_2}, fp32, SmolLM2-135M-Instruct",
    "lm_rlhf": f"{CPU_2}, fp32, SmolLM2-135M-Instruct; torch threads as each command's `train.torch_threads`",
}
# Commands of the results whose JSON does not record the driver script's command line.
COMMANDS = {
    "compare_sb3": "python experiments/compare_sb3.py",
    "value_based": "python experiments/value_based.py",
    "lm_grpo": "python experiments/lm_grpo.py",
}
# Settings of the 2M-step simple_spread runs (the tuned configs are for 20M env steps), which their JSON does not
# record: as experiments/results/multiagent_agents.md and multiagent_partial.md state them.
_PPO_2M = "`train.total_steps=2000000 agent.lr=0.0007 agent.lr_end=null agent.lr_decay_steps=0 agent.gamma=0.99 " \
    "eval.every_steps=250000`"
_QMIX_2M = "`train.total_steps=2000000 agent.lr_end=null agent.lr_decay_steps=0 eval.every_steps=250000`"
MULTIAGENT_SETTINGS = {
    "multiagent_agents": "2M env steps, evaluation every 250k env steps; MAPPO and IPPO at lr 7e-4 without "
                         "annealing, γ 0.99; QMIX and VDN at lr 2e-4 without annealing. The tuned configs (20M env "
                         f"steps, learning rates annealed to 0) give them with {_PPO_2M} for MAPPO and IPPO and "
                         f"{_QMIX_2M} for QMIX and VDN.",
    "multiagent_partial": "2M env steps, evaluation every 250k env steps; MAPPO and IPPO at lr 7e-4 without annealing, "
                          "γ 0.99. The tuned configs (20M env steps, learning rates annealed to 0) give them with "
                          f"{_PPO_2M}.",
}
# The reward model's run records its keys, not the agent, env and model its command names (experiments/lm_rlhf.py).
RM_COMMAND_PREFIX = "agent=reward_model env=text-arith model=smollm2-135m"


# ---------------------------------------------------------------------------------------------- helpers
def load(name: str) -> Any:
    """experiments/results/NAME(.json), parsed (NaN / Infinity as floats)."""
    return json.loads((RESULTS / (name if name.endswith(".json") else f"{name}.json")).read_text())


_MODULES: dict[str, ModuleType] = {}


def experiment(name: str) -> ModuleType:
    """experiments/NAME.py as a module (the scripts are not a package; importing one runs no experiment)."""
    if name not in _MODULES:
        if str(EXPERIMENTS) not in sys.path:
            sys.path.insert(0, str(EXPERIMENTS))  # the scripts import each other (seeds, lm_grpo, benchmark)
        spec = importlib.util.spec_from_file_location(f"_results_pages_{name}", EXPERIMENTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses and pickling look a module up by name
        spec.loader.exec_module(module)
        _MODULES[name] = module
    return _MODULES[name]


def is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def num(x: Any, digits: int = 2) -> str:
    """A float with `digits` decimals, an int with thousands separators, '—' for missing / infinite."""
    if is_missing(x):
        return "—"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


def count(x: Any) -> str:
    return "—" if is_missing(x) else f"{round(x):,}"


def seed_list(seeds: list[int]) -> str:
    """[0, 1, 2, 3, 4] -> '0-4'; non-contiguous seeds listed."""
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def code(text: str) -> str:
    return f"`{text}`"


def shown_command(command: str, drop: tuple[str, ...] = ("--note", "--title")) -> str:
    """A recorded command line for the page: cosmetic options (page title, notes) and temporary run
    directories left out, `-m classic_rl ...` (recorded without the interpreter) given as `python -m ...`."""
    command = command.strip()
    if command.startswith("-m "):
        command = "python " + command
    command = re.sub(r" hydra\.run\.dir=/tmp/\S+", "", command)
    command = re.sub(r"(--workdir) /\S+", r"\1 RUNS_DIR", command)  # the measuring machine's own path
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    if not any(d in words for d in drop):
        return command
    out, skip = [], False
    for w in words:
        if skip:
            skip = False
            continue
        if w in drop:
            skip = True
            continue
        out.append(w)
    return shlex.join(out)


def option(command: str, name: str) -> str | None:
    """The value of `name` (e.g. --title) in a recorded command line."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    return words[words.index(name) + 1] if name in words[:-1] else None


def header(title: str, what: str, commands: list[str], hardware: str | None, level: int = 1) -> list[str]:
    """Title, what is measured, the command(s) that reproduce it and the hardware it ran on."""
    lines = ["#" * level + " " + title, "", what, ""]
    label = "Command" if len(commands) == 1 else "Commands"
    if len(commands) == 1:
        lines += [f"**{label}:** {code(commands[0])}", ""]
    elif commands:
        lines += [f"**{label}:**", "", *[f"- {code(c)}" for c in commands], ""]
    if hardware:
        lines += [f"**Hardware:** {hardware}", ""]
    return lines


_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^()\s/]+\.png)\)")


def fix_images(text: str) -> str:
    """`![alt](NAME.png)` as a script wrote it beside its PNGs -> `../results/NAME.png`; a picture that is not
    in experiments/results is left out (its line dropped)."""
    out = []
    for line in text.splitlines():
        match = _IMAGE.search(line)
        if match and not (RESULTS / match.group(2)).is_file():
            continue
        out.append(_IMAGE.sub(lambda m: f"![{m.group(1)}](../results/{m.group(2)})", line))
    return "\n".join(out)


def image(name: str, alt: str) -> list[str]:
    return [f"![{alt}](../results/{name})", ""] if (RESULTS / name).is_file() else []


def demote(text: str, by: int = 1) -> str:
    """Headings one level down (a script's page becomes a section)."""
    return re.sub(r"(?m)^(#+) ", lambda m: "#" * (len(m.group(1)) + by) + " ", text)


def drop_title(text: str) -> str:
    """A script's Markdown without its '# title' line (the page has its own)."""
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
        while lines and not lines[0].strip():
            lines = lines[1:]
    return "\n".join(lines)


def join(lines: list[str]) -> str:
    text = "\n".join(lines).strip() + "\n"
    return re.sub(r"\n{3,}", "\n\n", text)


_CURVE = re.compile(r"^(?P<label>[^:(]*?) \((?P<columns>[^)]*)\): (?P<values>\[.*\])$")


def curve_tables(text: str) -> str:
    """Lines like 'held-out accuracy (env step, training seconds, accuracy): [(0, 0.0, 0.24), ...]', as the scripts
    print a curve, -> a label and a table with those columns."""
    out = []
    for line in text.splitlines():
        match = _CURVE.match(line.strip())
        if not match:
            out.append(line)
            continue
        columns = [c.strip() for c in match["columns"].split(",")]
        try:
            rows = ast.literal_eval(match["values"])
        except (ValueError, SyntaxError):
            out.append(line)
            continue
        if not all(isinstance(r, (list, tuple)) and len(r) == len(columns) for r in rows):
            out.append(line)
            continue
        label = match["label"].strip()
        out += [label[:1].upper() + label[1:] + ":", "", "| " + " | ".join(columns) + " |",
                "|" + "---:|" * len(columns)]
        out += ["| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in r) + " |" for r in rows]
        out.append("")
    return "\n".join(out)


class Rendered(NamedTuple):
    text: str
    headline: str
    command: str


# ---------------------------------------------------------------------------------------------- suites
def suite_page(name: str, title: str, what: str) -> Rendered:
    bench = experiment("benchmark")
    data = load(name)
    meta, rows = data["meta"], data["rows"]
    command = f"python experiments/benchmark.py {meta['suite']}"
    if meta.get("launcher") and meta["launcher"] != "joblib":
        command += f" --launcher {meta['launcher']}"
    if meta.get("jobs"):
        command += f" --jobs {meta['jobs']}"
    body = drop_title(bench.markdown({"name": meta["suite"]}, rows, meta))
    # the first paragraph starts with the command and a pointer to the script; the page gives the command
    body = re.sub(r"^`python experiments/benchmark\.py [^`]*` \([^)]*\)\. ", "", body)
    hardware = HARDWARE[name] + (f"; {meta['jobs']} runs at a time ({meta['launcher']})" if meta.get("jobs") else "")
    lines = header(title, what, [command], hardware) + [fix_images(body)]
    headline = (f"{meta['cells_meeting']}/{meta['cells']} cells reach the threshold and end there in at least "
                f"{meta['min_seeds']} of {len(meta['seeds'])} seeds")
    return Rendered(join(lines), headline, command)


def classic() -> Rendered:
    return suite_page("classic", "Classic control suite",
                      "Every agent on every classic control env it fits, 5 seeds each, each run the plain "
                      "`python -m classic_rl agent=A env=E seed=S` with its tuned config: the final evaluation "
                      "return, how often the env's threshold is reached and kept, and the env steps and training "
                      "CPU-seconds to reach it.")


def catch_up_off() -> Rendered:
    return suite_page("catch_up_off", "Classic suite, off-policy agents without the warm-up catch-up",
                      "The [classic suite](classic.md)'s off-policy cells with `agent.catch_up_warmup=false`: the "
                      "first update round comes at `learning_starts` instead of also running the warm-up's update "
                      "rounds at once (the schedule of Stable-Baselines3 and CleanRL). Compare cell by cell with "
                      "the classic suite; each cell's tuned config says which schedule it keeps ([tuned configs](../reference/tuned.md)).")


# ---------------------------------------------------------------------------------------------- SB3
def compare_sb3_page() -> Rendered:
    mod = experiment("compare_sb3")
    rows = load("compare_sb3")["rows"]
    command = COMMANDS["compare_sb3"]
    what = ("classic_rl and Stable-Baselines3 on the same envs and seeds: classic_rl with its tuned config "
            "(`python -m classic_rl agent=A env=E seed=S`), SB3 with rl-baselines3-zoo's hyperparameters for the "
            "pair, both evaluated with the deterministic policy on separately seeded envs at the same interval "
            "and trained for the same env-step budget.")
    lines = header("classic_rl and Stable-Baselines3", what, [command], HARDWARE["compare_sb3"])
    lines += ["Median steps / CPU-s: to the first evaluation at or above the threshold (training CPU time of the "
              "process, evaluation excluded; unreached seeds count as infinitely slow); stays: final evaluation "
              "still at or above it; final return: mean ± std over seeds of the last evaluation. CPU-seconds depend "
              "on the machine and its load: the ratios (SB3 / classic_rl, measured in one run) carry over.", ""]
    evals = [f"{r['agent']} {r['env']}: every {r['eval']['every_steps']} env steps, {r['eval']['episodes']} episodes"
             for r in rows if r.get("eval")]
    if evals:
        lines += ["Evaluation (both libraries): " + "; ".join(evals) + ".", ""]
    lines += [mod.markdown(rows), ""]
    notes = []
    for r in rows:
        if r["classic_rl"] is None and r["sb3"] is None:
            default = getattr(mod, "DEFAULT_PAIRS", None)
            if default is not None and (r["agent"], r["env"]) not in default:
                notes.append(f"- {r['agent']} {r['env']}: not in the default pairs; "
                             f"`python experiments/compare_sb3.py --pairs {r['agent']}:{r['env']}` runs it")
            else:
                notes.append(f"- {r['agent']} {r['env']}: not run")
        elif r.get("note"):
            notes.append(f"- {r['agent']} {r['env']}: {r['note']}")
    lines += notes + [""]
    runs = RESULTS / "compare_sb3_runs"
    if runs.is_dir():
        lines += [f"Each run's record (evaluations, CPU-seconds): `experiments/results/compare_sb3_runs/` "
                  f"({len(list(runs.glob('*.json')))} files).", ""]
    for path in sorted(RESULTS.glob("compare_sb3_*.json")):  # the same comparison on other seeds
        other = load(path.name)
        seeds = other.get("seeds") or next(r["classic_rl"]["seeds"] for r in other["rows"] if r.get("classic_rl"))
        pairs = " ".join(f"{r['agent']}:{r['env']}" for r in other["rows"])
        seed_text = " ".join(map(str, seeds))
        lines += [f"## Seeds {seed_text}", "",
                  f"The same comparison on seeds {seed_text}"
                  + (", which no tuned config was chosen on" if "heldout" in path.stem else "") + ": "
                  f"`python experiments/compare_sb3.py --pairs {pairs} --seeds {seed_text} --jobs 2 "
                  f"--out {path.stem}`.", "", mod.markdown(other["rows"]), ""]
    ratios = [x for x in (r["ratio_sb3_over_classic"]["median_cpu_seconds_to_threshold"] for r in rows
                          if r.get("ratio_sb3_over_classic")) if not is_missing(x)]
    headline = (f"SB3 takes {min(ratios):.1f}x to {max(ratios):.1f}x classic_rl's CPU-seconds to the threshold "
                f"({len(ratios)} agent-env pairs)") if ratios else "no pair measured"
    return Rendered(join(lines), headline, command)


# ---------------------------------------------------------------------------------------------- value-based
def seeds_table(data: dict) -> list[str]:
    """experiments/seeds.py's record: one row per seed and a summary line."""
    runs = data["runs"]
    lines = ["| seed | env steps | solved at step | CPU-s to threshold | final eval | stays solved | train CPU-s |",
             "|---:|---:|---:|---:|---:|---|---:|"]
    for r in runs:
        lines.append(f"| {r['seed']} | {count(r['env_steps'])} | {count(r['solved_at_step'])} | "
                     f"{num(r['solved_at_cpu_seconds'])} | {num(r['eval_return_mean'], 1)} | "
                     f"{'yes' if r['final_solved'] else 'no'} | {num(r['train_cpu_seconds'], 1)} |")
    n = len(runs)
    lines += ["", f"Reached the threshold: {data['solved_runs']}/{n} seeds; still at or above it at the end: "
              f"{data['final_solved_runs']}/{n}; median CPU-s to the threshold: "
              f"{num(data['median_solved_at_cpu_seconds'])} (unreached seeds count as infinitely slow)."]
    return lines


def seeds_command(data: dict, stem: str) -> str:
    default = "seeds_" + ("_".join(o.replace("=", "-") for o in data["overrides"]) or "default")
    out = "" if stem == default else f" --out experiments/results/{stem}.json"
    return (f"python experiments/seeds.py --seeds {' '.join(map(str, data['seeds']))}{out} -- "
            + " ".join(data["overrides"]))


def parts_line(data: dict) -> list[str]:
    """The part results a merged table was built from, as code spans (file names only)."""
    names = [p.split()[-1].removeprefix("experiments/results/") for p in data.get("parts") or []]
    return ["", "Merged from the part results (in `experiments/results/`) " + ", ".join(code(n) for n in names)
            + "."] if names else []


def value_based_page() -> Rendered:
    mod = experiment("value_based")
    main, extra = load("value_based"), load("value_based_seeds5-9")
    command = COMMANDS["value_based"]
    what = ("Every tabular agent and DQN preset on its environments, several seeds each, each run the plain "
            "`python -m classic_rl agent=A env=E` (tuned config) in its own process: the final evaluation return "
            "(mean ± std over seeds), how many seeds reach the target and end at or above it, and the median env "
            "steps and training CPU-seconds to the first evaluation at or above the target.")
    lines = header("Value-based agents", what, [command], HARDWARE["value_based"])
    lines += ["## Tabular agents and DQN presets", "", mod.table(main["results"], main.get("per_timing")), ""]
    lines += ["Each row's command and seeds (the table merges part runs with "
              "`python experiments/value_based.py --merge PARTS`):", "",
              "| agent | env | seeds | command |", "|---|---|---|---|"]
    lines += [f"| {r['agent']} | {r['env']} | {seed_list([x['seed'] for x in r['runs']])} | {code(r['command'])} |"
              for r in main["results"]]
    lines += parts_line(main)
    seeds = sorted({x["seed"] for r in extra["results"] for x in r["runs"]})
    pairs = " ".join(f"{r['agent']}:{r['env']}" for r in extra["results"])
    extra_command = f"python experiments/value_based.py --pairs {pairs} --seeds {' '.join(map(str, seeds))}"
    lines += ["", f"## DQN presets on seeds {seed_list(seeds)}", "",
              "The CartPole-v1 DQN presets on further seeds.", "",
              f"**Command:** {code(extra_command)}",
              "", mod.table(extra["results"], extra.get("per_timing"))]
    lines += parts_line(extra)
    dqn = load("dqn_cartpole_5seeds")
    lines += ["", f"## DQN on CartPole-v1, seeds {seed_list(dqn['seeds'])}, one by one", "",
              "`experiments/seeds.py`: each seed in its own process, one after another.", "",
              f"**Command:** {code(seeds_command(dqn, 'dqn_cartpole_5seeds'))}", "", *seeds_table(dqn)]
    rows = main["results"]
    full = sum(r["final_at_target"] == r["seeds"] for r in rows)
    headline = f"{full}/{len(rows)} agent-env pairs end at their target in every seed"
    return Rendered(join(lines), headline, command)


# ---------------------------------------------------------------------------------------------- throughput
def env_throughput_page() -> Rendered:
    data = load("env_throughput")
    meta, records = data["meta"], data["results"]
    mod = experiment("env_throughput")  # imports torch and classic_rl: only when this page renders
    warmup = None
    md = RESULTS / "env_throughput.md"
    if md.is_file():  # the warm-up is not in the JSON; the Markdown the script wrote beside it says it
        match = re.search(r"([\d.]+) s warm-up", md.read_text())
        warmup = float(match.group(1)) if match else None
    args = argparse.Namespace(threads=meta["threads"], seconds=meta["seconds"], repeats=meta["repeats"],
                              warmup=warmup if warmup is not None else 0.0)
    argv = sys.argv
    try:
        sys.argv = ["env_throughput.py", *meta.get("argv", [])]  # markdown() shows the command from sys.argv
        body = mod.markdown(records, args, meta)
    finally:
        sys.argv = argv
    command = " ".join(["python experiments/env_throughput.py", *meta.get("argv", [])])
    body_lines = drop_title(body).splitlines()
    body_lines = [line for line in body_lines if line.strip() != code(command)
                  and not line.startswith((f"- {meta['cpu']},", f"- torch {meta['torch']},"))]  # in the header
    if warmup is None:
        body_lines = [line.replace(", 0 s warm-up (includes compilation)", "") for line in body_lines]
    hardware = (f"{meta['cpu']}, {meta['threads']} torch thread(s), device(s): {meta['devices']}; "
                f"torch {meta['torch']}, gymnasium {meta['gymnasium']}, numpy {meta['numpy']}, python {meta['python']}")
    what = ("Environment steps per second of classic_rl's torch-native classic control envs (eager and compiled) "
            "against Gymnasium's vector envs, for N parallel envs, with random actions.")
    lines = header("Environment throughput", what, [command], hardware) + body_lines
    cart = [r for r in records if r["env"] == "CartPole-v1"]
    best = max(cart, key=lambda r: r["steps_per_s"])
    ratio = f" ({best['ratio']:.2f}x {best['ratio_vs']})" if best.get("ratio") else ""
    headline = (f"CartPole-v1: {count(best['steps_per_s'])} env steps/s with {best['backend']} at "
                f"N={best['num_envs']:,}{ratio}")
    return Rendered(join(lines), headline, command)


def compile_crossover_page() -> Rendered:
    data = load("compile_crossover")
    meta, rows = data["meta"], data["rows"]
    command = meta["command"].strip()
    hardware = (f"{meta['cpu']}, {meta['cores']} cores, {meta['threads']} torch thread, device {meta['device']}, "
                f"torch {meta['torch']}")
    what = ("When compiling the env step pays: the seconds the first compiled step costs, against the seconds "
            "compiling saves per vector step; the crossover is the run length in vector steps past which "
            "compiling pays.")
    lines = header("Compiling the env step", what, [command], hardware)
    lines += ["- compile: seconds of the first compiled step in a fresh process, with an empty Inductor cache (cold) "
              "and with the cache the cold run filled (warm)",
              "- step: seconds per vector step (median of interleaved blocks); crossover: compile seconds / seconds "
              "saved per vector step", "",
              "| env | N | compile cold (s) | compile warm (s) | eager step (ms) | compiled step (ms) | "
              "crossover cold (vector steps) | crossover warm (vector steps) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def cross(x):
        return "never" if x is None else count(x)
    for r in rows:
        lines.append(f"| {r['env']} | {r['num_envs']:,} | {r['compile_seconds_cold']:.2f} | "
                     f"{r['compile_seconds_warm']:.2f} | {r['eager_step_seconds'] * 1e3:.3f} | "
                     f"{r['compiled_step_seconds'] * 1e3:.3f} | {cross(r['crossover_vector_steps_cold'])} | "
                     f"{cross(r['crossover_vector_steps_warm'])} |")
    warm = [r["crossover_vector_steps_warm"] for r in rows if r["crossover_vector_steps_warm"] is not None]
    cold = [r["crossover_vector_steps_cold"] for r in rows if r["crossover_vector_steps_cold"] is not None]
    headline = (f"compiling pays past {count(min(warm))}-{count(max(warm))} vector steps (warm cache), "
                f"{count(min(cold))}-{count(max(cold))} (cold)") if warm and cold else "compiling never pays"
    return Rendered(join(lines), headline, command)


def gym_vectorization_page() -> Rendered:
    data = load("gym_vectorization")
    command = data["command"]
    load_avg = data.get("load_average_1min_at_end")
    hardware = data["machine"] + (f"; load average {load_avg:.2f} at the end" if load_avg is not None else "")
    what = (f"Env steps per second of a Gymnasium env ({data['env']}) through classic_rl's adapter, "
            "`env.vectorization_mode=sync` (the N envs one after another in one process) against `async` (each "
            "env in its own subprocess), median of interleaved blocks, random actions.")
    lines = header(f"Gymnasium vectorization: sync and async ({data['env']})", what, [command], hardware)
    lines += ["| env.num_envs | sync | async | async / sync |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['num_envs']} | {r['sync']:,} | {r['async']:,} | {r['async_over_sync']:.2f} |"
              for r in data["rows"]]
    ratios = [r["async_over_sync"] for r in data["rows"]]
    headline = f"{data['env']}: async / sync {min(ratios):.2f}x-{max(ratios):.2f}x env steps/s"
    return Rendered(join(lines), headline, command)


def ppo_throughput_page() -> Rendered:
    data = load("ppo_throughput")
    s, med, runs = data["setting"], data["median"], data["runs"]
    command = (f"python experiments/ppo_throughput.py --seeds {' '.join(str(r['seed']) for r in runs)} "
               f"--device {s['device']} --num-envs {s['num_envs']} --threads {s['threads']} "
               f"--total-steps {s['total_steps']}")
    command += (" --sb3" if data.get("sb3") else "") + (" -- " + " ".join(s["overrides"]) if s.get("overrides") else "")
    hardware = f"{HARDWARE['ppo_throughput']}; device={s['device']}, {s['threads']} torch thread(s)"
    what = (f"End-to-end PPO training throughput on CartPole-v1 with {s['num_envs']:,} torch-native envs "
            "(`+experiment=ppo_cartpole_4096`: collection, GAE and the updates included, evaluation excluded), "
            f"{s['total_steps']:,} env steps per run, each run in its own process.")
    lines = header("PPO training throughput", what, [command], hardware)
    lines += ["Steady env steps/s: the median of the trainer's `perf/sps` logs after the first 10% of the run; "
              "end-to-end: env steps / training seconds of the whole run (warm-up and compilation included); "
              "per CPU-second: over the CPU time of all the process's threads.", "",
              "| seed | steady env steps/s | end-to-end env steps/s | env steps per CPU-s | solved at step | "
              "solved at s | final eval |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r['seed']} | {count(r['steady_sps'])} | {count(r['end_to_end_sps'])} | "
                     f"{count(r['sps_per_cpu_second'])} | {count(r['solved_at_step'])} | "
                     f"{num(r['solved_at_seconds'])} | {num(r['eval_return_mean'], 1)} |")
    lines.append(f"| median | {count(med['steady_sps'])} | {count(med['end_to_end_sps'])} | "
                 f"{count(med['sps_per_cpu_second'])} | | | |")
    headline = (f"{count(med['end_to_end_sps'])} env steps/s end to end, {count(med['steady_sps'])} steady "
                f"(median of {len(runs)} seeds)")
    sb3 = data.get("sb3")
    if sb3:
        first = sb3["runs"][0]
        lines += ["", "## Stable-Baselines3 in the same run", "",
                  f"Stable-Baselines3 {first['sb3_version']}'s PPO with rl-baselines3-zoo's CartPole-v1 settings "
                  f"({first['num_envs']} envs, {count(first['env_steps'])} env steps, `model.learn` timed, no "
                  f"evaluation), each seed in its own process with the same torch threads, after classic_rl's run "
                  f"of that seed.", "",
                  "| seed | SB3 env steps/s | SB3 env steps per CPU-s |", "|---:|---:|---:|"]
        lines += [f"| {r['seed']} | {count(r['env_steps_per_second'])} | {count(r['sps_per_cpu_second'])} |"
                  for r in sb3["runs"]]
        lines += [f"| median | {count(sb3['median_env_steps_per_second'])} | |", "",
                  f"classic_rl's end-to-end median over SB3's median: **{sb3['end_to_end_ratio']:,.0f}x**."]
        headline += f"; {sb3['end_to_end_ratio']:,.0f}x Stable-Baselines3's PPO in the same run"
    return Rendered(join(lines), headline, command)


def distributed_page() -> Rendered:
    mod = experiment("distributed")
    data = load("distributed")
    h = data["hardware"]
    command = data["command"].strip()
    backend = "NCCL" if data["device"] == "cuda" else "gloo"
    hardware = (f"{h['cpus']} CPU cores ({h['processor'] or h['machine']})" + (f", {h['gpu']}" if h.get("gpu") else "")
                + f", device={data['device']}, backend {backend}")
    body = mod.markdown(data)
    body = body.split("\n\n", 1)[1] if body.startswith("Hardware:") else body  # the page's header says it
    what = ("One run on several processes (`torchrun`) against the same run in one process on the same machine: "
            "PPO env steps per second and GRPO seconds per update.")
    lines = header("Distributed training (torchrun)", what, [command], hardware) + [body]
    parts = []
    if data.get("ppo"):
        single = data["ppo"][0]["median_env_steps_per_second"]
        multi = max(data["ppo"], key=lambda r: r["processes"])
        parts.append(f"PPO on {multi['processes']} processes: {multi['median_env_steps_per_second'] / single:.2f}x "
                     "one process's env steps/s")
    if data.get("grpo"):
        single = data["grpo"][0]["seconds_per_update"]
        multi = max(data["grpo"], key=lambda r: r["processes"])
        parts.append(f"GRPO: {multi['seconds_per_update'] / single:.2f}x the seconds per update")
    return Rendered(join(lines), "; ".join(parts), command)


# ---------------------------------------------------------------------------------------------- seeds, tuning
def seeds_page() -> Rendered:
    files = sorted(RESULTS.glob("seeds_*.json"))
    what = ("One configuration over several seeds (`experiments/seeds.py`): when each seed first reaches the env's "
            "reward threshold (env steps and training CPU-seconds, evaluation excluded), its final evaluation and "
            "whether it is still at or above the threshold at the end. Each section is one agent on one env with "
            "its tuned config.")
    command = "python experiments/seeds.py --seeds 0 1 2 3 4 -- agent=A env=E"  # each section gives its own
    lines = header("Seeds", what, [command], HARDWARE["seeds"])
    summary = ["| agent | env | reached | stays | median CPU-s to threshold |", "|---|---|---:|---:|---:|"]
    sections = []
    full = 0
    for path in files:
        data = load(path.name)
        over = dict(o.split("=", 1) for o in data["overrides"] if "=" in o)
        agent, env = over.get("agent", "default"), over.get("env", "default")
        n = len(data["runs"])
        full += data["final_solved_runs"] == n
        summary.append(f"| {agent} | {env} | {data['solved_runs']}/{n} | {data['final_solved_runs']}/{n} | "
                       f"{num(data['median_solved_at_cpu_seconds'])} |")
        sections += ["", f"## {agent} on {env}", "", f"**Command:** {code(seeds_command(data, path.stem))}", "",
                     *seeds_table(data)]
    lines += summary + sections
    headline = f"{full}/{len(files)} configurations end at the threshold in every seed"
    return Rendered(join(lines), headline, command)


def tuning_page() -> Rendered:
    mod = experiment("tune")
    files = sorted(RESULTS.glob("tune_*.json"))
    what = ("Hyperparameter searches with Optuna (`experiments/tune.py`, spaces in `conf/tune/`): the objective is "
            "the training CPU-seconds to the first evaluation at or above the env's reward threshold, averaged over "
            "the tuning seeds (an unsolved seed scores a penalty). Where a study is verified, its best "
            "configuration and the default run on the same fresh seeds.")
    commands, sections, heads = [], [], []
    with tempfile.TemporaryDirectory() as tmp:  # tune.py's renderer writes its page; read it back
        for path in files:
            report = load(path.name)
            md, _ = mod.write_results(report, Path(tmp))
            body = md.read_text()
            commands.append(report["command"])
            body_lines = drop_title(body).splitlines()
            body_lines = [line for line in body_lines if line.strip() != code(report["command"])]
            run = report.get("this_invocation") or {}
            if run:  # the study resumes from its storage: say how the trials came about
                body_lines = [re.sub(r"this command ran \d+ after \d+ earlier ones in [\d.]+ s",
                                     f"the command above ran {run['trials']} of them in {run['seconds']} s"
                                     + (f", resuming the study's storage with {run['earlier_trials']} trials in it"
                                        if run.get("earlier_trials") else ""), line) for line in body_lines]
            sections += ["", f"## Study `{report['study']}`", "", f"**Command:** {code(report['command'])}", "",
                         demote("\n".join(body_lines))]
            v = report.get("verification")
            if v and v.get("speedup"):
                heads.append(f"{report['study']}: best {v['speedup']:.2f}x the default's speed")
            elif report.get("best"):
                heads.append(f"{report['study']}: best {report['best']['value']:.3g} CPU-s to the threshold")
    lines = header("Tuning", what, [], HARDWARE["tune"]) + sections
    return Rendered(join(lines), "; ".join(heads), commands[0] if commands else "python experiments/tune.py")


# ---------------------------------------------------------------------------------------------- language models
_OVERRIDE = re.compile(r"^[+~]*[\w.\-/@]+=")


def classic_overrides(command: str) -> tuple[dict[str, str], list[str]]:
    """A recorded `-m classic_rl ...` command (joined with spaces, unquoted) -> (its fixed keys, the rest)."""
    words: list[str] = []
    for w in command.split(" ")[2:]:
        if words and not _OVERRIDE.match(w):
            words[-1] += " " + w  # a value with spaces, e.g. +env.kwargs={a: 1, b: 2}
        elif w:
            words.append(w)
    fixed = {"agent", "env", "model", "hydra.run.dir", "logger.progress", "train.torch_threads"}
    keys = {w.split("=", 1)[0]: w.split("=", 1)[1] for w in words if w.split("=", 1)[0] in fixed}
    rest = [w for w in words if w.split("=", 1)[0] not in fixed]
    return keys, rest


def lm_driver_command(stem: str, result: dict) -> str:
    """experiments/lm_grpo.py's command line that writes experiments/results/STEM from the recorded run."""
    keys, rest = classic_overrides(result["classic_rl"]["command"])
    cmd = [COMMANDS["lm_grpo"]]
    if keys.get("agent", "grpo") != "grpo":
        cmd.append(f"--agent {keys['agent']}")
    if keys.get("env", "text-arith") != "text-arith":
        cmd.append(f"--env {keys['env']}")
    elif "trl" not in result:
        cmd.append("--skip-trl")
    if keys.get("train.torch_threads", "2") != "2":
        cmd.append(f"--threads {keys['train.torch_threads']}")
    if stem != "lm_grpo":
        cmd.append(f"--out experiments/results/{stem}")
    if rest:
        cmd.append("-- " + " ".join(shlex.quote(w) for w in rest))
    return " ".join(cmd)


def lm_section(stem: str, title: str, what: str) -> tuple[list[str], str, dict]:
    mod = experiment("lm_grpo")
    result = load(stem)
    command = lm_driver_command(stem, result)
    keys, _ = classic_overrides(result["classic_rl"]["command"])
    hardware = f"{HARDWARE['lm']}, {keys.get('train.torch_threads', '?')} torch threads"
    body = []
    for line in curve_tables(mod.table(result)).splitlines():
        if line.startswith("command: `"):
            body.append("classic_rl command: " + code(shown_command(line[len("command: `"):-1])))
        else:
            body.append(line)
    return header(title, what, [command], hardware, level=2) + body + [""], command, result


def lm_page() -> Rendered:
    what = ("GRPO fine-tuning of SmolLM2-135M-Instruct on CPU: held-out greedy accuracy before and after training, "
            "seconds per update (generation included, evaluation excluded) and peak memory, beside TRL's "
            "GRPOTrainer on the same model, prompts, batch, lengths and learning rate.")
    lines = ["# Language models: GRPO", "", what, ""]
    arith, command, grpo = lm_section(
        "lm_grpo", "text-arith, classic_rl and TRL",
        "`agent=grpo env=text-arith model=smollm2-135m` with its tuned config, then TRL's GRPOTrainer for a few "
        "timed steps (its accuracy is not measured).")
    chain, _, chain_result = lm_section(
        "lm_chain_sum", "reasoning_gym chain_sum (classic_rl only)",
        "The same agent on another task: two-term sums from reasoning_gym's `chain_sum`, through `env=text`.")
    lines += arith + chain
    c, t = grpo["classic_rl"], grpo.get("trl")
    headline = f"text-arith accuracy {c['accuracy_before']} -> {c['accuracy_after']}"
    if t:
        headline += f"; {c['seconds_per_update'] / t['seconds_per_update']:.2f}x TRL's seconds per update"
    return Rendered(join(lines), headline, command)


def rlhf_page() -> Rendered:
    mod = experiment("lm_rlhf")
    result = load("lm_rlhf")
    hardware = HARDWARE["lm_rlhf"]
    body = drop_title(mod.report(result, hardware))
    first, rest = body.split("\n\n", 1) if body.startswith("`python") else ("", body)
    command = first.split("`")[1] if first else "python experiments/lm_rlhf.py --pairs PAIRS"
    commands = [command]
    if result.get("pairs_command"):
        commands.insert(0, result["pairs_command"])
    rm_command = (result.get("rm") or {}).get("command", "")

    def command_line(m: re.Match) -> str:
        shown = m.group(1)
        if shown == rm_command and " agent=" not in f" {shown}":
            shown = shown.replace("-m classic_rl ", f"-m classic_rl {RM_COMMAND_PREFIX} ", 1)
        return "command: " + code(shown_command(shown))
    rest = re.sub(r"command: `([^`]*)`", command_line, rest)
    if result.get("pair_counts"):
        rest = rest.replace(f"Pairs: {json.dumps(result['pair_counts'])}", "Preference pairs: " + ", ".join(
            f"{k.replace('_', ' ')} {v:,}" for k, v in result["pair_counts"].items()))
    rest = curve_tables(rest)
    what = ("RLHF on text-arith with SmolLM2-135M-Instruct: a Bradley-Terry reward model trained on preference "
            "pairs from the model's own samples, GRPO against that reward model, offline DPO on the same pairs, and "
            "TRL's RewardTrainer and DPOTrainer side by side with classic_rl's (seconds per step, peak memory, the "
            "loss of one fixed first batch).")
    lines = header("Language models: RLHF", what, commands, hardware) + [fix_images(rest)]
    rm, g = result.get("rm", {}), result.get("grpo_rm", {})
    parts = []
    if rm:
        parts.append(f"reward model {rm['held_out_accuracy']} held-out pair accuracy")
    if g:
        parts.append(f"GRPO against it {g['accuracy_before']} -> {g['best_accuracy_within_budget']} accuracy")
    return Rendered(join(lines), "; ".join(parts), command)


# ---------------------------------------------------------------------------------------------- multi-agent
def paper_unit(team_return: float) -> float:
    from classic_rl.envs.multiagent.simple_spread import paper_episode_reward

    return round(paper_episode_reward(team_return), 1)


def multiagent_table(data: dict) -> list[str]:
    """The table of experiments/multiagent_agents.py, from its JSON (columns the record has)."""
    records, refs = data["records"], data["references"]
    iqm = all("team_return_iqm" in r for r in records)
    to_threshold = all("solved_at_step_by_seed" in r for r in records)
    head = ["policy", "env steps", "team return", "± over seeds"] + (["IQM [95% CI]"] if iqm else []) + \
        ["paper unit", "final eval per seed" if iqm else "best eval per seed", "seeds at threshold"] + \
        (["env steps to threshold", "seconds to threshold"] if to_threshold else []) + ["train s", "env steps/s"]
    align = {"policy": "---", "IQM [95% CI]": "---", "final eval per seed": "---", "best eval per seed": "---",
             "env steps to threshold": "---", "seconds to threshold": "---"}
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align.get(h, "---:") for h in head) + "|"]
    for r in records:
        steps = max(r["env_steps_by_seed"]) if "env_steps_by_seed" in r else r["env_steps"]
        cells = [r["agent"], f"{steps:,}", str(r["team_return"]), str(r["team_return_seed_std"])]
        if iqm:
            ci = r["team_return_iqm_ci"]
            cells.append(f"{r['team_return_iqm']} [{ci[0]}, {ci[1]}]")
        per_seed = r["team_return_by_seed"] if iqm else r["best_eval_by_seed"]
        cells += [str(r["paper_unit"]), ", ".join(map(str, per_seed)), f"{r['solved_seeds']}/{r['seeds']}"]
        if to_threshold:
            cells += [", ".join(count(v) for v in r["solved_at_step_by_seed"]),
                      ", ".join(count(v) for v in r["solved_at_seconds_by_seed"])]
        cells += [str(r["train_seconds"]), f"{r['env_steps_per_second']:,}"]
        lines.append("| " + " | ".join(cells) + " |")
    for ref in refs:
        cells = [f"{ref['policy']} (reference)", "", str(ref["team_return"]), ""] + ([""] if iqm else []) + \
            [str(paper_unit(ref["team_return"])), "", ""] + (["", ""] if to_threshold else []) + ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    episodes = option(data["meta"]["command"], "--confirm-episodes")
    for r in records:
        if "confirmed_by_seed" in r:
            lines += ["", f"{r['agent']}: the final policies on {episodes + ' ' if episodes else ''}fresh evaluation "
                      "episodes: team return "
                      f"{r['confirmed_mean']} (paper unit {paper_unit(r['confirmed_mean'])}); per seed "
                      f"{', '.join(map(str, r['confirmed_by_seed']))}."]
    return lines


MA_RETURNS = ("Team return: the env's rewards summed over 3 agents and 25 steps, mean of 200 deterministic evaluation "
              "episodes at the end of training, averaged over seeds. Paper unit: the MAPPO paper's average episode "
              "reward, 2 × team − 75. Threshold: the paper's −120 for MAPPO, team {threshold}.")


def multiagent_section(stem: str, fallback_title: str, picture_alt: str) -> tuple[list[str], str]:
    settings = MULTIAGENT_SETTINGS.get(stem)
    data = load(stem)
    meta = data["meta"]
    command = shown_command(meta["command"])
    title = option(meta["command"], "--title") or fallback_title
    hardware = (f"{meta['machine']} CPU, {meta['threads']} torch thread per run, torch {meta['torch']}; tuned "
                "configs `conf/tuned/AGENT_simple_spread.yaml`")
    what = MA_RETURNS.format(threshold=meta["reward_threshold"]) + (f" {meta['note']}" if meta.get("note") else "")
    lines = header(title, what, [command], hardware, level=2) + multiagent_table(data) + [""]
    if settings:
        lines += [f"Settings of these runs: {settings}", ""]
    lines += image(f"{stem}.png", picture_alt)
    return lines, command


def multiagent_page() -> Rendered:
    what = ("MAPPO, IPPO, QMIX and VDN on simple_spread (3 agents, 25-step episodes), read against reference "
            "policies and the MAPPO paper's level, and the env's joint steps per second.")
    lines = ["# Multi-agent: simple_spread", "", what, ""]
    sec, command = multiagent_section("multiagent_20m", "simple_spread at 20M env steps",
                                      "simple_spread, 20M env steps")
    lines += sec
    lines += multiagent_section("multiagent_agents", "simple_spread: MAPPO, IPPO, QMIX, VDN at 2M env steps",
                                "simple_spread, 2M env steps")[0]
    lines += multiagent_section("multiagent_partial", "simple_spread, partially observable: MAPPO vs IPPO",
                                "simple_spread, partially observable")[0]
    ref = load("multiagent_reference")
    lines += header("Reference policies", "The returns a learned policy is read against: every agent acting "
                    "uniformly at random, and a hand-coded assignment of landmarks to agents (minimum total distance, "
                    "PD control toward the landmark); 3 agents, 25-step episodes, local_ratio 0.5.",
                    [ref["meta"]["command"]], f"{ref['meta']['machine']} CPU, torch {ref['meta']['torch']}", level=2)
    lines += ["| policy | episodes | team return | ± std | per agent | coverage term | collisions |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['policy']} | {r['episodes']:,} | {r['team_return']} | {r['team_return_std']} | "
              f"{r['agent_return']} | {r['coverage_return']} | {r['collisions']} |" for r in ref["records"]]
    lines.append("")
    tp = load("multiagent_throughput")
    m = tp["meta"]
    lines += header("Joint env steps per second", "A joint step moves the 3 agents of one env once; mpe2 steps one "
                    "env in a Python loop, so its rate is the same at every N.", [m["command"]],
                    f"{m['machine']}, torch {m['torch']}" + (f", {m['cuda']}" if m.get("cuda") else ""), level=2)
    lines += ["| N | backend | joint steps/s | x mpe2 |", "|---:|---|---:|---:|"]
    lines += [f"| {r['num_envs']:,} | {r['backend']} | {r['joint_steps_per_s']:,} | {r['ratio_to_mpe2']} |"
              for r in tp["records"]]
    records = load("multiagent_20m")["records"]
    solved = [r for r in records if r["solved_seeds"] == r["seeds"]]
    if solved:
        headline = (" and ".join(r["agent"] for r in solved) + " reach the MAPPO paper's level in every seed (team "
                    "return " + ", ".join(str(r["team_return"]) for r in solved) + ")")
    else:
        best = max(records, key=lambda r: r["team_return"])
        headline = f"best team return {best['team_return']} ({best['agent']})"
    return Rendered(join(lines), headline, command)


# ---------------------------------------------------------------------------------------------- the pages
class Page(NamedTuple):
    path: str            # site path under benchmarks/
    title: str           # in the index
    claims: tuple[str, ...]  # fnmatch patterns of the top-level results JSON the page renders
    render: Callable[[], Rendered]


PAGES = [
    Page("classic.md", "Classic control suite", ("classic.json",), classic),
    Page("catch_up_off.md", "Classic suite without the warm-up catch-up", ("catch_up_off.json",), catch_up_off),
    Page("compare_sb3.md", "classic_rl and Stable-Baselines3", ("compare_sb3.json", "compare_sb3_*.json"),
         compare_sb3_page),
    Page("value_based.md", "Value-based agents",
         ("value_based.json", "value_based_seeds*.json", "dqn_cartpole_5seeds.json"), value_based_page),
    Page("seeds.md", "Seeds", ("seeds_*.json",), seeds_page),
    Page("tuning.md", "Tuning", ("tune_*.json",), tuning_page),
    Page("env_throughput.md", "Environment throughput", ("env_throughput.json",), env_throughput_page),
    Page("compile_crossover.md", "Compiling the env step", ("compile_crossover.json",), compile_crossover_page),
    Page("gym_vectorization.md", "Gymnasium vectorization", ("gym_vectorization.json",), gym_vectorization_page),
    Page("ppo_throughput.md", "PPO training throughput", ("ppo_throughput.json",), ppo_throughput_page),
    Page("distributed.md", "Distributed training", ("distributed.json",), distributed_page),
    Page("language_models.md", "Language models: GRPO", ("lm_grpo.json", "lm_chain_sum.json"), lm_page),
    Page("rlhf.md", "Language models: RLHF", ("lm_rlhf.json",), rlhf_page),
    Page("multiagent.md", "Multi-agent: simple_spread", ("multiagent_*.json",), multiagent_page),
]


def unclaimed(names: list[str]) -> list[str]:
    """The results JSON names that no page renders."""
    return [n for n in names if not any(fnmatch.fnmatchcase(n, p) for page in PAGES for p in page.claims)]


def check_coverage(results: Path | None = None) -> None:
    results = RESULTS if results is None else results
    missing = unclaimed(sorted(p.name for p in results.glob("*.json")))
    if missing:
        raise RuntimeError(f"results without a Benchmarks page: {', '.join(missing)}; add a renderer to PAGES in "
                           "experiments/results_pages.py")


def index(rendered: dict[str, Rendered]) -> str:
    lines = ["# Benchmarks", "",
             "Every table on these pages is generated from the results data committed in `experiments/results/` "
             "(the JSON each experiment script writes), so the figures are the measured ones. Each page names the "
             "command that reproduces it and the hardware it ran on; CPU-seconds and rates depend on that hardware "
             "and its load, ratios measured in one run carry over.", "",
             "| page | headline | command |", "|---|---|---|"]
    for page in PAGES:
        r = rendered[page.path]
        lines.append(f"| [{page.title}]({page.path}) | {r.headline.replace('|', '/')} | {code(r.command)} |")
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """{site path: Markdown} of the Benchmarks pages, "benchmarks/index.md" first."""
    check_coverage()
    rendered = {page.path: page.render() for page in PAGES}
    out = {f"{SITE_DIR}/index.md": index(rendered)}
    out.update({f"{SITE_DIR}/{path}": r.text for path, r in rendered.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="directory to write the pages into")
    args = parser.parse_args()
    for rel, text in pages().items():
        path = args.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path)


if __name__ == "__main__":
    main()
