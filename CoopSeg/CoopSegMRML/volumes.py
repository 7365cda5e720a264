"""MRML volumes <-> (array, affine) as CoopSegLib takes them: arrays indexed (I, J, K), affine = IJK-to-RAS.

slicer.util.arrayFromVolume gives arrays indexed (K, J, I); CoopSegLib, like nibabel, indexes voxels (I, J, K) with a
4x4 voxel-to-RAS affine, which is exactly the node's IJKToRAS matrix (oblique directions included).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import slicer
import vtk

from CoopSegLib.errors import CoopSegError


def ijk_to_ras(volume_node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix).astype(np.float64)


def volume_image(volume_node) -> Tuple[np.ndarray, np.ndarray]:
    """(array indexed I, J, K; IJK-to-RAS affine) of a scalar volume node, or a CoopSegError saying what is wrong."""
    if volume_node is None:
        raise CoopSegError("no input volume selected")
    if volume_node.GetImageData() is None:
        raise CoopSegError(f"volume '{volume_node.GetName()}' holds no image data")
    if volume_node.GetImageData().GetNumberOfScalarComponents() != 1:
        raise CoopSegError(f"volume '{volume_node.GetName()}' has several components per voxel (colour or vector); "
                           "CoopSeg segments single-channel MR")
    transform = volume_node.GetParentTransformNode()
    if transform is not None and not transform.IsTransformToWorldLinear():
        raise CoopSegError(f"volume '{volume_node.GetName()}' is under a non-linear transform; harden or remove it "
                           "first")
    array = slicer.util.arrayFromVolume(volume_node).transpose(2, 1, 0)
    return array, ijk_to_ras(volume_node)


def set_geometry(volume_node, affine: np.ndarray) -> None:
    """Set a volume node's IJK-to-RAS matrix (origin, spacing and directions) from a 4x4 affine."""
    volume_node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(np.asarray(affine, dtype=np.float64)))


def add_volume(scene, name: str, array: np.ndarray, affine: np.ndarray, class_name="vtkMRMLScalarVolumeNode"):
    """A new volume node (array indexed I, J, K; IJK-to-RAS affine) with default display nodes."""
    node = scene.AddNewNodeByClass(class_name, name)
    set_geometry(node, affine)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(np.asarray(array).transpose(2, 1, 0)))
    node.CreateDefaultDisplayNodes()
    return node


def stack_slice_count(volume_node) -> int:
    """How many slices the volume has along the model's stack axis (CoopSegLib's ``stack_axis``: the largest
    spacing), the range of a preview's slice index; 0 without image data."""
    from CoopSegLib.data.geometry import stack_axis

    if volume_node is None or volume_node.GetImageData() is None:
        return 0
    return int(volume_node.GetImageData().GetDimensions()[stack_axis(ijk_to_ras(volume_node))])


def slice_centre(volume_node, index: int) -> Tuple[float, float, float]:
    """World RAS of the centre of slice ``index`` along the model's stack axis (how quality.csv counts slices),
    through the volume's linear parent transform if it has one; a CoopSegError for an index outside the volume."""
    from CoopSegLib.data.geometry import stack_axis

    count = stack_slice_count(volume_node)
    if not 0 <= index < count:
        raise CoopSegError(f"slice {index} is outside volume '{volume_node.GetName()}' ({count} slices)")
    affine = ijk_to_ras(volume_node)
    ijk = (np.asarray(volume_node.GetImageData().GetDimensions(), dtype=np.float64) - 1) / 2
    ijk[stack_axis(affine)] = index
    ras = (affine @ np.append(ijk, 1.0))[:3]
    transform = volume_node.GetParentTransformNode()
    if transform is not None:
        to_world = vtk.vtkGeneralTransform()
        transform.GetTransformToWorld(to_world)
        ras = np.asarray(to_world.TransformPoint(*ras))
    return tuple(float(v) for v in ras)
