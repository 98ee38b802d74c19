"""Run logging, all inside the run directory.

- TensorBoard events (`tb/`), scalar names fixed and documented in the README; the run's
  hyperparameters and HPARAM_METRICS for TensorBoard's HParams dashboard, in the same event files
- `episodes.csv`: one row per finished training episode: env_step, return, length, seconds
- `metrics.jsonl`: one JSON object per scalar log: {"step": env_step, name: value, ...}
- a console progress bar (tqdm) with env steps, SPS and the mean return of recent episodes
"""

from __future__ import annotations

import csv
import json
import math
from collections import deque
from pathlib import Path
from typing import Any

from tqdm import tqdm

from classic_rl.config import LoggerConfig

EPISODE_COLUMNS = ("env_step", "return", "length", "seconds")
# the HParams dashboard's metrics: TensorBoard scalar -> the summary.json key it is read from at the end
HPARAM_METRICS = {
    "hparams/final_return": "eval_return_mean",
    "hparams/solved_at_step": "solved_at_step",
    "hparams/solved_at_cpu_seconds": "solved_at_cpu_seconds",
}


def flatten_hparams(config: dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """A nested config as HParams values under dotted keys (agent.lr): lists and None as JSON strings,
    other types (and the `hydra` section) left out."""
    flat: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if name == "hydra":
            continue
        if isinstance(value, dict):
            flat.update(flatten_hparams(value, f"{name}."))
        elif value is None or isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value, default=str)
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
    return flat


def _truncate_rows(path: Path, keep) -> None:
    """Keep only the lines of `path` for which keep(line) holds (used when resuming)."""
    if path.exists():
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(line for line in lines if keep(line)))


class Logger:
    def __init__(self, run_dir: Path, cfg: LoggerConfig, total_steps: int, start_step: int = 0) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.cfg = cfg
        episodes_path = self.run_dir / "episodes.csv"
        metrics_path = self.run_dir / "metrics.jsonl"
        if start_step > 0:  # resuming: drop what was logged after the checkpoint
            _truncate_rows(episodes_path, lambda l: l.startswith("env_step") or int(l.split(",")[0]) <= start_step)
            _truncate_rows(metrics_path, lambda l: json.loads(l)["step"] <= start_step)
        else:
            episodes_path.unlink(missing_ok=True)
            metrics_path.unlink(missing_ok=True)
        new_csv = not episodes_path.exists()
        self._episodes_file = episodes_path.open("a", newline="")
        self._episodes = csv.writer(self._episodes_file)
        if new_csv:
            self._episodes.writerow(EPISODE_COLUMNS)
        self._metrics_file = metrics_path.open("a", buffering=1)  # line-buffered: readable while the run goes
        self.writer = None
        self._session_end = None  # the HParams session's end summary, written by hparam_metrics
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=start_step if start_step else None)
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.bar = tqdm(
            total=total_steps, initial=start_step, unit="step", disable=not cfg.progress, dynamic_ncols=True
        )
        self._bar_step = start_step

    def scalars(self, step: int, metrics: dict[str, float]) -> None:
        """Log named scalars at env step `step` to TensorBoard and metrics.jsonl."""
        clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        if self.writer is not None:
            for name, value in clean.items():
                self.writer.add_scalar(name, value, step)
        self._metrics_file.write(json.dumps({"step": step, **clean}) + "\n")

    def episodes(self, step: int, returns: list[float], lengths: list[int], seconds: float) -> None:
        """Episodes that ended in the vector step that reached env step `step`: one CSV row each;
        TensorBoard gets their mean (with one env, each episode), so thousands of envs stay cheap."""
        self._episodes.writerows((step, f"{r:.6g}", n, f"{seconds:.3f}") for r, n in zip(returns, lengths))
        self.recent_returns.extend(returns)
        if self.writer is not None and returns:
            self.writer.add_scalar("train/episode_return", sum(returns) / len(returns), step)
            self.writer.add_scalar("train/episode_length", sum(lengths) / len(lengths), step)

    def hparams(self, config: dict[str, Any]) -> None:
        """Start the run's HParams session: `config` flattened (flatten_hparams) as its hyperparameters,
        HPARAM_METRICS as its metrics. Written to `tb/` itself (SummaryWriter.add_hparams would make a subfolder)."""
        if self.writer is None:
            return
        from torch.utils.tensorboard.summary import hparams

        experiment, session_start, self._session_end = hparams(flatten_hparams(config), dict.fromkeys(HPARAM_METRICS))
        self.writer.file_writer.add_summary(experiment)
        self.writer.file_writer.add_summary(session_start)

    def hparam_metrics(self, step: int, summary: dict[str, Any]) -> None:
        """End the HParams session: the HPARAM_METRICS scalars from the run's summary (those that are not null)."""
        if self.writer is None:
            return
        for tag, key in HPARAM_METRICS.items():
            if summary.get(key) is not None:
                self.writer.add_scalar(tag, float(summary[key]), step)
        if self._session_end is not None:
            self.writer.file_writer.add_summary(self._session_end)

    def text(self, tag: str, text: str) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, text.replace("\n", "  \n"))

    def progress(self, step: int, sps: float, extra: dict[str, Any] | None = None) -> None:
        self.bar.update(step - self._bar_step)
        self._bar_step = step
        recent = sum(self.recent_returns) / len(self.recent_returns) if self.recent_returns else float("nan")
        self.bar.set_postfix({"sps": f"{sps:,.0f}", "return": f"{recent:.1f}", **(extra or {})}, refresh=False)

    def message(self, text: str) -> None:
        self.bar.write(text) if not self.bar.disable else print(text, flush=True)

    def flush(self) -> None:
        self._episodes_file.flush()
        self._metrics_file.flush()
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        self.flush()
        self.bar.close()
        self._episodes_file.close()
        self._metrics_file.close()
        if self.writer is not None:
            self.writer.close()
