"""The quality estimate: its signals on known label maps, the fitting, the scores, the bundle section, the CLI."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from CoopSegLib.bundle import BundleError, load_bundle, read_metadata, write_metadata_section
from CoopSegLib.data.case import Case
from CoopSegLib.data.nifti import write_nifti
from CoopSegLib.data.perturbations import PERTURBATIONS, perturb_volume
from CoopSegLib.errors import CoopSegError
from CoopSegLib.evaluation.calibration import calibrate_bundle, fit_logistic, sample_from_json, sample_to_json
from CoopSegLib.evaluation.metrics import slice_dice
from CoopSegLib.evaluation.quality_scores import auroc, estimate_scores
from CoopSegLib.inference.engine import Segmenter
from CoopSegLib.inference.quality import (DEFAULT_THRESHOLD, STRUCTURE_THRESHOLD, SliceSignals, apply_logistic, frame_features,
                                          reconstruction_error)
from CoopSegLib.quality_file import QUALITY_FILE, QualityRecord, read_quality_file, write_quality_file
from data_helpers import ACDC_ROOT as ACDC
from inference_helpers import ring_volume



def ring_labels(count=4, size=32):
    """(S, size, size) label stacks: an LV disc (1) ringed by myocardium (2), an RV blob (3) beside it."""
    yy, xx = np.mgrid[:size, :size]
    distance = np.hypot(yy - size / 2, xx - size / 2)
    labels = np.zeros((count, size, size), np.uint8)
    labels[:, (distance < 8) & (xx < size / 2 - 6)] = 3
    labels[:, distance < 6] = 2
    labels[:, distance < 4] = 1
    return labels


def signals_of(initial, refined, reconstruction=0.01):
    count = len(refined)
    return SliceSignals(initial, refined, np.full(count, 0.1), np.full(count, 0.1), np.full(count, reconstruction),
                        pixel_ml=1.0)


# --- signals ----------------------------------------------------------------------------------------------------
def test_features_of_a_plausible_output_and_of_an_empty_one():
    labels = ring_labels()
    good = frame_features(signals_of(labels, labels))
    assert good["agreement"] == 1.0 and good["empty"] == 0.0 and good["missing_structure"] == 0.0
    assert good["unringed_lv"] == 0.0 and good["continuity"] == pytest.approx(1.0)
    empty = frame_features(signals_of(labels, np.zeros_like(labels)))
    # The FTN found a heart and the STN erased it: no agreement, and an empty output (not "perfect agreement").
    assert empty["empty"] == 1.0 and empty["empty_slices"] == 1.0 and empty["agreement"] == 0.0
    assert np.all(empty["slice_agreement"] == 0.0)


def test_an_lv_without_its_myocardium_and_a_missing_structure_are_seen():
    labels = ring_labels()
    broken = labels.copy()
    broken[1][broken[1] == 2] = 0  # slice 1: cavity with no myocardium around it, and no myocardium at all
    features = frame_features(signals_of(labels, broken))
    assert features["slice_unringed_lv"][1] == 1.0 and features["slice_unringed_lv"][0] == 0.0
    assert features["slice_missing_structure"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert features["slice_agreement"][1] < 1.0 and features["slice_agreement"][0] == 1.0


def test_reconstruction_error_is_higher_for_images_unlike_the_training_ones(bundle):
    model = load_bundle(bundle).model
    image, _ = ring_volume(6, seed=3)
    segmenter = Segmenter(bundle, device="cpu", precision="fp32")
    slices = segmenter.predictor.model_input(segmenter.prepare(image.array, image.affine).slices)
    with torch.inference_mode():
        usual = reconstruction_error(model, model.predict(slices, "ftn").z_i, slices)
        inverted = reconstruction_error(model, model.predict(1 - slices, "ftn").z_i, 1 - slices)
    assert usual.shape == (6,) and float(usual.mean()) < float(inverted.mean())


def test_slice_dice_matches_a_direct_count():
    labels = ring_labels(3)
    other = labels.copy()
    other[0][other[0] == 1] = 0  # slice 0 loses its cavity
    dice = slice_dice(other, labels)
    assert dice.shape == (3, 3)
    assert dice[0, 0] == 0.0 and np.all(dice[1:] == 1.0)
    myo = (other[0] == 2).sum() * 2 / ((other[0] == 2).sum() + (labels[0] == 2).sum())
    assert dice[0, 1] == pytest.approx(myo)
    assert np.isnan(slice_dice(np.zeros_like(labels), np.zeros_like(labels))).all()


# --- fitting and scores -----------------------------------------------------------------------------------------
def test_logistic_fit_recovers_a_known_relation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)) * [1.0, 5.0, 0.1] + [0.0, 10.0, 1.0]
    truth = 1 / (1 + np.exp(-(1.5 * x[:, 0] - 0.3 * (x[:, 1] - 10) + 0.5)))
    model = fit_logistic(x, truth, ["a", "b", "c"], l2=1e-6)
    assert np.max(np.abs(apply_logistic(x, model) - truth)) < 0.02


def test_auroc_against_counting_pairs():
    rng = np.random.default_rng(1)
    positive = rng.random(60) < 0.4
    scores = np.round(rng.normal(size=60) + positive, 1)  # rounded: ties occur
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p in scores[positive] for n in scores[~positive]]
    assert auroc(positive, scores) == pytest.approx(np.mean(pairs))
    assert auroc([True, False], [0.2, 0.9]) == 0.0 and math.isnan(auroc([True, True], [0.1, 0.2]))
    summary = estimate_scores([0.9, 0.5, 0.8], [0.85, 0.4, 0.95])
    assert summary["poor"] == 1 and summary["auroc"] == 1.0 and summary["mae"] == pytest.approx(0.1)


# --- perturbations ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(PERTURBATIONS))
def test_perturbations_are_deterministic_and_change_the_image(kind):
    image, _ = ring_volume(3, seed=5)
    first = perturb_volume(image.array, kind, 0.5, seed=7)
    assert first.shape == image.shape and first.dtype == np.float32
    assert np.array_equal(first, perturb_volume(image.array, kind, 0.5, seed=7))
    assert not np.allclose(first, image.array)


def test_perturbation_arguments_are_checked():
    image, _ = ring_volume(2)
    with pytest.raises(CoopSegError, match="unknown perturbation"):
        perturb_volume(image.array, "spike", 0.5, 0)
    with pytest.raises(CoopSegError, match="severity"):
        perturb_volume(image.array, "noise", 1.5, 0)


# --- the bundle section, calibration and the files --------------------------------------------------------------
def ring_cases(subjects=3):
    cases = []
    for index in range(subjects):
        image, label = ring_volume(6, seed=40 + index)
        cases.append(Case(f"ring{index}", "ES", image, label))
    return cases


@pytest.fixture(scope="module")
def calibrated(bundle, tmp_path_factory):
    """A copy of the toy bundle calibrated on three toy subjects, and the samples measured for it."""
    path = Path(shutil.copytree(bundle, tmp_path_factory.mktemp("calibrated") / "toy.coopseg"))
    reports = []
    calibration, samples = calibrate_bundle(path, ring_cases(), device="cpu",
                                            report=lambda done, total, item: reports.append((done, total)))
    return path, calibration, samples, reports


def test_calibration_is_stored_without_touching_the_weights(bundle, calibrated):
    path, calibration, samples, reports = calibrated
    assert reports[0] == (0, 3 * (1 + len(PERTURBATIONS))) and len(samples) == reports[0][1]
    assert {s.set for s in samples} == {"clean", *PERTURBATIONS}
    metadata = read_metadata(path)
    assert metadata["quality"] == json.loads(json.dumps(calibration))
    assert metadata["weights"] == read_metadata(bundle)["weights"]  # checksum unchanged, and still valid:
    load_bundle(path)
    assert set(calibration["stages"]) == {"ftn", "stn"} and calibration["fitted_on"]["subjects"] == [
        "ring0", "ring1", "ring2"]


def test_calibrated_estimate_follows_the_true_dice(calibrated):
    path, calibration, samples, _ = calibrated
    segmenter = Segmenter(path, device="cpu")
    image, _ = ring_volume(6, seed=77)
    clean = segmenter.segment(image.array, image.affine).quality
    ruined = segmenter.segment(perturb_volume(image.array, "occlusion", 1.0, 0), image.affine).quality
    assert clean.calibrated and 0.0 <= ruined.volume < clean.volume <= 1.0
    assert clean.flag == ("review" if clean.volume < clean.threshold else "ok")
    assert clean.slices.shape == (6,) and np.all((clean.slices >= 0) & (clean.slices <= 1))
    # The fitted model is better than guessing each sample's mean Dice.
    dice = np.array([s.dice["stn"] for s in samples])
    assert calibration["in_sample_mae"]["stn"] < np.mean(np.abs(dice - dice.mean()))


def test_samples_survive_a_round_trip(calibrated):
    sample = calibrated[2][1]
    back = sample_from_json(sample_to_json(sample))
    assert back.key == sample.key and back.dice == pytest.approx(sample.dice)
    np.testing.assert_allclose(back.features["slice_agreement"], sample.features["slice_agreement"])
    np.testing.assert_array_equal(np.isnan(back.slice_dice["stn"]), np.isnan(sample.slice_dice["stn"]))


def test_uncalibrated_estimate_is_the_agreement_and_says_so(bundle):
    image, _ = ring_volume(6, seed=78)
    result = Segmenter(bundle, device="cpu").segment(image.array, image.affine)
    quality = result.quality
    assert not quality.calibrated and quality.threshold == DEFAULT_THRESHOLD
    assert quality.volume == pytest.approx(quality.features["agreement"])
    assert Segmenter(bundle, device="cpu").segment(image.array, image.affine, quality=False).quality is None


def test_metadata_sections_that_describe_the_weights_cannot_be_replaced(bundle, tmp_path):
    path = Path(shutil.copytree(bundle, tmp_path / "b.coopseg"))
    with pytest.raises(BundleError, match="weights"):
        write_metadata_section(path, "weights", {})
    write_metadata_section(path, "quality", {"format": 99})
    with pytest.raises(BundleError, match="format 99"):
        Segmenter(path, device="cpu")
    write_metadata_section(path, "quality", None)
    assert "quality" not in read_metadata(path) and Segmenter(path, device="cpu").calibration is None


def test_quality_table_keeps_rows_of_other_names(tmp_path, bundle):
    image, _ = ring_volume(4, seed=9)
    estimate = Segmenter(bundle, device="cpu").segment(image.array, image.affine).quality
    write_quality_file(tmp_path, {"a": QualityRecord.from_estimate("a", estimate, "stn")})
    write_quality_file(tmp_path, {"b": QualityRecord.from_estimate("b", estimate, "ftn")})
    with open(tmp_path / QUALITY_FILE, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [r["name"] for r in rows] == ["a", "b"] and [r["stage"] for r in rows] == ["stn", "ftn"]
    assert float(rows[0]["quality"]) == pytest.approx(estimate.volume, abs=1e-4)
    assert len(rows[0]["slice_quality"].split()) == 4
    record = read_quality_file(tmp_path / QUALITY_FILE)["a"]  # what the Slicer module and evaluate read back
    assert record.calibrated == estimate.calibrated and record.threshold == pytest.approx(estimate.threshold)
    in_stack_order = [q for _, q in sorted(zip(estimate.slice_index, estimate.slices))]
    assert record.slice_quality == pytest.approx(in_stack_order, abs=5e-4)
    below = sorted(int(i) for i, q in zip(estimate.slice_index, estimate.slices) if q < estimate.threshold)
    assert [index for _, index in record.suspect_slices] == below


def coopseg(capsys, *args):
    """Run the ``coopseg`` command in this process (the same ``main`` the console script calls)."""
    from CoopSegLib.cli import main

    capsys.readouterr()
    status = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_segment_writes_quality_csv_and_warns_for_flagged_outputs(calibrated, tmp_path, capsys):
    path = calibrated[0]
    image, _ = ring_volume(6, seed=80)
    good = write_nifti(image.array, image.affine, tmp_path / "good.nii.gz")
    bad = write_nifti(perturb_volume(image.array, "occlusion", 1.0, 1), image.affine, tmp_path / "bad.nii.gz")
    # One pass: the flag and its warning as the estimate gives them (the second look is tested on its own).
    status, _, stderr = coopseg(capsys, "segment", good, bad, "--output-dir", tmp_path / "out", "--model", path,
                                "--device", "cpu", "--no-second-look")
    assert status == 0, stderr
    with open(tmp_path / "out" / QUALITY_FILE, newline="") as stream:
        rows = {row["name"]: row for row in csv.DictReader(stream)}
    assert list(rows) == ["bad", "good"] and list(next(iter(rows.values())))[:3] == ["name", "quality", "flag"]
    assert all(row["calibrated"] == "true" for row in rows.values())
    flagged = [name for name, row in rows.items() if row["flag"] == "review"]
    poor = {name: float(row["quality"]) < float(row["threshold"])
            or min(float(row[f"quality_{c}"]) for c in ("lv", "myo", "rv")) < STRUCTURE_THRESHOLD
            for name, row in rows.items()}
    assert all(poor[name] == (row["flag"] == "review") for name, row in rows.items())
    warnings = [line for line in stderr.splitlines() if "warning" in line]
    assert len(warnings) == len(flagged) and all(any(name in w for w in warnings) for name in flagged)
    assert "bad" in flagged


def test_segment_with_an_uncalibrated_bundle_notes_it(bundle, tmp_path, capsys):
    image, _ = ring_volume(6, seed=81)
    source = write_nifti(image.array, image.affine, tmp_path / "case.nii.gz")
    status, _, stderr = coopseg(capsys, "segment", source, "--output-dir", tmp_path / "out", "--model", bundle,
                                "--device", "cpu")
    assert status == 0, stderr
    assert "no quality calibration" in stderr
    with open(tmp_path / "out" / QUALITY_FILE, newline="") as stream:
        (row,) = csv.DictReader(stream)
    assert row["name"] == "case" and row["calibrated"] == "false" and row["flag"] in ("ok", "review")


def test_calibrate_refuses_training_subjects(bundle, tmp_path, capsys):
    from inference_helpers import with_training_record

    path = with_training_record(bundle, tmp_path / "b.coopseg", ["patient001"], ["patient002"])
    status, _, stderr = coopseg(capsys, "calibrate", "--model", path, "--data", tmp_path, "--subjects", "patient001")
    assert status == 2 and "patient001 trained the model" in stderr
    status, _, stderr = coopseg(capsys, "calibrate", "--model", path, "--data", tmp_path)
    assert status == 2 and "patient002" in stderr and "not found" in stderr
    assert "quality" not in read_metadata(path)


# --- the shipped model ------------------------------------------------------------------------------------------
def test_shipped_bundle_is_calibrated_on_its_validation_subjects():
    from CoopSegLib.bundle import recorded_subjects
    from CoopSegLib.weights import DEFAULT_BUNDLE

    metadata = read_metadata(DEFAULT_BUNDLE)
    assert "quality" in metadata, "re-run: coopseg calibrate --model CoopSegLib/weights/default.coopseg --data ACDC"
    assert metadata["quality"]["fitted_on"]["subjects"] == sorted(recorded_subjects(metadata, "validation"))
    Segmenter(DEFAULT_BUNDLE, device="cpu")  # the stored calibration is one this code applies


@pytest.mark.skipif(not ACDC.is_dir(), reason="real ACDC data not found at ../shared/data")
def test_shipped_estimate_flags_a_ruined_validation_volume():
    from CoopSegLib.bundle import recorded_subjects
    from CoopSegLib.data.images import read_image
    from CoopSegLib.weights import DEFAULT_BUNDLE

    segmenter = Segmenter(DEFAULT_BUNDLE, device="cpu")
    subject = recorded_subjects(segmenter.bundle.metadata, "validation")[0]
    image = read_image(sorted((ACDC / subject).glob(f"{subject}_frame??.nii.gz"))[0])
    clean = segmenter.segment(image.array, image.affine).quality
    ruined = segmenter.segment(perturb_volume(image.array, "inversion", 1.0, 0), image.affine).quality
    assert ruined.flag == "review" and ruined.volume < clean.volume


def test_evaluate_scores_the_estimate_segment_wrote(calibrated, tmp_path, capsys):
    path = calibrated[0]
    refs, inputs = tmp_path / "refs", tmp_path / "inputs"
    refs.mkdir()
    inputs.mkdir()
    for seed, kind in ((82, None), (83, "occlusion")):
        image, label = ring_volume(6, seed=seed)
        array = image.array if kind is None else perturb_volume(image.array, kind, 1.0, seed)
        write_nifti(array, image.affine, inputs / f"case{seed}.nii.gz")
        write_nifti(label.array, label.affine, refs / f"case{seed}_gt.nii.gz", np.uint8)
    out = tmp_path / "pred"
    status, _, stderr = coopseg(capsys, "segment", *sorted(inputs.iterdir()), "--output-dir", out, "--model", path,
                                "--device", "cpu")
    assert status == 0, stderr
    status, _, stderr = coopseg(capsys, "evaluate", "--pred", out, "--ref", refs, "--output-dir", tmp_path / "report")
    assert status == 0, stderr
    with open(tmp_path / "report" / "quality_evaluation.csv", newline="") as stream:
        scored = {row["case"]: row for row in csv.DictReader(stream)}
    with open(out / QUALITY_FILE, newline="") as stream:
        written = {row["name"]: float(row["quality"]) for row in csv.DictReader(stream)}
    with open(tmp_path / "report" / "evaluation.csv", newline="") as stream:
        dice = {}
        for row in csv.DictReader(stream):
            dice.setdefault(row["case"], []).append(float(row["dice"]))
    assert set(scored) == {"case82", "case83"}
    for case, row in scored.items():
        assert float(row["estimate"]) == pytest.approx(written[case], abs=1e-4)
        assert float(row["dice"]) == pytest.approx(np.mean(dice[case]), abs=1e-5)
    assert "## Quality estimate (prediction)" in (tmp_path / "report" / "evaluation.md").read_text()


# --- the estimate per structure ---------------------------------------------------------------------------------
def test_each_structure_gets_its_own_calibrated_estimate(calibrated):
    path, calibration, samples, _ = calibrated
    from CoopSegLib.inference.quality import FLIP_FEATURES, STRUCTURE_COLUMNS, structure_features

    models = calibration["stages"]["stn"]["structures"]
    assert sorted(models) == sorted(STRUCTURE_COLUMNS) == ["lv", "myo", "rv"]
    # Every feature but the flipped look's, which only ``calibrate_bundle(flipped_look=True)`` measures.
    assert all(models[c]["features"] == [f for f in structure_features(c) if f not in FLIP_FEATURES] for c in models)
    assert set(samples[0].structure_dice["stn"]) == {"lv", "myo", "rv"}
    segmenter = Segmenter(path, device="cpu")
    image, _ = ring_volume(6, seed=77)
    quality = segmenter.segment(image.array, image.affine).quality
    assert quality.structures_calibrated and set(quality.structures) == {"lv", "myo", "rv"}
    assert all(0.0 <= v <= 1.0 for v in quality.structures.values())
    record = QualityRecord.from_estimate("x", quality, "stn")
    assert record.row()["quality_rv"] == f"{quality.structures['rv']:.4f}" and "RV" in record.describe()


def test_a_structure_estimated_poor_flags_the_volume_even_when_the_mean_looks_fine(calibrated, tmp_path):
    path, calibration, _, _ = calibrated
    poor_rv = json.loads(json.dumps(calibration))
    stn = poor_rv["stages"]["stn"]
    stn["volume"]["weights"] = [0.0] * len(stn["volume"]["weights"])
    stn["volume"]["bias"] = 5.0  # the mean says 0.99
    stn["structures"]["rv"]["weights"] = [0.0] * len(stn["structures"]["rv"]["weights"])
    stn["structures"]["rv"]["bias"] = -5.0  # the RV says 0.01
    copy = Path(shutil.copytree(path, tmp_path / "poor_rv.coopseg"))
    write_metadata_section(copy, "quality", poor_rv)
    image, _ = ring_volume(6, seed=77)
    quality = Segmenter(copy, device="cpu").segment(image.array, image.affine).quality
    assert quality.volume > quality.threshold and quality.flag == "review"
    assert quality.review_reason() == "estimated Dice RV 0.01 is below 0.50 for that structure"
    del stn["structures"]  # a calibration fitted before structures: the mean alone flags, as before
    write_metadata_section(copy, "quality", poor_rv)
    before = Segmenter(copy, device="cpu").segment(image.array, image.affine).quality
    assert before.flag == "ok" and not before.structures_calibrated
    assert before.structures["rv"] == pytest.approx(before.frame_features[0]["agreement_rv"])


def test_structure_estimates_are_scored_leaving_one_subject_out(calibrated):
    from CoopSegLib.evaluation.calibration import cross_validate_structures

    samples = calibrated[2]
    rows = cross_validate_structures(samples, samples, "stn")
    assert {r["structure"] for r in rows} == {"lv", "myo", "rv"} and {r["subject"] for r in rows} == {
        "ring0", "ring1", "ring2"}
    assert all(0.0 <= r["estimate"] <= 1.0 for r in rows)
    back = sample_from_json(sample_to_json(samples[3]))
    assert back.structure_dice["stn"] == pytest.approx(samples[3].structure_dice["stn"], nan_ok=True)
