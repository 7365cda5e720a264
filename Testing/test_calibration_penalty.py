"""The quality calibration's L2 penalty, chosen per model on the fitting samples' held-out subjects."""

from __future__ import annotations

import numpy as np

from CoopSegLib.evaluation.calibration import (L2_PENALTY, PENALTIES, CalibrationSample, chosen_penalty,
                                               fit_selected)
from test_quality import calibrated  # noqa: F401  (a fixture)


def samples_of(subjects, per_subject, feature, target):
    """Samples with one feature ``feature(i)`` and a true Dice ``target(i)`` for sample i."""
    out, i = [], 0
    for subject in range(subjects):
        for _ in range(per_subject):
            out.append(CalibrationSample("clean", f"s{subject}", f"s{subject}_{i}", 0.0, {"x": feature(i)},
                                         {"stn": target(i)}))
            i += 1
    return out


def dice(sample):
    return sample.dice["stn"]


def test_the_penalty_is_small_for_a_telling_feature_and_large_for_noise():
    rng = np.random.default_rng(0)
    telling = samples_of(4, 10, lambda i: i % 10 / 10.0, lambda i: 0.05 + 0.9 * (i % 10) / 10.0)
    noise_x = rng.normal(size=40)
    noise = samples_of(4, 10, lambda i: float(noise_x[i]), lambda i: 0.8 + 0.02 * rng.normal())
    assert chosen_penalty(telling, ["x"], dice) == min(PENALTIES)
    assert chosen_penalty(noise, ["x"], dice) == max(PENALTIES)
    fitted = fit_selected(noise, ["x"], dice)
    assert fitted["l2"] == max(PENALTIES) and abs(fitted["weights"][0]) < 0.05  # noise gets next to no weight


def test_too_few_subjects_keep_the_default_penalty():
    # Two subjects leave one to fit on and one to score: too little to choose on.
    telling = samples_of(2, 10, lambda i: i % 10 / 10.0, lambda i: 0.05 + 0.9 * (i % 10) / 10.0)
    assert chosen_penalty(telling, ["x"], dice) == L2_PENALTY


def test_a_calibration_records_the_penalty_of_each_model(calibrated):
    _, calibration, _, _ = calibrated  # three toy subjects: enough to choose on
    for stage in calibration["stages"].values():
        assert stage["volume"]["l2"] in PENALTIES
        assert all(model["l2"] in PENALTIES for model in stage["structures"].values())
        assert stage["slice"]["l2"] == L2_PENALTY
