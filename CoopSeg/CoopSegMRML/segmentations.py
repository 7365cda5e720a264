"""Segmentation nodes from CoopSeg label maps and back: named, coloured, terminology-tagged segments on the input's
own grid (reference geometry = the input volume), placed beside the input in the subject hierarchy."""

from __future__ import annotations

from typing import Optional

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from CoopSegMRML.terminology import SLICER_STRUCTURES, set_terminology
from CoopSegMRML.volumes import ijk_to_ras

VTK_UNSIGNED_CHAR = 3


def oriented_mask(mask: np.ndarray, affine: np.ndarray):
    """A vtkOrientedImageData (uint8, I x J x K) holding ``mask`` (indexed I, J, K) with voxel-to-RAS ``affine``."""
    image = slicer.vtkOrientedImageData()
    image.SetDimensions(*mask.shape)
    image.AllocateScalars(VTK_UNSIGNED_CHAR, 1)
    image.SetImageToWorldMatrix(slicer.util.vtkMatrixFromArray(np.asarray(affine, dtype=np.float64)))
    scalars = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    scalars[:] = np.asarray(mask, dtype=np.uint8).transpose(2, 1, 0).ravel()  # VTK runs I fastest
    image.Modified()
    return image


def fill_segmentation(segmentation_node, labels: np.ndarray, affine: np.ndarray) -> None:
    """Replace the node's segments with one per structure, each filled from ``labels == code`` (empty if absent)."""
    segmentation = segmentation_node.GetSegmentation()
    segmentation.RemoveAllSegments()
    for structure in SLICER_STRUCTURES:
        segment_id = segmentation.AddEmptySegment(structure.segment_id, structure.name, structure.color)
        set_terminology(segmentation.GetSegment(segment_id), structure.terminology)
        slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
            oriented_mask(labels == structure.code, affine), segmentation_node, segment_id,
            slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)


def place_beside(node, reference_node) -> None:
    """Put ``node`` in the subject hierarchy under ``reference_node``'s parent (its study, when it has one) and under
    the same parent transform, so results travel with the input."""
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(node.GetScene())
    parent = hierarchy.GetItemParent(hierarchy_item(hierarchy, reference_node))
    hierarchy.SetItemParent(hierarchy_item(hierarchy, node), parent)
    if node.IsA("vtkMRMLTransformableNode"):
        node.SetAndObserveTransformNodeID(reference_node.GetTransformNodeID())


def hierarchy_item(hierarchy, node) -> int:
    """The node's subject hierarchy item; created at the scene level where nothing made one (plain slicer-core has
    no subject hierarchy plugins to do it when nodes are added)."""
    item = hierarchy.GetItemByDataNode(node)
    if item == hierarchy.GetInvalidItemID():
        item = hierarchy.CreateItem(hierarchy.GetSceneItemID(), node)
    return item


def segmentation_from_labels(scene, name: str, labels: np.ndarray, reference_volume,
                             node: Optional[object] = None):
    """A segmentation node (new, or ``node`` refilled) holding ``labels`` (indexed I, J, K, on the reference grid)."""
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        node.CreateDefaultDisplayNodes()
    node.SetName(name)
    # Under the reference's transform first: Slicer maps the reference geometry through any transform between the
    # volume and the segmentation, so set afterwards it is the volume's own grid, not a second time transformed.
    place_beside(node, reference_volume)
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
    fill_segmentation(node, labels, ijk_to_ras(reference_volume))
    return node


def labels_from_segmentation(segmentation_node, reference_volume,
                             codes: Optional[dict] = None) -> np.ndarray:
    """The node's segments as a label map (uint8, indexed I, J, K) on ``reference_volume``'s grid. ``codes`` maps
    segment IDs to label codes (default: CoopSeg's three structures); a segment the user deleted counts as empty.
    Reads the segments as they are now, so edits made in the Segment Editor count."""
    codes = codes if codes is not None else {s.segment_id: s.code for s in SLICER_STRUCTURES}
    segmentation = segmentation_node.GetSegmentation()
    present = [segment_id for segment_id in codes if segmentation.GetSegment(segment_id) is not None]
    dimensions = reference_volume.GetImageData().GetDimensions()
    labels = np.zeros(dimensions, dtype=np.uint8)
    if not present:
        return labels
    scene = segmentation_node.GetScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "CoopSeg temporary labelmap")
    try:
        ids = vtk.vtkStringArray()
        for segment_id in present:
            ids.InsertNextValue(segment_id)
        exported = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node, ids, labelmap, reference_volume)
        if not exported or labelmap.GetImageData() is None:
            raise RuntimeError(f"could not export the segments of '{segmentation_node.GetName()}' to a label map")
        values = slicer.util.arrayFromVolume(labelmap).transpose(2, 1, 0)  # the i-th exported segment is i + 1
        for index, segment_id in enumerate(present):
            labels[values == index + 1] = codes[segment_id]
        return labels
    finally:
        scene.RemoveNode(labelmap)


class NodeState:
    """What overwriting a result node changes (a segmentation's segments, reference geometry and display node, or a
    table's content; its transform and subject hierarchy parent), captured so that ``restore`` puts it back when a
    later step of the overwrite fails."""

    def __init__(self, node) -> None:
        self.node = node
        self.transform = node.GetTransformNodeID() if node.IsA("vtkMRMLTransformableNode") else None
        hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(node.GetScene())
        self.parent = hierarchy.GetItemParent(hierarchy_item(hierarchy, node))
        if node.IsA("vtkMRMLSegmentationNode"):
            self.content = slicer.vtkSegmentation()
            self.content.DeepCopy(node.GetSegmentation())  # segments and conversion parameters (the geometry)
            self.geometry = node.GetNodeReferenceID(node.GetReferenceImageGeometryReferenceRole())
            self.display = node.GetDisplayNode()
        else:
            self.content = vtk.vtkTable()
            self.content.DeepCopy(node.GetTable())

    def restore(self) -> None:
        node = self.node
        hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(node.GetScene())
        hierarchy.SetItemParent(hierarchy_item(hierarchy, node), self.parent)
        if node.IsA("vtkMRMLTransformableNode"):
            node.SetAndObserveTransformNodeID(self.transform)
        if node.IsA("vtkMRMLSegmentationNode"):
            node.GetSegmentation().DeepCopy(self.content)
            node.SetNodeReferenceID(node.GetReferenceImageGeometryReferenceRole(), self.geometry)
            if self.display is None and node.GetDisplayNode() is not None:  # made by the failed overwrite
                node.GetScene().RemoveNode(node.GetDisplayNode())
        else:
            node.GetTable().DeepCopy(self.content)
            node.Modified()
