"""Callbacks: user code called by the training loop (`classic_rl.train(..., callbacks=[...])`).

A callback is any object with some of these methods (subclass `Callback` for no-op defaults):

    on_update(env_step, stats)      after every agent update; `stats` are its losses, lr, ... (floats)
    on_log(env_step, scalars)       after every scalar log (every logger.log_every_steps env steps)
    on_evaluation(record)           after every evaluation; `record` is the summary's `evaluations`
                                    entry: env_step, return_mean, return_std, length_mean, train_seconds,
                                    train_cpu_seconds

Returning `False` from any of them stops the run: it ends as a finished run (final evaluation,
checkpoint, summary.json with `"stopped_by_callback": true`). An exception raised by one (e.g.
`optuna.TrialPruned`) ends the run with the logger and envs closed, no summary.json, and propagates.
Time spent in on_update and on_log counts in the summary's train_seconds; in on_evaluation it does not.
"""

from __future__ import annotations

from typing import Any


class Callback:
    """No-op hooks; override the ones you need. Return False to stop the run."""

    def on_update(self, env_step: int, stats: dict[str, float]) -> bool | None:
        return None

    def on_log(self, env_step: int, scalars: dict[str, float]) -> bool | None:
        return None

    def on_evaluation(self, record: dict[str, Any]) -> bool | None:
        return None


HOOKS = ("on_update", "on_log", "on_evaluation")


def check_callbacks(callbacks: Any) -> tuple[Any, ...]:
    """A tuple of callbacks; one-line error for an object with none of the hooks."""
    items = tuple(callbacks or ())
    for item in items:
        if not any(callable(getattr(item, hook, None)) for hook in HOOKS):
            from classic_rl.config import UserError

            raise UserError(f"callbacks: {type(item).__name__} has none of the hooks {', '.join(HOOKS)}; "
                            "subclass classic_rl.Callback and override one")
    return items
