"""The quality estimate scored with the second look, leaving one subject out (``coopseg calibrate --second-look``)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from CoopSegLib.cli import main
from CoopSegLib.evaluation.calibration import (calibration_items, collect_samples, cross_validate,
                                               cross_validate_structures)
from CoopSegLib.evaluation.second_look_scoring import cross_validate_second_look, sample_estimate
from CoopSegLib.inference.engine import SECOND_LOOK_SIGMAS, Segmenter
from CoopSegLib.vocabulary import REVIEW
from inference_helpers import ring_volume
from test_quality import calibrated, ring_cases  # noqa: F401  (calibrated: a fixture)


def test_segment_keeps_the_best_estimated_of_the_looks_segment_blurred_takes(calibrated):
    path, calibration, _, _ = calibrated
    segmenter = Segmenter(path, device="cpu")
    segmenter.calibration = copy.deepcopy(calibration)
    segmenter.calibration["threshold"] = 1.01  # every answer is flagged: all looks are taken
    image, _ = ring_volume(6, seed=93)
    looks = [segmenter.segment(image.array, image.affine)]
    looks += [segmenter.segment_blurred(image.array, image.affine, sigma) for sigma in SECOND_LOOK_SIGMAS]
    assert not looks[0].blurred and all(look.blurred for look in looks[1:])
    kept = segmenter.segment(image.array, image.affine, second_look=True)
    best = max(looks, key=lambda look: look.quality.volume)
    assert kept.quality.volume == pytest.approx(best.quality.volume)
    np.testing.assert_array_equal(kept.labels, best.labels)


def test_second_look_scoring_looks_again_only_where_the_fold_flags(calibrated):
    path, _, samples, _ = calibrated
    segmenter = Segmenter(path, device="cpu")
    items = list(calibration_items(ring_cases()))  # the same items the samples were measured on
    calls = []

    def measure(item, sigma):
        calls.append((item.key, sigma))
        return collect_samples(segmenter, [item], blur=sigma)[0]

    rows = cross_validate_second_look(samples, items, samples, measure, "stn")
    one_pass = {r["key"]: r for r in cross_validate(samples, samples, "stn")}
    structures = {(r["key"], r["structure"]): r for r in cross_validate_structures(samples, samples, "stn")}
    assert [r["key"] for r in rows] == [r["key"] for r in one_pass.values()]
    assert len(calls) == sum(r["looks"] for r in rows)
    assert any(r["looks"] for r in rows) and any(not r["looks"] for r in rows)
    for row in rows:
        first = one_pass[row["key"]]
        if not row["looks"]:  # not flagged: the first answer and its one-pass estimate
            assert row["estimate"] == pytest.approx(first["estimate"], abs=1e-6) and row["blur"] == 0.0
            assert row["dice"] == pytest.approx(first["dice"])
            for column, (dice, estimate) in row["structures"].items():  # each structure's one-pass estimate too
                assert (dice, estimate) == pytest.approx((structures[row["key"], column]["dice"],
                                                          structures[row["key"], column]["estimate"]), abs=1e-6)
        else:  # the kept answer is never estimated lower than the first
            assert row["estimate"] >= first["estimate"] - 1e-6
            assert row["blur"] in (0.0, *SECOND_LOOK_SIGMAS[:row["looks"]])
        if row["blur"] == 0.0:
            assert row["dice"] == pytest.approx(first["dice"])
    # A look stops as soon as its answer is no longer flagged, as ``segment`` does.
    fold = next(r for r in rows if r["looks"] == 1 and r["blur"])
    held_out = [s for s in samples if s.subject != fold["subject"]]
    from CoopSegLib.evaluation.calibration import fit_calibration

    item = next(i for i in items if i.key == fold["key"])
    assert sample_estimate(measure(item, SECOND_LOOK_SIGMAS[0]), fit_calibration(held_out), "stn").flag != REVIEW


def test_second_look_scoring_needs_cross_validation(calibrated, capsys):
    path = calibrated[0]
    assert main(["calibrate", "--model", str(path), "--data", ".", "--second-look"]) == 2
    assert "--second-look scores the leave-one-subject-out estimate: add --cross-validate" in capsys.readouterr().err
