"""Connected components in numpy, checked against scipy.ndimage.label (scipy is only the test's oracle)."""

import numpy as np
import pytest
from scipy import ndimage

from CoopSegLib.inference import connected_components, keep_largest_components, largest_component


def same_partition(ids: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> bool:
    """Two labellings describe the same components when their ids pair up one to one."""
    pairs = set(zip(ids[mask].tolist(), labels[mask].tolist()))
    return len(pairs) == len(set(ids[mask].tolist())) == len(set(labels[mask].tolist()))


@pytest.mark.parametrize("shape, density", [((20, 17, 6), 0.3), ((20, 17, 6), 0.55), ((40, 33), 0.5), ((9,), 0.5)])
def test_components_match_scipy_on_random_masks(shape, density):
    rng = np.random.default_rng(len(shape) * 100 + int(density * 100))
    for _ in range(10):
        mask = rng.random(shape) < density
        ids = connected_components(mask)
        labels, count = ndimage.label(mask)  # face connectivity, as ours
        assert (ids[~mask] == -1).all() and len(np.unique(ids[mask])) == count
        assert same_partition(ids, labels, mask)


def test_a_long_winding_component_is_one_component():
    mask = np.zeros((61, 61), bool)
    mask[::4] = True
    for row in range(0, 57, 8):
        mask[row:row + 5, -1] = True
        mask[row + 4:row + 9, 0] = True
    assert ndimage.label(mask)[1] == 1
    assert len(np.unique(connected_components(mask)[mask])) == 1


def test_largest_component_and_per_structure_cleanup():
    labels = np.zeros((10, 10, 4), np.uint8)
    labels[1:5, 1:5, 1:3] = 1  # 32 voxels
    labels[7:9, 7:9, 0] = 1  # 4-voxel island
    labels[6, 1:4, 2] = 2  # myocardium: 3 voxels ...
    labels[6, 6, 3] = 2  # ... and a diagonal-free island of 1
    labels[0, 9, 0] = 3  # a lone RV voxel is its own largest component
    cleaned = keep_largest_components(labels)
    expected = labels.copy()
    expected[7:9, 7:9, 0] = 0
    expected[6, 6, 3] = 0
    np.testing.assert_array_equal(cleaned, expected)
    assert not largest_component(np.zeros((3, 3), bool)).any()
