"""Reading NRRD images (3D Slicer's native format) with SimpleITK, imported lazily (it comes with TorchIO).

ITK describes voxels in LPS world coordinates (x to the patient's left, y posterior); NIfTI, Slicer's RAS space
and this project use RAS. The affine returned is RAS: ITK's direction x spacing and origin with x and y negated.
Arrays come back in voxel-index order (i, j, k[, t]), like nibabel's, not in SimpleITK's reversed (k, j, i) order.
A 4D image, or a 3D image with several components per voxel (how Slicer stores a sequence), reads as (X, Y, Z, T).
``write_nrrd`` writes the last axis of a 4D array as components, which Slicer's volume-sequence reader loads as a
sequence (the Slicer module's worker answers in NRRD so that Slicer's Python needs no nibabel).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Tuple, Union

import numpy as np

from CoopSegLib.atomic import write_atomically
from CoopSegLib.errors import CoopSegError

NRRD_SUFFIXES = (".nrrd", ".nhdr")
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _simpleitk() -> Any:
    try:
        import SimpleITK
    except ImportError as error:  # pragma: no cover - depends on the install
        raise CoopSegError("reading NRRD files needs SimpleITK: pip install 'CoopSegLib[cli]'") from error
    return SimpleITK


def itk_affine(spacing: Tuple[float, ...], origin: Tuple[float, ...], direction: Tuple[float, ...]) -> np.ndarray:
    """4x4 voxel-to-world RAS affine of an ITK image's first (up to three) spatial axes."""
    dims = len(spacing)
    matrix = np.asarray(direction, dtype=np.float64).reshape(dims, dims)
    spatial = min(dims, 3)
    affine = np.eye(4)
    affine[:spatial, :spatial] = matrix[:spatial, :spatial] * np.asarray(spacing[:spatial], dtype=np.float64)
    affine[:spatial, 3] = np.asarray(origin[:spatial], dtype=np.float64)
    return LPS_TO_RAS @ affine


def read_nrrd(path: Union[str, Path]) -> Tuple[np.ndarray, np.ndarray]:
    """(array in voxel-index order, RAS affine) of a NRRD file; CoopSegError naming the file if unreadable."""
    sitk = _simpleitk()
    path = Path(path)
    if not path.is_file():
        raise CoopSegError(f"{path}: file not found")
    try:
        image = sitk.ReadImage(str(path))
        array = sitk.GetArrayFromImage(image)
    except RuntimeError as error:  # SimpleITK reports every read failure as a RuntimeError with ITK's text
        reason = " ".join(str(error).split())[-200:]
        raise CoopSegError(f"{path}: cannot read as NRRD ({reason})") from None
    dims = image.GetDimension()
    order = tuple(range(dims - 1, -1, -1))  # SimpleITK's (k, j, i) -> (i, j, k)
    if image.GetNumberOfComponentsPerPixel() > 1:
        order += (dims,)  # components (the frames of a sequence) stay last
    array = np.transpose(array, order)
    return np.ascontiguousarray(array), itk_affine(image.GetSpacing(), image.GetOrigin(), image.GetDirection())


def write_nrrd(array: np.ndarray, affine: np.ndarray, path: Union[str, Path], dtype: Any = None) -> Path:
    """Write ``array`` (voxel-index order, 3D, or 4D with frames or classes last) on the RAS ``affine`` as a
    gzip-compressed NRRD, atomically; the inverse of ``read_nrrd``.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "labels.nrrd"
    >>> labels = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    >>> affine = np.array([[-1.5, 0, 0, 10], [0, -1.5, 0, -20], [0, 0, 8, 30], [0, 0, 0, 1.0]])
    >>> back, back_affine = read_nrrd(write_nrrd(labels, affine, path))
    >>> bool((back == labels).all()), bool(np.allclose(back_affine, affine))
    (True, True)
    """
    sitk = _simpleitk()
    array = np.asarray(array if dtype is None else array.astype(dtype))
    if array.ndim not in (3, 4):
        raise CoopSegError(f"{path}: NRRD output takes 3D or 4D arrays, not {array.ndim}D")
    vector = array.ndim == 4
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, (2, 1, 0, 3) if vector else (2, 1, 0))),
                                   isVector=vector)
    lps = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)  # the same flip takes RAS to LPS
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    image.SetSpacing(tuple(float(v) for v in spacing))
    image.SetOrigin(tuple(float(v) for v in lps[:3, 3]))
    image.SetDirection(tuple(float(v) for v in (lps[:3, :3] / spacing).ravel()))
    return write_atomically(path, lambda temporary: sitk.WriteImage(image, temporary, True))
