"""The module logic on real MRML nodes (slicer-core): a real ACDC volume read by Slicer's volumes logic, segmented
into "initial (FTN)" and "refined (FTN+STN)" nodes whose labels equal `coopseg segment`'s output voxel for voxel."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import vtk

from CoopSegLib.cli import main
from CoopSegLib.evaluation.indices import voxel_volume_ml
from slicer_helpers import ACDC_ED, needs_acdc, new_scene, segment_ids, slicer

from CoopSegMRML import INPUT_REFERENCE, CoopSegSceneLogic  # noqa: E402  (slicer_helpers puts it on the path)
from CoopSegMRML.headless import load_volume
from CoopSegMRML.segmentations import labels_from_segmentation
from CoopSegMRML.tables import table_rows
from CoopSegMRML.terminology import TERMINOLOGY_CONTEXT, segment_terminology, type_code
from CoopSegMRML.volumes import ijk_to_ras

pytestmark = needs_acdc


@pytest.fixture(scope="module")
def cli_labels(bundle, tmp_path_factory):
    """`coopseg segment` on the same file with the same bundle: refined (default stage) and initial (--stage ftn)."""
    out = {}
    for stage in ("stn", "ftn"):
        folder = tmp_path_factory.mktemp(stage)
        assert main(["segment", str(ACDC_ED), "--output-dir", str(folder), "--model", str(bundle), "--device", "cpu",
                     "--stage", stage, "--no-second-look"]) == 0  # as the logic's segment() by default
        out[stage] = np.asarray(nib.load(str(folder / "patient001_frame01.nii.gz")).dataobj)
    return out


@pytest.fixture(scope="module")
def segmented(bundle):
    """A scene with the ACDC volume under a patient / study in the subject hierarchy, segmented by the logic."""
    scene = new_scene()
    volume = load_volume(scene, ACDC_ED)
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    patient = hierarchy.CreateSubjectItem(hierarchy.GetSceneItemID(), "patient001")
    study = hierarchy.CreateStudyItem(patient, "cine MR")
    hierarchy.CreateItem(study, volume)
    logic = CoopSegSceneLogic(scene)
    result = logic.segment(volume, model=str(bundle), device="cpu")
    return scene, logic, volume, result, study


def test_two_segmentation_nodes_named_after_the_input(segmented):
    scene, _, volume, result, _ = segmented
    assert volume.GetName() == "patient001_frame01"
    assert result.initial.GetName() == "patient001_frame01 initial (FTN)"
    assert result.refined.GetName() == "patient001_frame01 refined (FTN+STN)"
    assert result.device == "cpu"
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 2
    for node in (result.initial, result.refined, result.table):
        assert node.GetNodeReferenceID(INPUT_REFERENCE) == volume.GetID()


def test_segments_are_named_coloured_and_tagged_with_snomed_codes(segmented):
    result = segmented[3]
    for node in (result.initial, result.refined):
        assert segment_ids(node) == ["LV_cavity", "LV_myocardium", "RV_cavity"]
        segmentation = node.GetSegmentation()
        segments = [segmentation.GetSegment(i) for i in segment_ids(node)]
        assert [s.GetName() for s in segments] == ["LV cavity", "LV myocardium", "RV cavity"]
        np.testing.assert_allclose([s.GetColor() for s in segments],
                                   [(0.89, 0.26, 0.20), (0.95, 0.77, 0.21), (0.24, 0.50, 0.85)], atol=1e-6)
        terms = [segment_terminology(s) for s in segments]  # the tag Slicer 5.6 and later read
        assert [type_code(t) for t in terms] == ["87878005", "74281007", "53085002"]  # LV, myocardium, RV
        assert terms[1].split("~")[5] == "SCT^87878005^Left ventricle"  # the myocardium's anatomic region
        assert all(t.split("~")[1].startswith("SCT^") and t.split("~")[0] == TERMINOLOGY_CONTEXT for t in terms)


def test_reference_geometry_is_the_inputs(segmented):
    _, _, volume, result, _ = segmented
    converter = slicer.vtkSegmentationConverter
    expected = converter.SerializeImageGeometry(slicer.util.vtkMatrixFromArray(ijk_to_ras(volume)),
                                                volume.GetImageData())
    for node in (result.initial, result.refined):
        segmentation = node.GetSegmentation()
        assert segmentation.GetConversionParameter(converter.GetReferenceImageGeometryParameterName()) == expected
        labelmap = slicer.vtkOrientedImageData()
        node.GetBinaryLabelmapRepresentation("LV_cavity", labelmap)
        matrix = vtk.vtkMatrix4x4()
        labelmap.GetImageToWorldMatrix(matrix)
        np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(matrix), ijk_to_ras(volume), atol=1e-9)


def test_labels_equal_coopseg_segment_voxel_for_voxel(segmented, cli_labels):
    _, _, volume, result, _ = segmented
    refined = labels_from_segmentation(result.refined, volume)
    initial = labels_from_segmentation(result.initial, volume)
    assert refined.shape == cli_labels["stn"].shape == (216, 256, 10)
    np.testing.assert_array_equal(refined, cli_labels["stn"])
    np.testing.assert_array_equal(initial, cli_labels["ftn"])
    assert np.count_nonzero(refined) > 0 and not np.array_equal(initial, refined)


def test_results_sit_under_the_inputs_study(segmented):
    scene, _, _, result, study = segmented
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    for node in (result.initial, result.refined, result.table):
        assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(node)) == study


def test_volume_table_matches_the_label_maps(segmented, cli_labels):
    _, _, volume, result, _ = segmented
    voxel = voxel_volume_ml(ijk_to_ras(volume))
    assert voxel == pytest.approx(1.5625 * 1.5625 * 10 / 1000)
    rows = table_rows(result.table)
    assert [row[0] for row in rows] == ["LV cavity", "LV myocardium", "RV cavity"]
    for code, (_, initial_ml, refined_ml, dice) in zip((1, 2, 3), rows):
        a, b = cli_labels["ftn"] == code, cli_labels["stn"] == code
        assert initial_ml == pytest.approx(np.count_nonzero(a) * voxel)
        assert refined_ml == pytest.approx(np.count_nonzero(b) * voxel)
        expected = 2 * np.count_nonzero(a & b) / (a.sum() + b.sum()) if a.sum() + b.sum() else np.nan
        np.testing.assert_allclose(dice, expected, equal_nan=True)


def test_stage_switch_shows_one_segmentation(segmented):
    logic, result = segmented[1], segmented[3]
    assert (result.initial.GetDisplayNode().GetVisibility(), result.refined.GetDisplayNode().GetVisibility()) == (0, 1)
    logic.show(result, "initial")
    assert (result.initial.GetDisplayNode().GetVisibility(), result.refined.GetDisplayNode().GetVisibility()) == (1, 0)
    logic.show(result, "refined")
    assert result.refined.GetDisplayNode().GetVisibility() == 1


def test_running_again_makes_new_nodes_and_keeps_the_edits(segmented, bundle):
    scene, logic, volume, result, _ = segmented
    result.refined.GetSegmentation().RemoveSegment("RV_cavity")  # an edit made in the Segment Editor
    again = logic.segment(volume, model=str(bundle), device="cpu")
    assert {again.initial, again.refined, again.table}.isdisjoint({result.initial, result.refined, result.table})
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 4
    assert segment_ids(result.refined) == ["LV_cavity", "LV_myocardium"]  # the edited result is untouched
    assert segment_ids(again.refined) == ["LV_cavity", "LV_myocardium", "RV_cavity"]
    assert again.refined.GetName() != result.refined.GetName()
    assert logic.results(volume).refined is again.refined  # the newest run is the volume's result
