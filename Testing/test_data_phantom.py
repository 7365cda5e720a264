"""Synthetic phantom: exact, plausible labels; MR-like intensities; variation; determinism."""

from __future__ import annotations

import numpy as np
import pytest

from CoopSegLib.data.phantom import phantom_cases, phantom_subject
from data_helpers import enclosure


@pytest.fixture(scope="module")
def subjects():
    return [phantom_subject(seed) for seed in range(6)]


def test_deterministic_per_seed_and_frames_are_independent(subjects):
    again = phantom_subject(0)
    for a, b in zip(subjects[0], again):
        np.testing.assert_array_equal(a.image.array, b.image.array)
        np.testing.assert_array_equal(a.label.array, b.label.array)
        np.testing.assert_array_equal(a.image.affine, b.image.affine)
    (es_only,) = phantom_subject(0, frames=("ES",))
    np.testing.assert_array_equal(es_only.image.array, subjects[0][1].image.array)
    assert not np.array_equal(subjects[1][0].image.array[..., :3], subjects[2][0].image.array[..., :3])


def test_structure_and_geometry_vary(subjects):
    shapes = {cases[0].image.shape for cases in subjects}
    spacings = {cases[0].image.spacing for cases in subjects}
    assert len(shapes) == len(subjects) and len(spacings) == len(subjects)
    for ed, es in subjects:
        assert ed.image.array.dtype == np.int16 and ed.label.array.dtype == np.uint8
        assert ed.image.shape == ed.label.shape == es.image.shape
        assert 6 <= ed.image.shape[2] <= 18
        assert 1.2 <= ed.image.spacing[0] <= 1.9 and 6.0 <= ed.image.spacing[2] <= 10.0
        assert set(np.unique(ed.label.array)) == {0, 1, 2, 3}
        # ES: the LV cavity contracts while the myocardium keeps its volume (roughly).
        lv_ed, lv_es = (ed.label.array == 1).sum(), (es.label.array == 1).sum()
        myo_ed, myo_es = (ed.label.array == 2).sum(), (es.label.array == 2).sum()
        assert 0.2 < lv_es / lv_ed < 0.8
        assert 0.75 < myo_es / myo_ed < 1.25


def test_empty_slices_exist_across_subjects(subjects):
    """Slices above the base or below the apex carry no label (the dataset's empty-slice policy needs them)."""
    empty = sum(int((cases[0].label.array.reshape(-1, cases[0].image.shape[2]).max(axis=0) == 0).sum())
                for cases in subjects)
    assert empty >= 3


def test_lv_cavity_is_enclosed_by_myocardium(subjects):
    fractions = [
        enclosure(case.label.array[:, :, z])
        for cases in subjects for case in cases for z in range(case.image.shape[2])
    ]
    fractions = [f for f in fractions if f is not None]
    assert len(fractions) > 30 and min(fractions) > 0.95


def test_intensities_look_like_bssfp(subjects):
    for ed, _ in subjects:
        image, label = ed.image.array.astype(np.float64), ed.label.array
        blood, myo = np.median(image[label == 1]), np.median(image[label == 2])
        assert blood > 1.8 * myo  # bright blood, grey myocardium
        corner = image[:8, :8, :]
        assert corner.mean() > 0 and corner.std() > 0  # Rician background noise, not zeros
        # Partial volume: intensities between blood and myocardium exist at the cavity border.
        border = (label == 2) & np.roll(label == 1, 1, axis=0)
        assert np.mean((image[border] > myo * 1.1) & (image[border] < blood * 0.9)) > 0.2
        # Not flat disks: texture and bias make the blood pool vary.
        assert np.std(image[label == 1]) / blood > 0.03


def test_phantom_cases_subject_names():
    cases = phantom_cases(2, seed=5, frames=("ED",))
    assert [c.key for c in cases] == ["phantom0005_ED", "phantom0006_ED"]


def test_cine_frames_between_ed_and_es_contract_the_heart_step_by_step():
    ed, es = phantom_subject(5, supersample=1)
    cine = phantom_subject(5, frames=(0.0, 0.5, 1.0), supersample=1)
    np.testing.assert_array_equal(cine[0].label.array, ed.label.array)  # 0 is ED's heart, 1 ES's
    np.testing.assert_array_equal(cine[2].label.array, es.label.array)
    lv = [int((case.label.array == 1).sum()) for case in (ed, *cine, es)]
    assert lv[0] == lv[1] > lv[2] > lv[3] == lv[4]
    assert [case.frame for case in cine] == ["0", "0.5", "1"]
    assert not np.array_equal(cine[0].image.array, ed.image.array)  # a cine frame's noise is its own
    with pytest.raises(ValueError, match="number in"):
        phantom_subject(5, frames=(1.5,))
