"""The flipped look of the quality estimate: the FTN run again on mirrored slices, its agreement with the answer."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest

from CoopSegLib.bundle import write_metadata_section
from CoopSegLib.data.images import read_image
from CoopSegLib.data.perturbations import perturb_volume
from CoopSegLib.evaluation.calibration import calibrate_bundle
from CoopSegLib.inference.engine import Segmenter
from CoopSegLib.inference.quality import (FLIP_FEATURES, SliceSignals, flip_slices, flipped_look_slices,
                                          frame_features, uses_flip)
from data_helpers import ACDC_ROOT, needs_acdc
from inference_helpers import ring_volume
from test_quality import calibrated, ring_cases, ring_labels  # noqa: F401  (calibrated: a fixture)


def signals_with_flip(refined, flipped):
    count = len(refined)
    looked = flipped_look_slices(count)
    return SliceSignals(refined, refined, np.full(count, 0.1), np.full(count, 0.1), np.full(count, 0.01),
                        pixel_ml=1.0, flipped=flipped[looked], flipped_slices=looked)


def test_flip_agreement_is_one_for_an_unchanged_answer_and_lower_for_a_moved_one():
    labels = ring_labels(count=5)
    same = frame_features(signals_with_flip(labels, labels))
    moved = frame_features(signals_with_flip(labels, np.roll(labels, 3, axis=2)))
    assert same["flip_agreement"] == 1.0 and same["flip_agreement_min"] == 1.0
    assert moved["flip_agreement_min"] < moved["flip_agreement"] < 0.9
    # Slices that are not looked at do not count: a change on slice 1 (every other slice is read) leaves it at 1.
    changed = labels.copy()
    changed[1] = 0
    assert frame_features(signals_with_flip(labels, changed))["flip_agreement"] == 1.0
    assert list(flipped_look_slices(5)) == [0, 2, 4]
    assert "flip_agreement" not in frame_features(SliceSignals(labels, labels, *np.zeros((3, 5)), pixel_ml=1.0))


def test_flip_slices_mirrors_the_last_axis_and_is_its_own_inverse():
    slices = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    assert flip_slices(slices)[1, 2, 0] == slices[1, 2, 3]
    np.testing.assert_array_equal(flip_slices(flip_slices(slices)), slices)


@pytest.fixture(scope="module")
def flip_calibrated(bundle, tmp_path_factory):
    path = Path(shutil.copytree(bundle, tmp_path_factory.mktemp("flip") / "toy.coopseg"))
    calibration, samples = calibrate_bundle(path, ring_cases(), device="cpu", flipped_look=True)
    return path, calibration, samples


def test_calibration_measures_the_flipped_look_and_its_models_use_it(flip_calibrated, calibrated):
    path, calibration, samples = flip_calibrated
    assert all(0.0 <= s.features["flip_agreement_min"] <= s.features["flip_agreement"] <= 1.0 for s in samples)
    assert set(FLIP_FEATURES) <= set(calibration["stages"]["stn"]["volume"]["features"])
    assert uses_flip(calibration, "stn") and uses_flip(calibration, "ftn")
    image, _ = ring_volume(6, seed=91)
    quality = Segmenter(path, device="cpu").segment(image.array, image.affine).quality
    assert 0.0 <= quality.features["flip_agreement"] <= 1.0
    # Without --flipped-look (the default) neither the samples nor the models hold it.
    _, plain, plain_samples, _ = calibrated
    assert not uses_flip(plain, "stn") and "flip_agreement" not in plain_samples[0].features


def test_a_calibration_without_the_flipped_look_does_not_take_it(flip_calibrated, tmp_path):
    path, calibration, _ = flip_calibrated
    older = copy.deepcopy(calibration)
    for models in older["stages"].values():  # as fitted before the flipped look existed
        for model in [models["volume"], *models.get("structures", {}).values()]:
            keep = [i for i, name in enumerate(model["features"]) if name not in FLIP_FEATURES]
            for key in ("features", "mean", "scale", "weights"):
                model[key] = [model[key][i] for i in keep]
    old_path = Path(shutil.copytree(path, tmp_path / "older.coopseg"))
    write_metadata_section(old_path, "quality", older)
    assert not uses_flip(older, "stn")
    image, _ = ring_volume(6, seed=92)
    segmenter = Segmenter(old_path, device="cpu")
    default = segmenter.segment(image.array, image.affine).quality
    looked = segmenter.segment(image.array, image.affine, flipped_look=True).quality
    assert "flip_agreement" not in default.features and "flip_agreement" in looked.features
    assert looked.volume == pytest.approx(default.volume)  # the older models do not read it


@needs_acdc
def test_flip_agreement_is_lower_on_a_degraded_real_volume():
    segmenter = Segmenter(device="cpu")
    image = read_image(ACDC_ROOT / "patient006" / "patient006_frame01.nii.gz")
    clean = segmenter.segment(image.array, image.affine, flipped_look=True).quality.features
    noisy = segmenter.segment(perturb_volume(image.array, "noise", 1.0, 0), image.affine,
                              flipped_look=True).quality.features
    assert clean["flip_agreement"] > 0.7 and noisy["flip_agreement"] < clean["flip_agreement"] - 0.2


def test_a_calibration_that_uses_the_flipped_look_refuses_an_estimate_without_it(flip_calibrated):
    from CoopSegLib.errors import CoopSegError

    path, calibration, _ = flip_calibrated
    segmenter = Segmenter(path, device="cpu")
    image, _ = ring_volume(6, seed=94)
    with pytest.raises(CoopSegError, match="uses the flipped look"):
        segmenter.segment(image.array, image.affine, flipped_look=False)
    with pytest.raises(CoopSegError, match="uses the flipped look"):
        segmenter.segment_blurred(image.array, image.affine, 1.5, flipped_look=False)
    unestimated = segmenter.segment(image.array, image.affine, quality=False, flipped_look=False)
    assert unestimated.quality is None


def test_samples_without_the_flipped_look_can_be_measured_with_a_bundle_that_uses_it(flip_calibrated):
    from CoopSegLib.evaluation.calibration import calibration_items, collect_samples

    path, calibration, _ = flip_calibrated
    segmenter = Segmenter(path, device="cpu")
    item = next(iter(calibration_items(ring_cases(1))))
    plain, looked = (collect_samples(segmenter, [item], flipped_look=flag)[0] for flag in (False, True))
    assert "flip_agreement" not in plain.features and 0.0 <= looked.features["flip_agreement"] <= 1.0
    assert plain.dice == pytest.approx(looked.dice)  # the same answer, measured with and without the look
    assert segmenter.calibration is not None and uses_flip(segmenter.calibration, "stn")  # the caller's, untouched
