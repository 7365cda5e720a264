"""Telling a label map from an image: the mistake of giving a segmentation where an MR image belongs.

A label map holds a handful of whole-number codes (ACDC's and M&Ms' files: 0-3); an MR image, even a quantised
int16 one, holds hundreds of distinct values. A volume whose values are at most ``MAX_LABEL_VALUES`` distinct whole
numbers, none negative, is taken for a label map (a blank, constant volume too: there is nothing to segment in it).
On the 80 ACDC training subjects every one of the 160 ``_gt`` files is label-like and none of the 160 images is
(the images hold at least a few hundred distinct values).

>>> label_like_values(np.array([[0, 1], [2, 3]], np.uint8)).tolist()
[0, 1, 2, 3]
>>> label_like_values(np.linspace(0.0, 900.0, 64).reshape(8, 8)) is None
True
"""

from __future__ import annotations

from typing import Optional

import numpy as np

MAX_LABEL_VALUES = 8  # distinct values a label map may hold (background and up to 7 structures)
SAMPLE_VOXELS = 65536  # voxels looked at first: an image shows itself in far fewer


def _few_whole_values(values: np.ndarray) -> bool:
    """Whether sorted distinct ``values`` are at most MAX_LABEL_VALUES whole numbers, none negative."""
    if values.size > MAX_LABEL_VALUES:
        return False
    numbers = values.astype(np.float64)
    return bool(np.all(np.isfinite(numbers)) and np.all(numbers == np.round(numbers)) and numbers.min() >= 0)


def label_like_values(array: np.ndarray) -> Optional[np.ndarray]:
    """The distinct values of ``array`` when it looks like a label map (see the module docstring), else None.

    An image is told apart on an evenly spaced sample of its voxels, so the cost stays small for large cines; only
    a label-like sample leads to looking at every voxel.
    """
    flat = np.asarray(array).reshape(-1)
    if flat.size == 0 or not (np.issubdtype(flat.dtype, np.number) or flat.dtype == np.bool_):
        return None
    if np.iscomplexobj(flat):
        return None
    sample = flat[:: max(1, flat.size // SAMPLE_VOXELS)]
    if not _few_whole_values(np.unique(sample)):
        return None
    values = np.unique(flat)
    return values if _few_whole_values(values) else None


def describe_values(values: np.ndarray) -> str:
    """'0, 1, 2, 3' for the values ``label_like_values`` found (whole numbers, printed without decimals)."""
    return ", ".join(str(int(v)) for v in values.tolist())
