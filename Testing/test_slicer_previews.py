"""Hard-example previews as MRML nodes: one-slice corrupted image and segmentation nodes on the chosen slice of the
input, holding exactly what CoopSegLib's preview_hard_example computes."""

from __future__ import annotations

import numpy as np
import pytest

from CoopSegLib.errors import CoopSegError
from CoopSegLib.inference import Segmenter, preview_hard_example
from inference_helpers import ring_volume
from slicer_helpers import new_scene, segment_ids, slicer

from CoopSegMRML import CoopSegSceneLogic  # noqa: E402  (slicer_helpers puts it on the path)
from CoopSegMRML.segmentations import labels_from_segmentation
from CoopSegMRML.volumes import add_volume, ijk_to_ras, volume_image

SLICE = 3


@pytest.fixture(scope="module")
def previewed(bundle):
    image, _ = ring_volume(6, seed=43)
    scene = new_scene()
    volume = add_volume(scene, "rings", image.array, image.affine)
    logic = CoopSegSceneLogic(scene)
    nodes = logic.preview(volume, SLICE, scheme="spatial", fraction=0.5, soft_factor=0.2, seed=7, model=str(bundle),
                          device="cpu")
    expected = preview_hard_example(Segmenter(bundle, device="cpu"), image.array, image.affine, SLICE, "spatial",
                                    0.5, 0.2, 7)
    return scene, logic, volume, nodes, expected


def test_preview_nodes_hold_the_corrupted_image_and_segmentation(previewed):
    _, _, _, nodes, expected = previewed
    image, _ = volume_image(nodes.image)
    assert image.shape == (32, 32, 1)
    np.testing.assert_allclose(image[..., 0], expected.corrupted_image, atol=1e-6)
    labels = labels_from_segmentation(nodes.segmentation, nodes.image)
    np.testing.assert_array_equal(labels[..., 0], expected.corrupted_labels)
    assert segment_ids(nodes.segmentation) == ["LV_cavity", "LV_myocardium", "RV_cavity"]
    assert not np.array_equal(expected.corrupted_labels, expected.labels)  # p = 0.5 really corrupts


def test_preview_lies_on_the_chosen_slice_of_the_input(previewed):
    _, _, volume, nodes, _ = previewed
    slice_matrix, volume_matrix = ijk_to_ras(nodes.image), ijk_to_ras(volume)
    np.testing.assert_allclose(slice_matrix[:3, :3], volume_matrix[:3, :3])
    np.testing.assert_allclose(slice_matrix[:3, 3], (volume_matrix @ [0, 0, SLICE, 1])[:3])


def test_preview_names_say_what_was_done(previewed):
    _, _, _, nodes, _ = previewed
    assert nodes.image.GetName() == "rings hard example (targeted spatial, p=0.5, a=0.2, slice 3) image"
    assert nodes.segmentation.GetName().endswith("slice 3) segmentation")
    display = nodes.image.GetDisplayNode()
    assert (display.GetWindow(), display.GetLevel()) == pytest.approx((1.0, 0.5))


def test_a_new_preview_refills_the_same_nodes(previewed, bundle):
    scene, logic, volume, nodes, _ = previewed
    again = logic.preview(volume, 0, scheme="dropout", fraction=0.0, model=str(bundle), device="cpu")
    assert (again.image, again.segmentation) == (nodes.image, nodes.segmentation)
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 1
    clean = preview_hard_example(Segmenter(bundle, device="cpu"), *volume_image(volume), 0, "dropout", 0.0)
    np.testing.assert_array_equal(labels_from_segmentation(again.segmentation, again.image)[..., 0], clean.labels)


def test_a_slice_outside_the_volume_is_refused(previewed, bundle):
    _, logic, volume, _, _ = previewed
    with pytest.raises(CoopSegError, match="slice index 6 is outside"):
        logic.preview(volume, 6, model=str(bundle), device="cpu")
    assert slicer.mrmlScene is not None


def test_the_preview_slice_range_follows_the_models_stack_axis():
    from CoopSegMRML.volumes import stack_slice_count

    scene = new_scene()
    array = np.zeros((7, 30, 20), dtype=np.float32)
    across_i = add_volume(scene, "stack along I", array, np.diag([9.0, 1.5, 1.5, 1.0]))  # thick slices along I
    along_k = add_volume(scene, "stack along K", array, np.diag([1.5, 1.5, 9.0, 1.0]))
    assert stack_slice_count(across_i) == 7 and stack_slice_count(along_k) == 20
    assert stack_slice_count(scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")) == 0
