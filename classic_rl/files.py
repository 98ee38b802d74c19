"""Files of a run directory: atomic, durable writes and the lock that keeps one process per run.

A run is the user's data: `atomic_write` never leaves a half-written file in place of a whole one,
and `RunLock` makes a second process on the same run directory stop with one line instead of
writing over the first.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from classic_rl.config import UserError

TEMP_PREFIX = ".tmp-"  # atomic_write's temp files: `.tmp-<name>-<random>`
LOCK_NAME = ".lock"


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write `path` through `write(binary file)` into a unique temp file in the same directory,
    fsync it, rename it over `path` and fsync the directory: readers see the old file or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}-", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes the file private (0600); a run's files get the usual mode
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # no directory handles (Windows)
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def clean_stale_temp_files(run_dir: Path) -> list[Path]:
    """Remove the temp files that an interrupted atomic_write left in `run_dir`; returns them."""
    stale = sorted(Path(run_dir).glob(f"{TEMP_PREFIX}*"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class RunLock:
    """`run_dir/.lock` holding the owner's pid, created exclusively. A lock whose process is gone is
    stale and taken over; a live one makes `acquire` raise a one-line UserError."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def acquire(self) -> "RunLock":
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid = self._owner()
                if pid is not None and pid != os.getpid() and _alive(pid):
                    raise UserError(f"run directory {self.path.parent} is in use by process {pid}; wait for it to "
                                    "finish, or pass another hydra.run.dir") from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self.held = True
            return self
        raise UserError(f"could not lock run directory {self.path.parent}; remove {self.path} if no run uses it")

    def _owner(self) -> int | None:
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self.held and self._owner() == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
