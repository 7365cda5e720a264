"""`coopseg evaluate`: label-map folders against references, and a model on test sets built from real ACDC."""

import csv

import numpy as np
import pytest

from CoopSegLib.cli import main
from CoopSegLib.data.corruption import corrupt_files
from CoopSegLib.data.nifti import load_nifti, write_nifti
from CoopSegLib.evaluation import build_test_sets
from data_helpers import ACDC_ROOT, needs_acdc
from inference_helpers import with_training_record

TO_ACDC = np.array([0, 3, 2, 1], np.uint8)  # canonical -> ACDC codes on disk


def read_rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_folders_of_label_maps_against_acdc_coded_references(tmp_path, capsys):
    affine = np.diag([-1.5, -1.5, 10.0, 1.0])
    reference = np.zeros((10, 10, 3), np.uint8)
    reference[2:6, 2:6, 1] = 1  # 16 LV voxels
    reference[6:8, 2:6, 1] = 2  # 8 MYO voxels
    reference[2:4, 7:9, 2] = 3  # 4 RV voxels
    prediction = reference.copy()
    prediction[2:4, 2:6, 1] = 0  # 8 LV voxels missed: Dice 2*8 / (8 + 16)
    (tmp_path / "pred").mkdir()
    (tmp_path / "ref" / "patient001").mkdir(parents=True)
    write_nifti(prediction, affine, tmp_path / "pred" / "patient001_frame01.nii.gz")
    write_nifti(np.zeros((10, 10, 3), np.float32), affine, tmp_path / "pred" / "patient001_frame01_entropy.nii.gz")
    write_nifti(TO_ACDC[reference], affine, tmp_path / "ref" / "patient001" / "patient001_frame01_gt.nii.gz")
    # ACDC keeps the image beside its _gt: the _gt file is the reference.
    image = tmp_path / "ref" / "patient001" / "patient001_frame01.nii.gz"
    write_nifti(np.full((10, 10, 3), 500, np.int16), affine, image)
    out = tmp_path / "report"
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--ref", str(tmp_path / "ref"), "--ref-codes", "acdc",
                 "--output-dir", str(out)]) == 0
    rows = {row["structure"]: row for row in read_rows(out / "evaluation.csv")}
    assert set(rows) == {"LV", "MYO", "RV"}  # the entropy file beside the label map is not a prediction
    assert float(rows["LV"]["dice"]) == pytest.approx(2 * 8 / 24) and float(rows["MYO"]["dice"]) == 1.0
    assert float(rows["RV"]["hd95"]) == 0.0 and rows["LV"]["case"] == "patient001_frame01"
    table = (out / "evaluation.md").read_text()
    assert table in capsys.readouterr().out and "| prediction |" in table
    # No model: the protocol says the maps came from files, no role or second look is claimed, cases are the units
    assert "label maps read from files" in table and "each case is resampled as its own unit" in table
    assert {(row["role"], row["second_look"], row["weights_sha256"]) for row in rows.values()} == {("unknown", "", "")}
    assert "the paper's protocol" not in table and "Development figures" not in table


def write_reference_study(folder, coding):
    """One prediction and its reference (20 x 20 x 3, both cavities 108 voxels), the reference in ``coding``."""
    affine = np.diag([-1.5, -1.5, 10.0, 1.0])
    reference = np.zeros((20, 20, 3), np.uint8)
    reference[2:8, 2:8], reference[8:10, 2:8], reference[12:18, 2:8] = 1, 2, 3  # LV, MYO, RV
    prediction = reference.copy()
    prediction[2:4, 2:8] = 0  # a third of the LV missed: LV Dice 2 * 72 / (72 + 108) = 0.8
    (folder / "pred").mkdir(parents=True)
    (folder / "ref").mkdir()
    write_nifti(prediction, affine, folder / "pred" / "case1_frame01.nii.gz")
    stored, name = (TO_ACDC[reference], "case1_frame01_gt") if coding == "acdc" else (reference, "case1_frame01")
    write_nifti(stored, affine, folder / "ref" / f"{name}.nii.gz")
    return folder / "pred", folder / "ref"


@pytest.mark.parametrize("coding", ["acdc", "canonical"])
def test_reference_codes_are_detected_and_said(tmp_path, coding, capsys):
    pred, ref = write_reference_study(tmp_path, coding)
    assert main(["evaluate", "--pred", str(pred), "--ref", str(ref), "--output-dir", str(tmp_path / "auto")]) == 0
    err = capsys.readouterr().err
    assert f"reference codes: {coding}, detected" in err and "--ref-codes" in err
    assert main(["evaluate", "--pred", str(pred), "--ref", str(ref), "--ref-codes", coding,
                 "--output-dir", str(tmp_path / "named")]) == 0
    detected, named = (read_rows(tmp_path / name / "evaluation.csv") for name in ("auto", "named"))
    assert detected == named
    assert {row["structure"]: float(row["dice"]) for row in detected} == pytest.approx({"LV": 0.8, "MYO": 1.0,
                                                                                        "RV": 1.0})


def test_reference_codes_that_the_predictions_cannot_tell_are_refused(tmp_path, capsys):
    pred, ref = write_reference_study(tmp_path, "acdc")
    labels, affine, _ = load_nifti(pred / "case1_frame01.nii.gz")
    # A prediction that calls half of each cavity LV and half RV agrees equally with both readings.
    labels[np.isin(labels, (1, 3)) & (np.arange(20)[None, :, None] % 2 == 0)] = 1
    labels[np.isin(labels, (1, 3)) & (np.arange(20)[None, :, None] % 2 == 1)] = 3
    write_nifti(labels, affine, pred / "case1_frame01.nii.gz")
    out = tmp_path / "report"
    assert main(["evaluate", "--pred", str(pred), "--ref", str(ref), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot tell how the references are coded" in err and "--ref-codes acdc" in err
    assert "1 of 1 references are named <name>_gt" in err and not out.exists()  # no guessed score written
    write_nifti(np.zeros_like(labels), affine, pred / "case1_frame01.nii.gz")  # an empty prediction: no evidence
    assert main(["evaluate", "--pred", str(pred), "--ref", str(ref), "--output-dir", str(out)]) == 2
    assert "share only 0 cavity voxels" in capsys.readouterr().err


@needs_acdc
def test_acdc_references_are_detected_for_the_shipped_model(tmp_path, capsys):
    image = ACDC_ROOT / "patient006" / "patient006_frame01.nii.gz"  # a validation subject of the shipped model
    assert main(["segment", str(image), "--output-dir", str(tmp_path / "pred"), "--device", "cpu"]) == 0
    scores = {}
    for codes in ("auto", "acdc", "canonical"):
        assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--ref", str(ACDC_ROOT / "patient006"),
                     "--ref-codes", codes, "--output-dir", str(tmp_path / codes)]) == 0
        scores[codes] = np.mean([float(row["dice"]) for row in read_rows(tmp_path / codes / "evaluation.csv")])
    assert "reference codes: acdc, detected" in capsys.readouterr().err
    assert scores["auto"] == scores["acdc"] > 0.7 > 0.5 > scores["canonical"]  # LV and RV swapped: a wrong score


def test_missing_references_and_mixed_modes_are_errors(tmp_path, capsys):
    (tmp_path / "pred").mkdir()
    (tmp_path / "ref").mkdir()
    write_nifti(np.zeros((4, 4, 2), np.uint8), np.eye(4), tmp_path / "pred" / "case7.nii.gz")
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--ref", str(tmp_path / "ref")]) == 2
    err = capsys.readouterr().err
    assert "case7.nii.gz: no reference case7_gt.nii.gz or case7.nii.gz" in err
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--data", str(tmp_path)]) == 2
    assert "either --pred DIR --ref DIR, or --data DIR" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(tmp_path), "--sets", "clean,fog"]) == 2
    assert "unknown test set(s) fog" in capsys.readouterr().err


@needs_acdc
def test_corrupted_sets_are_the_files_coopseg_corrupt_writes(tmp_path):
    (case,) = build_test_sets(ACDC_ROOT, ["spike"], ["patient003"], copies=1, seed=4)
    es = ACDC_ROOT / "patient003" / "patient003_frame15.nii.gz"
    assert case.key == "patient003_ES_spike_1"
    (written,) = corrupt_files([es], tmp_path, "spike", copies=1, seed=4)
    np.testing.assert_array_equal(case.image.array, load_nifti(written)[0])
    assert case.label.array.max() == 3


@needs_acdc
def test_a_model_on_acdc_test_sets_gives_table_1(tmp_path, bundle, capsys):
    site = tmp_path / "site"
    site.mkdir()
    (site / "patient061").symlink_to(ACDC_ROOT / "patient061")  # stands in for another site's folder
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(bundle), "--data", str(ACDC_ROOT), "--subjects", "patient001,patient042",
                 "--sets", "clean,site,spike", "--site", str(site), "--copies", "1", "--device", "cpu",
                 "--output-dir", str(out)]) == 0
    rows = read_rows(out / "evaluation.csv")
    # clean: 2 subjects x (ED, ES); site: 1 x (ED, ES); spike: 2 ES copies; each x 2 stages x 3 structures
    assert len(rows) == (4 + 2 + 2) * 2 * 3
    assert {row["stage"] for row in rows} == {"FTN", "FTN+STN"}
    assert {row["set"] for row in rows} == {"clean", "site", "spike"}
    assert {row["case"] for row in rows if row["set"] == "spike"} == {"patient001_ES_spike_1", "patient042_ES_spike_1"}
    assert all(0.0 <= float(row["dice"]) <= 1.0 for row in rows)
    table = (out / "evaluation.md").read_text()
    assert "| stage | clean | other site | RandSpike | AVG |" in table
    assert "\n| FTN |" in table and "\n| FTN+STN |" in table
    assert "clean: patient001_ED" in capsys.readouterr().err


@needs_acdc
def test_evaluating_on_the_models_own_validation_subjects(tmp_path, bundle, capsys):
    model = with_training_record(bundle, tmp_path / "model.coopseg", ["patient001"], ["patient042"])
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(model), "--data", str(ACDC_ROOT), "--subjects", "validation",
                 "--sets", "clean", "--device", "cpu", "--output-dir", str(out)]) == 0
    assert {row["case"] for row in read_rows(out / "evaluation.csv")} == {"patient042_ED", "patient042_ES"}
    # The toy bundle records no subjects: saying so beats silently evaluating every subject.
    assert main(["evaluate", "--model", str(bundle), "--data", str(ACDC_ROOT), "--subjects", "validation",
                 "--device", "cpu", "--output-dir", str(tmp_path / "other")]) == 2
    assert "names no validation subjects" in capsys.readouterr().err and not (tmp_path / "other").exists()


@needs_acdc
def test_largest_component_scores_the_post_processed_maps(tmp_path, bundle):
    from CoopSegLib.data.readers import read_acdc_subject
    from CoopSegLib.evaluation.metrics import overlap_scores
    from CoopSegLib.inference import Segmenter

    assert main(["evaluate", "--model", str(bundle), "--data", str(ACDC_ROOT), "--subjects", "patient042",
                 "--sets", "clean", "--largest-component", "--device", "cpu", "--output-dir", str(tmp_path)]) == 0
    scored = {(r["case"], r["stage"], r["structure"]): float(r["dice"]) for r in read_rows(tmp_path / "evaluation.csv")}
    segmenter = Segmenter(bundle, device="cpu")
    for case in read_acdc_subject(ACDC_ROOT / "patient042", ("ED", "ES")):
        # evaluate segments as `coopseg segment` does: a flagged volume gets the second look
        result = segmenter.segment(case.image.array, case.image.affine, largest_component=True, second_look=True)
        for stage, labels in (("FTN", result.initial), ("FTN+STN", result.refined)):
            for code, name in ((1, "LV"), (2, "MYO"), (3, "RV")):
                expected = overlap_scores(labels, case.label.array, case.image.spacing, distances=False)[code].dice
                assert scored[(case.key, stage, name)] == pytest.approx(expected, abs=1e-5, nan_ok=True)
