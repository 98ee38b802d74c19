"""Typed, validated configuration: Hydra's YAML is mapped onto frozen dataclasses at start.

Every user-facing knob is a dataclass field here (or in an agent's config class), documented once.
A field's `metadata["check"] = (predicate, "allowed values")` gives its range. `from_dict` turns a
plain dict into a dataclass and raises `ConfigError` with ONE line naming the key and what is
allowed; the command line prints that line and exits non-zero.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union


class ConfigError(ValueError):
    """A user mistake in the configuration; its message is one line that names the key and the fix."""


class UserError(RuntimeError):
    """A user mistake found at start (missing checkpoint, agent/env mismatch, ...); one-line message."""


def check(predicate, allowed: str, doc: str = "") -> dict[str, Any]:
    """Field metadata: a range check and the human description of the allowed values."""
    return {"check": (predicate, allowed), "doc": doc}


def positive(doc: str = "") -> dict[str, Any]:
    return check(lambda v: v > 0, "> 0", doc)


def non_negative(doc: str = "") -> dict[str, Any]:
    return check(lambda v: v >= 0, ">= 0", doc)


def unit_interval(doc: str = "") -> dict[str, Any]:
    return check(lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]", doc)


# ----------------------------------------------------------------------------------------------
# dict -> dataclass with one-line errors


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (Any,)
        return f"a list of {_type_name(inner)}"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return `value` as type `tp`, or raise ConfigError naming `key`."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"config key '{key}' must be {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        allowed = ", ".join(str(a) for a in typing.get_args(tp))
        raise ConfigError(f"config key '{key}' = {value!r} is not allowed; allowed values: {allowed}")
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                last = err
        raise last
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        (inner, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad
        return from_dict(tp, value, prefix=key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # 1e5 in YAML is a float
            return int(value)
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # inf / nan: no knob of classic_rl means "unbounded" this way
                raise ConfigError(f"config key '{key}' must be a finite number, got {value!r}")
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    return value


def from_dict(cls: type, data: dict[str, Any] | None, prefix: str = "") -> Any:
    """Build dataclass `cls` from `data`, validating keys, types and ranges (one-line errors)."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    dotted = f"{prefix}." if prefix else ""
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key '{dotted}{unknown[0]}'; valid keys"
            f"{' under ' + repr(prefix) if prefix else ''}: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, f in fields.items():
        key = f"{dotted}{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"config key '{key}' is required ({_type_name(hints[name])})")
            continue
        value = _coerce(data[name], hints[name], key)
        if "check" in f.metadata and value is not None:
            predicate, allowed = f.metadata["check"]
            if not predicate(value):
                raise ConfigError(f"config key '{key}' = {value!r} is out of range; allowed: {allowed}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError as err:  # cross-field checks in __post_init__ name keys without the prefix
        raise ConfigError(str(err).replace("config key '", f"config key '{dotted}")) from None


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


# ----------------------------------------------------------------------------------------------
# the run's own sections; agent configs live beside their agents


@dataclass(frozen=True)
class DiscretizeConfig:
    """Uniform bins per observation dimension: a Box observation becomes one Discrete state index."""

    bins: Union[int, list[int]] = field(metadata=check(
        lambda v: all(b >= 1 for b in ([v] if isinstance(v, int) else v)) and v != [],
        "an integer >= 1, or a non-empty list of them (one per observation dimension)", "bins per dimension"))
    low: Optional[list[float]] = None  # per-dimension lower bounds; null: classic_rl/envs/discretize.py BOUNDS
    high: Optional[list[float]] = None  # per-dimension upper bounds; values outside go to the edge bins


@dataclass(frozen=True)
class EnvConfig:
    # a Gymnasium id (CartPole-v1), or module:Id to import the module that registers it first (gymnasium.make's
    # convention); null with entry_point
    id: Optional[str] = None
    # env=gymnasium: module:Class of an unregistered gymnasium.Env, or of a torch-native Dynamics class
    # (classic_rl/envs/torch_env.py); built with `kwargs`
    entry_point: Optional[str] = None
    # Gymnasium adapter: sync steps the envs in this process; async in one subprocess each (slow envs)
    vectorization_mode: Literal["sync", "async"] = "sync"
    num_envs: int = field(default=1, metadata=check(lambda v: v >= 1, ">= 1 (at least one env)",
                                                    "envs stepped together as one batch (a vector step)"))
    # torch: the torch-native batched env (classic control only); gymnasium: the adapter; null: torch if available
    backend: Optional[Literal["torch", "gymnasium"]] = None
    max_episode_steps: Optional[int] = field(default=None, metadata=positive())  # overrides the time limit
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra gym.make kwargs (map_name, is_slippery, ...)
    # fuse the torch-native step with torch.compile: true | false | auto (the training env, when the run
    # is long enough to get the compilation back: envs/torch_env.py compile_pays)
    compile: Union[bool, Literal["auto"]] = "auto"
    discretize: Optional[DiscretizeConfig] = None  # e.g. {bins: [6, 6, 12, 12]} for tabular agents on a Box
    reward_threshold: Optional[float] = None  # "solved" return for solved_at_*; null: the env's own (Gymnasium's)
    # lock-step rounds in which G consecutive envs share their start (GRPO's groups; envs/lockstep.py, envs/text.py)
    group_size: int = field(default=1, metadata=check(lambda v: v >= 1, ">= 1 (1: no groups)"))
    max_new_tokens: int = field(default=16, metadata=positive("text envs: tokens per completion at most"))
    chat_template: bool = True  # text envs: wrap prompts in the tokenizer's chat template when it has one
    # env=text (classic_rl/envs/text_tasks.py): a JSONL, CSV or Parquet file with a 'prompt' column (and an
    # optional 'split' column: train | eval), or reasoning_gym:NAME (the optional reasoning-gym package)
    dataset: Optional[str] = None
    eval_dataset: Optional[str] = None  # held-out rows (else the split column; else the training rows)
    dataset_size: int = field(default=1000, metadata=positive("reasoning_gym: training problems generated"))
    eval_dataset_size: int = field(default=50, metadata=positive("reasoning_gym: held-out problems generated"))
    dataset_seed: int = field(default=0, metadata=non_negative("reasoning_gym: the generator's seed"))
    # reward functions: built-in names (last_number, exact_match, format, length_penalty) or pkg.module:function
    # with TRL's signature fn(prompts, completions, **columns) -> list[float | None]; null: the task's own
    reward_funcs: Optional[list[str]] = None
    reward_weights: Optional[list[float]] = None  # one per reward function; null: all 1
    system_prompt: Optional[str] = None  # text envs: a system message before every prompt
    format_pattern: Optional[str] = None  # reward `format`: a regular expression the whole completion must match
    # text envs: the run directory of an agent=reward_model run whose score is the training reward; the
    # task's own reward is logged beside it (train/true_reward_mean) and evaluation keeps it
    reward_model: Optional[str] = None
    # text envs: subtracted from the training reward of a completion that reached max_new_tokens without
    # EOS (TRL's missing_eos_penalty); a reward model scores a cut-off text as if it were finished
    missing_eos_penalty: Optional[float] = field(default=None, metadata=check(
        lambda v: v is None or v >= 0, "null or a number >= 0"))
    # set by classic_rl.train(env=OBJECT): the env was a Python object, which classic_rl.load(env=...) needs again
    python_object: bool = False

    def __post_init__(self) -> None:
        if (self.id is None) == (self.entry_point is None):
            raise ConfigError("set exactly one of config key 'id' and config key 'entry_point': env.id=CartPole-v1, "
                              "env.id=pkg.module:EnvId or env.entry_point=pkg.module:ClassName")
        if self.entry_point is not None and self.entry_point.count(":") != 1:
            raise ConfigError(f"config key 'entry_point' = {self.entry_point!r} must be module:ClassName, "
                              "e.g. mypkg.envs:GoRight")
        if self.num_envs % self.group_size:
            raise ConfigError(f"config key 'num_envs' = {self.num_envs} must be a multiple of env.group_size "
                              f"= {self.group_size}")

    @property
    def name(self) -> str:
        """The env's name in run directories and summaries: the id, or the entry point's class name."""
        return env_name(self.id, self.entry_point)


def is_text_env(name: str | None) -> bool:
    """env=text and the built-in text-* tasks: text generation, needing a language model."""
    return name is not None and (name == "text" or name.startswith("text-"))


def env_name(env_id: str | None, entry_point: str | None = None) -> str:
    """CartPole-v1 -> CartPole-v1; mypkg.envs:GoRight-v0 -> GoRight-v0; entry point mypkg.envs:GoRight -> GoRight."""
    return str(env_id if env_id is not None else entry_point).rsplit(":", 1)[-1]


@dataclass(frozen=True)
class TrainConfig:
    total_steps: int = field(default=50_000, metadata=positive("env steps, summed over envs"))
    checkpoint_every_steps: int = field(default=0, metadata=non_negative("0: only at the end"))
    save_buffer: bool = True  # store the replay buffer in checkpoints (off-policy agents)
    torch_threads: int = field(default=1, metadata=positive("CPU threads torch may use"))


@dataclass(frozen=True)
class EvalConfig:
    every_steps: int = field(default=5_000, metadata=non_negative("0: evaluate only at the end"))
    episodes: int = field(default=10, metadata=positive("episodes per evaluation (text envs: held-out prompts)"))
    early_stop: bool = False  # stop training once evaluation reaches the env's reward threshold
    at_start: bool = False  # also evaluate before the first env step (the "before" of a fine-tuning run)
    video: bool = False  # record an mp4 of the first evaluation episode (mode=eval)
    seed: int = 1_000_003  # evaluation envs are re-seeded with this every time: comparable evaluations
    # text envs: k > 1 also samples k completions per held-out prompt and reports pass@k and maj@k
    samples: int = field(default=1, metadata=positive("sampled completions per prompt (text envs)"))
    correct_reward: float = 1.0  # pass@k / maj@k: a completion is correct when its reward is at least this


@dataclass(frozen=True)
class LoggerConfig:
    tensorboard: bool = True  # write TensorBoard events (scalars, config text, HParams) to RUN_DIR/tb
    progress: bool = True  # console progress bar
    log_every_steps: int = field(default=1_000, metadata=positive("env steps between scalar logs"))


@dataclass(frozen=True)
class LoraConfig:
    r: int = field(default=0, metadata=non_negative("LoRA rank; 0: full fine-tuning"))
    alpha: float = field(default=16.0, metadata=positive("LoRA scaling α (the update is scaled by α / r)"))
    dropout: float = field(default=0.0, metadata=unit_interval("dropout on the LoRA input"))
    target_modules: Union[str, list[str]] = "all-linear"  # peft's target_modules


@dataclass(frozen=True)
class ModelConfig:
    """A causal language model for the text envs (classic_rl/lm/): `model=smollm2-135m`, `model=tiny`,
    or `model=path model.path=/local/dir` (a transformers model directory; nothing is downloaded)."""

    name: str  # smollm2-135m | tiny | path
    path: Optional[str] = None  # name=path: a local transformers directory (config.json, weights, tokenizer)
    cache_dir: str = "~/.cache/classic_rl/models"  # smollm2-135m: converted once from GGUF to safetensors here
    dtype: Literal["float32", "bfloat16"] = "float32"  # the weights' dtype
    temperature: float = field(default=1.0, metadata=positive("sampling temperature (training rollouts)"))
    lora: LoraConfig = field(default_factory=LoraConfig)
    gradient_checkpointing: bool = False  # trade compute for activation memory

    def __post_init__(self) -> None:
        if self.name == "path" and not self.path:
            raise ConfigError("config key 'path' is required with model=path; pass model.path=/a/local/dir")


@dataclass(frozen=True)
class ExportConfig:
    """mode=export (classic_rl/export.py)."""

    dir: Optional[str] = None  # where to write; null: export/ in the checkpoint's run directory (never overwritten)
    onnx: Optional[bool] = None  # also policy.onnx: null when the onnx package is installed, true requires it
    merge_lora: bool = True  # language models trained with LoRA: merged weights (true) or the adapter directory


@dataclass(frozen=True)
class RunConfig:
    agent: dict[str, Any]  # validated by the agent's own config class (agents.make_config)
    env: EnvConfig
    seed: int = field(default=0, metadata=non_negative("seeds networks, envs and sampling: a run is repeatable"))
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when torch sees a GPU, else cpu
    mode: Literal["train", "eval", "export"] = "train"  # eval and export read checkpoint=
    resume: Optional[str] = None  # path to a checkpoint.pt (or its run directory) to continue
    checkpoint: Optional[str] = None  # path to a checkpoint.pt (or its run directory) for mode=eval / mode=export
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    model: Optional[ModelConfig] = None  # a language model (text envs): model=smollm2-135m | model=tiny
    skip_finished: bool = False  # a run dir holding a finished run of this exact config returns its summary

    def __post_init__(self) -> None:
        if is_text_env(self.env.name) and self.model is None:
            raise ConfigError(f"env={self.env.name} needs a language model; pass model=smollm2-135m or model=tiny")
        if self.mode in ("eval", "export") and not self.checkpoint:
            hint = " instead of resume= (which continues training)" if self.resume else ""
            raise ConfigError(f"config key 'checkpoint' is required with mode={self.mode}; pass checkpoint=PATH{hint}")
