"""Run logging, all inside the run directory.

- TensorBoard events (`tb/`), scalar names fixed and documented in docs/run-outputs.md; the run's
  hyperparameters and HPARAM_METRICS for TensorBoard's HParams dashboard, in the same event files
- `episodes.csv`: one row per finished training episode: env_step, return, length, seconds
- `metrics.jsonl`: one JSON object per scalar log: {"step": env_step, name: value, ...}
- a console progress bar (tqdm) with env steps, SPS and the mean return of recent episodes
"""

from __future__ import annotations

import csv
import json
from collections import deque
from pathlib import Path
from typing import Any

from tqdm import tqdm

from classic_rl.config import LoggerConfig, UserError
from classic_rl.files import atomic_write_text

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


def _episode_step(line: str) -> int | None:
    return None if line.startswith("env_step") else int(line.split(",")[0])


def _metrics_step(line: str) -> int:
    return int(json.loads(line)["step"])


def truncate_log(path: Path, step_of, start_step: int) -> str | None:
    """Resuming at `start_step`: keep the rows of `path` logged at or before it (rewritten atomically).
    A last line cut short by a crash (no newline, or unreadable) is dropped; returns a one-line note then."""
    if not path.exists():
        return None
    lines = path.read_text().splitlines(keepends=True)
    note = None
    if lines:
        last = lines[-1]
        try:
            step_of(last)
            complete = last.endswith("\n")
        except (ValueError, IndexError, KeyError, TypeError):
            complete = False
        if not complete:
            lines.pop()
            note = f"{path.name}: dropped its last line, cut short when the run stopped ({last.strip()[:60]!r})"
    kept = []
    for line in lines:
        try:
            step = step_of(line)
        except (ValueError, IndexError, KeyError, TypeError):
            raise UserError(f"{path} has an unreadable line {line.strip()[:60]!r}; fix or remove that line to "
                            "resume this run") from None
        if step is None or step <= start_step:
            kept.append(line)
    atomic_write_text(path, "".join(kept))
    return note


def console(text: str) -> None:
    """Print one line; a console that went away (a closed pipe, a closed stdout) never stops a run."""
    try:
        print(text, flush=True)
    except (BrokenPipeError, ValueError):
        pass


class Logger:
    def __init__(self, run_dir: Path, cfg: LoggerConfig, total_steps: int, start_step: int = 0,
                 quiet: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.quiet = quiet  # no console lines (a torchrun process other than rank 0)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.cfg = cfg
        episodes_path = self.run_dir / "episodes.csv"
        metrics_path = self.run_dir / "metrics.jsonl"
        self.notes: list[str] = []  # one-line notes about the logs found when resuming
        if start_step > 0:  # resuming: drop what was logged after the checkpoint
            for path, step_of in ((episodes_path, _episode_step), (metrics_path, _metrics_step)):
                if (note := truncate_log(path, step_of, start_step)) is not None:
                    self.notes.append(note)
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
        """Log named scalars at env step `step` to TensorBoard and metrics.jsonl (NaN and ±inf as such:
        JSON's NaN / Infinity extension, which Python's json reads), then flush the CSV and JSONL files."""
        values = {k: float(v) for k, v in metrics.items() if v is not None}
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)
        self._metrics_file.write(json.dumps({"step": step, **values}) + "\n")
        self._episodes_file.flush()
        self._metrics_file.flush()

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
        recent = sum(self.recent_returns) / len(self.recent_returns) if self.recent_returns else float("nan")
        try:
            self.bar.update(step - self._bar_step)
            self.bar.set_postfix({"sps": f"{sps:,.0f}", "return": f"{recent:.1f}", **(extra or {})}, refresh=False)
        except (BrokenPipeError, ValueError):  # the console went away; the run goes on
            pass
        self._bar_step = step

    def message(self, text: str) -> None:
        """One line on the console; a console that went away (a closed pipe) never stops the run."""
        if self.quiet:
            return
        try:
            self.bar.write(text) if not self.bar.disable else console(text)
        except (BrokenPipeError, ValueError):  # ValueError: stdout already closed
            pass

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
