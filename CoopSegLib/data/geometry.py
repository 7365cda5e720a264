"""Volumes and the exact mapping between a volume's own grid and the model's stack of 2D slices.

A volume is a 3D voxel array plus a 4x4 affine (voxel index -> world millimetres, RAS as in NIfTI and Slicer).
The model sees short-axis slices of ``size`` x ``size`` pixels at ``spacing`` mm. Going there and back:

1. find the stack (through-plane) axis: the voxel axis with the largest spacing;
2. reorder and flip voxel axes to a canonical orientation chosen from the affine alone, so that the same image
   stored with permuted or flipped axes (or a slightly oblique affine) gives bit-identical model slices;
3. resample in-plane by pure scaling about the array centre to ``spacing`` and pad/crop to ``size`` (one
   separable step: the paper's "pad to 224, centre-crop 192" is the same as centring the grid).

Every step is invertible on the input grid, so predictions map back exactly: nearest-neighbour for label maps,
linear for probabilities. A label map survives the round trip unchanged wherever the input's in-plane spacing is
at least the model spacing and the voxel lies inside the model's field of view (coarser grids cannot carry finer
detail; see ``SliceMapping.to_input_grid``).

Only numpy is used, so inference needs no imaging library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from CoopSegLib.errors import CoopSegError

MODEL_SPACING = 1.36719  # mm, in-plane spacing the paper resamples to
MODEL_SIZE = 192  # pixels: pad to 224 then centre-crop 192 in the paper, i.e. a centred 192 x 192 grid


@dataclass(frozen=True)
class Volume:
    """A 3D voxel array and its 4x4 voxel-to-world (RAS, mm) affine."""

    array: np.ndarray
    affine: np.ndarray

    def __post_init__(self) -> None:
        if np.ndim(self.array) != 3:
            raise CoopSegError(f"expected a 3D volume, got an array of shape {np.shape(self.array)}")
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise CoopSegError(f"expected a finite 4x4 affine, got shape {affine.shape}")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise CoopSegError("the affine is singular (a voxel spacing is zero)")
        object.__setattr__(self, "affine", affine)

    @property
    def shape(self) -> Tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> Tuple[float, float, float]:
        """Voxel size in mm along each array axis (column norms of the affine)."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]


def stack_axis(affine: np.ndarray) -> int:
    """The voxel axis with the largest spacing: the short-axis stack direction.

    Ties (within 0.1 %) go to the last such axis, the usual storage order for slice stacks.
    """
    spacing = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
    candidates = np.flatnonzero(spacing >= spacing.max() * (1 - 1e-3))
    return int(candidates[-1])


def _world_axes(affine: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """For each voxel axis, the world axis it is closest to and the sign of that alignment.

    Greedy on the largest absolute direction cosine, so the answer depends only on the set of physical
    directions, not on the order the axes are stored in.
    """
    directions = np.asarray(affine, dtype=np.float64)[:3, :3]
    directions = directions / np.linalg.norm(directions, axis=0, keepdims=True)
    cosines = np.abs(directions).copy()
    world = np.full(3, -1)
    for _ in range(3):
        w, v = np.unravel_index(int(np.argmax(cosines)), cosines.shape)
        world[v] = w
        cosines[w, :] = -1.0
        cosines[:, v] = -1.0
    signs = np.sign(directions[world, np.arange(3)])
    signs[signs == 0] = 1
    return world, signs


def _sample_positions(n_out: int, step: float, centre_in: int, centre_out: int) -> np.ndarray:
    """Input positions (j - centre_out) * step + centre_in, snapped to a 1e-6 voxel grid.

    Spacing ratios such as 1.5625 / 1.5 put many positions exactly halfway between two voxels; a spacing read from
    a float32 header (NIfTI) or a float64 one (NRRD, DICOM) differs by ~1e-9 and would round those ties apart.
    Snapping makes nearest-neighbour choices identical for the same geometry however it was stored.
    """
    positions = (np.arange(n_out, dtype=np.float64) - centre_out) * step + centre_in
    return np.round(positions, 6)


def _axis_matrix(n_in: int, n_out: int, step: float, centre_in: int, centre_out: int, linear: bool) -> np.ndarray:
    """Interpolation matrix (n_out x n_in) sampling input positions (j - centre_out) * step + centre_in.

    Positions more than half a voxel outside the input give a zero row (padding); within half a voxel of the edge
    they take the edge value, which keeps nearest and linear sampling consistent.
    """
    positions = _sample_positions(n_out, step, centre_in, centre_out)
    matrix = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    if linear:
        inside = (positions >= -0.5) & (positions <= n_in - 0.5)
        x = np.clip(positions, 0.0, n_in - 1.0)
        low = np.floor(x).astype(np.int64)
        high = np.minimum(low + 1, n_in - 1)
        weight = x - low
        np.add.at(matrix, (rows[inside], low[inside]), 1.0 - weight[inside])
        np.add.at(matrix, (rows[inside], high[inside]), weight[inside])
    else:
        index = np.floor(positions + 0.5).astype(np.int64)
        inside = (index >= 0) & (index < n_in)
        matrix[rows[inside], index[inside]] = 1.0
    return matrix


def _nearest_index(n_in: int, n_out: int, step: float, centre_in: int, centre_out: int) -> np.ndarray:
    """Nearest input index for each output position, -1 where it falls outside the input."""
    positions = _sample_positions(n_out, step, centre_in, centre_out)
    index = np.floor(positions + 0.5).astype(np.int64)
    index[(index < 0) | (index >= n_in)] = -1
    return index


def _take_nearest(stack: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: float = 0) -> np.ndarray:
    """Sample the last two axes of ``stack`` at index vectors (-1 = outside, gets ``fill``)."""
    out = stack[..., np.maximum(rows, 0), :][..., np.maximum(cols, 0)]
    out[..., rows < 0, :] = fill
    out[..., :, cols < 0] = fill
    return out


@dataclass(frozen=True)
class SliceMapping:
    """How a volume's grid maps to the model's slices, and back.

    ``order`` lists the input axes that become (height, width, stack) of the canonical array; ``flips`` says which
    of those canonical axes are reversed. In-plane, model pixel j of an axis with n input voxels samples input
    index (j - size // 2) * spacing / input_spacing + n // 2.
    """

    input_shape: Tuple[int, int, int]
    order: Tuple[int, int, int]
    flips: Tuple[bool, bool, bool]
    input_spacing: Tuple[float, float]  # in-plane spacing of the canonical (height, width) axes, mm
    spacing: float
    size: int

    @classmethod
    def from_affine(cls, shape: Tuple[int, ...], affine: np.ndarray, spacing: float, size: int) -> "SliceMapping":
        if spacing <= 0 or size <= 0:
            raise CoopSegError(f"model spacing and size must be positive, got {spacing} mm and {size} pixels")
        stack = stack_axis(affine)
        world, signs = _world_axes(affine)
        in_plane = sorted((axis for axis in range(3) if axis != stack), key=lambda axis: world[axis])
        order = (in_plane[0], in_plane[1], stack)
        # In-plane axes point to -world (LPS-like), the stack to +world: ACDC's storage is then the identity.
        flips = (bool(signs[order[0]] > 0), bool(signs[order[1]] > 0), bool(signs[stack] < 0))
        voxel = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
        return cls(
            input_shape=tuple(int(n) for n in shape),  # type: ignore[arg-type]
            order=order,
            flips=flips,
            input_spacing=(float(voxel[order[0]]), float(voxel[order[1]])),
            spacing=float(spacing),
            size=int(size),
        )

    # --- canonical reordering (exact, invertible) -------------------------------------------------------------
    @property
    def canonical_shape(self) -> Tuple[int, int, int]:
        return tuple(self.input_shape[axis] for axis in self.order)  # type: ignore[return-value]

    @property
    def num_slices(self) -> int:
        return self.canonical_shape[2]

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        """Input-grid array (X, Y, Z, ...) -> canonical stack (S, H, W, ...)."""
        if tuple(array.shape[:3]) != self.input_shape:
            raise CoopSegError(f"array of shape {array.shape[:3]} does not match the volume's grid {self.input_shape}")
        out = np.transpose(array, self.order + tuple(range(3, array.ndim)))
        for axis, flip in enumerate(self.flips):
            if flip:
                out = np.flip(out, axis=axis)
        return np.moveaxis(out, 2, 0)

    def from_canonical(self, stack: np.ndarray) -> np.ndarray:
        """Canonical stack (S, H, W, ...) -> array on the input grid (X, Y, Z, ...)."""
        out = np.moveaxis(stack, 0, 2)
        for axis, flip in enumerate(self.flips):
            if flip:
                out = np.flip(out, axis=axis)
        inverse = tuple(int(i) for i in np.argsort(self.order)) + tuple(range(3, stack.ndim))
        return np.ascontiguousarray(np.transpose(out, inverse))

    # --- in-plane resampling -------------------------------------------------------------------------------------
    def _forward_params(self, axis: int) -> Tuple[int, int, float, int, int]:
        n = self.canonical_shape[axis]
        return n, self.size, self.spacing / self.input_spacing[axis], n // 2, self.size // 2

    def _backward_params(self, axis: int) -> Tuple[int, int, float, int, int]:
        n = self.canonical_shape[axis]
        return self.size, n, self.input_spacing[axis] / self.spacing, self.size // 2, n // 2

    def to_model(self, array: np.ndarray, interpolation: str = "linear") -> np.ndarray:
        """Resample an array on the input grid to model slices (S, size, size).

        ``interpolation``: "linear" for images (float32 out), "nearest" for label maps (dtype kept).
        """
        stack = self.to_canonical(np.asarray(array))
        if interpolation == "nearest":
            rows = _nearest_index(*self._forward_params(0))
            cols = _nearest_index(*self._forward_params(1))
            return np.ascontiguousarray(_take_nearest(stack, rows, cols))
        if interpolation != "linear":
            raise CoopSegError(f"unknown interpolation {interpolation!r}; use 'linear' or 'nearest'")
        rows = _axis_matrix(*self._forward_params(0), linear=True).astype(np.float32)
        cols = _axis_matrix(*self._forward_params(1), linear=True).astype(np.float32)
        return np.ascontiguousarray(rows @ stack.astype(np.float32) @ cols.T)

    def to_input_grid(self, label_slices: np.ndarray) -> np.ndarray:
        """Model label slices (S, size, size) -> label map on the input's own grid (nearest neighbour).

        Voxels outside the model's field of view get 0 (background). Exact inverse of ``to_model(...,
        "nearest")`` wherever the input's in-plane spacing is >= the model spacing.
        """
        label_slices = np.asarray(label_slices)
        expected = (self.num_slices, self.size, self.size)
        if label_slices.shape != expected:
            raise CoopSegError(f"expected label slices of shape {expected}, got {label_slices.shape}")
        rows = _nearest_index(*self._backward_params(0))
        cols = _nearest_index(*self._backward_params(1))
        return self.from_canonical(_take_nearest(label_slices, rows, cols))

    def values_to_input_grid(self, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Continuous per-channel maps (S, C, size, size) -> ((C, X, Y, Z), coverage) by linear interpolation.

        Outside the model's field of view the values are 0; ``coverage`` (X, Y, Z) is the interpolation weight that
        fell inside it (1 well inside, 0 outside), for callers that fill the outside with something else.
        """
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 4 or values.shape[0] != self.num_slices or values.shape[2:] != (self.size, self.size):
            raise CoopSegError(
                f"expected maps of shape ({self.num_slices}, C, {self.size}, {self.size}), got {values.shape}"
            )
        rows = _axis_matrix(*self._backward_params(0), linear=True).astype(np.float32)
        cols = _axis_matrix(*self._backward_params(1), linear=True).astype(np.float32)
        out = rows @ values @ cols.T  # (S, C, H, W)
        coverage = (rows.sum(axis=1)[:, None] * cols.sum(axis=1)[None, :]).astype(np.float32)
        stack = np.moveaxis(out, 1, -1)  # (S, H, W, C)
        coverage_stack = np.broadcast_to(coverage, (self.num_slices,) + coverage.shape)
        return np.moveaxis(self.from_canonical(stack), -1, 0), self.from_canonical(coverage_stack)

    def probabilities_to_input_grid(self, probabilities: np.ndarray) -> np.ndarray:
        """Per-class probabilities (S, C, size, size) -> (C, X, Y, Z) on the input grid, linear interpolation.

        Outside the model's field of view the background (class 0) has probability 1.
        """
        out, coverage = self.values_to_input_grid(probabilities)
        out[0] += 1.0 - coverage  # outside the field of view: background
        return out


def to_model_slices(
    volume: Volume, spacing: float = MODEL_SPACING, size: int = MODEL_SIZE, interpolation: str = "linear"
) -> Tuple[np.ndarray, SliceMapping]:
    """Volume -> (slices S x size x size, mapping back to the volume's grid).

    >>> import numpy as np
    >>> vol = Volume(np.zeros((100, 120, 8), np.float32), np.diag([-1.5, -1.5, 8.0, 1.0]))
    >>> slices, mapping = to_model_slices(vol)
    >>> slices.shape, mapping.to_input_grid(np.zeros((8, 192, 192), np.uint8)).shape
    ((8, 192, 192), (100, 120, 8))
    """
    mapping = SliceMapping.from_affine(volume.shape, volume.affine, spacing, size)
    return mapping.to_model(volume.array, interpolation), mapping
