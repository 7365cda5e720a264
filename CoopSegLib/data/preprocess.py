"""Preprocessing shared by training and inference: normalise intensities, then map to model slices.

Percentiles are taken on the volume's own voxels before resampling, so the zero padding added around small fields
of view never shifts them. Both training (``prepare_case``) and inference (``prepare_image``) go through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from CoopSegLib.data.case import Case
from CoopSegLib.data.geometry import MODEL_SIZE, MODEL_SPACING, SliceMapping, Volume, to_model_slices
from CoopSegLib.data.normalisation import normalise_percentiles


@dataclass
class PreparedVolume:
    """Model-ready slices of one case: image (S, H, W) float32 in [0, 1], label (S, H, W) uint8 or None."""

    key: str
    image: np.ndarray
    label: Optional[np.ndarray]
    mapping: SliceMapping

    def labelled_slices(self) -> np.ndarray:
        """Indices of slices holding at least one foreground label."""
        if self.label is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.label.reshape(len(self.label), -1).max(axis=1) > 0)


def prepare_image(
    volume: Volume, spacing: float = MODEL_SPACING, size: int = MODEL_SIZE
) -> Tuple[np.ndarray, SliceMapping]:
    """Volume -> (normalised model slices (S, size, size) float32 in [0, 1], mapping back to its grid)."""
    normalised = Volume(normalise_percentiles(volume.array), volume.affine)
    slices, mapping = to_model_slices(normalised, spacing, size, interpolation="linear")
    return np.clip(slices, 0.0, 1.0), mapping


def prepare_case(case: Case, spacing: float = MODEL_SPACING, size: int = MODEL_SIZE) -> PreparedVolume:
    """Image and label of a case on the model's slice grid (labels by nearest neighbour)."""
    image, mapping = prepare_image(case.image, spacing, size)
    label = None if case.label is None else mapping.to_model(case.label.array, "nearest").astype(np.uint8)
    return PreparedVolume(case.key, image, label, mapping)
