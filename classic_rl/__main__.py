"""`python -m classic_rl agent=dqn env=CartPole-v1` — the Hydra entry point (thin).

User mistakes (unknown key, wrong type, out-of-range value, unknown agent or env, missing
checkpoint, incompatible agent/env) end with ONE line on stderr and exit code 2, never a traceback.
Single runs are checked before Hydra starts; every job (multirun too) is checked again at start.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

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


def precheck(overrides: list[str]) -> None:
    """Compose and validate a single run's config before Hydra starts: one-line errors."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from classic_rl.run import load_config

    user = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name="config", overrides=user)
        data = OmegaConf.to_container(cfg, resolve=True)
    except Exception as err:  # Hydra/OmegaConf errors on the command line are user mistakes
        fail(_explain_hydra_error(err, user))
    try:
        load_config(data)
    except (ConfigError, UserError) as err:
        fail(str(err))


def main() -> None:
    args = sys.argv[1:]
    flags = [a for a in args if a.startswith("-")]
    if not flags:  # --multirun, --help, --cfg ... go straight to Hydra; each job validates itself
        precheck(args)

    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import DictConfig, OmegaConf

    from classic_rl.run import main as run_main

    @hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
    def job(cfg: DictConfig) -> None:
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            try:
                run_main(OmegaConf.to_container(cfg, resolve=True), hydra_cfg.runtime.output_dir)
            except (ConfigError, UserError) as err:
                fail(str(err))
            return
        # multirun (suites, sweeps): a failed job leaves error.txt in its run dir and raises an ordinary
        # exception, so the launcher records it and the other jobs go on (experiments/benchmark.py reports it)
        error_file = Path(hydra_cfg.runtime.output_dir) / "error.txt"
        error_file.unlink(missing_ok=True)
        try:
            run_main(OmegaConf.to_container(cfg, resolve=True), hydra_cfg.runtime.output_dir)
        except (ConfigError, UserError) as err:
            error_file.write_text(f"{err}\n")
            raise RuntimeError(f"classic_rl: error: {err}") from None
        except BaseException:
            error_file.write_text(traceback.format_exc())
            raise

    job()


if __name__ == "__main__":
    main()
