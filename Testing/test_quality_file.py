"""quality.csv, the one reader and writer (CLI, evaluate, Slicer module): the file names its suspect slices, says
whether it is calibrated, keeps other names' rows, reads files of earlier versions, and refuses bad files with the
file, the line and the reason."""

from __future__ import annotations

import csv

import pytest

from CoopSegLib.errors import CoopSegError
from CoopSegLib.quality_file import COLUMNS, QUALITY_FILE, QualityRecord, read_quality_file, write_quality_file


def write(path, text):
    path.write_text(text)
    return path


def test_rows_become_records_and_flags_say_review(tmp_path):
    path = write(tmp_path / "quality.csv", "name,quality,flag,entropy\ninput,0.912,ok,0.1\nother,0.41,review,0.6\n")
    records = read_quality_file(path)
    assert set(records) == {"input", "other"}
    assert records["input"].quality == pytest.approx(0.912) and not records["input"].needs_review
    assert records["other"].needs_review
    assert records["input"].describe() == "Estimated quality: Dice 0.91 (ok)"
    assert records["other"].describe() == "Estimated quality: Dice 0.41: review this segmentation before using it"


def test_an_uncalibrated_estimate_says_so(tmp_path):
    path = write(tmp_path / "quality.csv", "name,quality,flag,calibrated\nraw,0.93,ok,false\nfit,0.93,ok,true\n")
    records = read_quality_file(path)
    assert records["raw"].calibrated is False and "uncalibrated" in records["raw"].describe()
    assert records["fit"].calibrated is True and "uncalibrated" not in records["fit"].describe()


def test_suspect_slices_are_named_in_the_file_and_old_bare_numbers_still_read(tmp_path):
    record = QualityRecord("input", 0.45, "review", True, 0.7, suspect_slices=((0, 0), (0, 7)))
    write_quality_file(tmp_path, {"input": record, "fine": QualityRecord("fine", 0.9, "ok", True, 0.7)})
    with open(tmp_path / QUALITY_FILE, newline="") as stream:
        rows = {row["name"]: row for row in csv.DictReader(stream)}
    assert rows["input"]["suspect_slices"] == "slice 0; slice 7" and rows["fine"]["suspect_slices"] == ""
    assert read_quality_file(tmp_path / QUALITY_FILE)["input"].suspect_slices == ((0, 0), (0, 7))
    assert record.describe().endswith("before using it; suspect: slice 0, slice 7")
    old = read_quality_file(write(tmp_path / "old.csv", "name,quality,flag,suspect_slices\na,0.4,review,0 7 8\n"
                                  "b,0.5,review,1:3 2:0\n"))
    assert old["a"].suspect_slices == ((0, 0), (0, 7), (0, 8)) and not old["a"].cine
    assert old["b"].suspect_names() == ("frame 1 slice 3", "frame 2 slice 0")


def test_the_header_is_the_documented_column_order(tmp_path):
    write_quality_file(tmp_path, {"x": QualityRecord("x", 0.8, "ok", True, 0.7, signals={"agreement": 0.9})})
    header = (tmp_path / QUALITY_FILE).read_text().splitlines()[0].split(",")
    assert tuple(header) == COLUMNS
    assert read_quality_file(tmp_path / QUALITY_FILE)["x"].signals == {"agreement": pytest.approx(0.9)}


def test_a_second_run_keeps_the_rows_of_other_names_and_replaces_its_own(tmp_path):
    write_quality_file(tmp_path, {"a": QualityRecord("a", 0.8, "ok"), "b": QualityRecord("b", 0.6, "review")})
    write_quality_file(tmp_path, {"b": QualityRecord("b", 0.85, "ok", stage="ftn")})
    records = read_quality_file(tmp_path / QUALITY_FILE)
    assert sorted(records) == ["a", "b"] and records["b"].quality == pytest.approx(0.85)
    assert records["b"].stage == "ftn" and records["a"].quality == pytest.approx(0.8)


def test_a_kept_second_look_is_read_and_shown(tmp_path):
    path = write(tmp_path / "quality.csv", "name,quality,flag,blurred\nlooked,0.78,ok,true\nplain,0.9,ok,false\n")
    records = read_quality_file(path)
    assert records["looked"].blurred and not records["plain"].blurred
    assert records["looked"].describe() == ("Estimated quality: Dice 0.78 (ok), from the second look "
                                           "at the blurred image")
    assert not read_quality_file(write(tmp_path / "old.csv", "name,quality,flag\nx,0.9,ok\n"))["x"].blurred


@pytest.mark.parametrize("text, message", [
    ("name,quality\ninput,0.9\n", "no column flag"),
    ("name,quality,flag\ninput,1.7,ok\n", "line 2: quality '1.7' is not a number in"),
    ("name,quality,flag\ninput,high,ok\n", "quality 'high' is not a number"),
    ("name,quality,flag\ninput,0.5,maybe\n", "flag 'maybe' is not one of ok, review"),
    ("name,quality,flag,suspect_slices\ninput,0.5,review,the third\n", "line 2: 'the' is not a slice"),
    ("name,quality,flag,stage\ninput,0.5,ok,both\n", "stage 'both' is not one of ftn, stn"),
])
def test_bad_files_are_refused_with_the_reason(tmp_path, text, message):
    with pytest.raises(CoopSegError, match=message):
        read_quality_file(write(tmp_path / "quality.csv", text))
