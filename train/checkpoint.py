"""Checkpoints: written atomically, loaded with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def save_atomic(state: dict[str, Any], path: str | Path) -> None:
    """Write a checkpoint so that `path` always contains either the old or the new file, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    # Persist the rename itself.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def describe_load_error(exc: Exception) -> str:
    """Return a plain reason for a failed torch.load: torch's own text can be a bare code like '(101)'."""
    text = str(exc)
    if "zip archive" in text or "central directory" in text or text.strip("() ").isdigit():
        return "not a PyTorch file"
    return text.splitlines()[0] if text else type(exc).__name__


def load_torch_file(path: str | Path, what: str, expected: str, missing_hint: str = "",
                    map_location: str | torch.device = "cpu") -> Any:
    """Load tensors and plain Python values from `path` with torch.load(weights_only=True).

    `what` names the file in messages ("checkpoint"). `expected` describes the file to give
    in place of a folder or a foreign file, and `missing_hint` what to do when it is missing.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give {expected}")
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}{missing_hint}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        raise ValueError(f"{path}: not a readable {what} ({describe_load_error(exc)}); give {expected}") from exc


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by this project, tensors and plain Python values only."""
    state = load_torch_file(path, "lrgan checkpoint", "the last.pt or best.pt file that `lrgan train` wrote",
                            map_location=map_location)
    if not isinstance(state, dict) or "model_config" not in state or "generator" not in state:
        raise ValueError(f"{path}: not an lrgan checkpoint (model_config or generator missing)")
    return state
