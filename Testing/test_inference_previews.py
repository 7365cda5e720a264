"""Hard-example previews: the latent masks of training applied to one slice at inference, on the slice's grid."""

import numpy as np
import pytest
import torch

from CoopSegLib.errors import CoopSegError
from CoopSegLib.inference import Segmenter, preview_hard_example
from data_helpers import permute_flip_affine, permute_flip_array
from inference_helpers import ring_volume


@pytest.fixture(scope="module")
def segmenter(bundle):
    return Segmenter(bundle, device="cpu")


@pytest.fixture(scope="module")
def volume():
    return ring_volume(5, seed=21, size=40, spacing=1.2)[0]


@pytest.mark.parametrize("scheme", ["dropout", "channel", "spatial"])
def test_previews_are_deterministic_per_seed_and_differ_between_seeds(segmenter, volume, scheme):
    state = torch.random.get_rng_state()
    first = preview_hard_example(segmenter, volume.array, volume.affine, 2, scheme, 0.3, 0.2, seed=1)
    again = preview_hard_example(segmenter, volume.array, volume.affine, 2, scheme, 0.3, 0.2, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator was not touched
    for name in ("corrupted_image", "corrupted_probabilities", "corrupted_labels", "reconstruction"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert first.corrupted_image.shape == volume.shape[:2] and first.corrupted_labels.dtype == np.uint8
    assert first.corrupted_probabilities.shape == (4,) + volume.shape[:2]
    assert not np.allclose(first.corrupted_image, first.reconstruction, atol=1e-3)  # masking changed something
    if scheme == "dropout":  # targeted masks follow the gradient: the seed only matters for random dropout
        other = preview_hard_example(segmenter, volume.array, volume.affine, 2, scheme, 0.3, 0.2, seed=2)
        assert not np.allclose(other.corrupted_image, first.corrupted_image, atol=1e-4)


def test_fraction_zero_gives_the_clean_reconstruction_and_segmentation(segmenter, volume):
    preview = preview_hard_example(segmenter, volume.array, volume.affine, 1, "channel", 0.0, 0.0, seed=0)
    np.testing.assert_array_equal(preview.corrupted_image, preview.reconstruction)
    np.testing.assert_array_equal(preview.corrupted_labels, preview.labels)
    result = segmenter.segment(volume.array, volume.affine, stage="ftn")
    np.testing.assert_array_equal(preview.labels, result.initial[:, :, 1])  # the FTN's own answer for that slice
    assert 0.0 <= preview.image.min() and preview.image.max() <= 1.0


def test_stronger_masks_corrupt_more(segmenter, volume):
    def change(fraction):
        p = preview_hard_example(segmenter, volume.array, volume.affine, 2, "spatial", fraction, 0.0, seed=0)
        return np.abs(p.corrupted_image - p.reconstruction).mean()

    assert change(0.05) < change(0.5)


def test_the_slice_index_runs_along_the_stack_axis_whatever_the_storage(segmenter, volume):
    reference = preview_hard_example(segmenter, volume.array, volume.affine, 3, "dropout", 0.2, 0.0, seed=5)
    perm, flips = (2, 0, 1), (True, False, False)  # the stack axis becomes axis 0, reversed
    array = permute_flip_array(volume.array, perm, flips)
    affine = permute_flip_affine(volume.affine, volume.shape, perm, flips)
    moved = preview_hard_example(segmenter, array, affine, volume.shape[2] - 1 - 3, "dropout", 0.2, 0.0, seed=5)
    assert moved.axis == 0 and reference.axis == 2
    np.testing.assert_array_equal(moved.corrupted_labels, reference.corrupted_labels)
    np.testing.assert_allclose(moved.corrupted_image, reference.corrupted_image, atol=1e-6)


def test_bad_preview_requests_are_refused(segmenter, volume):
    with pytest.raises(CoopSegError, match="slice index"):
        preview_hard_example(segmenter, volume.array, volume.affine, 5)
    with pytest.raises(CoopSegError, match="scheme"):
        preview_hard_example(segmenter, volume.array, volume.affine, 0, "cutout")
    with pytest.raises(CoopSegError, match="fraction"):
        preview_hard_example(segmenter, volume.array, volume.affine, 0, "dropout", 1.5)
    with pytest.raises(CoopSegError, match="one frame"):
        preview_hard_example(segmenter, np.stack([volume.array] * 2, -1), volume.affine, 0)
