"""Config composition shared by the command line and the Python API: the same Hydra config from
the same override strings (`agent=ppo env=CartPole-v1 agent.lr=1e-3`), tuned configs included."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from classic_rl.config import UserError, env_name

PACKAGE_DIR = Path(__file__).resolve().parent
GROUPS = ("agent", "env", "model", "experiment", "tuned", "suite", "tune")  # conf/ groups: presets, not keys
USER_GROUPS = ("agent", "env", "model", "experiment")  # the ones --help lists


def config_dir() -> Path:
    """conf/ inside the installed package, or the top-level conf/ of a source checkout."""
    for candidate in (PACKAGE_DIR / "conf", PACKAGE_DIR.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise SystemExit("classic_rl: error: the conf/ directory is missing from this installation; reinstall")


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def register_resolvers() -> None:
    """OmegaConf resolvers of the config files: run directory names (conf/config.yaml) and
    `${vector_steps:K}`, the env steps of K vector steps at the run's env.num_envs (a budget or a
    cadence that keeps its meaning when env.num_envs changes: conf/tuned/ppo_CartPole-v1.yaml)."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("env_name", env_name, replace=True)
    OmegaConf.register_new_resolver("vector_steps", vector_steps, replace=True)


def vector_steps(count: Any, *, _root_: Any) -> int:
    """`${vector_steps:K}`: K x env.num_envs env steps."""
    try:
        return int(count) * int(_root_.env.num_envs)
    except (TypeError, ValueError) as err:
        raise UserError(f"${{vector_steps:{count}}} needs a whole number of vector steps and an integer "
                        f"env.num_envs ({err})") from None


def explain_hydra_error(err: Exception, overrides: list[str]) -> str:
    """Turn a Hydra composition error into one line that names the key and the fix."""
    text = str(err)
    try:
        parsed = parse_overrides(overrides)
    except UserError:
        return f"could not parse the overrides: {text.splitlines()[0]}"
    for override in parsed:
        key = override.key_or_group
        if key in ("agent", "env", "model"):
            value = override.value()
            if isinstance(value, str) and value not in group_options(key):
                return f"unknown {key} {value!r}; available: {', '.join(group_options(key))}"
        if f"'{key}'" in text and "To append to your config use" in text and isinstance(override.value(), dict):
            return (f"'{override.input_line}' adds keys the config does not have inside '{key}'; write it with a "
                    f"leading +: '+{override.input_line}'")
        if f"'{key}'" in text and ("not in struct" in text or "Could not override" in text):
            return f"unknown config key '{key}'; check the spelling (valid keys: python -m classic_rl --cfg job)"
    return text.strip().splitlines()[0]


def parse_overrides(overrides: list[str]) -> list:
    """Hydra's parsed overrides; one-line UserError for a malformed one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except Exception as err:
        raise UserError(f"could not parse the overrides: {str(err).strip().splitlines()[0]}") from None


def value_of(overrides: list[str], key: str) -> Any:
    for override in parse_overrides(overrides):
        if override.key_or_group.lstrip("+~") == key and not override.is_delete():
            return override.value()
    return None


def checkpoint_dir(resume: str) -> Path:
    from classic_rl import checkpoint as ckpt

    return ckpt.resolve(resume).parent


def resume_config(overrides: list[str]) -> dict[str, Any]:
    """resume=PATH: the checkpoint's own config with the overrides' key=value on top (run.check_resume
    then allows only the keys that are safe to change mid-run). A preset switch (agent=, env=,
    +experiment=, ...) is refused: it would silently swap the run's whole config."""
    from omegaconf import OmegaConf

    from classic_rl import checkpoint as ckpt

    resume = str(value_of(overrides, "resume"))
    payload = ckpt.load(resume)
    conf = OmegaConf.create(payload["config"])
    for override in parse_overrides(overrides):
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


def compose(overrides: list[str] | tuple[str, ...] = ()) -> tuple[dict[str, Any], Path]:
    """(the run's config, its default run directory) for these overrides, exactly as
    `python -m classic_rl OVERRIDES` composes them; resume=PATH gives the checkpoint's config and
    directory. One-line ConfigError / UserError."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    overrides = [str(o) for o in overrides]
    user = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    if value_of(user, "resume") is not None and value_of(user, "mode") not in ("eval", "export"):
        config = resume_config(user)
        return config, checkpoint_dir(config["resume"])
    register_resolvers()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=overrides, return_hydra_config=True)
            HydraConfig.instance().set_config(cfg)
            run_dir = Path(str(cfg.hydra.run.dir))
            with open_dict(cfg):
                del cfg["hydra"]
            config = OmegaConf.to_container(cfg, resolve=True)
    except UserError:
        raise
    except Exception as err:  # Hydra/OmegaConf errors in the overrides are user mistakes
        raise UserError(explain_hydra_error(err, user)) from None
    return config, run_dir


def unique_dir(path: Path) -> Path:
    """`path`, or path-1, path-2, ... : the first that does not exist (two runs started in one second)."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")
