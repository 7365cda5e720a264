"""Intensity normalisation: one definition used at training time and at test time.

The original code normalised differently in one test path (reference/original-implementation.md, known bugs);
here every path calls ``normalise_percentiles`` on the whole volume before slicing.
"""

from __future__ import annotations

import numpy as np
import torch

LOW_PERCENTILE = 2.0
HIGH_PERCENTILE = 98.0


def normalise_percentiles(array: np.ndarray, low: float = LOW_PERCENTILE, high: float = HIGH_PERCENTILE) -> np.ndarray:
    """Clip to the [low, high] percentiles of the whole array, then min-max to [0, 1] (float32).

    A constant array (no contrast to scale) becomes all zeros rather than dividing by zero.

    >>> normalise_percentiles(np.arange(101.0), 2, 98)[[0, 50, 100]].tolist()
    [0.0, 0.5, 1.0]
    """
    values = np.asarray(array, dtype=np.float32)
    lo, hi = np.percentile(values, [low, high])
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return np.zeros(values.shape, dtype=np.float32)
    out = (np.clip(values, lo, hi) - lo) / (hi - lo)
    return out.astype(np.float32, copy=False)


def minmax_per_slice(images: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Min-max each image of a (..., H, W) tensor to [0, 1] independently (after augmentation, as in the paper).

    Constant images become zeros.
    """
    flat = images.flatten(-2)
    lo = flat.amin(dim=-1, keepdim=True)
    hi = flat.amax(dim=-1, keepdim=True)
    scale = torch.where(hi - lo > eps, hi - lo, torch.ones_like(hi))
    out = torch.where(hi - lo > eps, (flat - lo) / scale, torch.zeros_like(flat))
    return out.view_as(images)
