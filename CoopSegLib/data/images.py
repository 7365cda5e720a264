"""Reading an image file of any supported format, for inference: NIfTI (nibabel) or NRRD (SimpleITK).

``read_image`` returns the array in voxel-index order with any number of dimensions (2D slice, 3D volume, 4D cine),
its RAS affine, and for NIfTI the nibabel image, whose header outputs copy exactly (``nifti.write_like``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

import numpy as np

from CoopSegLib.data.nifti import NIFTI_SUFFIXES, load_nifti
from CoopSegLib.data.nrrd import NRRD_SUFFIXES, read_nrrd
from CoopSegLib.errors import CoopSegError

IMAGE_SUFFIXES = NIFTI_SUFFIXES + NRRD_SUFFIXES


class ImageFile(NamedTuple):
    array: np.ndarray
    affine: np.ndarray  # 4x4 voxel-to-world, RAS, mm
    nifti: Optional[Any]  # the nibabel image for NIfTI files, None otherwise


def read_image(path: Union[str, Path]) -> ImageFile:
    """Read a NIfTI or NRRD image; a CoopSegError naming the file for anything else or anything unreadable.

    Args:
        path: a .nii, .nii.gz, .nrrd or .nhdr file.

    Returns:
        ``ImageFile(array, affine, nifti)``: the voxels in index order (any number of dimensions), the 4x4
        voxel-to-RAS affine in mm, and for NIfTI the nibabel image (outputs copy its header).

    Examples:
        >>> import tempfile, nibabel, numpy as np
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> nibabel.save(nibabel.Nifti1Image(np.zeros((4, 5, 3), np.float32), np.diag([1.5, 1.5, 8, 1])),
        ...              str(folder / "scan.nii.gz"))
        >>> image = read_image(folder / "scan.nii.gz")
        >>> image.array.shape, float(image.affine[2, 2])
        ((4, 5, 3), 8.0)
        >>> read_image(folder / "scan.png")
        Traceback (most recent call last):
        ...
        CoopSegLib.errors.CoopSegError: ...scan.png: file not found
    """
    path = Path(path)
    name = path.name.lower()
    if not path.exists():
        raise CoopSegError(f"{path}: file not found")
    if not path.is_file():
        raise CoopSegError(f"{path}: not a file")
    if name.endswith(NIFTI_SUFFIXES):
        array, affine, image = load_nifti(path, dims=None)
        return ImageFile(array, affine, image)
    if name.endswith(NRRD_SUFFIXES):
        array, affine = read_nrrd(path)
        return ImageFile(array, affine, None)
    raise CoopSegError(f"{path}: not a NIfTI or NRRD image (expected one of {', '.join(IMAGE_SUFFIXES)})")
