"""Hard-example previews as MRML nodes: the corrupted image and corrupted segmentation of one input slice, each a
one-slice node lying exactly on that slice of the input (so the views overlay them on the input)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from CoopSegMRML.segmentations import place_beside, segmentation_from_labels
from CoopSegMRML.volumes import add_volume, ijk_to_ras, set_geometry

if TYPE_CHECKING:  # torch: the preview itself is computed by CoopSegLib when asked for
    from CoopSegLib.inference import HardExamplePreview

SCHEME_LABELS = {"dropout": "random dropout", "channel": "targeted channel", "spatial": "targeted spatial"}


def slice_affine(affine: np.ndarray, axis: int, index: int) -> np.ndarray:
    """IJK-to-RAS of the one-slice grid at ``index`` along ``axis`` of a volume with IJK-to-RAS ``affine``."""
    moved = np.array(affine, dtype=np.float64)
    moved[:3, 3] += moved[:3, axis] * index
    return moved


@dataclass
class PreviewNodes:
    image: object  # vtkMRMLScalarVolumeNode: x_hat, the corrupted image (values in the model's [0, 1] range)
    segmentation: object  # vtkMRMLSegmentationNode: argmax of p_hat, the corrupted segmentation


def preview_nodes(scene, volume_node, preview: "HardExamplePreview", existing: PreviewNodes = None) -> PreviewNodes:
    """Make (or refill ``existing``) preview nodes for ``preview``, computed from ``volume_node``."""
    affine = slice_affine(ijk_to_ras(volume_node), preview.axis, preview.slice_index)
    image = np.expand_dims(preview.corrupted_image.astype(np.float32), preview.axis)
    labels = np.expand_dims(preview.corrupted_labels, preview.axis)
    title = (f"{volume_node.GetName()} hard example ({SCHEME_LABELS[preview.scheme]}, p={preview.fraction:g}, "
             f"a={preview.soft_factor:g}, slice {preview.slice_index})")
    if existing is None:
        image_node = add_volume(scene, f"{title} image", image, affine)
    else:
        import slicer

        image_node = existing.image
        image_node.SetName(f"{title} image")
        set_geometry(image_node, affine)
        slicer.util.updateVolumeFromArray(image_node, np.ascontiguousarray(image.transpose(2, 1, 0)))
    display = image_node.GetDisplayNode()
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, 1.0)  # the decoder's output range: keeps previews comparable across settings
    place_beside(image_node, volume_node)
    segmentation = segmentation_from_labels(scene, f"{title} segmentation", labels, image_node,
                                            existing.segmentation if existing is not None else None)
    place_beside(segmentation, volume_node)
    return PreviewNodes(image_node, segmentation)
