"""Reading and writing NIfTI files with one consistent geometry rule (nibabel, imported lazily).

Geometry rule (``header_affine``): use the sform when its voxel sizes agree with pixdim; otherwise the qform when
set; otherwise the sform's directions and origin with pixdim's voxel sizes. ACDC's files all carry an sform with
unit scales (qform_code 0) while pixdim holds the true spacing (e.g. 1.5625 x 1.5625 x 10 mm); taking the sform as
is, like nibabel's ``.affine`` does, would make every ACDC voxel 1 mm. Image and label go through the same rule.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Tuple, Union

import numpy as np

from CoopSegLib.atomic import write_atomically
from CoopSegLib.data.geometry import Volume
from CoopSegLib.errors import CoopSegError

PathLike = Union[str, "os.PathLike[str]"]
NIFTI_SUFFIXES = (".nii.gz", ".nii")


def _nibabel() -> Any:
    try:
        import nibabel
    except ImportError as error:  # pragma: no cover - depends on the install
        raise CoopSegError("reading NIfTI files needs nibabel: pip install 'CoopSegLib[cli]'") from error
    return nibabel


def strip_nifti_suffix(path: PathLike) -> str:
    """File name without .nii / .nii.gz."""
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def header_affine(header: Any) -> np.ndarray:
    """The voxel-to-world affine of a NIfTI header, robust to an sform whose scales disagree with pixdim."""
    pixdim = np.asarray(header["pixdim"][1:4], dtype=np.float64)
    sform_code = int(header["sform_code"])
    qform_code = int(header["qform_code"])
    if sform_code > 0:
        sform = np.asarray(header.get_sform(), dtype=np.float64)
        norms = np.linalg.norm(sform[:3, :3], axis=0)
        if np.allclose(norms, pixdim, rtol=1e-3) or not np.all(pixdim > 0):
            return sform
        if not np.all(np.isfinite(sform)) or not np.all(norms > 0):
            return sform  # broken beyond rescaling: return it as it is for the caller's checks to name
        if qform_code > 0:
            return np.asarray(header.get_qform(), dtype=np.float64)
        fixed = sform.copy()
        fixed[:3, :3] = sform[:3, :3] / norms * pixdim
        return fixed
    if qform_code > 0:
        return np.asarray(header.get_qform(), dtype=np.float64)
    return np.asarray(header.get_base_affine(), dtype=np.float64)


def load_nifti(path: PathLike, dims: Optional[int] = 3) -> Tuple[np.ndarray, np.ndarray, Any]:
    """Read (array, affine, nibabel image). ``dims``: 3 for a volume, 4 for a cine (X, Y, Z, T), None for any.

    With ``dims=None`` trailing singleton axes beyond the third are dropped (e.g. X, Y, Z, 1 -> X, Y, Z).
    """
    nib = _nibabel()
    path = Path(path)
    if not path.is_file():
        raise CoopSegError(f"{path}: file not found")
    try:
        image = nib.load(str(path))
        array = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises many types for corrupt or foreign files
        raise CoopSegError(f"{path}: cannot read as NIfTI ({error})") from error
    if dims is None:
        while array.ndim > 3 and array.shape[-1] == 1:
            array = array[..., 0]
        return array, header_affine(image.header), image
    if array.ndim == dims + 1 and array.shape[-1] == 1:
        array = array[..., 0]  # a trailing singleton dimension (e.g. X, Y, Z, 1)
    if array.ndim != dims:
        raise CoopSegError(f"{path}: expected a {dims}D image, got shape {array.shape}")
    return array, header_affine(image.header), image


def read_volume(path: PathLike) -> Volume:
    """Read a 3D NIfTI file as a Volume."""
    array, affine, _ = load_nifti(path, dims=3)
    return Volume(array, affine)


def _save_atomically(image: Any, path: Path) -> Path:
    """Save a nibabel image through a temporary file in the same folder and a rename: all or nothing."""
    nib = _nibabel()
    return write_atomically(path, lambda temporary: nib.save(image, temporary))


def write_like(array: np.ndarray, reference: Any, path: PathLike, dtype: Any = None) -> Path:
    """Write ``array`` with the header (both qform and sform, exactly) of nibabel image ``reference``.

    Atomic: written to a temporary file in the same folder and renamed, so an error leaves nothing behind.
    """
    nib = _nibabel()
    header = reference.header.copy()
    array = np.asarray(array if dtype is None else array.astype(dtype))
    header.set_data_dtype(array.dtype)
    header["scl_slope"], header["scl_inter"] = np.nan, np.nan  # values are written as they are
    return _save_atomically(nib.Nifti1Image(array, None, header=header), Path(path))


def write_nifti(array: np.ndarray, affine: np.ndarray, path: PathLike, dtype: Any = None) -> Path:
    """Write ``array`` as a new NIfTI with ``affine`` as both sform and qform (scanner coordinates), atomically.

    For images that came from another format (e.g. NRRD): the header records the affine exactly in the sform; the
    qform holds its nearest rigid-plus-scaling form, as NIfTI requires.
    """
    nib = _nibabel()
    array = np.asarray(array if dtype is None else array.astype(dtype))
    image = nib.Nifti1Image(array, np.asarray(affine, dtype=np.float64))
    image.header.set_data_dtype(array.dtype)
    image.set_sform(np.asarray(affine, dtype=np.float64), code=1)
    image.set_qform(np.asarray(affine, dtype=np.float64), code=1)
    return _save_atomically(image, Path(path))
