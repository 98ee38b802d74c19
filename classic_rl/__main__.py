"""`python -m classic_rl agent=dqn env=CartPole-v1` — the Hydra entry point (thin).

User mistakes (unknown key, wrong type, out-of-range value, unknown agent or env, missing or unsafe
checkpoint, a resume that would change the run, a directory that holds another run, incompatible
agent/env) end with ONE line on stderr and exit code 2, never a traceback, and before anything is
written: single runs are checked before Hydra starts; every job (multirun too) is checked again at
start. A run stopped by Ctrl-C exits with 130, by SIGTERM with 143; a diverged run with 1.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from classic_rl.compose import checkpoint_dir, compose, config_dir, register_resolvers, resume_config, value_of
from classic_rl.config import ConfigError, UserError

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells report it


def error_line(message: str) -> None:
    """`classic_rl: error: MESSAGE` on stderr in one write, so the lines of several processes (torchrun's
    ranks) never interleave within a line."""
    sys.stderr.write(f"classic_rl: error: {message}\n")
    sys.stderr.flush()


def fail(message: str) -> None:
    error_line(message)
    raise SystemExit(2)


def _explicit_run_dir(args: list[str]) -> Path | None:
    value = value_of([a for a in args if a.lstrip("+").startswith("hydra.run.dir")], "hydra.run.dir")
    return None if value is None or "$" in str(value) else Path(str(value))


def precheck(args: list[str]) -> dict[str, Any]:
    """Compose and validate a single run's config before Hydra starts (and creates a run directory):
    one-line errors, and nothing written when they fire. Returns the composed config."""
    from classic_rl.run import load_config, preflight

    user = [o for o in args if not o.lstrip("+~").startswith("hydra")]
    try:
        run_dir = _explicit_run_dir(args)
        data, default_dir = compose(user)
        if data.get("resume") is not None and data.get("mode") not in ("eval", "export"):
            run_dir = run_dir or default_dir  # the checkpoint's directory
        cfg, _ = load_config(data)
        preflight(cfg, data, run_dir if cfg.mode == "train" else None)
    except (ConfigError, UserError) as err:
        fail(str(err))
    return data


def _remove_unused_run_dir(run_dir: Path) -> None:
    """After a user error in a job: remove the run directory Hydra made for it, if nothing of a run is
    in it (only Hydra's .hydra/ and job log), and its parents that are left empty."""
    from classic_rl.run import holds_run

    if not run_dir.is_dir() or holds_run(run_dir):
        return
    for item in run_dir.iterdir():
        if item.name == ".hydra" and item.is_dir():
            shutil.rmtree(item)
        elif item.suffix == ".log" or item.name == ".lock":
            item.unlink()
    cwd = Path.cwd().resolve()
    path = run_dir.resolve()
    while path != cwd and cwd in path.parents and not any(path.iterdir()):
        path.rmdir()
        path = path.parent


def _job_config(cfg: Any, task: list[str]) -> dict[str, Any]:
    """A job's config: the checkpoint's own (with the safe overrides) when it resumes, else Hydra's."""
    from omegaconf import OmegaConf

    return resume_config(task) if value_of(task, "resume") is not None else OmegaConf.to_container(cfg, resolve=True)


def help_text() -> str:
    """--help: the user-facing preset groups with their options, and the main keys of conf/config.yaml
    with their comments (read from the file, so it cannot drift from the defaults)."""
    from classic_rl import __version__
    from classic_rl.compose import USER_GROUPS, group_options

    lines = [f"classic_rl {__version__}: reinforcement learning on batched torch environments", "",
             "usage: python -m classic_rl [GROUP=OPTION ...] [KEY=VALUE ...]",
             "       python -m classic_rl resume=RUN_DIR [train.total_steps=N ...]   continue a run",
             "       python -m classic_rl mode=eval checkpoint=RUN_DIR                evaluate a run",
             "       python -m classic_rl mode=export checkpoint=RUN_DIR              TorchScript / ONNX / HF files",
             "       python -m classic_rl agent=ppo env=CartPole-v1 seed=0,1,2 --multirun",
             "", "presets (GROUP=OPTION):"]
    for group in USER_GROUPS:
        prefix = "+" if group == "experiment" else ""
        lines.append(f"  {prefix + group + ':':<13} {', '.join(group_options(group))}")
    lines += ["  env=gymnasium env.id=pkg.module:EnvId | env.entry_point=pkg.module:Class   your own env",
              "", "main keys (KEY=VALUE; default, then what it does):"]
    section = ""
    for raw in (config_dir() / "config.yaml").read_text().splitlines():
        text = raw.split("#", 1)[0].rstrip()
        if not text or raw.startswith((" ", "\t")) and not section:
            continue
        indent = len(raw) - len(raw.lstrip())
        key, _, value = text.strip().partition(":")
        if indent == 0:
            section = key if not value.strip() else ""
            if section in ("defaults", "hydra") or not value.strip():
                continue
        elif section in ("defaults", "hydra", "") or indent != 2:
            continue
        name = f"{section}.{key}" if indent else key
        comment = raw.split("#", 1)[1].strip() if "#" in raw else ""
        lines.append(f"  {name + '=' + value.strip():<34} {comment}".rstrip())
    lines += ["", "every key of a run: python -m classic_rl agent=AGENT env=ENV --cfg job",
              "Python: result = classic_rl.train(\"agent=ppo\", \"env=CartPole-v1\"); classic_rl.load(result.run_dir)",
              "Hydra's own flags (--multirun, --cfg, --info, launchers): python -m classic_rl --hydra-help"]
    return "\n".join(lines)


def _export(data: dict[str, Any]) -> None:
    from classic_rl.export import export_run
    from classic_rl.run import load_config

    try:
        export_run(load_config(data)[0])
    except (ConfigError, UserError) as err:
        fail(str(err))
    except KeyboardInterrupt:
        print("classic_rl: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def main() -> None:
    args = sys.argv[1:]
    if args[:1] in (["--version"], ["-V"]):
        from classic_rl import __version__

        print(f"classic_rl {__version__}")
        return
    if "--help" in args or "-h" in args:
        print(help_text())
        return
    register_resolvers()
    if not [a for a in args if a.startswith("-")]:  # --multirun, --help, --cfg ... go straight to Hydra
        data = precheck(args)
        if data.get("mode") == "export":  # writes only export.dir: no Hydra run directory
            _export(data)
            return
        resume = value_of([o for o in args if not o.lstrip("+~").startswith("hydra")], "resume")
        if resume is not None:  # continue in the run's own directory, leaving its .hydra/ as the run began
            if _explicit_run_dir(args) is None:
                sys.argv.append(f"hydra.run.dir='{checkpoint_dir(str(resume))}'")
            sys.argv.append("hydra.output_subdir=null")

    worker_dir = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and os.environ.get("RANK", "0") != "0":
        # a torchrun process other than rank 0: rank 0 writes the run; Hydra's files of this one go to a
        # directory of its own, removed at the end
        worker_dir = tempfile.mkdtemp(prefix=f"classic_rl-rank{os.environ['RANK']}-hydra-")
        sys.argv = [a for a in sys.argv if not a.lstrip("+~").startswith("hydra.run.dir=")]
        sys.argv += [f"hydra.run.dir={worker_dir}", "hydra.output_subdir=null"]

    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import DictConfig

    from classic_rl.run import RunDiverged, main as run_main

    @hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
    def job(cfg: DictConfig) -> None:
        hydra_cfg = HydraConfig.get()
        run_dir = Path(hydra_cfg.runtime.output_dir)
        task = list(hydra_cfg.overrides.task)
        if hydra_cfg.mode != RunMode.MULTIRUN:
            try:
                summary = run_main(_job_config(cfg, task), run_dir)
            except (ConfigError, UserError) as err:
                _remove_unused_run_dir(run_dir)
                fail(str(err))
            except RunDiverged as err:
                error_line(str(err))
                raise SystemExit(1)
        else:
            # multirun (suites, sweeps): a failed job leaves error.txt in its run dir and raises an ordinary
            # exception, so the launcher records it and the other jobs go on (experiments/benchmark.py reports it)
            error_file = run_dir / "error.txt"
            error_file.unlink(missing_ok=True)
            try:
                summary = run_main(_job_config(cfg, task), run_dir)
            except (ConfigError, UserError, RunDiverged) as err:
                error_file.write_text(f"{err}\n")
                raise RuntimeError(f"classic_rl: error: {err}") from None
            except BaseException:
                error_file.write_text(traceback.format_exc())
                raise
        if summary.get("interrupted"):  # 130 / 143; a signal stops a whole sweep, not only its job
            raise SystemExit(EXIT_CODES.get(summary.get("interrupted_by"), 130))

    try:
        job()
    except KeyboardInterrupt:  # Ctrl-C outside training (loading, evaluation) or a second one: stop at once
        print("classic_rl: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if worker_dir is not None:
            shutil.rmtree(worker_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
