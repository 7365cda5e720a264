"""`coopseg segment` on a 4D phantom cine, run as a real subprocess with the shipped model: beside the label map come
the volume curve (CSV and picture) and the indices of the ED and ES frames, every number checked against the label
map it wrote, counted here with numpy."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from CoopSegLib.data.nifti import write_nifti
from CoopSegLib.data.phantom import phantom_subject
from CoopSegLib.weights import has_default_bundle

REPO = Path(__file__).resolve().parents[1]
CONTRACTIONS = (0.5, 0.0, 0.6, 1.0)  # phantom frames between ED (0) and ES (1): ED is frame 1, ES frame 3

pytestmark = pytest.mark.skipif(not has_default_bundle(), reason="needs the shipped model")


def read_rows(path: Path) -> list:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cine")
    cases = phantom_subject(3, frames=CONTRACTIONS, supersample=1)
    cine = np.stack([case.image.array for case in cases], axis=-1)
    write_nifti(cine, cases[0].image.affine, folder / "heart.nii.gz")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = folder / "out"
    result = subprocess.run([sys.executable, "-m", "CoopSegLib", "segment", str(folder / "heart.nii.gz"),
                             "--output-dir", str(out), "--device", "cpu"],
                            capture_output=True, text=True, cwd=REPO, env=environment, timeout=900)
    assert result.returncode == 0, result.stderr
    return out, result.stdout.split(), cases


def test_the_cine_gets_its_curve_picture_and_indices_listed_among_the_written_files(segmented):
    out, printed, _ = segmented
    assert printed == [str(out / name) for name in ("heart.nii.gz", "heart_curve.csv", "heart_curve.png",
                                                    "heart_indices.csv", "quality.csv")]
    assert (out / "heart_curve.png").read_bytes().startswith(b"\x89PNG")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_curve_and_indices_match_the_label_map_counted_by_hand(segmented):
    out, _, cases = segmented
    image = nib.load(str(out / "heart.nii.gz"))
    labels = np.asarray(image.dataobj)
    voxel_ml = abs(np.linalg.det(image.affine[:3, :3])) / 1000.0
    assert labels.shape[3] == len(CONTRACTIONS)

    curve = read_rows(out / "heart_curve.csv")
    assert list(curve[0]) == ["frame", "lv_ml", "myo_ml", "rv_ml", "quality"]
    assert [int(row["frame"]) for row in curve] == list(range(len(CONTRACTIONS)))
    volumes = {code: (labels == code).sum(axis=(0, 1, 2)) * voxel_ml for code in (1, 2, 3)}
    for column, code in (("lv_ml", 1), ("myo_ml", 2), ("rv_ml", 3)):
        np.testing.assert_allclose([float(row[column]) for row in curve], volumes[code], atol=1e-3)
    assert all(0.0 <= float(row["quality"]) <= 1.0 for row in curve)
    assert len({row["quality"] for row in curve}) > 1  # one estimate per frame, not the cine's mean repeated

    ed, es = int(np.argmax(volumes[1])), int(np.argmin(volumes[1]))
    truth = [int((case.label.array == 1).sum()) for case in cases]
    assert (ed, es) == (int(np.argmax(truth)), int(np.argmin(truth))) == (1, 3)  # the phantom's own ED and ES

    table = {row["index"]: row for row in read_rows(out / "heart_indices.csv")}
    assert list(next(iter(table.values()))) == ["index", "description", "unit", "value"]  # coopseg indices' table
    assert (int(table["ed_frame"]["value"]), int(table["es_frame"]["value"])) == (ed, es)
    edv, esv = volumes[1][ed], volumes[1][es]
    rv_edv, rv_esv = volumes[3][ed], volumes[3][es]
    expected = {"lv_edv": edv, "lv_esv": esv, "lv_sv": edv - esv, "lv_ef": (edv - esv) / edv * 100,
                "lv_mass": volumes[2][ed] * 1.05, "rv_edv": rv_edv, "rv_esv": rv_esv, "rv_sv": rv_edv - rv_esv,
                "rv_ef": (rv_edv - rv_esv) / rv_edv * 100}
    for name, value in expected.items():
        assert float(table[name]["value"]) == pytest.approx(value, rel=1e-5), name


def test_the_indices_file_is_what_coopseg_indices_writes_for_the_two_frames(segmented, tmp_path):
    from CoopSegLib.cli import main

    out, _, _ = segmented
    image = nib.load(str(out / "heart.nii.gz"))
    table = {row["index"]: row for row in read_rows(out / "heart_indices.csv")}
    frames = [int(table[name]["value"]) for name in ("ed_frame", "es_frame")]
    for name, frame in zip(("ed", "es"), frames):
        write_nifti(np.asarray(image.dataobj)[..., frame], image.affine, tmp_path / f"{name}.nii.gz")
    assert main(["indices", str(tmp_path / "ed.nii.gz"), str(tmp_path / "es.nii.gz"),
                 "--output", str(tmp_path / "indices.csv")]) == 0
    lines = (out / "heart_indices.csv").read_text().splitlines()
    assert lines[0] + "\n" + "\n".join(lines[3:]) + "\n" == (tmp_path / "indices.csv").read_text()


def test_a_cine_whose_indices_cannot_be_written_leaves_none_of_its_files(tmp_path):
    from CoopSegLib.inference import Segmenter
    from CoopSegLib.inference.files import segment_file

    cases = phantom_subject(4, frames=(0.0, 1.0), supersample=1)
    path = write_nifti(np.stack([case.image.array for case in cases], axis=-1), cases[0].image.affine,
                       tmp_path / "heart.nii.gz")
    out = tmp_path / "out"
    (out / "heart_indices.csv").mkdir(parents=True)  # a folder where the indices file goes: its rename fails
    with pytest.raises(OSError):
        segment_file(Segmenter(device="cpu"), path, out)
    assert sorted(p.name for p in out.iterdir()) == ["heart_indices.csv"]
    assert not list((out / "heart_indices.csv").iterdir())
