"""Checkpoints: one `checkpoint.pt` holding everything needed to continue a run exactly.

A checkpoint holds tensors and plain values only (dicts, lists, tuples, numbers, strings), and is
read with `torch.load(weights_only=True)`: loading one never runs code, whoever made the file.
Random states are stored as tensors and ints; Gymnasium-adapter envs are not stored (their
episodes restart, re-seeded, on resume: envs/gym.py). Files are written atomically and durably
(files.py): a crash mid-save leaves the previous file whole.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classic_rl.config import UserError
from classic_rl.files import atomic_write

FILENAME = "checkpoint.pt"
FORMAT = 2  # version of the payload layout; checkpoints of other formats are refused with one line
REQUIRED_KEYS = ("format", "config", "trainer", "agent", "env", "rng")


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run directory holding one; a clear one-line error if missing."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / FILENAME
    if not p.is_file():
        raise UserError(f"checkpoint not found: {p}; pass the checkpoint.pt (or the run directory) of a run")
    return p


def save(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(payload, f))


def load(path: str | os.PathLike) -> dict[str, Any]:
    """The payload of a classic_rl checkpoint, read without running code; one-line errors."""
    p = resolve(path)
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "weights_only" in str(err) or "Unsupported global" in str(err) or "Unsupported operand" in str(err):
            reason = "it holds objects other than tensors and plain values, which are never unpickled"
        raise UserError(f"checkpoint {p} was refused: {reason[:200]}; pass a checkpoint.pt written by classic_rl")
    missing = [k for k in REQUIRED_KEYS if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise UserError(f"{p} is not a classic_rl checkpoint (no {missing[0]!r} entry); pass the checkpoint.pt "
                        "(or the run directory) of a classic_rl run")
    if payload["format"] != FORMAT:
        raise UserError(f"checkpoint {p} has format {payload['format']!r}; this classic_rl reads format {FORMAT} "
                        "only (format 1 held pickled Python objects); start a new run")
    return payload


def rng_state() -> dict[str, Any]:
    """Global random states (python, numpy, torch CPU and CUDA) as tensors and ints."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    np.random.set_state((npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
