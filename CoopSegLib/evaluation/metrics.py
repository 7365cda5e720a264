"""3D Dice and 95th-percentile Hausdorff distance per structure, with MONAI's metrics (imported lazily).

Empty structures, decided here rather than left to MONAI's NaN-with-a-warning:
  - reference and prediction both empty: Dice and HD95 NaN (nothing to score; left out of averages, as training's
    validation does);
  - exactly one of them empty: Dice 0, HD95 infinite (nothing to measure a distance to).
ACDC and M&Ms reference maps hold every structure in every frame, so these cases only arise from failed predictions
or unusual data; report tables count the infinite HD95 values instead of averaging them.
"""

from __future__ import annotations

import math
import warnings
from typing import Dict, NamedTuple, Sequence

import numpy as np
import torch

from CoopSegLib.errors import CoopSegError
from CoopSegLib.vocabulary import LABEL_NAMES, STRUCTURE_CODES, STRUCTURE_KEYS


class OverlapScores(NamedTuple):
    dice: float
    hd95: float  # mm


def _one_hot(labels: np.ndarray, structures: Sequence[int]) -> torch.Tensor:
    """(1, K, *shape) binary maps of ``structures``, MONAI's layout."""
    labels = torch.as_tensor(np.ascontiguousarray(labels))
    return torch.stack([labels == code for code in structures])[None]


def overlap_scores(prediction: np.ndarray, reference: np.ndarray, spacing: Sequence[float],
                   structures: Sequence[int] = STRUCTURE_CODES, distances: bool = True) -> Dict[int, OverlapScores]:
    """Dice and HD95 (mm, at the voxel ``spacing``) of each structure between two label maps on one grid.

    ``distances=False`` leaves HD95 out (NaN where both sides have the structure): it costs several times the Dice.
    """
    from monai.metrics import compute_dice, compute_hausdorff_distance

    prediction, reference = np.asarray(prediction), np.asarray(reference)
    if prediction.shape != reference.shape:
        raise CoopSegError(f"prediction of shape {prediction.shape} and reference of shape {reference.shape} "
                           "are not on the same grid")
    if len(spacing) != prediction.ndim:
        raise CoopSegError(f"expected {prediction.ndim} voxel spacings, got {len(spacing)}")
    predicted, expected = _one_hot(prediction, structures), _one_hot(reference, structures)
    # ignore_empty=False: reference empty but prediction not -> 0 (both empty is set to NaN below).
    dice = compute_dice(predicted, expected, include_background=True, ignore_empty=False)[0].tolist()
    present_p = predicted.flatten(2).any(-1)[0].tolist()
    present_r = expected.flatten(2).any(-1)[0].tolist()
    both = [k for k in range(len(structures)) if present_p[k] and present_r[k]]
    hd95 = dict.fromkeys(both, math.nan)
    if both and distances:
        with warnings.catch_warnings():  # MONAI's own deprecation notices about its internals
            warnings.simplefilter("ignore", FutureWarning)
            measured = compute_hausdorff_distance(predicted[:, both], expected[:, both], include_background=True,
                                                   percentile=95, spacing=[float(s) for s in spacing])
        hd95 = dict(zip(both, measured[0].tolist()))
    scores = {}
    for k, code in enumerate(structures):
        if present_p[k] and present_r[k]:
            scores[code] = OverlapScores(float(dice[k]), float(hd95[k]))
        elif present_p[k] or present_r[k]:
            scores[code] = OverlapScores(0.0, math.inf)
        else:
            scores[code] = OverlapScores(math.nan, math.nan)
    return scores


def structure_name(code: int) -> str:
    """'LV', 'MYO' or 'RV' (the paper's names), else the label's full name."""
    return STRUCTURE_KEYS.get(code, LABEL_NAMES.get(code, str(code)))


def slice_dice(prediction: np.ndarray, reference: np.ndarray,
               structures: Sequence[int] = STRUCTURE_CODES) -> np.ndarray:
    """(S, K) 2D Dice of each structure on each slice of two (S, H, W) stacks (MONAI's compute_dice, batched).

    NaN where the structure is absent from both slices, 0 where it is on one side only (as ``overlap_scores``).
    """
    from monai.metrics import compute_dice

    prediction, reference = np.asarray(prediction), np.asarray(reference)
    if prediction.shape != reference.shape or prediction.ndim != 3:
        raise CoopSegError(f"expected two (S, H, W) stacks of one shape, got {prediction.shape} and {reference.shape}")
    predicted = torch.stack([torch.as_tensor(prediction == code) for code in structures], dim=1)
    expected = torch.stack([torch.as_tensor(reference == code) for code in structures], dim=1)
    dice = compute_dice(predicted, expected, include_background=True, ignore_empty=False).numpy().astype(float)
    both_empty = ~(predicted.flatten(2).any(-1) | expected.flatten(2).any(-1)).numpy()
    dice[both_empty] = np.nan
    return dice
