"""Training checkpoints: written atomically, read back without executing code, with every RNG state for exact resumes.

A checkpoint holds the trainer (model, optimiser, step), the random-number states of every process (torch CPU and
CUDA, numpy, Python's ``random``), the best validation score so far and the settings. It contains only tensors,
numbers, text, lists and dicts, so ``torch.load(weights_only=True)`` reads it: loading never unpickles code.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Dict, Union

import numpy as np
import torch

from CoopSegLib.atomic import write_atomically
from CoopSegLib.errors import CoopSegError

PathLike = Union[str, os.PathLike]


def save_checkpoint(path: PathLike, state: Dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` through a temporary file in the same folder and a rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, lambda temporary: torch.save(state, temporary))


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CoopSegError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, not a checkpoint, or holding objects that would need unpickling code
        raise CoopSegError(f"{path}: not a readable CoopSeg checkpoint ({type(error).__name__}: "
                           f"{str(error).splitlines()[0] if str(error) else 'no detail'})") from None


def capture_rng_state() -> Dict[str, Any]:
    """This process's random-number states in checkpoint-safe types."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": [version, list(internal), gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
