"""Checkpoints: one `checkpoint.pt` holding everything needed to continue a run exactly."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classic_rl.config import UserError

FILENAME = "checkpoint.pt"


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run directory holding one; a clear one-line error if missing."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / FILENAME
    if not p.is_file():
        raise UserError(f"checkpoint not found: {p}; pass the checkpoint.pt (or the run directory) of a run")
    return p


def save(path: Path, payload: dict[str, Any]) -> None:
    """Atomic write: a crash mid-save never leaves a truncated checkpoint behind."""
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load(path: str | os.PathLike) -> dict[str, Any]:
    p = resolve(path)
    try:
        return torch.load(p, map_location="cpu", weights_only=False)
    except Exception as err:
        raise UserError(f"checkpoint {p} could not be read ({type(err).__name__}); is it a classic_rl checkpoint?")


def rng_state() -> dict[str, Any]:
    """Global random states (python, numpy, torch CPU and CUDA)."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
