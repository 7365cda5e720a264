"""An oblique IJK-to-RAS volume (rotated in two world axes, stored LPS-like with flipped axes) segmented through
MRML gives the engine's labels for the same array and affine, on the oblique grid, and still finds the anatomy."""

from __future__ import annotations

import numpy as np
import pytest
import vtk

from CoopSegLib.inference import Segmenter
from data_helpers import rotation
from inference_helpers import mean_dice, ring_volume
from slicer_helpers import new_scene, slicer

from CoopSegMRML import CoopSegSceneLogic  # noqa: E402  (slicer_helpers puts it on the path)
from CoopSegMRML.segmentations import labels_from_segmentation
from CoopSegMRML.volumes import add_volume, ijk_to_ras, volume_image


@pytest.fixture(scope="module")
def oblique(bundle):
    image, truth = ring_volume(6, seed=41)
    affine = rotation(25, 0) @ rotation(-35, 2) @ image.affine
    scene = new_scene()
    volume = add_volume(scene, "oblique", image.array, affine)
    result = CoopSegSceneLogic(scene).segment(volume, model=str(bundle), device="cpu")
    return volume, result, image.array, affine, truth.array


def test_volume_node_keeps_the_oblique_matrix_and_voxels(oblique):
    volume, _, array, affine, _ = oblique
    np.testing.assert_allclose(ijk_to_ras(volume), affine, atol=1e-9)
    read_array, read_affine = volume_image(volume)
    np.testing.assert_array_equal(read_array, array)
    np.testing.assert_allclose(read_affine, affine, atol=1e-9)
    assert abs(affine[0, 1]) > 0.1 and abs(affine[1, 0]) > 0.1  # truly oblique, not a permutation


def test_labels_equal_the_engine_on_the_same_array_and_affine(oblique, bundle):
    volume, result, array, affine, truth = oblique
    expected = Segmenter(bundle, device="cpu").segment(array, affine)
    np.testing.assert_array_equal(labels_from_segmentation(result.refined, volume), expected.refined)
    np.testing.assert_array_equal(labels_from_segmentation(result.initial, volume), expected.initial)
    assert mean_dice(expected.refined, truth) > 0.6  # the geometry reached the model right: the rings are found


def test_segment_labelmaps_lie_on_the_oblique_grid(oblique):
    volume, result, _, affine, _ = oblique
    labelmap = slicer.vtkOrientedImageData()
    result.refined.GetBinaryLabelmapRepresentation("LV_myocardium", labelmap)
    matrix = vtk.vtkMatrix4x4()
    labelmap.GetImageToWorldMatrix(matrix)
    np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(matrix), affine, atol=1e-6)
