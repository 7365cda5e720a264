"""`coopseg evaluate` records its protocol: a tiny real evaluation (ACDC, the shipped model) checked against the
bundle's own checksum and record, and its intervals against a direct computation."""

import csv
from pathlib import Path

import pytest

from CoopSegLib.bundle import file_sha256, read_metadata
from CoopSegLib.cli import main
from CoopSegLib.data.corruption import DEVELOPMENT_SEED_NOTE
from CoopSegLib.evaluation.intervals import by_subject, paired_difference, subject_interval
from CoopSegLib.evaluation.protocol import Protocol, shown_path, subject_roles
from CoopSegLib.weights import default_bundle
from data_helpers import ACDC_ROOT, needs_acdc


def read_rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def interval_of(rows):
    return subject_interval(by_subject([(row["subject"], float(row["dice"])) for row in rows]))


@pytest.fixture(scope="module")
def shipped_evaluation(tmp_path_factory):
    """One pass of the shipped model over a validation and a training subject: clean and one spiked copy each."""
    out = tmp_path_factory.mktemp("evaluation")
    assert main(["evaluate", "--data", str(ACDC_ROOT), "--subjects", "patient042,patient001", "--sets", "clean,spike",
                 "--copies", "1", "--no-second-look", "--device", "cpu", "--output-dir", str(out)]) == 0
    return read_rows(out / "evaluation.csv"), (out / "evaluation.md").read_text()


@needs_acdc
def test_the_csv_names_the_bundle_its_checksum_the_pass_and_the_sets(shipped_evaluation):
    rows, _ = shipped_evaluation
    bundle = default_bundle()
    assert {row["weights_sha256"] for row in rows} == {file_sha256(bundle / "weights.pt")}
    assert {Path(row["model"]).resolve() for row in rows} == {bundle.resolve()}  # relative to the working folder
    assert {row["second_look"] for row in rows} == {"off"}
    assert {(row["seed"], row["copies"]) for row in rows if row["set"] == "spike"} == {("0", "1")}
    assert {(row["seed"], row["copies"]) for row in rows if row["set"] == "clean"} == {("", "")}
    # Roles, subjects, frames and groups from the bundle's record and the subjects' Info.cfg
    assert {(row["subject"], row["role"]) for row in rows} == {("patient042", "development"),
                                                               ("patient001", "training")}
    assert {(row["case"], row["frame"]) for row in rows if row["set"] == "clean"} == {
        ("patient042_ED", "ED"), ("patient042_ES", "ES"), ("patient001_ED", "ED"), ("patient001_ES", "ES")}
    for subject in ("patient001", "patient042"):
        info = (ACDC_ROOT / subject / "Info.cfg").read_text().splitlines()
        group = next(line.split(":", 1)[1].strip() for line in info if line.startswith("Group"))
        assert {row["group"] for row in rows if row["subject"] == subject} == {group}


@needs_acdc
def test_the_report_says_paper_protocol_and_development_for_one_pass_on_these_subjects(shipped_evaluation):
    _, report = shipped_evaluation
    sha = read_metadata(default_bundle())["weights"]["sha256"]
    assert f"weights sha256 `{sha}`" in report and "second look: off" in report
    assert "- numerics: cpu, fp32" in report or "- numerics: cpu, bf16" in report
    assert "Development figures (2 of 2 subjects" in report and "the paper's protocol (one pass" in report
    assert "corruption seed 0 is the development seed" in report
    assert "development subjects (1): patient042" in report and "training subjects (1): patient001" in report
    # The shipped calibration was fitted on patient042 (a validation subject), not on patient001
    assert "## Quality estimate (FTN+STN, in-sample: the calibration was fitted on 1 of these 2 subjects" in report


@needs_acdc
def test_the_reported_intervals_are_those_of_a_direct_computation(shipped_evaluation):
    rows, report = shipped_evaluation
    final = [row for row in rows if row["stage"] == "FTN+STN"]
    clean = [row for row in final if row["set"] == "clean"]
    spike = [row for row in final if row["set"] == "spike"]
    assert f"| clean | FTN+STN | 2 | 4 | {interval_of(clean).text()} |" in report
    assert f"| ES | clean | 2 | 2 | {interval_of([r for r in clean if r['frame'] == 'ES']).text()} |" in report
    clean_es = [row for row in clean if row["frame"] == "ES"]
    difference = paired_difference(by_subject([(r["subject"], float(r["dice"])) for r in spike]),
                                   by_subject([(r["subject"], float(r["dice"])) for r in clean_es]))
    assert (f"| RandSpike | 2 | {interval_of(spike).text()} | {interval_of(clean_es).text()} | "
            f"{difference.text()} |") in report
    # A group with one subject has a mean and no interval
    group = next(row["group"] for row in clean if row["subject"] == "patient042")
    patient = [row for row in clean if row["subject"] == "patient042"]
    assert f"| {group} | clean | 1 | 2 | {interval_of(patient).text()} |" in report
    assert "[" not in interval_of(patient).text()


@needs_acdc
def test_a_fresh_seed_with_the_second_look_is_not_called_the_papers_protocol(tmp_path, bundle, capsys):
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(bundle), "--data", str(ACDC_ROOT), "--subjects", "patient042",
                 "--sets", "spike", "--copies", "1", "--seed", "7", "--device", "cpu", "--output-dir", str(out)]) == 0
    assert DEVELOPMENT_SEED_NOTE not in capsys.readouterr().err
    rows = read_rows(out / "evaluation.csv")
    assert {(row["second_look"], row["seed"], row["role"]) for row in rows} == {("on", "7", "unknown")}
    report = (out / "evaluation.md").read_text()
    assert "the paper's protocol (" not in report and "not the paper's protocol" in report
    assert "development seed" not in report and "Development figures" not in report  # the toy bundle records none
    assert "The clean set was not evaluated" in report and "in-sample" not in report


def test_roles_come_from_the_training_record_and_the_calibration():
    metadata = {"training": {"data": {"train_subjects": ["a"], "validation_subjects": ["b"]}},
                "quality": {"fitted_on": {"subjects": ["c"]}}}
    assert subject_roles(metadata, ["a", "b", "c", "d"]) == {"a": "training", "b": "development",
                                                             "c": "development", "d": "held out"}
    assert subject_roles({}, ["a"]) == {"a": "unknown"}
    held_out = Protocol(second_look=False, sets=("clean",), roles={"d": "held out"})
    assert held_out.title().startswith("Mean Dice") and "the paper's protocol" in held_out.title()


def test_corrupt_says_when_the_development_seed_makes_the_copies(tmp_path, capsys):
    import nibabel as nib
    import numpy as np

    source = tmp_path / "volume.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).uniform(0, 100, (16, 16, 4)).astype(np.float32), np.eye(4)),
             str(source))
    assert main(["corrupt", str(source), "--output-dir", str(tmp_path / "a"), "--kind", "bias", "--copies", "1"]) == 0
    assert DEVELOPMENT_SEED_NOTE in capsys.readouterr().err
    assert main(["corrupt", str(source), "--output-dir", str(tmp_path / "b"), "--kind", "bias", "--copies", "1",
                 "--seed", "5"]) == 0
    assert DEVELOPMENT_SEED_NOTE not in capsys.readouterr().err
    fresh = nib.load(str(tmp_path / "b" / "volume_bias_1.nii.gz")).get_fdata()
    assert not np.allclose(fresh, nib.load(str(tmp_path / "a" / "volume_bias_1.nii.gz")).get_fdata())


def test_score_csvs_with_and_without_the_new_columns_read_back():
    from CoopSegLib.evaluation.report import ScoreRow, rows_from_csv, rows_to_csv

    rows = [ScoreRow("spike", "p1_ES_spike_1", "FTN+STN", "LV", 0.5, 3.0, "p1", "ES", "DCM")]
    protocol = Protocol(model="m", weights_sha256="abc", second_look=True, sets=("spike",), seed=3, copies=1,
                        roles={"p1": "held out"})
    text = rows_to_csv(rows, protocol.columns)
    assert text.splitlines()[0].endswith("subject,frame,group,role,model,weights_sha256,second_look,seed,copies")
    assert text.splitlines()[1].endswith("p1,ES,DCM,held out,m,abc,on,3,1")
    assert rows_from_csv(text) == rows
    earlier = "set,case,stage,structure,dice,hd95\nspike,p1_ES_spike_1,FTN+STN,LV,0.5,3\n"  # before issue 27
    assert rows_from_csv(earlier) == [ScoreRow("spike", "p1_ES_spike_1", "FTN+STN", "LV", 0.5, 3.0)]


def test_a_bundle_inside_the_working_folder_is_recorded_by_its_relative_path(tmp_path, monkeypatch):
    bundle = tmp_path / "checkout" / "CoopSegLib" / "weights" / "default.coopseg"
    bundle.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "checkout")
    assert shown_path(bundle) == str(Path("CoopSegLib", "weights", "default.coopseg"))
    elsewhere = tmp_path / "other.coopseg"
    assert shown_path(elsewhere) == str(elsewhere.resolve())  # outside: absolute, never "../"
