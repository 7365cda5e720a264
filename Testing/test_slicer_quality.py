"""The quality.csv reader the module shows after each run: name, quality and flag columns, extra columns ignored,
clear errors for a missing column or a bad value; an import picks up a quality.csv that the worker's folder holds."""

from __future__ import annotations

import pytest

import slicer_helpers  # noqa: F401  (puts CoopSegMRML on the path)
from CoopSegLib.errors import CoopSegError
from CoopSegMRML.logic import CoopSegSceneLogic
from CoopSegMRML.quality import read_quality


def write(path, text):
    path.write_text(text)
    return path


def test_rows_become_estimates_and_flags_say_review(tmp_path):
    path = write(tmp_path / "quality.csv", "name,quality,flag,entropy\ninput,0.912,ok,0.1\nother,0.41,review,0.6\n")
    estimates = read_quality(path)
    assert set(estimates) == {"input", "other"}
    assert estimates["input"].quality == pytest.approx(0.912) and not estimates["input"].needs_review
    assert estimates["other"].needs_review
    assert estimates["input"].describe() == "Estimated quality: Dice 0.91 (ok)"
    assert estimates["other"].describe() == "Estimated quality: Dice 0.41: review this segmentation before using it"


def test_suspect_slices_are_read_and_shown(tmp_path):
    path = write(tmp_path / "quality.csv", "name,quality,flag,suspect_slices\ninput,0.45,review,0 7 8\nok,0.9,ok,\n")
    estimates = read_quality(path)
    assert estimates["input"].suspect_slices == ("0", "7", "8") and estimates["ok"].suspect_slices == ()
    assert estimates["input"].describe().endswith("before using it; suspect slices: 0, 7, 8")



def test_a_kept_second_look_is_read_and_shown(tmp_path):
    path = write(tmp_path / "quality.csv", "name,quality,flag,blurred\nlooked,0.78,ok,true\nplain,0.9,ok,false\n")
    estimates = read_quality(path)
    assert estimates["looked"].blurred and not estimates["plain"].blurred
    assert estimates["looked"].describe() == ("Estimated quality: Dice 0.78 (ok), from the second look "
                                             "at the blurred image")
    assert estimates["plain"].describe() == "Estimated quality: Dice 0.90 (ok)"
    assert not read_quality(write(tmp_path / "old.csv", "name,quality,flag\nx,0.9,ok\n"))["x"].blurred

@pytest.mark.parametrize("text, message", [
    ("name,quality\ninput,0.9\n", "no column flag"),
    ("name,quality,flag\ninput,1.7,ok\n", "line 2: quality '1.7' is not a number in"),
    ("name,quality,flag\ninput,high,ok\n", "quality 'high' is not a number"),
    ("name,quality,flag\ninput,0.5,maybe\n", "flag 'maybe' is not one of ok, review"),
])
def test_bad_files_are_refused_with_the_reason(tmp_path, text, message):
    with pytest.raises(CoopSegError, match=message):
        read_quality(write(tmp_path / "quality.csv", text))


def test_the_import_takes_the_estimate_of_its_own_label_map(tmp_path):
    path = write(tmp_path / "quality.csv", "name,quality,flag\nother,0.9,ok\ninput,0.52,review\n")
    files = {"refined": str(tmp_path / "input.nii.gz"), "quality": str(path)}
    estimate = CoopSegSceneLogic._quality(files)
    assert (estimate.name, estimate.flag) == ("input", "review")
    assert CoopSegSceneLogic._quality({"refined": files["refined"]}) is None
    broken = {"refined": files["refined"], "quality": str(write(tmp_path / "bad.csv", "name\ninput\n"))}
    assert CoopSegSceneLogic._quality(broken) is None  # the labels still count; the log says why
