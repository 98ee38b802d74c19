"""`python -m classic_rl agent=dqn env=CartPole-v1` — the Hydra entry point (thin).

User mistakes (unknown key, wrong type, out-of-range value, unknown agent or env, missing or unsafe
checkpoint, a resume that would change the run, a directory that holds another run, incompatible
agent/env) end with ONE line on stderr and exit code 2, never a traceback, and before anything is
written: single runs are checked before Hydra starts; every job (multirun too) is checked again at
start. A run stopped by Ctrl-C exits with 130, by SIGTERM with 143; a diverged run with 1.
"""

from __future__ import annotations

import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

from classic_rl.config import ConfigError, UserError

PACKAGE_DIR = Path(__file__).resolve().parent


def config_dir() -> Path:
    """conf/ inside the installed package, or the top-level conf/ of a source checkout."""
    for candidate in (PACKAGE_DIR / "conf", PACKAGE_DIR.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise SystemExit("classic_rl: error: the conf/ directory is missing from this installation; reinstall")


def fail(message: str) -> None:
    print(f"classic_rl: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def _explain_hydra_error(err: Exception, overrides: list[str]) -> str:
    """Turn a Hydra composition error into one line that names the key and the fix."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    text = str(err)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return f"could not parse the command line: {text.splitlines()[0]}"
    for override in parsed:
        key = override.key_or_group
        if key in ("agent", "env", "model"):
            value = override.value()
            if isinstance(value, str) and value not in _group_options(key):
                return f"unknown {key} {value!r}; available: {', '.join(_group_options(key))}"
        if f"'{key}'" in text and ("not in struct" in text or "Could not override" in text):
            return f"unknown config key '{key}'; check the spelling (valid keys: python -m classic_rl --cfg job)"
    return text.strip().splitlines()[0]


GROUPS = ("agent", "env", "model", "experiment", "tuned", "suite", "tune")  # conf/ groups: presets, not keys
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells report it


def _parse(overrides: list[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_overrides(overrides)
    except Exception as err:
        fail(f"could not parse the command line: {str(err).strip().splitlines()[0]}")


def _value_of(overrides: list[str], key: str) -> Any:
    for override in _parse(overrides):
        if override.key_or_group.lstrip("+~") == key and not override.is_delete():
            return override.value()
    return None


def resume_config(overrides: list[str]) -> dict[str, Any]:
    """resume=PATH: the checkpoint's own config with the command line's key=value overrides on top
    (run.check_resume then allows only the keys that are safe to change mid-run). A preset switch
    (agent=, env=, +experiment=, ...) is refused: it would silently swap the run's whole config."""
    from omegaconf import OmegaConf

    from classic_rl import checkpoint as ckpt

    resume = str(_value_of(overrides, "resume"))
    payload = ckpt.load(resume)
    conf = OmegaConf.create(payload["config"])
    for override in _parse(overrides):
        key = override.key_or_group
        if key.startswith("hydra") or key == "resume":
            continue
        if key.lstrip("+~") in GROUPS or override.is_delete():
            raise UserError(f"resume={resume} continues that run with its own config; '{override.input_line}' "
                            "would switch a preset; start a new run for that")
        OmegaConf.update(conf, key.lstrip("+"), override.value(), force_add=True)
    config = OmegaConf.to_container(conf, resolve=True)
    config["resume"] = resume
    return config


def _explicit_run_dir(args: list[str]) -> Path | None:
    value = _value_of([a for a in args if a.lstrip("+").startswith("hydra.run.dir")], "hydra.run.dir")
    return None if value is None or "$" in str(value) else Path(str(value))


def precheck(args: list[str]) -> None:
    """Compose and validate a single run's config before Hydra starts (and creates a run directory):
    one-line errors, and nothing written when they fire."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from classic_rl.run import load_config, preflight

    user = [o for o in args if not o.lstrip("+~").startswith("hydra")]
    run_dir = _explicit_run_dir(args)
    try:
        if _value_of(user, "resume") is not None and _value_of(user, "mode") != "eval":
            data = resume_config(user)
            run_dir = run_dir or _checkpoint_dir(data["resume"])
        else:
            try:
                with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
                    cfg = compose(config_name="config", overrides=user)
                data = OmegaConf.to_container(cfg, resolve=True)
            except Exception as err:  # Hydra/OmegaConf errors on the command line are user mistakes
                fail(_explain_hydra_error(err, user))
        cfg, _ = load_config(data)
        preflight(cfg, data, run_dir if cfg.mode == "train" else None)
    except (ConfigError, UserError) as err:
        fail(str(err))


def _checkpoint_dir(resume: str) -> Path:
    from classic_rl import checkpoint as ckpt

    return ckpt.resolve(resume).parent


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

    return resume_config(task) if _value_of(task, "resume") is not None else OmegaConf.to_container(cfg, resolve=True)


def main() -> None:
    args = sys.argv[1:]
    if not [a for a in args if a.startswith("-")]:  # --multirun, --help, --cfg ... go straight to Hydra
        precheck(args)
        resume = _value_of([o for o in args if not o.lstrip("+~").startswith("hydra")], "resume")
        if resume is not None:  # continue in the run's own directory, leaving its .hydra/ as the run began
            if _explicit_run_dir(args) is None:
                sys.argv.append(f"hydra.run.dir='{_checkpoint_dir(str(resume))}'")
            sys.argv.append("hydra.output_subdir=null")

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
                print(f"classic_rl: error: {err}", file=sys.stderr)
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


if __name__ == "__main__":
    main()
