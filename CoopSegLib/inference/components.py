"""Largest-connected-component clean-up of label maps, in numpy (inference needs no scipy).

Components are face-connected (6-neighbourhood in 3D, 4 in 2D), as scipy.ndimage.label's default. Labelling
propagates the largest voxel index through each component and jumps along those indices (pointer jumping, as in
GPU connected-component algorithms), so it converges in far fewer sweeps than the component's diameter; it runs on
the bounding box of each structure only.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from CoopSegLib.data.labels import STRUCTURE_CODES


def connected_components(mask: np.ndarray) -> np.ndarray:
    """Component ids of a boolean array: -1 outside ``mask``, else the largest flat index in the voxel's component."""
    mask = np.asarray(mask, dtype=bool)
    ids = np.where(mask, np.arange(mask.size, dtype=np.int64).reshape(mask.shape), -1)
    inside = ids[mask]
    while True:
        grown = ids.copy()
        for axis in range(mask.ndim):
            lower = [slice(None)] * mask.ndim
            upper = [slice(None)] * mask.ndim
            lower[axis], upper[axis] = slice(None, -1), slice(1, None)
            lower_t, upper_t = tuple(lower), tuple(upper)
            np.maximum(grown[upper_t], ids[lower_t], out=grown[upper_t])
            np.maximum(grown[lower_t], ids[upper_t], out=grown[lower_t])
        grown[~mask] = -1
        # Pointer jumping: a voxel's id is the index of a voxel of the same component whose own id is never
        # smaller, so taking that voxel's id is a valid (and often long) step towards the component's maximum.
        inside = grown[mask]
        inside = grown.reshape(-1)[inside]
        grown[mask] = inside
        if np.array_equal(grown, ids):
            return ids
        ids = grown


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest face-connected component of a boolean array (ties: the one holding the highest index)."""
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros(mask.shape, dtype=bool)
    if not mask.any():
        return out
    box = tuple(slice(int(np.min(where)), int(np.max(where)) + 1) for where in np.nonzero(mask))
    ids = connected_components(mask[box])
    values, counts = np.unique(ids[ids >= 0], return_counts=True)
    best = values[counts == counts.max()].max()
    out[box] = ids == best
    return out


def keep_largest_components(labels: np.ndarray, structures: Iterable[int] = STRUCTURE_CODES) -> np.ndarray:
    """Label map with every structure reduced to its largest connected component; the rest becomes background.

    Works on one 2D or 3D map; call it per frame for a cine (components must not connect through time).
    """
    labels = np.asarray(labels)
    out = labels.copy()
    for code in structures:
        mask = labels == code
        out[mask & ~largest_component(mask)] = 0
    return out
