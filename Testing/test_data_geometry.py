"""Geometry: stack axis, canonical orientation, exact mapping back to the input grid, normalisation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from CoopSegLib.data.geometry import SliceMapping, Volume, stack_axis, to_model_slices
from CoopSegLib.data.normalisation import minmax_per_slice, normalise_percentiles
from CoopSegLib.data.phantom import phantom_subject
from CoopSegLib.data.preprocess import prepare_image
from CoopSegLib.errors import CoopSegError
from data_helpers import dice, permute_flip_affine, permute_flip_array, rotation, toy_model, undo_permute_flip

STORAGES = [
    (perm, flips)
    for perm in itertools.permutations(range(3))
    for flips in ((False, False, False), (True, False, True), (False, True, False), (True, True, True))
]


@pytest.fixture(scope="module")
def phantom():
    return phantom_subject(7, frames=("ED",))[0]


def test_stack_axis_is_largest_spacing_whatever_the_storage():
    affine = np.diag([1.25, 1.25, 8.0, 1.0])
    for perm, flips in STORAGES:
        moved = permute_flip_affine(affine, (30, 40, 10), perm, flips)
        assert stack_axis(moved) == list(perm).index(2)
    assert stack_axis(rotation(35, 0) @ np.diag([1.0, 9.0, 1.0, 1.0])) == 1
    assert stack_axis(np.eye(4)) == 2  # isotropic: ties go to the last axis


def test_same_image_in_any_storage_gives_identical_slices_and_labels(phantom):
    """Permuted, flipped and oblique storage of one image: same model slices and same label map, voxel for voxel."""
    volume = phantom.image
    reference_slices, reference_mapping = prepare_image(volume)
    reference = reference_mapping.to_input_grid(toy_model(reference_slices))
    assert 0 < (reference > 0).mean() < 1
    obliques = [np.eye(4), rotation(20, 2) @ rotation(-25, 0), rotation(-40, 1)]
    for (perm, flips), oblique in zip(STORAGES, itertools.cycle(obliques)):
        array = permute_flip_array(volume.array, perm, flips)
        affine = oblique @ permute_flip_affine(volume.affine, volume.shape, perm, flips)
        slices, mapping = prepare_image(Volume(array, affine))
        np.testing.assert_array_equal(slices, reference_slices)
        labels = mapping.to_input_grid(toy_model(slices))
        assert labels.shape == array.shape
        np.testing.assert_array_equal(undo_permute_flip(labels, perm, flips), reference)


def test_label_map_round_trip_is_exact_when_input_is_not_finer_than_model(phantom):
    label = phantom.label.array
    for spacing in (1.36719, 1.6, 2.3):
        affine = np.diag([-spacing, spacing, 7.0, 1.0])
        for perm, flips in STORAGES[::5]:
            stored = permute_flip_array(label, perm, flips)
            volume = Volume(stored, permute_flip_affine(affine, label.shape, perm, flips))
            slices, mapping = to_model_slices(volume, interpolation="nearest", size=256)
            assert set(np.unique(slices)) == {0, 1, 2, 3}
            np.testing.assert_array_equal(mapping.to_input_grid(slices), stored)


def test_label_map_round_trip_from_finer_input_loses_little(phantom):
    """0.7 mm input through the 1.37 mm model grid: not exact (information is lost), but close."""
    volume = Volume(phantom.label.array, np.diag([0.7, 0.7, 8.0, 1.0]))
    slices, mapping = to_model_slices(volume, interpolation="nearest")
    back = mapping.to_input_grid(slices)
    for code in (1, 2, 3):
        assert dice(back == code, phantom.label.array == code) > 0.9


def test_centring_matches_pad_then_crop():
    """At the model spacing the grid is a pure integer shift: pad to 224 and centre-crop 192 (the paper)."""
    rng = np.random.default_rng(0)
    array = rng.random((150, 210, 3)).astype(np.float32)
    # ACDC-like storage (in-plane axes towards -x, -y) is the canonical orientation: no reordering.
    slices, _ = to_model_slices(Volume(array, np.diag([-1.36719, -1.36719, 10, 1])), size=192)
    canonical = np.moveaxis(array, 2, 0)
    padded = np.zeros((3, 224, 224), np.float32)
    padded[:, 224 // 2 - 75 : 224 // 2 + 75, 224 // 2 - 105 : 224 // 2 + 105] = canonical
    np.testing.assert_allclose(slices, padded[:, 16:208, 16:208], atol=1e-6)


def test_probabilities_map_back_linearly_and_sum_to_one(phantom):
    volume = Volume(phantom.label.array, np.diag([-2.0, -2.0, 8.0, 1.0]))
    slices, mapping = to_model_slices(volume, interpolation="nearest")
    onehot = np.eye(4, dtype=np.float32)[slices].transpose(0, 3, 1, 2)
    probabilities = mapping.probabilities_to_input_grid(onehot)
    assert probabilities.shape == (4,) + volume.shape
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probabilities.argmax(axis=0), phantom.label.array)


def test_outside_the_field_of_view_is_background():
    array = np.ones((400, 400, 2), np.uint8)  # 800 mm across: far wider than 192 x 1.37 mm
    volume = Volume(array, np.diag([2.0, 2.0, 8.0, 1.0]))
    slices, mapping = to_model_slices(volume, interpolation="nearest")
    assert slices.min() == 1
    back = mapping.to_input_grid(slices)
    assert back[200, 200, 0] == 1 and back[0, 0, 0] == 0 and back[399, 200, 1] == 0
    probabilities = mapping.probabilities_to_input_grid(np.eye(4, dtype=np.float32)[slices].transpose(0, 3, 1, 2))
    assert probabilities[0, 0, 0, 0] == 1.0 and probabilities[1, 200, 200, 0] == pytest.approx(1.0)


def test_mapping_rejects_wrong_shapes():
    mapping = SliceMapping.from_affine((50, 60, 4), np.diag([1.5, 1.5, 8, 1]), 1.36719, 64)
    with pytest.raises(CoopSegError, match="expected label slices"):
        mapping.to_input_grid(np.zeros((4, 32, 32), np.uint8))
    with pytest.raises(CoopSegError, match="does not match"):
        mapping.to_model(np.zeros((50, 60, 5)))
    with pytest.raises(CoopSegError, match="3D"):
        Volume(np.zeros((5, 5)), np.eye(4))


def test_percentile_normalisation():
    rng = np.random.default_rng(1)
    array = rng.normal(100, 20, (40, 40, 5))
    array[0, 0, 0] = 1e6  # an outlier must not squash the range
    out = normalise_percentiles(array)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    assert 0.4 < float(np.median(out)) < 0.6
    assert (out == 1.0).mean() == pytest.approx(0.02, abs=0.005)
    assert not normalise_percentiles(np.full((4, 4, 2), 7.0)).any()


def test_minmax_per_slice():
    images = torch.stack([torch.linspace(2, 4, 16).view(4, 4), torch.full((4, 4), 3.0)])
    out = minmax_per_slice(images)
    assert float(out[0].min()) == 0.0 and float(out[0].max()) == 1.0
    assert not out[1].any()


def test_data_package_imports_without_imaging_libraries():
    """Inference needs torch + numpy only: nibabel, TorchIO, SimpleITK and MONAI load lazily."""
    import subprocess
    import sys

    from data_helpers import REPO

    code = ("import sys, CoopSegLib.data, CoopSegLib.data.readers, CoopSegLib.data.corruption; "
            "print(sorted(m for m in ('nibabel', 'torchio', 'SimpleITK', 'monai') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]"
