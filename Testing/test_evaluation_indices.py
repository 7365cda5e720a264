"""Clinical indices against hand-computed values on constructed label maps with anisotropic, oblique voxels."""

import csv
import json
import math

import numpy as np
import pytest

from CoopSegLib.cli import main
from CoopSegLib.data.nifti import write_nifti
from CoopSegLib.evaluation import clinical_indices, compare_indices, voxel_volume_ml
from data_helpers import rotation


def label_map(shape, counts):
    """A label map holding exactly ``counts[code]`` voxels of each code (filled in storage order)."""
    flat = np.zeros(int(np.prod(shape)), np.uint8)
    start = 0
    for code, count in counts.items():
        flat[start:start + count] = code
        start += count
    return flat.reshape(shape)


AFFINE = rotation(30, 2) @ np.diag([1.25, 1.5, 8.0, 1.0])  # 15 mm^3 = 0.015 mL per voxel, oblique
ES_AFFINE = np.diag([1.0, 1.0, 10.0, 1.0])  # a different grid for ES: 0.010 mL per voxel


def test_voxel_volume_comes_from_the_affine():
    assert voxel_volume_ml(AFFINE) == pytest.approx(0.015)
    assert voxel_volume_ml(ES_AFFINE) == pytest.approx(0.010)


def test_indices_match_a_hand_computation():
    ed = label_map((40, 40, 10), {1: 2000, 2: 4000, 3: 3000})
    es = label_map((50, 50, 12), {1: 1200, 2: 5000, 3: 2250})
    values = clinical_indices(ed, AFFINE, es, ES_AFFINE)
    assert values.lv_edv == pytest.approx(30.0)  # 2000 x 0.015
    assert values.lv_esv == pytest.approx(12.0)  # 1200 x 0.010
    assert values.lv_sv == pytest.approx(18.0)
    assert values.lv_ef == pytest.approx(60.0)
    assert values.rv_edv == pytest.approx(45.0) and values.rv_esv == pytest.approx(22.5)
    assert values.rv_sv == pytest.approx(22.5) and values.rv_ef == pytest.approx(50.0)
    assert values.lv_mass == pytest.approx(4000 * 0.015 * 1.05)  # ED myocardium only: 63 g


def test_differences_against_a_reference_and_an_empty_cavity():
    ed = label_map((20, 20, 5), {1: 1000, 2: 500, 3: 0})
    es = label_map((20, 20, 5), {1: 400, 2: 500, 3: 0})
    values = clinical_indices(ed, np.diag([1, 1, 10, 1.0]), es, np.diag([1, 1, 10, 1.0]))
    assert math.isnan(values.rv_ef)  # no RV at ED: no ejection fraction
    reference = clinical_indices(ed, np.diag([1, 1, 5, 1.0]), es, np.diag([1, 1, 5, 1.0]))
    rows = {row.name: row for row in compare_indices(values, reference)}
    assert rows["lv_edv"].value == pytest.approx(10.0) and rows["lv_edv"].reference == pytest.approx(5.0)
    assert rows["lv_edv"].difference == pytest.approx(5.0)
    assert rows["lv_ef"].difference == pytest.approx(0.0)
    assert rows["lv_mass"].unit == "g" and rows["lv_ef"].unit == "%"


def test_command_prints_and_writes_csv_and_json(tmp_path, capsys):
    ed = label_map((40, 40, 10), {1: 2000, 2: 4000, 3: 3000})
    es = label_map((40, 40, 10), {1: 800, 2: 4000, 3: 1500})
    write_nifti(ed, AFFINE, tmp_path / "ed.nii.gz")
    write_nifti(es, AFFINE, tmp_path / "es.nii.gz")
    acdc = {0: 0, 1: 3, 2: 2, 3: 1}  # canonical -> ACDC codes (1 RV, 2 MYO, 3 LV)
    reference_ed = label_map((40, 40, 10), {1: 2100, 2: 4000, 3: 3000})
    write_nifti(np.vectorize(acdc.get)(reference_ed).astype(np.uint8), AFFINE, tmp_path / "ed_gt.nii.gz")
    write_nifti(np.vectorize(acdc.get)(es).astype(np.uint8), AFFINE, tmp_path / "es_gt.nii.gz")
    arguments = ["indices", str(tmp_path / "ed.nii.gz"), str(tmp_path / "es.nii.gz"),
                 "--ref-ed", str(tmp_path / "ed_gt.nii.gz"), "--ref-es", str(tmp_path / "es_gt.nii.gz"),
                 "--ref-codes", "acdc"]
    assert main(arguments + ["--output", str(tmp_path / "indices.json")]) == 0
    printed = capsys.readouterr().out
    assert "LV ejection fraction" in printed and "60.00" in printed and "reference" in printed
    records = {r["index"]: r for r in json.loads((tmp_path / "indices.json").read_text())["indices"]}
    assert records["lv_edv"]["value"] == pytest.approx(30.0)
    assert records["lv_edv"]["reference"] == pytest.approx(31.5)
    assert records["lv_edv"]["difference"] == pytest.approx(-1.5)
    assert records["rv_ef"]["value"] == pytest.approx(50.0) and records["rv_ef"]["difference"] == pytest.approx(0.0)
    assert main(arguments + ["--output", str(tmp_path / "indices.csv")]) == 0
    with open(tmp_path / "indices.csv", newline="") as stream:
        rows = {row["index"]: row for row in csv.DictReader(stream)}
    assert float(rows["lv_mass"]["value"]) == pytest.approx(63.0) and rows["lv_mass"]["unit"] == "g"


def test_command_refuses_bad_label_maps(tmp_path, capsys):
    write_nifti(np.full((4, 4, 2), 7, np.uint8), np.eye(4), tmp_path / "odd.nii.gz")
    write_nifti(np.zeros((4, 4, 2), np.uint8), np.eye(4), tmp_path / "es.nii.gz")
    assert main(["indices", str(tmp_path / "odd.nii.gz"), str(tmp_path / "es.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert "unknown label value(s) 7" in err and "odd.nii.gz" in err
    assert main(["indices", str(tmp_path / "es.nii.gz"), str(tmp_path / "es.nii.gz"), "--ref-ed", "x"]) == 2
    assert "go together" in capsys.readouterr().err
