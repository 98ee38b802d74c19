"""THE training loop, one for every agent.

Glossary (one name per concept, everywhere in classic_rl):
    env step     one transition of ONE environment. Every step count in configs and logs
                 (train.total_steps, eval.every_steps, the x-axis of TensorBoard) counts env steps.
    vector step  one call of env.step: advances num_envs env steps at once.
    update       one call of agent.update(); it may run several gradient steps.
    episode      reset to termination or truncation of one environment; on a multi-agent env its
                 return is the team's (every agent's rewards summed).
    rollout      the batch of vector steps an on-policy agent collects before an update.
    evaluation   eval.episodes episodes of the deterministic policy on separate, re-seeded envs.
    offline      an agent that learns from a file (agent.offline: a reward model, DPO on a pair file)
                 takes no env steps: the loop calls update() alone, and a step is one training pair.

Loop: obs -> agent.act -> env.step -> agent.observe -> agent.update() when agent.ready().
Training seconds exclude evaluation and checkpoint writing.

Stopping: Ctrl-C (SIGINT) or SIGTERM ends the run at the next vector step with a checkpoint, flushed
logs and a summary marked `interrupted`; a second signal stops at once. Divergence: every update's
losses and gradient norms are checked; the first non-finite one ends the run with `diverged` in the
summary and no checkpoint written over the last good one.
"""

from __future__ import annotations

import math
import signal
import time
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from classic_rl import checkpoint as ckpt, distributed
from classic_rl.agents.base import Agent, Transition
from classic_rl.config import EvalConfig, TrainConfig
from classic_rl.envs.base import VectorEnv
from classic_rl.evaluate import evaluate, evaluate_samples
from classic_rl.logger import Logger


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


# an evaluation record's own keys; any other (pass@1, minimal_pair_accuracy, ...) also goes to the summary
EVALUATION_KEYS = ("env_step", "return_mean", "return_std", "episodes", "length_mean", "train_seconds",
                   "train_cpu_seconds")
SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


def first_non_finite(stats: dict[str, float]) -> str | None:
    """The name of the first loss or gradient norm in an update's stats that is NaN or infinite."""
    for name, value in stats.items():
        if ("loss" in name or "grad_norm" in name) and value is not None and not math.isfinite(float(value)):
            return name
    return None


class Trainer:
    def __init__(
        self,
        env: VectorEnv,
        eval_env: VectorEnv,
        agent: Agent,
        logger: Logger,
        train: TrainConfig,
        eval: EvalConfig,
        run_dir: Path,
        seed: int,
        extra_checkpoint: dict[str, Any] | None = None,
        callbacks: Sequence[Any] = (),
    ) -> None:
        self.env, self.eval_env, self.agent, self.logger = env, eval_env, agent, logger
        self.train_cfg, self.eval_cfg = train, eval
        self.run_dir = Path(run_dir)
        self.seed = seed
        self.extra_checkpoint = extra_checkpoint or {}
        self.callbacks = tuple(callbacks)  # classic_rl/callbacks.py: on_update, on_log, on_evaluation
        self.stopped_by_callback = False
        self.threshold = env.spec.reward_threshold
        n = env.num_envs
        self.env_steps = 0
        self.episodes = 0
        self.obs: torch.Tensor | None = None
        self.multi_agent = env.spec.num_agents > 1
        self.state: torch.Tensor | None = None  # multi-agent envs: the global state info["state"]
        self.episode_return = torch.zeros(n, device=env.device)
        self.episode_length = torch.zeros(n, dtype=torch.int64, device=env.device)
        self.train_seconds = 0.0  # wall seconds of training, evaluation excluded
        self.train_cpu_seconds = 0.0  # process CPU seconds of training, evaluation excluded
        self.wall_seconds = 0.0
        self.evaluations: list[dict[str, float]] = []
        self.solved: dict[str, float] | None = None
        self.last_evaluated: int | None = None  # env step of the last evaluation (on every rank)
        self.stop_signal: int | None = None  # the signal that asked the run to stop
        self.diverged: dict[str, Any] | None = None
        self._true_reward = [0.0, 0]  # sum and count of info["true_reward"] since the last log
        self._unsynced_steps = 0  # several ranks: this rank's env steps since they last met
        self._wall_start = time.perf_counter()  # start of this process's part of the run

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict[str, Any]:
        if self.obs is None:
            self.obs, info = self.env.reset(seed=self.seed)
            self.state = info.get("state")
        # signal handlers can only be set from the main thread (train() called from a worker thread runs without)
        main_thread = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.signal(sig, self._request_stop) for sig in SIGNAL_NAMES} if main_thread else {}
        cfg = self.train_cfg
        next_log = self._next_multiple(self.logger.cfg.log_every_steps)
        next_eval = self._next_multiple(self.eval_cfg.every_steps)
        next_ckpt = self._next_multiple(cfg.checkpoint_every_steps)
        stats: dict[str, float] = {}
        self._wall_start = time.perf_counter()
        clock0, cpu0 = time.perf_counter(), time.process_time()
        sps_steps, sps_clock = self.env_steps, clock0
        early_stopped = False
        try:
            if self.eval_cfg.at_start and not self.evaluations:
                self._evaluate()
                clock0, cpu0, sps_clock = time.perf_counter(), time.process_time(), time.perf_counter()
            offline = getattr(self.agent, "offline", False)
            # several ranks meet only at updates (a lock-step round takes a different number of vector steps
            # on each): the stop, log, evaluation and checkpoint decisions are taken there, on all together
            every_step = distributed.world_size() == 1
            boundary = True
            while self.env_steps < cfg.total_steps and not (boundary and self._stopping()):
                if offline:  # no env step: the next batch of the agent's own data
                    update = self.agent.update()
                    self.env_steps += self.agent.batch_size
                else:
                    update = self._env_step(clock0)
                boundary = every_step or update is not None
                if update is not None:
                    stats = update
                    bad = first_non_finite(stats)
                    if distributed.any_rank(bad is not None):  # several ranks stop together
                        bad = bad or "loss on another rank"
                        self.diverged = {"step": self.env_steps, "what": f"train/{bad}"}
                        self.logger.scalars(self.env_steps, {f"train/{k}": v for k, v in stats.items()})
                        break
                    self._notify("on_update", self.env_steps, stats)
                if self.env_steps >= next_log:
                    next_log = self._next_multiple(self.logger.cfg.log_every_steps)
                    now = time.perf_counter()
                    sps = (self.env_steps - sps_steps) / max(now - sps_clock, 1e-9)
                    sps_steps, sps_clock = self.env_steps, now
                    scalars = {**{f"train/{k}": v for k, v in stats.items()}, "perf/sps": sps}
                    if self._true_reward[1]:  # a learned reward model: the task's own reward beside it
                        scalars["train/true_reward_mean"] = self._true_reward[0] / self._true_reward[1]
                        self._true_reward = [0.0, 0]
                    self.logger.scalars(self.env_steps, scalars)
                    self.logger.progress(self.env_steps, sps)
                    self._notify("on_log", self.env_steps, scalars)
                if self.env_steps >= next_eval or self.env_steps >= next_ckpt:
                    clock0, cpu0 = self._bank_time(clock0, cpu0)
                    if self.env_steps >= next_eval:
                        next_eval = self._next_multiple(self.eval_cfg.every_steps)
                        if self._evaluate() and self.eval_cfg.early_stop:
                            early_stopped = True
                            break
                    if self.env_steps >= next_ckpt:
                        next_ckpt = self._next_multiple(cfg.checkpoint_every_steps)
                        self.save_checkpoint()
                    clock0, cpu0, sps_clock = time.perf_counter(), time.process_time(), time.perf_counter()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self._bank_time(clock0, cpu0)
        if self.diverged is not None:  # the last good checkpoint stays as it is
            self.wall_seconds = self._wall_now()
            self.logger.flush()
            return self.summary()
        interrupted = self.stop_signal is not None and self.env_steps < cfg.total_steps
        if not interrupted and not early_stopped and self.last_evaluated != self.env_steps:
            self._evaluate()
        self.save_checkpoint()
        if interrupted:
            self.logger.message(f"{SIGNAL_NAMES[self.stop_signal]}: stopped at env step {self.env_steps}, checkpoint "
                                f"saved; continue with: python -m classic_rl resume={self.run_dir}")
        self.wall_seconds = self._wall_now()
        return self.summary(interrupted)

    def _env_step(self, clock0: float) -> dict[str, float] | None:
        """One vector step: act, step, observe; the update's stats when the agent was ready, else None."""
        action = self.agent.act(self.obs, state=self.state) if self.multi_agent else self.agent.act(self.obs)
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        active = info.get("active")  # lock-step envs: rows waiting for the round take no step
        round_reward = info.get("round_reward")  # text envs: the whole round's rewards, at its end
        self.agent.observe(Transition(self.obs, action, reward, info["final_obs"], terminated, truncated,
                                      active, round_reward, self.state, info.get("final_state")))
        self.obs, self.state = next_obs, info.get("state")
        if self.multi_agent:  # an episode's return is the team's: the sum over agents
            reward = reward.sum(-1)
        steps = self.env.num_envs if active is None else int(active.sum())
        if distributed.world_size() == 1:
            self.env_steps += steps
        else:  # counted over every rank when they meet, at the update
            self._unsynced_steps += steps
        self._track_episodes(reward, terminated | truncated, clock0, active, round_reward)
        if (true_reward := info.get("true_reward")) is not None:
            self._true_reward = [self._true_reward[0] + float(true_reward.sum()), self._true_reward[1] + true_reward.numel()]
        if not self.agent.ready():
            return None
        if distributed.world_size() > 1:  # the env steps of all ranks: the counters and the agent's schedules
            self.env_steps += int(distributed.all_reduce_sum(torch.tensor([self._unsynced_steps])).item())
            self._unsynced_steps = 0
            self.agent.env_steps = self.env_steps
        return self.agent.update()

    def _stopping(self) -> bool:
        """A signal or a callback asked to stop (on any rank: all ranks stop at the same vector step)."""
        asked = self.stop_signal is not None or self.stopped_by_callback
        if distributed.world_size() == 1:
            return asked
        stop = distributed.any_rank(asked)
        if stop and not asked:
            self.stop_signal = signal.SIGTERM  # another rank was stopped: end as a signal would
        return stop

    def _request_stop(self, signum, frame) -> None:
        if self.stop_signal is not None:  # a second signal: stop hard
            raise KeyboardInterrupt
        self.stop_signal = signum

    def _wall_now(self) -> float:
        """Wall seconds of the whole run so far, earlier processes (before a resume) included."""
        return self.wall_seconds + time.perf_counter() - self._wall_start

    def _next_multiple(self, every: int) -> float:
        """The first env step after now that is a multiple of `every` (never when every is 0)."""
        return (self.env_steps // every + 1) * every if every > 0 else float("inf")

    def _bank_time(self, clock0: float, cpu0: float) -> tuple[float, float]:
        self.train_seconds += time.perf_counter() - clock0
        self.train_cpu_seconds += time.process_time() - cpu0
        return time.perf_counter(), time.process_time()

    def _track_episodes(self, reward: torch.Tensor, done: torch.Tensor, clock0: float,
                        active: torch.Tensor | None = None, round_reward: torch.Tensor | None = None) -> None:
        self.episode_return += reward
        self.episode_length += 1 if active is None else active.long()
        if self.env.spec.round_reward:  # every row's episode is reported when the round's rewards come
            if round_reward is None:
                return
            self.episode_return += round_reward
            done = torch.ones_like(done)
        if done.any():
            seconds = self.train_seconds + time.perf_counter() - clock0
            returns, lengths = self.episode_return[done].tolist(), self.episode_length[done].tolist()
            self.logger.episodes(self.env_steps, returns, lengths, seconds)
            self.episodes += len(returns)
            self.episode_return.masked_fill_(done, 0.0)
            self.episode_length.masked_fill_(done, 0)

    def _evaluate(self) -> bool:
        """Evaluate, log, record when the env is first solved; True if at or above the threshold.
        Several ranks: rank 0 evaluates and tells the others whether it was solved."""
        self.last_evaluated = self.env_steps
        if not distributed.is_main():
            return distributed.from_main(False)
        cfg = self.eval_cfg
        if hasattr(self.agent, "evaluation"):  # an agent that scores itself (a reward model: held-out pairs)
            returns, lengths, sampled = self.agent.evaluation()
        else:
            returns, lengths = evaluate(self.agent, self.eval_env, cfg.episodes, cfg.seed)
            sampled = {"pass@1": float((returns >= cfg.correct_reward).mean())} if self.eval_env.spec.text else {}
        if cfg.samples > 1 and not hasattr(self.agent, "evaluation"):  # text envs (checked at start)
            sampled.update(evaluate_samples(self.agent, self.eval_env, cfg.episodes, cfg.seed, cfg.samples,
                                            cfg.correct_reward))
        result = {
            "env_step": self.env_steps,
            "return_mean": float(returns.mean()),
            "return_std": float(returns.std()),
            "episodes": len(returns),  # episodes played, or held-out pairs scored (a reward model)
            "length_mean": float(lengths.mean()),
            **sampled,  # text envs: pass@1 (greedy), and with eval.samples = k > 1 pass@k, maj@k
            "train_seconds": round(self.train_seconds, 3),  # training time so far, evaluation excluded
            "train_cpu_seconds": round(self.train_cpu_seconds, 3),
        }
        self.evaluations.append(result)
        self.logger.scalars(
            self.env_steps,
            {"eval/return_mean": result["return_mean"], "eval/return_std": result["return_std"],
             "eval/length_mean": result["length_mean"], **{f"eval/{k}": v for k, v in sampled.items()}},
        )
        self.logger.message(f"eval @ {self.env_steps} env steps: return {returns.mean():.2f} ± {returns.std():.2f}")
        solved = self.threshold is not None and result["return_mean"] >= self.threshold
        if solved and self.solved is None:
            self.solved = {"step": self.env_steps, "seconds": self.train_seconds, "cpu_seconds": self.train_cpu_seconds}
        self._notify("on_evaluation", dict(result))  # outside the banked training time, like the evaluation
        return distributed.from_main(solved)

    def _notify(self, hook: str, *args: Any) -> None:
        """Call `hook` on every callback (on rank 0); one returning False stops the run (classic_rl/callbacks.py)."""
        for callback in self.callbacks if distributed.is_main() else ():
            fn = getattr(callback, hook, None)
            if fn is not None and fn(*args) is False:
                self.stopped_by_callback = True

    # ------------------------------------------------------------------ results and checkpoints
    def summary(self, interrupted: bool = False) -> dict[str, Any]:
        last = self.evaluations[-1] if self.evaluations else {}
        return {
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            "train_seconds": round(self.train_seconds, 3),
            "train_cpu_seconds": round(self.train_cpu_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "eval_return_mean": last.get("return_mean"),
            "eval_return_std": last.get("return_std"),
            "eval_episodes": last.get("episodes", self.eval_cfg.episodes) if last else 0,
            **{f"eval_{k}": v for k, v in last.items() if k not in EVALUATION_KEYS},  # pass@k, maj@k, ...
            "reward_threshold": self.threshold,
            "solved_at_step": self.solved["step"] if self.solved else None,
            "solved_at_seconds": round(self.solved["seconds"], 3) if self.solved else None,
            "solved_at_cpu_seconds": round(self.solved["cpu_seconds"], 3) if self.solved else None,
            "interrupted": interrupted,
            **({"interrupted_by": SIGNAL_NAMES[self.stop_signal]} if interrupted else {}),
            **({"diverged": self.diverged} if self.diverged is not None else {}),
            **({"stopped_by_callback": True} if self.stopped_by_callback else {}),
            "updates": getattr(self.agent, "updates", None),
            "peak_memory_mb": round(peak_memory_mb(), 1),
            "evaluations": self.evaluations,
        }

    def state_dict(self) -> dict[str, Any]:
        keys = ("env_steps", "episodes", "obs", "state", "episode_return", "episode_length", "train_seconds",
                "train_cpu_seconds", "evaluations", "solved")
        return {**{k: getattr(self, k) for k in keys}, "wall_seconds": self._wall_now()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v.to(self.env.device) if isinstance(v, torch.Tensor) else v)
        if self.evaluations:
            self.last_evaluated = self.evaluations[-1]["env_step"]

    def save_checkpoint(self) -> Path:
        """Flush the logs, then write checkpoint.pt atomically: the logs always reach the checkpoint's step.
        Several ranks: rank 0 writes it (the ranks hold the same networks)."""
        self.logger.flush()
        path = self.run_dir / ckpt.FILENAME
        if not distributed.is_main():
            return path
        ckpt.save(path, {
            **self.extra_checkpoint,
            "trainer": self.state_dict(),
            "agent": self.agent.state_dict(include_buffer=self.train_cfg.save_buffer),
            "env": self.env.state_dict(),
            "rng": ckpt.rng_state(),
        })
        return path

    def load_checkpoint(self, payload: dict[str, Any]) -> None:
        self.load_state_dict(payload["trainer"])
        self._wall_start = time.perf_counter()
        self.agent.load_state_dict(payload["agent"])
        self.env.load_state_dict(payload["env"])
        ckpt.set_rng_state(payload["rng"])
        if getattr(self.env, "restarts_on_resume", False):  # Gymnasium adapter: fresh episodes, re-seeded
            self.obs, info = self.env.reset(seed=self.seed + self.env_steps)
            self.state = info.get("state")
            self.episode_return.zero_()
            self.episode_length.zero_()
