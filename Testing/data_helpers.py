"""Shared helpers for the data-layer tests (not a test module)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
ACDC_ROOT = SHARED_DATA / "ACDC" / "training"


def permute_flip_affine(affine: np.ndarray, shape: tuple, perm: tuple, flips: tuple) -> np.ndarray:
    """Affine of ``np.flip(np.transpose(a, perm), flipped axes)``, describing the same physical image."""
    new = affine[:, list(perm) + [3]].copy()
    for axis, flip in enumerate(flips):
        if flip:
            n = shape[perm[axis]]
            reverse = np.eye(4)
            reverse[axis, axis] = -1.0
            reverse[axis, 3] = n - 1
            new = new @ reverse
    return new


def permute_flip_array(array: np.ndarray, perm: tuple, flips: tuple) -> np.ndarray:
    out = np.transpose(array, perm)
    for axis, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis=axis)
    return np.ascontiguousarray(out)


def undo_permute_flip(array: np.ndarray, perm: tuple, flips: tuple) -> np.ndarray:
    out = array
    for axis, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis=axis)
    return np.ascontiguousarray(np.transpose(out, np.argsort(perm)))


def rotation(degrees: float, axis: int) -> np.ndarray:
    """4x4 world rotation about a world axis."""
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    i, j = [k for k in range(3) if k != axis]
    out = np.eye(4)
    out[i, i], out[i, j], out[j, i], out[j, j] = c, -s, s, c
    return out


def toy_model(slices: np.ndarray) -> np.ndarray:
    """A deterministic, orientation-sensitive stand-in for a network: intensity bins plus a left-right ramp."""
    ramp = np.linspace(0.0, 0.3, slices.shape[-1], dtype=np.float32)
    return np.digitize(slices + ramp, [0.25, 0.5, 0.75]).astype(np.uint8)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(a, b).sum() / total)


def enclosure(label: np.ndarray, cavity: int = 1, myo: int = 2) -> Optional[float]:
    """Fraction of the 1-pixel ring around the LV cavity (4-neighbourhood) that is myocardium; None if no cavity."""
    lv = label == cavity
    if lv.sum() < 5:
        return None
    grown = lv.copy()
    grown[1:] |= lv[:-1]
    grown[:-1] |= lv[1:]
    grown[:, 1:] |= lv[:, :-1]
    grown[:, :-1] |= lv[:, 1:]
    ring = grown & ~lv
    return float((ring & (label == myo)).sum() / ring.sum())


needs_acdc = pytest.mark.skipif(not ACDC_ROOT.is_dir(), reason=f"real ACDC data not found at {ACDC_ROOT}")


def spiked_copy(subject: str, copy: int):
    """One of ``coopseg evaluate``'s one-spike copies of ``subject``'s ES frame (an EvaluationCase)."""
    from CoopSegLib.evaluation.test_sets import build_test_sets

    (case,) = [c for c in build_test_sets(ACDC_ROOT, ["spike"], [subject]) if c.key.endswith(f"_spike_{copy}")]
    return case
