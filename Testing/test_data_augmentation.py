"""Augmentation: the paper's policy, TorchIO agreement, determinism, value ranges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from CoopSegLib.data.augmentation import AugmentationPolicy, SliceAugmenter, adjust_intensity, sample_parameters
from CoopSegLib.data.phantom import phantom_subject
from CoopSegLib.data.preprocess import prepare_case
from CoopSegLib.errors import CoopSegError


@pytest.fixture(scope="module")
def batch():
    prepared = prepare_case(phantom_subject(21)[0])
    chosen = prepared.labelled_slices()[:6]
    return torch.from_numpy(prepared.image[chosen].copy()), torch.from_numpy(prepared.label[chosen].astype(np.int64))


def test_policy_defaults_are_the_papers():
    policy = AugmentationPolicy()
    assert policy.flip_probability == 0.2 and policy.intensity_probability == 0.5
    assert policy.contrast == (0.8, 1.2) and policy.brightness == (-0.1, 0.1)
    assert policy.degrees == 15 and policy.translation == 0.1 and policy.scales == (0.8, 1.1)
    assert policy.rotate_45 and policy.elastic_probability == 0.5


def test_parameter_distributions():
    params = sample_parameters(AugmentationPolicy(), 20000, torch.Generator().manual_seed(0))
    assert float(params["flip_h"].double().mean()) == pytest.approx(0.2, abs=0.015)
    assert float(params["intensity"].double().mean()) == pytest.approx(0.5, abs=0.015)
    assert float(params["elastic_on"].double().mean()) == pytest.approx(0.5, abs=0.015)
    residual = (params["angle"] + 15) % 45 - 15  # distance from the nearest multiple of 45 degrees
    assert float(residual.abs().max()) <= 15.0 + 1e-9
    assert len(torch.unique(torch.round((params["angle"] - residual) / 45) % 8)) == 8
    assert 0.8 <= float(params["scale_h"].min()) and float(params["scale_h"].max()) <= 1.1
    assert float(params["shift_w"].abs().max()) <= 0.1
    assert float(params["elastic"].abs().max()) <= 7.5
    assert not params["elastic"][:, :, 0].any() and not params["elastic"][:, :, :, -1].any()  # locked borders


def test_intensity_step_clips_to_unit_range():
    images = torch.tensor([[[0.0, 0.5], [0.9, 1.0]]])
    params = {"intensity": torch.tensor([True]), "contrast": torch.tensor([1.2]), "brightness": torch.tensor([0.05])}
    out = adjust_intensity(images, params)
    assert torch.allclose(out, torch.tensor([[[0.05, 0.65], [1.0, 1.0]]]))
    params["intensity"] = torch.tensor([False])
    assert torch.equal(adjust_intensity(images, params), images)


@pytest.mark.parametrize("backend", ["torch", "torchio"])
def test_deterministic_ranges_and_labels(batch, backend):
    images, labels = batch
    augmenter = SliceAugmenter(backend=backend)
    first = augmenter(images, labels, torch.Generator().manual_seed(5))
    second = augmenter(images, labels, torch.Generator().manual_seed(5))
    third = augmenter(images, labels, torch.Generator().manual_seed(6))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], third[0])
    out_images, out_labels = first
    assert out_images.shape == images.shape and out_labels.dtype == torch.int64
    assert torch.allclose(out_images.amin(dim=(1, 2)), torch.zeros(6))
    assert torch.allclose(out_images.amax(dim=(1, 2)), torch.ones(6))
    assert set(torch.unique(out_labels).tolist()) <= {0, 1, 2, 3}
    assert (out_labels > 0).any(dim=(1, 2)).all()  # zoom >= 0.8 and 10 % shifts keep the heart in view


def test_torch_backend_matches_torchio_exactly_without_elastic(batch):
    """Flips, zoom, rotation (incl. 45-degree steps) and translation compose exactly as TorchIO composes them."""
    images, labels = batch
    policy = AugmentationPolicy(elastic_probability=0.0)
    fast = SliceAugmenter(policy, "torch")(images, labels, torch.Generator().manual_seed(3))
    reference = SliceAugmenter(policy, "torchio")(images, labels, torch.Generator().manual_seed(3))
    assert torch.equal(fast[1], reference[1])
    difference = (fast[0] - reference[0]).abs()
    # Pixels agree except along the edge of the rotated input, where SimpleITK and grid_sample pad differently.
    assert float((difference > 1e-3).double().mean()) < 0.01 and float(difference.mean()) < 1e-3


def test_elastic_deformation_is_comparable_to_torchio(batch):
    images, labels = batch
    policy = AugmentationPolicy(elastic_probability=1.0, flip_probability=0.0, degrees=0.0, rotate_45=False,
                                translation=0.0, scales=(1.0, 1.0), intensity_probability=0.0)
    changed = {}
    for backend in ("torch", "torchio"):
        _, out = SliceAugmenter(policy, backend)(images, labels, torch.Generator().manual_seed(8))
        changed[backend] = float((out != labels).double().mean())
    assert 0.002 < changed["torch"] < 0.06 and 0.0005 < changed["torchio"] < 0.06
    assert changed["torch"] < 5 * changed["torchio"] + 0.01


def test_unknown_backend_and_bad_shapes():
    with pytest.raises(CoopSegError, match="unknown augmentation backend"):
        SliceAugmenter(backend="cv2")
    with pytest.raises(CoopSegError, match="expected images and labels"):
        SliceAugmenter()(torch.zeros(2, 8, 8), torch.zeros(2, 8, 9, dtype=torch.long), torch.Generator())
