"""Importing the worker's results, all or nothing: nothing is made when the input left the scene or the scene was
closed, a failure part-way removes what was made and leaves an overwritten node as it was, a chosen output node is
overwritten only when passed explicitly, and a volume under a linear transform gets its results on its own grid
under the same transform (transformed once, not twice)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import vtk

from slicer_helpers import new_scene, segment_ids, slicer  # first: puts CoopSegMRML on the path

import CoopSegMRML.logic
from CoopSegLib.errors import CoopSegError
from data_helpers import rotation
from inference_helpers import ring_volume

from CoopSegMRML import CoopSegSceneLogic
from CoopSegMRML.segmentations import labels_from_segmentation
from CoopSegMRML.volumes import add_volume, ijk_to_ras


def node_count(scene) -> int:
    return sum(scene.GetNumberOfNodesByClass(c) for c in ("vtkMRMLSegmentationNode", "vtkMRMLTableNode"))


@pytest.fixture
def scene_volume():
    image, _ = ring_volume(5, seed=53)
    scene = new_scene()
    return scene, add_volume(scene, "rings", image.array, image.affine)


def test_an_input_removed_while_segmenting_gets_a_message_and_no_nodes(scene_volume, bundle):
    scene, volume = scene_volume
    logic = CoopSegSceneLogic(scene)
    job = logic.start(volume, model=str(bundle), device="cpu")
    scene.RemoveNode(volume)
    job.wait(300)
    with pytest.raises(CoopSegError, match="input volume left the scene"):
        logic.import_result(job)
    assert node_count(scene) == 0 and not os.path.exists(job.process.folder)


def test_a_scene_closed_while_segmenting_gets_no_nodes(scene_volume, bundle):
    scene, volume = scene_volume
    logic = CoopSegSceneLogic(scene)
    job = logic.start(volume, model=str(bundle), device="cpu")
    scene.Clear(0)
    job.wait(300)
    with pytest.raises(CoopSegError, match="left the scene"):
        logic.import_result(job)
    assert node_count(scene) == 0


def test_overwriting_is_explicit_and_all_or_nothing(scene_volume, bundle, monkeypatch):
    scene, volume = scene_volume
    logic = CoopSegSceneLogic(scene)
    first = logic.segment(volume, model=str(bundle), device="cpu")
    expected = labels_from_segmentation(first.refined, volume)
    first.refined.GetSegmentation().RemoveSegment("RV_cavity")  # the user's edit
    nodes = node_count(scene)

    def broken_table(*args):
        raise RuntimeError("table failed")

    monkeypatch.setattr(CoopSegMRML.logic, "fill_segment_volume_table", broken_table)
    with pytest.raises(RuntimeError, match="table failed"):
        logic.segment(volume, model=str(bundle), device="cpu", output=first.refined)
    assert node_count(scene) == nodes  # what the failed import made is gone ...
    assert segment_ids(first.refined) == ["LV_cavity", "LV_myocardium"]  # ... and the target is as it was
    monkeypatch.undo()

    again = logic.segment(volume, model=str(bundle), device="cpu", output=first.refined)
    assert (again.refined, again.initial, again.table) == (first.refined, first.initial, first.table)
    assert node_count(scene) == nodes
    assert segment_ids(first.refined) == ["LV_cavity", "LV_myocardium", "RV_cavity"]
    np.testing.assert_array_equal(labels_from_segmentation(first.refined, volume), expected)


def test_a_volume_under_a_linear_transform_is_segmented_on_its_own_grid(bundle):
    image, _ = ring_volume(5, seed=59)
    scene = new_scene()
    volume = add_volume(scene, "moved", image.array, image.affine)
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    moving = rotation(30, 2) @ rotation(-20, 0)
    moving[:3, 3] = (25.0, -40.0, 12.0)
    transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(moving))
    volume.SetAndObserveTransformNodeID(transform.GetID())
    logic = CoopSegSceneLogic(scene)
    result = logic.segment(volume, model=str(bundle), device="cpu")
    untransformed = logic.segment(add_volume(scene, "still", image.array, image.affine), model=str(bundle),
                                  device="cpu")
    converter = slicer.vtkSegmentationConverter
    expected = converter.SerializeImageGeometry(slicer.util.vtkMatrixFromArray(ijk_to_ras(volume)),
                                                volume.GetImageData())
    for node in (result.initial, result.refined):
        assert node.GetTransformNodeID() == transform.GetID()
        geometry = node.GetSegmentation().GetConversionParameter(converter.GetReferenceImageGeometryParameterName())
        assert geometry == expected  # the volume's own grid: the transform applies once, through the parent
        labelmap = slicer.vtkOrientedImageData()
        node.GetBinaryLabelmapRepresentation("LV_cavity", labelmap)
        matrix = vtk.vtkMatrix4x4()
        labelmap.GetImageToWorldMatrix(matrix)
        np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(matrix), image.affine, atol=1e-6)
    labels = labels_from_segmentation(result.refined, volume)
    np.testing.assert_array_equal(labels, labels_from_segmentation(untransformed.refined, untransformed.refined
                                                                   .GetNodeReference("CoopSegInput")))
    assert np.count_nonzero(labels) > 0


def test_an_overwrite_failing_after_the_first_node_leaves_every_existing_node_as_it_was(scene_volume, bundle,
                                                                                       monkeypatch):
    from CoopSegMRML.tables import table_rows

    scene, volume = scene_volume
    logic = CoopSegSceneLogic(scene)
    first = logic.segment(volume, model=str(bundle), device="cpu")
    first.refined.GetSegmentation().RemoveSegment("RV_cavity")  # the user's edits, to both nodes
    first.initial.GetSegmentation().RemoveSegment("LV_cavity")
    initial_labels = labels_from_segmentation(first.initial, volume)
    rows, nodes = table_rows(first.table), node_count(scene)
    geometry = first.refined.GetSegmentation().GetConversionParameter("ReferenceImageGeometry")
    real_fill = CoopSegMRML.logic.fill_segment_volume_table

    def fill_then_fail_on_the_existing_table(table, table_rows_):
        if table is first.table:  # the overwrite's last step: both segmentation nodes have been refilled by now
            assert segment_ids(first.refined) == ["LV_cavity", "LV_myocardium", "RV_cavity"]
            raise RuntimeError("existing table failed")
        real_fill(table, table_rows_)

    monkeypatch.setattr(CoopSegMRML.logic, "fill_segment_volume_table", fill_then_fail_on_the_existing_table)
    with pytest.raises(RuntimeError, match="existing table failed"):
        logic.segment(volume, model=str(bundle), device="cpu", output=first.refined)
    assert node_count(scene) == nodes
    assert segment_ids(first.refined) == ["LV_cavity", "LV_myocardium"]
    assert segment_ids(first.initial) == ["LV_myocardium", "RV_cavity"]
    np.testing.assert_array_equal(labels_from_segmentation(first.initial, volume), initial_labels)
    assert table_rows(first.table) == rows
    assert first.refined.GetSegmentation().GetConversionParameter("ReferenceImageGeometry") == geometry
