"""Build env + agent + logger from a composed config and hand them to the trainer (or evaluate)."""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium
import torch
import yaml

from classic_rl import agents, checkpoint as ckpt, distributed, envs
from classic_rl.config import ConfigError, EnvConfig, RunConfig, UserError, from_dict, is_text_env
from classic_rl.envs.torch_env import compile_pays
from classic_rl.evaluate import evaluate, evaluate_samples, record_video
from classic_rl.files import RunLock, atomic_write_text, clean_stale_temp_files
from classic_rl.logger import Logger, console
from classic_rl.trainer import Trainer


def load_config(data: dict[str, Any]) -> tuple[RunConfig, Any]:
    """Validate a composed config dict -> (RunConfig, the agent's typed config). One-line errors."""
    data = dict(data)
    data.pop("hydra", None)
    if not isinstance(data.get("agent"), dict):
        raise ConfigError("config key 'agent' is required; pass agent=NAME, e.g. agent=dqn")
    cfg = from_dict(RunConfig, data)
    return cfg, agents.make_config(cfg.agent)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but torch sees no CUDA device; use device=cpu or device=auto")
    return torch.device(name)


def make_text_task(cfg: EnvConfig, objects: dict[str, Any] | None = None) -> Any:
    """A text env's task (envs/text_tasks.py) from the env's keys, or None for other envs. `objects`:
    the Python API's dataset, eval_dataset and reward_funcs, used instead of the keys. Checks the
    files, columns and reward functions (one line each) without a language model."""
    if not is_text_env(cfg.name):
        return None
    objects = {k: v for k, v in (objects or {}).items() if v is not None}
    return envs.make_task(
        cfg.name, dataset=objects.get("dataset", cfg.dataset), eval_dataset=objects.get("eval_dataset", cfg.eval_dataset),
        reward_funcs=objects.get("reward_funcs", cfg.reward_funcs), reward_weights=cfg.reward_weights,
        system_prompt=cfg.system_prompt, format_pattern=cfg.format_pattern, dataset_size=cfg.dataset_size,
        dataset_seed=cfg.dataset_seed, eval_dataset_size=cfg.eval_dataset_size, max_new_tokens=cfg.max_new_tokens,
        generator_options=cfg.kwargs)


def make_env(cfg: EnvConfig, device: torch.device, seed: int, num_envs: int | None = None, tokenizer: Any = None,
             evaluation: bool = False, source: Any = None, task: Any = None, compile: bool | None = None, **extra: Any):
    """The training env, or with `evaluation` the evaluation env: no groups, and a text env's held-out split.
    `compile`: whether to compile a torch-native step (None: env.compile, where auto means no).

    `source`: an env object from the Python API (envs.make's objects) instead of cfg.id / cfg.entry_point.
    `task`: a text env's task (make_text_task); built from the keys when None."""
    if task is None and source is None:
        task = make_text_task(cfg)
    env = envs.make(
        cfg.id if source is None else source,
        num_envs=num_envs or cfg.num_envs,
        device=device,
        seed=seed,
        backend=cfg.backend,
        max_episode_steps=cfg.max_episode_steps,
        compile=(cfg.compile is True) if compile is None else compile,
        discretize=cfg.discretize,
        group_size=1 if evaluation else cfg.group_size,
        tokenizer=tokenizer,
        max_new_tokens=cfg.max_new_tokens,
        split="eval" if evaluation else "train",
        chat_template=cfg.chat_template,
        entry_point=cfg.entry_point if source is None else None,
        vectorization_mode=cfg.vectorization_mode,
        task=task,
        **cfg.kwargs,
        **extra,
    )
    if cfg.reward_threshold is not None:  # env.reward_threshold overrides the env's own
        env.spec = dataclasses.replace(env.spec, reward_threshold=cfg.reward_threshold)
    return env


def build_envs(cfg: RunConfig, device: torch.device, tokenizer: Any = None, env: Any = None,
               eval_env: Any = None, text: dict[str, Any] | None = None, reward_model: Any = None,
               shard: tuple[int, int] = (0, 1)) -> tuple[Any, Any]:
    """(training env, evaluation env) for a run: from the config, or from the Python API's env objects.

    `shard` (rank, world size): the training env is this rank's env.num_envs / world size envs, seeded
    with a stream of its own.

    An env instance (a vector env) cannot be copied for evaluation: `eval_env` is then required,
    unless it is a Gymnasium vector env whose spec names a registered id."""
    task = make_text_task(cfg.env, text) if env is None else None
    for note in task.notes if task is not None else ():
        console(f"note: {note}")
    extra: dict[str, Any] = {"reward_model": reward_model} if reward_model is not None else {}  # training env only
    if cfg.env.missing_eos_penalty is not None:
        extra["missing_eos_penalty"] = cfg.env.missing_eos_penalty
    rank, world = shard
    # env.compile=auto: the training env is compiled when the run is long enough to repay it; evaluation never
    compile = cfg.env.compile if isinstance(cfg.env.compile, bool) else compile_pays(cfg.train.total_steps //
                                                                                    cfg.env.num_envs)
    train_env = make_env(cfg.env, device, cfg.seed + SHARD_SEED_STRIDE * rank, num_envs=cfg.env.num_envs // world,
                         tokenizer=tokenizer, source=env, task=task, compile=compile, **extra)
    episodes = cfg.eval.episodes
    source = eval_env if eval_env is not None else env
    if source is not None and (envs.is_vector_env(source) or isinstance(source, gymnasium.vector.VectorEnv)):
        if eval_env is None:
            spec = getattr(source, "spec", None)
            if isinstance(source, gymnasium.vector.VectorEnv) and spec is not None and spec.id in gymnasium.registry:
                source = spec.id
            else:
                train_env.close()
                raise UserError("env= is an env instance, which evaluation cannot copy; pass eval_env= too (with at "
                                f"least eval.episodes = {episodes} envs), or env= a function that returns a "
                                "gymnasium.Env")
        elif source.num_envs < episodes:
            train_env.close()
            raise UserError(f"eval_env has {source.num_envs} envs; evaluation runs eval.episodes = {episodes} "
                            "episodes at once and needs at least that many")
    evaluation = make_env(cfg.env, device, cfg.eval.seed, num_envs=episodes, tokenizer=tokenizer, evaluation=True,
                          source=source, task=task)
    return train_env, evaluation


def keep_freed_memory(limit_bytes: int = 256 << 20) -> None:
    """Let glibc's malloc reuse freed memory instead of handing it back to the OS: blocks up to
    `limit_bytes` come from the heap (not a fresh mmap each), and up to 2 GiB freed at the heap's top
    stays mapped (M_TRIM_THRESHOLD; mallopt takes an int).

    Otherwise every CPU tensor over a few MiB, and every update's gradients once freed, fault their
    pages in again on first touch: a relu on a [16384, 32] batch took 10x the op's own time, and a
    SmolLM2 backward 1.0-1.4 s instead of 0.63 s (120k page faults). The peak memory is unchanged; the
    resident memory stays near it between updates. PyTorch's CPU performance guide suggests
    jemalloc/tcmalloc for the same reason; mallopt gets it with nothing to install. A no-op where the C
    library has no mallopt (macOS, Windows, musl).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    while limit_bytes >= 1 << 20 and not mallopt(m_mmap_threshold, limit_bytes):  # older glibc: at most 32 MiB
        limit_bytes //= 2
    mallopt(m_trim_threshold, 2**31 - 1)


SHARD_SEED_STRIDE = 1_000_003  # rank r of a torchrun run seeds its envs (and sampling) with seed + r * this


def check_budget(cfg: RunConfig, agent: Any, payload: dict[str, Any] | None) -> None:
    """A rollout agent whose first rollout ends after train.total_steps would never update: one line."""
    steps = getattr(agent, "rollout_steps", None)
    if steps is None or payload is not None:
        return
    rollout = steps * cfg.env.num_envs
    if cfg.train.total_steps < rollout:
        raise ConfigError(f"config key 'train.total_steps' = {cfg.train.total_steps} is less than one rollout of "
                          f"agent={cfg.agent['name']} ({steps} steps x {cfg.env.num_envs} envs = {rollout} env steps), so "
                          f"it would never update; raise train.total_steps or lower agent.rollout_steps")


def learns_from_pairs(agent_cfg: Any) -> bool:
    """An offline agent that trains on a pair file: the reward model, DPO with agent.pairs."""
    return getattr(agent_cfg, "pairs", None) is not None or agent_cfg.name == "reward_model"


def check_world(cfg: RunConfig, payload: dict[str, Any] | None, agent_cfg: Any = None) -> None:
    """Several ranks (torchrun): what they can run, one line each, before any rank starts."""
    world = distributed.world_size()
    if agent_cfg is not None:
        agents.check_data_parallel(agent_cfg)
    if agent_cfg is not None and learns_from_pairs(agent_cfg):  # every rank takes an equal part of each batch
        distributed.check_divides(agent_cfg.batch_size, "agent.batch_size")
    if cfg.mode != "train" and world > 1:
        raise UserError(f"mode={cfg.mode} runs in one process; start it without torchrun")
    if cfg.env.num_envs % world:
        raise UserError(f"env.num_envs = {cfg.env.num_envs} is not divisible by the {world} processes torchrun "
                        f"started; pass a multiple of {world} (each process steps env.num_envs / {world} envs)")
    if (cfg.env.num_envs // world) % cfg.env.group_size:
        raise UserError(f"env.num_envs = {cfg.env.num_envs} on {world} processes gives each "
                        f"{cfg.env.num_envs // world} envs, not a multiple of env.group_size = {cfg.env.group_size}; "
                        f"pass a multiple of {world * cfg.env.group_size} (each process steps whole groups)")
    if payload is not None and payload.get("world_size", 1) != world:
        raise UserError(f"resume={cfg.resume}: the run trained on {payload.get('world_size', 1)} processes, not "
                        f"{world}; resume it with torchrun --nproc_per_node={payload.get('world_size', 1)}")


# keys a resumed run may change: how long it runs and what it logs, not what it learns
RESUMABLE_KEYS = ("train.total_steps", "train.checkpoint_every_steps", "train.torch_threads", "eval.", "logger.",
                  "device", "resume", "skip_finished", "hydra.")
RUN_FILES = ("config.yaml", "checkpoint.pt", "summary.json", "metrics.jsonl", "episodes.csv")


class RunDiverged(RuntimeError):
    """Training met a non-finite loss or gradient norm; summary.json says where (its "diverged")."""


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"agent": {"lr": 1}} -> {"agent.lr": 1}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_resume(config: dict[str, Any], saved: dict[str, Any], source: Path) -> None:
    """A resumed run keeps its checkpoint's config but for RESUMABLE_KEYS; one line naming the first other key."""
    new, old = flatten(config), flatten(saved)
    for key in sorted(set(new) | set(old)):
        if key.startswith(RESUMABLE_KEYS) or key in RESUMABLE_KEYS:
            continue
        if new.get(key) != old.get(key):
            raise UserError(f"resume={source}: config key '{key}' = {new.get(key)!r} differs from the run's "
                            f"{old.get(key)!r}; a resumed run may change only train.total_steps, "
                            "train.checkpoint_every_steps, train.torch_threads, eval.*, logger.* and device "
                            "(start a new run to change the rest)")


def holds_run(run_dir: Path) -> bool:
    return any((Path(run_dir) / name).exists() for name in RUN_FILES)


def check_reward_model_dir(path: str) -> Path:
    """env.reward_model: the run directory (or checkpoint.pt) of an agent=reward_model run; one-line errors."""
    checkpoint = Path(path).expanduser()
    checkpoint = checkpoint / ckpt.FILENAME if checkpoint.is_dir() else checkpoint
    config_path = checkpoint.parent / "config.yaml"
    if not checkpoint.is_file() or not config_path.is_file():
        raise UserError(f"env.reward_model={path} is not a reward-model run (no checkpoint.pt and config.yaml there); "
                        "pass the run directory of an agent=reward_model run")
    try:
        name = (yaml.safe_load(config_path.read_text()) or {}).get("agent", {}).get("name")
    except (yaml.YAMLError, AttributeError):
        name = None
    if name != "reward_model":
        raise UserError(f"env.reward_model={path} is an agent={name} run, not a reward model; pass the run "
                        "directory of an agent=reward_model run")
    return checkpoint


def load_reward_model(path: str, device: torch.device) -> Any:
    """A reward-model run as a text env's reward function: fn(prompts, completions) -> scores."""
    agent, _, _, _ = restore_agent(ckpt.load(check_reward_model_dir(path)), str(device))
    return agent.score


def preflight(cfg: RunConfig, config: dict[str, Any], run_dir: Path | None,
              env_object: bool = False, text: dict[str, Any] | None = None,
              agent_cfg: Any = None) -> dict[str, Any] | None:
    """The checks a run makes before it writes anything: device, mode keys, the checkpoint (read
    safely) and its config, the model path, and that `run_dir` (when known) holds no other run.
    Returns the checkpoint's payload when resuming. One-line UserError / ConfigError.
    `env_object`: the Python API passed the env (or a text env's dataset or reward functions) as objects."""
    resolve_device(cfg.device)
    if cfg.mode == "train" and cfg.eval.samples > 1 and not is_text_env(cfg.env.name):
        raise UserError(f"eval.samples={cfg.eval.samples} (pass@k, maj@k) applies to text envs; env={cfg.env.name} "
                        "is evaluated with its deterministic policy: leave eval.samples=1")
    if cfg.mode == "train" and (not cfg.env.python_object or env_object):
        make_text_task(cfg.env, text)  # dataset file, prompt column, reward functions: before any model loads
    if cfg.env.python_object and not env_object:
        raise UserError(f"this run trained on a Python env object ({cfg.env.name}), which a config cannot rebuild; "
                        "continue or evaluate it from Python: classic_rl.train('resume=RUN_DIR', env=...) or "
                        "classic_rl.load(RUN_DIR, env=...)")
    if cfg.mode == "train" and cfg.checkpoint:
        raise UserError(f"checkpoint={cfg.checkpoint} is read only with mode=eval and mode=export; to continue "
                        "training a run pass resume=PATH instead")
    if cfg.mode != "train" and cfg.resume:
        raise UserError(f"resume={cfg.resume} continues training and is not read with mode={cfg.mode}; "
                        f"pass checkpoint=PATH to {cfg.mode} a run")
    if cfg.mode == "train" and agent_cfg is not None and learns_from_pairs(agent_cfg):
        from classic_rl.agents.reward_model import load_pair_data

        load_pair_data(agent_cfg, cfg.seed, [])  # the pair files, before any model loads
    if cfg.mode == "train" and cfg.env.reward_model:
        if not is_text_env(cfg.env.name):
            raise UserError(f"env.reward_model scores language-model completions; env={cfg.env.name} is not a text "
                            "env: leave env.reward_model unset")
        check_reward_model_dir(cfg.env.reward_model)
    if cfg.env.missing_eos_penalty is not None and not is_text_env(cfg.env.name):
        raise UserError(f"env.missing_eos_penalty penalises language-model completions cut off without EOS; "
                        f"env={cfg.env.name} is not a text env: leave env.missing_eos_penalty unset")
    if cfg.model is not None and cfg.model.path and cfg.model.name in ("path", "tiny"):
        from classic_rl.lm.model import check_model_dir

        check_model_dir(Path(cfg.model.path).expanduser())
    if cfg.mode != "train":
        saved = ckpt.load(cfg.checkpoint)["config"]
        if saved.get("env", {}).get("python_object"):
            raise UserError(f"checkpoint={cfg.checkpoint} trained on a Python env object, which a config cannot "
                            "rebuild; load it from Python: classic_rl.load(RUN_DIR, env=...)")
        if cfg.mode == "export":
            out = Path(cfg.export.dir).expanduser() if cfg.export.dir else ckpt.resolve(cfg.checkpoint).parent / "export"
            if out.exists():
                raise UserError(f"export.dir={out} already exists; pass another export.dir (an export is never "
                                "overwritten)")
        return None
    payload = None
    resumes_here = False
    if cfg.resume:
        payload = ckpt.load(cfg.resume)
        source = ckpt.resolve(cfg.resume).parent
        check_resume(config, payload["config"], source)
        resumes_here = run_dir is not None and source.resolve() == Path(run_dir).resolve()
    if run_dir is not None and holds_run(run_dir) and not resumes_here:
        raise UserError(f"{run_dir} already holds a run; continue it with resume={run_dir}, or pass another "
                        "hydra.run.dir for a new run")
    return payload


def main(config: dict[str, Any], run_dir: str | Path, callbacks: Sequence[Any] = (), env: Any = None,
         eval_env: Any = None, text: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one job (train or eval) in `run_dir`; returns its summary.

    Checks everything it can before writing (`preflight`), holds `run_dir/.lock` while it runs, and
    writes config.yaml, checkpoint.pt and summary.json atomically. A run that meets a non-finite loss
    or gradient norm writes its summary (with "diverged") and raises RunDiverged.

    `callbacks` (training only): classic_rl/callbacks.py. `env`, `eval_env`: env objects from the
    Python API (classic_rl.train) used instead of the config's env; `text`: a text env's dataset,
    eval_dataset and reward_funcs as Python objects; config["env"]["python_object"] must then be true."""
    cfg, agent_cfg = load_config(config)
    run_dir = Path(run_dir)
    if cfg.mode == "train" and cfg.skip_finished and holds_run(run_dir):
        if (finished := finished_summary(run_dir, config)) is not None:
            console(f"skip: {run_dir} already holds a finished run of this config (skip_finished=true)")
            return finished
        if interrupted_run(run_dir, config):  # a suite run stopped by a signal: continue it
            config = {**config, "resume": str(run_dir)}
            cfg, agent_cfg = load_config(config)
    objects = env is not None or any(v is not None for v in (text or {}).values())
    if distributed.launched():  # one of the processes of a torchrun run
        distributed.setup(resolve_device(cfg.device))
        if not distributed.is_main():  # rank 0 writes the run; the others keep their files out of it
            run_dir = Path(tempfile.mkdtemp(prefix=f"classic_rl-rank{distributed.rank()}-"))
    try:
        payload = preflight(cfg, config, run_dir if cfg.mode == "train" else None, env_object=objects, text=text,
                            agent_cfg=agent_cfg)
        check_world(cfg, payload, agent_cfg)
        failed = None
    except (ConfigError, UserError) as err:
        failed = err
    if distributed.any_rank(failed is not None):  # every rank starts, or none does
        if distributed.world_size() > 1 and not distributed.is_main():
            shutil.rmtree(run_dir, ignore_errors=True)
        distributed.shutdown()
        raise failed or UserError("another process of this torchrun run failed to start (its error is in its "
                                  "output); nothing was written")
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with RunLock(run_dir):
            clean_stale_temp_files(run_dir)
            device = resolve_device(cfg.device)
            torch.set_num_threads(cfg.train.torch_threads)
            keep_freed_memory()
            if cfg.mode == "eval":
                return evaluate_checkpoint(cfg, run_dir, device)
            summary = _train(cfg, agent_cfg, config, run_dir, distributed.setup(device), payload, callbacks, env,
                             eval_env, text)
            return distributed.from_main_object(summary)  # the run's, once rank 0 has written all of it
    except (ConfigError, UserError):  # found before anything was written (agent/env mismatch, model path)
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise
    finally:
        if distributed.world_size() > 1 and not distributed.is_main():
            shutil.rmtree(run_dir, ignore_errors=True)
        distributed.shutdown()


def _train(cfg: RunConfig, agent_cfg: Any, config: dict[str, Any], run_dir: Path, device: torch.device,
           payload: dict[str, Any] | None, callbacks: Sequence[Any], env_object: Any, eval_object: Any,
           text: dict[str, Any] | None) -> dict[str, Any]:
    reward_model = load_reward_model(cfg.env.reward_model, device) if cfg.env.reward_model else None
    lm = load_model(cfg, device)
    tokenizer = lm.tokenizer if lm is not None else None
    rank, world = distributed.rank(), distributed.world_size()
    env, eval_env = build_envs(cfg, device, tokenizer, env_object, eval_object, text, reward_model, (rank, world))
    try:
        agent = agents.make(agent_cfg, env.spec, seed=cfg.seed, lm=lm)  # the same networks on every rank
        check_budget(cfg, agent, payload)
    except (ConfigError, UserError):
        env.close()
        eval_env.close()
        raise
    if world > 1:
        if hasattr(agent, "generator"):  # its own sampling stream
            agent.generator.manual_seed(cfg.seed + 1 + SHARD_SEED_STRIDE * rank)
        if rank:
            cfg = dataclasses.replace(cfg, logger=dataclasses.replace(cfg.logger, tensorboard=False, progress=False))
    say = console if rank == 0 else (lambda text: None)
    say(f"classic_rl: {'resume' if payload else 'train'} {agent_cfg.name} on {cfg.env.name}, device {device}, "
        f"run directory {run_dir}" + (f", {world} processes" if world > 1 else ""))
    if payload is not None:  # continue the logs in a new run directory
        source_dir = ckpt.resolve(cfg.resume).parent
        if source_dir.resolve() != run_dir.resolve():
            for name in ("episodes.csv", "metrics.jsonl"):
                if (source_dir / name).exists():
                    shutil.copyfile(source_dir / name, run_dir / name)
    start_step = payload["trainer"]["env_steps"] if payload else 0
    logger = Logger(run_dir, cfg.logger, cfg.train.total_steps, start_step=start_step, quiet=rank != 0)
    for note in [*logger.notes, *getattr(agent, "notes", [])]:
        logger.message(note)
    resolved = yaml.safe_dump(config, sort_keys=False)
    atomic_write_text(run_dir / "config.yaml", resolved)
    logger.text("config", resolved)
    logger.hparams({**dataclasses.asdict(cfg), "agent": dataclasses.asdict(agent_cfg)})  # every key, defaults too
    trainer = Trainer(
        env, eval_env, agent, logger, cfg.train, cfg.eval, run_dir, cfg.seed + SHARD_SEED_STRIDE * rank,
        extra_checkpoint={"config": config, "format": ckpt.FORMAT, **({"world_size": world} if world > 1 else {})},
        callbacks=callbacks,
    )
    if payload:
        trainer.load_checkpoint(payload)
    try:
        summary = {"agent": agent_cfg.name, "env": cfg.env.name, "seed": cfg.seed, **trainer.run()}
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
        if "diverged" in summary:
            d = summary["diverged"]
            raise RunDiverged(f"training diverged: {d['what']} was not finite at env step {d['step']}; "
                              f"{run_dir}/checkpoint.pt is the last good one (lower agent.lr or set "
                              "agent.max_grad_norm)")
        logger.hparam_metrics(summary["env_steps"], summary)
        if hasattr(agent, "save_artifacts"):  # optional agent hook: pictures of what it learned (policy.png)
            agent.save_artifacts(run_dir, env)
        write_samples(eval_env, run_dir)
    finally:
        logger.close()
        env.close()
        eval_env.close()
    say(f"classic_rl: {summary_line(summary)}\nclassic_rl: run directory {run_dir}; "
        f"curves: tensorboard --logdir {run_dir}")
    return summary


def summary_line(summary: dict[str, Any]) -> str:
    """One line: what ran, how far, the last evaluation, and when it first reached the threshold."""
    ret = summary.get("eval_return_mean")
    parts = [f"{summary['agent']} on {summary['env']} (seed {summary['seed']}): {summary['env_steps']} env steps "
             f"in {summary['train_seconds']:.1f} s"]
    if ret is not None:
        parts.append(f"eval return {ret:.2f} ± {summary['eval_return_std']:.2f}")
    if summary.get("solved_at_step") is not None:
        parts.append(f"reached {summary['reward_threshold']:g} at env step {summary['solved_at_step']}")
    if summary.get("interrupted"):
        parts.append(f"interrupted ({summary.get('interrupted_by')})")
    if summary.get("stopped_by_callback"):
        parts.append("stopped by a callback")
    return "; ".join(parts)


def finished_summary(run_dir: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The summary of a finished (not interrupted, not diverged) run of exactly `config` in `run_dir`, else None."""
    summary = _summary_of_same_config(run_dir, config)
    if summary is None or summary.get("interrupted") or summary.get("diverged"):
        return None
    return summary


def interrupted_run(run_dir: Path, config: dict[str, Any]) -> bool:
    """`run_dir` holds a run of `config` that a signal stopped, with its checkpoint."""
    summary = _summary_of_same_config(run_dir, config)
    return bool(summary and summary.get("interrupted")) and (run_dir / ckpt.FILENAME).is_file()


def _summary_of_same_config(run_dir: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    summary_path, config_path = run_dir / "summary.json", run_dir / "config.yaml"
    if not (summary_path.is_file() and config_path.is_file()):
        return None
    try:
        summary = json.loads(summary_path.read_text())
        saved = yaml.safe_load(config_path.read_text())
    except (json.JSONDecodeError, yaml.YAMLError):
        return None
    same = isinstance(saved, dict) and {**saved, "resume": None} == {**config, "resume": None}
    return summary if same else None


def write_samples(eval_env: Any, run_dir: Path) -> None:
    """Text envs: eval_samples.jsonl, the last evaluation's prompts, completions and rewards."""
    if getattr(eval_env, "last_samples", None):
        with (run_dir / "eval_samples.jsonl").open("w") as f:
            f.writelines(json.dumps(sample) + "\n" for sample in eval_env.last_samples)


def load_model(cfg: RunConfig, device: torch.device):
    """The run's language model (text envs), or None."""
    if cfg.model is None:
        return None
    from classic_rl.lm.model import load

    return load(cfg.model, device, seed=cfg.seed)


def restore_agent(payload: dict[str, Any], device: str | None = None, env: Any = None,
                  text: dict[str, Any] | None = None) -> tuple[Any, Any, RunConfig, Any]:
    """(agent with the checkpoint's weights, its env spec, the run's RunConfig, tokenizer or None) from a
    checkpoint payload. `env`: the env object of a run trained on one (Python API). One-line UserError."""
    saved_cfg, agent_cfg = load_config(payload["config"])
    if saved_cfg.env.python_object and env is None and not any(v is not None for v in (text or {}).values()):
        raise UserError(f"this run trained on a Python env object ({saved_cfg.env.name}), which a config cannot "
                        "rebuild; pass it again: classic_rl.load(RUN_DIR, env=...)")
    resolved = resolve_device(device or saved_cfg.device)
    lm = load_model(saved_cfg, resolved)
    tokenizer = lm.tokenizer if lm is not None else None
    task = make_text_task(saved_cfg.env, text) if env is None else None
    shapes = make_env(saved_cfg.env, resolved, saved_cfg.seed, tokenizer=tokenizer, source=env, task=task)  # shapes
    spec = dataclasses.replace(shapes.spec, device=resolved)
    if shapes is not env and not envs.is_vector_env(env) and not isinstance(env, gymnasium.vector.VectorEnv):
        shapes.close()  # made here; an env the caller built stays open
    agent = agents.make(agent_cfg, spec, seed=saved_cfg.seed, lm=lm)
    agent.load_state_dict({**payload["agent"], "buffer": None})
    return agent, spec, saved_cfg, tokenizer


def evaluate_checkpoint(cfg: RunConfig, run_dir: Path, device: torch.device) -> dict[str, Any]:
    """mode=eval: load the checkpoint's agent and env, evaluate it (and record a video if asked)."""
    payload = ckpt.load(cfg.checkpoint)
    agent, _, saved_cfg, tokenizer = restore_agent(payload, str(device))
    eval_env = make_env(saved_cfg.env, device, cfg.eval.seed, num_envs=cfg.eval.episodes, tokenizer=tokenizer,
                        evaluation=True)
    if hasattr(agent, "evaluation"):  # a reward model: pairwise accuracy on its held-out pairs
        returns, lengths, extra = agent.evaluation()
        result = {"agent": saved_cfg.agent["name"], "env": saved_cfg.env.name,
                  "checkpoint": str(ckpt.resolve(cfg.checkpoint)), "eval_return_mean": float(returns.mean()),
                  "eval_return_std": float(returns.std()), "eval_episodes": int(len(returns)),
                  **{f"eval_{k}": v for k, v in extra.items()}}
        atomic_write_text(run_dir / "eval.json", json.dumps(result, indent=2))
        eval_env.close()
        console(f"eval {result['agent']} on {result['env']}: held-out pairwise accuracy "
                f"{result['eval_return_mean']:.3f} over {result['eval_episodes']} pairs")
        return result
    returns, lengths = evaluate(agent, eval_env, cfg.eval.episodes, cfg.eval.seed)
    if cfg.eval.samples > 1 and not is_text_env(saved_cfg.env.name):
        raise UserError(f"eval.samples={cfg.eval.samples} (pass@k, maj@k) applies to text envs; leave eval.samples=1")
    sampled = {"pass@1": float((returns >= cfg.eval.correct_reward).mean())} if eval_env.spec.text else {}
    if cfg.eval.samples > 1:
        sampled.update(evaluate_samples(agent, eval_env, cfg.eval.episodes, cfg.eval.seed, cfg.eval.samples,
                                        cfg.eval.correct_reward))
    result = {
        "agent": saved_cfg.agent["name"], "env": saved_cfg.env.name, "checkpoint": str(ckpt.resolve(cfg.checkpoint)),
        "eval_return_mean": float(returns.mean()), "eval_return_std": float(returns.std()),
        "eval_episodes": int(len(returns)), "eval_length_mean": float(lengths.mean()),
        **{f"eval_{k}": v for k, v in sampled.items()},
    }
    if cfg.eval.video:
        video_env = make_env(saved_cfg.env, device, cfg.eval.seed, num_envs=1,
                             **({} if saved_cfg.env.id in envs.DYNAMICS and saved_cfg.env.backend != "gymnasium"
                                else {"render_mode": "rgb_array"}))
        path = run_dir / "videos" / "eval.mp4"
        result["video_frames"] = record_video(agent, video_env, path, cfg.eval.seed)
        result["video"] = str(path)
    atomic_write_text(run_dir / "eval.json", json.dumps(result, indent=2))
    write_samples(eval_env, run_dir)
    eval_env.close()
    console(f"eval {result['agent']} on {result['env']}: return {result['eval_return_mean']:.2f} "
          f"± {result['eval_return_std']:.2f} over {result['eval_episodes']} episodes")
    return result
