"""Real ACDC data in ../shared/data (skipped where absent): loading, labels, frames, geometry on real affines."""

from __future__ import annotations

import numpy as np
import pytest

from CoopSegLib.data.geometry import Volume, to_model_slices
from CoopSegLib.data.preprocess import prepare_image
from CoopSegLib.data.readers.acdc import list_acdc_subjects, read_acdc
from CoopSegLib.data.splits import ACDC_TEST_SUBJECTS, paper_split, subjects_of
from data_helpers import ACDC_ROOT, dice, enclosure, permute_flip_affine, permute_flip_array, rotation, toy_model
from data_helpers import undo_permute_flip

pytestmark = pytest.mark.skipif(
    not ACDC_ROOT.is_dir(), reason=f"real ACDC data not found at {ACDC_ROOT} (only on the project's test machines)"
)


@pytest.fixture(scope="module")
def cases():
    return read_acdc(ACDC_ROOT)


def test_all_80_subjects_load_with_ed_and_es(cases):
    subjects = list_acdc_subjects(ACDC_ROOT)
    assert len(subjects) == 80 and not set(subjects) & set(ACDC_TEST_SUBJECTS)
    assert len(cases) == 160 and subjects_of(cases) == subjects
    assert [c.frame for c in cases[:4]] == ["ED", "ES", "ED", "ES"]
    for case in cases:
        assert case.image.shape == case.label.shape and case.image.array.ndim == 3
        spacing = case.image.spacing
        assert 0.6 < spacing[0] < 2.0 and 4.9 < spacing[2] <= 10.0  # pixdim, not the unit-scale sform


def test_frames_match_info_cfg(cases):
    for case in cases:
        text = (ACDC_ROOT / case.subject / "Info.cfg").read_text()
        expected = int([line for line in text.splitlines() if line.startswith(case.frame + ":")][0].split(":")[1])
        assert case.metadata["frame_number"] == expected
        assert case.source.endswith(f"{case.subject}_frame{expected:02d}.nii.gz")


def test_labels_are_canonical_with_lv_cavity_inside_myocardium(cases):
    fractions = []
    for case in cases:
        label = case.label.array
        assert label.dtype == np.uint8 and set(np.unique(label)) == {0, 1, 2, 3}
        fractions += [enclosure(label[:, :, z]) for z in range(label.shape[2])]
    fractions = np.array([f for f in fractions if f is not None])
    assert len(fractions) > 1000
    assert np.median(fractions) == 1.0 and np.mean(fractions > 0.9) > 0.95
    # With the ACDC codes left as they are (3 = LV), the "cavity" would be wrapped by background, not myocardium.
    wrong = [enclosure(np.where(c.label.array == 1, 3, np.where(c.label.array == 3, 1, c.label.array))[:, :, z])
             for c in cases[:10] for z in range(c.image.shape[2])]
    assert np.median([f for f in wrong if f is not None]) < 0.5


def test_label_round_trip_on_real_affines(cases):
    for case in cases:
        spacing = min(case.image.spacing[:2])  # model grid no coarser than the input: exact
        size = max(case.image.shape[:2]) + 2
        slices, mapping = to_model_slices(case.label, spacing=spacing, size=size, interpolation="nearest")
        np.testing.assert_array_equal(mapping.to_input_grid(slices), case.label.array)
        slices, mapping = to_model_slices(case.label, interpolation="nearest")  # the default 1.37 mm, 192 grid
        back = mapping.to_input_grid(slices)
        for code in (1, 2, 3):
            assert dice(back == code, case.label.array == code) > 0.93


def test_storage_invariance_on_real_affines(cases):
    for case in cases[::40]:
        reference_slices, mapping = prepare_image(case.image)
        reference = mapping.to_input_grid(toy_model(reference_slices))
        for perm, flips, oblique in (((2, 0, 1), (True, False, False), rotation(15, 2)),
                                     ((1, 2, 0), (False, True, True), rotation(-30, 0))):
            array = permute_flip_array(case.image.array, perm, flips)
            affine = oblique @ permute_flip_affine(case.image.affine, case.image.shape, perm, flips)
            slices, moved = prepare_image(Volume(array, affine))
            np.testing.assert_array_equal(slices, reference_slices)
            np.testing.assert_array_equal(undo_permute_flip(moved.to_input_grid(toy_model(slices)), perm, flips),
                                          reference)


def test_paper_split_on_the_available_subjects(cases):
    split = paper_split(subjects_of(cases), seed=40)
    train = split.select(cases, "train")
    assert len(train) == 20 and {c.subject for c in train} == set(split.train)
