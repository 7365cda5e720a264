"""Checking what callers hand to the segmenter, and viewing it as 3D frames the slice mapping understands.

Accepted: a 2D slice (X, Y), a 3D volume (X, Y, Z) or a 4D cine (X, Y, Z, T), with a 4x4 voxel-to-world (RAS, mm)
affine. A 2D slice is segmented as a one-slice volume; a cine frame by frame. Anything else, non-finite voxels, or
an affine that is not finite and invertible, is refused with a CoopSegError saying what is wrong. So is a label map
given where the image belongs (``CoopSegLib.data.label_like``: a handful of small whole numbers), unless the caller
allows it; such an input is then marked (``ImageInput.label_values``) so that its quality estimate is never "ok".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from CoopSegLib.data.geometry import Volume
from CoopSegLib.data.label_like import describe_values, label_like_values
from CoopSegLib.errors import CoopSegError

LAYOUTS = {2: "2d", 3: "3d", 4: "4d"}
ALLOW_LABEL_LIKE_FLAG = "--allow-label-like-input"  # the command-line option that segments such an input anyway


@dataclass(frozen=True)
class ImageInput:
    """A checked image as 3D frames: one for a slice or a volume, T for a cine."""

    frames: List[Volume]
    shape: Tuple[int, ...]  # the caller's array shape
    layout: str  # "2d", "3d" or "4d"
    label_values: Optional[Tuple[int, ...]] = None  # the values of a label-like input segmented anyway, else None

    def restore(self, per_frame: List[np.ndarray], leading: int = 0) -> np.ndarray:
        """Arrays computed per frame on the 3D grid (``leading`` extra axes first, e.g. classes) -> caller's layout."""
        if self.layout == "2d":
            return per_frame[0][..., 0]
        if self.layout == "3d":
            return per_frame[0]
        return np.stack(per_frame, axis=leading + 3)


def single_slice_affine(affine: np.ndarray, axis: int) -> np.ndarray:
    """The affine to give the slice mapping for an image with one slice along ``axis``: that axis is the stack.

    A single slice often records a small thickness, or none at all for a 2D image, which would make an in-plane axis
    look like the stack (the axis with the largest spacing). Its column becomes the slice normal, scaled above the
    in-plane spacings; with one slice nothing else depends on that column, so the in-plane mapping is unchanged.
    """
    others = [a for a in range(3) if a != axis]
    in_plane = affine[:3, others]
    scale = max(1.0, float(np.abs(in_plane).max()))
    if np.linalg.matrix_rank(in_plane, tol=1e-9 * scale) < 2:
        raise CoopSegError("the affine is singular (an in-plane voxel spacing is zero or the axes are parallel)")
    normal = np.cross(in_plane[:, 0], in_plane[:, 1])
    fixed = affine.copy()
    fixed[:3, axis] = normal / np.linalg.norm(normal) * 2.0 * np.linalg.norm(in_plane, axis=0).max()
    return fixed


def label_like_message(values: np.ndarray) -> str:
    """The one line that refuses a label-like input (the same from Python, the command line and Slicer)."""
    return (f"this looks like a label map, not an MR image: its voxels hold only the values {describe_values(values)}; "
            "give the image itself (ACDC: the file without _gt), or segment it anyway with "
            f"{ALLOW_LABEL_LIKE_FLAG} (Python: allow_label_like_input=True)")


def check_image(array: np.ndarray, affine: np.ndarray, allow_label_like_input: bool = False) -> ImageInput:
    """Validate ``array`` and ``affine`` and split the image into 3D frames; a label-like array is refused unless
    ``allow_label_like_input``."""
    array = np.asarray(array)
    if array.ndim not in LAYOUTS:
        raise CoopSegError(
            f"expected a 2D slice, a 3D volume or a 4D cine (X, Y, Z, T); got an array of shape {array.shape}"
        )
    if array.size == 0:
        raise CoopSegError(f"the image is empty (shape {array.shape})")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
            or array.dtype == np.bool_):
        raise CoopSegError(f"the image holds {array.dtype} values; expected real numbers")
    if np.issubdtype(array.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise CoopSegError(f"the image contains {bad} NaN or infinite voxel value(s)")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise CoopSegError(f"expected a 4x4 affine, got shape {affine.shape}")
    if not np.all(np.isfinite(affine)):
        raise CoopSegError("the affine (voxel-to-world matrix) contains NaN or infinite values")
    layout = LAYOUTS[array.ndim]
    volume_shape = tuple(array.shape[:3]) if array.ndim >= 3 else tuple(array.shape) + (1,)
    singleton = [axis for axis in range(3) if volume_shape[axis] == 1]
    if len(singleton) == 1:
        affine = single_slice_affine(affine, singleton[0])
    elif abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise CoopSegError("the affine is singular (a voxel spacing is zero or two axes are parallel)")
    values = label_like_values(array)
    if values is not None and not allow_label_like_input:
        raise CoopSegError(label_like_message(values))
    if layout == "4d":
        frames = [Volume(array[..., t], affine) for t in range(array.shape[3])]
    else:
        frames = [Volume(array.reshape(volume_shape), affine)]
    label_values = tuple(int(v) for v in values) if values is not None else None
    return ImageInput(frames, tuple(int(n) for n in array.shape), layout, label_values)
